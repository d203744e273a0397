// Shared by the floor servers (bench/s3-floor-server.js, bench/sqs-floor-server.js) and the benches
// that start them.
import { spawn } from 'node:child_process';
import { fdatasync } from 'node:fs';
import { join } from 'node:path';
import { root } from './common.js';

/**
 * fdatasync() of the WAL behind group commits: one at a time, each covering every commit made
 * before it started. `after(fn)` runs `fn` once a sync that starts after this call has ended;
 * call `kick()` once the group's callbacks are queued.
 */
export function walSyncer(fd) {
  let syncing = false;
  let waiting = [];
  const kick = () => {
    if (syncing || waiting.length === 0) return;
    syncing = true;
    const covered = waiting;
    waiting = [];
    fdatasync(fd, (err) => {
      if (err) throw err;
      syncing = false;
      for (const fn of covered) fn();
      kick();
    });
  };
  return { after: (fn) => waiting.push(fn), kick };
}

/**
 * Starts `bench/<script>` with `args` and resolves once it printed `ready`; `stop()` ends it and
 * resolves when it has exited.
 */
export async function startFloor(script, args) {
  const child = spawn(process.execPath, [join(root, 'bench', script), ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (d) => {
    out += d;
  });
  while (!out.includes('ready')) {
    if (child.exitCode !== null) throw new Error(`${script} exited:\n${out}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const stop = () => {
    child.kill('SIGTERM');
    return new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
  };
  return { pid: child.pid, child, stop };
}
