import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Agent, startAgent } from '../../agent/agent.js';
import { createFakeDriver, type FakeDriver } from '../../agent/drivers/fake/fake-driver.js';
import { apiRequest } from '../../test-support/api.js';
import { seedComputeFixture } from '../../test-support/compute-fixture.js';
import { startTestControlPlane, type TestControlPlane } from '../../test-support/control-plane.js';

/**
 * Scheduling across a fleet through the public API: four agents on the fake driver (8 vCPUs,
 * 4 GiB each), zones, maintenance, tenant-isolation aggregates, server groups, the
 * explanation when nothing fits (in the API and the audit log), and concurrent creates that
 * never over-commit a host — on each SQL dialect.
 */
export function runFleetSuite(dialect: 'sqlite' | 'postgres') {
  describe(`fleet scheduling on ${dialect} (fake driver, 4 hosts)`, () => {
    let cp: TestControlPlane;
    let api: string;
    let admin: string;
    let owner: string;
    let other: string;
    const agents: Record<string, Agent> = {};
    const drivers: Record<string, FakeDriver> = {};
    const dirs: string[] = [];
    const hostIds: Record<string, string> = {};

    const call = (method: string, path: string, token: string, body?: unknown) =>
      apiRequest(api, token, method, path, body);
    const launch = (token: string, body: Record<string, unknown>) =>
      call('POST', '/api/v1/instances', token, { image: 'tiny', flavor: 'tiny.small', ...body });
    const purge = async () => {
      for (const token of [owner, other]) {
        const items = (await call('GET', '/api/v1/instances?limit=500', token)).json.items as {
          id: string;
        }[];
        for (const i of items) await call('DELETE', `/api/v1/instances/${i.id}`, token);
      }
      // Clean-up between tests: agents confirm each delete; a loaded CI machine (PostgreSQL, 40
      // instances, four agents) once needed more than 10 s.
      const end = Date.now() + 45_000;
      while ((await call('GET', '/api/v1/instances?limit=1', admin)).json.items.length > 0) {
        if (Date.now() > end) throw new Error('instances were not deleted');
        await new Promise((r) => setTimeout(r, 50));
      }
    };

    beforeAll(async () => {
      const caps = { vcpus: 8, memoryMiB: 4096, diskGiB: 100 };
      cp = await startTestControlPlane({
        dialect,
        localAgent: { driver: createFakeDriver({ capabilities: caps }), name: 'h1', heartbeatMs: 200 },
        hostGraceMs: 2000,
      });
      api = cp.endpoints.api;
      await cp.agent();
      ({ admin, owner, other } = await seedComputeFixture(cp));
      const token = (await call('POST', '/api/v1/hosts/registration-token', admin)).json.token as string;
      for (const name of ['h2', 'h3', 'h4']) {
        const dir = mkdtempSync(join(tmpdir(), `yh-${name}-`));
        dirs.push(dir);
        drivers[name] = createFakeDriver({ capabilities: caps });
        agents[name] = await startAgent({
          controlPlane: api,
          registrationToken: token,
          dataDir: dir,
          name,
          driver: drivers[name],
          heartbeatMs: 200,
          pollWaitSeconds: 1,
        });
      }
      for (const h of (await call('GET', '/api/v1/hosts', admin)).json.items) hostIds[h.name] = h.id;
      expect(Object.keys(hostIds).sort()).toEqual(['h1', 'h2', 'h3', 'h4']);
    });
    afterAll(async () => {
      for (const a of Object.values(agents)) await a.stop();
      await cp?.stop();
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    });

    it('places into the requested zone and skips hosts in maintenance', async () => {
      expect((await call('PATCH', `/api/v1/hosts/h2`, admin, { zone: 'az2' })).json).toMatchObject({
        zone: 'az2',
        maintenance: false,
      });
      const r = await launch(owner, { name: 'z1', zone: 'az2' });
      expect(r.status).toBe(202);
      expect(r.json).toMatchObject({ hostId: hostIds.h2, zone: 'az2' });

      await call('PATCH', `/api/v1/hosts/h2`, admin, { maintenance: true });
      const none = await launch(owner, { name: 'z2', zone: 'az2' });
      expect(none.status).toBe(409);
      expect(none.json.error.message).toContain('state: 1 host host is in maintenance');
      expect(none.json.error.message).toContain('zone: 3 hosts not in zone az2');
      await call('PATCH', `/api/v1/hosts/h2`, admin, { maintenance: false, zone: 'default' });
      await purge();
    });

    it('never places on a host whose state changed since the scheduler last read the fleet', async () => {
      // The first create leaves a compiled snapshot kept for the next creates; then every host but
      // h4 goes into maintenance. The kept snapshot is stale, so its pick fails the re-check on the
      // host's fresh row, and a fresh snapshot decides.
      expect((await launch(owner, { name: 'stale-0' })).status).toBe(202);
      for (const h of ['h1', 'h2', 'h3'])
        await call('PATCH', `/api/v1/hosts/${h}`, admin, { maintenance: true });
      for (let n = 1; n <= 3; n++) {
        const r = await launch(owner, { name: `stale-${n}` });
        expect(r.status).toBe(202);
        expect(r.json.hostId).toBe(hostIds.h4);
      }
      for (const h of ['h1', 'h2', 'h3'])
        await call('PATCH', `/api/v1/hosts/${h}`, admin, { maintenance: false });
      await purge();
    });

    it('keeps an isolation aggregate for its tenants', async () => {
      const acme = (await call('GET', '/api/v1/tenants/acme', admin)).json.id as string;
      const agg = await call('POST', '/api/v1/aggregates', admin, {
        name: 'gov',
        metadata: { filter_tenant_id: acme, ssd: 'true' },
      });
      expect(agg.status).toBe(201);
      expect((await call('POST', '/api/v1/aggregates/gov/hosts', admin, { host: 'h3' })).json.hosts).toEqual([
        'h3',
      ]);
      expect((await call('GET', '/api/v1/hosts/h3', admin)).json.aggregates).toEqual(['gov']);

      // globex fills every host but h3 (two 2 GiB instances each); acme may use h3.
      const placed: string[] = [];
      for (let n = 0; n < 6; n++) {
        const r = await launch(other, { name: `g${n}`, flavor: 'm1.small' });
        expect(r.status).toBe(202);
        placed.push(r.json.hostId);
      }
      expect(placed).not.toContain(hostIds.h3);
      const refused = await launch(other, { name: 'g-last', flavor: 'm1.small' });
      expect(refused.status).toBe(409);
      expect(refused.json.error.message).toContain('isolation: 1 host reserved for other tenants');
      expect((await launch(owner, { name: 'a-gov', flavor: 'm1.small' })).json.hostId).toBe(hostIds.h3);

      await call('DELETE', '/api/v1/aggregates/gov/hosts/h3', admin);
      expect((await call('DELETE', '/api/v1/aggregates/gov', admin)).status).toBe(204);
      expect((await call('POST', '/api/v1/aggregates', owner, { name: 'mine' })).status).toBe(403);
      await purge();
    });

    it('spreads an anti-affinity group, keeps an affinity group together, and explains refusals', async () => {
      expect(
        (await call('POST', '/api/v1/server-groups', owner, { name: 'web', policy: 'anti-affinity' })).status,
      ).toBe(201);
      const hosts = new Set<string>();
      for (let n = 0; n < 4; n++) {
        const r = await launch(owner, { name: `web${n}`, serverGroup: 'web' });
        expect(r.status).toBe(202);
        expect(r.json.serverGroupId).toMatch(/^sg-/);
        hosts.add(r.json.hostId);
      }
      expect(hosts.size).toBe(4);
      const fifth = await launch(owner, { name: 'web4', serverGroup: 'web' });
      expect(fifth.status).toBe(409);
      expect(fifth.json.error.message).toBe(
        'No host can take this instance (affinity: 4 hosts already run a member of group web).',
      );
      const audit = await call('GET', '/api/v1/audit?action=compute:RunInstance&outcome=failure', admin);
      expect(JSON.stringify(audit.json.items[0])).toContain(
        'affinity: 4 hosts already run a member of group web',
      );
      expect((await call('GET', '/api/v1/server-groups/web', owner)).json.members).toHaveLength(4);
      expect((await call('DELETE', '/api/v1/server-groups/web', owner)).status).toBe(409);
      expect((await call('GET', '/api/v1/server-groups/web', other)).status).toBe(404);

      await call('POST', '/api/v1/server-groups', owner, { name: 'db', policy: 'affinity' });
      const first = await launch(owner, { name: 'db0', serverGroup: 'db' });
      const second = await launch(owner, { name: 'db1', serverGroup: 'db' });
      expect(second.json.hostId).toBe(first.json.hostId);
      await purge();
      expect((await call('DELETE', '/api/v1/server-groups/web', owner)).status).toBe(204);
    });

    it('never over-commits a host under concurrent creates', async () => {
      // RAM binds: 8 tiny.medium (512 MiB) per 4 GiB host, 32 in the fleet; quotas out of the way.
      await call('PUT', '/api/v1/tenants/acme/quotas', admin, {
        instances: 100,
        vcpus: 400,
        memoryMiB: 100_000,
      });
      const results = await Promise.all(
        Array.from({ length: 40 }, (_, n) => launch(owner, { name: `c${n}`, flavor: 'tiny.medium' })),
      );
      const ok = results.filter((r) => r.status === 202);
      expect(ok.length).toBe(32);
      expect(results.filter((r) => r.status !== 202).map((r) => r.json.error.code)).toEqual(
        Array(8).fill('InsufficientCapacity'),
      );
      for (const h of (await call('GET', '/api/v1/hosts', admin)).json.items) {
        expect(h.allocated.memoryMiB).toBeLessThanOrEqual(h.memoryMiB);
        expect(h.allocated.vcpus).toBeLessThanOrEqual(h.vcpus * 4);
      }
      await purge();
    }, 120_000);

    it('rebuilds an HA instance on another host when its host goes down, and fences the old copy', async () => {
      // Pin both instances to h4 with a zone, then let h4's agent vanish.
      await call('PATCH', '/api/v1/hosts/h4', admin, { zone: 'edge' });
      const ha = await launch(owner, { name: 'ha-1', zone: 'edge', ha: true });
      const plain = await launch(owner, { name: 'plain-1', zone: 'edge' });
      expect([ha.json.hostId, plain.json.hostId, ha.json.ha]).toEqual([hostIds.h4, hostIds.h4, true]);
      const waitFor = async (id: string, pred: (i: Record<string, unknown>) => boolean) => {
        const end = Date.now() + 15_000;
        for (;;) {
          const i = (await call('GET', `/api/v1/instances/${id}`, owner)).json;
          if (pred(i)) return i;
          if (Date.now() > end) throw new Error(`timed out: ${JSON.stringify(i)}`);
          await new Promise((r) => setTimeout(r, 100));
        }
      };
      await waitFor(ha.json.id, (i) => i.state === 'running' && i.guestReady === true);
      // The HA instance may leave the zone only if the zone has no other host: give it one.
      await call('PATCH', '/api/v1/hosts/h3', admin, { zone: 'edge' });
      await agents.h4!.stop();

      const moved = await waitFor(
        ha.json.id,
        (i) => i.hostId === hostIds.h3 && i.state === 'running' && i.guestReady === true,
      );
      expect(moved.ha).toBe(true);
      const failed = await waitFor(plain.json.id, (i) => i.state === 'error');
      expect(failed.errorReason).toMatch(/host agent stopped responding/);
      const audit = await call('GET', '/api/v1/audit?action=compute:EvacuateInstance', admin);
      expect(audit.json.items[0]).toMatchObject({ resource: `instance/${ha.json.id}`, outcome: 'success' });

      // h4 comes back: its copy of the HA instance is destroyed, never run twice.
      expect((await drivers.h4!.status(ha.json.id))?.state).toBe('running');
      agents.h4 = await startAgent({
        controlPlane: api,
        registrationToken: (await call('POST', '/api/v1/hosts/registration-token', admin)).json.token,
        dataDir: dirs[2]!,
        name: 'h4',
        driver: drivers.h4!,
        heartbeatMs: 200,
        pollWaitSeconds: 1,
      });
      const end = Date.now() + 10_000;
      while ((await drivers.h4!.status(ha.json.id)) !== null) {
        if (Date.now() > end) throw new Error('the old copy was not destroyed');
        await new Promise((r) => setTimeout(r, 100));
      }
      expect((await drivers.h3!.status(ha.json.id))?.state).toBe('running');
      await call('PATCH', '/api/v1/hosts/h3', admin, { zone: 'default' });
      await call('PATCH', '/api/v1/hosts/h4', admin, { zone: 'default' });
      await purge();
    }, 60_000);

    it('places a flavor with extra specs only on hosts whose aggregates carry them', async () => {
      const f = await call('POST', '/api/v1/flavors', admin, {
        name: 'ssd.small',
        vcpus: 1,
        memoryMiB: 512,
        diskGiB: 1,
        extraSpecs: { disk: 'nvme' },
      });
      expect(f.status, JSON.stringify(f.json)).toBe(201);
      expect(f.json.extraSpecs).toEqual({ disk: 'nvme' });
      const none = await launch(owner, { name: 'nvme-0', flavor: 'ssd.small' });
      expect(none.status).toBe(409);
      expect(none.json.error.message).toContain('metadata: 4 hosts lack disk=nvme');
      await call('POST', '/api/v1/aggregates', admin, { name: 'nvme', metadata: { disk: 'nvme' } });
      await call('POST', '/api/v1/aggregates/nvme/hosts', admin, { host: 'h4' });
      for (let n = 0; n < 2; n++) {
        const r = await launch(owner, { name: `nvme-${n + 1}`, flavor: 'ssd.small' });
        expect(r.status).toBe(202);
        expect(r.json.hostId).toBe(hostIds.h4);
      }
      await purge();
      await call('DELETE', '/api/v1/aggregates/nvme/hosts/h4', admin);
      await call('DELETE', '/api/v1/aggregates/nvme', admin);
    });

    const waitInstance = async (id: string, pred: (i: Record<string, unknown>) => boolean) => {
      const end = Date.now() + 15_000;
      for (;;) {
        const i = (await call('GET', `/api/v1/instances/${id}`, admin)).json;
        if (pred(i)) return i;
        if (Date.now() > end) throw new Error(`timed out: ${JSON.stringify(i)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    const waitMigration = async (id: string) => {
      const end = Date.now() + 15_000;
      for (;;) {
        const m = (await call('GET', `/api/v1/migrations/${id}`, admin)).json;
        if (m.state === 'completed' || m.state === 'failed') return m;
        if (Date.now() > end) throw new Error(`migration did not end: ${JSON.stringify(m)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    const driverOf = (hostId: string) => {
      const name = Object.entries(hostIds).find(([, id]) => id === hostId)![0];
      return name === 'h1' ? undefined : drivers[name];
    };

    it('live-migrates a running instance to a named host, holding its room there while it moves', async () => {
      await call('PATCH', '/api/v1/hosts/h2', admin, { zone: 'mig' });
      const r = await launch(owner, { name: 'mover', zone: 'mig' });
      expect(r.json.hostId).toBe(hostIds.h2);
      await waitInstance(r.json.id, (i) => i.state === 'running' && i.guestReady === true);

      await call('PATCH', '/api/v1/hosts/h3', admin, { zone: 'mig' });
      // Tenants may not move instances.
      expect((await call('POST', `/api/v1/instances/${r.json.id}/migrate`, owner, {})).status).toBe(403);
      // Not to its own host, nor to a host that does not exist.
      expect(
        (await call('POST', `/api/v1/instances/${r.json.id}/migrate`, admin, { host: 'h2' })).status,
      ).toBe(400);
      expect(
        (await call('POST', `/api/v1/instances/${r.json.id}/migrate`, admin, { host: 'nope' })).status,
      ).toBe(404);
      // The scheduler's rules hold for a named host too, with the explanation.
      await call('PATCH', '/api/v1/hosts/h3', admin, { maintenance: true });
      const refused = await call('POST', `/api/v1/instances/${r.json.id}/migrate`, admin, { host: 'h3' });
      expect(refused.status).toBe(409);
      expect(refused.json.error.message).toContain('maintenance');
      await call('PATCH', '/api/v1/hosts/h3', admin, { maintenance: false });

      const m = await call('POST', `/api/v1/instances/${r.json.id}/migrate`, admin, { host: 'h3' });
      expect(m.status, JSON.stringify(m.json)).toBe(202);
      expect(m.json).toMatchObject({ instanceId: r.json.id, sourceHost: hostIds.h2, targetHost: hostIds.h3 });
      // While it moves: no second migration, no power actions.
      const again = await call('POST', `/api/v1/instances/${r.json.id}/migrate`, admin, {});
      if (again.status !== 409)
        expect((await call('GET', `/api/v1/migrations/${m.json.id}`, admin)).json.state).toBe('completed');
      const done = await waitMigration(m.json.id);
      expect(done).toMatchObject({ state: 'completed', error: null });
      expect(done.transferredBytes).toBeGreaterThan(0);
      expect(done.downtimeMs).toBeGreaterThanOrEqual(0);
      const after = await waitInstance(r.json.id, (i) => i.hostId === hostIds.h3);
      expect(after).toMatchObject({ state: 'running', guestReady: true });
      // One copy, on the target; the source's went.
      expect((await drivers.h3!.status(r.json.id))?.state).toBe('running');
      const end = Date.now() + 10_000;
      while ((await drivers.h2!.status(r.json.id)) !== null) {
        if (Date.now() > end) throw new Error('the source copy was not destroyed');
        await new Promise((res) => setTimeout(res, 50));
      }
      // The instance still answers to its owner: stop works on the new host.
      expect((await call('POST', `/api/v1/instances/${r.json.id}/stop`, owner)).status).toBe(202);
      await waitInstance(r.json.id, (i) => i.state === 'stopped');
      expect((await drivers.h3!.status(r.json.id))?.state).toBe('stopped');

      // Stopped, it moves cold (with its disk) and stays stopped; started, it runs on the new host.
      const cold = await call('POST', `/api/v1/instances/${r.json.id}/migrate`, admin, { host: 'h2' });
      expect(cold.status, JSON.stringify(cold.json)).toBe(202);
      expect(cold.json.kind).toBe('cold');
      expect(await waitMigration(cold.json.id)).toMatchObject({ state: 'completed' });
      expect(await waitInstance(r.json.id, (i) => i.hostId === hostIds.h2)).toMatchObject({
        state: 'stopped',
      });
      expect((await drivers.h2!.status(r.json.id))?.state).toBe('stopped');
      expect((await call('POST', `/api/v1/instances/${r.json.id}/start`, owner)).status).toBe(202);
      await waitInstance(r.json.id, (i) => i.state === 'running' && i.hostId === hostIds.h2);
      expect((await drivers.h2!.status(r.json.id))?.state).toBe('running');
      const gone = Date.now() + 10_000;
      while ((await drivers.h3!.status(r.json.id)) !== null) {
        if (Date.now() > gone) throw new Error('the cold source copy was not destroyed');
        await new Promise((res) => setTimeout(res, 50));
      }

      const listed = await call('GET', `/api/v1/migrations?instance=${r.json.id}`, admin);
      expect(listed.json.items.map((x: { id: string }) => x.id)).toEqual([cold.json.id, m.json.id]);
      const audit = await call('GET', '/api/v1/audit?action=compute:MigrateInstance', admin);
      expect(audit.json.items.length).toBeGreaterThanOrEqual(2);
      await call('PATCH', '/api/v1/hosts/h2', admin, { zone: 'default' });
      await call('PATCH', '/api/v1/hosts/h3', admin, { zone: 'default' });
      await purge();
    }, 60_000);

    it('fails a migration whose target cannot take the guest and keeps it running where it was', async () => {
      const r = await launch(owner, { name: 'stayer' });
      await waitInstance(r.json.id, (i) => i.state === 'running' && i.guestReady === true);
      const source = r.json.hostId as string;
      const target = Object.values(hostIds).find((h) => h !== source && h !== hostIds.h1)!;
      // The target's driver refuses (a fake host that cannot prepare), so the source never moves.
      const d = driverOf(target)!;
      const real = d.prepareIncoming.bind(d);
      d.prepareIncoming = async () => {
        throw new Error('no room for the incoming VM');
      };
      try {
        const m = await call('POST', `/api/v1/instances/${r.json.id}/migrate`, admin, { host: target });
        expect(m.status).toBe(202);
        const done = await waitMigration(m.json.id);
        expect(done.state).toBe('failed');
        expect(done.error).toContain('no room for the incoming VM');
      } finally {
        d.prepareIncoming = real;
      }
      const i = (await call('GET', `/api/v1/instances/${r.json.id}`, admin)).json;
      expect(i).toMatchObject({ hostId: source, state: 'running' });
      // Its room on the target is free again: the placement snapshot no longer holds it.
      const host = (await call('GET', `/api/v1/hosts/${target}`, admin)).json;
      expect(host.allocated.instances).toBe(0);
      await purge();
    }, 30_000);

    it('drains a host by live-migrating its instances away, and evacuates a host that is down', async () => {
      await call('PATCH', '/api/v1/hosts/h2', admin, { zone: 'drain' });
      const a = await launch(owner, { name: 'd1', zone: 'drain' });
      const b = await launch(owner, { name: 'd2', zone: 'drain' });
      for (const x of [a, b])
        await waitInstance(x.json.id, (i) => i.state === 'running' && i.guestReady === true);
      // The instances asked for zone 'drain': another host there takes them.
      await call('PATCH', '/api/v1/hosts/h3', admin, { zone: 'drain' });
      const drained = await call('POST', '/api/v1/hosts/h2/drain', admin);
      expect(drained.status).toBe(202);
      expect(drained.json.results).toHaveLength(2);
      for (const res of drained.json.results) {
        expect(res, JSON.stringify(res)).toMatchObject({ targetHost: hostIds.h3 });
        await waitMigration(res.migrationId);
      }
      for (const x of [a, b])
        await waitInstance(x.json.id, (i) => i.hostId !== hostIds.h2 && i.state === 'running');
      expect((await call('GET', '/api/v1/hosts/h2', admin)).json).toMatchObject({
        maintenance: true,
        allocated: { instances: 0 },
      });
      // Evacuation is for hosts that are down.
      expect((await call('POST', '/api/v1/hosts/h2/evacuate', admin)).status).toBe(409);
      await call('PATCH', '/api/v1/hosts/h2', admin, { maintenance: false, zone: 'default' });
      await call('PATCH', '/api/v1/hosts/h3', admin, { zone: 'default' });
      await purge();
    }, 60_000);

    it('consolidates sparse hosts by live migration, marks emptied hosts for power-off and reports the saving', async () => {
      // One small instance on each of h2..h4 (h1 in maintenance), spread by a soft anti-affinity
      // group (a preference, which consolidation may override).
      await call('PATCH', '/api/v1/hosts/h1', admin, { maintenance: true });
      const g = await call('POST', '/api/v1/server-groups', owner, {
        name: 'spread',
        policy: 'soft-anti-affinity',
      });
      expect(g.status).toBe(201);
      const ids: string[] = [];
      for (let n = 0; n < 3; n++)
        ids.push((await launch(owner, { name: `c-${n}`, serverGroup: 'spread' })).json.id);
      const start = new Set<string>();
      for (const id of ids) start.add((await call('GET', `/api/v1/instances/${id}`, admin)).json.hostId);
      expect(start.size).toBe(3);
      for (const id of ids) await waitInstance(id, (i) => i.state === 'running' && i.guestReady === true);
      await call('PATCH', '/api/v1/hosts/h2', admin, { idleWatts: 150, peakWatts: 400 });
      expect(
        (await call('PATCH', '/api/v1/hosts/h2', admin, { idleWatts: 500, peakWatts: 400 })).status,
      ).toBe(400);

      // Tenants may not; a dry run plans without moving anything.
      expect((await call('POST', '/api/v1/consolidation/run', owner, {})).status).toBe(403);
      const dry = await call('POST', '/api/v1/consolidation/run', admin, { dryRun: true });
      expect(dry.status).toBe(202);
      expect(dry.json).toMatchObject({ status: 'planned', dryRun: true, migrations: [] });
      expect(dry.json.plan.moves).toHaveLength(2);
      expect(dry.json.wattsSaved).toBeGreaterThan(0);

      const run = await call('POST', '/api/v1/consolidation/run', admin, { maxMigrations: 5 });
      expect(run.json.status).toBe('running');
      expect(run.json.migrations).toHaveLength(2);
      const end = Date.now() + 20_000;
      let report = run.json;
      while (report.status !== 'completed') {
        if (Date.now() > end) throw new Error(`consolidation did not finish: ${JSON.stringify(report)}`);
        await new Promise((r) => setTimeout(r, 100));
        report = (await call('GET', `/api/v1/consolidation/reports/${run.json.id}`, admin)).json;
      }
      expect(report.migrationsCompleted).toBe(2);
      expect(report.hostsFreed).toHaveLength(2);
      expect(report.kwhPerDaySaved).toBeGreaterThan(0);
      const hosts = (await call('GET', '/api/v1/hosts', admin)).json.items as Array<{
        id: string;
        allocated: { instances: number };
        maintenance: boolean;
        power: { standby: boolean };
      }>;
      for (const h of report.hostsFreed) {
        const v = hosts.find((x) => x.id === h)!;
        expect(v).toMatchObject({ maintenance: true, power: { standby: true }, allocated: { instances: 0 } });
      }
      const homes = new Set<string>();
      for (const id of ids)
        homes.add((await waitInstance(id, (i) => i.state === 'running')).hostId as string);
      expect(homes.size).toBe(1);
      expect((await call('GET', '/api/v1/consolidation/reports', admin)).json.items[0].id).toBe(run.json.id);

      for (const h of ['h1', 'h2', 'h3', 'h4'])
        await call('PATCH', `/api/v1/hosts/${h}`, admin, { maintenance: false });
      expect((await call('GET', `/api/v1/hosts/${report.hostsFreed[0]}`, admin)).json.power.standby).toBe(
        false,
      );
      await purge();
      await call('DELETE', '/api/v1/server-groups/spread', owner);
    }, 60_000);

    it('plans consolidation moves only onto hosts the scheduler accepts (tenant isolation)', async () => {
      await call('PATCH', '/api/v1/hosts/h1', admin, { maintenance: true });
      const g = await call('POST', '/api/v1/server-groups', owner, {
        name: 'apart',
        policy: 'soft-anti-affinity',
      });
      expect(g.status).toBe(201);
      const ids: string[] = [];
      for (let n = 0; n < 3; n++)
        ids.push((await launch(owner, { name: `iso-${n}`, serverGroup: 'apart' })).json.id);
      for (const id of ids) await waitInstance(id, (i) => i.state === 'running');
      // After placement, h3 and h4 are reserved for globex: acme's instances may leave them, and
      // nothing of acme's may move onto them, so only h2 can receive.
      const globex = (await call('GET', '/api/v1/tenants/globex', admin)).json.id as string;
      expect(
        (
          await call('POST', '/api/v1/aggregates', admin, {
            name: 'globex-only',
            metadata: { filter_tenant_id: globex },
          })
        ).status,
      ).toBe(201);
      for (const h of ['h3', 'h4'])
        await call('POST', '/api/v1/aggregates/globex-only/hosts', admin, { host: h });
      const dry = await call('POST', '/api/v1/consolidation/run', admin, { dryRun: true });
      expect(dry.status).toBe(202);
      const moves = dry.json.plan.moves as Array<{ to: string }>;
      expect(moves.length).toBeGreaterThan(0);
      for (const m of moves) expect(m.to).toBe(hostIds.h2);
      for (const h of ['h3', 'h4']) await call('DELETE', `/api/v1/aggregates/globex-only/hosts/${h}`, admin);
      await call('DELETE', '/api/v1/aggregates/globex-only', admin);
      await call('PATCH', '/api/v1/hosts/h1', admin, { maintenance: false });
      await purge();
      await call('DELETE', '/api/v1/server-groups/apart', owner);
    }, 60_000);
  });
}
