// wrk (Debian package `wrk`, C, one epoll thread) as a load generator for HTTP benches: it costs a
// few microseconds of CPU per request where a Node client costs hundreds, so on a small machine it
// leaves the cores to the server being measured. wrk cannot sign requests (its Lua has no HMAC), so
// the caller signs every request beforehand; the heads go to a file that the Lua script reads once,
// and each request sends the next head (wrapping around) followed by the body, if any.
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Whether `wrk` is on PATH. */
export function wrkAvailable() {
  return spawnSync('sh', ['-c', 'command -v wrk'], { encoding: 'utf8' }).status === 0;
}

const SCRIPT = `
local heads = {}
local body = ""
local n = 0
local failed = 0
function init(args)
  local cur = {}
  for line in io.lines(args[1]) do
    if line == "" then
      heads[#heads + 1] = table.concat(cur, "\\r\\n") .. "\\r\\n\\r\\n"
      cur = {}
    else
      cur[#cur + 1] = line
    end
  end
  if args[2] ~= nil and args[2] ~= "" then
    local f = assert(io.open(args[2], "rb"))
    body = f:read("*a")
    f:close()
  end
end
function request()
  n = n + 1
  return heads[(n - 1) % #heads + 1] .. body
end
`;

/**
 * Runs wrk with `conc` connections for `seconds` against `base` (http://host:port), sending the
 * pre-built request heads `heads` (each a list of lines: request line, then headers; no blank line)
 * in turn, each followed by the bytes of `bodyFile` when given. Answers the figures in the shape
 * the Node driver answers them, plus the client's own CPU per request (wrk's user + system time).
 */
export async function runWrk({ dir, tag, base, conc, seconds, heads, bodyFile }) {
  const headsFile = join(dir, `${tag}.heads`);
  writeFileSync(headsFile, heads.map((h) => `${h.join('\n')}\n\n`).join(''));
  const scriptFile = join(dir, 'wrk-replay.lua');
  writeFileSync(scriptFile, SCRIPT);
  // `times` after wrk prints the shell's children's CPU: wrk's own user and system time.
  const cmd =
    `wrk -t1 -c${conc} -d${seconds}s --latency -s '${scriptFile}' '${base}' -- '${headsFile}' '${bodyFile ?? ''}'; ` +
    'times';
  const out = await new Promise((resolve, reject) => {
    const p = spawn('sh', ['-c', cmd], { stdio: ['ignore', 'pipe', 'inherit'] });
    let s = '';
    p.stdout.on('data', (d) => {
      s += d;
    });
    p.on('error', reject);
    p.on('exit', (code) => (code === 0 ? resolve(s) : reject(new Error(`wrk exited ${code}:\n${s}`))));
  });
  const num = (re) => {
    const m = out.match(re);
    return m ? Number(m[1]) : NaN;
  };
  const ms = (re) => {
    const m = out.match(re);
    if (!m) return NaN;
    const v = Number(m[1]);
    return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v;
  };
  const requests = num(/(\d+) requests in/);
  const errors = num(/Non-2xx or 3xx responses: (\d+)/);
  const socketErrors = out.match(/Socket errors: (.*)/);
  if (errors > 0 || socketErrors) {
    throw new Error(
      `wrk: ${Number.isNaN(errors) ? 0 : errors} error answers; ${socketErrors?.[1] ?? ''}\n${out}`,
    );
  }
  // The last line of `times`: children's user and system time, e.g. "0m1.23s 0m0.45s".
  const times = out
    .trim()
    .split('\n')
    .at(-1)
    .match(/(\d+)m([\d.]+)s (\d+)m([\d.]+)s/);
  const clientCpuMs = times
    ? (Number(times[1]) * 60 + Number(times[2]) + Number(times[3]) * 60 + Number(times[4])) * 1000
    : NaN;
  return {
    ops: requests,
    opsPerSec: num(/Requests\/sec:\s+([\d.]+)/),
    p50: ms(/\s50%\s+([\d.]+)(us|ms|s)/),
    p99: ms(/\s99%\s+([\d.]+)(us|ms|s)/),
    clientCpuUsPerOp: (clientCpuMs * 1000) / requests,
  };
}
