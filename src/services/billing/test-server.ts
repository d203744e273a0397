/**
 * A control plane as its own process for billing's crash tests: what `yunhai up --driver fake`
 * starts (the control plane with an in-process agent on the fake driver, whose VMs survive the
 * process in a state file), plus the two knobs the CLI does not expose: short metering and rating
 * intervals, and a pause inside the rating transaction that a test uses to SIGKILL the process
 * while the rater is rating. Usage: `node dist/services/billing/test-server.js '<json config>'`;
 * prints `Ready` once every listener is up (endpoints in `<dataDir>/endpoints.json`), stops cleanly
 * on SIGTERM.
 */
import { existsSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { createFakeDriver } from '../../agent/drivers/fake/fake-driver.js';
import { startControlPlane } from '../../server/control-plane.js';

const configSchema = z.strictObject({
  dataDir: z.string().min(1),
  /** postgres:// URL; SQLite in the data dir when absent. */
  database: z.string().optional(),
  meterIntervalMs: z.number().int().min(50).default(250),
  rateIntervalMs: z.number().int().min(50).default(1000),
  policyIntervalMs: z.number().int().min(50).default(30_000),
  /**
   * While this file exists, the next rating transaction that has written its charge lines writes
   * `pausedFile` and blocks (the event loop included) until the process is killed.
   */
  pauseArmFile: z.string().optional(),
  pausedFile: z.string().optional(),
});

const cfg = configSchema.parse(JSON.parse(process.argv[2] ?? '{}'));

function pauseIfArmed(batch: { rows: number }) {
  if (!cfg.pauseArmFile || !cfg.pausedFile || !existsSync(cfg.pauseArmFile)) return;
  // Written whole, then renamed: the test reads it as soon as it exists.
  writeFileSync(
    `${cfg.pausedFile}.tmp`,
    JSON.stringify({ rows: batch.rows, at: Date.now(), pid: process.pid }),
  );
  renameSync(`${cfg.pausedFile}.tmp`, cfg.pausedFile);
  // Blocks this thread with the transaction open: nothing commits, nothing else runs.
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 120_000);
  throw new Error('rating pause ended without a kill');
}

const driver = createFakeDriver({ stateFile: join(cfg.dataDir, 'fake-driver.json') });
const cp = await startControlPlane({
  dataDir: cfg.dataDir,
  database: cfg.database,
  host: '127.0.0.1',
  port: 0,
  logLevel: 'warn',
  logFile: join(cfg.dataDir, 'logs', 'yunhai.log'),
  localAgent: { driver, heartbeatMs: 500 },
  meterIntervalMs: cfg.meterIntervalMs,
  billing: {
    rateIntervalMs: cfg.rateIntervalMs,
    policyIntervalMs: cfg.policyIntervalMs,
    beforeRatingCommit: pauseIfArmed,
  },
});
await cp.agent();
process.stdout.write('Ready\n');
const stop = () => {
  cp.close().then(
    () => process.exit(0),
    (e) => {
      process.stderr.write(`shutdown error: ${String(e)}\n`);
      process.exit(1);
    },
  );
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
