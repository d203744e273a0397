import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createQemuDriver } from '../agent/drivers/qemu/qemu-driver.js';
import { ensurePublicTinyImage } from '../server/public-images.js';
import { loginToken } from './api.js';
import { startTestControlPlane, type TestControlPlane } from './control-plane.js';

/**
 * A control plane whose in-process agent runs real VMs on QEMU (TCG) in a temp dir, with the
 * public `tiny` image ready and the root admin signed in. `stop()` also removes the VM dir.
 */
export async function startQemuTestControlPlane(opts: {
  stopTimeoutMs: number;
}): Promise<TestControlPlane & { token: string; vmDir: string }> {
  const vmDir = mkdtempSync(join(tmpdir(), 'yunhai-vm-'));
  const cp = await startTestControlPlane({
    localAgent: {
      driver: createQemuDriver({ dataDir: vmDir, accelerator: 'tcg' }),
      heartbeatMs: 1000,
      stopTimeoutMs: opts.stopTimeoutMs,
    },
  });
  await cp.agent();
  await ensurePublicTinyImage({ iam: cp.iam, images: cp.images });
  const token = await loginToken(cp.endpoints.api, 'admin', 'root-password-1');
  return {
    ...cp,
    token,
    vmDir,
    async stop() {
      await cp.stop();
      rmSync(vmDir, { recursive: true, force: true });
    },
  };
}
