import type { Command } from 'commander';
import { checkProfileName, loadConfig, type Profile, profileName, saveConfig } from '../config.js';
import type { CliContext } from '../context.js';
import { CliError } from '../errors.js';
import { examples, globals, printerFor } from './common.js';

const authOf = (p: Profile) => (p.accessKeyId ? 'access key' : p.sessionToken ? 'session' : 'none');

/** A profile without its secrets. */
const publicView = (p: Profile) => ({
  endpoint: p.endpoint,
  username: p.username ?? null,
  auth: authOf(p),
  accessKeyId: p.accessKeyId ?? null,
  sessionExpiresAt: p.sessionExpiresAt ?? null,
});

export function registerProfileCommands(program: Command, ctx: CliContext) {
  const profile = program
    .command('profile')
    .description('Saved connections (endpoint + credentials) in the config file')
    .addHelpText('after', examples('yunhai profile list', 'yunhai profile use staging'));

  profile
    .command('list')
    .description('List profiles; * marks the one in use')
    .action((_f: unknown, cmd: Command) => {
      const config = loadConfig(ctx.env);
      const current = profileName(globals(cmd).profile, ctx.env, config);
      const rows = Object.entries(config.profiles).map(([name, p]) => ({
        name,
        current: name === current,
        ...publicView(p),
      }));
      printerFor(ctx, cmd).table(
        {
          currentProfile: current,
          profiles: Object.fromEntries(Object.entries(config.profiles).map(([n, p]) => [n, publicView(p)])),
        },
        rows,
        [
          { header: '', value: (r) => (r.current ? '*' : ' '), shrink: false },
          { header: 'NAME', value: (r) => r.name },
          { header: 'ENDPOINT', value: (r) => r.endpoint },
          { header: 'USER', value: (r) => r.username },
          {
            header: 'AUTH',
            value: (r) =>
              r.auth === 'access key'
                ? `key ${r.accessKeyId}`
                : r.auth === 'session'
                  ? `session until ${r.sessionExpiresAt ?? '?'}`
                  : 'logged out',
          },
        ],
        'No profiles yet: run `yunhai login`.',
      );
    });

  profile
    .command('use')
    .description('Make a profile the current one')
    .argument('<name>', 'profile name')
    .action((name: string, _f: unknown, cmd: Command) => {
      const config = loadConfig(ctx.env);
      checkProfileName(name);
      if (!config.profiles[name]) {
        const known = Object.keys(config.profiles);
        throw new CliError(
          `no profile '${name}'${known.length ? ` (known: ${known.join(', ')})` : '; run `yunhai login --profile NAME`'}`,
          2,
        );
      }
      config.currentProfile = name;
      saveConfig(ctx.env, config);
      printerFor(ctx, cmd).result({ currentProfile: name }, () => `Now using profile '${name}'.\n`);
    });

  profile
    .command('delete')
    .description('Remove a profile and its stored credentials (does not revoke them on the server)')
    .argument('<name>', 'profile name')
    .action((name: string, _f: unknown, cmd: Command) => {
      const config = loadConfig(ctx.env);
      if (!config.profiles[name]) throw new CliError(`no profile '${name}'`, 2);
      delete config.profiles[name];
      saveConfig(ctx.env, config);
      printerFor(ctx, cmd).result({ deleted: name }, () => `Deleted profile '${name}'.\n`);
    });
}
