import pg from 'pg';
import type { Logger } from 'pino';

/**
 * Wakes long polls when a queue gets a message. In-process waiters are woken directly; with
 * PostgreSQL, senders also `pg_notify` in their transaction (delivered at commit) and every
 * control-plane replica LISTENs, so a receive waiting on one replica wakes for a send on another.
 */
export const NOTIFY_CHANNEL = 'yunhai_sqs';

/**
 * What a long poll needs of an abort signal. An AbortSignal is one; the SQS listener passes a lazier
 * one that looks at the client's connection and listens for its close only once a receive waits
 * (most receives answer at once, and an AbortController per receive showed in profiles).
 */
export interface AbortLike {
  readonly aborted: boolean;
  addEventListener(type: 'abort', listener: () => void): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

export interface QueueSignal {
  /**
   * Resolves when `queueId` is notified, after `ms`, or when `abort` fires, whichever is first.
   * `want` is how many messages the waiter takes at most.
   */
  wait(queueId: string, ms: number, abort?: AbortLike, want?: number): Promise<void>;
  /**
   * Wakes waiters of `queueId`, oldest first: only enough of them to take `messages` (all when it
   * is not known), so one batch does not wake every waiting receiver to find nothing.
   */
  notify(queueId: string, messages?: number): void;
  /** Wakes every waiter (shutdown). */
  wakeAll(): void;
}

export function createQueueSignal(): QueueSignal {
  const waiters = new Map<string, Map<() => void, number>>();
  return {
    wait(queueId, ms, abort, want = 10) {
      return new Promise<void>((resolve) => {
        let set = waiters.get(queueId);
        if (!set) {
          set = new Map();
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
        set.set(done, want);
      });
    },
    notify(queueId, messages) {
      const set = waiters.get(queueId);
      if (!set) return;
      let left = messages ?? Number.POSITIVE_INFINITY;
      for (const [w, want] of [...set]) {
        if (left <= 0) break;
        left -= want;
        w();
      }
    },
    wakeAll() {
      for (const set of [...waiters.values()]) for (const w of [...set.keys()]) w();
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
      if (!n.payload) return;
      const [queueId, count] = n.payload.split(':');
      signal.notify(queueId!, count ? Number(count) : undefined);
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
