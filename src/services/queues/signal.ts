import pg from 'pg';
import type { Logger } from 'pino';

/**
 * Wakes long polls when a queue gets a message. In-process waiters are woken directly; with
 * PostgreSQL, senders also `pg_notify` in their transaction (delivered at commit) and every
 * control-plane replica LISTENs, so a receive waiting on one replica wakes for a send on another.
 */
export const NOTIFY_CHANNEL = 'yunhai_sqs';

export interface QueueSignal {
  /** Resolves when `queueId` is notified, after `ms`, or when `abort` fires, whichever is first. */
  wait(queueId: string, ms: number, abort?: AbortSignal): Promise<void>;
  notify(queueId: string): void;
  /** Wakes every waiter (shutdown). */
  wakeAll(): void;
}

export function createQueueSignal(): QueueSignal {
  const waiters = new Map<string, Set<() => void>>();
  return {
    wait(queueId, ms, abort) {
      return new Promise<void>((resolve) => {
        let set = waiters.get(queueId);
        if (!set) {
          set = new Set();
          waiters.set(queueId, set);
        }
        const done = () => {
          clearTimeout(timer);
          abort?.removeEventListener('abort', done);
          const s = waiters.get(queueId);
          s?.delete(done);
          if (s?.size === 0) waiters.delete(queueId);
          resolve();
        };
        const timer = setTimeout(done, Math.max(0, ms));
        abort?.addEventListener('abort', done);
        set.add(done);
      });
    },
    notify(queueId) {
      const set = waiters.get(queueId);
      if (set) for (const w of [...set]) w();
    },
    wakeAll() {
      for (const set of [...waiters.values()]) for (const w of [...set]) w();
    },
  };
}

/** LISTENs on NOTIFY_CHANNEL and forwards queue ids to `signal`; reconnects after a lost connection. */
export function listenPostgres(
  url: string,
  signal: QueueSignal,
  logger?: Logger,
): { close(): Promise<void> } {
  let closed = false;
  let client: pg.Client | undefined;
  let retry: NodeJS.Timeout | undefined;
  const connect = async () => {
    if (closed) return;
    const c = new pg.Client({ connectionString: url });
    client = c;
    const lost = () => {
      if (closed || client !== c) return;
      client = undefined;
      c.end().catch(() => {});
      // Messages sent while disconnected: wake everyone, they re-check the database.
      signal.wakeAll();
      retry = setTimeout(connect, 1000);
      retry.unref();
    };
    c.on('error', lost);
    c.on('end', lost);
    c.on('notification', (n) => {
      if (n.payload) signal.notify(n.payload);
    });
    try {
      await c.connect();
      await c.query(`LISTEN ${NOTIFY_CHANNEL}`);
    } catch (err) {
      logger?.warn({ err: String(err) }, 'sqs LISTEN connection failed; retrying');
      lost();
    }
  };
  void connect();
  return {
    async close() {
      closed = true;
      if (retry) clearTimeout(retry);
      await client?.end().catch(() => {});
    },
  };
}
