import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { type Column, renderTable, shortTime } from '../output.js';
import type { UsageRecordView, UsageSummaryView } from '../types.js';
import {
  clientFor,
  examples,
  type ListFlags,
  printerFor,
  printList,
  timeArg,
  withListOptions,
} from './common.js';

const USAGE_COLUMNS: Column<UsageRecordView>[] = [
  { header: 'PERIOD START', value: (r) => shortTime(r.periodStart), shrink: false },
  { header: 'PERIOD END', value: (r) => shortTime(r.periodEnd), shrink: false },
  { header: 'TENANT', value: (r) => r.tenantId },
  { header: 'SERVICE', value: (r) => r.service },
  { header: 'RESOURCE', value: (r) => r.resourceId },
  { header: 'METER', value: (r) => r.meter },
  { header: 'QUANTITY', value: (r) => r.quantity, align: 'right' },
];

const TIME_HELP = 'ISO time (2025-01-31, 2025-01-31T08:00:00Z) or a duration ago (30m, 12h, 7d)';

export function registerUsageCommands(program: Command, ctx: CliContext) {
  const usage = program
    .command('usage')
    .description('The usage ledger: metered consumption per tenant, the basis for billing')
    .addHelpText(
      'after',
      examples('yunhai usage summary', 'yunhai usage list --meter storage.byteHours --since 7d'),
    );

  withListOptions(
    usage
      .command('list')
      .description('Usage records, oldest first')
      .option('--tenant <tenant>', 'tenant id (platform admins; default: your own)')
      .option('--meter <meter>', 'only this meter')
      .option('--service <service>', 'only this service')
      .option('--since <time>', `from this time: ${TIME_HELP}`, timeArg('--since'))
      .option('--until <time>', 'before this time (same forms)', timeArg('--until')),
  )
    .addHelpText(
      'after',
      examples('yunhai usage list --since 24h', 'yunhai usage list --tenant ten-0a1b2c3d4e5f --all -o json'),
    )
    .action(
      async (
        f: ListFlags & { tenant?: string; meter?: string; service?: string; since?: string; until?: string },
        cmd: Command,
      ) => {
        await printList<UsageRecordView>(ctx, cmd, {
          path: '/usage',
          query: { tenantId: f.tenant, meter: f.meter, service: f.service, since: f.since, until: f.until },
          flags: f,
          label: 'usage records',
          columns: USAGE_COLUMNS,
        });
      },
    );

  usage
    .command('summary')
    .description('Totals per meter over a period (default: this calendar month, UTC)')
    .option('--tenant <tenant>', 'tenant id (platform admins; default: your own)')
    .option('--since <time>', `from this time: ${TIME_HELP}`, timeArg('--since'))
    .option('--until <time>', 'before this time (same forms)', timeArg('--until'))
    .addHelpText(
      'after',
      examples(
        'yunhai usage summary',
        'yunhai usage summary --tenant ten-0a1b2c3d4e5f --since 2025-01-01 --until 2025-02-01',
      ),
    )
    .action(async (f: { tenant?: string; since?: string; until?: string }, cmd: Command) => {
      const { client } = clientFor(ctx, cmd);
      const s = await client.get<UsageSummaryView>('/usage/summary', {
        tenantId: f.tenant,
        since: f.since,
        until: f.until,
      });
      printerFor(ctx, cmd).result(s, () => {
        const head = `Usage of tenant ${s.tenantId} from ${shortTime(s.since)} to ${shortTime(s.until)}:\n`;
        if (s.meters.length === 0) return `${head}  (no usage recorded)\n`;
        return (
          head +
          renderTable(
            s.meters,
            [
              { header: 'METER', value: (m) => m.meter },
              { header: 'TOTAL', value: (m) => m.total, align: 'right' },
            ],
            ctx.io.columns,
          )
        );
      });
    });
}
