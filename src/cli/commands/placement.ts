import type { Command } from 'commander';
import type { ServerGroupView } from '../../services/compute/server-groups.js';
import type { AggregateView } from '../../services/hosts/aggregates.js';
import type { CliContext } from '../context.js';
import { CliError } from '../errors.js';
import { type Column, renderFields, shortTime } from '../output.js';
import { clientFor, examples, printerFor, seg } from './common.js';
import { registerConsolidationCommands } from './consolidation.js';
import { parseRatios } from './host.js';
import { registerMigrationCommands } from './migration.js';

/** `k=v` pairs from repeated `--set` options. */
function parseMetadata(pairs: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of pairs) {
    const i = p.indexOf('=');
    if (i <= 0) throw new CliError(`metadata must be key=value (got "${p}")`, 2);
    out[p.slice(0, i)] = p.slice(i + 1);
  }
  return out;
}
const collect = (v: string, prev: string[] = []) => [...prev, v];
const meta = (m: Record<string, string>) =>
  Object.entries(m)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ') || '-';

const AGG_COLUMNS: Column<AggregateView>[] = [
  { header: 'NAME', value: (a) => a.name },
  { header: 'HOSTS', value: (a) => a.hosts.join(', ') || '-' },
  { header: 'METADATA', value: (a) => meta(a.metadata) },
  { header: 'ID', value: (a) => a.id, shrink: false },
];
const aggFields = (a: AggregateView) =>
  renderFields([
    ['id', a.id],
    ['name', a.name],
    ['hosts', a.hosts.join(', ') || '-'],
    ['metadata', meta(a.metadata)],
    ['overcommit', a.overcommit ? JSON.stringify(a.overcommit) : '-'],
    ['created', a.createdAt],
  ]);

const GROUP_COLUMNS: Column<ServerGroupView>[] = [
  { header: 'NAME', value: (g) => g.name },
  { header: 'POLICY', value: (g) => g.policy },
  { header: 'MEMBERS', value: (g) => g.members.length, align: 'right' },
  { header: 'CREATED', value: (g) => shortTime(g.createdAt) },
  { header: 'ID', value: (g) => g.id, shrink: false },
];
const groupFields = (g: ServerGroupView) =>
  renderFields([
    ['id', g.id],
    ['name', g.name],
    ['policy', g.policy],
    ['members', g.members.join(', ') || '-'],
    ['created', g.createdAt],
  ]);

/** `yunhai aggregate ...` (platform admins) and `yunhai server-group ...` (tenants). */
export function registerPlacementCommands(program: Command, ctx: CliContext) {
  registerMigrationCommands(program, ctx);
  registerConsolidationCommands(program, ctx);
  const agg = program
    .command('aggregate')
    .description(
      'Host aggregates: host sets with metadata the scheduler matches, tenant isolation, overcommit',
    )
    .addHelpText(
      'after',
      examples(
        'yunhai aggregate create ssd --set ssd=true',
        'yunhai aggregate create gov --set filter_tenant_id=ten-abc123',
        'yunhai aggregate add-host gov node-3',
      ),
    );
  agg
    .command('list')
    .description('List aggregates')
    .action(async (_f: unknown, cmd: Command) => {
      const { client } = clientFor(ctx, cmd);
      const page = await client.get<{ items: AggregateView[]; nextCursor: string | null }>('/aggregates');
      printerFor(ctx, cmd).table(page, page.items, AGG_COLUMNS, 'No aggregates.');
    });
  agg
    .command('show')
    .argument('<aggregate>', 'id or name')
    .description('Show an aggregate')
    .action(async (id: string, _f: unknown, cmd: Command) => {
      const { client } = clientFor(ctx, cmd);
      const a = await client.get<AggregateView>(`/aggregates/${seg(id)}`);
      printerFor(ctx, cmd).result(a, () => aggFields(a));
    });
  agg
    .command('create')
    .argument('<name>', 'aggregate name')
    .option('--set <key=value>', 'metadata (repeatable)', collect)
    .option('--overcommit <ratios>', 'e.g. cpu=8,ram=1.2 for its hosts')
    .description('Create an aggregate')
    .action(async (name: string, f: { set?: string[]; overcommit?: string }, cmd: Command) => {
      const { client } = clientFor(ctx, cmd);
      const a = await client.post<AggregateView>('/aggregates', {
        name,
        metadata: parseMetadata(f.set ?? []),
        ...(f.overcommit ? { overcommit: parseRatios(f.overcommit) } : {}),
      });
      printerFor(ctx, cmd).result(a, () => aggFields(a));
    });
  agg
    .command('update')
    .argument('<aggregate>', 'id or name')
    .option('--set <key=value>', 'replace the metadata with these pairs (repeatable)', collect)
    .option('--overcommit <ratios>', 'e.g. cpu=8 ("inherit" clears them)')
    .description('Replace an aggregate’s metadata and/or overcommit ratios')
    .action(async (id: string, f: { set?: string[]; overcommit?: string }, cmd: Command) => {
      const body: Record<string, unknown> = {};
      if (f.set) body.metadata = parseMetadata(f.set);
      if (f.overcommit) body.overcommit = f.overcommit === 'inherit' ? null : parseRatios(f.overcommit);
      if (Object.keys(body).length === 0)
        throw new CliError('nothing to change: give --set or --overcommit', 2);
      const { client } = clientFor(ctx, cmd);
      const a = await client.patch<AggregateView>(`/aggregates/${seg(id)}`, body);
      printerFor(ctx, cmd).result(a, () => aggFields(a));
    });
  for (const [verb, description] of [
    ['add-host', 'Add a host to an aggregate'],
    ['remove-host', 'Take a host out of an aggregate'],
  ] as const) {
    agg
      .command(verb)
      .argument('<aggregate>', 'id or name')
      .argument('<host>', 'host id or name')
      .description(description)
      .action(async (id: string, host: string, _f: unknown, cmd: Command) => {
        const { client } = clientFor(ctx, cmd);
        const a =
          verb === 'add-host'
            ? await client.post<AggregateView>(`/aggregates/${seg(id)}/hosts`, { host })
            : await client.delete<AggregateView>(`/aggregates/${seg(id)}/hosts/${seg(host)}`);
        printerFor(ctx, cmd).result(a, () => aggFields(a));
      });
  }
  agg
    .command('delete')
    .argument('<aggregate>', 'id or name')
    .description('Delete an aggregate (its hosts stay)')
    .action(async (id: string, _f: unknown, cmd: Command) => {
      const { client } = clientFor(ctx, cmd);
      await client.delete(`/aggregates/${seg(id)}`);
      printerFor(ctx, cmd).result({ deleted: id }, () => `Deleted aggregate ${id}.\n`);
    });

  const sg = program
    .command('server-group')
    .description('Server groups: keep instances on one host (affinity) or on different hosts (anti-affinity)')
    .addHelpText(
      'after',
      examples(
        'yunhai server-group create web --policy anti-affinity',
        'yunhai instance create web-1 --image tiny --flavor tiny.small --server-group web',
      ),
    );
  sg.command('list')
    .description('List your server groups')
    .action(async (_f: unknown, cmd: Command) => {
      const { client } = clientFor(ctx, cmd);
      const page = await client.get<{ items: ServerGroupView[]; nextCursor: string | null }>(
        '/server-groups',
      );
      printerFor(ctx, cmd).table(page, page.items, GROUP_COLUMNS, 'No server groups.');
    });
  sg.command('show')
    .argument('<group>', 'id or name')
    .description('Show a server group and its members')
    .action(async (id: string, _f: unknown, cmd: Command) => {
      const { client } = clientFor(ctx, cmd);
      const g = await client.get<ServerGroupView>(`/server-groups/${seg(id)}`);
      printerFor(ctx, cmd).result(g, () => groupFields(g));
    });
  sg.command('create')
    .argument('<name>', 'group name')
    .requiredOption(
      '--policy <policy>',
      'affinity, anti-affinity, soft-affinity or soft-anti-affinity (soft: preferred, never refused)',
    )
    .description('Create a server group')
    .action(async (name: string, f: { policy: string }, cmd: Command) => {
      const { client } = clientFor(ctx, cmd);
      const g = await client.post<ServerGroupView>('/server-groups', { name, policy: f.policy });
      printerFor(ctx, cmd).result(g, () => groupFields(g));
    });
  sg.command('delete')
    .argument('<group>', 'id or name')
    .description('Delete an empty server group')
    .action(async (id: string, _f: unknown, cmd: Command) => {
      const { client } = clientFor(ctx, cmd);
      await client.delete(`/server-groups/${seg(id)}`);
      printerFor(ctx, cmd).result({ deleted: id }, () => `Deleted server group ${id}.\n`);
    });
}
