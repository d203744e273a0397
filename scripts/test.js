#!/usr/bin/env node
// Test runner used by `npm test`: `node scripts/test.js [vitest args...]`.
//
// 1. Unless YUNHAI_TEST_PG_URL is already set, starts a throwaway PostgreSQL
//    cluster (temp dir, free port on 127.0.0.1, trust auth, fsync=off) and
//    passes its URL to vitest as YUNHAI_TEST_PG_URL.
// 2. Runs `vitest run` with the default reporter plus the JSON reporter
//    (.test-results/vitest.json), streaming its output.
// 3. Always stops PostgreSQL and removes the temp dir (also on SIGINT/SIGTERM).
// 4. Prints `N passed, N failed[, N skipped]` as the very last line and exits
//    non-zero when anything failed.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const RESULTS_DIR = path.join(ROOT, '.test-results');
const JSON_REPORT = path.join(RESULTS_DIR, 'vitest.json');
const VITEST_BIN = path.join(ROOT, 'node_modules', '.bin', 'vitest');
const PG_START_TIMEOUT_S = 60;
const SIGNAL_EXIT = { SIGINT: 130, SIGTERM: 143 };

const isCI = ['true', '1'].includes(String(process.env.CI ?? '').toLowerCase());
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** @type {null | { binDir: string; tmpDir: string; dataDir: string; asPostgres: boolean }} */
let pg = null;
/** @type {import('node:child_process').ChildProcess | null} */
let vitest = null;
/** @type {NodeJS.Signals | null} */
let interrupted = null;
let cleanedUp = false;
let startingPg = false;

function log(msg) {
  process.stderr.write(`[test] ${msg}\n`);
}

function printSummaryAndExit(passed, failed, skipped, code) {
  let line = `${passed} passed, ${failed} failed`;
  if (skipped > 0) line += `, ${skipped} skipped`;
  process.stdout.write(`${line}\n`);
  process.exit(code);
}

// ---------------------------------------------------------------------------
// PostgreSQL
// ---------------------------------------------------------------------------

function findPgBinDir() {
  const hasTools = (dir) => ['initdb', 'pg_ctl', 'postgres'].every((b) => fs.existsSync(path.join(dir, b)));
  const base = '/usr/lib/postgresql';
  let versions = [];
  try {
    versions = fs.readdirSync(base).filter((v) => /^\d+(\.\d+)?$/.test(v));
  } catch {
    // not a Debian-style install
  }
  versions.sort((a, b) => Number.parseFloat(b) - Number.parseFloat(a));
  for (const v of versions) {
    const dir = path.join(base, v, 'bin');
    if (hasTools(dir)) return dir;
  }
  // Fallback for non-Debian machines (e.g. Homebrew): initdb on PATH.
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir && hasTools(dir)) return dir;
  }
  return null;
}

/** Environment for PostgreSQL tools: no PG* variables leaking in from the caller. */
function pgEnv() {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('PG') && v !== undefined) env[k] = v;
  }
  env.LC_ALL = 'C';
  return env;
}

/** Command + args, wrapped in `runuser -u postgres --` when we are root (PostgreSQL refuses root). */
function pgCommand(bin, args) {
  const exe = path.join(pg.binDir, bin);
  return pg.asPostgres ? ['runuser', ['-u', 'postgres', '--', exe, ...args]] : [exe, args];
}

/** Run a PostgreSQL tool asynchronously, detached from our terminal's process group. */
function runPgTool(bin, args) {
  const [cmd, argv] = pgCommand(bin, args);
  return new Promise((resolve) => {
    const child = spawn(cmd, argv, {
      cwd: pg.tmpDir,
      env: pgEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // a Ctrl-C in the terminal must not hit postgres before we stop it ourselves
    });
    let output = '';
    child.stdout.on('data', (d) => {
      output += d;
    });
    child.stderr.on('data', (d) => {
      output += d;
    });
    child.on('error', (err) => resolve({ code: -1, output: `${output}${err.message}\n` }));
    child.on('close', (code) => resolve({ code: code ?? -1, output }));
  });
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = /** @type {net.AddressInfo} */ (srv.address());
      srv.close(() => resolve(port));
    });
  });
}

function idOf(flag, user) {
  const r = spawnSync('id', [flag, user], { encoding: 'utf8' });
  if (r.status !== 0) return null;
  return Number.parseInt(r.stdout.trim(), 10);
}

function tail(file, lines = 40) {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Starts a temporary cluster; returns its URL. Throws with a helpful message on failure. */
async function startPostgres(binDir) {
  const asPostgres = isRoot;
  let uid = null;
  let gid = null;
  if (asPostgres) {
    uid = idOf('-u', 'postgres');
    gid = idOf('-g', 'postgres');
    if (uid === null || gid === null) {
      throw new Error('running as root but there is no `postgres` user to run PostgreSQL as');
    }
  }
  const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'yunhai-pg-'));
  pg = { binDir, tmpDir, dataDir: path.join(tmpDir, 'data'), asPostgres };
  if (asPostgres) fs.chownSync(tmpDir, uid, gid);

  const init = await runPgTool('initdb', [
    '-D',
    pg.dataDir,
    '-U',
    'postgres',
    '-A',
    'trust',
    '-E',
    'UTF8',
    '--locale=C',
    '--no-sync',
  ]);
  if (init.code !== 0) throw new Error(`initdb failed (exit ${init.code}):\n${init.output}`);

  const logFile = path.join(tmpDir, 'postgres.log');
  // A freshly picked free port can be taken by someone else before postgres binds it: retry.
  for (let attempt = 1; attempt <= 3; attempt++) {
    const port = await freePort();
    const conf = [
      '',
      '# --- yunhai test cluster (scripts/test.js) ---',
      `port = ${port}`,
      "listen_addresses = '127.0.0.1'",
      `unix_socket_directories = '${tmpDir.replaceAll("'", "''")}'`,
      'fsync = off',
      'synchronous_commit = off',
      'full_page_writes = off',
      'max_connections = 200',
      '',
    ].join('\n');
    fs.appendFileSync(path.join(pg.dataDir, 'postgresql.conf'), conf);
    const start = await runPgTool('pg_ctl', [
      '-D',
      pg.dataDir,
      '-l',
      logFile,
      '-w',
      '-t',
      String(PG_START_TIMEOUT_S),
      'start',
    ]);
    if (start.code === 0) return `postgres://postgres@127.0.0.1:${port}/postgres`;
    const logText = tail(logFile);
    if (attempt < 3 && /could not bind|Address already in use/i.test(logText)) {
      log(`port ${port} was taken, retrying with another port`);
      continue;
    }
    throw new Error(
      `pg_ctl start failed (exit ${start.code}):\n${start.output}\n--- postgres.log ---\n${logText}`,
    );
  }
  throw new Error('unreachable');
}

function readPostmasterPid() {
  try {
    const pid = Number.parseInt(fs.readFileSync(path.join(pg.dataDir, 'postmaster.pid'), 'utf8'), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/** True if `pid` is running (a zombie waiting to be reaped by init counts as gone). */
function isAlive(pid) {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if (err.code !== 'EPERM') return false;
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return process.platform !== 'linux'; // no /proc: trust kill(0)
  }
}

/** Synchronous so it can run from signal and 'exit' handlers. Idempotent. */
function cleanupSync() {
  if (cleanedUp || !pg) return;
  cleanedUp = true;
  const pid = readPostmasterPid();
  if (pid !== null) {
    const [cmd, argv] = pgCommand('pg_ctl', ['-D', pg.dataDir, '-m', 'immediate', '-w', '-t', '30', 'stop']);
    const r = spawnSync(cmd, argv, { cwd: pg.tmpDir, env: pgEnv(), encoding: 'utf8' });
    if (r.status === 0) {
      log('PostgreSQL stopped');
    } else {
      log(`pg_ctl stop exited ${r.status}: ${(r.stdout ?? '') + (r.stderr ?? '')}`.trimEnd());
      if (isAlive(pid)) {
        log(`killing postmaster ${pid}`);
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
  }
  try {
    fs.rmSync(pg.tmpDir, { recursive: true, force: true });
  } catch (err) {
    log(`could not remove ${pg.tmpDir}: ${err.message}`);
  }
}

// ---------------------------------------------------------------------------
// Signals
// ---------------------------------------------------------------------------

/** Signals the process group of a child spawned with `detached: true`. */
function killGroup(child, sig) {
  if (!child?.pid) return;
  try {
    process.kill(-child.pid, sig);
  } catch {
    // group already gone
  }
}

function onSignal(sig) {
  if (interrupted) {
    // Second signal: stop waiting for anything.
    log(`received ${sig} again, exiting now`);
    killGroup(vitest, 'SIGKILL');
    cleanupSync();
    printSummaryAndExit(0, 1, 0, SIGNAL_EXIT[sig] ?? 1);
  }
  interrupted = sig;
  log(`received ${sig}, stopping`);
  if (vitest && vitest.exitCode === null && vitest.signalCode === null) {
    // Let vitest shut down; the main flow then cleans up and reports.
    killGroup(vitest, sig);
    setTimeout(() => killGroup(vitest, 'SIGKILL'), 10_000).unref();
  } else if (!startingPg) {
    cleanupSync();
    printSummaryAndExit(0, 1, 0, SIGNAL_EXIT[sig] ?? 1);
  }
  // Otherwise PostgreSQL is starting up (bounded by pg_ctl's timeout); the main flow checks
  // `interrupted` once that is done, so we never delete the data dir under a starting server.
}

process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);
process.on('exit', cleanupSync); // last resort (uncaught exceptions, process.exit elsewhere)

// ---------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------

async function main() {
  const env = { ...process.env };

  if (env.YUNHAI_TEST_PG_URL) {
    log('using PostgreSQL from YUNHAI_TEST_PG_URL');
  } else {
    const binDir = findPgBinDir();
    if (!binDir) {
      if (isCI) {
        log('ERROR: PostgreSQL binaries not found (looked in /usr/lib/postgresql/*/bin and PATH).');
        log('ERROR: CI must run the PostgreSQL test suite. Run `bash scripts/deps.sh` first.');
        printSummaryAndExit(0, 1, 0, 1);
      }
      log('WARNING: PostgreSQL binaries not found (/usr/lib/postgresql/*/bin or PATH);');
      log('WARNING: PostgreSQL tests will be SKIPPED. Run `bash scripts/deps.sh` to install PostgreSQL.');
    } else {
      const t0 = Date.now();
      startingPg = true;
      try {
        env.YUNHAI_TEST_PG_URL = await startPostgres(binDir);
      } catch (err) {
        log(`ERROR: could not start temporary PostgreSQL from ${binDir}: ${err.message}`);
        cleanupSync();
        printSummaryAndExit(0, 1, 0, 1);
      } finally {
        startingPg = false;
      }
      if (interrupted) {
        cleanupSync();
        printSummaryAndExit(0, 1, 0, SIGNAL_EXIT[interrupted] ?? 1);
      }
      log(`PostgreSQL started in ${Date.now() - t0} ms: ${env.YUNHAI_TEST_PG_URL} (data in ${pg.tmpDir})`);
    }
  }

  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  fs.rmSync(JSON_REPORT, { force: true });

  const args = [
    'run',
    '--reporter=default',
    '--reporter=json',
    `--outputFile.json=${JSON_REPORT}`,
    ...process.argv.slice(2),
  ];
  const vitestExit = await new Promise((resolve) => {
    // Own process group, so signals (forwarded by onSignal) reach vitest and all its workers,
    // and leftover workers can be killed as a group.
    vitest = spawn(VITEST_BIN, args, { cwd: ROOT, env, stdio: 'inherit', detached: true });
    vitest.on('error', (err) => {
      log(`could not start vitest: ${err.message}`);
      resolve(1);
    });
    vitest.on('exit', (code, signal) =>
      resolve(code ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : 1)),
    );
  });
  killGroup(vitest, 'SIGKILL'); // stray workers (e.g. after a crash or signal) must not outlive us
  vitest = null;

  cleanupSync();

  let report = null;
  try {
    report = JSON.parse(fs.readFileSync(JSON_REPORT, 'utf8'));
  } catch {
    log(`no JSON report at ${path.relative(ROOT, JSON_REPORT)} (vitest exited ${vitestExit})`);
  }
  const signalCode = interrupted ? (SIGNAL_EXIT[interrupted] ?? 1) : 0;
  if (!report) printSummaryAndExit(0, 1, 0, signalCode || 1);

  const passed = report.numPassedTests ?? 0;
  let failed = report.numFailedTests ?? 0;
  const skipped = (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
  if (vitestExit !== 0 && failed === 0) {
    const failedFiles = report.numFailedTestSuites ?? 0;
    log(
      `vitest exited ${vitestExit} although no test case failed` +
        (failedFiles
          ? ` (${failedFiles} test file(s)/suite(s) failed, e.g. an import error)`
          : ' (unhandled errors)') +
        '; see output above',
    );
    // The summary line must not read as a success: each failed file, or the unhandled errors, count as one.
    failed = Math.max(1, failedFiles);
  }
  const code = signalCode || (failed > 0 || vitestExit !== 0 ? 1 : 0);
  printSummaryAndExit(passed, failed, skipped, code);
}

main().catch((err) => {
  log(`ERROR: ${err?.stack ?? err}`);
  cleanupSync();
  printSummaryAndExit(0, 1, 0, 1);
});
