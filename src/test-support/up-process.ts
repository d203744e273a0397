import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

/**
 * `yunhai up` as a child process of a test, from the built CLI: what an operator runs, and the only
 * way to test what a SIGKILL of the whole control plane (and its in-process agent) leaves behind.
 */

const root = join(import.meta.dirname, '..', '..');
export const CLI = join(root, 'bin', 'yunhai.js');

/** Rebuilds dist/ when any source file is newer than the compiled CLI (CI builds it in `npm ci`). */
export function ensureBuilt(): void {
  const built = join(root, 'dist', 'cli', 'main.js');
  const newest = (dir: string): number =>
    Math.max(
      0,
      ...readdirSync(dir, { withFileTypes: true }).map((e) =>
        e.isDirectory() ? newest(join(dir, e.name)) : statSync(join(dir, e.name)).mtimeMs,
      ),
    );
  if (!existsSync(built) || newest(join(root, 'src')) > statSync(built).mtimeMs) {
    execFileSync(
      process.execPath,
      [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'],
      { cwd: root },
    );
  }
}

export interface UpProcess {
  child: ChildProcess;
  /** stdout and stderr so far. */
  output: () => string;
  exited: Promise<number | null>;
}

export function startUp(dataDir: string, env: Record<string, string> = {}, args: string[] = []): UpProcess {
  let out = '';
  const child = spawn(process.execPath, [CLI, 'up', '--data-dir', dataDir, '--port', '0', ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d) => {
    out += d;
  });
  child.stderr!.on('data', (d) => {
    out += d;
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, output: () => out, exited };
}

export async function waitFor(pred: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

export const endpointsOf = (dataDir: string) =>
  JSON.parse(readFileSync(join(dataDir, 'endpoints.json'), 'utf8')) as Record<string, string>;

export async function login(api: string, password: string) {
  const r = await fetch(`${api}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'admin', password }),
  });
  return { status: r.status, body: (await r.json()) as { token: string } };
}

/**
 * Ends the QEMU processes a test's `yunhai up` or agent left in `dataDir` (VMs outlive their agent
 * by design, so a test that stops the platform must end its VMs itself).
 */
export function killLeftoverVms(dataDir: string): void {
  // By command line rather than pid files: a VM's files may already be half cleaned up.
  const marker = `${join(dataDir, 'instances')}/`;
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    let cmd: string;
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    if (!cmd.startsWith('qemu-system') || !cmd.includes(marker)) continue;
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      // already gone
    }
  }
}
