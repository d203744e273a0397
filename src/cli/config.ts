import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { CliError } from './errors.js';

/** One named connection: where the control plane is and how to sign in to it. */
export interface Profile {
  endpoint: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  /** Bearer session token from `yunhai login --username`. */
  sessionToken?: string;
  /** ISO time the session token expires. */
  sessionExpiresAt?: string;
  /** Who the profile signs in as (`name@tenant`), for display. */
  username?: string;
}

export interface ConfigFile {
  currentProfile: string;
  profiles: Record<string, Profile>;
}

export const DEFAULT_PROFILE = 'default';
const PROFILE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** `$YUNHAI_CONFIG_DIR`, else `$XDG_CONFIG_HOME/yunhai`, else `~/.config/yunhai`. */
export function configDir(env: NodeJS.ProcessEnv): string {
  if (env.YUNHAI_CONFIG_DIR) return env.YUNHAI_CONFIG_DIR;
  if (env.XDG_CONFIG_HOME) return join(env.XDG_CONFIG_HOME, 'yunhai');
  return join(env.HOME || homedir(), '.config', 'yunhai');
}

export const configPath = (env: NodeJS.ProcessEnv) => join(configDir(env), 'config.json');

export function checkProfileName(name: string): string {
  if (!PROFILE_NAME.test(name)) {
    throw new CliError(
      `invalid profile name '${name}': use letters, digits, '.', '_' and '-' (at most 64)`,
      2,
    );
  }
  return name;
}

export function loadConfig(env: NodeJS.ProcessEnv): ConfigFile {
  const file = configPath(env);
  if (!existsSync(file)) return { currentProfile: DEFAULT_PROFILE, profiles: {} };
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new CliError(`cannot read ${file}: ${e instanceof Error ? e.message : String(e)}`, 2);
  }
  const c = raw as Partial<ConfigFile> | null;
  if (
    !c ||
    typeof c !== 'object' ||
    (c.profiles !== undefined && (typeof c.profiles !== 'object' || c.profiles === null))
  ) {
    throw new CliError(`${file} is not a Yunhai CLI config (expected { currentProfile, profiles })`, 2);
  }
  return {
    currentProfile:
      typeof c.currentProfile === 'string' && c.currentProfile ? c.currentProfile : DEFAULT_PROFILE,
    profiles: { ...(c.profiles ?? {}) },
  };
}

/** Writes atomically (temp file + rename); the directory is 0700 and the file 0600 since it holds secrets. */
export function saveConfig(env: NodeJS.ProcessEnv, config: ConfigFile): void {
  const dir = configDir(env);
  // A directory we create is 0700; an existing one the user chose is left as it is.
  if (mkdirSync(dir, { recursive: true, mode: 0o700 }) !== undefined) chmodSync(dir, 0o700);
  const file = join(dir, 'config.json');
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(config, null, 2) + '\n', { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
}

/** The profile a command uses: --profile, then $YUNHAI_PROFILE, then the config's current profile. */
export function profileName(flag: string | undefined, env: NodeJS.ProcessEnv, config: ConfigFile): string {
  return checkProfileName(flag || env.YUNHAI_PROFILE || config.currentProfile || DEFAULT_PROFILE);
}

export type Credentials =
  | { kind: 'sigv4'; accessKeyId: string; secretAccessKey: string; source: 'env' | 'profile' }
  | { kind: 'bearer'; token: string; expiresAt?: string }
  | { kind: 'none' };

export interface Target {
  profile: string;
  endpoint: string;
  credentials: Credentials;
}

/**
 * Where and as whom a command talks to the API. Endpoint: --endpoint, $YUNHAI_ENDPOINT, the profile's.
 * Credentials: $YUNHAI_ACCESS_KEY_ID + $YUNHAI_SECRET_ACCESS_KEY, else the profile's keys, else its session.
 */
export function resolveTarget(
  flags: { profile?: string; endpoint?: string },
  env: NodeJS.ProcessEnv,
  opts: { requireCredentials?: boolean } = {},
): Target {
  const config = loadConfig(env);
  const name = profileName(flags.profile, env, config);
  const p = config.profiles[name];
  const endpoint = flags.endpoint || env.YUNHAI_ENDPOINT || p?.endpoint;
  if (!endpoint) {
    throw new CliError(
      `no endpoint for profile '${name}': run \`yunhai login\` first (or pass --endpoint / set YUNHAI_ENDPOINT)`,
      2,
    );
  }
  let credentials: Credentials = { kind: 'none' };
  if (env.YUNHAI_ACCESS_KEY_ID && env.YUNHAI_SECRET_ACCESS_KEY) {
    credentials = {
      kind: 'sigv4',
      accessKeyId: env.YUNHAI_ACCESS_KEY_ID,
      secretAccessKey: env.YUNHAI_SECRET_ACCESS_KEY,
      source: 'env',
    };
  } else if (p?.accessKeyId && p.secretAccessKey) {
    credentials = {
      kind: 'sigv4',
      accessKeyId: p.accessKeyId,
      secretAccessKey: p.secretAccessKey,
      source: 'profile',
    };
  } else if (p?.sessionToken) {
    if (p.sessionExpiresAt && Date.parse(p.sessionExpiresAt) <= Date.now()) {
      throw new CliError(
        `the session of profile '${name}' expired at ${p.sessionExpiresAt}; run \`yunhai login\` again`,
        1,
      );
    }
    credentials = { kind: 'bearer', token: p.sessionToken, expiresAt: p.sessionExpiresAt };
  }
  if (opts.requireCredentials !== false && credentials.kind === 'none') {
    throw new CliError(
      `not logged in (profile '${name}'): run \`yunhai login\`, or set YUNHAI_ACCESS_KEY_ID and YUNHAI_SECRET_ACCESS_KEY`,
      2,
    );
  }
  return { profile: name, endpoint, credentials };
}
