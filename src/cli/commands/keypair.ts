import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { CliError } from '../errors.js';
import { type Column, shortTime } from '../output.js';
import type { KeyPairView } from '../types.js';
import { clientFor, confirm, examples, printerFor, seg } from './common.js';

const KEYPAIR_COLUMNS: Column<KeyPairView>[] = [
  { header: 'NAME', value: (k) => k.name },
  { header: 'FINGERPRINT', value: (k) => k.fingerprint, shrink: false },
  { header: 'CREATED', value: (k) => shortTime(k.createdAt) },
  { header: 'ID', value: (k) => k.id, shrink: false },
];

const MAX_PUBLIC_KEY = 16 * 1024;

/** Reads an OpenSSH public key file (or stdin for `-`), refusing private keys. */
async function readPublicKey(ctx: CliContext, path: string): Promise<string> {
  let text: string;
  if (path === '-') {
    if (!ctx.io.readStdin) throw new CliError('--public-key-file -: there is no standard input to read', 2);
    text = await ctx.io.readStdin();
  } else {
    const file = resolve(ctx.cwd, path);
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      const code = (e as { code?: string }).code;
      throw new CliError(`cannot read public key ${file}: ${code ?? String(e)}`, 2);
    }
  }
  if (/PRIVATE KEY/.test(text))
    throw new CliError(`that is a private key; pass the public one (usually the .pub file next to it)`, 2);
  const key = text.trim();
  if (!key) throw new CliError('the public key file is empty', 2);
  if (key.length > MAX_PUBLIC_KEY) throw new CliError('the public key file is too large', 2);
  return key;
}

export function registerKeyPairCommands(program: Command, ctx: CliContext) {
  const keypair = program
    .command('keypair')
    .description('SSH public keys that instances install for their default user (--key-name)')
    .addHelpText(
      'after',
      examples(
        'yunhai keypair import laptop --public-key-file ~/.ssh/id_ed25519.pub',
        'yunhai instance create web-1 --image ubuntu-24.04 --flavor m1.small --key-name laptop',
      ),
    );

  keypair
    .command('import')
    .description('Import an OpenSSH public key (ssh-ed25519, ssh-rsa, ecdsa-sha2-*)')
    .argument('<name>', 'letters, digits, . _ -, at most 63 characters')
    .requiredOption('--public-key-file <file>', 'the .pub file, or - for standard input')
    .addHelpText('after', examples('yunhai keypair import laptop --public-key-file ~/.ssh/id_ed25519.pub'))
    .action(async (name: string, f: { publicKeyFile: string }, cmd: Command) => {
      const publicKey = await readPublicKey(ctx, f.publicKeyFile);
      const { client } = clientFor(ctx, cmd);
      const k = await client.post<KeyPairView>('/key-pairs', { name, publicKey });
      printerFor(ctx, cmd).result(k, () => `Imported key pair ${k.name} (${k.fingerprint}).\n`);
    });

  keypair
    .command('list')
    .description('List your tenant’s key pairs')
    .action(async (_f: unknown, cmd: Command) => {
      const { client } = clientFor(ctx, cmd);
      const page = await client.get<{ items: KeyPairView[]; nextCursor: string | null }>('/key-pairs');
      printerFor(ctx, cmd).table(page, page.items, KEYPAIR_COLUMNS, 'No key pairs.');
    });

  keypair
    .command('delete')
    .description('Delete a key pair (instances that have it keep the key)')
    .argument('<name>', 'key pair name')
    .option('-y, --yes', 'do not ask for confirmation')
    .addHelpText('after', examples('yunhai keypair delete laptop --yes'))
    .action(async (name: string, f: { yes?: boolean }, cmd: Command) => {
      const { client } = clientFor(ctx, cmd);
      await confirm(ctx, `delete key pair ${name}`, f.yes);
      await client.delete(`/key-pairs/${seg(name)}`);
      printerFor(ctx, cmd).result({ deleted: name }, () => `Deleted key pair ${name}.\n`);
    });
}
