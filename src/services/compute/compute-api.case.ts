import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFakeDriver, type FakeDriver } from '../../agent/drivers/fake/fake-driver.js';
import { apiRequest } from '../../test-support/api.js';
import { seedComputeFixture } from '../../test-support/compute-fixture.js';
import { startTestControlPlane, type TestControlPlane } from '../../test-support/control-plane.js';

/**
 * Compute through the public REST API with an in-process agent on the fake driver: the whole
 * control-plane side (placement, quotas, state machine, agent protocol, console, metering) on
 * each SQL dialect. The real QEMU path is covered by the qemu driver's tests and test/vm.test.ts.
 */
export function runComputeApiSuite(dialect: 'sqlite' | 'postgres') {
  describe(`compute API on ${dialect} (fake driver)`, () => {
    let cp: TestControlPlane;
    let driver: FakeDriver;
    let api: string;
    let admin: string;
    let owner: string;
    let other: string;
    let imageId: string;

    const call = (method: string, path: string, token: string, body?: unknown) =>
      apiRequest(api, token, method, path, body);
    const waitGone = async (id: string, token: string) => {
      const end = Date.now() + 5000;
      while ((await call('GET', `/api/v1/instances/${id}`, token)).status !== 404) {
        if (Date.now() > end) throw new Error(`${id} was not deleted`);
        await new Promise((res) => setTimeout(res, 50));
      }
    };
    const waitFor = async (
      id: string,
      token: string,
      pred: (i: { state: string; guestReady: boolean }) => boolean,
      ms = 10_000,
    ) => {
      const end = Date.now() + ms;
      for (;;) {
        const r = await call('GET', `/api/v1/instances/${id}`, token);
        if (r.status === 200 && pred(r.json)) return r.json;
        if (Date.now() > end) throw new Error(`timed out; last ${JSON.stringify(r.json)}`);
        await new Promise((res) => setTimeout(res, 50));
      }
    };
    const quota = async (token: string, resource: string) =>
      (await call('GET', '/api/v1/quotas', token)).json.items.find(
        (q: { resource: string }) => q.resource === resource,
      );

    beforeAll(async () => {
      driver = createFakeDriver({ bootMs: 30, capabilities: { vcpus: 8, memoryMiB: 4096, diskGiB: 100 } });
      cp = await startTestControlPlane({
        dialect,
        localAgent: { driver, heartbeatMs: 200, stopTimeoutMs: 1000 },
        hostGraceMs: 1500,
      });
      api = cp.endpoints.api;
      await cp.agent();
      ({ admin, owner, other, imageId } = await seedComputeFixture(cp));
      expect((await call('GET', `/api/v1/images/${imageId}`, owner)).json).toMatchObject({
        status: 'available',
        visibility: 'public',
      });
    });
    afterAll(async () => cp?.stop());

    it('registers the local host with its capacity', async () => {
      const hosts = await call('GET', '/api/v1/hosts', admin);
      expect(hosts.json.items).toHaveLength(1);
      expect(hosts.json.items[0]).toMatchObject({
        state: 'up',
        enabled: true,
        accelerator: 'fake',
        vcpus: 8,
        memoryMiB: 4096,
      });
      expect((await call('GET', '/api/v1/hosts', owner)).status).toBe(403);
    });

    let id: string;
    it('launches an instance that runs its user-data and reports ready', async () => {
      const r = await call('POST', '/api/v1/instances', owner, {
        name: 'web-1',
        image: 'tiny',
        flavor: 'tiny.small',
        userData: '#!/bin/sh\necho hello',
      });
      expect(r.status).toBe(202);
      expect(r.json).toMatchObject({
        state: 'building',
        vcpus: 1,
        memoryMiB: 256,
        maxVcpus: 2,
        maxMemoryMiB: 512,
      });
      id = r.json.id;
      const running = await waitFor(id, owner, (i) => i.state === 'running' && i.guestReady);
      expect(running.launchedAt).not.toBeNull();
      await new Promise((res) => setTimeout(res, 800)); // console mirroring interval
      const con = await call('GET', `/api/v1/instances/${id}/console`, owner);
      expect(con.json.data).toContain('YUNHAI-READY');
      expect(con.json.data).toContain('YUNHAI-USERDATA exit=0');
      const more = await call('GET', `/api/v1/instances/${id}/console?offset=${con.json.next}`, owner);
      expect(more.json.data).toBe('');
      expect(await quota(owner, 'instances')).toMatchObject({ used: 1 });
      expect(await quota(owner, 'vcpus')).toMatchObject({ used: 1 });
    });

    it('hides the instance from other tenants', async () => {
      expect((await call('GET', `/api/v1/instances/${id}`, other)).status).toBe(404);
      expect((await call('GET', '/api/v1/instances', other)).json.items).toEqual([]);
      expect((await call('POST', `/api/v1/instances/${id}/stop`, other)).status).toBe(404);
      expect((await call('GET', `/api/v1/instances/${id}/console`, other)).status).toBe(404);
    });

    it('resizes live within the flavor maxima and charges quota for the growth', async () => {
      const r = await call('POST', `/api/v1/instances/${id}/resize`, owner, { vcpus: 2, memoryMiB: 512 });
      expect(r.status).toBe(202);
      const done = await waitFor(
        id,
        owner,
        (i) => i.state === 'running' && (i as unknown as { vcpus: number }).vcpus === 2,
      );
      expect(done).toMatchObject({ vcpus: 2, memoryMiB: 512 });
      expect(await quota(owner, 'vcpus')).toMatchObject({ used: 2 });
      expect(await quota(owner, 'memoryMiB')).toMatchObject({ used: 512 });
      const status = await driver.status(id);
      expect(status).toMatchObject({ vcpus: 2, memoryMiB: 512 });
      const over = await call('POST', `/api/v1/instances/${id}/resize`, owner, { vcpus: 3 });
      expect(over.status).toBe(400);
      expect(over.json.error.message).toMatch(/1\.\.2/);
    });

    it('stops, starts and reboots through the state machine', async () => {
      expect((await call('POST', `/api/v1/instances/${id}/stop`, owner)).json.state).toBe('stopping');
      await waitFor(id, owner, (i) => i.state === 'stopped');
      expect((await driver.status(id))?.state).toBe('stopped');
      // The console log is complete once the instance shows stopped: the guest's power-off line too.
      const log = await call('GET', `/api/v1/instances/${id}/console?maxBytes=65536`, owner);
      expect(log.json.data).toContain('YUNHAI-POWEROFF reason=acpi');
      const again = await call('POST', `/api/v1/instances/${id}/stop`, owner);
      expect(again.status).toBe(409);
      expect(again.json.error.code).toBe('InvalidState');
      await call('POST', `/api/v1/instances/${id}/start`, owner);
      await waitFor(id, owner, (i) => i.state === 'running' && i.guestReady);
      await call('POST', `/api/v1/instances/${id}/reboot`, owner);
      await waitFor(id, owner, (i) => i.state === 'running' && i.guestReady);
    });

    it('cold-resizes a stopped instance to another flavor, which it boots with', async () => {
      await call('POST', `/api/v1/instances/${id}/stop`, owner);
      await waitFor(id, owner, (i) => i.state === 'stopped');
      const live = await call('POST', `/api/v1/instances/${id}/resize`, owner, { vcpus: 1 });
      expect(live.json.error.code).toBe('InvalidState');
      const both = await call('POST', `/api/v1/instances/${id}/resize`, owner, {
        flavor: 'tiny.medium',
        vcpus: 1,
      });
      expect(both.json.error.code).toBe('ValidationError');
      const r = await call('POST', `/api/v1/instances/${id}/resize`, owner, { flavor: 'tiny.medium' });
      expect(r.status).toBe(202);
      expect(r.json).toMatchObject({ vcpus: 1, memoryMiB: 512, diskGiB: 2, maxVcpus: 2, maxMemoryMiB: 1024 });
      expect(await quota(owner, 'vcpus')).toMatchObject({ used: 1 });
      expect(await quota(owner, 'memoryMiB')).toMatchObject({ used: 512 });
      await call('POST', `/api/v1/instances/${id}/start`, owner);
      await waitFor(id, owner, (i) => i.state === 'running' && i.guestReady);
      expect(await driver.status(id)).toMatchObject({ state: 'running', vcpus: 1, memoryMiB: 512 });
      await call('POST', `/api/v1/instances/${id}/stop`, owner);
      await waitFor(id, owner, (i) => i.state === 'stopped');
      const shrink = await call('POST', `/api/v1/instances/${id}/resize`, owner, { flavor: 'tiny.small' });
      expect(shrink.status).toBe(400);
      expect(shrink.json.error.message).toMatch(/cannot shrink/);
      await call('POST', `/api/v1/instances/${id}/start`, owner);
      await waitFor(id, owner, (i) => i.state === 'running' && i.guestReady);
    });

    it('records a guest that powers itself off as stopped', async () => {
      await driver.stop(id, { timeoutMs: 0 });
      await waitFor(id, owner, (i) => i.state === 'stopped');
      await new Promise((res) => setTimeout(res, 500));
      expect((await driver.status(id))?.state).toBe('stopped'); // not restarted behind the user's back
      await call('POST', `/api/v1/instances/${id}/start`, owner);
      await waitFor(id, owner, (i) => i.state === 'running');
    });

    it('puts a crashed VM in error with the reason and the console tail', async () => {
      driver.simulateCrash(id, 'qemu exited with signal 9');
      const e = await waitFor(id, owner, (i) => i.state === 'error');
      expect((e as unknown as { errorReason: string }).errorReason).toMatch(/signal 9/);
      await call('POST', `/api/v1/instances/${id}/start`, owner);
      await waitFor(id, owner, (i) => i.state === 'running');
    });

    it('meters running time per flavor, vCPU and memory, exactly once per period', async () => {
      await new Promise((res) => setTimeout(res, 1100));
      await cp.compute.meterRunning();
      await cp.compute.meterRunning();
      const u = await call('GET', '/api/v1/usage?limit=1000', owner);
      const meters = new Set(u.json.items.map((r: { meter: string }) => r.meter));
      // It ran as tiny.small (maybe under a second: only whole seconds are metered), then as tiny.medium.
      for (const m of [
        'compute.instance-seconds:tiny.medium',
        'compute.vcpu-seconds',
        'compute.memory-mib-seconds',
      ]) {
        expect(meters).toContain(m);
      }
      for (const m of meters) {
        expect([
          'compute.instance-seconds:tiny.small',
          'compute.instance-seconds:tiny.medium',
          'compute.vcpu-seconds',
          'compute.memory-mib-seconds',
        ]).toContain(m);
      }
      const rows = await cp.database.db
        .selectFrom('usage_records')
        .select(['period_start', 'period_end', 'meter', 'resource_id'])
        .where('resource_id', '=', id)
        .execute();
      // No two rows of one meter overlap in time.
      for (const m of meters) {
        const spans = rows.filter((r) => r.meter === m).sort((a, b) => a.period_start - b.period_start);
        for (let k = 1; k < spans.length; k++)
          expect(spans[k]!.period_start).toBeGreaterThanOrEqual(spans[k - 1]!.period_end);
      }
    });

    it('never moves metering backwards when a pass read the clock before another pass committed', async () => {
      // As if a later pass had already metered this instance ahead of this pass's clock.
      const ahead = Date.now() + 10_000;
      await cp.database.db.updateTable('instances').set({ metered_to: ahead }).where('id', '=', id).execute();
      const count = async () =>
        (
          await cp.database.db
            .selectFrom('usage_records')
            .select('id')
            .where('resource_id', '=', id)
            .execute()
        ).length;
      const before = await count();
      await cp.compute.meterRunning();
      const row = await cp.database.db
        .selectFrom('instances')
        .select('metered_to')
        .where('id', '=', id)
        .executeTakeFirstOrThrow();
      expect(Number(row.metered_to)).toBe(ahead);
      expect(await count()).toBe(before);
    });

    it('refuses bad launches with clear errors and leaves quotas untouched', async () => {
      const before = await quota(owner, 'instances');
      const cases: Array<[unknown, number, string]> = [
        [{ name: 'x', image: 'no-such-image', flavor: 'tiny.small' }, 404, 'NotFound'],
        [{ name: 'x', image: 'tiny', flavor: 'no-such-flavor' }, 404, 'NotFound'],
        [{ name: 'x', image: 'tiny', flavor: 'm1.large' }, 409, 'InsufficientCapacity'],
        [{ name: '../x', image: 'tiny', flavor: 'tiny.small' }, 400, 'ValidationError'],
        [{ name: 'x', image: 'tiny', flavor: 'tiny.small', hostId: 'h' }, 400, 'UnknownField'],
        [{ name: 'x', image: 'tiny', flavor: 'tiny.small', keyName: 'nokey' }, 404, 'NotFound'],
      ];
      for (const [body, status, code] of cases) {
        const r = await call('POST', '/api/v1/instances', owner, body);
        expect([r.status, r.json.error.code]).toEqual([status, code]);
      }
      const cap = await call('POST', '/api/v1/instances', owner, {
        name: 'x',
        image: 'tiny',
        flavor: 'm1.large',
      });
      expect(cap.json.error.message).toMatch(/capacity: 1 host lack 8 GiB RAM/);
      expect(await quota(owner, 'instances')).toEqual(before);
    });

    it('refuses image imports that mix kernel and disk sources instead of dropping one', async () => {
      const mixed = await call('POST', '/api/v1/images', owner, {
        name: 'mixed',
        format: 'kernel',
        source: { kernel: '/nonexistent/k', disk: '/nonexistent/d' },
      });
      expect([mixed.status, mixed.json.error.code]).toEqual([400, 'ValidationError']);
      expect(mixed.json.error.message).toContain('not source.disk');
      const disk = await call('POST', '/api/v1/images', owner, {
        name: 'mixed2',
        format: 'qcow2',
        source: { disk: '/nonexistent/d', initrd: '/nonexistent/i' },
      });
      expect(disk.json.error.message).toContain('takes source.disk only');
    });

    it('enforces the instance and vCPU quotas at create', async () => {
      const acme = (await call('GET', '/api/v1/tenants/acme', admin)).json.id;
      await call('PUT', `/api/v1/tenants/${acme}/quotas`, admin, { instances: 2, vcpus: 3 });
      const second = await call('POST', '/api/v1/instances', owner, {
        name: 'web-2',
        image: 'tiny',
        flavor: 'tiny.small',
      });
      expect(second.status).toBe(202);
      const third = await call('POST', '/api/v1/instances', owner, {
        name: 'web-3',
        image: 'tiny',
        flavor: 'tiny.small',
      });
      expect(third.json.error.code).toBe('QuotaExceeded');
      await call('DELETE', `/api/v1/instances/${second.json.id}`, owner);
      await waitGone(second.json.id, owner);
    });

    it('deletes an instance: VM gone, quota released, audit trail complete', async () => {
      const r = await call('DELETE', `/api/v1/instances/${id}`, owner);
      expect(r.status).toBe(202);
      await waitGone(id, owner);
      expect(await driver.status(id)).toBeNull();
      expect(await quota(owner, 'instances')).toMatchObject({ used: 0 });
      expect(await quota(owner, 'vcpus')).toMatchObject({ used: 0 });
      expect(await quota(owner, 'memoryMiB')).toMatchObject({ used: 0 });
      const audit = await call('GET', '/api/v1/audit?limit=1000', owner);
      const actions = audit.json.items.map((e: { action: string }) => e.action);
      for (const a of [
        'compute:RunInstance',
        'compute:ResizeInstance',
        'compute:StopInstance',
        'compute:TerminateInstance',
        'compute:InstanceDeleted',
      ])
        expect(actions).toContain(a);
      expect((await call('GET', '/api/v1/audit/verify', admin)).json.ok).toBe(true);
    });

    it('ends in-flight work in error when the host agent vanishes, and deletes still complete', async () => {
      const r = await call('POST', '/api/v1/instances', owner, {
        name: 'orphan',
        image: 'tiny',
        flavor: 'tiny.small',
      });
      await waitFor(r.json.id, owner, (i) => i.state === 'running');
      await (await cp.agent())!.stop();
      await call('POST', `/api/v1/instances/${r.json.id}/stop`, owner);
      const e = await waitFor(r.json.id, owner, (i) => i.state === 'error', 8000);
      expect((e as unknown as { errorReason: string }).errorReason).toMatch(/host agent stopped responding/);
      expect((await call('GET', '/api/v1/hosts', admin)).json.items[0].state).toBe('down');
      expect((await call('DELETE', `/api/v1/instances/${r.json.id}`, owner)).status).toBe(202);
      expect((await call('GET', `/api/v1/instances/${r.json.id}`, owner)).status).toBe(404);
      expect(await quota(owner, 'instances')).toMatchObject({ used: 0 });
      // Nothing can be placed while the only host is down, and the error says why.
      const none = await call('POST', '/api/v1/instances', owner, {
        name: 'late',
        image: 'tiny',
        flavor: 'tiny.small',
      });
      expect(none.json.error.message).toMatch(/state: 1 host host is down/);
    });
  });
}
