import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Agent, startAgent } from '../../agent/agent.js';
import { createFakeDriver } from '../../agent/drivers/fake/fake-driver.js';
import { apiRequest } from '../../test-support/api.js';
import { seedComputeFixture } from '../../test-support/compute-fixture.js';
import { startTestControlPlane, type TestControlPlane } from '../../test-support/control-plane.js';

/**
 * GET /availability-zones through the public API: two fake-driver hosts, one moved to another
 * zone, an instance placed there; host counts, capacity and allocation per zone; admins only;
 * strict query — on each SQL dialect (zones.sqlite.test.ts, zones.postgres.test.ts).
 */
export function runZonesSuite(dialect: 'sqlite' | 'postgres') {
  describe(`availability zones API on ${dialect}`, () => {
    let cp: TestControlPlane;
    let api: string;
    let admin: string;
    let owner: string;
    let agent: Agent | undefined;
    let dir: string;
    const caps = { vcpus: 8, memoryMiB: 4096, diskGiB: 100 };
    const call = (method: string, path: string, token: string, body?: unknown) =>
      apiRequest(api, token, method, path, body);

    beforeAll(async () => {
      cp = await startTestControlPlane({
        dialect,
        localAgent: { driver: createFakeDriver({ capabilities: caps }), name: 'h1', heartbeatMs: 200 },
      });
      api = cp.endpoints.api;
      await cp.agent();
      ({ admin, owner } = await seedComputeFixture(cp));
      const token = (await call('POST', '/api/v1/hosts/registration-token', admin)).json.token as string;
      dir = mkdtempSync(join(tmpdir(), 'yh-zones-'));
      agent = await startAgent({
        controlPlane: api,
        registrationToken: token,
        dataDir: dir,
        name: 'h2',
        driver: createFakeDriver({ capabilities: caps }),
        heartbeatMs: 200,
        pollWaitSeconds: 1,
      });
    });
    afterAll(async () => {
      await agent?.stop();
      await cp?.stop();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('lists zones with host counts, capacity and the allocation of live instances', async () => {
      const one = await call('GET', '/api/v1/availability-zones', admin);
      expect(one.status).toBe(200);
      expect(one.json.items).toEqual([
        {
          name: 'default',
          hosts: 2,
          hostsUp: 2,
          hostsEnabled: 2,
          hostsInMaintenance: 0,
          hostNames: ['h1', 'h2'],
          capacity: { vcpus: 16, memoryMiB: 8192, diskGiB: 200 },
          allocated: { instances: 0, vcpus: 0, memoryMiB: 0, diskGiB: 0 },
        },
      ]);
      expect(
        (await call('PATCH', '/api/v1/hosts/h2', admin, { zone: 'az-b', maintenance: true })).status,
      ).toBe(200);
      expect((await call('PATCH', '/api/v1/hosts/h2', admin, { maintenance: false })).status).toBe(200);
      const launched = await call('POST', '/api/v1/instances', owner, {
        name: 'zoned',
        image: 'tiny',
        flavor: 'tiny.small',
        zone: 'az-b',
      });
      expect(launched.status).toBe(202);
      const size = launched.json as { vcpus: number; memoryMiB: number; diskGiB: number };
      expect(size.vcpus).toBeGreaterThan(0);
      const two = (await call('GET', '/api/v1/availability-zones', admin)).json.items;
      expect(two.map((z: { name: string }) => z.name)).toEqual(['az-b', 'default']);
      expect(two[0]).toMatchObject({
        hosts: 1,
        hostNames: ['h2'],
        capacity: { vcpus: 8, memoryMiB: 4096, diskGiB: 100 },
        allocated: { instances: 1, vcpus: size.vcpus, memoryMiB: size.memoryMiB, diskGiB: size.diskGiB },
      });
      expect(two[1]).toMatchObject({ hosts: 1, hostNames: ['h1'], allocated: { instances: 0 } });
      // One zone by name; a deleted instance no longer counts.
      const only = await call('GET', '/api/v1/availability-zones?zone=az-b', admin);
      expect(only.json.items.map((z: { name: string }) => z.name)).toEqual(['az-b']);
      expect((await call('DELETE', `/api/v1/instances/${launched.json.id}`, owner)).status).toBeLessThan(300);
      const end = Date.now() + 15_000;
      for (;;) {
        const z = (await call('GET', '/api/v1/availability-zones?zone=az-b', admin)).json.items[0];
        if (z.allocated.instances === 0) break;
        if (Date.now() > end) throw new Error('the deleted instance still counts');
        await new Promise((r) => setTimeout(r, 100));
      }
    });

    it('is for platform admins only and refuses malformed queries', async () => {
      const denied = await call('GET', '/api/v1/availability-zones', owner);
      expect(denied.status).toBe(403);
      expect(denied.json.error.code).toBe('AccessDenied');
      const bad = await call('GET', '/api/v1/availability-zones?zone=..%2Fx', admin);
      expect(bad.status).toBe(400);
      expect(bad.json.error.code).toBe('ValidationError');
      const unknown = await call('GET', '/api/v1/availability-zones?region=x', admin);
      expect(unknown.status).toBe(400);
      expect(unknown.json.error.code).toBe('UnknownField');
      const anon = await fetch(`${api}/api/v1/availability-zones`);
      expect(anon.status).toBe(401);
    });
  });
}
