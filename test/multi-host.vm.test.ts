import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qemuAvailable } from '../src/agent/drivers/qemu/test-guest.js';
import {
  CLI,
  ensureBuilt,
  killLeftoverVms,
  login,
  startUp,
  type UpProcess,
  waitFor,
} from '../src/test-support/up-process.js';

/**
 * Several hosts for real: the control plane in this network namespace, two agents each in its own
 * namespace (`ip netns`) with its own address on a bridge, real QEMU under each. A counting guest
 * is live-migrated from one host to the other over TCP between the namespaces and keeps counting;
 * then the agent of the host it runs on is killed, and the HA flag has it rebuilt on the other.
 */

const BRIDGE = 'yhbr-mh';
const NET = '10.231.77';
const CP_ADDR = `${NET}.1`;
const HOSTS = [
  { name: 'mh-a', ns: 'yh-mh-a', addr: `${NET}.2`, veth: 'yhmh-a' },
  { name: 'mh-b', ns: 'yh-mh-b', addr: `${NET}.3`, veth: 'yhmh-b' },
];

const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { stdio: 'pipe' }).toString();
const canNetns = (() => {
  if (!qemuAvailable || process.getuid?.() !== 0) return false;
  try {
    sh('ip', ['netns', 'add', 'yh-mh-probe']);
    sh('ip', ['netns', 'del', 'yh-mh-probe']);
    return true;
  } catch {
    return false;
  }
})();

function teardownNetwork() {
  for (const h of HOSTS) {
    try {
      sh('ip', ['netns', 'del', h.ns]);
    } catch {}
    try {
      sh('ip', ['link', 'del', h.veth]);
    } catch {}
  }
  try {
    sh('ip', ['link', 'del', BRIDGE]);
  } catch {}
}

function setupNetwork() {
  teardownNetwork();
  sh('ip', ['link', 'add', BRIDGE, 'type', 'bridge']);
  sh('ip', ['addr', 'add', `${CP_ADDR}/24`, 'dev', BRIDGE]);
  sh('ip', ['link', 'set', BRIDGE, 'up']);
  for (const h of HOSTS) {
    sh('ip', ['netns', 'add', h.ns]);
    sh('ip', ['link', 'add', h.veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', h.ns]);
    sh('ip', ['link', 'set', h.veth, 'master', BRIDGE]);
    sh('ip', ['link', 'set', h.veth, 'up']);
    sh('ip', ['-n', h.ns, 'addr', 'add', `${h.addr}/24`, 'dev', 'eth0']);
    sh('ip', ['-n', h.ns, 'link', 'set', 'eth0', 'up']);
    sh('ip', ['-n', h.ns, 'link', 'set', 'lo', 'up']);
  }
}

const COUNTER = '#!/bin/sh\n(i=0; while :; do echo "TICK $i"; i=$((i+1)); sleep 1; done) &\n';
const ticks = (text: string) => [...text.matchAll(/TICK (\d+)/g)].map((m) => Number(m[1]));

describe.skipIf(!canNetns)('several hosts in network namespaces (real QEMU)', () => {
  let dir: string;
  let up: UpProcess;
  let api: string;
  let token: string;
  const agents: Record<string, ChildProcess> = {};
  const agentDirs: Record<string, string> = {};
  const hostIds: Record<string, string> = {};
  let agentLog = '';

  const call = async (method: string, path: string, body?: unknown) => {
    const r = await fetch(`${api}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    const text = await r.text();
    return { status: r.status, json: text ? JSON.parse(text) : undefined };
  };
  const until = async <T>(what: string, fn: () => Promise<T | undefined | false>, ms = 120_000) => {
    const end = Date.now() + ms;
    for (;;) {
      const v = await fn();
      if (v) return v;
      if (Date.now() > end) {
        const items = (await call('GET', '/api/v1/instances?limit=10')).json.items;
        throw new Error(
          `timed out waiting for ${what}\ninstances: ${JSON.stringify(items)}\nagents:\n${agentLog.slice(-4000)}`,
        );
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  };
  const consoleOf = async (id: string) =>
    (await call('GET', `/api/v1/instances/${id}/console?maxBytes=1048576`)).json.data as string;

  const startAgent = (h: (typeof HOSTS)[number], regToken: string) => {
    agentDirs[h.name] ??= mkdtempSync(join(tmpdir(), `yh-${h.name}-`));
    const child = spawn(
      'ip',
      [
        'netns',
        'exec',
        h.ns,
        process.execPath,
        CLI,
        'agent',
        '--control-plane',
        api,
        '--token',
        regToken,
        '--data-dir',
        agentDirs[h.name]!,
        '--name',
        h.name,
        '--migration-address',
        h.addr,
        '--log-level',
        'info',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout!.on('data', (d) => {
      agentLog += `[${h.name}] ${d}`;
    });
    child.stderr!.on('data', (d) => {
      agentLog += `[${h.name}] ${d}`;
    });
    agents[h.name] = child;
  };

  beforeAll(async () => {
    ensureBuilt();
    setupNetwork();
    dir = mkdtempSync(join(tmpdir(), 'yh-mh-'));
    up = startUp(dir, { YUNHAI_HOST_GRACE_MS: '25000', YUNHAI_ROOT_PASSWORD: 'root-password-mh' }, [
      '--host',
      CP_ADDR,
    ]);
    await waitFor(() => /Public image 'tiny' is ready|tiny guest image/.test(up.output()), 300_000);
    api = JSON.parse(readFileSync(join(dir, 'endpoints.json'), 'utf8')).api;
    token = (await login(api, 'root-password-mh')).body.token;
    // The local host of `yunhai up` takes nothing: only the two namespaced hosts do.
    const local = (await call('GET', '/api/v1/hosts')).json.items[0];
    expect((await call('PATCH', `/api/v1/hosts/${local.id}`, { maintenance: true })).status).toBe(200);
    const reg = (await call('POST', '/api/v1/hosts/registration-token')).json.token as string;
    for (const h of HOSTS) startAgent(h, reg);
    await until('both agents registered', async () => {
      const items = (await call('GET', '/api/v1/hosts')).json.items as {
        id: string;
        name: string;
        state: string;
      }[];
      for (const i of items) hostIds[i.name] = i.id;
      return HOSTS.every((h) => items.some((i) => i.name === h.name && i.state === 'up'));
    });
  }, 400_000);

  afterAll(async () => {
    for (const a of Object.values(agents)) a.kill('SIGTERM');
    if (api) {
      const items = ((await call('GET', '/api/v1/instances?limit=100').catch(() => null))?.json?.items ??
        []) as {
        id: string;
      }[];
      for (const i of items) await call('DELETE', `/api/v1/instances/${i.id}`).catch(() => {});
    }
    up?.child.kill('SIGTERM');
    await up?.exited;
    // QEMU processes the agents left (a killed agent's VMs keep running by design).
    for (const d of Object.values(agentDirs)) {
      killLeftoverVms(d);
      rmSync(d, { recursive: true, force: true });
    }
    teardownNetwork();
    if (dir) {
      killLeftoverVms(dir);
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('live-migrates a counting guest between namespaces, then rebuilds it when its host dies (HA)', async () => {
    // On host A (B in maintenance for the create).
    await call('PATCH', `/api/v1/hosts/${hostIds['mh-b']}`, { maintenance: true });
    const created = await call('POST', '/api/v1/instances', {
      name: 'counter',
      image: 'tiny',
      flavor: 'tiny.small',
      userData: COUNTER,
      ha: true,
    });
    expect(created.status, JSON.stringify(created.json)).toBe(202);
    const id = created.json.id as string;
    expect(created.json.hostId).toBe(hostIds['mh-a']);
    await call('PATCH', `/api/v1/hosts/${hostIds['mh-b']}`, { maintenance: false });
    await until('guest ready on A', async () => {
      const i = (await call('GET', `/api/v1/instances/${id}`)).json;
      return i.state === 'running' && i.guestReady === true;
    });
    await until('ticks on A', async () => ticks(await consoleOf(id)).length >= 3);

    const m = await call('POST', `/api/v1/instances/${id}/migrate`, { host: 'mh-b' });
    expect(m.status, JSON.stringify(m.json)).toBe(202);
    const done = await until('migration end', async () => {
      const r = (await call('GET', `/api/v1/migrations/${m.json.id}`)).json;
      return r.state === 'completed' || r.state === 'failed' ? r : undefined;
    });
    expect(done, JSON.stringify(done)).toMatchObject({ state: 'completed', targetHost: hostIds['mh-b'] });
    process.stdout.write(
      `live migration A→B: downtime ${done.downtimeMs} ms, total ${done.totalTimeMs} ms, ${done.transferredBytes} bytes\n`,
    );
    expect(done.transferredBytes).toBeGreaterThan(1024 * 1024);
    expect(done.downtimeMs).toBeLessThan(5_000);
    const moved = (await call('GET', `/api/v1/instances/${id}`)).json;
    expect(moved).toMatchObject({ hostId: hostIds['mh-b'], state: 'running', guestReady: true });

    // The counter keeps going on B, with no reboot in between.
    const before = ticks(await consoleOf(id));
    await until(
      'ticks on B',
      async () => Math.max(...ticks(await consoleOf(id))) >= Math.max(...before) + 3,
      60_000,
    );
    const all = ticks(await consoleOf(id));
    for (let k = 1; k < all.length; k++) expect(all[k]).toBeGreaterThan(all[k - 1]!);
    expect((await consoleOf(id)).match(/YUNHAI-BOOT/g)?.length).toBe(1);

    // Host B's agent dies: after the grace period B is down and the HA instance boots on A.
    agents['mh-b']!.kill('SIGKILL');
    await until(
      'HA rebuild on A',
      async () => {
        const i = (await call('GET', `/api/v1/instances/${id}`)).json;
        return i.hostId === hostIds['mh-a'] && i.state === 'running' && i.guestReady === true;
      },
      180_000,
    );
    const audit = await call('GET', '/api/v1/audit?action=compute:EvacuateInstance');
    expect(audit.json.items[0]).toMatchObject({ resource: `instance/${id}` });
  }, 600_000);
});
