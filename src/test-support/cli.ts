import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { runCli } from '../cli/run.js';
import type { TestControlPlane } from './control-plane.js';

/**
 * The CLI as a user runs it against a test control plane: its own HOME and config directory in a
 * temporary folder (also the working directory), signed in with the root access key.
 */
export function cliAgainst(cp: TestControlPlane, prefix: string) {
  const tmp = mkdtempSync(join(tmpdir(), prefix));
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: tmp,
    YUNHAI_CONFIG_DIR: join(tmp, 'config'),
    YUNHAI_ENDPOINT: cp.endpoints.api,
    YUNHAI_ACCESS_KEY_ID: cp.root.accessKeyId,
    YUNHAI_SECRET_ACCESS_KEY: cp.root.secretAccessKey,
  };
  const yh = (...argv: string[]) => runCli(argv, env, { cwd: tmp });
  return {
    tmp,
    env,
    yh,
    /** Runs with `-o json`, expects success and nothing on stderr, and parses the answer. */
    async json<T>(...argv: string[]): Promise<T> {
      const r = await yh(...argv, '-o', 'json');
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      return JSON.parse(r.stdout) as T;
    },
    cleanup: () => rmSync(tmp, { recursive: true, force: true }),
  };
}
