import type { Command } from 'commander';
import type { MigrationView } from '../../services/compute/live-migration.js';
import type { CliContext } from '../context.js';
import { CliError } from '../errors.js';
import { type Column, formatBytes, renderFields, shortTime } from '../output.js';
import { barProgress } from '../progress.js';
import { clientFor, examples, printerFor, seg } from './common.js';

const COLUMNS: Column<MigrationView>[] = [
  { header: 'INSTANCE', value: (m) => m.instanceId },
  { header: 'FROM', value: (m) => m.sourceHost },
  { header: 'TO', value: (m) => m.targetHost },
  { header: 'STATE', value: (m) => m.state },
  { header: 'MOVED', value: (m) => formatBytes(m.transferredBytes), align: 'right' },
  { header: 'DOWNTIME', value: (m) => (m.downtimeMs === null ? '-' : `${m.downtimeMs} ms`), align: 'right' },
  { header: 'STARTED', value: (m) => shortTime(m.createdAt) },
  { header: 'ID', value: (m) => m.id, shrink: false },
];

const fields = (m: MigrationView) =>
  renderFields([
    ['id', m.id],
    ['instance', m.instanceId],
    ['from', m.sourceHost],
    ['to', m.targetHost],
    ['state', m.state],
    ['reason', m.reason],
    ['phase', m.phase ?? '-'],
    ['moved', `${formatBytes(m.transferredBytes)}${m.totalBytes ? ` of ${formatBytes(m.totalBytes)}` : ''}`],
    ['downtime', m.downtimeMs === null ? '-' : `${m.downtimeMs} ms`],
    ['total time', m.totalTimeMs === null ? '-' : `${m.totalTimeMs} ms`],
    ['error', m.error ?? '-'],
    ['started', m.createdAt],
    ['finished', m.finishedAt ?? '-'],
  ]);

interface MoveResult {
  host: string;
  results: Array<{
    instanceId: string;
    migrationId?: string;
    targetHost?: string;
    host?: string;
    error?: string;
  }>;
}

/**
 * `yunhai migration list|show`, `yunhai instance migrate`, `yunhai host drain|evacuate` (platform
 * admins). Registered after the instance and host commands, which it extends.
 */
export function registerMigrationCommands(program: Command, ctx: CliContext) {
  const mig = program
    .command('migration')
    .description('Live migrations of instances between hosts (platform admins)')
    .addHelpText(
      'after',
      examples('yunhai migration list --state transferring', 'yunhai migration show mig-0a1b2c3d4e5f'),
    );
  mig
    .command('list')
    .description('List migrations, newest first')
    .option('--instance <id>', 'only this instance')
    .option('--host <id>', 'only migrations from or to this host')
    .option('--state <state>', 'preparing, transferring, switching, completed or failed')
    .action(async (f: { instance?: string; host?: string; state?: string }, cmd: Command) => {
      const { client } = clientFor(ctx, cmd);
      const page = await client.get<{ items: MigrationView[] }>('/migrations', {
        instance: f.instance,
        host: f.host,
        state: f.state,
      });
      printerFor(ctx, cmd).table(page, page.items, COLUMNS, 'No migrations.');
    });
  mig
    .command('show')
    .argument('<id>', 'migration id')
    .description('Show a migration: state, bytes moved, downtime')
    .action(async (id: string, _f: unknown, cmd: Command) => {
      const { client } = clientFor(ctx, cmd);
      const m = await client.get<MigrationView>(`/migrations/${seg(id)}`);
      printerFor(ctx, cmd).result(m, () => fields(m));
    });

  const instance = program.commands.find((c) => c.name() === 'instance');
  instance
    ?.command('migrate')
    .argument('<instance>', 'instance id')
    .option('--host <host>', 'target host (default: where the scheduler finds room)')
    .option('--no-wait', 'return once the migration has started')
    .description('Live-migrate a running instance to another host (platform admins), with progress')
    .action(async (id: string, f: { host?: string; wait: boolean }, cmd: Command) => {
      const { client } = clientFor(ctx, cmd);
      let m = await client.post<MigrationView>(
        `/instances/${seg(id)}/migrate`,
        f.host ? { host: f.host } : {},
      );
      if (f.wait) {
        const bar = barProgress(ctx.io, `migrate ${id}`);
        while (m.state !== 'completed' && m.state !== 'failed') {
          if (m.state === 'transferring' && m.totalBytes > 0)
            bar.bytes(m.totalBytes - m.remainingBytes, m.totalBytes, `copying ${m.phase ?? 'memory'}`);
          else bar.update(m.state === 'switching' ? 0.99 : 0, m.state);
          await new Promise((r) => setTimeout(r, 500));
          m = await client.get<MigrationView>(`/migrations/${seg(m.id)}`);
        }
        bar.stop(
          m.state === 'completed'
            ? `migrated to ${m.targetHost}: ${formatBytes(m.transferredBytes)} moved, downtime ${m.downtimeMs} ms`
            : undefined,
        );
        if (m.state === 'failed') throw new CliError(`migration ${m.id} failed: ${m.error}`, 1);
      }
      printerFor(ctx, cmd).result(m, () => fields(m));
    });

  const host = program.commands.find((c) => c.name() === 'host');
  const printMoves = (r: MoveResult, cmd: Command) =>
    printerFor(ctx, cmd).result(r, () =>
      r.results.length === 0
        ? 'No instances on the host.\n'
        : `${r.results
            .map((x) =>
              x.error
                ? `${x.instanceId}: stays (${x.error})`
                : `${x.instanceId} → ${x.targetHost ?? x.host}${x.migrationId ? ` (${x.migrationId})` : ''}`,
            )
            .join('\n')}\n`,
    );
  host
    ?.command('drain')
    .argument('<host>', 'host id or name')
    .description('Maintenance mode, then live-migrate every running instance off the host')
    .action(async (id: string, _f: unknown, cmd: Command) => {
      const { client } = clientFor(ctx, cmd);
      printMoves(await client.post<MoveResult>(`/hosts/${seg(id)}/drain`, {}), cmd);
    });
  host
    ?.command('evacuate')
    .argument('<host>', 'host id or name (must be down)')
    .description('Rebuild every instance of a host that is down on other hosts, from its image')
    .action(async (id: string, _f: unknown, cmd: Command) => {
      const { client } = clientFor(ctx, cmd);
      printMoves(await client.post<MoveResult>(`/hosts/${seg(id)}/evacuate`, {}), cmd);
    });
}
