import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { CliError } from '../errors.js';
import { bar, type Column, renderFields, shortTime } from '../output.js';
import type { HostView } from '../types.js';
import { formatGiB, formatMiB } from '../units.js';
import { clientFor, examples, printerFor, seg } from './common.js';

const BAR_WIDTH = 6;

/** `2/8 ██░░░░`: allocated / capacity with a small bar. */
export const usage = (used: number, total: number, fmt: (n: number) => string = String) =>
  `${fmt(used)}/${fmt(total)} ${bar(used, Math.max(0, total), BAR_WIDTH)}`;

const pct = (used: number, total: number) => (total > 0 ? ` ${Math.round((used / total) * 100)}%` : '');

const HOST_COLUMNS: Column<HostView>[] = [
  { header: 'NAME', value: (h) => h.name },
  { header: 'ID', value: (h) => h.id, shrink: false },
  { header: 'STATE', value: (h) => h.state },
  { header: 'ENABLED', value: (h) => (h.maintenance ? 'maint.' : h.enabled ? 'yes' : 'no') },
  { header: 'ZONE', value: (h) => h.zone },
  { header: 'ACCEL', value: (h) => h.accelerator },
  { header: 'INSTANCES', value: (h) => h.allocated.instances, align: 'right' },
  { header: 'VCPUS', value: (h) => usage(h.allocated.vcpus, h.vcpus), shrink: false },
  { header: 'MEMORY', value: (h) => usage(h.allocated.memoryMiB, h.memoryMiB, formatMiB), shrink: false },
  { header: 'DISK', value: (h) => usage(h.allocated.diskGiB, h.diskGiB, formatGiB), shrink: false },
  { header: 'HEARTBEAT', value: (h) => shortTime(h.lastHeartbeatAt) },
];

const hostFields = (h: HostView) =>
  renderFields([
    ['id', h.id],
    ['name', h.name],
    ['state', h.state],
    ['enabled', h.enabled ? 'yes (new instances may be placed here)' : 'no (no new instances)'],
    ['maintenance', h.maintenance ? 'yes (being drained: no new instances)' : 'no'],
    ['zone', h.zone],
    ['aggregates', h.aggregates.join(', ') || '-'],
    ['overcommit', h.overcommit ? ratios(h.overcommit) : 'inherited (aggregates or platform default)'],
    ['driver', h.driver],
    ['accelerator', h.accelerator],
    ['hypervisor', h.hypervisorVersion],
    ['agent', h.agentVersion],
    ['firmware', h.firmware.join(', ')],
    ['instances', h.allocated.instances],
    ['vcpus', usage(h.allocated.vcpus, h.vcpus) + pct(h.allocated.vcpus, h.vcpus)],
    [
      'memory',
      usage(h.allocated.memoryMiB, h.memoryMiB, formatMiB) + pct(h.allocated.memoryMiB, h.memoryMiB),
    ],
    ['disk', usage(h.allocated.diskGiB, h.diskGiB, formatGiB) + pct(h.allocated.diskGiB, h.diskGiB)],
    ['last heartbeat', h.lastHeartbeatAt],
  ]);

const ratios = (o: Partial<Record<'cpu' | 'ram' | 'disk', number>>) =>
  (['cpu', 'ram', 'disk'] as const)
    .filter((k) => o[k] !== undefined)
    .map((k) => `${k} ${o[k]}`)
    .join(', ');

/** `cpu=4,ram=1.5` → { cpu: 4, ram: 1.5 }. */
export function parseRatios(text: string): Partial<Record<'cpu' | 'ram' | 'disk', number>> {
  const out: Partial<Record<'cpu' | 'ram' | 'disk', number>> = {};
  for (const part of text.split(',')) {
    const m = /^(cpu|ram|disk)=(\d+(?:\.\d+)?)$/.exec(part.trim());
    if (!m) throw new CliError(`overcommit must look like cpu=4,ram=1,disk=1 (got "${part}")`, 2);
    out[m[1] as 'cpu' | 'ram' | 'disk'] = Number(m[2]);
  }
  return out;
}

const isLoopback = (endpoint: string) => {
  try {
    const host = new URL(endpoint).hostname;
    return host === 'localhost' || host === '[::1]' || host.startsWith('127.');
  } catch {
    return false;
  }
};

export function registerHostCommands(program: Command, ctx: CliContext) {
  const host = program
    .command('host')
    .description('Compute hosts: capacity, allocation, and which take new instances (platform admins)')
    .addHelpText(
      'after',
      examples('yunhai host list', 'yunhai host disable node-2', 'yunhai host token create'),
    );

  host
    .command('list')
    .description('List hosts with their state and vCPU, memory and disk allocated / capacity')
    .action(async (_f: unknown, cmd: Command) => {
      const { client } = clientFor(ctx, cmd);
      const page = await client.get<{ items: HostView[]; nextCursor: string | null }>('/hosts');
      printerFor(ctx, cmd).table(
        page,
        page.items,
        HOST_COLUMNS,
        'No hosts registered yet; add one with `yunhai host token create`.',
      );
    });

  host
    .command('show')
    .description('Show a host')
    .argument('<host>', 'host id or name')
    .action(async (id: string, _f: unknown, cmd: Command) => {
      const { client } = clientFor(ctx, cmd);
      const h = await client.get<HostView>(`/hosts/${seg(id)}`);
      printerFor(ctx, cmd).result(h, () => hostFields(h));
    });

  for (const [verb, done, description] of [
    ['enable', 'Enabled', 'Let the scheduler place new instances on a host'],
    ['disable', 'Disabled', 'Stop placing new instances on a host (running ones stay)'],
  ] as const) {
    host
      .command(verb)
      .description(description)
      .argument('<host>', 'host id or name')
      .action(async (id: string, _f: unknown, cmd: Command) => {
        const { client } = clientFor(ctx, cmd);
        const h = await client.post<HostView>(`/hosts/${seg(id)}/${verb}`);
        printerFor(ctx, cmd).result(h, () => `${done} host ${h.name} (${h.id}).\n`);
      });
  }

  host
    .command('update')
    .description('Set a host’s availability zone, maintenance mode or overcommit ratios')
    .argument('<host>', 'host id or name')
    .option('--zone <zone>', 'availability zone')
    .option('--maintenance <on|off>', 'on: take no new instances while the host is drained')
    .option('--overcommit <ratios>', 'e.g. cpu=8,ram=1.5 ("inherit" clears them)')
    .addHelpText(
      'after',
      examples(
        'yunhai host update node-2 --zone az2',
        'yunhai host update node-3 --overcommit cpu=8,ram=1.2',
      ),
    )
    .action(
      async (id: string, f: { zone?: string; maintenance?: string; overcommit?: string }, cmd: Command) => {
        const body: Record<string, unknown> = {};
        if (f.zone !== undefined) body.zone = f.zone;
        if (f.maintenance !== undefined) {
          if (f.maintenance !== 'on' && f.maintenance !== 'off')
            throw new CliError('--maintenance takes on or off', 2);
          body.maintenance = f.maintenance === 'on';
        }
        if (f.overcommit !== undefined)
          body.overcommit = f.overcommit === 'inherit' ? null : parseRatios(f.overcommit);
        if (Object.keys(body).length === 0)
          throw new CliError('nothing to change: give --zone, --maintenance or --overcommit', 2);
        const { client } = clientFor(ctx, cmd);
        const h = await client.patch<HostView>(`/hosts/${seg(id)}`, body);
        printerFor(ctx, cmd).result(h, () => hostFields(h));
      },
    );

  const token = host.command('token').description('The registration token new hosts join with');
  token
    .command('create')
    .description('Create the registration token (replaces the previous one); shown once')
    .addHelpText('after', examples('yunhai host token create'))
    .action(async (_f: unknown, cmd: Command) => {
      const { client } = clientFor(ctx, cmd);
      const printer = printerFor(ctx, cmd);
      const res = await client.post<{ token: string }>('/hosts/registration-token');
      printer.result(
        res,
        () =>
          `Registration token (shown only this once):\n  ${res.token}\n\n` +
          `On the new host, run:\n  yunhai agent --control-plane ${client.endpoint} --token ${res.token}\n`,
      );
      printer.note(
        'Anyone with this token can add a host; it replaces the previous token (hosts already registered keep working).' +
          (isLoopback(client.endpoint)
            ? `\nNote: ${client.endpoint} is a loopback address; a host on another machine needs an address it can reach (start the control plane with --host 0.0.0.0).`
            : ''),
      );
    });
}
