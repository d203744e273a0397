import type { Logger } from 'pino';
import WebSocket from 'ws';
import { type Hypervisor, HypervisorError } from './hypervisor.js';

export interface ConsoleBridgeOptions {
  /** Base URL of the control plane's api listener (http or https). */
  controlPlane: string;
  /** The host's bearer token (known only after registration). */
  hostToken: () => string;
  driver: Hypervisor;
  logger?: Logger;
  /** How often new console output is looked for (default 50 ms). */
  pollMs?: number;
}

const CHUNK = 64 * 1024;
/** Stop reading output while this much is still queued on the socket. */
const MAX_BUFFERED = 1024 * 1024;

interface Bridge {
  close(code: number, reason: string): void;
  closed: Promise<void>;
}

/**
 * The agent's side of interactive consoles. The control plane lists the instances that have
 * viewers in its desired-state answer (`consoleSessions`); `sync` opens one WebSocket per listed
 * instance to `/agent/v1/instances/{id}/console/ws` and closes the ones no longer listed. Frames
 * from the control plane are written to the guest's serial port; console output from the moment
 * the bridge opened is read from the driver every `pollMs` and sent back.
 */
export function createConsoleBridges(opts: ConsoleBridgeOptions) {
  const { driver, logger: log } = opts;
  const pollMs = opts.pollMs ?? 50;
  const wsBase = opts.controlPlane.replace(/\/$/, '').replace(/^http/, 'ws');
  const bridges = new Map<string, Bridge>();

  function open(id: string): Bridge {
    let stopped = false;
    let ws: WebSocket | undefined;
    let timer: NodeJS.Timeout | undefined;
    let resolveClosed!: () => void;
    const closed = new Promise<void>((r) => {
      resolveClosed = r;
    });
    const finish = () => {
      stopped = true;
      clearTimeout(timer);
      if (bridges.get(id) === bridge) bridges.delete(id);
      resolveClosed();
    };
    const closeWith = (code: number, reason: string) => {
      if (!ws) return finish();
      if (ws.readyState === WebSocket.CONNECTING) return ws.terminate();
      if (ws.readyState !== WebSocket.OPEN) return;
      try {
        ws.close(code, reason.slice(0, 120));
      } catch {
        ws.terminate();
      }
    };
    const failure = (e: unknown): [number, string] => {
      if (e instanceof HypervisorError && (e.code === 'InvalidState' || e.code === 'NotDefined'))
        return [4409, `the instance is not running on its host (${e.code})`];
      return [1011, `console bridge failed: ${e instanceof Error ? e.message : String(e)}`];
    };

    // Output: poll the driver's console from where it stood when the bridge opened.
    let offset = 0;
    let reading = false;
    const poll = async () => {
      if (stopped || reading || !ws || ws.readyState !== WebSocket.OPEN) return;
      reading = true;
      clearTimeout(timer);
      try {
        for (let i = 0; i < 16 && ws.bufferedAmount < MAX_BUFFERED; i++) {
          const r = await driver.readConsole(id, offset, CHUNK);
          if (stopped) return;
          if (r.data.length > 0) ws.send(r.data, { binary: true });
          offset = r.next;
          if (r.data.length < CHUNK) break;
        }
      } catch (e) {
        closeWith(...failure(e));
        return;
      } finally {
        reading = false;
      }
      if (!stopped) timer = setTimeout(() => void poll(), pollMs);
    };

    // Input: keystrokes are coalesced and written one batch at a time.
    const pending: Buffer[] = [];
    let writing = false;
    const write = async () => {
      if (writing) return;
      writing = true;
      try {
        while (pending.length > 0 && !stopped) {
          await driver.writeConsole(id, Buffer.concat(pending.splice(0)));
          void poll(); // the echo is usually there at once
        }
      } catch (e) {
        closeWith(...failure(e));
      } finally {
        writing = false;
      }
    };

    const bridge: Bridge = { close: closeWith, closed };
    void (async () => {
      try {
        offset = (await driver.readConsole(id, Number.MAX_SAFE_INTEGER, 1)).next;
      } catch (e) {
        // Still connect, so the viewer learns why instead of waiting for a timeout.
        const [code, reason] = failure(e);
        pending.length = 0;
        stopped = true;
        connect(() => closeWith(code, reason));
        return;
      }
      connect(() => void poll());
    })();

    function connect(onOpen: () => void) {
      if (bridges.get(id) !== bridge) return finish();
      const socket = new WebSocket(`${wsBase}/agent/v1/instances/${id}/console/ws`, {
        headers: { authorization: `Bearer ${opts.hostToken()}` },
        maxPayload: 1024 * 1024,
      });
      ws = socket;
      socket.on('open', onOpen);
      socket.on('message', (data: WebSocket.RawData) => {
        const buf = Array.isArray(data)
          ? Buffer.concat(data)
          : Buffer.isBuffer(data)
            ? data
            : Buffer.from(data as ArrayBuffer);
        if (stopped || buf.length === 0) return;
        pending.push(buf);
        void write();
      });
      socket.on('close', (code, reason) => {
        log?.debug({ id, code, reason: reason.toString() }, 'console bridge closed');
        finish();
      });
      socket.on('error', (err) => {
        log?.warn({ id, err: String(err) }, 'console bridge socket error');
      });
    }

    return bridge;
  }

  return {
    /** Opens bridges for the listed instances and closes the others. */
    sync(instanceIds: readonly string[]) {
      const wanted = new Set(instanceIds);
      for (const [id, b] of bridges) if (!wanted.has(id)) b.close(1000, 'no viewers');
      for (const id of wanted) {
        if (bridges.has(id)) continue;
        log?.info({ id }, 'opening console bridge');
        const b = open(id);
        bridges.set(id, b);
      }
    },
    /** Instance ids with an open (or opening) bridge. */
    active: () => [...bridges.keys()],
    async closeAll() {
      const all = [...bridges.values()];
      for (const b of all) b.close(1001, 'the host agent is stopping');
      await Promise.all(all.map((b) => Promise.race([b.closed, new Promise((r) => setTimeout(r, 2000))])));
    },
  };
}

export type ConsoleBridges = ReturnType<typeof createConsoleBridges>;
