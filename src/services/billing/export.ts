import type { InvoiceView } from './invoices.js';
import { formatMicros } from './money.js';

export type ExportLang = 'en' | 'zh-CN';
export const EXPORT_FORMATS = ['json', 'csv', 'html'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

const TEXT = {
  en: {
    title: 'Invoice',
    number: 'Invoice number',
    tenant: 'Tenant',
    period: 'Billing period',
    state: 'Status',
    service: 'Service',
    resource: 'Resource',
    meter: 'Meter',
    quantity: 'Quantity',
    unit: 'Unit',
    amount: 'Amount',
    subtotal: 'Subtotal',
    serviceSubtotal: 'Subtotal',
    tax: 'Tax',
    credits: 'Credits applied',
    total: 'Total',
    states: { draft: 'Draft', finalised: 'Finalised', paid: 'Paid', void: 'Void' },
    note: 'Amounts are exact to one millionth of the currency unit; usage is rated per second.',
  },
  'zh-CN': {
    title: '账单',
    number: '账单编号',
    tenant: '租户',
    period: '账期',
    state: '状态',
    service: '服务',
    resource: '资源',
    meter: '计量项',
    quantity: '用量',
    unit: '单位',
    amount: '金额',
    subtotal: '小计',
    serviceSubtotal: '服务小计',
    tax: '税费',
    credits: '抵扣额度',
    total: '应付总额',
    states: { draft: '草稿', finalised: '已出账', paid: '已支付', void: '已作废' },
    note: '金额精确到货币单位的百万分之一；用量按秒计费。',
  },
} as const;

const csvCell = (v: string) => (/[",\n\r]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);

/** CSV: one row per line, then the totals rows; amounts in currency units with exact decimals. */
export function invoiceCsv(inv: InvoiceView, lang: ExportLang = 'en'): string {
  const t = TEXT[lang];
  const rows: string[][] = [
    [t.service, t.resource, t.meter, t.quantity, t.unit, `${t.amount} (${inv.currency})`],
    ...inv.lines.map((l) => [
      l.service,
      l.resourceId,
      l.meter,
      l.quantity,
      l.unit,
      formatMicros(l.amountMicros),
    ]),
    ...inv.services.map((s) => [s.service, '', t.serviceSubtotal, '', '', formatMicros(s.subtotalMicros)]),
    ['', '', t.subtotal, '', '', formatMicros(inv.subtotalMicros)],
    ['', '', `${t.tax} (${inv.taxRatePpm / 10_000}%)`, '', '', formatMicros(inv.taxMicros)],
    ['', '', t.credits, '', '', formatMicros(-inv.creditsMicros)],
    ['', '', t.total, '', '', formatMicros(inv.totalMicros)],
  ];
  return rows.map((r) => r.map(csvCell).join(',')).join('\r\n') + '\r\n';
}

const esc = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** A self-contained printable page (print to PDF from any browser). */
export function invoiceHtml(inv: InvoiceView, lang: ExportLang = 'en'): string {
  const t = TEXT[lang];
  const money = (m: number) => `${esc(formatMicros(m))} ${esc(inv.currency)}`;
  const day = (s: string) => s.slice(0, 10);
  const lineRows = inv.lines
    .map(
      (l) =>
        `<tr><td>${esc(l.service)}</td><td>${esc(l.resourceId)}</td><td>${esc(l.meter)}</td>` +
        `<td class="n">${esc(l.quantity)} ${esc(l.unit)}</td><td class="n">${money(l.amountMicros)}</td></tr>`,
    )
    .join('\n');
  const serviceRows = inv.services
    .map(
      (s) =>
        `<tr><td colspan="4">${t.serviceSubtotal}: ${esc(s.service)}</td><td class="n">${money(s.subtotalMicros)}</td></tr>`,
    )
    .join('\n');
  return `<!doctype html>
<html lang="${lang}">
<head>
<meta charset="utf-8">
<title>${t.title} ${esc(inv.number)}</title>
<style>
body { font-family: system-ui, "Noto Sans CJK SC", "PingFang SC", sans-serif; margin: 2em; color: #111; }
table { border-collapse: collapse; width: 100%; }
th, td { border-bottom: 1px solid #ddd; padding: 4px 8px; text-align: left; }
td.n, th.n { text-align: right; white-space: nowrap; }
tfoot td { font-weight: 600; }
@media print { body { margin: 0; } }
</style>
</head>
<body>
<h1>${t.title}</h1>
<p>${t.number}: ${esc(inv.number)}<br>${t.tenant}: ${esc(inv.tenantId)}<br>
${t.period}: ${day(inv.periodStart)} – ${day(inv.periodEnd)}<br>${t.state}: ${t.states[inv.state]}</p>
<table>
<thead><tr><th>${t.service}</th><th>${t.resource}</th><th>${t.meter}</th><th class="n">${t.quantity}</th><th class="n">${t.amount}</th></tr></thead>
<tbody>
${lineRows}
</tbody>
<tfoot>
${serviceRows}
<tr><td colspan="4">${t.subtotal}</td><td class="n">${money(inv.subtotalMicros)}</td></tr>
<tr><td colspan="4">${t.tax} (${inv.taxRatePpm / 10_000}%)</td><td class="n">${money(inv.taxMicros)}</td></tr>
<tr><td colspan="4">${t.credits}</td><td class="n">${money(-inv.creditsMicros)}</td></tr>
<tr><td colspan="4">${t.total}</td><td class="n">${money(inv.totalMicros)}</td></tr>
</tfoot>
</table>
<p><small>${t.note}</small></p>
</body>
</html>
`;
}

export function renderInvoice(inv: InvoiceView, format: ExportFormat, lang: ExportLang) {
  if (format === 'csv') return { contentType: 'text/csv; charset=utf-8', body: invoiceCsv(inv, lang) };
  if (format === 'html') return { contentType: 'text/html; charset=utf-8', body: invoiceHtml(inv, lang) };
  return { contentType: 'application/json; charset=utf-8', body: JSON.stringify(inv, null, 2) + '\n' };
}
