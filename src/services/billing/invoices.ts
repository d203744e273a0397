import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import type { Conn, Tx } from '../../platform/db/database.js';
import type { BillingInvoiceLinesTable, BillingInvoicesTable } from '../../platform/db/schema.js';
import { newId } from '../../platform/ids.js';
import { meterDef } from './catalogue.js';
import { nextMonthStart } from './rating.js';

export interface InvoiceLineView {
  service: string;
  resourceId: string;
  meter: string;
  unit: string;
  /** Ledger units (decimal text: byte-seconds of a month pass 2^53). */
  quantity: string;
  amountMicros: number;
}

export interface InvoiceView {
  id: string;
  number: string;
  tenantId: string;
  periodStart: string;
  periodEnd: string;
  currency: string;
  state: BillingInvoicesTable['state'];
  lines: InvoiceLineView[];
  services: { service: string; subtotalMicros: number }[];
  subtotalMicros: number;
  taxRatePpm: number;
  taxMicros: number;
  creditsMicros: number;
  totalMicros: number;
  paymentMethod: string | null;
  createdAt: string;
  finalisedAt: string | null;
  paidAt: string | null;
  voidedAt: string | null;
}

const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());

export function invoiceView(inv: BillingInvoicesTable, lines: BillingInvoiceLinesTable[]): InvoiceView {
  const sorted = [...lines].sort((a, b) => a.seq - b.seq);
  const services = new Map<string, number>();
  for (const l of sorted) services.set(l.service, (services.get(l.service) ?? 0) + l.amount_micros);
  return {
    id: inv.id,
    number: inv.number,
    tenantId: inv.tenant_id,
    periodStart: iso(inv.period_start)!,
    periodEnd: iso(inv.period_end)!,
    currency: inv.currency,
    state: inv.state,
    lines: sorted.map((l) => ({
      service: l.service,
      resourceId: l.resource_id,
      meter: l.meter,
      unit: meterDef(l.meter)?.unit ?? 'unit',
      quantity: l.quantity,
      amountMicros: l.amount_micros,
    })),
    services: [...services].map(([service, subtotalMicros]) => ({ service, subtotalMicros })),
    subtotalMicros: inv.subtotal_micros,
    taxRatePpm: inv.tax_rate_ppm,
    taxMicros: inv.tax_micros,
    creditsMicros: inv.credits_micros,
    totalMicros: inv.total_micros,
    paymentMethod: inv.payment_method,
    createdAt: iso(inv.created_at)!,
    finalisedAt: iso(inv.finalised_at),
    paidAt: iso(inv.paid_at),
    voidedAt: iso(inv.voided_at),
  };
}

/** round-half-up(subtotal · ppm / 10^6) in BigInt. */
export const taxOf = (subtotal: number, ppm: number) =>
  Number((2n * BigInt(subtotal) * BigInt(ppm) + 1_000_000n) / 2_000_000n);

interface GroupedLine {
  tenantId: string;
  service: string;
  resourceId: string;
  meter: string;
  quantity: bigint;
  amount: number;
}

const SPLIT = 1_048_576;

/**
 * Charge lines of a billing period summed per tenant, service, resource and meter. Quantities are
 * summed as (q div 2^20, q mod 2^20) so neither SQL sum overflows 64 bits, then joined in BigInt.
 */
export async function groupedCharges(
  conn: Conn,
  period: number,
  tenantIds?: string[],
): Promise<GroupedLine[]> {
  let q = conn
    .selectFrom('billing_charges')
    .select([
      'tenant_id',
      'service',
      'resource_id',
      'meter',
      (eb) => eb.fn.sum<number | string>('amount_micros').as('amount'),
      sql<number | string>`sum(quantity / ${sql.lit(SPLIT)})`.as('qhi'),
      sql<number | string>`sum(quantity % ${sql.lit(SPLIT)})`.as('qlo'),
    ])
    .where('billing_period', '=', period)
    .groupBy(['tenant_id', 'service', 'resource_id', 'meter'])
    .orderBy('tenant_id')
    .orderBy('service')
    .orderBy('resource_id')
    .orderBy('meter');
  if (tenantIds) q = q.where('tenant_id', 'in', tenantIds);
  const rows = await q.execute();
  return rows.map((r) => ({
    tenantId: r.tenant_id,
    service: r.service,
    resourceId: r.resource_id,
    meter: r.meter,
    quantity: BigInt(String(r.qhi)) * BigInt(SPLIT) + BigInt(String(r.qlo)),
    amount: Number(r.amount),
  }));
}

const invoiceNumber = (period: number) => {
  const d = new Date(period);
  return `INV-${d.getUTCFullYear()}${String(d.getUTCMonth() + 1).padStart(2, '0')}-${randomBytes(5).toString('hex').toUpperCase()}`;
};

/**
 * Creates or refreshes the draft invoice of one tenant and period from its grouped charges.
 * A finalised, paid or void invoice is left alone (answers null).
 */
export async function upsertDraft(
  trx: Tx,
  tenantId: string,
  period: number,
  lines: GroupedLine[],
  currency: string,
  taxRatePpm: number,
  now: number,
): Promise<string | null> {
  const existing = await trx
    .selectFrom('billing_invoices')
    .select(['id', 'state'])
    .where('tenant_id', '=', tenantId)
    .where('period_start', '=', period)
    .executeTakeFirst();
  if (existing && existing.state !== 'draft') return null;
  const subtotal = lines.reduce((s, l) => s + l.amount, 0);
  const tax = taxOf(subtotal, taxRatePpm);
  let id: string;
  if (existing) {
    id = existing.id;
    await trx.deleteFrom('billing_invoice_lines').where('invoice_id', '=', id).execute();
    await trx
      .updateTable('billing_invoices')
      .set({
        currency,
        subtotal_micros: subtotal,
        tax_rate_ppm: taxRatePpm,
        tax_micros: tax,
        credits_micros: 0,
        total_micros: subtotal + tax,
        updated_at: now,
      })
      .where('id', '=', id)
      .where('state', '=', 'draft')
      .execute();
  } else {
    id = newId('inv');
    await trx
      .insertInto('billing_invoices')
      .values({
        id,
        number: invoiceNumber(period),
        tenant_id: tenantId,
        period_start: period,
        period_end: nextMonthStart(period),
        currency,
        state: 'draft',
        subtotal_micros: subtotal,
        tax_rate_ppm: taxRatePpm,
        tax_micros: tax,
        credits_micros: 0,
        total_micros: subtotal + tax,
        payment_method: null,
        created_at: now,
        updated_at: now,
        finalised_at: null,
        paid_at: null,
        voided_at: null,
      })
      .execute();
  }
  const values: BillingInvoiceLinesTable[] = lines.map((l, seq) => ({
    invoice_id: id,
    seq,
    service: l.service,
    resource_id: l.resourceId,
    meter: l.meter,
    quantity: String(l.quantity),
    amount_micros: l.amount,
  }));
  for (let i = 0; i < values.length; i += 400)
    await trx
      .insertInto('billing_invoice_lines')
      .values(values.slice(i, i + 400))
      .execute();
  return id;
}

export async function loadInvoice(conn: Conn, id: string) {
  const inv = await conn.selectFrom('billing_invoices').selectAll().where('id', '=', id).executeTakeFirst();
  if (!inv) return undefined;
  const lines = await conn
    .selectFrom('billing_invoice_lines')
    .selectAll()
    .where('invoice_id', '=', id)
    .execute();
  return { inv, lines };
}
