import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import {
  EXPORT_FORMATS,
  type ExportFormat,
  type ExportLang,
  renderInvoice,
} from '../../services/billing/export.js';
import type { InvoiceView } from '../../services/billing/invoices.js';
import { formatMicros } from '../../services/billing/money.js';
import type { CliContext } from '../context.js';
import { CliError } from '../errors.js';
import { type Column, renderFields, renderTable, shortTime } from '../output.js';
import { statusProgress } from '../progress.js';
import { choice, clientFor, examples, printerFor, seg, timeArg } from './common.js';

interface MeterView {
  meter: string;
  service: string;
  unit: string;
  description: string;
  priceUnit: string;
}
interface RateCardView {
  id: string;
  name: string;
  tenantId: string | null;
  version: number;
  effectiveFrom: string;
  currency: string;
  prices: {
    meter: string;
    unit: string;
    freeUnits: number;
    tiers: { upToUnits: number | null; unitPriceMicros: number }[];
  }[];
}
type InvoiceSummary = Omit<InvoiceView, 'lines' | 'services'>;
interface AccountView {
  tenantId: string;
  currency: string;
  mode: string;
  status: string;
  statusSince: string;
  balanceMicros: number;
  creditMicros: number;
  unbilledMicros: number;
  unpaidMicros: number;
  availableMicros: number;
  recentTransactions: { kind: string; amountMicros: number; reference: string | null; createdAt: string }[];
}
interface BudgetView {
  id: string;
  name: string;
  amountMicros: number;
  thresholds: number[];
  spentMicros: number;
  queueName: string | null;
  webhookUrl: string | null;
}

const money = (m: number) => formatMicros(m);
const month = (iso: string) => iso.slice(0, 7);

const INVOICE_COLUMNS: Column<InvoiceSummary>[] = [
  { header: 'ID', value: (i) => i.id },
  { header: 'NUMBER', value: (i) => i.number },
  { header: 'TENANT', value: (i) => i.tenantId },
  { header: 'PERIOD', value: (i) => month(i.periodStart), shrink: false },
  { header: 'STATE', value: (i) => i.state },
  { header: 'SUBTOTAL', value: (i) => money(i.subtotalMicros), align: 'right' },
  { header: 'TAX', value: (i) => money(i.taxMicros), align: 'right' },
  { header: 'CREDITS', value: (i) => money(i.creditsMicros), align: 'right' },
  { header: 'TOTAL', value: (i) => `${money(i.totalMicros)} ${i.currency}`, align: 'right' },
];

const priceText = (p: RateCardView['prices'][number]) =>
  p.tiers
    .map((t, i) => {
      const from = i === 0 ? 0 : p.tiers[i - 1]!.upToUnits!;
      const range = t.upToUnits === null ? (i === 0 ? '' : ` over ${from}`) : ` up to ${t.upToUnits}`;
      return `${money(t.unitPriceMicros)}/${p.unit}${range}`;
    })
    .join(', ') + (p.freeUnits > 0 ? ` (first ${p.freeUnits} free)` : '');

/** `6%`, `6.5%` or `60000` (ppm) to parts per million. */
export function parseTaxRate(v: string): number {
  const pct = /^(\d{1,3})(?:\.(\d{1,4}))?%$/.exec(v.trim());
  if (pct) return Number(pct[1]) * 10_000 + Number((pct[2] ?? '').padEnd(4, '0'));
  if (/^\d{1,7}$/.test(v.trim())) return Number(v.trim());
  throw new CliError(`--tax-rate takes a percentage like 6% or parts per million like 60000`, 2);
}

export function registerBillingCommands(program: Command, ctx: CliContext) {
  const billing = program
    .command('billing')
    .description('Rate cards, spend, invoices, prepaid balances, budgets and showback')
    .addHelpText(
      'after',
      examples(
        'yunhai billing spend',
        'yunhai billing invoices list',
        'yunhai billing invoices export inv-0a1b2c3d4e5f --format html --lang zh-CN --out invoice.html',
        'yunhai billing top-up --tenant acme-id 500',
      ),
    );

  billing
    .command('meters')
    .description('Every meter the services write to the usage ledger, with its unit')
    .action(async (_f: unknown, cmd: Command) => {
      const { client } = clientFor(ctx, cmd);
      const res = await client.get<{ items: MeterView[] }>('/billing/meters');
      printerFor(ctx, cmd).table(res, res.items, [
        { header: 'METER', value: (m) => m.meter },
        { header: 'SERVICE', value: (m) => m.service },
        { header: 'UNIT', value: (m) => m.unit },
        { header: 'PRICED PER', value: (m) => m.priceUnit },
        { header: 'DESCRIPTION', value: (m) => m.description },
      ]);
    });

  // ---- rate cards ----
  const cards = billing
    .command('rate-card')
    .description('Versioned price lists (platform admins create them)');
  cards
    .command('list')
    .description('The default card and tenant overrides, newest version first')
    .option('--tenant <tenant>', 'also that tenant’s overrides (platform admins)')
    .action(async (f: { tenant?: string }, cmd: Command) => {
      const { client } = clientFor(ctx, cmd);
      const res = await client.get<{ items: RateCardView[] }>('/billing/rate-cards', { tenantId: f.tenant });
      printerFor(ctx, cmd).table(res, res.items, [
        { header: 'ID', value: (c) => c.id },
        { header: 'NAME', value: (c) => c.name },
        { header: 'SCOPE', value: (c) => c.tenantId ?? 'default' },
        { header: 'VERSION', value: (c) => c.version, align: 'right' },
        { header: 'EFFECTIVE FROM', value: (c) => shortTime(c.effectiveFrom), shrink: false },
        { header: 'CURRENCY', value: (c) => c.currency },
        { header: 'PRICES', value: (c) => c.prices.length, align: 'right' },
      ]);
    });
  cards
    .command('show <id>')
    .description('One rate card version with its prices')
    .action(async (id: string, _f: unknown, cmd: Command) => {
      const { client } = clientFor(ctx, cmd);
      const c = await client.get<RateCardView>(`/billing/rate-cards/${seg(id)}`);
      printerFor(ctx, cmd).result(
        c,
        () =>
          renderFields([
            ['ID', c.id],
            ['Name', c.name],
            ['Scope', c.tenantId ?? 'default'],
            ['Version', c.version],
            ['Effective from', c.effectiveFrom],
            ['Currency', c.currency],
          ]) +
          '\n' +
          renderTable(
            c.prices,
            [
              { header: 'METER', value: (p) => p.meter },
              { header: 'PRICE', value: (p) => priceText(p) },
            ],
            ctx.io.columns,
          ),
      );
    });
  cards
    .command('create')
    .description('A new version of the default card or of a tenant override, from a JSON file')
    .requiredOption(
      '--file <file>',
      'JSON: {"name", "prices": [{"meter", "tiers": [{"upToUnits", "unitPriceMicros"}], "freeUnits"}]}',
    )
    .option('--tenant <tenant>', 'make it an override for this tenant id')
    .option(
      '--effective-from <time>',
      'when it takes effect (default now; never in the past)',
      timeArg('--effective-from'),
    )
    .addHelpText(
      'after',
      examples(
        'yunhai billing rate-card create --file prices.json --effective-from 2026-12-01',
        'yunhai billing rate-card create --file vip.json --tenant ten-0a1b2c3d4e5f',
      ),
    )
    .action(async (f: { file: string; tenant?: string; effectiveFrom?: string }, cmd: Command) => {
      let body: Record<string, unknown>;
      try {
        body = JSON.parse(readFileSync(resolve(ctx.cwd, f.file), 'utf8')) as Record<string, unknown>;
      } catch (e) {
        throw new CliError(`cannot read ${f.file}: ${(e as Error).message}`, 2);
      }
      if (f.tenant) body.tenantId = f.tenant;
      if (f.effectiveFrom) body.effectiveFrom = f.effectiveFrom;
      const { client } = clientFor(ctx, cmd);
      const c = await client.post<RateCardView>('/billing/rate-cards', body);
      const printer = printerFor(ctx, cmd);
      printer.result(
        c,
        () =>
          `Created rate card ${c.id} (${c.tenantId ?? 'default'} v${c.version}), effective ${c.effectiveFrom}.\n`,
      );
    });

  // ---- rating and spend ----
  billing
    .command('rate')
    .description(
      'Rate every usage record not rated yet, now (platform admins; the server does this every few seconds)',
    )
    .action(async (_f: unknown, cmd: Command) => {
      const { client } = clientFor(ctx, cmd);
      const p = statusProgress(ctx.io, 'rating');
      if (ctx.io.errIsTTY) p.update('rating new usage');
      try {
        const r = await client.post<{ rated: number }>('/billing/rate');
        p.stop();
        printerFor(ctx, cmd).result(r, () => `Rated ${r.rated} usage record(s).\n`);
      } finally {
        p.stop();
      }
    });

  billing
    .command('spend')
    .description('Rated spend of a billing period per service (default: this month, your tenant)')
    .option('--tenant <tenant>', 'tenant id (platform admins)')
    .option('--period <time>', 'any time inside the month', timeArg('--period'))
    .action(async (f: { tenant?: string; period?: string }, cmd: Command) => {
      const { client } = clientFor(ctx, cmd);
      const s = await client.get<{
        tenantId: string;
        currency: string;
        periodStart: string;
        totalMicros: number;
        ratedThrough: string | null;
        byService: { service: string; amountMicros: number }[];
      }>('/billing/spend', { tenantId: f.tenant, period: f.period });
      printerFor(ctx, cmd).result(
        s,
        () =>
          `Spend of ${s.tenantId} in ${month(s.periodStart)}: ${money(s.totalMicros)} ${s.currency}` +
          (s.ratedThrough ? ` (usage rated through ${shortTime(s.ratedThrough)})` : '') +
          '\n' +
          (s.byService.length
            ? renderTable(
                s.byService,
                [
                  { header: 'SERVICE', value: (r) => r.service },
                  { header: 'AMOUNT', value: (r) => money(r.amountMicros), align: 'right' },
                ],
                ctx.io.columns,
              )
            : ''),
      );
    });

  // ---- invoices ----
  const invoices = billing
    .command('invoices')
    .description('Invoices per tenant and month: draft → finalised → paid/void');
  invoices
    .command('list')
    .description('Invoices, newest month first (platform admins: every tenant unless --tenant)')
    .option('--tenant <tenant>', 'tenant id')
    .option(
      '--state <state>',
      'draft, finalised, paid or void',
      choice('--state', ['draft', 'finalised', 'paid', 'void'] as const),
    )
    .action(async (f: { tenant?: string; state?: string }, cmd: Command) => {
      const { client } = clientFor(ctx, cmd);
      const res = await client.list<InvoiceSummary>(
        '/billing/invoices',
        { tenantId: f.tenant, state: f.state },
        { all: true },
      );
      printerFor(ctx, cmd).table(res, res.items, INVOICE_COLUMNS, 'No invoices.');
    });
  invoices
    .command('show <id>')
    .description('An invoice with its lines')
    .action(async (id: string, _f: unknown, cmd: Command) => {
      const { client } = clientFor(ctx, cmd);
      const inv = await client.get<InvoiceView>(`/billing/invoices/${seg(id)}`);
      printerFor(ctx, cmd).result(
        inv,
        () =>
          renderFields([
            ['Invoice', `${inv.number} (${inv.id})`],
            ['Tenant', inv.tenantId],
            ['Period', `${inv.periodStart.slice(0, 10)} – ${inv.periodEnd.slice(0, 10)}`],
            ['State', inv.state],
          ]) +
          '\n' +
          renderTable(
            inv.lines,
            [
              { header: 'SERVICE', value: (l) => l.service },
              { header: 'RESOURCE', value: (l) => l.resourceId },
              { header: 'METER', value: (l) => l.meter },
              { header: 'QUANTITY', value: (l) => `${l.quantity} ${l.unit}`, align: 'right' },
              { header: 'AMOUNT', value: (l) => money(l.amountMicros), align: 'right' },
            ],
            ctx.io.columns,
          ) +
          '\n' +
          renderFields([
            ...inv.services.map((s): [string, unknown] => [`Subtotal ${s.service}`, money(s.subtotalMicros)]),
            ['Subtotal', money(inv.subtotalMicros)],
            [`Tax (${inv.taxRatePpm / 10_000}%)`, money(inv.taxMicros)],
            ['Credits', money(-inv.creditsMicros)],
            ['Total', `${money(inv.totalMicros)} ${inv.currency}`],
          ]),
      );
    });
  invoices
    .command('generate')
    .description('Create or refresh the draft invoices of a month (platform admins)')
    .option('--period <time>', 'any time inside the month (default now)', timeArg('--period'))
    .option('--tenant <tenant>', 'only this tenant')
    .action(async (f: { period?: string; tenant?: string }, cmd: Command) => {
      const { client } = clientFor(ctx, cmd);
      const p = statusProgress(ctx.io, 'invoices');
      if (ctx.io.errIsTTY) p.update('generating drafts');
      try {
        const r = await client.post<{ period: string; invoices: number }>('/billing/invoices/generate', {
          ...(f.period ? { period: f.period } : {}),
          ...(f.tenant ? { tenantId: f.tenant } : {}),
        });
        p.stop();
        printerFor(ctx, cmd).result(r, () => `${r.invoices} draft invoice(s) for ${month(r.period)}.\n`);
      } finally {
        p.stop();
      }
    });
  for (const [name, desc] of [
    ['finalise', 'Freeze a draft of an ended month (credits are applied; it never changes again)'],
    ['pay', 'Mark a finalised invoice paid (--method balance takes it from the prepaid balance)'],
    ['void', 'Void a draft or finalised invoice'],
  ] as const) {
    const c = invoices.command(`${name} <id>`).description(desc);
    if (name === 'pay')
      c.option(
        '--method <method>',
        'balance or external',
        choice('--method', ['balance', 'external'] as const),
        'external',
      ).option('--reference <text>', 'payment reference');
    if (name === 'void') c.requiredOption('--reason <text>', 'why');
    c.action(
      async (id: string, f: { method?: string; reference?: string; reason?: string }, cmd: Command) => {
        const { client } = clientFor(ctx, cmd);
        const body =
          name === 'pay'
            ? { method: f.method, ...(f.reference ? { reference: f.reference } : {}) }
            : name === 'void'
              ? { reason: f.reason }
              : undefined;
        const inv = await client.post<InvoiceView>(`/billing/invoices/${seg(id)}/${name}`, body);
        printerFor(ctx, cmd).result(
          inv,
          () => `Invoice ${inv.number}: ${inv.state}, total ${money(inv.totalMicros)} ${inv.currency}.\n`,
        );
      },
    );
  }
  invoices
    .command('export <id>')
    .description('Write an invoice as JSON, CSV or a printable HTML page (print it to PDF), in en or zh-CN')
    .option('--format <format>', EXPORT_FORMATS.join(', '), choice('--format', EXPORT_FORMATS), 'csv')
    .option('--lang <lang>', 'en or zh-CN', choice('--lang', ['en', 'zh-CN'] as const), 'en')
    .option('--out <file>', 'write here instead of standard output')
    .addHelpText(
      'after',
      examples('yunhai billing invoices export inv-0a1b2c3d4e5f --format html --lang zh-CN --out 账单.html'),
    )
    .action(async (id: string, f: { format: ExportFormat; lang: ExportLang; out?: string }, cmd: Command) => {
      const { client } = clientFor(ctx, cmd);
      const inv = await client.get<InvoiceView>(`/billing/invoices/${seg(id)}`);
      const doc = renderInvoice(inv, f.format, f.lang);
      if (f.out) {
        writeFileSync(resolve(ctx.cwd, f.out), doc.body);
        printerFor(ctx, cmd).note(`Wrote ${inv.number} to ${f.out}.`);
      } else ctx.io.out(doc.body);
    });

  // ---- balances and credits ----
  billing
    .command('balance')
    .description('Prepaid balance, credits, unbilled spend and the out-of-balance status')
    .option('--tenant <tenant>', 'tenant id (platform admins)')
    .action(async (f: { tenant?: string }, cmd: Command) => {
      const { client } = clientFor(ctx, cmd);
      const a = await client.get<AccountView>('/billing/account', { tenantId: f.tenant });
      printerFor(ctx, cmd).result(a, () =>
        renderFields([
          ['Tenant', a.tenantId],
          ['Mode', a.mode],
          ['Status', `${a.status} since ${shortTime(a.statusSince)}`],
          ['Balance', `${money(a.balanceMicros)} ${a.currency}`],
          ['Credits', money(a.creditMicros)],
          ['Unbilled', money(a.unbilledMicros)],
          ['Unpaid invoices', money(a.unpaidMicros)],
          ['Available', money(a.availableMicros)],
        ]),
      );
    });
  for (const [name, path, desc] of [
    ['top-up', 'top-ups', "Add to a tenant's prepaid balance (platform admins)"],
    ['credit', 'credits', 'Grant credits, applied to invoices when finalised (platform admins)'],
  ] as const) {
    billing
      .command(`${name} <amount>`)
      .description(desc)
      .requiredOption('--tenant <tenant>', 'tenant id')
      .option('--reference <text>', 'reference (payment id, promotion)')
      .option('--idempotency-key <key>', 'a retry with the same key changes nothing')
      .addHelpText(
        'after',
        examples(
          `yunhai billing ${name} --tenant ten-0a1b2c3d4e5f 500`,
          `yunhai billing ${name} --tenant ten-0a1b2c3d4e5f 12.50 --idempotency-key pay-42`,
        ),
      )
      .action(
        async (
          amount: string,
          f: { tenant: string; reference?: string; idempotencyKey?: string },
          cmd: Command,
        ) => {
          const { client } = clientFor(ctx, cmd);
          const a = await client.post<AccountView>(`/billing/accounts/${seg(f.tenant)}/${path}`, {
            amount,
            ...(f.reference ? { reference: f.reference } : {}),
            ...(f.idempotencyKey ? { idempotencyKey: f.idempotencyKey } : {}),
          });
          printerFor(ctx, cmd).result(
            a,
            () =>
              `Balance ${money(a.balanceMicros)} ${a.currency}, credits ${money(a.creditMicros)}, status ${a.status}.\n`,
          );
        },
      );
  }
  billing
    .command('account-mode <mode>')
    .description('Make a tenant prepaid (the out-of-balance policy applies) or postpaid (platform admins)')
    .requiredOption('--tenant <tenant>', 'tenant id')
    .action(async (mode: string, f: { tenant: string }, cmd: Command) => {
      if (mode !== 'prepaid' && mode !== 'postpaid')
        throw new CliError('mode must be prepaid or postpaid', 2);
      const { client } = clientFor(ctx, cmd);
      const a = await client.put<AccountView>(`/billing/accounts/${seg(f.tenant)}`, { mode });
      printerFor(ctx, cmd).result(a, () => `Tenant ${a.tenantId} is ${a.mode} (${a.status}).\n`);
    });
  billing
    .command('settings')
    .description('Show the currency and tax rate; --tax-rate changes it (platform admins)')
    .option('--tax-rate <rate>', 'e.g. 6% (or 60000 parts per million)')
    .action(async (f: { taxRate?: string }, cmd: Command) => {
      const { client } = clientFor(ctx, cmd);
      const s = f.taxRate
        ? await client.put<{ currency: string; taxRatePpm: number }>('/billing/settings', {
            taxRatePpm: parseTaxRate(f.taxRate),
          })
        : await client.get<{ currency: string; taxRatePpm: number }>('/billing/settings');
      printerFor(ctx, cmd).result(s, () => `Currency ${s.currency}, tax ${s.taxRatePpm / 10_000}%.\n`);
    });

  // ---- budgets and notifications ----
  const budgets = billing.command('budgets').description('Monthly budgets with alert thresholds');
  budgets
    .command('list')
    .option('--tenant <tenant>', 'tenant id (platform admins)')
    .action(async (f: { tenant?: string }, cmd: Command) => {
      const { client } = clientFor(ctx, cmd);
      const res = await client.get<{ items: BudgetView[] }>('/billing/budgets', { tenantId: f.tenant });
      printerFor(ctx, cmd).table(
        res,
        res.items,
        [
          { header: 'ID', value: (b) => b.id },
          { header: 'NAME', value: (b) => b.name },
          { header: 'AMOUNT', value: (b) => money(b.amountMicros), align: 'right' },
          { header: 'SPENT', value: (b) => money(b.spentMicros), align: 'right' },
          {
            header: 'USE',
            value: (b) => `${b.amountMicros ? Math.floor((b.spentMicros * 100) / b.amountMicros) : 0}%`,
            align: 'right',
          },
          { header: 'ALERTS AT', value: (b) => b.thresholds.map((t) => `${t}%`).join(' ') },
          { header: 'TO', value: (b) => b.webhookUrl ?? (b.queueName ? `queue ${b.queueName}` : 'portal') },
        ],
        'No budgets.',
      );
    });
  budgets
    .command('create <name> <amount>')
    .description('A monthly budget; alerts go to the portal, and to an SQS queue or a webhook')
    .option('--tenant <tenant>', 'tenant id (platform admins)')
    .option('--thresholds <list>', 'percentages (default 50,80,100)', '50,80,100')
    .option('--queue <name>', 'also send alerts to this queue of the tenant')
    .option('--webhook <url>', 'also POST alerts here (retried with backoff)')
    .addHelpText('after', examples('yunhai billing budgets create monthly 2000 --queue billing-alerts'))
    .action(
      async (
        name: string,
        amount: string,
        f: { tenant?: string; thresholds: string; queue?: string; webhook?: string },
        cmd: Command,
      ) => {
        const thresholds = f.thresholds.split(',').map((t) => Number(t.trim().replace(/%$/, '')));
        if (thresholds.some((t) => !Number.isInteger(t) || t < 1))
          throw new CliError('--thresholds takes whole percentages like 50,80,100', 2);
        const { client } = clientFor(ctx, cmd);
        const b = await client.post<BudgetView>('/billing/budgets', {
          name,
          amount,
          thresholds,
          ...(f.tenant ? { tenantId: f.tenant } : {}),
          ...(f.queue ? { queueName: f.queue } : {}),
          ...(f.webhook ? { webhookUrl: f.webhook } : {}),
        });
        printerFor(ctx, cmd).result(b, () => `Created budget ${b.name} (${b.id}).\n`);
      },
    );
  budgets.command('delete <id>').action(async (id: string, _f: unknown, cmd: Command) => {
    const { client } = clientFor(ctx, cmd);
    await client.delete(`/billing/budgets/${seg(id)}`);
    printerFor(ctx, cmd).note(`Deleted budget ${id}.`);
  });
  billing
    .command('notifications')
    .description('Budget alerts and balance notices, newest first')
    .option('--tenant <tenant>', 'tenant id (platform admins)')
    .action(async (f: { tenant?: string }, cmd: Command) => {
      const { client } = clientFor(ctx, cmd);
      const res = await client.get<{
        items: { createdAt: string; kind: string; message: string; delivery: string }[];
      }>('/billing/notifications', { tenantId: f.tenant });
      printerFor(ctx, cmd).table(
        res,
        res.items,
        [
          { header: 'TIME', value: (n) => shortTime(n.createdAt), shrink: false },
          { header: 'KIND', value: (n) => n.kind },
          { header: 'DELIVERY', value: (n) => n.delivery },
          { header: 'MESSAGE', value: (n) => n.message },
        ],
        'No notifications.',
      );
    });

  billing
    .command('showback')
    .description('Revenue and usage per tenant, service, host or meter over time (platform admins)')
    .option(
      '--group-by <key>',
      'tenant, service, host or meter',
      choice('--group-by', ['tenant', 'service', 'host', 'meter'] as const),
      'tenant',
    )
    .option('--bucket <size>', 'day or month', choice('--bucket', ['day', 'month'] as const), 'day')
    .option('--since <time>', 'from (default 30 days ago)', timeArg('--since'))
    .option('--until <time>', 'before (default now)', timeArg('--until'))
    .option('--tenant <tenant>', 'only this tenant')
    .action(
      async (
        f: { groupBy: string; bucket: string; since?: string; until?: string; tenant?: string },
        cmd: Command,
      ) => {
        const { client } = clientFor(ctx, cmd);
        const res = await client.get<{
          currency: string;
          items: { time: string; key: string; amountMicros: number; quantity: string }[];
        }>('/billing/showback', {
          groupBy: f.groupBy,
          bucket: f.bucket,
          since: f.since,
          until: f.until,
          tenantId: f.tenant,
        });
        printerFor(ctx, cmd).table(
          res,
          res.items,
          [
            {
              header: f.bucket === 'day' ? 'DAY' : 'MONTH',
              value: (r) => (f.bucket === 'day' ? r.time.slice(0, 10) : month(r.time)),
              shrink: false,
            },
            { header: f.groupBy.toUpperCase(), value: (r) => r.key },
            { header: `REVENUE (${res.currency})`, value: (r) => money(r.amountMicros), align: 'right' },
            ...(f.groupBy === 'meter'
              ? [
                  {
                    header: 'QUANTITY',
                    value: (r: { quantity: string }) => r.quantity,
                    align: 'right' as const,
                  },
                ]
              : []),
          ],
          'No charges in that window.',
        );
      },
    );
}
