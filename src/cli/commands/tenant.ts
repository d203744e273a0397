import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { CliError } from '../errors.js';
import { type Column, renderFields, shortTime } from '../output.js';
import type { TenantView, UserView } from '../types.js';
import {
  choice,
  clientFor,
  confirm,
  examples,
  type ListFlags,
  printerFor,
  printList,
  secretArg,
  seg,
  withListOptions,
} from './common.js';
import { parseQuotaLimits } from './quota.js';

const collect = (v: string, prev: string[] = []) => [...prev, v];

const TENANT_COLUMNS: Column<TenantView>[] = [
  { header: 'ID', value: (t) => t.id, shrink: false },
  { header: 'NAME', value: (t) => t.name },
  { header: 'DISPLAY NAME', value: (t) => t.displayName },
  { header: 'STATUS', value: (t) => t.status },
  { header: 'ACCOUNT', value: (t) => t.accountId, shrink: false },
  { header: 'CREATED', value: (t) => shortTime(t.createdAt) },
];

const tenantFields = (t: TenantView) =>
  renderFields([
    ['id', t.id],
    ['name', t.name],
    ['display name', t.displayName],
    ['status', t.status],
    ['account', t.accountId],
    ['created', t.createdAt],
    ['updated', t.updatedAt],
  ]);

interface CreateFlags {
  displayName?: string;
  owner?: string;
  ownerPassword?: string | true;
  ownerEmail?: string;
  quota?: string[];
}

export function registerTenantCommands(program: Command, ctx: CliContext) {
  const tenant = program
    .command('tenant')
    .description('Tenants: isolated accounts with their own users and quotas (platform admins)')
    .addHelpText(
      'after',
      examples(
        'yunhai tenant create acme --owner alice --owner-password "s3cret-pass"',
        'yunhai tenant list',
      ),
    );

  tenant
    .command('create')
    .description('Create a tenant, optionally with an owner user and quota limits')
    .argument('<name>', 'lowercase letters, digits and hyphens, 2-63 characters')
    .option('--display-name <text>', 'human-friendly name')
    .option('--owner <user>', 'also create this user as the tenant owner')
    .option('--owner-password [password]', "the owner's password (without a value: ask on a terminal)")
    .option('--owner-email <email>', "the owner's email")
    .option('--quota <resource=N>', 'a quota limit (repeatable, or comma-separated)', collect)
    .addHelpText(
      'after',
      examples(
        'yunhai tenant create acme --display-name "Acme Corp"',
        'yunhai tenant create acme --owner alice --owner-password --quota users=20 --quota buckets=5',
      ),
    )
    .action(async (name: string, f: CreateFlags, cmd: Command) => {
      if ((f.ownerPassword !== undefined || f.ownerEmail !== undefined) && !f.owner) {
        throw new CliError('--owner-password and --owner-email need --owner', 2);
      }
      const { client } = clientFor(ctx, cmd);
      const quotas = f.quota?.length ? parseQuotaLimits(f.quota) : undefined;
      const password =
        f.ownerPassword === undefined
          ? undefined
          : await secretArg(ctx, f.ownerPassword === true ? undefined : f.ownerPassword, {
              flag: '--owner-password',
              prompt: `Password for ${f.owner}`,
              twice: true,
            });
      const res = await client.post<{ tenant: TenantView; owner: UserView | null }>('/tenants', {
        name,
        ...(f.displayName ? { displayName: f.displayName } : {}),
        ...(quotas ? { quotas } : {}),
        ...(f.owner
          ? {
              owner: {
                name: f.owner,
                ...(password ? { password } : {}),
                ...(f.ownerEmail ? { email: f.ownerEmail } : {}),
              },
            }
          : {}),
      });
      printerFor(ctx, cmd).result(res, () => {
        let s = `Created tenant ${res.tenant.name} (${res.tenant.id}, account ${res.tenant.accountId}).\n`;
        if (res.owner) {
          s += `Owner ${res.owner.name} (${res.owner.id})${res.owner.hasPassword ? ` can log in: yunhai login --username ${res.owner.name}@${res.tenant.name}` : ' has no password yet'}.\n`;
        }
        return s;
      });
    });

  withListOptions(
    tenant
      .command('list')
      .description('List tenants')
      .option(
        '--status <status>',
        'only active or suspended tenants',
        choice('--status', ['active', 'suspended'] as const),
      )
      .option('--search <text>', 'name contains'),
  )
    .addHelpText(
      'after',
      examples('yunhai tenant list', 'yunhai tenant list --status suspended --all -o json'),
    )
    .action(async (f: ListFlags & { status?: string; search?: string }, cmd: Command) => {
      await printList<TenantView>(ctx, cmd, {
        path: '/tenants',
        query: { status: f.status, search: f.search },
        flags: f,
        label: 'tenants',
        columns: TENANT_COLUMNS,
      });
    });

  tenant
    .command('show')
    .description('Show a tenant')
    .argument('<tenant>', 'tenant id, name or account id')
    .action(async (id: string, _f: unknown, cmd: Command) => {
      const { client } = clientFor(ctx, cmd);
      const t = await client.get<TenantView>(`/tenants/${seg(id)}`);
      printerFor(ctx, cmd).result(t, () => tenantFields(t));
    });

  for (const [verb, status, done] of [
    ['suspend', 'suspended', 'Suspended'],
    ['resume', 'active', 'Resumed'],
  ] as const) {
    tenant
      .command(verb)
      .description(
        verb === 'suspend'
          ? "Suspend a tenant: its users can still read and sign in, but can't change anything"
          : 'Resume a suspended tenant',
      )
      .argument('<tenant>', 'tenant id or name')
      .action(async (id: string, _f: unknown, cmd: Command) => {
        const { client } = clientFor(ctx, cmd);
        const t = await client.patch<TenantView>(`/tenants/${seg(id)}`, { status });
        printerFor(ctx, cmd).result(t, () => `${done} tenant ${t.name} (${t.id}).\n`);
      });
  }

  tenant
    .command('rename')
    .description("Change a tenant's display name")
    .argument('<tenant>', 'tenant id or name')
    .argument('<display-name>', 'new display name')
    .action(async (id: string, displayName: string, _f: unknown, cmd: Command) => {
      const { client } = clientFor(ctx, cmd);
      const t = await client.patch<TenantView>(`/tenants/${seg(id)}`, { displayName });
      printerFor(ctx, cmd).result(t, () => `Tenant ${t.name} is now called "${t.displayName}".\n`);
    });

  tenant
    .command('delete')
    .description('Delete an empty tenant (delete its users and resources first)')
    .argument('<tenant>', 'tenant id or name')
    .option('-y, --yes', 'do not ask for confirmation')
    .addHelpText('after', examples('yunhai tenant delete acme --yes'))
    .action(async (id: string, f: { yes?: boolean }, cmd: Command) => {
      const { client } = clientFor(ctx, cmd);
      await confirm(ctx, `delete tenant ${id}`, f.yes);
      await client.delete(`/tenants/${seg(id)}`);
      printerFor(ctx, cmd).result({ deleted: id }, () => `Deleted tenant ${id}.\n`);
    });
}
