import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..');
const cli = join(root, 'bin', 'yunhai.js');

/** Rebuilds dist/ when any source file is newer than the compiled CLI (CI builds it in `npm ci`). */
function ensureBuilt() {
  const built = join(root, 'dist', 'cli', 'main.js');
  const newest = (dir: string): number =>
    Math.max(
      0,
      ...readdirSync(dir, { withFileTypes: true }).map((e) =>
        e.isDirectory() ? newest(join(dir, e.name)) : statSync(join(dir, e.name)).mtimeMs,
      ),
    );
  if (!existsSync(built) || newest(join(root, 'src')) > statSync(built).mtimeMs) {
    execFileSync(
      process.execPath,
      [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'],
      { cwd: root },
    );
  }
}

interface Running {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

function startUp(dataDir: string, env: Record<string, string> = {}): Running {
  let out = '';
  const child = spawn(process.execPath, [cli, 'up', '--data-dir', dataDir, '--port', '0'], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d) => {
    out += d;
  });
  child.stderr!.on('data', (d) => {
    out += d;
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, output: () => out, exited };
}

async function waitFor(pred: () => boolean, ms = 20_000) {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

const endpointsOf = (dataDir: string) =>
  JSON.parse(readFileSync(join(dataDir, 'endpoints.json'), 'utf8')) as Record<string, string>;

async function login(api: string, password: string) {
  const r = await fetch(`${api}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'admin', password }),
  });
  return { status: r.status, body: (await r.json()) as { token: string } };
}

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
    expect(Object.keys(endpoints).sort()).toEqual(['api', 'iam', 'sts']);
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
