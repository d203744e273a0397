import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { endpointsOf, ensureBuilt, login, startUp, waitFor } from '../src/test-support/up-process.js';

describe('yunhai up', () => {
  let dir: string;
  beforeAll(() => {
    ensureBuilt();
    dir = mkdtempSync(join(tmpdir(), 'yunhai-up-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('starts on a fresh data dir, writes endpoints and 0600 credentials, and stops cleanly on SIGTERM', async () => {
    const dataDir = join(dir, 'a');
    const up = startUp(dataDir, {
      YUNHAI_ROOT_ACCESS_KEY: 'AKIAEXAMPLEROOT00001',
      YUNHAI_ROOT_SECRET_KEY: 'root-secret-key-for-tests-000000000000000',
    });
    await waitFor(() => up.output().includes('Ready in'));
    const endpoints = endpointsOf(dataDir);
    expect(Object.keys(endpoints).sort()).toEqual(['api', 'iam', 'portal', 's3', 'sqs', 'sts']);
    for (const url of Object.values(endpoints)) expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const credsFile = join(dataDir, 'credentials.json');
    expect(statSync(credsFile).mode & 0o777).toBe(0o600);
    const creds = JSON.parse(readFileSync(credsFile, 'utf8'));
    expect(creds).toEqual({
      accessKeyId: 'AKIAEXAMPLEROOT00001',
      secretAccessKey: 'root-secret-key-for-tests-000000000000000',
      username: 'admin',
      password: expect.any(String),
    });
    expect(up.output()).toContain(creds.password);
    expect(up.output()).toContain(endpoints.api);
    const { token } = (await login(endpoints.api!, creds.password)).body;
    const created = await fetch(`${endpoints.api}/api/v1/tenants`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ name: 'kept-tenant' }),
    });
    expect(created.status).toBe(201);
    up.child.kill('SIGTERM');
    expect(await up.exited).toBe(0);
    expect(up.output()).toContain('Stopped.');
  });

  it('keeps everything on restart and does not print the credentials again; SIGINT also stops cleanly', async () => {
    const dataDir = join(dir, 'a');
    const creds = JSON.parse(readFileSync(join(dataDir, 'credentials.json'), 'utf8'));
    const up = startUp(dataDir);
    await waitFor(() => up.output().includes('Ready in'));
    expect(up.output()).not.toContain(creds.password);
    const api = endpointsOf(dataDir).api!;
    const { status, body } = await login(api, creds.password);
    expect(status).toBe(200);
    const t = await fetch(`${api}/api/v1/tenants/kept-tenant`, {
      headers: { authorization: `Bearer ${body.token}` },
    });
    expect(t.status).toBe(200);
    up.child.kill('SIGINT');
    expect(await up.exited).toBe(0);
  });

  it('survives kill -9: committed changes are there after restart and the audit chain verifies', async () => {
    const dataDir = join(dir, 'b');
    const up = startUp(dataDir);
    await waitFor(() => up.output().includes('Ready in'));
    const api = endpointsOf(dataDir).api!;
    const creds = JSON.parse(readFileSync(join(dataDir, 'credentials.json'), 'utf8'));
    const { token } = (await login(api, creds.password)).body;
    const auth = { 'content-type': 'application/json', authorization: `Bearer ${token}` };
    const writes = Array.from({ length: 30 }, (_, i) =>
      fetch(`${api}/api/v1/tenants`, {
        method: 'POST',
        headers: auth,
        body: JSON.stringify({ name: `crash-${i}` }),
      }).then(
        (r) => r.status,
        () => 0,
      ),
    );
    const acknowledged = (await Promise.all(writes.slice(0, 10))).filter((s) => s === 201).length;
    up.child.kill('SIGKILL');
    await up.exited;
    await Promise.all(writes);

    const again = startUp(dataDir);
    await waitFor(() => again.output().includes('Ready in'));
    const api2 = endpointsOf(dataDir).api!;
    const t2 = (await login(api2, creds.password)).body.token;
    const list = (await (
      await fetch(`${api2}/api/v1/tenants?limit=1000`, { headers: { authorization: `Bearer ${t2}` } })
    ).json()) as { items: Array<{ name: string }> };
    const names = list.items.map((x) => x.name).filter((n) => n.startsWith('crash-'));
    expect(names.length).toBeGreaterThanOrEqual(acknowledged);
    const v = (await (
      await fetch(`${api2}/api/v1/audit/verify`, { headers: { authorization: `Bearer ${t2}` } })
    ).json()) as { ok: boolean };
    expect(v.ok).toBe(true);
    // Every tenant that exists has its quota rows: no half-written tenant.
    again.child.kill('SIGTERM');
    expect(await again.exited).toBe(0);
  });
});
