import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiRequest, runRealVmTests, until } from '../src/test-support/api.js';
import { startQemuTestControlPlane } from '../src/test-support/qemu-control-plane.js';

/**
 * Real virtual machines end to end through the public REST API: the tiny guest under QEMU
 * (TCG here), user-data, console, live resize seen inside the guest, stop, start, delete.
 */
describe.skipIf(!runRealVmTests)('real VMs on QEMU through the API', () => {
  let cp: Awaited<ReturnType<typeof startQemuTestControlPlane>>;
  let token: string;
  let id: string;
  let vmDir: string;

  const call = (method: string, path: string, body?: unknown) =>
    apiRequest(cp.endpoints.api, token, method, path, body);
  const instance = async () => (await call('GET', `/api/v1/instances/${id}`)).json;
  const consoleText = async () =>
    (await call('GET', `/api/v1/instances/${id}/console?maxBytes=1048576`)).json.data as string;

  beforeAll(async () => {
    // Generous: under a loaded CI machine a TCG guest with two vCPUs on one host thread can take
    // many seconds to run acpid after the power button (a hard stop would fail the ACPI check).
    cp = await startQemuTestControlPlane({ stopTimeoutMs: 60_000 });
    token = cp.token;
    vmDir = cp.vmDir;
  }, 300_000);
  afterAll(async () => {
    await cp?.stop();
  });

  it('launches the tiny guest, which runs its user-data and reports ready', async () => {
    const r = await call('POST', '/api/v1/instances', {
      name: 'vm-e2e',
      image: 'tiny',
      flavor: 'tiny.small',
      userData: '#!/bin/sh\necho "user-data says $((6 * 7))"\n',
    });
    expect(r.status).toBe(202);
    id = r.json.id;
    const running = await until('guest ready', async () => {
      const i = await instance();
      if (i.state === 'error') throw new Error(i.errorReason);
      return i.state === 'running' && i.guestReady ? i : undefined;
    });
    expect(running).toMatchObject({ vcpus: 1, memoryMiB: 256 });
    const text = await until(
      'console',
      async () => ((await consoleText()).includes('YUNHAI-READY') ? consoleText() : undefined),
      10_000,
    );
    expect(text).toContain('user-data says 42');
    expect(text).toMatch(/YUNHAI-USERDATA exit=0/);
    expect(text).toMatch(/YUNHAI-READY cpus=1 /);
  }, 180_000);

  it('resizes memory and vCPUs live, and the guest sees both', async () => {
    const memOf = (l: string) => Number(/mem_kib=(\d+)/.exec(l)![1]);
    // Booted with the flavor's maximum (512 MiB) and ballooned down to 256 MiB once ready.
    const statsMems = async () =>
      (await consoleText())
        .split('\n')
        .filter((x) => x.includes('YUNHAI-STATS'))
        .map(memOf);
    // The balloon inflates over a few seconds; wait until the guest's memory stops shrinking.
    let ballooned = 0;
    await until(
      'boot balloon settled',
      async () => {
        const before = await statsMems();
        await new Promise((r) => setTimeout(r, 1500));
        const after = await statsMems();
        const last = after[after.length - 1];
        if (last !== undefined && last < 300 * 1024 && after.length === before.length) {
          ballooned = Math.min(...after);
          return true;
        }
        return undefined;
      },
      45_000,
    );
    expect((await call('POST', `/api/v1/instances/${id}/resize`, { vcpus: 2, memoryMiB: 384 })).status).toBe(
      202,
    );
    await until('resize applied', async () => {
      const i = await instance();
      return i.state === 'running' && i.vcpus === 2 && i.memoryMiB === 384 ? i : undefined;
    });
    const stats = await until(
      'guest stats',
      async () => {
        const l = (await consoleText())
          .split('\n')
          .filter((x) => x.includes('YUNHAI-STATS cpus=2'))
          .pop();
        return l && memOf(l) > ballooned + 64 * 1024 ? l : undefined; // the balloon deflates over a second or two
      },
      30_000,
    );
    expect(memOf(stats!)).toBeGreaterThan(ballooned + 64 * 1024);
    expect(memOf(stats!)).toBeLessThan(400 * 1024);
  }, 120_000);

  it('stops with ACPI power-off, starts again, and deletes without leaving anything behind', async () => {
    await call('POST', `/api/v1/instances/${id}/stop`);
    await until('stopped', async () => ((await instance()).state === 'stopped' ? true : undefined), 120_000);
    const text = await consoleText();
    expect(text, `no ACPI power-off in the console; instance: ${JSON.stringify(await instance())}`).toMatch(
      /YUNHAI-POWEROFF reason=acpi/,
    );
    await call('POST', `/api/v1/instances/${id}/start`);
    await until('running again', async () => {
      const i = await instance();
      return i.state === 'running' && i.guestReady ? i : undefined;
    });
    await call('DELETE', `/api/v1/instances/${id}`);
    await until(
      'deleted',
      async () => ((await call('GET', `/api/v1/instances/${id}`)).status === 404 ? true : undefined),
      60_000,
    );
    const instancesDir = join(vmDir, 'instances');
    expect(existsSync(instancesDir) ? readdirSync(instancesDir) : []).not.toContain(id);
    const ps = execFileSync('ps', ['-eo', 'args']).toString();
    expect(ps).not.toContain(id);
    const usage = await call('GET', '/api/v1/usage?limit=1000');
    expect(
      usage.json.items.some(
        (u: { resourceId: string; meter: string }) =>
          u.resourceId === id && u.meter === 'compute.vcpu-seconds',
      ),
    ).toBe(true);
  }, 300_000);
});
