import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { ApiClient } from '../client.js';
import {
  type Credentials,
  configPath,
  loadConfig,
  type Profile,
  profileName,
  saveConfig,
} from '../config.js';
import type { CliContext } from '../context.js';
import { CliError } from '../errors.js';
import { renderFields } from '../output.js';
import type { SessionView, WhoAmI } from '../types.js';
import { clientFor, examples, globals, printerFor, secretArg } from './common.js';

/** Where `yunhai up` listens by default. */
export const DEFAULT_ENDPOINT = 'http://127.0.0.1:9600';

interface LoginFlags {
  dataDir?: string;
  accessKey?: string;
  secretKey?: string;
  username?: string;
  password?: string;
  tenant?: string;
}

function readJson(file: string, what: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ENOENT') return undefined;
    throw new CliError(
      `cannot read ${what} ${file}: ${code ?? (e instanceof Error ? e.message : String(e))}`,
      2,
    );
  }
}

/** endpoints.json (api URL) and credentials.json (root keys) written by `yunhai up` / `yunhai server`. */
function readDataDir(dir: string): { api?: string; keys?: { accessKeyId: string; secretAccessKey: string } } {
  if (!existsSync(dir)) throw new CliError(`data dir ${dir} does not exist`, 2);
  const endpoints = readJson(join(dir, 'endpoints.json'), 'endpoints file') as { api?: unknown } | undefined;
  const creds = readJson(join(dir, 'credentials.json'), 'credentials file') as
    | { accessKeyId?: unknown; secretAccessKey?: unknown }
    | undefined;
  return {
    api: typeof endpoints?.api === 'string' ? endpoints.api : undefined,
    keys:
      typeof creds?.accessKeyId === 'string' && typeof creds.secretAccessKey === 'string'
        ? { accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey }
        : undefined,
  };
}

const describeAuth = (c: Credentials) =>
  c.kind === 'sigv4'
    ? `access key ${c.accessKeyId}${c.source === 'env' ? ' (from YUNHAI_ACCESS_KEY_ID)' : ''}`
    : c.kind === 'bearer'
      ? `session${c.expiresAt ? ` until ${c.expiresAt}` : ''}`
      : 'none';

function whoamiFields(w: WhoAmI, extra: [string, unknown][] = []): string {
  return renderFields([
    ['user', `${w.user.name} (${w.user.id})`],
    ['role', w.user.role],
    ['tenant', `${w.tenant.name} (${w.tenant.id})${w.tenant.status === 'suspended' ? ' SUSPENDED' : ''}`],
    ['account', w.user.accountId],
    ['arn', w.user.arn],
    ['via', w.via],
    ...extra,
  ]);
}

async function login(ctx: CliContext, cmd: Command, f: LoginFlags): Promise<void> {
  const g = globals(cmd);
  const printer = printerFor(ctx, cmd);
  const config = loadConfig(ctx.env);
  const name = profileName(g.profile, ctx.env, config);
  const existing = config.profiles[name];

  const hasKeys = f.accessKey !== undefined || f.secretKey !== undefined;
  const hasUser = f.username !== undefined || f.password !== undefined;
  let dataDir = f.dataDir !== undefined ? resolve(ctx.cwd, f.dataDir) : undefined;
  if (dataDir === undefined && !hasKeys && !hasUser && !g.endpoint) {
    const local = resolve(ctx.cwd, 'yunhai-data');
    if (existsSync(join(local, 'endpoints.json'))) dataDir = local;
  }
  const fromDir = dataDir !== undefined ? readDataDir(dataDir) : undefined;
  if (dataDir !== undefined && !fromDir?.api && !g.endpoint) {
    throw new CliError(
      `no endpoints.json in ${dataDir}: is the control plane running? (\`yunhai up --data-dir ${dataDir}\`)`,
      2,
    );
  }
  const endpoint =
    g.endpoint ||
    fromDir?.api ||
    ctx.env.YUNHAI_ENDPOINT ||
    existing?.endpoint ||
    config.profiles[config.currentProfile]?.endpoint ||
    DEFAULT_ENDPOINT;
  const anonymous = new ApiClient({ endpoint, credentials: { kind: 'none' }, fetch: ctx.fetch });

  let credentials: Credentials;
  let session: SessionView | undefined;
  if (hasKeys) {
    if (!f.accessKey || !f.secretKey) throw new CliError('--access-key and --secret-key go together', 2);
    credentials = {
      kind: 'sigv4',
      accessKeyId: f.accessKey,
      secretAccessKey: f.secretKey,
      source: 'profile',
    };
  } else if (hasUser || (!fromDir && ctx.io.interactive)) {
    let username = f.username;
    if (!username) {
      if (!ctx.io.interactive || !ctx.io.prompt)
        throw new CliError('--username is required with --password', 2);
      username = (await ctx.io.prompt('Username (name or name@tenant): ')).trim();
      if (!username) throw new CliError('a username is required', 2);
    }
    const password = await secretArg(ctx, f.password ?? ctx.env.YUNHAI_PASSWORD, {
      flag: '--password',
      prompt: 'Password',
    });
    session = await anonymous.post<SessionView>('/auth/login', {
      username,
      password,
      ...(f.tenant ? { tenant: f.tenant } : {}),
    });
    credentials = { kind: 'bearer', token: session.token, expiresAt: session.expiresAt };
  } else if (fromDir) {
    if (!fromDir.keys) {
      throw new CliError(
        `no root credentials.json in ${dataDir} (it is written on the first start only); log in with --username/--password or --access-key/--secret-key`,
        2,
      );
    }
    credentials = { kind: 'sigv4', ...fromDir.keys, source: 'profile' };
  } else {
    throw new CliError(
      'nothing to log in with: pass --data-dir DIR, --access-key/--secret-key, or --username/--password (see yunhai login --help)',
      2,
    );
  }

  const client = anonymous.withCredentials(credentials);
  const who = await client.get<WhoAmI>('/auth/whoami');

  const profile: Profile = { endpoint: client.endpoint, username: `${who.user.name}@${who.tenant.name}` };
  if (credentials.kind === 'sigv4') {
    profile.accessKeyId = credentials.accessKeyId;
    profile.secretAccessKey = credentials.secretAccessKey;
  } else if (credentials.kind === 'bearer') {
    profile.sessionToken = credentials.token;
    if (credentials.expiresAt) profile.sessionExpiresAt = credentials.expiresAt;
  }
  config.profiles[name] = profile;
  config.currentProfile = name;
  saveConfig(ctx.env, config);

  printer.result({ profile: name, endpoint: client.endpoint, ...who }, () => {
    const expires = session ? ` (session until ${session.expiresAt})` : '';
    return (
      `Logged in to ${client.endpoint} as ${who.user.name}@${who.tenant.name} (${who.user.role})${expires}.\n` +
      `Saved as profile '${name}' in ${configPath(ctx.env)}.\n`
    );
  });
}

export function registerAuthCommands(program: Command, ctx: CliContext) {
  program
    .command('login')
    .description('Sign in to a control plane and save the connection as a profile')
    .option('--data-dir <dir>', 'take the API endpoint and root access key from the data dir of `yunhai up`')
    .option('--access-key <id>', 'access key id to sign requests with')
    .option('--secret-key <secret>', 'its secret access key')
    .option('--username <name>', 'sign in with a password instead: user name, or name@tenant')
    .option('--password <password>', 'the password (default: $YUNHAI_PASSWORD, else asked for on a terminal)')
    .option('--tenant <tenant>', "the user's tenant (default: the part after @, else the system tenant)")
    .addHelpText(
      'after',
      `
With no options, a ./yunhai-data directory (from \`yunhai up\`) is used when present. The endpoint comes
from --endpoint, the data dir, $YUNHAI_ENDPOINT, the profile, the current profile, or ${DEFAULT_ENDPOINT}. The profile is
--profile, $YUNHAI_PROFILE or the current one; it becomes the current profile. Credentials are checked
with whoami before they are saved (config file mode 0600).
${examples(
  'yunhai login --data-dir ./yunhai-data',
  'yunhai login --endpoint http://10.0.0.5:9600 --username alice@acme',
  'yunhai login --profile ci --endpoint http://10.0.0.5:9600 --access-key AKIA... --secret-key ...',
)}`,
    )
    .action((f: LoginFlags, cmd: Command) => login(ctx, cmd, f));

  program
    .command('logout')
    .description("End the profile's session and forget its credentials")
    .option('--remove', 'remove the whole profile, endpoint included')
    .addHelpText('after', examples('yunhai logout', 'yunhai logout --profile ci --remove'))
    .action(async (f: { remove?: boolean }, cmd: Command) => {
      const g = globals(cmd);
      const printer = printerFor(ctx, cmd);
      const config = loadConfig(ctx.env);
      const name = profileName(g.profile, ctx.env, config);
      const p = config.profiles[name];
      if (!p) throw new CliError(`no profile '${name}'`, 2);
      let serverNote = '';
      if (p.sessionToken) {
        const client = new ApiClient({
          endpoint: g.endpoint || p.endpoint,
          credentials: { kind: 'bearer', token: p.sessionToken },
          fetch: ctx.fetch,
        });
        try {
          await client.post('/auth/logout');
          serverNote = 'session ended';
        } catch (e) {
          serverNote = `could not end the session on the server (${e instanceof Error ? e.message : String(e)})`;
        }
      } else if (p.accessKeyId) {
        serverNote = `access key ${p.accessKeyId} is still valid; \`yunhai key delete ${p.accessKeyId}\` revokes it`;
      }
      if (f.remove) {
        delete config.profiles[name];
      } else {
        config.profiles[name] = { endpoint: p.endpoint };
      }
      saveConfig(ctx.env, config);
      printer.result(
        { profile: name, removed: Boolean(f.remove), note: serverNote || null },
        () =>
          `Logged out of profile '${name}'${f.remove ? ' (removed)' : ''}${serverNote ? `; ${serverNote}` : ''}.\n`,
      );
    });

  program
    .command('whoami')
    .description('Show who the current credentials belong to')
    .addHelpText('after', examples('yunhai whoami', 'yunhai whoami -o json', 'yunhai --profile ci whoami'))
    .action(async (_f: unknown, cmd: Command) => {
      const { client, target } = clientFor(ctx, cmd);
      const who = await client.get<WhoAmI>('/auth/whoami');
      printerFor(ctx, cmd).result(who, () =>
        whoamiFields(who, [
          ['endpoint', client.endpoint],
          ['profile', target.profile],
          ['auth', describeAuth(target.credentials)],
        ]),
      );
    });

  const password = program.command('password').description('Your own password');
  password
    .command('change')
    .description('Change your own password (asks for both on a terminal)')
    .option('--current <password>', 'the current password')
    .option('--new <password>', 'the new password (at least 8 characters)')
    .addHelpText('after', examples('yunhai password change'))
    .action(async (f: { current?: string; new?: string }, cmd: Command) => {
      const { client } = clientFor(ctx, cmd);
      const currentPassword = await secretArg(ctx, f.current, {
        flag: '--current',
        prompt: 'Current password',
      });
      const newPassword = await secretArg(ctx, f.new, { flag: '--new', prompt: 'New password', twice: true });
      await client.post('/auth/password', { currentPassword, newPassword });
      printerFor(ctx, cmd).result({ ok: true }, () => 'Password changed.\n');
    });
}
