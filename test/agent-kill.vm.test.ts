import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiRequest, runRealVmTests, until } from '../src/test-support/api.js';
import {
  endpointsOf,
  ensureBuilt,
  login,
  startUp,
  type UpProcess,
  waitFor,
} from '../src/test-support/up-process.js';

/** Pids of the QEMU processes running instance `id` (found by the `-name process=` QEMU is given). */
function qemuPids(id: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cmd = readFileSync(`/proc/${name}/cmdline`, 'utf8');
      if (cmd.startsWith('qemu-system') && cmd.includes(`process=yunhai-${id}`)) pids.push(Number(name));
    } catch {}
  }
  return pids;
}

/**
 * `yunhai up` is SIGKILLed (control plane and its in-process agent at once) in the middle of
 * instance operations on real QEMU. After a restart on the same data dir, the operation finishes,
 * with exactly one QEMU per instance while it lives and no QEMU, files or quota use once deleted.
 */
describe.skipIf(!runRealVmTests)('killing yunhai up mid-operation (real QEMU)', () => {
  const env = { YUNHAI_ROOT_PASSWORD: 'root-password-1' };
  let dir: string;
  let dataDir: string;
  let up: UpProcess | undefined;
  let token = '';
  let api = '';

  const start = async (waitImage: boolean) => {
    up = startUp(dataDir, env);
    await waitFor(() => up!.output().includes('Ready in'), 60_000);
    if (waitImage) await waitFor(() => up!.output().includes("Public image 'tiny' is ready"), 120_000);
    api = endpointsOf(dataDir).api!;
    token = (await login(api, env.YUNHAI_ROOT_PASSWORD)).body.token;
  };
  const kill9 = async () => {
    up!.child.kill('SIGKILL');
    await up!.exited;
    up = undefined;
  };
  const call = (method: string, path: string, body?: unknown) => apiRequest(api, token, method, path, body);
  const instance = async (id: string) => (await call('GET', `/api/v1/instances/${id}`)).json;

  beforeAll(() => {
    ensureBuilt();
    dir = mkdtempSync(join(tmpdir(), 'yunhai-kill-'));
    dataDir = join(dir, 'data');
  });
  afterAll(async () => {
    if (up) {
      up.child.kill('SIGTERM');
      await up.exited;
    }
    for (const name of existsSync(join(dataDir, 'instances')) ? readdirSync(join(dataDir, 'instances')) : [])
      for (const pid of qemuPids(name)) process.kill(pid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('finishes a create killed while the guest boots, and a delete killed while the VM stops', async () => {
    await start(true);
    const created = await call('POST', '/api/v1/instances', {
      name: 'k1',
      image: 'tiny',
      flavor: 'tiny.small',
    });
    expect(created.status).toBe(202);
    const id = created.json.id as string;

    // Kill as soon as QEMU exists and the guest is still booting.
    await until('qemu started', async () => (qemuPids(id).length === 1 ? true : undefined), 60_000, 20);
    const [pid] = qemuPids(id);
    expect((await instance(id)).guestReady).toBeFalsy();
    await kill9();
    expect(qemuPids(id)).toEqual([pid]); // the VM outlives its agent

    await start(false);
    const ready = await until('guest ready after restart', async () => {
      const i = await instance(id);
      if (i.state === 'error') throw new Error(i.errorReason);
      return i.state === 'running' && i.guestReady ? i : undefined;
    }).catch((err) => {
      throw new Error(`${(err as Error).message}\n--- yunhai up ---\n${up?.output().slice(-3000)}`);
    });
    expect(ready.hostId).toBeTruthy();
    expect(qemuPids(id)).toEqual([pid]); // taken over, not started twice

    // Delete, and kill while the guest is being powered off.
    expect((await call('DELETE', `/api/v1/instances/${id}`)).status).toBe(202);
    await until(
      'deleting',
      async () => ((await instance(id)).state !== 'running' ? true : undefined),
      30_000,
      20,
    );
    await kill9();

    await start(false);
    await until('deleted after restart', async () =>
      (await call('GET', `/api/v1/instances/${id}`)).status === 404 ? true : undefined,
    );
    await until('qemu gone', async () => (qemuPids(id).length === 0 ? true : undefined));
    expect(existsSync(join(dataDir, 'instances', id))).toBe(false);
    const quotas = (await call('GET', '/api/v1/quotas')).json.items as { resource: string; used: number }[];
    for (const q of quotas.filter((x) => ['instances', 'vcpus', 'memoryMiB'].includes(x.resource)))
      expect(q.used, q.resource).toBe(0);
  }, 300_000);

  it('puts an instance whose QEMU is killed in error with the reason, and deletes it cleanly', async () => {
    if (!up) await start(true);
    const created = await call('POST', '/api/v1/instances', {
      name: 'k2',
      image: 'tiny',
      flavor: 'tiny.small',
    });
    const id = created.json.id as string;
    await until('guest ready', async () => {
      const i = await instance(id);
      return i.state === 'running' && i.guestReady ? i : undefined;
    });
    const [pid] = qemuPids(id);
    process.kill(pid!, 'SIGKILL');
    const failed = await until('error', async () => {
      const i = await instance(id);
      return i.state === 'error' ? i : undefined;
    });
    expect(failed.errorReason).toMatch(/SIGKILL|killed|exited/i);
    expect((await call('DELETE', `/api/v1/instances/${id}`)).status).toBe(202);
    await until('deleted', async () =>
      (await call('GET', `/api/v1/instances/${id}`)).status === 404 ? true : undefined,
    );
    expect(qemuPids(id)).toEqual([]);
    expect(existsSync(join(dataDir, 'instances', id))).toBe(false);
  }, 180_000);
});
