import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { CliError } from '../errors.js';
import type { Column } from '../output.js';
import type { FlavorView, TenantView } from '../types.js';
import { diskGiBArg, formatGiB, formatMiB, memoryArg } from '../units.js';
import { clientFor, confirm, examples, positiveInt, printerFor, seg } from './common.js';

const FLAVOR_COLUMNS: Column<FlavorView>[] = [
  { header: 'NAME', value: (f) => f.name },
  { header: 'VCPUS', value: (f) => f.vcpus, align: 'right' },
  { header: 'MEMORY', value: (f) => formatMiB(f.memoryMiB), align: 'right' },
  { header: 'DISK', value: (f) => formatGiB(f.diskGiB), align: 'right' },
  { header: 'MAX VCPUS', value: (f) => f.maxVcpus, align: 'right' },
  { header: 'MAX MEMORY', value: (f) => formatMiB(f.maxMemoryMiB), align: 'right' },
  { header: 'VISIBILITY', value: (f) => (f.public ? 'public' : `tenant ${f.tenantId}`) },
  { header: 'ID', value: (f) => f.id, shrink: false },
];

const TENANT_ID = /^ten-[a-z0-9]{12}$/;

interface CreateFlags {
  vcpus: number;
  memory: number;
  disk: number;
  maxVcpus?: number;
  maxMemory?: number;
  tenant?: string;
  spec?: string[];
}

/** `k=v` pairs from repeated `--spec` options. */
function parseSpecs(pairs: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of pairs) {
    const i = p.indexOf('=');
    if (i <= 0) throw new CliError(`--spec must be key=value (got "${p}")`, 2);
    out[p.slice(0, i)] = p.slice(i + 1);
  }
  return out;
}

export function registerFlavorCommands(program: Command, ctx: CliContext) {
  const flavor = program
    .command('flavor')
    .description('Instance sizes: vCPUs, memory, disk, and how far a live resize may grow them')
    .addHelpText(
      'after',
      examples(
        'yunhai flavor list',
        'yunhai flavor create c2.large --vcpus 2 --memory 4GiB --disk 40 --max-vcpus 8 --max-memory 16GiB',
      ),
    );

  flavor
    .command('list')
    .description('List flavors you can launch (platform admins: all)')
    .action(async (_f: unknown, cmd: Command) => {
      const { client } = clientFor(ctx, cmd);
      const page = await client.get<{ items: FlavorView[]; nextCursor: string | null }>('/flavors');
      printerFor(ctx, cmd).table(page, page.items, FLAVOR_COLUMNS, 'No flavors.');
    });

  flavor
    .command('create')
    .description('Create a flavor (platform admins); --tenant makes it private to one tenant')
    .argument('<name>', 'lowercase letters, digits, . _ -, at most 63 characters')
    .requiredOption('--vcpus <n>', 'vCPUs at boot', positiveInt('--vcpus'))
    .requiredOption('--memory <size>', 'memory at boot, e.g. 512MiB or 4GiB', memoryArg('--memory'))
    .requiredOption('--disk <GiB>', 'root disk size in GiB', diskGiBArg('--disk'))
    .option(
      '--max-vcpus <n>',
      'most vCPUs a live resize may reach (default: --vcpus)',
      positiveInt('--max-vcpus'),
    )
    .option(
      '--max-memory <size>',
      'most memory a live resize may reach (default: --memory)',
      memoryArg('--max-memory'),
    )
    .option('--tenant <tenant>', 'only this tenant may use it (id or name)')
    .option(
      '--spec <key=value>',
      'aggregate metadata its hosts must carry, e.g. ssd=true (repeatable)',
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .addHelpText(
      'after',
      examples(
        'yunhai flavor create m2.small --vcpus 1 --memory 1GiB --disk 10',
        'yunhai flavor create acme.big --vcpus 8 --memory 32GiB --disk 200 --tenant acme',
        'yunhai flavor create ssd.medium --vcpus 2 --memory 4GiB --disk 40 --spec ssd=true',
      ),
    )
    .action(async (name: string, f: CreateFlags, cmd: Command) => {
      if (f.maxVcpus !== undefined && f.maxVcpus < f.vcpus)
        throw new CliError('--max-vcpus must be at least --vcpus', 2);
      if (f.maxMemory !== undefined && f.maxMemory < f.memory)
        throw new CliError('--max-memory must be at least --memory', 2);
      const { client } = clientFor(ctx, cmd);
      // The API takes a tenant id; a name is looked up first.
      const tenantId =
        f.tenant === undefined || TENANT_ID.test(f.tenant)
          ? f.tenant
          : (await client.get<TenantView>(`/tenants/${seg(f.tenant)}`)).id;
      const created = await client.post<FlavorView>('/flavors', {
        name,
        vcpus: f.vcpus,
        memoryMiB: f.memory,
        diskGiB: f.disk,
        ...(f.maxVcpus !== undefined ? { maxVcpus: f.maxVcpus } : {}),
        ...(f.maxMemory !== undefined ? { maxMemoryMiB: f.maxMemory } : {}),
        ...(tenantId ? { tenantId } : {}),
        ...(f.spec?.length ? { extraSpecs: parseSpecs(f.spec) } : {}),
      });
      printerFor(ctx, cmd).result(
        created,
        () =>
          `Created flavor ${created.name} (${created.id}): ${created.vcpus} vCPU (max ${created.maxVcpus}), ` +
          `${formatMiB(created.memoryMiB)} (max ${formatMiB(created.maxMemoryMiB)}), ${formatGiB(created.diskGiB)} disk` +
          `${created.public ? '' : `, for tenant ${created.tenantId}`}.\n`,
      );
    });

  flavor
    .command('delete')
    .description('Retire a flavor: no new instances with it (existing ones keep it)')
    .argument('<flavor>', 'flavor name or id')
    .option('-y, --yes', 'do not ask for confirmation')
    .addHelpText('after', examples('yunhai flavor delete m2.small --yes'))
    .action(async (ref: string, f: { yes?: boolean }, cmd: Command) => {
      const { client } = clientFor(ctx, cmd);
      await confirm(ctx, `delete flavor ${ref}`, f.yes);
      await client.delete(`/flavors/${seg(ref)}`);
      printerFor(ctx, cmd).result({ deleted: ref }, () => `Deleted flavor ${ref}.\n`);
    });
}
