#!/usr/bin/env node
// bench/footprint: start-up time and idle RSS of `yunhai up`, side by side with a baseline
// measured in the same run (a bare Fastify server answering /healthz on this Node).
// Targets from issue 2: start-up <= 3 s, idle RSS <= 200 MB.
// Usage: npm run build && node bench/footprint.js [--runs N] [--idle-seconds S]
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { opt, requireBuilt, root } from './common.js';

const RUNS = Number(opt('--runs', 5));
const IDLE_SECONDS = Number(opt('--idle-seconds', 5));
requireBuilt('bench/footprint');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Resident set size (bytes) of a process and all its descendants, from /proc. */
function treeRss(pid) {
  let total = 0;
  const stack = [pid];
  while (stack.length) {
    const p = stack.pop();
    try {
      const status = readFileSync(`/proc/${p}/status`, 'utf8');
      const m = /VmRSS:\s+(\d+) kB/.exec(status);
      if (m) total += Number(m[1]) * 1024;
      const children = readFileSync(`/proc/${p}/task/${p}/children`, 'utf8').trim();
      if (children) stack.push(...children.split(/\s+/).map(Number));
    } catch {
      // process went away
    }
  }
  return total;
}

async function waitHealthy(urlOf, deadlineMs) {
  const end = Date.now() + deadlineMs;
  while (Date.now() < end) {
    const url = urlOf();
    if (url) {
      try {
        const r = await fetch(url);
        if (r.ok) return;
      } catch {
        // not yet
      }
    }
    await sleep(5);
  }
  throw new Error('did not become healthy in time');
}

/** Starts a server, measures time to a healthy answer and idle RSS, stops it. */
async function measure(cmd, argv, healthUrl, env = {}) {
  const t0 = process.hrtime.bigint();
  const child = spawn(cmd, argv, {
    cwd: root,
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, ...env },
  });
  try {
    await waitHealthy(healthUrl, 30_000);
    const startMs = Number(process.hrtime.bigint() - t0) / 1e6;
    await sleep(IDLE_SECONDS * 1000);
    const rss = treeRss(child.pid);
    return { startMs, rss };
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
}

function yunhaiRun(dataDir) {
  return measure(process.execPath, ['bin/yunhai.js', 'up', '--data-dir', dataDir, '--port', '0'], () => {
    try {
      return JSON.parse(readFileSync(join(dataDir, 'endpoints.json'), 'utf8')).api + '/healthz';
    } catch {
      return undefined;
    }
  });
}

const BASELINE = `
const app = require('fastify')();
app.get('/healthz', async () => ({ status: 'ok' }));
app.listen({ host: '127.0.0.1', port: 0 }).then(() => {
  require('fs').writeFileSync(process.env.PORT_FILE, String(app.server.address().port));
});`;

function baselineRun(dir) {
  const portFile = join(dir, 'port');
  return measure(
    process.execPath,
    ['-e', BASELINE],
    () => {
      try {
        return `http://127.0.0.1:${readFileSync(portFile, 'utf8')}/healthz`;
      } catch {
        return undefined;
      }
    },
    { PORT_FILE: portFile },
  );
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const results = { first: [], restart: [], baseline: [] };
for (let i = 0; i < RUNS; i++) {
  const dir = mkdtempSync(join(tmpdir(), 'yunhai-bench-'));
  try {
    results.first.push(await yunhaiRun(join(dir, 'data'))); // fresh data dir: migrations + bootstrap
    results.restart.push(await yunhaiRun(join(dir, 'data'))); // same data dir again
    results.baseline.push(await baselineRun(dir));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const row = (name, rs) => {
  const s = rs.map((r) => r.startMs);
  const m = rs.map((r) => r.rss / 1024 / 1024);
  return `${name.padEnd(34)} ${median(s).toFixed(0).padStart(8)} ms  (min ${Math.min(...s).toFixed(0)}, max ${Math.max(...s).toFixed(0)})   ${median(m).toFixed(1).padStart(7)} MB  (max ${Math.max(...m).toFixed(1)})`;
};
console.log(
  `bench/footprint: ${RUNS} runs each, idle RSS read after ${IDLE_SECONDS} s idle; Node ${process.version}`,
);
console.log(
  `${'process'.padEnd(34)} ${'start-up (median)'.padStart(20)}                  ${'idle RSS (median)'}`,
);
console.log(row('yunhai up (fresh data dir)', results.first));
console.log(row('yunhai up (restart, same data)', results.restart));
console.log(row('baseline: bare Fastify /healthz', results.baseline));
const worstStart = Math.max(
  median(results.first.map((r) => r.startMs)),
  median(results.restart.map((r) => r.startMs)),
);
const worstRss =
  Math.max(...results.first.map((r) => r.rss), ...results.restart.map((r) => r.rss)) / 1024 / 1024;
console.log(
  `targets: start-up <= 3000 ms -> ${worstStart.toFixed(0)} ms ${worstStart <= 3000 ? 'OK' : 'MISSED'}; idle RSS <= 200 MB -> ${worstRss.toFixed(1)} MB ${worstRss <= 200 ? 'OK' : 'MISSED'}`,
);
