import { CommanderError } from 'commander';
import { type CliContext, type CliIo, captureIo } from './context.js';
import { CliError } from './errors.js';
import { buildProgram } from './program.js';

export interface RunResult {
  code: number;
  /** What was written (only when no `io` was passed; with one, output goes there). */
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Where output goes; default: captured and returned. */
  io?: CliIo;
  cwd?: string;
  fetch?: typeof fetch;
}

/**
 * Runs one `yunhai` invocation in-process: `argv` without the node/script prefix. Never throws and never
 * exits the process; returns the exit status (0 ok, 1 API error, 2 usage, 3 cannot connect, 4 audit broken).
 */
export async function runCli(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
  opts: RunOptions = {},
): Promise<RunResult> {
  const captured = opts.io ? undefined : captureIo();
  const io = opts.io ?? captured!;
  const ctx: CliContext = { env, io, cwd: opts.cwd ?? process.cwd(), fetch: opts.fetch ?? globalThis.fetch };
  let code: number;
  try {
    await buildProgram(ctx).parseAsync(argv, { from: 'user' });
    code = ctx.exitCode ?? 0;
  } catch (e) {
    code = report(e, io, env);
  }
  return { code, stdout: captured?.stdout() ?? '', stderr: captured?.stderr() ?? '' };
}

function report(e: unknown, io: CliIo, env: NodeJS.ProcessEnv): number {
  // Commander has already printed its message (or the help); 0 for --help/--version, else a usage error.
  if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
  if (e instanceof CliError) {
    io.err(`yunhai: ${e.message}\n`);
    return e.exitCode;
  }
  if (e instanceof Error && e.message === 'cancelled') {
    io.err('yunhai: cancelled\n');
    return 130;
  }
  io.err(`yunhai: ${e instanceof Error ? e.message : String(e)}\n`);
  if (env.YUNHAI_DEBUG && e instanceof Error && e.stack) io.err(`${e.stack}\n`);
  return 1;
}
