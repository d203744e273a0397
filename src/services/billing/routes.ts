import { z } from 'zod';
import { YunhaiError } from '../../platform/errors.js';
import { type RouteDef, route } from '../../platform/http/rest.js';
import { EXPORT_FORMATS, renderInvoice } from './export.js';
import { parseAmount } from './money.js';
import { rateCardInputSchema } from './rate-cards.js';
import type { BillingService } from './service.js';

const isoTime = z.iso.datetime({ offset: true }).transform((s) => Date.parse(s));
const tenantId = z.string().min(1).max(64);
const id = z.strictObject({ id: z.string().min(1).max(64) });
const amount = z.union([z.string().max(40), z.number()]).transform((v, ctx) => {
  try {
    const m = parseAmount(v);
    if (m > 0) return m;
    ctx.addIssue({ code: 'custom', message: 'must be greater than zero' });
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
  }
  return z.NEVER;
});
const funds = z.strictObject({
  /** Currency units as a decimal string or number, at most 6 decimals: "100", "12.50". */
  amount,
  reference: z.string().max(200).optional(),
  idempotencyKey: z.string().min(1).max(100).optional(),
});
const anyJson = z.any();

/** The REST surface of billing (docs/billing.md lists every route with examples). */
export function billingRoutes(billing: BillingService): RouteDef[] {
  return [
    route({
      method: 'GET',
      path: '/billing/meters',
      operationId: 'listMeters',
      summary: 'Every meter the services write to the usage ledger, with units.',
      tag: 'billing',
      response: anyJson,
      handler: async () => ({ items: billing.meters() }),
    }),
    route({
      method: 'GET',
      path: '/billing/rate-cards',
      operationId: 'listRateCards',
      summary: 'Rate card versions: the default card and tenant overrides (newest version first).',
      tag: 'billing',
      query: z.strictObject({ tenantId: tenantId.optional() }),
      response: anyJson,
      handler: (ctx, { query }) => billing.listRateCards(ctx, query),
    }),
    route({
      method: 'GET',
      path: '/billing/rate-cards/{id}',
      operationId: 'getRateCard',
      summary: 'One rate card version.',
      tag: 'billing',
      params: id,
      response: anyJson,
      handler: (ctx, { params }) => billing.getRateCard(ctx, params.id),
    }),
    route({
      method: 'POST',
      path: '/billing/rate-cards',
      operationId: 'createRateCard',
      summary: 'A new rate card version (default, or a tenant override); effective from now or later.',
      tag: 'billing',
      body: rateCardInputSchema,
      status: 201,
      response: anyJson,
      handler: (ctx, { body }) => billing.createRateCard(ctx, body),
    }),
    route({
      method: 'POST',
      path: '/billing/rate',
      operationId: 'rateUsage',
      summary: 'Rates every ledger row not rated yet, now (the background loop does this every few seconds).',
      tag: 'billing',
      response: z.object({ rated: z.number() }),
      handler: (ctx) => billing.rateNow(ctx),
    }),
    route({
      method: 'GET',
      path: '/billing/spend',
      operationId: 'getSpend',
      summary: "A tenant's rated spend in a billing period (default: this month), per service.",
      tag: 'billing',
      query: z.strictObject({ tenantId: tenantId.optional(), period: isoTime.optional() }),
      response: anyJson,
      handler: (ctx, { query }) => billing.spend(ctx, query),
    }),
    route({
      method: 'GET',
      path: '/billing/settings',
      operationId: 'getBillingSettings',
      summary: 'Platform currency and tax rate.',
      tag: 'billing',
      response: z.object({ currency: z.string(), taxRatePpm: z.number() }),
      handler: (ctx) => billing.getSettings(ctx),
    }),
    route({
      method: 'PUT',
      path: '/billing/settings',
      operationId: 'updateBillingSettings',
      summary: 'Sets the tax rate (parts per million: 60000 = 6%) applied to invoices from now on.',
      tag: 'billing',
      body: z.strictObject({ taxRatePpm: z.number().int().min(0).max(1_000_000) }),
      response: z.object({ currency: z.string(), taxRatePpm: z.number() }),
      handler: (ctx, { body }) => billing.updateSettings(ctx, body),
    }),
    route({
      method: 'POST',
      path: '/billing/invoices/generate',
      operationId: 'generateInvoices',
      summary: 'Creates or refreshes the draft invoices of a billing period (default: this month).',
      tag: 'billing',
      body: z.strictObject({ period: isoTime.optional(), tenantId: tenantId.optional() }),
      response: z.object({ period: z.string(), invoices: z.number() }),
      handler: (ctx, { body }) =>
        billing.generateInvoices(ctx, { period: body.period ?? Date.now(), tenantId: body.tenantId }),
    }),
    route({
      method: 'GET',
      path: '/billing/invoices',
      operationId: 'listInvoices',
      summary: "Invoices, newest period first (platform admins see every tenant's without tenantId).",
      tag: 'billing',
      query: z.strictObject({
        tenantId: tenantId.optional(),
        state: z.enum(['draft', 'finalised', 'paid', 'void']).optional(),
        limit: z.coerce.number().int().min(1).max(1000).default(50),
        cursor: z.string().max(300).optional(),
      }),
      response: anyJson,
      handler: async (ctx, { query }) => {
        try {
          return await billing.listInvoices(ctx, query);
        } catch (e) {
          if (e instanceof SyntaxError)
            throw new YunhaiError('ValidationError', 'The pagination cursor is malformed.');
          throw e;
        }
      },
    }),
    route({
      method: 'GET',
      path: '/billing/invoices/{id}',
      operationId: 'getInvoice',
      summary: 'One invoice with its lines grouped by service and resource.',
      tag: 'billing',
      params: id,
      response: anyJson,
      handler: (ctx, { params }) => billing.getInvoice(ctx, params.id),
    }),
    route({
      method: 'GET',
      path: '/billing/invoices/{id}/export',
      operationId: 'exportInvoice',
      summary: 'The invoice as a file: JSON, CSV or a printable HTML page, in en or zh-CN.',
      tag: 'billing',
      params: id,
      query: z.strictObject({
        format: z.enum(EXPORT_FORMATS).default('json'),
        lang: z.enum(['en', 'zh-CN']).default('en'),
      }),
      handler: async (ctx, { params, query }) => {
        const inv = await billing.getInvoice(ctx, params.id);
        const doc = renderInvoice(inv, query.format, query.lang);
        ctx.reply.header('content-type', doc.contentType);
        ctx.reply.header('content-disposition', `attachment; filename="${inv.number}.${query.format}"`);
        return doc.body;
      },
    }),
    route({
      method: 'POST',
      path: '/billing/invoices/{id}/finalise',
      operationId: 'finaliseInvoice',
      summary: 'Freezes a draft invoice of an ended period and applies credits; it never changes again.',
      tag: 'billing',
      params: id,
      response: anyJson,
      handler: (ctx, { params }) => billing.finaliseInvoice(ctx, params.id),
    }),
    route({
      method: 'POST',
      path: '/billing/invoices/{id}/pay',
      operationId: 'payInvoice',
      summary: 'Marks a finalised invoice paid, from the prepaid balance or as paid outside.',
      tag: 'billing',
      params: id,
      body: z.strictObject({
        method: z.enum(['balance', 'external']),
        reference: z.string().max(200).optional(),
      }),
      response: anyJson,
      handler: (ctx, { params, body }) => billing.payInvoice(ctx, params.id, body),
    }),
    route({
      method: 'POST',
      path: '/billing/invoices/{id}/void',
      operationId: 'voidInvoice',
      summary: 'Voids a draft or finalised invoice (credits it used are returned).',
      tag: 'billing',
      params: id,
      body: z.strictObject({ reason: z.string().min(1).max(500) }),
      response: anyJson,
      handler: (ctx, { params, body }) => billing.voidInvoice(ctx, params.id, body),
    }),
    route({
      method: 'GET',
      path: '/billing/account',
      operationId: 'getBillingAccount',
      summary: 'Prepaid balance, credits, unbilled spend, policy status and recent transactions.',
      tag: 'billing',
      query: z.strictObject({ tenantId: tenantId.optional() }),
      response: anyJson,
      handler: (ctx, { query }) => billing.getAccount(ctx, query),
    }),
    route({
      method: 'PUT',
      path: '/billing/accounts/{tenantId}',
      operationId: 'updateBillingAccount',
      summary: 'Sets a tenant prepaid (the out-of-balance policy applies) or postpaid.',
      tag: 'billing',
      params: z.strictObject({ tenantId }),
      body: z.strictObject({ mode: z.enum(['prepaid', 'postpaid']) }),
      response: anyJson,
      handler: (ctx, { params, body }) => billing.updateAccount(ctx, params.tenantId, body),
    }),
    route({
      method: 'POST',
      path: '/billing/accounts/{tenantId}/top-ups',
      operationId: 'topUp',
      summary: "Adds to a tenant's prepaid balance (an idempotencyKey makes a retry a no-op).",
      tag: 'billing',
      params: z.strictObject({ tenantId }),
      body: funds,
      response: anyJson,
      handler: (ctx, { params, body }) =>
        billing.addFunds(ctx, params.tenantId, 'top-up', { ...body, amountMicros: body.amount }),
    }),
    route({
      method: 'POST',
      path: '/billing/accounts/{tenantId}/credits',
      operationId: 'grantCredit',
      summary: 'Grants credits, applied to invoices when they are finalised (and counted as balance).',
      tag: 'billing',
      params: z.strictObject({ tenantId }),
      body: funds,
      response: anyJson,
      handler: (ctx, { params, body }) =>
        billing.addFunds(ctx, params.tenantId, 'credit', { ...body, amountMicros: body.amount }),
    }),
    route({
      method: 'GET',
      path: '/billing/budgets',
      operationId: 'listBudgets',
      summary: "A tenant's budgets with this month's spend.",
      tag: 'billing',
      query: z.strictObject({ tenantId: tenantId.optional() }),
      response: anyJson,
      handler: (ctx, { query }) => billing.listBudgets(ctx, query),
    }),
    route({
      method: 'POST',
      path: '/billing/budgets',
      operationId: 'createBudget',
      summary: 'A monthly budget with alert thresholds (default 50/80/100%), to an SQS queue or a webhook.',
      tag: 'billing',
      body: z
        .strictObject({
          tenantId: tenantId.optional(),
          name: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/),
          amount,
          thresholds: z.array(z.number().int().min(1).max(1000)).min(1).max(10).default([50, 80, 100]),
          queueName: z
            .string()
            .regex(/^[A-Za-z0-9_-]{1,80}$/)
            .optional(),
          webhookUrl: z
            .url({ protocol: /^https?$/ })
            .max(2000)
            .optional(),
        })
        .refine((b) => !(b.queueName && b.webhookUrl), { message: 'give queueName or webhookUrl, not both' }),
      status: 201,
      response: anyJson,
      handler: (ctx, { body }) => billing.createBudget(ctx, { ...body, amountMicros: body.amount }),
    }),
    route({
      method: 'DELETE',
      path: '/billing/budgets/{id}',
      operationId: 'deleteBudget',
      summary: 'Deletes a budget.',
      tag: 'billing',
      params: id,
      status: 204,
      handler: (ctx, { params }) => billing.deleteBudget(ctx, params.id),
    }),
    route({
      method: 'GET',
      path: '/billing/notifications',
      operationId: 'listBillingNotifications',
      summary: 'Budget alerts and balance notices of a tenant, newest first, with their delivery state.',
      tag: 'billing',
      query: z.strictObject({
        tenantId: tenantId.optional(),
        limit: z.coerce.number().int().min(1).max(1000).default(100),
      }),
      response: anyJson,
      handler: (ctx, { query }) => billing.listNotifications(ctx, query),
    }),
    route({
      method: 'GET',
      path: '/billing/showback',
      operationId: 'showback',
      summary: 'Revenue and usage per tenant, service, host or meter, per day or month (platform admins).',
      tag: 'billing',
      query: z.strictObject({
        groupBy: z.enum(['tenant', 'service', 'host', 'meter']).default('tenant'),
        bucket: z.enum(['day', 'month']).default('day'),
        since: isoTime.optional(),
        until: isoTime.optional(),
        tenantId: tenantId.optional(),
      }),
      response: anyJson,
      handler: (ctx, { query }) => {
        const until = query.until ?? Date.now();
        return billing.showback(ctx, { ...query, since: query.since ?? until - 30 * 86_400_000, until });
      },
    }),
  ];
}
