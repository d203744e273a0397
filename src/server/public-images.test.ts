import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qemuAvailable } from '../agent/drivers/qemu/test-guest.js';
import { apiRequest } from '../test-support/api.js';
import { seedComputeFixture } from '../test-support/compute-fixture.js';
import { startTestControlPlane, type TestControlPlane } from '../test-support/control-plane.js';

// Building the tiny image needs the Debian kernel packages QEMU hosts have (see tiny.ts).
describe.skipIf(!qemuAvailable)('POST /images/tiny', () => {
  let cp: TestControlPlane;
  let admin: string;
  let owner: string;
  beforeAll(async () => {
    cp = await startTestControlPlane();
    ({ admin, owner } = await seedComputeFixture(cp));
  });
  afterAll(async () => {
    await cp?.stop();
  });

  it('builds the public tiny image for an admin (once), and is refused to tenants', async () => {
    const api = cp.endpoints.api;
    expect((await apiRequest(api, owner, 'POST', '/api/v1/images/tiny')).status).toBe(403);
    const tinyOf = async () =>
      (
        (await apiRequest(api, admin, 'GET', '/api/v1/images?limit=100')).json.items as {
          name: string;
          status: string;
          id: string;
        }[]
      ).find((i) => i.name === 'tiny');
    const existing = await tinyOf();
    const first = await apiRequest(api, admin, 'POST', '/api/v1/images/tiny');
    expect(first.status).toBe(202);
    expect(first.json.status).toBe(existing?.status === 'available' ? 'ready' : 'building');
    const end = Date.now() + 240_000;
    while ((await tinyOf())?.status !== 'available') {
      if (Date.now() > end) throw new Error('the tiny image was not published');
      await new Promise((r) => setTimeout(r, 250));
    }
    const again = await apiRequest(api, admin, 'POST', '/api/v1/images/tiny');
    expect(again.json).toEqual({ status: 'ready', imageId: (await tinyOf())!.id });
  }, 300_000);
});
