import type { Conn, Tx } from '../db/database.js';
import type { UsageRecordsTable } from '../db/schema.js';
import { newId } from '../ids.js';

/**
 * The usage ledger: what each tenant consumed, meter by meter, written in the same transaction
 * as the change that caused it. The idempotency key makes a retried or replayed write a no-op,
 * so billing can rate the ledger exactly once.
 */
export interface UsageInput {
  tenantId: string;
  service: string;
  resourceId: string;
  /** Meter name from the billing catalogue, e.g. `compute.vcpu-seconds`. */
  meter: string;
  /** Integer quantity in the meter's unit. */
  quantity: number;
  periodStart: number;
  periodEnd: number;
  idempotencyKey: string;
}

export type UsageRecord = UsageRecordsTable;

/** Inserts rows; a row whose idempotency key was already recorded is skipped. Returns how many were new. */
export async function recordUsage(trx: Tx, rows: UsageInput[], now = Date.now()): Promise<number> {
  let inserted = 0;
  for (const r of rows) {
    if (!Number.isSafeInteger(r.quantity) || r.quantity < 0)
      throw new Error(`usage quantity must be a non-negative integer: ${r.quantity}`);
    if (r.periodEnd < r.periodStart) throw new Error('usage period ends before it starts');
    const res = await trx
      .insertInto('usage_records')
      .values({
        id: newId('use'),
        tenant_id: r.tenantId,
        service: r.service,
        resource_id: r.resourceId,
        meter: r.meter,
        quantity: r.quantity,
        period_start: r.periodStart,
        period_end: r.periodEnd,
        idempotency_key: r.idempotencyKey,
        created_at: now,
      })
      .onConflict((oc) => oc.column('idempotency_key').doNothing())
      .executeTakeFirst();
    inserted += Number(res.numInsertedOrUpdatedRows ?? 0n);
  }
  return inserted;
}

export interface UsageFilter {
  tenantId?: string;
  meter?: string;
  service?: string;
  since?: number;
  until?: number;
  /** Keyset cursor: (period_start, id) of the last row of the previous page. */
  after?: { periodStart: number; id: string };
  limit: number;
}

export async function listUsage(conn: Conn, f: UsageFilter): Promise<UsageRecord[]> {
  let q = conn
    .selectFrom('usage_records')
    .selectAll()
    .orderBy('period_start', 'asc')
    .orderBy('id', 'asc')
    .limit(f.limit);
  if (f.tenantId !== undefined) q = q.where('tenant_id', '=', f.tenantId);
  if (f.meter !== undefined) q = q.where('meter', '=', f.meter);
  if (f.service !== undefined) q = q.where('service', '=', f.service);
  if (f.since !== undefined) q = q.where('period_start', '>=', f.since);
  if (f.until !== undefined) q = q.where('period_start', '<', f.until);
  const after = f.after;
  if (after) {
    q = q.where((eb) =>
      eb.or([
        eb('period_start', '>', after.periodStart),
        eb.and([eb('period_start', '=', after.periodStart), eb('id', '>', after.id)]),
      ]),
    );
  }
  return q.execute();
}

/** Sum per meter for a tenant over a period (the portal's usage overview, billing's cross-check). */
export async function summariseUsage(conn: Conn, tenantId: string, since: number, until: number) {
  const rows = await conn
    .selectFrom('usage_records')
    .select(['meter', (eb) => eb.fn.sum<number | string>('quantity').as('total')])
    .where('tenant_id', '=', tenantId)
    .where('period_start', '>=', since)
    .where('period_start', '<', until)
    .groupBy('meter')
    .orderBy('meter')
    .execute();
  return rows.map((r) => ({ meter: r.meter, total: Number(r.total) }));
}
