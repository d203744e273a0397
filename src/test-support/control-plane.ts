import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ControlPlane, type ControlPlaneConfig, startControlPlane } from '../server/control-plane.js';
import type { RootCredentials } from '../services/iam/service.js';
import { createTestDatabase } from './pg.js';

export interface TestControlPlane extends ControlPlane {
  dataDir: string;
  root: RootCredentials;
  /** Closes the control plane and removes its data dir (and test database). */
  stop(): Promise<void>;
}

/**
 * A real control plane on free loopback ports with a fresh data dir, for tests.
 * `dialect: 'postgres'` uses a new database on the test PostgreSQL (YUNHAI_TEST_PG_URL).
 */
export async function startTestControlPlane(
  opts: { dialect?: 'sqlite' | 'postgres'; env?: NodeJS.ProcessEnv } & Pick<
    ControlPlaneConfig,
    'localAgent' | 'hostGraceMs' | 'meterIntervalMs' | 'bootTimeoutMs' | 's3'
  > = {},
): Promise<TestControlPlane> {
  const dataDir = mkdtempSync(join(tmpdir(), 'yunhai-test-'));
  const pg = opts.dialect === 'postgres' ? await createTestDatabase() : undefined;
  const cp = await startControlPlane({
    dataDir,
    database: pg?.url,
    host: '127.0.0.1',
    port: 0,
    logLevel: process.env.YUNHAI_TEST_LOG ?? 'silent',
    env: { YUNHAI_ROOT_PASSWORD: 'root-password-1', ...opts.env },
    localAgent: opts.localAgent,
    hostGraceMs: opts.hostGraceMs,
    meterIntervalMs: opts.meterIntervalMs,
    bootTimeoutMs: opts.bootTimeoutMs,
    s3: opts.s3,
  });
  if (!cp.rootCredentials) throw new Error('expected a fresh bootstrap');
  return {
    ...cp,
    dataDir,
    root: cp.rootCredentials,
    async stop() {
      await cp.close();
      await pg?.drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
