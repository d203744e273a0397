import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { type Column, renderFields, shortTime } from '../output.js';
import type { UserView } from '../types.js';
import {
  choice,
  clientFor,
  confirm,
  examples,
  type ListFlags,
  printerFor,
  printList,
  resolveUserId,
  secretArg,
  seg,
  withListOptions,
} from './common.js';

export const ROLES = ['owner', 'member', 'readonly'] as const;
const ANY_ROLES = ['platform-admin', ...ROLES] as const;

const USER_COLUMNS: Column<UserView>[] = [
  { header: 'ID', value: (u) => u.id, shrink: false },
  { header: 'NAME', value: (u) => u.name },
  { header: 'ROLE', value: (u) => u.role },
  { header: 'EMAIL', value: (u) => u.email },
  { header: 'PASSWORD', value: (u) => (u.hasPassword ? 'yes' : 'no') },
  { header: 'CREATED', value: (u) => shortTime(u.createdAt) },
  { header: 'LAST LOGIN', value: (u) => shortTime(u.lastLoginAt) },
];

const userFields = (u: UserView) =>
  renderFields([
    ['id', u.id],
    ['name', u.name],
    ['display name', u.displayName],
    ['role', u.role],
    ['tenant', u.tenantId],
    ['account', u.accountId],
    ['arn', u.arn],
    ['unique id', u.uniqueId],
    ['email', u.email],
    ['password', u.hasPassword ? 'set' : 'not set (access keys only)'],
    ['created', u.createdAt],
    ['last login', u.lastLoginAt],
  ]);

const USER_REF = 'user id (usr-…), user name (looked up in --tenant), or "me"';

export function registerUserCommands(program: Command, ctx: CliContext) {
  const user = program
    .command('user')
    .description('Users of a tenant: roles, passwords and deletion')
    .addHelpText(
      'after',
      `
Roles: owner (manages the tenant's users and keys), member (uses resources, manages own keys),
readonly (reads). A user named by name is looked up in your tenant, or in --tenant.
${examples('yunhai user create bob --role member --password "initial-pass-1"', 'yunhai user list --tenant acme', 'yunhai user show me')}`,
    );

  user
    .command('create')
    .description('Create a user')
    .argument('<name>', 'letters, digits and + = , . @ _ -, at most 64 characters')
    .option('--tenant <tenant>', 'tenant id or name (default: your own; others need a platform admin)')
    .option('--role <role>', 'owner, member or readonly', choice('--role', ROLES), 'member')
    .option('--password [password]', 'portal/CLI password (without a value: ask on a terminal); default none')
    .option('--email <email>', 'email address')
    .option('--display-name <text>', 'human-friendly name')
    .addHelpText(
      'after',
      examples(
        'yunhai user create bob',
        'yunhai user create carol --tenant acme --role owner --password --email carol@acme.example',
      ),
    )
    .action(
      async (
        name: string,
        f: { tenant?: string; role: string; password?: string | true; email?: string; displayName?: string },
        cmd: Command,
      ) => {
        const { client } = clientFor(ctx, cmd);
        const password =
          f.password === undefined
            ? undefined
            : await secretArg(ctx, f.password === true ? undefined : f.password, {
                flag: '--password',
                prompt: `Password for ${name}`,
                twice: true,
              });
        const u = await client.post<UserView>('/users', {
          name,
          role: f.role,
          ...(f.tenant ? { tenantId: f.tenant } : {}),
          ...(password ? { password } : {}),
          ...(f.email ? { email: f.email } : {}),
          ...(f.displayName ? { displayName: f.displayName } : {}),
        });
        printerFor(ctx, cmd).result(u, () => `Created user ${u.name} (${u.id}) with role ${u.role}.\n`);
      },
    );

  withListOptions(
    user
      .command('list')
      .description('List users of a tenant')
      .option('--tenant <tenant>', 'tenant id or name (default: your own)')
      .option('--role <role>', 'only this role', choice('--role', ANY_ROLES))
      .option('--search <text>', 'name contains'),
  )
    .addHelpText('after', examples('yunhai user list', 'yunhai user list --tenant acme --role owner -o json'))
    .action(async (f: ListFlags & { tenant?: string; role?: string; search?: string }, cmd: Command) => {
      await printList<UserView>(ctx, cmd, {
        path: '/users',
        query: { tenantId: f.tenant, role: f.role, search: f.search },
        flags: f,
        label: 'users',
        columns: USER_COLUMNS,
      });
    });

  user
    .command('show')
    .description('Show a user')
    .argument('<user>', USER_REF)
    .option('--tenant <tenant>', 'tenant to look a user name up in')
    .action(async (ref: string, f: { tenant?: string }, cmd: Command) => {
      const { client } = clientFor(ctx, cmd);
      const id = await resolveUserId(client, ref, f.tenant);
      const u = await client.get<UserView>(`/users/${seg(id)}`);
      printerFor(ctx, cmd).result(u, () => userFields(u));
    });

  user
    .command('set-role')
    .description("Change a user's role")
    .argument('<user>', USER_REF)
    .argument('<role>', 'owner, member or readonly', choice('role', ROLES))
    .option('--tenant <tenant>', 'tenant to look a user name up in')
    .action(async (ref: string, role: string, f: { tenant?: string }, cmd: Command) => {
      const { client } = clientFor(ctx, cmd);
      const id = await resolveUserId(client, ref, f.tenant);
      const u = await client.patch<UserView>(`/users/${seg(id)}`, { role });
      printerFor(ctx, cmd).result(u, () => `User ${u.name} is now ${u.role}.\n`);
    });

  user
    .command('set-password')
    .description(
      "Set another user's password (ends their sessions); for your own use `yunhai password change`",
    )
    .argument('<user>', USER_REF)
    .option('--password <password>', 'the new password (default: ask on a terminal)')
    .option('--tenant <tenant>', 'tenant to look a user name up in')
    .action(async (ref: string, f: { password?: string; tenant?: string }, cmd: Command) => {
      const { client } = clientFor(ctx, cmd);
      const id = await resolveUserId(client, ref, f.tenant);
      const password = await secretArg(ctx, f.password, {
        flag: '--password',
        prompt: `New password for ${ref}`,
        twice: true,
      });
      await client.put(`/users/${seg(id)}/password`, { password });
      printerFor(ctx, cmd).result(
        { ok: true, userId: id },
        () => `Password of ${ref} set; their sessions were ended.\n`,
      );
    });

  user
    .command('delete')
    .description('Delete a user (refused while they have access keys, unless --force)')
    .argument('<user>', USER_REF)
    .option('--force', 'also delete their access keys')
    .option('-y, --yes', 'do not ask for confirmation')
    .option('--tenant <tenant>', 'tenant to look a user name up in')
    .addHelpText(
      'after',
      examples(
        'yunhai user delete usr-0a1b2c3d4e5f --yes',
        'yunhai user delete bob --tenant acme --force --yes',
      ),
    )
    .action(async (ref: string, f: { force?: boolean; yes?: boolean; tenant?: string }, cmd: Command) => {
      const { client } = clientFor(ctx, cmd);
      const id = await resolveUserId(client, ref, f.tenant);
      await confirm(ctx, `delete user ${ref}${f.force ? ' and their access keys' : ''}`, f.yes);
      await client.delete(`/users/${seg(id)}`, f.force ? { force: 'true' } : undefined);
      printerFor(ctx, cmd).result(
        { deleted: id },
        () => `Deleted user ${ref}${ref === id ? '' : ` (${id})`}.\n`,
      );
    });
}
