import { sql } from 'kysely';
import type { Database, Tx } from '../../platform/db/database.js';
import type { BillingAccumulatorsTable, BillingChargesTable } from '../../platform/db/schema.js';
import { toCardVersion } from './rate-cards.js';
import {
  type Accumulator,
  accumulatorFromStored,
  accumulatorKey,
  accumulatorToStored,
  type ChargeLine,
  monthOf,
  monthStart,
  nextMonthStart,
  PriceBook,
  type RatingState,
  rateUsage,
  type UsageRow,
} from './rating.js';

/** One key for every replica: the rater and invoice finalisation serialise on it (PostgreSQL). */
export const BILLING_LOCK_KEY = 0x59_48_42_4c; // "YHBL"
export const WATERMARK_KEY = 'billing.rater_watermark';
/** Ledger rows committed this long after their created_at are still found by the incremental scan. */
export const LOOKBACK_MS = 10 * 60_000;

/**
 * Takes billing's transaction-scoped lock. PostgreSQL: an advisory lock (`wait: false` answers
 * false when another replica holds it); SQLite has a single writer already.
 */
export async function billingLock(database: Database, trx: Tx, wait: boolean): Promise<boolean> {
  if (database.dialect !== 'postgres') return true;
  if (wait) {
    await sql`select pg_advisory_xact_lock(${BILLING_LOCK_KEY})`.execute(trx);
    return true;
  }
  const r = await sql<{ ok: boolean }>`select pg_try_advisory_xact_lock(${BILLING_LOCK_KEY}) as ok`.execute(
    trx,
  );
  return r.rows[0]?.ok === true;
}

const chunks = <T>(xs: T[], n: number): T[][] => {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += n) out.push(xs.slice(i, i + n));
  return out;
};

/** Periods closed for new charges: a tenant's period with a finalised, paid or void invoice. */
export async function closedPeriods(conn: Tx | Database['db'], tenantIds: string[]): Promise<Set<string>> {
  const closed = new Set<string>();
  for (const part of chunks(tenantIds, 500)) {
    const rows = await conn
      .selectFrom('billing_invoices')
      .select(['tenant_id', 'period_start'])
      .where('tenant_id', 'in', part)
      .where('state', '!=', 'draft')
      .execute();
    for (const r of rows) closed.add(`${r.tenant_id}:${r.period_start}`);
  }
  return closed;
}

/** A closed period's late usage goes to the tenant's next open period. */
export const periodMapper = (closed: Set<string>) => (tenantId: string, t: number) => {
  let p = monthOf(t);
  while (closed.has(`${tenantId}:${p}`)) p = nextMonthStart(p);
  return p;
};

const accFromRow = (r: BillingAccumulatorsTable): Accumulator => accumulatorFromStored(r);

/**
 * Rates up to `limit` ledger rows not rated yet, created at or after `since`, in one transaction
 * with their charge lines, the accumulators and the watermark. Answers how many rows it rated
 * (-1 when another replica holds the lock) and the newest created_at among them.
 */
export async function rateBatch(
  database: Database,
  since: number,
  limit: number,
  now: number,
  beforeCommit?: (batch: { rows: number }) => void,
  exclude: ReadonlySet<string> = new Set(),
): Promise<{ rated: number; maxCreated: number }> {
  return database.tx(async (trx) => {
    if (!(await billingLock(database, trx, false))) return { rated: -1, maxCreated: since };
    const rows = await trx
      .selectFrom('usage_records as u')
      .select([
        'u.id',
        'u.tenant_id',
        'u.service',
        'u.resource_id',
        'u.meter',
        'u.quantity',
        'u.period_start',
        'u.period_end',
        'u.created_at',
      ])
      .where('u.created_at', '>=', since)
      .where(({ not, exists, selectFrom }) =>
        not(
          exists(
            selectFrom('billing_charges as c').select('c.seg').whereRef('c.usage_record_id', '=', 'u.id'),
          ),
        ),
      )
      .$if(exclude.size > 0, (q) => q.where('u.id', 'not in', [...exclude]))
      .orderBy('u.created_at')
      .orderBy('u.id')
      .limit(limit)
      .execute();
    if (rows.length === 0) return { rated: 0, maxCreated: since };
    const cards = (await trx.selectFrom('billing_rate_cards').selectAll().execute()).map(toCardVersion);
    const book = new PriceBook(cards);
    const tenants = [...new Set(rows.map((r) => r.tenant_id))];
    const closed = await closedPeriods(trx, tenants);
    const minPeriod = monthStart(Math.min(...rows.map((r) => r.period_start)));
    const state: RatingState = new Map();
    for (const part of chunks(tenants, 500)) {
      const accs = await trx
        .selectFrom('billing_accumulators')
        .selectAll()
        .where('tenant_id', 'in', part)
        .where('billing_period', '>=', minPeriod)
        .execute();
      for (const a of accs) state.set(accumulatorKey(a.tenant_id, a.meter, a.billing_period), accFromRow(a));
    }
    const usage: UsageRow[] = rows.map((r) => ({
      id: r.id,
      tenantId: r.tenant_id,
      service: r.service,
      resourceId: r.resource_id,
      meter: r.meter,
      quantity: r.quantity,
      periodStart: r.period_start,
      periodEnd: r.period_end,
    }));
    const lines = rateUsage(usage, book, state, { periodOf: periodMapper(closed) });
    await writeCharges(trx, lines, state, now);
    const maxCreated = Math.max(...rows.map((r) => r.created_at));
    const wm = await trx
      .selectFrom('settings')
      .select('value')
      .where('key', '=', WATERMARK_KEY)
      .executeTakeFirst();
    if (!wm)
      await trx
        .insertInto('settings')
        .values({ key: WATERMARK_KEY, value: String(maxCreated) })
        .onConflict((oc) => oc.column('key').doNothing())
        .execute();
    else if (Number(wm.value) < maxCreated)
      await trx
        .updateTable('settings')
        .set({ value: String(maxCreated) })
        .where('key', '=', WATERMARK_KEY)
        .execute();
    beforeCommit?.({ rows: rows.length });
    return { rated: rows.length, maxCreated };
  });
}

/** Inserts charge lines (with the host of compute resources) and the accumulators they touched. */
async function writeCharges(trx: Tx, lines: ChargeLine[], state: RatingState, now: number) {
  const instanceIds = [
    ...new Set(lines.filter((l) => l.usage.service === 'compute').map((l) => l.usage.resourceId)),
  ];
  const hostOf = new Map<string, string | null>();
  for (const part of chunks(instanceIds, 500)) {
    const hs = await trx.selectFrom('instances').select(['id', 'host_id']).where('id', 'in', part).execute();
    for (const h of hs) hostOf.set(h.id, h.host_id);
  }
  const values: BillingChargesTable[] = lines.map((l) => ({
    usage_record_id: l.usage.id,
    seg: l.seg,
    tenant_id: l.usage.tenantId,
    service: l.usage.service,
    resource_id: l.usage.resourceId,
    meter: l.usage.meter,
    billing_period: l.billingPeriod,
    start_at: l.start,
    end_at: l.end,
    quantity: l.quantity,
    amount_micros: l.amountMicros,
    card_id: l.cardId,
    host_id: hostOf.get(l.usage.resourceId) ?? null,
    rated_at: now,
  }));
  for (const part of chunks(values, 300)) await trx.insertInto('billing_charges').values(part).execute();
  const touched = new Set(lines.map((l) => accumulatorKey(l.usage.tenantId, l.usage.meter, l.billingPeriod)));
  const accs: BillingAccumulatorsTable[] = [];
  for (const key of touched) {
    const a = state.get(key);
    if (!a) continue;
    const [tenant_id, meter, period] = key.split('\u0000') as [string, string, string];
    accs.push({
      tenant_id,
      meter,
      billing_period: Number(period),
      ...accumulatorToStored(a),
    });
  }
  for (const part of chunks(accs, 300)) {
    await trx
      .insertInto('billing_accumulators')
      .values(part)
      .onConflict((oc) =>
        oc.columns(['tenant_id', 'meter', 'billing_period']).doUpdateSet((eb) => ({
          qty: eb.ref('excluded.qty'),
          num: eb.ref('excluded.num'),
          den: eb.ref('excluded.den'),
          charged: eb.ref('excluded.charged'),
        })),
      )
      .execute();
  }
}

/** Ledger rows this process could not rate (see rateAll); retried after a restart. */
const POISONED = new Set<string>();

/**
 * Rates every ledger row not rated yet: from the watermark minus the look-back window, or from
 * the beginning (`full`, at start-up: rows written before a crash). Re-running rates nothing twice:
 * a row with a charge line is skipped, in the same transaction that would rate it.
 */
export async function rateAll(
  database: Database,
  /** `beforeCommit` runs inside each batch's transaction (tests throw there to play a crash). */
  opts: {
    full?: boolean;
    batch?: number;
    now?: () => number;
    beforeCommit?: (batch: { rows: number }) => void;
    /** Told about a ledger row the rating function refused (left unrated until a restart). */
    onRefused?: (usageId: string, err: Error) => void;
  } = {},
): Promise<number> {
  const now = opts.now ?? Date.now;
  let since = 0;
  if (!opts.full) {
    const wm = await database.db
      .selectFrom('settings')
      .select('value')
      .where('key', '=', WATERMARK_KEY)
      .executeTakeFirst();
    since = wm ? Math.max(0, Number(wm.value) - LOOKBACK_MS) : 0;
  }
  const batch = opts.batch ?? 2000;
  let total = 0;
  // A row the rating function refuses (a charge past 2^53 micro-units) must not stop billing for
  // everyone: its batch is retried a row at a time, and the row is left unrated and reported.
  let size = batch;
  for (;;) {
    let res: { rated: number; maxCreated: number };
    try {
      res = await rateBatch(database, since, size, now(), opts.beforeCommit, POISONED);
    } catch (e) {
      if (!(e instanceof RangeError)) throw e;
      if (size > 1) {
        size = 1;
        continue;
      }
      const [row] = await database.db
        .selectFrom('usage_records as u')
        .select('u.id')
        .where('u.created_at', '>=', since)
        .where(({ not, exists, selectFrom }) =>
          not(
            exists(
              selectFrom('billing_charges as c').select('c.seg').whereRef('c.usage_record_id', '=', 'u.id'),
            ),
          ),
        )
        .$if(POISONED.size > 0, (q) => q.where('u.id', 'not in', [...POISONED]))
        .orderBy('u.created_at')
        .orderBy('u.id')
        .limit(1)
        .execute();
      if (!row) throw e;
      POISONED.add(row.id);
      opts.onRefused?.(row.id, e);
      size = batch;
      continue;
    }
    const { rated, maxCreated } = res;
    if (rated < 0) return total;
    total += rated;
    if (rated < size) return total;
    size = batch;
    // Everything older in this scan is rated: the next batch starts at the newest row seen, so a
    // long scan does not walk over the rows it rated again (late commits: the next pass's window).
    since = maxCreated;
  }
}
