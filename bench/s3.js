// S3 throughput: PUT and GET of 4 KiB and 1 MiB objects at concurrency 1 and 16 against `yunhai up`
// (the built CLI, a temp data dir, --driver none), beside nginx serving the same bytes from files
// (GET only) and a raw disk-write baseline, all in one run.
//
// The disk baseline is the `dd oflag=direct` of each object as a PUT must do it: the same bytes,
// one new file per object, written and made durable (write + fdatasync + close) at the same
// concurrency. O_DIRECT alone does not make a new file's size and allocation durable, so it would
// measure less than an acknowledged PUT owes; Node cannot allocate the aligned buffers O_DIRECT
// needs anyway. For reference (no target) the run also prints `dd bs=1M oflag=direct
// conv=fdatasync` streaming into ONE file: the disk's sequential bandwidth, which no per-object
// store reaches.
//
// Each yunhai line also shows CPU per request of the server process (all threads, from
// /proc/<pid>/stat) and of this client, so it shows whether the client is what limits a figure.
//
//   npm run build && node bench/s3.js [--seconds 4] [--warmup 1] [--nginx-workers 1] [--client wrk|node] [--json]
//
// The client is wrk (`--client wrk`, the default when it is installed: Debian package `wrk`) replaying
// requests signed beforehand with our own SigV4 (payloads UNSIGNED-PAYLOAD, as the AWS SDKs send them
// over TLS): a few microseconds of client CPU per request, so on a 2-core machine the server gets a
// core of its own. `--client node` uses a keep-alive http.Agent signing each request as it goes
// (~0.5 ms of client CPU per 4 KiB PUT, which then shares the two cores with the server).
// Targets: 1 MiB GET >= 0.8x nginx, 1 MiB PUT >= 0.8x raw disk write, 4 KiB PUT >= 3,000/s.
//
// After Yunhai the same requests go to the floor server (bench/s3-floor-server.js; `--no-floor`
// skips it): node:http with Yunhai's SigV4 check, MD5, the rows of a PutObject commit on a copy of
// Yunhai's database and the same syncs, and GETs answered from memory. Each target line also shows
// the floor's figure: a target the floor misses is out of reach of any Node server on this machine.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import http from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { opt, pct, requireBuilt, root } from './common.js';
import { startFloor } from './floor.js';
import { runWrk, wrkAvailable } from './wrk.js';

requireBuilt('bench/s3', 'platform/auth/sigv4.js');
const { signRequest, UNSIGNED_PAYLOAD } = await import(join(root, 'dist/platform/auth/sigv4.js'));

const SECONDS = Number(opt('--seconds', '4'));
/** Unrecorded seconds of the same requests before each phase (`--warmup 0` measures from cold). */
const WARMUP = Number(opt('--warmup', '1'));
const NGINX_WORKERS = opt('--nginx-workers', '1');
const JSON_OUT = process.argv.includes('--json');
/** The floor server (bench/s3-floor-server.js) after Yunhai, unless `--no-floor` or `--only`. */
const FLOOR = !process.argv.includes('--no-floor') && !opt('--only', '');
const CLIENT = opt('--client', wrkAvailable() ? 'wrk' : 'node');
/** Request bodies wrk sends; larger PUTs use the Node client (see the PUT loop). */
const WRK_MAX_BODY = 64 * 1024;
/** `--only yunhai` skips the baselines; `--ops put` skips GETs; `--sizes 4096` picks sizes (profiling). */
const ONLY = opt('--only', '');
const OPS = opt('--ops', 'put,get').split(',');
const SIZES = [
  { name: '4 KiB', bytes: 4096 },
  { name: '1 MiB', bytes: 1024 * 1024 },
].filter((s) => opt('--sizes', '4096,1048576').split(',').includes(String(s.bytes)));
const CONCURRENCY = [1, 16];
/** Distinct objects per size that GETs cycle over (and nginx serves as files). */
const FILES = 64;

const dir = mkdtempSync(join(tmpdir(), 'yunhai-bench-s3-'));
const log = (s) => process.stderr.write(`${s}\n`);
log(`client: ${CLIENT}${CLIENT === 'wrk' ? ' (Node for PUT bodies over 64 KiB)' : ''}`);

async function freePort() {
  const srv = createServer();
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address();
  await new Promise((r) => srv.close(r));
  return port;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

/** One request; resolves with the status after draining the body. */
function request(url, method, headers, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent }, (res) => {
      let n = 0;
      res.on('data', (c) => {
        n += c.length;
      });
      res.on('end', () => resolve({ status: res.statusCode, bytes: n }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** The headers of a signed S3 request (UNSIGNED-PAYLOAD) of `length` body bytes. */
function s3Headers(url, keys, method, length) {
  const headers = { 'x-amz-content-sha256': UNSIGNED_PAYLOAD };
  if (length) headers['content-length'] = String(length);
  return Object.assign(
    headers,
    signRequest({
      method,
      url,
      headers,
      accessKeyId: keys.accessKeyId,
      secretAccessKey: keys.secretAccessKey,
      region: 'us-east-1',
      service: 's3',
    }),
  );
}

function s3Request(endpoint, keys, method, path, body) {
  const url = new URL(endpoint + path);
  return request(url, method, s3Headers(url, keys, method, body?.length), body);
}

/** A request head for wrk: request line and header lines. */
function head(url, method, headers) {
  return [
    `${method} ${url.pathname} HTTP/1.1`,
    `Host: ${url.host}`,
    ...Object.entries(headers).map(([n, v]) => `${n}: ${v}`),
  ];
}

/** CPU time (ms, all threads) a process has used so far, user and system; null when unreadable. */
function cpuMsOf(pid) {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return { user: Number(f[11]) * 10, sys: Number(f[12]) * 10 };
  } catch {
    return null;
  }
}

/** The server's CPU per operation between two `cpuMsOf` readings (nothing when either failed). */
function serverCpuPerOp(before, after, ops) {
  if (!before || !after) return {};
  return {
    serverCpuUsPerOp: ((after.user + after.sys - before.user - before.sys) * 1000) / ops,
    serverSysUsPerOp: ((after.sys - before.sys) * 1000) / ops,
  };
}

/** Runs `op(i)` from `conc` workers for `seconds`; answers ops/s, bytes/s, latency percentiles and CPU per op. */
async function drive(conc, bytesPerOp, op, serverPid, seconds = SECONDS) {
  const lat = [];
  let next = 0;
  const end = performance.now() + seconds * 1000;
  const server0 = serverPid ? cpuMsOf(serverPid) : null;
  const client0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: conc }, async () => {
      while (performance.now() < end) {
        const i = next++;
        const s = performance.now();
        await op(i);
        lat.push(performance.now() - s);
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  const client = process.cpuUsage(client0);
  const server1 = serverPid ? cpuMsOf(serverPid) : null;
  return {
    ...serverCpuPerOp(server0, server1, lat.length),
    client: 'node',
    clientCpuUsPerOp: (client.user + client.system) / lat.length,
    ops: lat.length,
    opsPerSec: lat.length / secs,
    mibPerSec: (lat.length * bytesPerOp) / secs / 1024 / 1024,
    p50: pct(lat, 50),
    p99: pct(lat, 99),
  };
}

/**
 * `drive`'s figures from wrk replaying `heads` (each followed by the bytes of `bodyFile`, if any),
 * with the server's CPU per request measured around it.
 */
async function driveWrk(conc, bytesPerOp, base, heads, bodyFile, serverPid, seconds = SECONDS) {
  const server0 = serverPid ? cpuMsOf(serverPid) : null;
  const r = await runWrk({
    dir,
    tag: `${bytesPerOp}-${conc}`,
    base,
    conc,
    seconds,
    heads,
    bodyFile,
  });
  const server1 = serverPid ? cpuMsOf(serverPid) : null;
  return {
    ...serverCpuPerOp(server0, server1, r.ops),
    ...r,
    client: 'wrk',
    mibPerSec: (r.opsPerSec * bytesPerOp) / 1024 / 1024,
  };
}

const results = [];
const record = (target, op, size, conc, r) => {
  results.push({ target, op, size: size.name, conc, ...r });
  log(
    `${target.padEnd(7)} ${op.padEnd(5)} ${size.name.padStart(6)} c=${String(conc).padEnd(2)} ` +
      `${r.opsPerSec.toFixed(0).padStart(7)}/s ${r.mibPerSec.toFixed(1).padStart(7)} MiB/s ` +
      `p50 ${r.p50.toFixed(2)} ms p99 ${r.p99.toFixed(2)} ms` +
      (r.serverCpuUsPerOp !== undefined
        ? `  cpu/op server ${r.serverCpuUsPerOp.toFixed(0)} us (sys ${r.serverSysUsPerOp.toFixed(0)}) client ${r.clientCpuUsPerOp.toFixed(0)} us`
        : '') +
      (r.client ? `  [${r.client}]` : ''),
  );
};

// ---- payloads and the nginx document root ----------------------------------------------------
const payloads = new Map(SIZES.map((s) => [s.bytes, randomBytes(s.bytes)]));
/** The same payloads as files, for wrk to send. */
const bodyFiles = new Map(
  SIZES.map((s) => {
    const file = join(dir, `body-${s.bytes}`);
    writeFileSync(file, payloads.get(s.bytes));
    return [s.bytes, file];
  }),
);
const docroot = join(dir, 'www');
for (const s of SIZES) {
  mkdirSync(join(docroot, 'b', String(s.bytes)), { recursive: true });
  for (let i = 0; i < FILES; i++)
    writeFileSync(join(docroot, 'b', String(s.bytes), String(i)), payloads.get(s.bytes));
}

// ---- raw disk write: the same bytes, one file each, write + fdatasync + close -----------------
const rawDir = join(dir, 'raw');
mkdirSync(rawDir);
for (const s of ONLY ? [] : SIZES) {
  for (const conc of CONCURRENCY) {
    const data = payloads.get(s.bytes);
    const r = await drive(conc, s.bytes, async (i) => {
      const fh = await open(join(rawDir, `${s.bytes}-${conc}-${i}`), 'w', 0o600);
      await fh.write(data);
      await fh.datasync();
      await fh.close();
    });
    record('disk', 'write', s, conc, r);
  }
}
rmSync(rawDir, { recursive: true, force: true });

// ---- reference only: dd streaming 1 MiB blocks into one file, O_DIRECT, synced at the end ------
let ddSequential;
if (!ONLY && SIZES.some((s) => s.bytes === 1024 * 1024)) {
  const count = 256;
  const t0 = performance.now();
  const dd = spawnSync(
    'dd',
    [
      'if=/dev/zero',
      `of=${join(dir, 'dd.out')}`,
      'bs=1M',
      `count=${count}`,
      'oflag=direct',
      'conv=fdatasync',
    ],
    { encoding: 'utf8' },
  );
  const secs = (performance.now() - t0) / 1000;
  rmSync(join(dir, 'dd.out'), { force: true });
  if (dd.status === 0) {
    ddSequential = count / secs;
    log(
      `dd      write  1 MiB seq  ${ddSequential.toFixed(1).padStart(7)} MiB/s (one file, oflag=direct; reference only)`,
    );
  }
}

// ---- nginx (GET only) ------------------------------------------------------------------------
let nginx;
const nginxBin = spawnSync('sh', ['-c', 'command -v nginx || ls /usr/sbin/nginx'], { encoding: 'utf8' })
  .stdout.trim()
  .split('\n')[0];
if (nginxBin && !ONLY) {
  const port = await freePort();
  const conf = join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    `${process.getuid?.() === 0 ? 'user root;\n' : ''}worker_processes ${NGINX_WORKERS};
daemon off;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'nginx-error.log')} warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  client_body_temp_path ${dir}/nginx-body;
  proxy_temp_path ${dir}/nginx-proxy;
  fastcgi_temp_path ${dir}/nginx-fastcgi;
  uwsgi_temp_path ${dir}/nginx-uwsgi;
  scgi_temp_path ${dir}/nginx-scgi;
  server { listen 127.0.0.1:${port}; root ${docroot}; }
}
`,
  );
  nginx = spawn(nginxBin, ['-c', conf, '-p', dir], { stdio: ['ignore', 'ignore', 'inherit'] });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    const ok = await request(new URL(`${base}/b/${SIZES[0].bytes}/0`), 'GET', {}).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) break;
    if (i > 200) throw new Error(`nginx did not start; see ${join(dir, 'nginx-error.log')}`);
    await sleep(25);
  }
  for (const s of SIZES)
    for (const conc of CONCURRENCY) {
      const r =
        CLIENT === 'wrk'
          ? await driveWrk(
              conc,
              s.bytes,
              base,
              Array.from({ length: FILES }, (_, i) => head(new URL(`${base}/b/${s.bytes}/${i}`), 'GET', {})),
            )
          : await drive(conc, s.bytes, (i) =>
              request(new URL(`${base}/b/${s.bytes}/${i % FILES}`), 'GET', {}),
            );
      record('nginx', 'GET', s, conc, r);
    }
  nginx.kill('SIGQUIT');
} else if (!ONLY) {
  log('nginx not found (Debian package nginx): no GET baseline');
}

/**
 * PUTs, then GETs, of every size at every concurrency against an S3 endpoint (`pid`: the server,
 * for its CPU per request). GETs read objects the 1-client PUTs wrote. Every phase first runs for
 * WARMUP seconds unrecorded (PUTs to other keys), so the figures are of compiled code, not of the
 * JIT's first passes over it.
 */
async function measureS3(target, base, keys, bucket, pid) {
  const phase = async (op, s, conc, run) => {
    if (WARMUP > 0) await run(WARMUP, 'warm/');
    record(target, op, s, conc, await run(SECONDS, ''));
  };
  for (const s of SIZES) {
    const data = payloads.get(s.bytes);
    for (const conc of OPS.includes('put') ? CONCURRENCY : []) {
      await phase('PUT', s, conc, async (seconds, prefix) => {
        const path = (i) => `/${bucket}/${prefix}${s.bytes}/${conc}/${i}`;
        // wrk's Lua joins head and body into a new string per request: ~2.4 ms of client CPU for a
        // 1 MiB body, against ~0.8 ms for Node writing the same Buffer. Large PUTs take the Node client.
        if (CLIENT === 'wrk' && s.bytes <= WRK_MAX_BODY) {
          // Enough signed heads for the fastest rate plausible here; wrk wraps around (overwrites).
          const heads = Array.from({ length: Math.ceil(seconds * 8000) }, (_, i) => {
            const url = new URL(base + path(i));
            return head(url, 'PUT', s3Headers(url, keys, 'PUT', s.bytes));
          });
          return driveWrk(conc, s.bytes, base, heads, bodyFiles.get(s.bytes), pid, seconds);
        }
        const put = async (i) => {
          const res = await s3Request(base, keys, 'PUT', path(i), data);
          if (res.status !== 200) throw new Error(`PUT answered ${res.status}`);
        };
        return drive(conc, s.bytes, put, pid, seconds);
      });
    }
    // GETs cycle over FILES keys written at c=1, from key 1 (wrk discards the first request it builds).
    for (const conc of OPS.includes('get') ? CONCURRENCY : []) {
      await phase('GET', s, conc, async (seconds) => {
        const path = (i) => `/${bucket}/${s.bytes}/1/${1 + (i % FILES)}`;
        if (CLIENT === 'wrk') {
          const heads = Array.from({ length: FILES }, (_, i) => {
            const url = new URL(base + path(i));
            return head(url, 'GET', s3Headers(url, keys, 'GET'));
          });
          return driveWrk(conc, s.bytes, base, heads, undefined, pid, seconds);
        }
        const get = async (i) => {
          const res = await s3Request(base, keys, 'GET', path(i));
          if (res.status !== 200 || res.bytes !== s.bytes) throw new Error(`GET answered ${res.status}`);
        };
        return drive(conc, s.bytes, get, pid, seconds);
      });
    }
  }
}

/**
 * The floor (bench/s3-floor-server.js): the same requests against the least a Node server does for
 * them, on a copy of the database `yunhai up` just left (its schema, tenant and quota rows).
 */
async function measureFloor(keys) {
  const floorDir = join(dir, 'floor');
  mkdirSync(join(floorDir, 'blobs'), { recursive: true });
  const db = join(floorDir, 'floor.db');
  copyFileSync(join(dataDir, 'yunhai.db'), db);
  const port = await freePort();
  const server = await startFloor('s3-floor-server.js', [
    db,
    join(floorDir, 'blobs'),
    String(port),
    keys.secretAccessKey,
  ]);
  try {
    await measureS3('floor', `http://127.0.0.1:${port}`, keys, 'floor', server.pid);
  } finally {
    await server.stop();
  }
}

// ---- yunhai up ---------------------------------------------------------------------------------
const dataDir = join(dir, 'yunhai');
// BENCH_NODE_FLAGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof") go on the server's node command line.
const nodeFlags = (process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean);
const up = spawn(
  process.execPath,
  [
    ...nodeFlags,
    'bin/yunhai.js',
    'up',
    '--data-dir',
    dataDir,
    '--port',
    '0',
    '--driver',
    'none',
    '--log-level',
    'warn',
  ],
  { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] },
);
let upOut = '';
up.stdout.on('data', (d) => {
  upOut += d;
});
let keys;
try {
  try {
    while (!upOut.includes('Ready in')) {
      if (up.exitCode !== null) throw new Error(`yunhai up exited:\n${upOut}`);
      await sleep(20);
    }
    const s3 = JSON.parse(readFileSync(join(dataDir, 'endpoints.json'), 'utf8')).s3;
    keys = JSON.parse(readFileSync(join(dataDir, 'credentials.json'), 'utf8'));
    const made = await s3Request(s3, keys, 'PUT', '/bench');
    if (made.status !== 200) throw new Error(`CreateBucket answered ${made.status}`);
    await measureS3('yunhai', s3, keys, 'bench', up.pid);
  } finally {
    up.kill('SIGTERM');
    await new Promise((r) => (up.exitCode !== null ? r() : up.once('exit', r)));
  }
  if (FLOOR) await measureFloor(keys);
} finally {
  agent.destroy();
  rmSync(dir, { recursive: true, force: true });
}

// ---- ratios and targets ----------------------------------------------------------------------
const find = (target, op, size, conc) =>
  results.find((r) => r.target === target && r.op === op && r.size === size && r.conc === conc);
const lines = [];
const checks = [];
/** `; floor ...`: the floor server's figure for the same line, as a ratio to `base` when given. */
const floorNote = (op, size, conc, base) => {
  const f = find('floor', op, size, conc);
  if (!f) return '';
  return base
    ? `; the floor server: ${(f.mibPerSec / base.mibPerSec).toFixed(2)}x`
    : `; the floor server: ${f.opsPerSec.toFixed(0)}/s`;
};
for (const conc of CONCURRENCY) {
  const ys = find('yunhai', 'GET', '1 MiB', conc);
  const ng = find('nginx', 'GET', '1 MiB', conc);
  if (ys && ng) {
    const ratio = ys.mibPerSec / ng.mibPerSec;
    lines.push(
      `1 MiB GET c=${conc}: ${ratio.toFixed(2)}x nginx (target >= 0.8)${floorNote('GET', '1 MiB', conc, ng)}`,
    );
    checks.push({ name: `1 MiB GET c=${conc} vs nginx`, ratio, ok: ratio >= 0.8 });
  }
  const yp = find('yunhai', 'PUT', '1 MiB', conc);
  const dw = find('disk', 'write', '1 MiB', conc);
  if (yp && dw) {
    const ratio = yp.mibPerSec / dw.mibPerSec;
    lines.push(
      `1 MiB PUT c=${conc}: ${ratio.toFixed(2)}x raw disk write (target >= 0.8)${floorNote('PUT', '1 MiB', conc, dw)}`,
    );
    checks.push({ name: `1 MiB PUT c=${conc} vs disk`, ratio, ok: ratio >= 0.8 });
  }
  const small = find('yunhai', 'PUT', '4 KiB', conc);
  if (small) {
    lines.push(
      `4 KiB PUT c=${conc}: ${small.opsPerSec.toFixed(0)}/s (target >= 3000/s)${floorNote('PUT', '4 KiB', conc)}`,
    );
    checks.push({ name: `4 KiB PUT c=${conc}`, perSec: small.opsPerSec, ok: small.opsPerSec >= 3000 });
  }
  const sg = find('yunhai', 'GET', '4 KiB', conc);
  const ng4 = find('nginx', 'GET', '4 KiB', conc);
  if (sg && ng4)
    lines.push(`4 KiB GET c=${conc}: ${(sg.opsPerSec / ng4.opsPerSec).toFixed(2)}x nginx (no target)`);
}
if (ddSequential !== undefined) {
  const best = Math.max(
    ...results
      .filter((r) => r.target === 'yunhai' && r.op === 'PUT' && r.size === '1 MiB')
      .map((r) => r.mibPerSec),
  );
  if (Number.isFinite(best))
    lines.push(
      `1 MiB PUT best: ${(best / ddSequential).toFixed(2)}x dd sequential into one file (reference, no target)`,
    );
}
if (JSON_OUT)
  process.stdout.write(`${JSON.stringify({ seconds: SECONDS, results, checks, ddSequential }, null, 2)}\n`);
else process.stdout.write(`\n${lines.join('\n')}\n`);
