import type { Command } from 'commander';
import { QUOTA_RESOURCES } from '../../platform/quota/quota.js';
import type { CliContext } from '../context.js';
import { CliError } from '../errors.js';
import { bar, type Column, formatBytes } from '../output.js';
import type { QuotaView } from '../types.js';
import { clientFor, examples, printerFor, seg } from './common.js';

const SIZE_UNITS: Record<string, number> = {
  k: 1024,
  m: 1024 ** 2,
  g: 1024 ** 3,
  t: 1024 ** 4,
  p: 1024 ** 5,
};

/** `users=10`, `buckets=unlimited`, `storageBytes=500GiB`; several per argument with commas. */
export function parseQuotaLimits(args: string[]): Record<string, number> {
  const limits: Record<string, number> = {};
  for (const part of args.flatMap((a) => a.split(',')).filter((a) => a.trim() !== '')) {
    const m = /^\s*([A-Za-z]+)\s*=\s*(.+?)\s*$/.exec(part);
    if (!m) throw new CliError(`quota '${part}' must look like resource=N (e.g. users=10)`, 2);
    const resource = QUOTA_RESOURCES.find((r) => r.toLowerCase() === m[1]!.toLowerCase());
    if (!resource)
      throw new CliError(`unknown quota resource '${m[1]}'; one of: ${QUOTA_RESOURCES.join(', ')}`, 2);
    const v = m[2]!;
    let n: number;
    const size = /^(\d+)\s*([kmgtp])(i?b)?$/i.exec(v);
    if (/^(unlimited|-1)$/i.test(v)) n = -1;
    else if (/^\d+$/.test(v)) n = Number(v);
    else if (size) n = Number(size[1]) * SIZE_UNITS[size[2]!.toLowerCase()]!;
    else
      throw new CliError(
        `quota ${resource}=${v}: the limit must be a whole number, a size like 500GiB, or unlimited`,
        2,
      );
    if (!Number.isSafeInteger(n)) throw new CliError(`quota ${resource}=${v} is too large`, 2);
    limits[resource] = n;
  }
  if (Object.keys(limits).length === 0) throw new CliError('give at least one resource=N', 2);
  return limits;
}

const amount = (resource: string, n: number) =>
  resource === 'storageBytes' && n > 0 ? formatBytes(n) : String(n);

export const QUOTA_COLUMNS: Column<QuotaView>[] = [
  { header: 'RESOURCE', value: (q) => q.resource },
  { header: 'USED', value: (q) => amount(q.resource, q.used), align: 'right' },
  {
    header: 'LIMIT',
    value: (q) => (q.limit < 0 ? 'unlimited' : amount(q.resource, q.limit)),
    align: 'right',
  },
  {
    header: 'USE',
    value: (q) =>
      q.limit < 0
        ? ''
        : `${bar(q.used, q.limit)} ${q.limit === 0 ? (q.used > 0 ? 100 : 0) : Math.round((q.used / q.limit) * 100)}%`,
    shrink: false,
  },
];

export function registerQuotaCommands(program: Command, ctx: CliContext) {
  const quota = program
    .command('quota')
    .description("A tenant's resource limits and current use")
    .addHelpText('after', `\nResources: ${QUOTA_RESOURCES.join(', ')}.\n`);

  quota
    .command('show')
    .description('Show used / limit per resource (default: your own tenant)')
    .option('--tenant <tenant>', 'tenant id or name (platform admins)')
    .addHelpText('after', examples('yunhai quota show', 'yunhai quota show --tenant acme -o json'))
    .action(async (f: { tenant?: string }, cmd: Command) => {
      const { client } = clientFor(ctx, cmd);
      const res = await client.get<{ items: QuotaView[] }>(
        f.tenant ? `/tenants/${seg(f.tenant)}/quotas` : '/quotas',
      );
      printerFor(ctx, cmd).table(res, res.items, QUOTA_COLUMNS, 'No quotas.');
    });

  quota
    .command('set')
    .description('Set quota limits of a tenant (platform admins); -1 or "unlimited" lifts a limit')
    .requiredOption('--tenant <tenant>', 'tenant id or name')
    .argument('<limits...>', `resource=N pairs; resources: ${QUOTA_RESOURCES.join(', ')}`)
    .addHelpText(
      'after',
      examples(
        'yunhai quota set --tenant acme users=50 buckets=10',
        'yunhai quota set --tenant acme storageBytes=2TiB instances=unlimited',
      ),
    )
    .action(async (limits: string[], f: { tenant: string }, cmd: Command) => {
      const body = parseQuotaLimits(limits);
      const { client } = clientFor(ctx, cmd);
      const res = await client.put<{ items: QuotaView[] }>(`/tenants/${seg(f.tenant)}/quotas`, body);
      const printer = printerFor(ctx, cmd);
      if (!printer.json) printer.note(`Updated ${Object.keys(body).join(', ')} of tenant ${f.tenant}.`);
      printer.table(res, res.items, QUOTA_COLUMNS, 'No quotas.');
    });
}
