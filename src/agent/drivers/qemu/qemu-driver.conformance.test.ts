import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'vitest';
import { runHypervisorConformance } from '../../hypervisor.case.js';
import { createQemuDriver } from './qemu-driver.js';
import { qemuAvailable, tinyBootSource } from './test-guest.js';

if (qemuAvailable) {
  runHypervisorConformance(
    'qemu',
    async () => {
      const dataDir = await mkdtemp(join(tmpdir(), 'yh-qemu-conf-'));
      return {
        driver: createQemuDriver({ dataDir, accelerator: 'tcg' }),
        cleanup: () => rm(dataDir, { recursive: true, force: true }),
        reopen: async () => createQemuDriver({ dataDir, accelerator: 'tcg' }),
      };
    },
    {
      bootSource: tinyBootSource,
      readyTimeoutMs: 20_000,
      crash: async (driver, id) => {
        const pid = (await driver.status(id))?.pid;
        if (pid) process.kill(pid, 'SIGKILL');
      },
    },
  );
} else {
  describe('hypervisor conformance: qemu', () => {
    it.skip('needs qemu-system-x86_64 and qemu-img', () => {});
  });
}
