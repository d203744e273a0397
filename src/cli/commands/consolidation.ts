import type { Command } from 'commander';
import type { ConsolidationReportView } from '../../services/compute/consolidation-service.js';
import type { ZoneView } from '../../services/hosts/zones.js';
import type { CliContext } from '../context.js';
import { CliError } from '../errors.js';
import { type Column, formatBytes, renderFields, shortTime } from '../output.js';
import { barProgress } from '../progress.js';
import { clientFor, examples, printerFor, seg } from './common.js';

const REPORT_COLUMNS: Column<ConsolidationReportView>[] = [
  { header: 'STATUS', value: (r) => (r.dryRun ? 'planned (dry run)' : r.status) },
  { header: 'MOVES', value: (r) => r.plan.moves.length, align: 'right' },
  {
    header: 'FREED',
    value: (r) => (r.dryRun ? r.plan.freedHosts.length : r.hostsFreed.length),
    align: 'right',
  },
  { header: 'WATTS', value: (r) => `${r.wattsBefore} → ${r.wattsAfter}`, align: 'right' },
  { header: 'KWH/DAY', value: (r) => r.kwhPerDaySaved, align: 'right' },
  { header: 'STARTED', value: (r) => shortTime(r.createdAt) },
  { header: 'ID', value: (r) => r.id, shrink: false },
];

const reportFields = (r: ConsolidationReportView) =>
  renderFields([
    ['id', r.id],
    ['status', r.dryRun ? 'planned (dry run)' : r.status],
    ['requested by', r.requestedBy],
    [
      'limits',
      `max ${r.options.maxMigrations} migrations, headroom cpu ${r.options.headroom.cpu} ram ${r.options.headroom.ram}`,
    ],
    ['hosts on', `${r.plan.hostsOnBefore} → ${r.plan.hostsOnAfter}`],
    ['moves', r.plan.moves.map((m) => `${m.instanceId}: ${m.from} → ${m.to}`).join('\n') || '-'],
    [
      'migrations',
      `${r.migrations.length} started, ${r.migrationsCompleted} completed, ${r.migrationsFailed} failed`,
    ],
    ['hosts freed', (r.dryRun ? r.plan.freedHosts : r.hostsFreed).join(', ') || '-'],
    ['skipped', r.plan.skipped.map((s) => `${s.host}: ${s.reason}`).join('\n') || '-'],
    [
      'power',
      `${r.wattsBefore} W → ${r.wattsAfter} W (saves ${r.wattsSaved} W, ${r.kwhPerDaySaved} kWh/day)`,
    ],
    ['started', r.createdAt],
    ['finished', r.finishedAt ?? '-'],
  ]);

const ZONE_COLUMNS: Column<ZoneView>[] = [
  { header: 'ZONE', value: (z) => z.name },
  { header: 'HOSTS', value: (z) => `${z.hostsUp}/${z.hosts} up`, align: 'right' },
  { header: 'MAINT', value: (z) => z.hostsInMaintenance, align: 'right' },
  { header: 'INSTANCES', value: (z) => z.allocated.instances, align: 'right' },
  { header: 'VCPUS', value: (z) => `${z.allocated.vcpus}/${z.capacity.vcpus}`, align: 'right' },
  {
    header: 'RAM',
    value: (z) =>
      `${formatBytes(z.allocated.memoryMiB * 2 ** 20)}/${formatBytes(z.capacity.memoryMiB * 2 ** 20)}`,
    align: 'right',
  },
];

const ratio = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0 || n > 0.9) throw new CliError(`--${name} must be a number in 0..0.9`, 2);
  return n;
};

/**
 * `yunhai consolidation run|list|show` and `yunhai zone list` (platform admins). A run waits for
 * its migrations with a progress bar unless `--no-wait` or `--dry-run`.
 */
export function registerConsolidationCommands(program: Command, ctx: CliContext) {
  const cons = program
    .command('consolidation')
    .description('Energy-saving consolidation: pack instances onto fewer hosts (platform admins)')
    .addHelpText(
      'after',
      examples(
        'yunhai consolidation run --dry-run',
        'yunhai consolidation run --max-migrations 5 --headroom-cpu 0.3',
        'yunhai consolidation show cons-0a1b2c3d4e5f',
      ),
    );
  cons
    .command('run')
    .description('Plan and start live migrations that empty hosts; emptied hosts are marked for power-off')
    .option('--dry-run', 'only plan: show the moves and the estimated saving')
    .option('--max-migrations <n>', 'at most this many migrations', (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0 || n > 1000)
        throw new CliError('--max-migrations must be 0..1000', 2);
      return n;
    })
    .option(
      '--headroom-cpu <fraction>',
      'CPU kept free on each target (0..0.9, default 0.2)',
      ratio('headroom-cpu'),
    )
    .option(
      '--headroom-ram <fraction>',
      'RAM kept free on each target (0..0.9, default 0.2)',
      ratio('headroom-ram'),
    )
    .option('--no-wait', 'return once the migrations have started')
    .action(
      async (
        f: {
          dryRun?: boolean;
          maxMigrations?: number;
          headroomCpu?: number;
          headroomRam?: number;
          wait: boolean;
        },
        cmd: Command,
      ) => {
        const { client } = clientFor(ctx, cmd);
        const headroom = {
          ...(f.headroomCpu !== undefined ? { cpu: f.headroomCpu } : {}),
          ...(f.headroomRam !== undefined ? { ram: f.headroomRam } : {}),
        };
        let r = await client.post<ConsolidationReportView>('/consolidation/run', {
          dryRun: !!f.dryRun,
          ...(f.maxMigrations !== undefined ? { maxMigrations: f.maxMigrations } : {}),
          ...(Object.keys(headroom).length ? { headroom } : {}),
        });
        if (!f.dryRun && f.wait && r.status === 'running' && r.migrations.length > 0) {
          const bar = barProgress(ctx.io, 'consolidation');
          while (r.status === 'running') {
            const done = r.migrationsCompleted + r.migrationsFailed;
            bar.update(done / r.migrations.length, `${done}/${r.migrations.length} migrations done`);
            await new Promise((res) => setTimeout(res, 1000));
            r = await client.get<ConsolidationReportView>(`/consolidation/reports/${seg(r.id)}`);
          }
          bar.stop(`${r.hostsFreed.length} hosts freed, ${r.wattsSaved} W saved`);
        }
        printerFor(ctx, cmd).result(r, () => reportFields(r));
      },
    );
  cons
    .command('list')
    .description('Consolidation runs, newest first')
    .option('--limit <n>', 'how many', '20')
    .action(async (f: { limit: string }, cmd: Command) => {
      const { client } = clientFor(ctx, cmd);
      const page = await client.get<{ items: ConsolidationReportView[] }>('/consolidation/reports', {
        limit: f.limit,
      });
      printerFor(ctx, cmd).table(page, page.items, REPORT_COLUMNS, 'No consolidation runs.');
    });
  cons
    .command('show')
    .argument('<id>', 'report id')
    .description('One run: moves, skipped hosts and why, hosts freed, power before and after')
    .action(async (id: string, _f: unknown, cmd: Command) => {
      const { client } = clientFor(ctx, cmd);
      const r = await client.get<ConsolidationReportView>(`/consolidation/reports/${seg(id)}`);
      printerFor(ctx, cmd).result(r, () => reportFields(r));
    });

  program
    .command('zone')
    .description('Availability zones (platform admins)')
    .command('list')
    .description('Zones with their hosts, capacity and allocation')
    .action(async (_f: unknown, cmd: Command) => {
      const { client } = clientFor(ctx, cmd);
      const page = await client.get<{ items: ZoneView[] }>('/availability-zones');
      printerFor(ctx, cmd).table(page, page.items, ZONE_COLUMNS, 'No zones (no hosts registered).');
    });
}
