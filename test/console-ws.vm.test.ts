import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { apiRequest, runRealVmTests } from '../src/test-support/api.js';
import { startQemuTestControlPlane } from '../src/test-support/qemu-control-plane.js';

/**
 * The interactive serial console end to end on a real VM: the tiny guest under QEMU (TCG) runs a
 * root shell on ttyS0 once ready; a WebSocket viewer types into it and reads the answer.
 */
describe.skipIf(!runRealVmTests)('interactive console on QEMU over WebSocket', () => {
  let cp: Awaited<ReturnType<typeof startQemuTestControlPlane>>;
  let token: string;
  let id: string;

  const call = (method: string, path: string, body?: unknown) =>
    apiRequest(cp.endpoints.api, token, method, path, body);

  beforeAll(async () => {
    cp = await startQemuTestControlPlane({ stopTimeoutMs: 1000 });
    token = cp.token;
  }, 300_000);
  afterAll(async () => {
    if (id) await call('DELETE', `/api/v1/instances/${id}`).catch(() => {});
    const end = Date.now() + 20_000;
    while (id && Date.now() < end && (await call('GET', `/api/v1/instances/${id}`)).status !== 404)
      await new Promise((r) => setTimeout(r, 200));
    await cp?.stop();
  }, 60_000);

  it('types into the guest shell and reads the answer', async () => {
    const r = await call('POST', '/api/v1/instances', {
      name: 'vm-console',
      image: 'tiny',
      flavor: 'tiny.small',
    });
    expect(r.status).toBe(202);
    id = r.json.id;
    const end = Date.now() + 30_000;
    for (;;) {
      const i = (await call('GET', `/api/v1/instances/${id}`)).json;
      if (i.state === 'error') throw new Error(i.errorReason);
      if (i.state === 'running' && i.guestReady) break;
      if (Date.now() > end) throw new Error(`guest not ready: ${JSON.stringify(i)}`);
      await new Promise((res) => setTimeout(res, 200));
    }

    const url = `${cp.endpoints.api.replace(/^http/, 'ws')}/api/v1/instances/${id}/console/ws?token=${encodeURIComponent(token)}`;
    const ws = new WebSocket(url);
    let out = '';
    ws.on('message', (d: Buffer) => {
      out += d.toString('utf8');
    });
    const closed = new Promise<number>((res) => ws.on('close', (code) => res(code)));
    await new Promise<void>((res, rej) => {
      ws.once('open', () => res());
      ws.once('error', rej);
    });
    // The shell may still be starting: ask again until it answers.
    const deadline = Date.now() + 15_000;
    while (!out.includes('ws-42')) {
      if (Date.now() > deadline)
        throw new Error(`no answer; console said ${JSON.stringify(out.slice(-500))}`);
      ws.send('echo ws-$((20+22))\n');
      await new Promise((res) => setTimeout(res, 1500));
    }
    expect(out).toContain('ws-42');
    ws.close();
    expect(await closed).toBe(1005);
    const agent = await cp.agent();
    const until = Date.now() + 5000;
    while (agent!.consoleBridges().length > 0 && Date.now() < until)
      await new Promise((res) => setTimeout(res, 50));
    expect(agent!.consoleBridges()).toEqual([]);
  }, 60_000);
});
