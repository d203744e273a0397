import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { YunhaiError } from '../errors.js';

export const MASTER_KEY_ENV = 'YUNHAI_MASTER_KEY';
export const MASTER_KEY_FILE = 'master.key';

/**
 * The platform master key (32 bytes) that wraps every secret at rest. Taken from
 * `YUNHAI_MASTER_KEY` (base64 or 64 hex characters) when set, else from `<data-dir>/master.key`,
 * created with mode 0600 on first start. Losing it makes sealed secrets unreadable.
 */
export function loadMasterKey(dataDir: string, env: NodeJS.ProcessEnv = process.env): Buffer {
  const fromEnv = env[MASTER_KEY_ENV];
  if (fromEnv) return parseKey(fromEnv, MASTER_KEY_ENV);
  const file = join(dataDir, MASTER_KEY_FILE);
  if (existsSync(file)) return parseKey(readFileSync(file, 'utf8').trim(), file);
  const key = randomBytes(32);
  writeFileSync(file, key.toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
  return key;
}

function parseKey(text: string, source: string): Buffer {
  const key = /^[0-9a-fA-F]{64}$/.test(text) ? Buffer.from(text, 'hex') : Buffer.from(text, 'base64');
  if (key.length !== 32)
    throw new YunhaiError('ValidationError', `${source}: the master key must be 32 bytes (base64 or hex).`);
  return key;
}
