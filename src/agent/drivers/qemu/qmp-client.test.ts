import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { HypervisorError } from '../../hypervisor.js';
import { sleep } from './process.js';
import { connectQmp, type QmpClient, QmpCommandFailed } from './qmp-client.js';
import { qemuAvailable } from './test-guest.js';

const GREETING = {
  QMP: { version: { qemu: { major: 7, minor: 2, micro: 0 }, package: 'fake' }, capabilities: [] },
};

/** A scripted QMP server: `onCommand` decides what to send back for each command line. */
async function fakeServer(
  path: string,
  onCommand: (msg: { execute: string; id?: unknown }, sock: net.Socket) => void,
  opts: { greeting?: boolean } = {},
): Promise<net.Server> {
  const server = net.createServer((sock) => {
    if (opts.greeting !== false) sock.write(`${JSON.stringify(GREETING)}\n`);
    let buf = '';
    sock.on('data', (chunk) => {
      buf += chunk.toString();
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const msg = JSON.parse(line) as { execute: string; id?: unknown };
        if (msg.execute === 'qmp_capabilities') sock.write(`${JSON.stringify({ return: {}, id: msg.id })}\n`);
        else onCommand(msg, sock);
      }
    });
    sock.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(path, r));
  return server;
}

const codeOf = (err: unknown) => (err instanceof HypervisorError ? err.code : String(err));

describe('QMP client against a scripted server', () => {
  let dir: string;
  const servers: net.Server[] = [];
  const clients: QmpClient[] = [];
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'yh-qmp-'));
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
    for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('matches replies to commands by id, whatever order they come back in, with events in between', async () => {
    const path = join(dir, 'order.sock');
    const held: Array<{ id?: unknown; execute: string }> = [];
    servers.push(
      await fakeServer(path, (msg, sock) => {
        held.push(msg);
        if (held.length === 2) {
          sock.write(
            `${JSON.stringify({ event: 'RESET', data: { guest: false }, timestamp: { seconds: 5, microseconds: 500000 } })}\n`,
          );
          // Reply in reverse order, split across writes mid-line.
          const second = JSON.stringify({ return: { which: held[1]!.execute }, id: held[1]!.id });
          sock.write(second.slice(0, 7));
          setTimeout(
            () =>
              sock.write(
                `${second.slice(7)}\n${JSON.stringify({ return: { which: held[0]!.execute }, id: held[0]!.id })}\n`,
              ),
            10,
          );
        }
      }),
    );
    const client = await connectQmp(path);
    clients.push(client);
    expect(client.version.qemu.major).toBe(7);
    const events: string[] = [];
    client.onEvent((e) => events.push(`${e.event}@${e.timestamp}`));
    const [a, b] = await Promise.all([client.execute('query-a'), client.execute('query-b')]);
    expect(a).toEqual({ which: 'query-a' });
    expect(b).toEqual({ which: 'query-b' });
    expect(events).toEqual(['RESET@5.5']);
  });

  it('turns a QMP error into CommandFailed carrying its class and description', async () => {
    const path = join(dir, 'error.sock');
    servers.push(
      await fakeServer(path, (msg, sock) => {
        sock.write(
          `${JSON.stringify({ error: { class: 'DeviceNotFound', desc: "Device 'x' not found" }, id: msg.id })}\n`,
        );
      }),
    );
    const client = await connectQmp(path);
    clients.push(client);
    const err = await client.execute('device_del', { id: 'x' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QmpCommandFailed);
    expect(err).toMatchObject({
      code: 'CommandFailed',
      errorClass: 'DeviceNotFound',
      desc: "Device 'x' not found",
    });
  });

  it('times out a command that gets no reply, and keeps working afterwards', async () => {
    const path = join(dir, 'slow.sock');
    servers.push(
      await fakeServer(path, (msg, sock) => {
        if (msg.execute === 'hang') {
          // Reply much later: the late reply must be ignored.
          setTimeout(() => sock.write(`${JSON.stringify({ return: 'late', id: msg.id })}\n`), 150);
        } else sock.write(`${JSON.stringify({ return: 'ok', id: msg.id })}\n`);
      }),
    );
    const client = await connectQmp(path);
    clients.push(client);
    const started = Date.now();
    expect(codeOf(await client.execute('hang', undefined, { timeoutMs: 50 }).catch((e) => e))).toBe(
      'MonitorTimeout',
    );
    expect(Date.now() - started).toBeLessThan(140);
    await sleep(200);
    expect(await client.execute('ping')).toBe('ok');
  });

  it('fails pending commands with MonitorDisconnected when the server hangs up, and later ones too', async () => {
    const path = join(dir, 'hangup.sock');
    servers.push(await fakeServer(path, (_msg, sock) => setTimeout(() => sock.destroy(), 20)));
    const client = await connectQmp(path);
    clients.push(client);
    const closed = new Promise((r) => client.onClose(r));
    expect(codeOf(await client.execute('query-status').catch((e) => e))).toBe('MonitorDisconnected');
    await closed;
    expect(client.closed).toBe(true);
    expect(codeOf(await client.execute('query-status').catch((e) => e))).toBe('MonitorDisconnected');
  });

  it('times out connecting to a server that never greets', async () => {
    const path = join(dir, 'mute.sock');
    servers.push(await fakeServer(path, () => {}, { greeting: false }));
    const started = Date.now();
    expect(codeOf(await connectQmp(path, { timeoutMs: 100 }).catch((e) => e))).toBe('MonitorTimeout');
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('reports MonitorDisconnected when nothing listens on the socket', async () => {
    expect(codeOf(await connectQmp(join(dir, 'nobody.sock')).catch((e) => e))).toBe('MonitorDisconnected');
  });

  it('refuses a server that does not speak QMP', async () => {
    const path = join(dir, 'http.sock');
    const server = net.createServer((sock) => sock.write('HTTP/1.1 400 Bad Request\r\n\r\n'));
    await new Promise<void>((r) => server.listen(path, r));
    servers.push(server);
    expect(codeOf(await connectQmp(path, { timeoutMs: 500 }).catch((e) => e))).toBe('MonitorDisconnected');
  });

  it('waits for a matching event', async () => {
    const path = join(dir, 'event.sock');
    servers.push(
      await fakeServer(path, (msg, sock) => {
        sock.write(`${JSON.stringify({ return: {}, id: msg.id })}\n`);
        setTimeout(() => {
          sock.write(`${JSON.stringify({ event: 'STOP', timestamp: { seconds: 1, microseconds: 0 } })}\n`);
          sock.write(
            `${JSON.stringify({ event: 'SHUTDOWN', data: { guest: true, reason: 'guest-shutdown' }, timestamp: { seconds: 2, microseconds: 0 } })}\n`,
          );
        }, 10);
      }),
    );
    const client = await connectQmp(path);
    clients.push(client);
    const shutdown = client.waitForEvent((e) => e.event === 'SHUTDOWN', 1000);
    await client.execute('system_powerdown');
    expect((await shutdown).data).toEqual({ guest: true, reason: 'guest-shutdown' });
    expect(codeOf(await client.waitForEvent(() => false, 30).catch((e) => e))).toBe('MonitorTimeout');
  });
});

describe.skipIf(!qemuAvailable)('QMP client against real QEMU (-machine none)', () => {
  let dir: string;
  let qemu: ChildProcess;
  let client: QmpClient;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'yh-qmp-real-'));
    const sock = join(dir, 'qmp.sock');
    qemu = spawn(
      'qemu-system-x86_64',
      ['-machine', 'none', '-nodefaults', '-display', 'none', '-qmp', `unix:${sock},server=on,wait=off`],
      { stdio: 'ignore' },
    );
    for (let i = 0; i < 200 && !existsSync(sock); i++) await sleep(25);
    client = await connectQmp(sock);
  });
  afterAll(async () => {
    await client?.close();
    qemu?.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  it('handshakes and reads the QEMU version from the greeting', async () => {
    expect(client.version.qemu.major).toBeGreaterThanOrEqual(7);
    expect(await client.execute('query-version')).toMatchObject({ qemu: client.version.qemu });
  });

  it('runs commands with arguments', async () => {
    const status = await client.execute<{ status: string }>('query-status');
    expect(['running', 'prelaunch']).toContain(status.status);
    const cmds = await client.execute<Array<{ name: string }>>('query-commands');
    expect(cmds.map((c) => c.name)).toContain('system_powerdown');
    expect(await client.execute('qom-list', { path: '/machine' })).toBeInstanceOf(Array);
  });

  it("reports QEMU's own error class for a bad command", async () => {
    const err = await client.execute('no-such-command').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'CommandFailed', errorClass: 'CommandNotFound' });
    const err2 = await client.execute('device_del', { id: 'nope' }).catch((e: unknown) => e);
    expect(err2).toMatchObject({ code: 'CommandFailed', errorClass: 'DeviceNotFound' });
  });

  it('sees the SHUTDOWN event and the disconnect when QEMU quits', async () => {
    const shutdown = client.waitForEvent((e) => e.event === 'SHUTDOWN', 5000);
    const closed = new Promise<HypervisorError>((r) => client.onClose(r));
    await client.execute('quit');
    expect((await shutdown).data).toMatchObject({ guest: false, reason: 'host-qmp-quit' });
    expect((await closed).code).toBe('MonitorDisconnected');
  });
});
