import { randomBytes } from 'node:crypto';
import type { Database } from '../../platform/db/database.js';
import { recordUsage, type UsageInput } from '../../platform/usage/ledger.js';

/** Object-storage meters written to the usage ledger (see the billing catalogue). */
export const S3_METERS = {
  storageByteSeconds: 's3.storage-byte-seconds',
  /** PUT, COPY, POST, LIST (AWS's tier-1 requests). */
  requestsClassA: 's3.requests-class-a',
  /** GET, HEAD and everything else. */
  requestsClassB: 's3.requests-class-b',
  egressBytes: 's3.egress-bytes',
} as const;

export type RequestClass = 'A' | 'B';

/**
 * Request counts and egress bytes are summed in memory per tenant and bucket and written to the
 * ledger by `flush()` (a background loop, and on shutdown): one row per meter and bucket per
 * flush rather than one per request, so reads never write to the database. A crash loses at most
 * one flush interval of request counts; stored byte-seconds are accrued in the bucket row in the
 * same transaction as every change and are never lost.
 */
export function createObjectMeter(database: Database, now: () => number = Date.now) {
  type Key = string; // tenant \0 bucket \0 meter
  let counts = new Map<Key, number>();
  let since = now();

  const add = (tenantId: string, bucket: string, meter: string, n: number) => {
    if (n <= 0) return;
    const k = `${tenantId}\0${bucket}\0${meter}`;
    counts.set(k, (counts.get(k) ?? 0) + n);
  };

  return {
    request(tenantId: string, bucket: string, cls: RequestClass) {
      add(tenantId, bucket, cls === 'A' ? S3_METERS.requestsClassA : S3_METERS.requestsClassB, 1);
    },
    egress(tenantId: string, bucket: string, bytes: number) {
      add(tenantId, bucket, S3_METERS.egressBytes, bytes);
    },

    /** Writes pending request counts and egress, and the storage accrued in every bucket, to the ledger. */
    async flush(): Promise<number> {
      const t = now();
      const pending = counts;
      const periodStart = since;
      counts = new Map();
      since = t;
      const flushId = randomBytes(6).toString('hex');
      const rows: UsageInput[] = [...pending].map(([k, quantity]) => {
        const [tenantId, bucket, meter] = k.split('\0') as [string, string, string];
        return {
          tenantId,
          service: 's3',
          resourceId: bucket,
          meter,
          quantity,
          periodStart,
          periodEnd: t,
          idempotencyKey: `s3:${bucket}:${meter}:${periodStart}:${flushId}`,
        };
      });
      let written = 0;
      try {
        if (rows.length > 0) written += await database.tx((trx) => recordUsage(trx, rows, t));
      } catch (e) {
        for (const [k, v] of pending) counts.set(k, (counts.get(k) ?? 0) + v);
        since = periodStart;
        throw e;
      }
      written += await flushStorage(database, t);
      return written;
    },
  };
}

export type ObjectMeter = ReturnType<typeof createObjectMeter>;

/** Moves every bucket's accrued byte-seconds (brought up to `t`) into the ledger, one transaction per bucket. */
async function flushStorage(database: Database, t: number): Promise<number> {
  const buckets = await database.db
    .selectFrom('buckets')
    .select(['name', 'tenant_id', 'bytes_stored', 'accrued_byte_seconds', 'accrued_at'])
    .where((eb) => eb.or([eb('bytes_stored', '>', 0), eb('accrued_byte_seconds', '>', 0)]))
    .execute();
  let written = 0;
  for (const b of buckets) {
    written += await database.tx(async (trx) => {
      let q = trx.selectFrom('buckets').selectAll().where('name', '=', b.name);
      if (database.dialect === 'postgres') q = q.forUpdate();
      const row = await q.executeTakeFirst();
      if (!row || t <= row.accrued_at) return 0;
      const quantity = Math.min(
        Number.MAX_SAFE_INTEGER,
        row.accrued_byte_seconds + Math.floor((row.bytes_stored * (t - row.accrued_at)) / 1000),
      );
      await trx
        .updateTable('buckets')
        .set({ accrued_byte_seconds: 0, accrued_at: t })
        .where('name', '=', row.name)
        .execute();
      if (quantity === 0) return 0;
      return recordUsage(trx, [
        {
          tenantId: row.tenant_id,
          service: 's3',
          resourceId: row.name,
          meter: S3_METERS.storageByteSeconds,
          quantity,
          periodStart: row.accrued_at,
          periodEnd: t,
          idempotencyKey: `s3:${row.name}:storage:${row.created_at}:${t}`,
        },
      ]);
    });
  }
  return written;
}
