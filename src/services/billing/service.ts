import { sql } from 'kysely';
import type { Logger } from 'pino';
import { type AuditInput, appendAudit } from '../../platform/audit/audit.js';
import type { Conn, Database, Tx } from '../../platform/db/database.js';
import { isUniqueViolation } from '../../platform/db/database.js';
import type {
  BillingAccountsTable,
  BillingInvoicesTable,
  BillingNotificationsTable,
  BillingTransactionsTable,
} from '../../platform/db/schema.js';
import { notFound, YunhaiError } from '../../platform/errors.js';
import { newId } from '../../platform/ids.js';
import { auditFor } from '../../platform/policy/guard.js';
import type { Principal, RequestContext } from '../../platform/policy/principal.js';
import { addQuotaGate } from '../../platform/quota/quota.js';
import type { ComputeService } from '../compute/service.js';
import type { QueueService } from '../queues/service.js';
import { type BillingAction, guardBilling, tenantOf } from './access.js';
import { METERS } from './catalogue.js';
import {
  groupedCharges,
  type InvoiceView,
  invoiceView,
  loadInvoice,
  taxOf,
  upsertDraft,
} from './invoices.js';
import { mulDivRound, toSafe } from './money.js';
import {
  checkCurrency,
  defaultPrices,
  normalisePrices,
  type RateCardInput,
  type RateCardView,
} from './rate-cards.js';
import { billingLock, closedPeriods, rateAll } from './rater.js';
import { monthStart, nextMonthStart } from './rating.js';

export interface BillingConfig {
  /** Currency of the rate card seeded on first start (default CNY). */
  currency?: string;
  /** Tax rate set on first start, in parts per million (60000 = 6%; default 0). */
  taxRatePpm?: number;
  /** How often new ledger rows are rated (default 5 s). */
  rateIntervalMs?: number;
  /** How often balances, budgets and notification deliveries are checked (default 30 s). */
  policyIntervalMs?: number;
  /** A prepaid tenant out of balance is refused new creates this long after the notice (default 0). */
  restrictAfterMs?: number;
  /** ...and its running instances are stopped this long after creates were refused (default 24 h). */
  suspendAfterMs?: number;
  /** Mode of accounts created implicitly (default postpaid: invoiced, never restricted). */
  defaultMode?: 'postpaid' | 'prepaid';
  /**
   * Crash tests only: runs inside each rating transaction after its charge lines and accumulators
   * are written, before the commit (the kill-twice test blocks here and SIGKILLs the process).
   */
  beforeRatingCommit?: (batch: { rows: number }) => void;
}

export interface BillingDeps {
  database: Database;
  compute?: Pick<ComputeService, 'stopInstance'>;
  queues?: Pick<QueueService, 'sendMessages'>;
  logger?: Logger;
  config?: BillingConfig;
  now?: () => number;
  fetch?: typeof fetch;
}

export interface AccountView {
  tenantId: string;
  mode: BillingAccountsTable['mode'];
  status: BillingAccountsTable['status'];
  statusSince: string;
  balanceMicros: number;
  creditMicros: number;
  /** Rated charges of periods not yet invoiced (finalised). */
  unbilledMicros: number;
  /** Totals of finalised invoices not paid yet. */
  unpaidMicros: number;
  /** balance + credit − unbilled − unpaid: what the out-of-balance policy watches. */
  availableMicros: number;
}

export interface BudgetView {
  id: string;
  tenantId: string;
  name: string;
  amountMicros: number;
  thresholds: number[];
  queueName: string | null;
  webhookUrl: string | null;
  spentMicros: number;
  createdAt: string;
}

export interface NotificationView {
  id: string;
  tenantId: string;
  kind: string;
  message: string;
  details: Record<string, unknown>;
  target: { kind: BillingNotificationsTable['target_kind']; value: string | null };
  delivery: BillingNotificationsTable['delivery_state'];
  attempts: number;
  lastError: string | null;
  createdAt: string;
}

const SETTING_CURRENCY = 'billing.currency';
const SETTING_TAX = 'billing.tax_rate_ppm';
const MAX_DELIVERY_ATTEMPTS = 8;
const iso = (t: number) => new Date(t).toISOString();

/** The principal billing acts as when it stops instances or sends to a tenant's queue. */
function billingPrincipal(tenant: { id: string; name: string; status: string }): Principal {
  return {
    userId: 'billing',
    userName: 'billing',
    uniqueId: 'billing',
    tenantId: tenant.id,
    tenantName: tenant.name,
    tenantStatus: tenant.status === 'suspended' ? 'suspended' : 'active',
    accountId: 'system',
    role: 'platform-admin',
    arn: 'arn:yunhai:iam::system:billing',
    via: 'session',
  };
}

/** Who a change by `ctx` is recorded as in billing transactions. */
const actorOf = (ctx: RequestContext) => `${ctx.principal.accountId}:${ctx.principal.userName}`;

/** One row of a tenant's account history (top-up, credit, payment, credit applied). */
const addTransaction = (
  trx: Tx,
  tenantId: string,
  kind: BillingTransactionsTable['kind'],
  amountMicros: number,
  reference: string | null,
  createdBy: string,
  t: number,
  idempotencyKey: string | null = null,
) =>
  trx
    .insertInto('billing_transactions')
    .values({
      id: newId('btx'),
      tenant_id: tenantId,
      kind,
      amount_micros: amountMicros,
      reference,
      idempotency_key: idempotencyKey,
      created_by: createdBy,
      created_at: t,
    })
    .execute();

const systemAudit = (
  tenantId: string,
  action: string,
  resource: string,
  details: Record<string, unknown>,
): AuditInput => ({
  tenantId,
  principal: 'system:billing',
  action,
  resource,
  outcome: 'success',
  sourceIp: 'local',
  requestId: 'billing',
  details,
});

/**
 * Billing: rate cards, the continuous rater, spend, invoices, prepaid accounts and the
 * out-of-balance policy, budgets and notifications, showback. Every change is one transaction
 * with its audit row.
 */
export function createBillingService(deps: BillingDeps) {
  const { database } = deps;
  const cfg = deps.config ?? {};
  const now = deps.now ?? Date.now;
  const log = deps.logger;
  const doFetch = deps.fetch ?? globalThis.fetch;
  const guard = (ctx: RequestContext, action: BillingAction, tenantId: string | null, label: string) =>
    guardBilling(database, ctx, action, tenantId, label);
  // Background work in flight, so the control plane can wait for it before closing the database.
  const inflight = new Set<Promise<unknown>>();
  const track = <T>(p: Promise<T>): Promise<T> => {
    inflight.add(p);
    const done = () => inflight.delete(p);
    p.then(done, done);
    return p;
  };

  async function setting(conn: Conn, key: string): Promise<string | undefined> {
    return (await conn.selectFrom('settings').select('value').where('key', '=', key).executeTakeFirst())
      ?.value;
  }
  async function putSetting(trx: Tx, key: string, value: string) {
    await trx
      .insertInto('settings')
      .values({ key, value })
      .onConflict((oc) => oc.column('key').doUpdateSet({ value }))
      .execute();
  }
  const currencyOf = async (conn: Conn) => (await setting(conn, SETTING_CURRENCY)) ?? 'CNY';
  const taxRateOf = async (conn: Conn) => Number((await setting(conn, SETTING_TAX)) ?? 0);

  async function ensureAccount(conn: Conn, tenantId: string): Promise<BillingAccountsTable> {
    const found = await conn
      .selectFrom('billing_accounts')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .executeTakeFirst();
    if (found) return found;
    const t = now();
    const row: BillingAccountsTable = {
      tenant_id: tenantId,
      mode: cfg.defaultMode ?? 'postpaid',
      balance_micros: 0,
      credit_micros: 0,
      status: 'ok',
      status_since: t,
      updated_at: t,
    };
    await conn
      .insertInto('billing_accounts')
      .values(row)
      .onConflict((oc) => oc.column('tenant_id').doNothing())
      .execute();
    return await conn
      .selectFrom('billing_accounts')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .executeTakeFirstOrThrow();
  }

  async function tenantRow(conn: Conn, tenantId: string) {
    const t = await conn
      .selectFrom('tenants')
      .select(['id', 'name', 'status', 'account_id'])
      .where('id', '=', tenantId)
      .executeTakeFirst();
    if (!t) throw notFound('Tenant', tenantId);
    return t;
  }

  /** Rated charges of a tenant's open periods, from the accumulators (few rows per tenant). */
  async function unbilled(conn: Conn, tenantId: string): Promise<number> {
    const accs = await conn
      .selectFrom('billing_accumulators')
      .select(['billing_period', 'charged'])
      .where('tenant_id', '=', tenantId)
      .execute();
    const closed = await closedPeriods(conn, [tenantId]);
    let sum = 0n;
    for (const a of accs) if (!closed.has(`${tenantId}:${a.billing_period}`)) sum += BigInt(a.charged);
    return toSafe(sum);
  }

  async function accountView(conn: Conn, tenantId: string): Promise<AccountView> {
    const a = await ensureAccount(conn, tenantId);
    const unb = await unbilled(conn, tenantId);
    const unpaid = await conn
      .selectFrom('billing_invoices')
      .select((eb) => eb.fn.sum<number | string>('total_micros').as('s'))
      .where('tenant_id', '=', tenantId)
      .where('state', '=', 'finalised')
      .executeTakeFirst();
    const unpaidMicros = Number(unpaid?.s ?? 0);
    return {
      tenantId,
      mode: a.mode,
      status: a.status,
      statusSince: iso(a.status_since),
      balanceMicros: a.balance_micros,
      creditMicros: a.credit_micros,
      unbilledMicros: unb,
      unpaidMicros,
      availableMicros: a.balance_micros + a.credit_micros - unb - unpaidMicros,
    };
  }

  async function notify(
    trx: Tx,
    n: {
      tenantId: string;
      kind: string;
      message: string;
      details: Record<string, unknown>;
      queueName?: string | null;
      webhookUrl?: string | null;
    },
  ) {
    const target_kind = n.webhookUrl ? 'webhook' : n.queueName ? 'queue' : 'none';
    await trx
      .insertInto('billing_notifications')
      .values({
        id: newId('ntf'),
        tenant_id: n.tenantId,
        kind: n.kind,
        message: n.message,
        details: JSON.stringify(n.details),
        target_kind,
        target: n.webhookUrl ?? n.queueName ?? null,
        delivery_state: target_kind === 'none' ? 'none' : 'pending',
        attempts: 0,
        next_attempt_at: now(),
        last_error: null,
        created_at: now(),
      })
      .execute();
  }

  // ---- the quota gate: a prepaid tenant out of balance creates nothing ----------------------
  const removeGate = addQuotaGate(async (trx, tenantId) => {
    const a = await trx
      .selectFrom('billing_accounts')
      .select(['status', 'mode'])
      .where('tenant_id', '=', tenantId)
      .executeTakeFirst();
    if (a && a.mode === 'prepaid' && (a.status === 'restricted' || a.status === 'suspended'))
      throw new YunhaiError(
        'QuotaExceeded',
        'The prepaid balance of this tenant is exhausted: new resources cannot be created until it is topped up.',
        { reason: 'InsufficientBalance' },
      );
  });

  // ---- the out-of-balance policy -----------------------------------------------------------
  /** One step of the policy for one prepaid account: notify → refuse creates → suspend instances. */
  async function enforceAccount(tenantId: string): Promise<void> {
    const t = now();
    const stop: string[] = [];
    await database.tx(async (trx) => {
      const view = await accountView(trx, tenantId);
      if (view.mode !== 'prepaid') return;
      const a = await trx
        .selectFrom('billing_accounts')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .executeTakeFirstOrThrow();
      const setStatus = async (status: BillingAccountsTable['status'], action: string, message: string) => {
        await trx
          .updateTable('billing_accounts')
          .set({ status, status_since: t, updated_at: t })
          .where('tenant_id', '=', tenantId)
          .execute();
        await appendAudit(
          trx,
          systemAudit(tenantId, action, `billing-account/${tenantId}`, {
            availableMicros: view.availableMicros,
            from: a.status,
            to: status,
          }),
          t,
        );
        await notify(trx, {
          tenantId,
          kind: action.replace('billing:', ''),
          message,
          details: { availableMicros: view.availableMicros },
        });
      };
      if (view.availableMicros > 0) {
        if (a.status !== 'ok')
          await setStatus(
            'ok',
            'billing:BalanceRestored',
            'The prepaid balance is positive again; creating resources is allowed.',
          );
        return;
      }
      if (a.status === 'ok') {
        await setStatus(
          'notified',
          'billing:BalanceExhausted',
          'The prepaid balance is exhausted: top up to keep creating resources.',
        );
      } else if (a.status === 'notified' && t - a.status_since >= (cfg.restrictAfterMs ?? 0)) {
        await setStatus(
          'restricted',
          'billing:CreatesRefused',
          'The prepaid balance is exhausted: new resources are refused.',
        );
      } else if (a.status === 'restricted' && t - a.status_since >= (cfg.suspendAfterMs ?? 86_400_000)) {
        const running = await trx
          .selectFrom('instances')
          .select('id')
          .where('tenant_id', '=', tenantId)
          .where('deleted_at', 'is', null)
          .where('state', 'in', ['running', 'starting', 'building', 'rebooting', 'resizing'])
          .execute();
        stop.push(...running.map((r) => r.id));
        await setStatus(
          'suspended',
          'billing:InstancesSuspended',
          `The prepaid balance is exhausted: ${running.length} running instance(s) are being stopped.`,
        );
      }
    });
    if (stop.length === 0 || !deps.compute) return;
    const tenant = await tenantRow(database.db, tenantId);
    const ctx: RequestContext = {
      requestId: 'billing',
      sourceIp: 'local',
      principal: billingPrincipal(tenant),
    };
    for (const id of stop) {
      try {
        await deps.compute.stopInstance(ctx, id);
      } catch (e) {
        log?.warn(
          { err: String(e), instance: id },
          'billing could not stop an instance of a tenant out of balance',
        );
      }
    }
  }

  async function enforceBalances(): Promise<void> {
    const prepaid = await database.db
      .selectFrom('billing_accounts')
      .select('tenant_id')
      .where('mode', '=', 'prepaid')
      .execute();
    for (const a of prepaid) await enforceAccount(a.tenant_id);
  }

  // ---- budgets ------------------------------------------------------------------------------
  async function spendOf(conn: Conn, tenantId: string, period: number): Promise<number> {
    const rows = await conn
      .selectFrom('billing_accumulators')
      .select('charged')
      .where('tenant_id', '=', tenantId)
      .where('billing_period', '=', period)
      .execute();
    return toSafe(rows.reduce((s, r) => s + BigInt(r.charged), 0n));
  }

  async function checkBudgets(): Promise<number> {
    const period = monthStart(now());
    const budgets = await database.db.selectFrom('billing_budgets').selectAll().execute();
    let raised = 0;
    for (const b of budgets) {
      const spent = await spendOf(database.db, b.tenant_id, period);
      const thresholds = JSON.parse(b.thresholds) as number[];
      for (const th of thresholds) {
        // spent / amount >= th%  ⇔  spent·100 >= amount·th (integers, no division).
        if (BigInt(spent) * 100n < BigInt(b.amount_micros) * BigInt(th)) continue;
        try {
          await database.tx(async (trx) => {
            await trx
              .insertInto('billing_budget_alerts')
              .values({ budget_id: b.id, billing_period: period, threshold: th, created_at: now() })
              .execute();
            await notify(trx, {
              tenantId: b.tenant_id,
              kind: 'BudgetThreshold',
              message: `Budget '${b.name}': ${th}% reached (spent ${spent} of ${b.amount_micros} micro-units this period).`,
              details: {
                budgetId: b.id,
                budget: b.name,
                threshold: th,
                spentMicros: spent,
                amountMicros: b.amount_micros,
                period: iso(period),
              },
              queueName: b.queue_name,
              webhookUrl: b.webhook_url,
            });
            await appendAudit(
              trx,
              systemAudit(b.tenant_id, 'billing:BudgetAlert', `budget/${b.id}`, {
                threshold: th,
                spentMicros: spent,
              }),
            );
          });
          raised++;
        } catch (e) {
          if (!isUniqueViolation(e)) throw e;
        }
      }
    }
    return raised;
  }

  // ---- notification delivery (outbox: rows are written with the event, sent afterwards) -----
  async function deliverNotifications(): Promise<number> {
    const due = await database.db
      .selectFrom('billing_notifications')
      .selectAll()
      .where('delivery_state', '=', 'pending')
      .where('next_attempt_at', '<=', now())
      .orderBy('next_attempt_at')
      .limit(100)
      .execute();
    let delivered = 0;
    for (const n of due) {
      const payload = {
        id: n.id,
        tenantId: n.tenant_id,
        kind: n.kind,
        message: n.message,
        details: JSON.parse(n.details) as unknown,
        createdAt: iso(n.created_at),
      };
      let error: string | null = null;
      try {
        if (n.target_kind === 'webhook') {
          const res = await doFetch(n.target!, {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'user-agent': 'yunhai-billing' },
            body: JSON.stringify(payload),
            signal: AbortSignal.timeout(5000),
          });
          if (!res.ok) error = `HTTP ${res.status}`;
          await res.body?.cancel().catch(() => {});
        } else if (n.target_kind === 'queue') {
          if (!deps.queues) throw new Error('no queue service');
          const tenant = await tenantRow(database.db, n.tenant_id);
          const ctx = { requestId: 'billing', sourceIp: 'local', principal: billingPrincipal(tenant) };
          const [r] = await deps.queues.sendMessages(
            ctx,
            { accountId: tenant.account_id, name: n.target! },
            [{ body: JSON.stringify(payload) }],
            false,
          );
          if (r && 'error' in r) error = String(r.error.message);
        }
      } catch (e) {
        error = e instanceof Error ? e.message : String(e);
      }
      const attempts = n.attempts + 1;
      const state = error === null ? 'delivered' : attempts >= MAX_DELIVERY_ATTEMPTS ? 'failed' : 'pending';
      await database.db
        .updateTable('billing_notifications')
        .set({
          delivery_state: state,
          attempts,
          last_error: error,
          next_attempt_at: now() + Math.min(3_600_000, 1000 * 2 ** attempts),
        })
        .where('id', '=', n.id)
        .execute();
      if (error === null) delivered++;
    }
    return delivered;
  }

  // ---- rate cards ---------------------------------------------------------------------------
  const cardView = (r: {
    id: string;
    name: string;
    tenant_id: string | null;
    version: number;
    effective_from: number;
    currency: string;
    prices: string;
    created_by: string;
    created_at: number;
  }): RateCardView => ({
    id: r.id,
    name: r.name,
    tenantId: r.tenant_id,
    version: r.version,
    effectiveFrom: iso(r.effective_from),
    currency: r.currency,
    prices: JSON.parse(r.prices),
    createdBy: r.created_by,
    createdAt: iso(r.created_at),
  });

  async function insertCard(
    trx: Tx,
    input: {
      name: string;
      tenantId: string | null;
      currency: string;
      effectiveFrom: number;
      prices: ReturnType<typeof normalisePrices>;
      createdBy: string;
    },
  ) {
    const scope = input.tenantId ?? 'default';
    const last = await trx
      .selectFrom('billing_rate_cards')
      .select((eb) => eb.fn.max('version').as('v'))
      .where('scope', '=', scope)
      .executeTakeFirst();
    const row = {
      id: newId('rc'),
      scope,
      tenant_id: input.tenantId,
      name: input.name,
      version: Number(last?.v ?? 0) + 1,
      effective_from: input.effectiveFrom,
      currency: input.currency,
      prices: JSON.stringify(input.prices),
      created_by: input.createdBy,
      created_at: now(),
    };
    await trx.insertInto('billing_rate_cards').values(row).execute();
    return row;
  }

  /**
   * Changes invoice `id` (finalise, pay, void) in one transaction under the billing lock, with the
   * invoice row read inside it, so two concurrent changes of one invoice run one after the other and
   * the second sees the first's state (a double payment is refused, not debited twice).
   */
  const changeInvoice = async (
    ctx: RequestContext,
    id: string,
    action: BillingAction,
    change: (trx: Tx, inv: BillingInvoicesTable, t: number) => Promise<void>,
  ): Promise<InvoiceView> => {
    if (!(await loadInvoice(database.db, id))) throw notFound('Invoice', id);
    await guard(ctx, action, null, `invoice/${id}`);
    const t = now();
    await database.tx(async (trx) => {
      await billingLock(database, trx, true);
      const inv = await trx
        .selectFrom('billing_invoices')
        .selectAll()
        .where('id', '=', id)
        .executeTakeFirstOrThrow();
      await change(trx, inv, t);
    });
    return service.getInvoice(ctx, id);
  };

  const service = {
    meters: () => METERS,

    /** First start: the default rate card (effective from the beginning of time), currency and tax rate. */
    async seed(): Promise<void> {
      await database.tx(async (trx) => {
        if (!(await setting(trx, SETTING_CURRENCY))) {
          const c = cfg.currency ?? 'CNY';
          checkCurrency(c);
          await putSetting(trx, SETTING_CURRENCY, c);
        }
        if ((await setting(trx, SETTING_TAX)) === undefined)
          await putSetting(trx, SETTING_TAX, String(cfg.taxRatePpm ?? 0));
        const any = await trx
          .selectFrom('billing_rate_cards')
          .select('id')
          .where('scope', '=', 'default')
          .executeTakeFirst();
        if (!any) {
          try {
            await insertCard(trx, {
              name: 'default',
              tenantId: null,
              currency: await currencyOf(trx),
              effectiveFrom: 0,
              prices: defaultPrices(),
              createdBy: 'system',
            });
          } catch (e) {
            if (!isUniqueViolation(e)) throw e;
          }
        }
      });
    },

    async listRateCards(ctx: RequestContext, q: { tenantId?: string }) {
      const tenantId = q.tenantId;
      await guard(ctx, 'billing:ListRateCards', tenantId ?? ctx.principal.tenantId, 'rate-cards');
      let query = database.db
        .selectFrom('billing_rate_cards')
        .selectAll()
        .orderBy('scope')
        .orderBy('version', 'desc');
      if (ctx.principal.role !== 'platform-admin')
        query = query.where((eb) =>
          eb.or([eb('tenant_id', 'is', null), eb('tenant_id', '=', ctx.principal.tenantId)]),
        );
      else if (tenantId)
        query = query.where((eb) => eb.or([eb('tenant_id', 'is', null), eb('tenant_id', '=', tenantId)]));
      return { items: (await query.execute()).map(cardView) };
    },

    async getRateCard(ctx: RequestContext, id: string) {
      const r = await database.db
        .selectFrom('billing_rate_cards')
        .selectAll()
        .where('id', '=', id)
        .executeTakeFirst();
      if (
        !r ||
        (ctx.principal.role !== 'platform-admin' &&
          r.tenant_id !== null &&
          r.tenant_id !== ctx.principal.tenantId)
      )
        throw notFound('Rate card', id);
      await guard(ctx, 'billing:ListRateCards', r.tenant_id ?? ctx.principal.tenantId, `rate-card/${id}`);
      return cardView(r);
    },

    /**
     * A new version of the default card or of a tenant's override. It takes effect at
     * `effectiveFrom` (default now; never in the past), so usage already rated keeps its price.
     */
    async createRateCard(ctx: RequestContext, input: RateCardInput) {
      await guard(ctx, 'billing:CreateRateCard', null, `rate-card/${input.name}`);
      const t = now();
      const effectiveFrom = input.effectiveFrom ?? t;
      if (effectiveFrom < t - 1000)
        throw new YunhaiError(
          'ValidationError',
          'effectiveFrom is in the past: a new version never reprices usage already rated.',
        );
      const prices = normalisePrices(input.prices);
      return database.tx(async (trx) => {
        const currency = await currencyOf(trx);
        if (input.currency && input.currency !== currency) {
          checkCurrency(input.currency);
          throw new YunhaiError(
            'ValidationError',
            `This platform bills in ${currency}; a card in ${input.currency} cannot apply.`,
          );
        }
        if (input.tenantId) await tenantRow(trx, input.tenantId);
        const row = await insertCard(trx, {
          name: input.name,
          tenantId: input.tenantId,
          currency,
          effectiveFrom,
          prices,
          createdBy: actorOf(ctx),
        });
        await appendAudit(
          trx,
          auditFor(ctx, 'billing:CreateRateCard', `rate-card/${row.id}`, {
            tenantId: input.tenantId,
            details: { scope: row.scope, version: row.version, effectiveFrom: iso(effectiveFrom) },
          }),
        );
        return cardView(row);
      });
    },

    // ---- rating and spend ----
    /** Rates every ledger row not rated yet (the loop calls this; admins may too). */
    rate: (opts: { full?: boolean } = {}) =>
      track(
        rateAll(database, {
          full: opts.full,
          now,
          beforeCommit: cfg.beforeRatingCommit,
          onRefused: (id, err) =>
            log?.error({ usageId: id, err: err.message }, 'billing refused to rate a usage record'),
        }),
      ),

    /** One pass of the policy loop: balances, budgets, then notification deliveries. */
    policyPass: () =>
      track(
        (async () => {
          await enforceBalances();
          await checkBudgets();
          await deliverNotifications();
        })(),
      ),

    /** Waits for background work started so far (before the database closes). */
    async settle() {
      while (inflight.size > 0) await Promise.allSettled([...inflight]);
    },

    async rateNow(ctx: RequestContext) {
      await guard(ctx, 'billing:RateUsage', null, 'billing/rater');
      return { rated: await rateAll(database, { now }) };
    },

    async spend(ctx: RequestContext, q: { tenantId?: string; period?: number }) {
      const tenantId = tenantOf(ctx, q.tenantId);
      await guard(ctx, 'billing:GetSpend', tenantId, `spend/${tenantId}`);
      const period = monthStart(q.period ?? now());
      const rows = await database.db
        .selectFrom('billing_charges')
        .select([
          'service',
          (eb) => eb.fn.sum<number | string>('amount_micros').as('amount'),
          (eb) => eb.fn.max('end_at').as('through'),
        ])
        .where('tenant_id', '=', tenantId)
        .where('billing_period', '=', period)
        .groupBy('service')
        .orderBy('service')
        .execute();
      const byService = rows.map((r) => ({ service: r.service, amountMicros: Number(r.amount) }));
      const through = rows.reduce((m, r) => Math.max(m, Number(r.through ?? 0)), 0);
      return {
        tenantId,
        currency: await currencyOf(database.db),
        periodStart: iso(period),
        periodEnd: iso(nextMonthStart(period)),
        totalMicros: byService.reduce((s, r) => s + r.amountMicros, 0),
        byService,
        ratedThrough: through ? iso(through) : null,
      };
    },

    // ---- invoices ----
    /** Creates or refreshes the draft invoices of a period (every tenant with charges, or one). */
    async generateInvoices(ctx: RequestContext | null, q: { period: number; tenantId?: string }) {
      if (ctx) await guard(ctx, 'billing:GenerateInvoices', null, 'invoices');
      const period = monthStart(q.period);
      const grouped = await groupedCharges(database.db, period, q.tenantId ? [q.tenantId] : undefined);
      const byTenant = new Map<string, typeof grouped>();
      for (const g of grouped) {
        const list = byTenant.get(g.tenantId) ?? [];
        list.push(g);
        byTenant.set(g.tenantId, list);
      }
      if (q.tenantId && !byTenant.has(q.tenantId)) byTenant.set(q.tenantId, []);
      const currency = await currencyOf(database.db);
      const tax = await taxRateOf(database.db);
      const tenants = [...byTenant.keys()];
      let written = 0;
      // Many tenants per transaction: one commit per 500 invoices.
      for (let i = 0; i < tenants.length; i += 500) {
        await database.tx(async (trx) => {
          for (const t of tenants.slice(i, i + 500)) {
            if (await upsertDraft(trx, t, period, byTenant.get(t)!, currency, tax, now())) written++;
          }
        });
      }
      return { period: iso(period), invoices: written };
    },

    async listInvoices(
      ctx: RequestContext,
      q: { tenantId?: string; state?: string; limit: number; cursor?: string },
    ) {
      const all = ctx.principal.role === 'platform-admin' && q.tenantId === undefined;
      const tenantId = tenantOf(ctx, q.tenantId);
      await guard(ctx, 'billing:ListInvoices', tenantId, 'invoices');
      let query = database.db
        .selectFrom('billing_invoices')
        .selectAll()
        .orderBy('period_start', 'desc')
        .orderBy('id')
        .limit(q.limit + 1);
      if (!all) query = query.where('tenant_id', '=', tenantId);
      if (q.state) query = query.where('state', '=', q.state as 'draft');
      if (q.cursor) {
        const [p, id] = JSON.parse(Buffer.from(q.cursor, 'base64url').toString()) as [number, string];
        query = query.where((eb) =>
          eb.or([eb('period_start', '<', p), eb.and([eb('period_start', '=', p), eb('id', '>', id)])]),
        );
      }
      const rows = await query.execute();
      const shown = rows.slice(0, q.limit);
      const last = shown[shown.length - 1];
      return {
        items: shown.map((r) => ({ ...invoiceView(r, []), lines: undefined, services: undefined })),
        nextCursor:
          rows.length > q.limit && last
            ? Buffer.from(JSON.stringify([last.period_start, last.id])).toString('base64url')
            : null,
      };
    },

    async getInvoice(ctx: RequestContext, id: string): Promise<InvoiceView> {
      const found = await loadInvoice(database.db, id);
      if (
        !found ||
        (ctx.principal.role !== 'platform-admin' && found.inv.tenant_id !== ctx.principal.tenantId)
      )
        throw notFound('Invoice', id);
      await guard(ctx, 'billing:GetInvoice', found.inv.tenant_id, `invoice/${id}`);
      return invoiceView(found.inv, found.lines);
    },

    /**
     * Freezes a draft: its lines are refreshed from the charges one last time under the billing
     * lock (so they equal the rated usage exactly), credits are applied, and it never changes again.
     * Usage of the period rated later goes to the next period.
     */
    finaliseInvoice(ctx: RequestContext, id: string): Promise<InvoiceView> {
      return changeInvoice(ctx, id, 'billing:FinaliseInvoice', async (trx, inv, t) => {
        if (inv.state !== 'draft')
          throw new YunhaiError(
            'InvalidState',
            `Invoice ${id} is ${inv.state}; only a draft can be finalised.`,
          );
        if (inv.period_end > t)
          throw new YunhaiError(
            'InvalidState',
            `The period of invoice ${id} ends ${iso(inv.period_end)}; it can be finalised after that.`,
          );
        const lines = await groupedCharges(trx, inv.period_start, [inv.tenant_id]);
        await upsertDraft(trx, inv.tenant_id, inv.period_start, lines, inv.currency, await taxRateOf(trx), t);
        const fresh = await trx
          .selectFrom('billing_invoices')
          .selectAll()
          .where('id', '=', id)
          .executeTakeFirstOrThrow();
        const account = await ensureAccount(trx, inv.tenant_id);
        const due = fresh.subtotal_micros + fresh.tax_micros;
        const credits = Math.min(account.credit_micros, due);
        if (credits > 0) {
          await trx
            .updateTable('billing_accounts')
            .set({ credit_micros: account.credit_micros - credits, updated_at: t })
            .where('tenant_id', '=', inv.tenant_id)
            .execute();
          await addTransaction(trx, inv.tenant_id, 'credit-applied', -credits, id, 'system:billing', t);
        }
        await trx
          .updateTable('billing_invoices')
          .set({
            state: 'finalised',
            credits_micros: credits,
            total_micros: due - credits,
            finalised_at: t,
            updated_at: t,
          })
          .where('id', '=', id)
          .where('state', '=', 'draft')
          .execute();
        await appendAudit(
          trx,
          auditFor(ctx, 'billing:FinaliseInvoice', `invoice/${id}`, {
            tenantId: inv.tenant_id,
            details: {
              subtotalMicros: fresh.subtotal_micros,
              taxMicros: fresh.tax_micros,
              creditsMicros: credits,
              totalMicros: due - credits,
            },
          }),
          t,
        );
      });
    },

    /** Marks a finalised invoice paid: from the prepaid balance, or recorded as paid outside. */
    payInvoice(
      ctx: RequestContext,
      id: string,
      input: { method: 'balance' | 'external'; reference?: string },
    ) {
      return changeInvoice(ctx, id, 'billing:PayInvoice', async (trx, inv, t) => {
        if (inv.state !== 'finalised')
          throw new YunhaiError(
            'InvalidState',
            `Invoice ${id} is ${inv.state}; only a finalised invoice can be paid.`,
          );
        if (input.method === 'balance') {
          const a = await ensureAccount(trx, inv.tenant_id);
          const res = await trx
            .updateTable('billing_accounts')
            .set((eb) => ({ balance_micros: eb('balance_micros', '-', inv.total_micros), updated_at: t }))
            .where('tenant_id', '=', inv.tenant_id)
            .where('balance_micros', '>=', inv.total_micros)
            .executeTakeFirst();
          if (Number(res.numUpdatedRows) !== 1)
            throw new YunhaiError(
              'Conflict',
              `The balance (${a.balance_micros} micro-units) does not cover invoice ${id} (${inv.total_micros}).`,
            );
          await addTransaction(trx, inv.tenant_id, 'invoice-payment', -inv.total_micros, id, actorOf(ctx), t);
        }
        await trx
          .updateTable('billing_invoices')
          .set({ state: 'paid', paid_at: t, payment_method: input.method, updated_at: t })
          .where('id', '=', id)
          .execute();
        await appendAudit(
          trx,
          auditFor(ctx, 'billing:PayInvoice', `invoice/${id}`, {
            tenantId: inv.tenant_id,
            details: {
              method: input.method,
              reference: input.reference ?? null,
              totalMicros: inv.total_micros,
            },
          }),
          t,
        );
      });
    },

    /** Voids a draft or finalised invoice (credits it used are given back); a paid one cannot be voided. */
    voidInvoice(ctx: RequestContext, id: string, input: { reason: string }) {
      return changeInvoice(ctx, id, 'billing:VoidInvoice', async (trx, inv, t) => {
        if (inv.state !== 'draft' && inv.state !== 'finalised')
          throw new YunhaiError('InvalidState', `Invoice ${id} is ${inv.state}; it cannot be voided.`);
        if (inv.credits_micros > 0) {
          await trx
            .updateTable('billing_accounts')
            .set((eb) => ({ credit_micros: eb('credit_micros', '+', inv.credits_micros), updated_at: t }))
            .where('tenant_id', '=', inv.tenant_id)
            .execute();
          await addTransaction(
            trx,
            inv.tenant_id,
            'credit',
            inv.credits_micros,
            `void ${id}`,
            'system:billing',
            t,
          );
        }
        await trx
          .updateTable('billing_invoices')
          .set({ state: 'void', voided_at: t, updated_at: t })
          .where('id', '=', id)
          .execute();
        await appendAudit(
          trx,
          auditFor(ctx, 'billing:VoidInvoice', `invoice/${id}`, {
            tenantId: inv.tenant_id,
            details: { reason: input.reason, from: inv.state },
          }),
          t,
        );
      });
    },

    // ---- accounts ----
    async getAccount(ctx: RequestContext, q: { tenantId?: string }) {
      const tenantId = tenantOf(ctx, q.tenantId);
      await guard(ctx, 'billing:GetAccount', tenantId, `billing-account/${tenantId}`);
      await tenantRow(database.db, tenantId);
      const view = await accountView(database.db, tenantId);
      const txs = await database.db
        .selectFrom('billing_transactions')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .orderBy('created_at', 'desc')
        .limit(20)
        .execute();
      return {
        ...view,
        currency: await currencyOf(database.db),
        recentTransactions: txs.map((x) => ({
          id: x.id,
          kind: x.kind,
          amountMicros: x.amount_micros,
          reference: x.reference,
          createdBy: x.created_by,
          createdAt: iso(x.created_at),
        })),
      };
    },

    async updateAccount(ctx: RequestContext, tenantId: string, input: { mode: 'postpaid' | 'prepaid' }) {
      await guard(ctx, 'billing:UpdateAccount', null, `billing-account/${tenantId}`);
      await tenantRow(database.db, tenantId);
      await database.tx(async (trx) => {
        await ensureAccount(trx, tenantId);
        await trx
          .updateTable('billing_accounts')
          .set({ mode: input.mode, status: 'ok', status_since: now(), updated_at: now() })
          .where('tenant_id', '=', tenantId)
          .execute();
        await appendAudit(
          trx,
          auditFor(ctx, 'billing:UpdateAccount', `billing-account/${tenantId}`, { tenantId, details: input }),
        );
      });
      if (input.mode === 'prepaid') await enforceAccount(tenantId);
      return service.getAccount(ctx, { tenantId });
    },

    /** A top-up (cash) or a credit grant; an idempotency key makes a retried request a no-op. */
    async addFunds(
      ctx: RequestContext,
      tenantId: string,
      kind: 'top-up' | 'credit',
      input: { amountMicros: number; reference?: string; idempotencyKey?: string },
    ) {
      await guard(
        ctx,
        kind === 'top-up' ? 'billing:TopUp' : 'billing:GrantCredit',
        null,
        `billing-account/${tenantId}`,
      );
      await tenantRow(database.db, tenantId);
      const t = now();
      try {
        await database.tx(async (trx) => {
          await ensureAccount(trx, tenantId);
          await addTransaction(
            trx,
            tenantId,
            kind,
            input.amountMicros,
            input.reference ?? null,
            actorOf(ctx),
            t,
            input.idempotencyKey ? `${tenantId}:${input.idempotencyKey}` : null,
          );
          await trx
            .updateTable('billing_accounts')
            .set((eb) =>
              kind === 'top-up'
                ? { balance_micros: eb('balance_micros', '+', input.amountMicros), updated_at: t }
                : { credit_micros: eb('credit_micros', '+', input.amountMicros), updated_at: t },
            )
            .where('tenant_id', '=', tenantId)
            .execute();
          await appendAudit(
            trx,
            auditFor(
              ctx,
              kind === 'top-up' ? 'billing:TopUp' : 'billing:GrantCredit',
              `billing-account/${tenantId}`,
              { tenantId, details: { amountMicros: input.amountMicros, reference: input.reference ?? null } },
            ),
            t,
          );
        });
      } catch (e) {
        if (!isUniqueViolation(e)) throw e;
        // The same idempotency key again: already applied.
      }
      await enforceAccount(tenantId);
      return service.getAccount(ctx, { tenantId });
    },

    enforceBalances,

    // ---- budgets and notifications ----
    async listBudgets(ctx: RequestContext, q: { tenantId?: string }) {
      const tenantId = tenantOf(ctx, q.tenantId);
      await guard(ctx, 'billing:ListBudgets', tenantId, 'budgets');
      const period = monthStart(now());
      const spent = await spendOf(database.db, tenantId, period);
      const rows = await database.db
        .selectFrom('billing_budgets')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .orderBy('name')
        .execute();
      return {
        items: rows.map(
          (b): BudgetView => ({
            id: b.id,
            tenantId: b.tenant_id,
            name: b.name,
            amountMicros: b.amount_micros,
            thresholds: JSON.parse(b.thresholds),
            queueName: b.queue_name,
            webhookUrl: b.webhook_url,
            spentMicros: spent,
            createdAt: iso(b.created_at),
          }),
        ),
      };
    },

    async createBudget(
      ctx: RequestContext,
      input: {
        tenantId?: string;
        name: string;
        amountMicros: number;
        thresholds: number[];
        queueName?: string;
        webhookUrl?: string;
      },
    ) {
      const tenantId = tenantOf(ctx, input.tenantId);
      await guard(ctx, 'billing:CreateBudget', tenantId, `budget/${input.name}`);
      await tenantRow(database.db, tenantId);
      const id = newId('bud');
      const t = now();
      try {
        await database.tx(async (trx) => {
          await trx
            .insertInto('billing_budgets')
            .values({
              id,
              tenant_id: tenantId,
              name: input.name,
              amount_micros: input.amountMicros,
              thresholds: JSON.stringify([...new Set(input.thresholds)].sort((a, b) => a - b)),
              queue_name: input.queueName ?? null,
              webhook_url: input.webhookUrl ?? null,
              created_at: t,
              updated_at: t,
            })
            .execute();
          await appendAudit(
            trx,
            auditFor(ctx, 'billing:CreateBudget', `budget/${id}`, {
              tenantId,
              details: { name: input.name, amountMicros: input.amountMicros },
            }),
            t,
          );
        });
      } catch (e) {
        if (isUniqueViolation(e))
          throw new YunhaiError('AlreadyExists', `A budget named '${input.name}' exists.`);
        throw e;
      }
      return (await service.listBudgets(ctx, { tenantId })).items.find((b) => b.id === id)!;
    },

    async deleteBudget(ctx: RequestContext, id: string) {
      const b = await database.db
        .selectFrom('billing_budgets')
        .selectAll()
        .where('id', '=', id)
        .executeTakeFirst();
      if (!b || (ctx.principal.role !== 'platform-admin' && b.tenant_id !== ctx.principal.tenantId))
        throw notFound('Budget', id);
      await guard(ctx, 'billing:DeleteBudget', b.tenant_id, `budget/${id}`);
      await database.tx(async (trx) => {
        await trx.deleteFrom('billing_budget_alerts').where('budget_id', '=', id).execute();
        await trx.deleteFrom('billing_budgets').where('id', '=', id).execute();
        await appendAudit(
          trx,
          auditFor(ctx, 'billing:DeleteBudget', `budget/${id}`, { tenantId: b.tenant_id }),
        );
      });
    },

    checkBudgets,
    deliverNotifications,

    async listNotifications(ctx: RequestContext, q: { tenantId?: string; limit: number }) {
      const tenantId = tenantOf(ctx, q.tenantId);
      await guard(ctx, 'billing:ListNotifications', tenantId, 'notifications');
      const rows = await database.db
        .selectFrom('billing_notifications')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .orderBy('created_at', 'desc')
        .orderBy('id')
        .limit(q.limit)
        .execute();
      return {
        items: rows.map(
          (n): NotificationView => ({
            id: n.id,
            tenantId: n.tenant_id,
            kind: n.kind,
            message: n.message,
            details: JSON.parse(n.details),
            target: { kind: n.target_kind, value: n.target },
            delivery: n.delivery_state,
            attempts: n.attempts,
            lastError: n.last_error,
            createdAt: iso(n.created_at),
          }),
        ),
      };
    },

    // ---- settings ----
    async getSettings(ctx: RequestContext) {
      await guard(ctx, 'billing:GetSettings', ctx.principal.tenantId, 'billing/settings');
      return { currency: await currencyOf(database.db), taxRatePpm: await taxRateOf(database.db) };
    },
    async updateSettings(ctx: RequestContext, input: { taxRatePpm: number }) {
      await guard(ctx, 'billing:UpdateSettings', null, 'billing/settings');
      await database.tx(async (trx) => {
        await putSetting(trx, SETTING_TAX, String(input.taxRatePpm));
        await appendAudit(
          trx,
          auditFor(ctx, 'billing:UpdateSettings', 'billing/settings', { tenantId: null, details: input }),
        );
      });
      return service.getSettings(ctx);
    },

    // ---- showback ----
    /** Revenue (and summed quantities) per tenant, service, host or meter, per day or month. */
    async showback(
      ctx: RequestContext,
      q: {
        groupBy: 'tenant' | 'service' | 'host' | 'meter';
        bucket: 'day' | 'month';
        since: number;
        until: number;
        tenantId?: string;
      },
    ) {
      if (ctx.principal.role !== 'platform-admin' && (q.groupBy === 'service' || q.groupBy === 'meter')) {
        // A tenant sees its own spend over time per service or meter (the portal's cost overview).
        await guard(ctx, 'billing:GetSpend', ctx.principal.tenantId, 'billing/showback');
        q = { ...q, tenantId: ctx.principal.tenantId };
      } else await guard(ctx, 'billing:Showback', null, 'billing/showback');
      const col = ({ tenant: 'tenant_id', service: 'service', host: 'host_id', meter: 'meter' } as const)[
        q.groupBy
      ];
      const bucketExpr =
        q.bucket === 'month' ? sql<number>`billing_period` : sql<number>`start_at - (start_at % 86400000)`;
      let query = database.db
        .selectFrom('billing_charges')
        .select([
          bucketExpr.as('bucket'),
          sql<string | null>`${sql.ref(col)}`.as('key'),
          (eb) => eb.fn.sum<number | string>('amount_micros').as('amount'),
          sql<number | string>`sum(quantity / 1048576)`.as('qhi'),
          sql<number | string>`sum(quantity % 1048576)`.as('qlo'),
        ])
        .where('start_at', '>=', q.since)
        .where('start_at', '<', q.until)
        .groupBy([sql`1`, sql`2`])
        .orderBy(sql`1`)
        .orderBy(sql`2`);
      if (q.tenantId) query = query.where('tenant_id', '=', q.tenantId);
      const rows = await query.execute();
      return {
        groupBy: q.groupBy,
        bucket: q.bucket,
        currency: await currencyOf(database.db),
        items: rows.map((r) => ({
          time: iso(Number(r.bucket)),
          key: r.key ?? '(none)',
          amountMicros: Number(r.amount),
          quantity: String(BigInt(String(r.qhi)) * 1048576n + BigInt(String(r.qlo))),
        })),
      };
    },

    /** Rated amount a quantity costs on the card in force now (previews; exact rule of rating). */
    preview: (unitPriceMicros: number, unitQuantity: number, quantity: number) =>
      Number(mulDivRound(BigInt(quantity), BigInt(unitPriceMicros), BigInt(unitQuantity))),

    taxOf,
    close() {
      removeGate();
    },
  };
  return service;
}

export type BillingService = ReturnType<typeof createBillingService>;
