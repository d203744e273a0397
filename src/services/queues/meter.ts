import { randomBytes } from 'node:crypto';
import type { Database } from '../../platform/db/database.js';
import { recordUsage, type UsageInput } from '../../platform/usage/ledger.js';

/** The SQS meter: requests, each 64 KiB chunk of a payload counting as one (as AWS bills them). */
export const SQS_REQUESTS_METER = 'sqs.requests';
export const CHUNK_BYTES = 64 * 1024;

/** Requests a payload of `bytes` counts as. */
export const requestChunks = (bytes: number) => Math.max(1, Math.ceil(bytes / CHUNK_BYTES));

/**
 * Request counts are summed in memory per tenant and queue and written to the usage ledger by
 * `flush()` (a background loop and shutdown), one row per queue per flush, so message traffic does
 * not double its database writes. A crash loses at most one interval of counts.
 */
export function createQueueMeter(database: Database, now: () => number = Date.now) {
  let counts = new Map<string, number>();
  let since = now();
  return {
    request(tenantId: string, queueId: string, payloadBytes: number) {
      const k = `${tenantId}\0${queueId}`;
      counts.set(k, (counts.get(k) ?? 0) + requestChunks(payloadBytes));
    },
    async flush(): Promise<number> {
      const t = now();
      const pending = counts;
      const periodStart = since;
      counts = new Map();
      since = t;
      if (pending.size === 0) return 0;
      const flushId = randomBytes(6).toString('hex');
      const rows: UsageInput[] = [...pending].map(([k, quantity]) => {
        const [tenantId, queueId] = k.split('\0') as [string, string];
        return {
          tenantId,
          service: 'sqs',
          resourceId: queueId,
          meter: SQS_REQUESTS_METER,
          quantity,
          periodStart,
          periodEnd: t,
          idempotencyKey: `sqs:${queueId}:${periodStart}:${flushId}`,
        };
      });
      try {
        return await database.tx((trx) => recordUsage(trx, rows, t));
      } catch (e) {
        for (const [k, v] of pending) counts.set(k, (counts.get(k) ?? 0) + v);
        since = periodStart;
        throw e;
      }
    },
  };
}

export type QueueMeter = ReturnType<typeof createQueueMeter>;
