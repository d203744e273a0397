import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createQemuDriver } from '../src/agent/drivers/qemu/qemu-driver.js';
import { type ControlPlane, startControlPlane } from '../src/server/control-plane.js';
import { ensurePublicTinyImage } from '../src/server/public-images.js';
import { apiRequest, runRealVmTests, until } from '../src/test-support/api.js';

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/**
 * VMs outlive the control plane and its agent: a restart finds the running QEMU again and takes
 * over (stop, delete) without a second copy or a reboot.
 */
describe.skipIf(!runRealVmTests)('real VMs across a control-plane restart', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'yunhai-restart-'));
  const vmDir = mkdtempSync(join(tmpdir(), 'yunhai-restart-vms-'));
  let cp: ControlPlane | undefined;
  let token = '';

  const start = async () => {
    cp = await startControlPlane({
      dataDir,
      host: '127.0.0.1',
      port: 0,
      logLevel: 'silent',
      env: { YUNHAI_ROOT_PASSWORD: 'root-password-1' },
      localAgent: {
        driver: createQemuDriver({ dataDir: vmDir, accelerator: 'tcg' }),
        heartbeatMs: 500,
        stopTimeoutMs: 20_000,
      },
    });
    await cp.agent();
    const res = await fetch(`${cp.endpoints.api}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'admin', password: 'root-password-1' }),
    });
    token = ((await res.json()) as { token: string }).token;
  };
  const call = (method: string, path: string, body?: unknown) =>
    apiRequest(cp!.endpoints.api, token, method, path, body);

  afterAll(async () => {
    await cp?.close();
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(vmDir, { recursive: true, force: true });
  });

  it('keeps the VM running through a restart and lets the new agent stop and delete it', async () => {
    await start();
    await ensurePublicTinyImage({ iam: cp!.iam, images: cp!.images });
    const created = await call('POST', '/api/v1/instances', {
      name: 'survivor',
      image: 'tiny',
      flavor: 'tiny.small',
    });
    const id = created.json.id as string;
    await until('guest ready', async () => {
      const i = (await call('GET', `/api/v1/instances/${id}`)).json;
      if (i.state === 'error') throw new Error(i.errorReason);
      return i.state === 'running' && i.guestReady ? i : undefined;
    });
    const pidFile = join(vmDir, 'instances', id, 'qemu.pid');
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    expect(alive(pid)).toBe(true);

    await cp!.close(); // control plane and agent gone; the VM is not
    cp = undefined;
    await new Promise((r) => setTimeout(r, 500));
    expect(alive(pid)).toBe(true);

    await start();
    const after = await until('reconciled', async () => {
      const i = (await call('GET', `/api/v1/instances/${id}`)).json;
      const hosts = (await call('GET', '/api/v1/hosts')).json.items;
      return hosts[0]?.state === 'up' ? i : undefined;
    });
    expect(after).toMatchObject({ state: 'running', guestReady: true });
    expect(Number(readFileSync(pidFile, 'utf8').trim())).toBe(pid); // the same QEMU, not a second copy
    expect(alive(pid)).toBe(true);

    await call('POST', `/api/v1/instances/${id}/stop`);
    await until('stopped', async () =>
      (await call('GET', `/api/v1/instances/${id}`)).json.state === 'stopped' ? true : undefined,
    );
    expect(alive(pid)).toBe(false);
    await call('DELETE', `/api/v1/instances/${id}`);
    await until('deleted', async () =>
      (await call('GET', `/api/v1/instances/${id}`)).status === 404 ? true : undefined,
    );
    expect(existsSync(join(vmDir, 'instances', id))).toBe(false);
  }, 240_000);
});
