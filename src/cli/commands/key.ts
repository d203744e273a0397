import type { Command } from 'commander';
import { checkProfileName, loadConfig, saveConfig } from '../config.js';
import type { CliContext } from '../context.js';
import { type Column, renderFields, shortTime } from '../output.js';
import type { AccessKeyView, AccessKeyWithSecret, WhoAmI } from '../types.js';
import { clientFor, confirm, examples, printerFor, resolveUserId, seg } from './common.js';

const KEY_COLUMNS: Column<AccessKeyView>[] = [
  { header: 'ACCESS KEY ID', value: (k) => k.accessKeyId, shrink: false },
  { header: 'USER', value: (k) => k.userName },
  { header: 'STATUS', value: (k) => k.status },
  { header: 'CREATED', value: (k) => shortTime(k.createdAt) },
  { header: 'LAST USED', value: (k) => shortTime(k.lastUsedAt) },
];

const KEY_ARG = 'access key id (AKIA…)';

export function registerKeyCommands(program: Command, ctx: CliContext) {
  const key = program
    .command('key')
    .description('Access keys for SigV4 (AWS SDKs and CLIs, the yunhai CLI); at most two per user')
    .addHelpText(
      'after',
      examples(
        'yunhai key create',
        'yunhai key list --user bob',
        'yunhai key deactivate AKIAXXXXXXXXXXXXXXXX',
      ),
    );

  key
    .command('create')
    .description('Create an access key; the secret is shown this once')
    .option('--user <user>', 'user id, name or "me"', 'me')
    .option('--tenant <tenant>', 'tenant to look a user name up in')
    .option('--save-as <profile>', 'also save the new key as a CLI profile (same endpoint)')
    .addHelpText(
      'after',
      examples(
        'yunhai key create',
        'yunhai key create --user bob --save-as bob',
        'yunhai key create -o json > key.json',
      ),
    )
    .action(async (f: { user: string; tenant?: string; saveAs?: string }, cmd: Command) => {
      if (f.saveAs) checkProfileName(f.saveAs);
      const { client } = clientFor(ctx, cmd);
      const printer = printerFor(ctx, cmd);
      const id = await resolveUserId(client, f.user, f.tenant);
      const k = await client.post<AccessKeyWithSecret>(`/users/${seg(id)}/access-keys`);
      if (f.saveAs) {
        const who = await client
          .withCredentials({
            kind: 'sigv4',
            accessKeyId: k.accessKeyId,
            secretAccessKey: k.secretAccessKey,
            source: 'profile',
          })
          .get<WhoAmI>('/auth/whoami')
          .catch(() => undefined);
        const config = loadConfig(ctx.env);
        config.profiles[f.saveAs] = {
          endpoint: client.endpoint,
          accessKeyId: k.accessKeyId,
          secretAccessKey: k.secretAccessKey,
          ...(who ? { username: `${who.user.name}@${who.tenant.name}` } : {}),
        };
        saveConfig(ctx.env, config);
      }
      printer.result(
        k,
        () =>
          `Access key created for ${k.userName}:\n` +
          renderFields([
            ['access key id', k.accessKeyId],
            ['secret access key', k.secretAccessKey],
          ]).replace(/^/gm, '  '),
      );
      printer.note(
        `Warning: the secret access key is shown only this once and cannot be retrieved later; store it safely now.` +
          (f.saveAs ? `\nSaved as profile '${f.saveAs}' (use it with --profile ${f.saveAs}).` : ''),
      );
    });

  key
    .command('list')
    .description("List a user's access keys (never the secrets)")
    .option('--user <user>', 'user id, name or "me"', 'me')
    .option('--tenant <tenant>', 'tenant to look a user name up in')
    .action(async (f: { user: string; tenant?: string }, cmd: Command) => {
      const { client } = clientFor(ctx, cmd);
      const id = await resolveUserId(client, f.user, f.tenant);
      const page = await client.get<{ items: AccessKeyView[]; nextCursor: string | null }>(
        `/users/${seg(id)}/access-keys`,
      );
      printerFor(ctx, cmd).table(page, page.items, KEY_COLUMNS, 'No access keys.');
    });

  for (const [verb, status, done] of [
    ['deactivate', 'Inactive', 'Deactivated'],
    ['activate', 'Active', 'Activated'],
  ] as const) {
    key
      .command(verb)
      .description(
        verb === 'deactivate'
          ? 'Stop a key from working, without deleting it (reversible with activate)'
          : 'Let a deactivated key work again',
      )
      .argument('<key>', KEY_ARG)
      .action(async (keyId: string, _f: unknown, cmd: Command) => {
        const { client } = clientFor(ctx, cmd);
        const k = await client.patch<AccessKeyView>(`/access-keys/${seg(keyId)}`, { status });
        printerFor(ctx, cmd).result(k, () => `${done} access key ${k.accessKeyId} of ${k.userName}.\n`);
      });
  }

  key
    .command('delete')
    .description('Delete an access key for good (consider deactivate first)')
    .argument('<key>', KEY_ARG)
    .option('-y, --yes', 'do not ask for confirmation')
    .action(async (keyId: string, f: { yes?: boolean }, cmd: Command) => {
      const { client } = clientFor(ctx, cmd);
      await confirm(ctx, `delete access key ${keyId}`, f.yes);
      await client.delete(`/access-keys/${seg(keyId)}`);
      printerFor(ctx, cmd).result({ deleted: keyId }, () => `Deleted access key ${keyId}.\n`);
    });
}
