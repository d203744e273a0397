import { EventEmitter } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createFakeDriver, type FakeDriver } from '../../agent/drivers/fake/fake-driver.js';
import { apiRequest } from '../../test-support/api.js';
import { seedComputeFixture } from '../../test-support/compute-fixture.js';
import { startTestControlPlane, type TestControlPlane } from '../../test-support/control-plane.js';
import { createHostNotifier } from '../hosts/notifier.js';
import { createConsoleRelay, holdMessages } from './console-relay.js';

/** A viewer: collects every frame as text and records how the socket closed. */
function viewer(url: string, headers: Record<string, string> = {}) {
  const ws = new WebSocket(url, { headers });
  let text = '';
  const waiters: Array<() => void> = [];
  ws.on('message', (d: Buffer) => {
    text += d.toString('utf8');
    for (const w of waiters.splice(0)) w();
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString('utf8') }));
  });
  ws.on('error', () => {});
  const opened = new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
  });
  return {
    ws,
    opened,
    closed,
    text: () => text,
    /** Resolves once the output contains `needle`. */
    async waitFor(needle: string, ms = 5000) {
      const end = Date.now() + ms;
      while (!text.includes(needle)) {
        if (Date.now() > end) throw new Error(`no ${JSON.stringify(needle)} in ${JSON.stringify(text)}`);
        await new Promise<void>((r) => {
          waiters.push(r);
          setTimeout(r, 100);
        });
      }
    },
  };
}

const until = async (what: string, pred: () => boolean | Promise<boolean>, ms = 5000) => {
  const end = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
};

describe('interactive console over WebSocket (fake driver, sqlite)', () => {
  let cp: TestControlPlane;
  let driver: FakeDriver;
  let api: string;
  let wsBase: string;
  let owner: string;
  let other: string;
  let id: string;

  const call = (method: string, path: string, token: string, body?: unknown) =>
    apiRequest(api, token, method, path, body);
  const state = async () => (await call('GET', `/api/v1/instances/${id}`, owner)).json.state as string;
  const consoleUrl = (instanceId = id) => `${wsBase}/api/v1/instances/${instanceId}/console/ws`;
  const bridges = async () => (await cp.agent())!.consoleBridges();

  beforeAll(async () => {
    driver = createFakeDriver({ bootMs: 30, capabilities: { vcpus: 8, memoryMiB: 4096, diskGiB: 100 } });
    cp = await startTestControlPlane({
      localAgent: { driver, heartbeatMs: 200, stopTimeoutMs: 1000 },
    });
    api = cp.endpoints.api;
    wsBase = api.replace(/^http/, 'ws');
    await cp.agent();
    ({ owner, other } = await seedComputeFixture(cp));
    const r = await call('POST', '/api/v1/instances', owner, {
      name: 'con-1',
      image: 'tiny',
      flavor: 'tiny.small',
    });
    expect(r.status).toBe(202);
    id = r.json.id;
    await until('running', async () => (await state()) === 'running', 10_000);
  });
  afterAll(async () => cp?.stop());

  it('relays keystrokes to the guest and its output back (Bearer header), audited once', async () => {
    const v = viewer(consoleUrl(), { authorization: `Bearer ${owner}` });
    await v.opened;
    v.ws.send('hello\n');
    await v.waitFor('hello');
    expect(await bridges()).toEqual([id]);
    v.ws.send(Buffer.from('binary-keys\n'));
    await v.waitFor('binary-keys');
    v.ws.close();
    expect((await v.closed).code).toBe(1005);
    // The last viewer leaving ends the agent's bridge.
    await until('agent bridge closed', async () => (await bridges()).length === 0);
    const audit = await cp.database.db
      .selectFrom('audit_events')
      .selectAll()
      .where('action', '=', 'compute:ConnectConsole')
      .execute();
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ resource: `instance/${id}`, outcome: 'success' });
  });

  it('accepts ?token= and fans output to every viewer; input from any reaches the guest', async () => {
    const a = viewer(`${consoleUrl()}?token=${encodeURIComponent(owner)}`);
    const b = viewer(consoleUrl(), { authorization: `Bearer ${owner}` });
    await Promise.all([a.opened, b.opened]);
    a.ws.send('from-a\n');
    await Promise.all([a.waitFor('from-a'), b.waitFor('from-a')]);
    b.ws.send('from-b\n');
    await Promise.all([a.waitFor('from-b'), b.waitFor('from-b')]);
    a.ws.close();
    await a.closed;
    // One viewer left: the bridge stays.
    await new Promise((r) => setTimeout(r, 200));
    expect(await bridges()).toEqual([id]);
    b.ws.send('still-here\n');
    await b.waitFor('still-here');
    b.ws.close();
    await b.closed;
    await until('agent bridge closed', async () => (await bridges()).length === 0);
  });

  it("closes another tenant's connection with 4404", async () => {
    const v = viewer(consoleUrl(), { authorization: `Bearer ${other}` });
    const c = await v.closed;
    expect(c.code).toBe(4404);
    expect(c.reason).toMatch(/does not exist/);
    const missing = await viewer(consoleUrl('i-000000000000'), { authorization: `Bearer ${owner}` }).closed;
    expect(missing.code).toBe(4404);
  });

  it('closes unauthenticated connections with 4401', async () => {
    expect((await viewer(consoleUrl()).closed).code).toBe(4401);
    const bad = await viewer(`${consoleUrl()}?token=not-a-token`).closed;
    expect(bad.code).toBe(4401);
    expect(bad.reason).toMatch(/session token/);
  });

  it('refuses the agent route without a host token and without a session', async () => {
    const noToken = await viewer(`${wsBase}/agent/v1/instances/${id}/console/ws`).closed;
    expect(noToken.code).toBe(4401);
    // A tenant session token is not a host token.
    const tenant = await viewer(`${wsBase}/agent/v1/instances/${id}/console/ws`, {
      authorization: `Bearer ${owner}`,
    }).closed;
    expect(tenant.code).toBe(4401);
  });

  it('closes with 4409 when the instance is not running', async () => {
    expect((await call('POST', `/api/v1/instances/${id}/stop`, owner)).status).toBeLessThan(300);
    await until('stopped', async () => (await state()) === 'stopped', 10_000);
    const c = await viewer(consoleUrl(), { authorization: `Bearer ${owner}` }).closed;
    expect(c.code).toBe(4409);
    expect(c.reason).toMatch(/stopped/);
  });
});

describe('console relay', () => {
  /** Enough of a ws socket for the relay: events, send, close. */
  function fakeSocket() {
    const e = new EventEmitter() as EventEmitter & Record<string, unknown>;
    const sent: Buffer[] = [];
    let closedWith: { code: number; reason: string } | undefined;
    Object.assign(e, {
      OPEN: 1,
      CLOSING: 2,
      CLOSED: 3,
      readyState: 1,
      bufferedAmount: 0,
      send: (d: Buffer) => sent.push(d),
      close: (code: number, reason: string) => {
        closedWith = { code, reason };
        e.readyState = 3;
        e.emit('close', code, Buffer.from(reason));
      },
      terminate: () => {},
    });
    return { ws: e as unknown as WebSocket, sent, closed: () => closedWith };
  }

  it('closes a session no agent attaches to with 4504 and a reason; buffers early input', async () => {
    const notifier = createHostNotifier();
    const relay = createConsoleRelay({ notifier, agentWaitMs: 100 });
    const v = fakeSocket();
    relay.attachViewer('i-aaaaaaaaaaaa', 'host-1', v.ws, holdMessages(v.ws));
    expect(relay.sessionsFor('host-1')).toEqual({ generation: 1, instanceIds: ['i-aaaaaaaaaaaa'] });
    await new Promise((r) => setTimeout(r, 200));
    expect(v.closed()).toMatchObject({ code: 4504 });
    expect(v.closed()?.reason).toMatch(/did not attach/);
    expect(relay.sessionsFor('host-1')).toEqual({ generation: 2, instanceIds: [] });

    const w = fakeSocket();
    relay.attachViewer('i-bbbbbbbbbbbb', 'host-1', w.ws, holdMessages(w.ws));
    w.ws.emit('message', Buffer.from('early'), true);
    const agent = fakeSocket();
    relay.attachAgent('i-bbbbbbbbbbbb', 'host-1', agent.ws, holdMessages(agent.ws));
    expect(Buffer.concat(agent.sent).toString()).toBe('early');
    agent.ws.emit('message', Buffer.from('out'), true);
    expect(Buffer.concat(w.sent).toString()).toBe('out');
    // The agent going away ends the session for viewers with a code they can act on.
    agent.ws.close(4409, 'not running');
    expect(w.closed()).toMatchObject({ code: 4409, reason: 'not running' });
    // An agent for a session nobody opened is turned away.
    const stray = fakeSocket();
    relay.attachAgent('i-cccccccccccc', 'host-1', stray.ws, holdMessages(stray.ws));
    expect(stray.closed()).toMatchObject({ code: 4410 });
  });
});
