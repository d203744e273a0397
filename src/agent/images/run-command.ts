/** Small helpers for running the host tools the image builders use (apt, dpkg, kmod, xz). */
import { execFile, spawn } from 'node:child_process';
import { constants, createWriteStream } from 'node:fs';
import { access } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';

export class CommandError extends Error {
  readonly command: string;
  readonly exitCode: number | null;
  readonly stderr: string;
  constructor(command: string, exitCode: number | null, stderr: string) {
    super(`${command} failed (exit ${exitCode}): ${stderr.trim().split('\n').slice(-5).join(' | ')}`);
    this.name = 'CommandError';
    this.command = command;
    this.exitCode = exitCode;
    this.stderr = stderr;
  }
}

/** Runs a command to completion and returns its stdout; throws CommandError on a non-zero exit. */
export function runCommand(
  cmd: string,
  args: readonly string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      cmd,
      args,
      {
        cwd: opts.cwd,
        env: opts.env,
        timeout: opts.timeoutMs ?? 10 * 60_000,
        maxBuffer: 64 * 1024 * 1024,
        encoding: 'utf8',
      },
      (err, stdout, stderr) => {
        if (err) {
          const code = typeof err.code === 'number' ? err.code : null;
          reject(new CommandError([cmd, ...args].join(' '), code, stderr || err.message));
        } else {
          resolve(stdout);
        }
      },
    );
  });
}

/** Whether `cmd` is an executable on `searchPath` (default: PATH), or is an executable path. */
export async function commandExists(cmd: string, searchPath = process.env.PATH): Promise<boolean> {
  const candidates = cmd.includes('/')
    ? [cmd]
    : (searchPath ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin')
        .split(':')
        .filter(Boolean)
        .map((d) => path.join(d, cmd));
  for (const c of candidates) {
    try {
      await access(c, constants.X_OK);
      return true;
    } catch {}
  }
  return false;
}

/** Feeds `input` to `cmd` on stdin and writes its stdout to `outPath`. */
export async function pipeCommand(
  cmd: string,
  args: readonly string[],
  input: Uint8Array,
  outPath: string,
): Promise<void> {
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  child.stdin.on('error', () => {}); // EPIPE if the tool exits early; its exit status says why
  child.stdin.end(input);
  await pipeline(child.stdout, createWriteStream(outPath));
  const code = await exited;
  if (code !== 0) throw new CommandError([cmd, ...args].join(' '), code, stderr);
}
