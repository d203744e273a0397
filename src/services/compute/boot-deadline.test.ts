import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFakeDriver, type FakeDriver } from '../../agent/drivers/fake/fake-driver.js';
import { startTestControlPlane, type TestControlPlane } from '../../test-support/control-plane.js';

describe('a guest that never boots', () => {
  let cp: TestControlPlane;
  let driver: FakeDriver;
  beforeAll(async () => {
    // The fake guest takes a minute to boot; the platform gives it 1.5 s.
    driver = createFakeDriver({ bootMs: 60_000 });
    cp = await startTestControlPlane({ localAgent: { driver, heartbeatMs: 200 }, bootTimeoutMs: 1500 });
    await cp.agent();
  });
  afterAll(async () => cp?.stop());

  it('ends in error with the reason and the console tail, and its VM is stopped', async () => {
    const ctx = await cp.iam.systemContext();
    const dir = (await import('node:fs')).mkdtempSync(`${(await import('node:os')).tmpdir()}/yh-bd-`);
    (await import('node:fs')).writeFileSync(`${dir}/k`, 'kernel');
    await cp.images.importImage(ctx, {
      name: 'slow',
      visibility: 'public',
      format: 'kernel',
      source: { kernel: `${dir}/k` },
      osType: 'linux',
      osDistro: 'x',
      firmware: 'bios',
    });
    await cp.images.settle();
    const inst = await cp.compute.createInstance(ctx, { name: 'never', image: 'slow', flavor: 'tiny.small' });
    const end = Date.now() + 15_000;
    let i = await cp.compute.getInstance(ctx, inst.id);
    while (i.state !== 'error' && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 100));
      i = await cp.compute.getInstance(ctx, inst.id);
    }
    expect(i.state).toBe('error');
    expect(i.errorReason).toMatch(/did not report ready within 2 s/);
    expect(i.errorReason).toMatch(/YUNHAI-BOOT/);
    const stopEnd = Date.now() + 5000;
    while ((await driver.status(inst.id))?.state === 'running' && Date.now() < stopEnd)
      await new Promise((r) => setTimeout(r, 50));
    expect((await driver.status(inst.id))?.state).toBe('stopped');
  });
});
