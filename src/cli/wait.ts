import { InvalidArgumentError } from 'commander';
import type { CliIo } from './context.js';
import { CliError } from './errors.js';
import { statusProgress } from './progress.js';

/** Default for `--timeout` (seconds) of commands that wait. */
export const DEFAULT_WAIT_SECONDS = 300;

/** Polls start quick (state changes of a small VM take well under a second) and back off to 2 s. */
const FIRST_POLL_MS = 200;
const MAX_POLL_MS = 2000;
/** Network failures in a row before a wait gives up (a control plane restarting is not fatal). */
const MAX_NETWORK_FAILURES = 5;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Why a wait cannot reach its goal: a one-line message, and optional detail lines printed before it. */
export type WaitFailure = string | { message: string; details?: string };

export interface WaitSpec<T> {
  /** Shown before the status: `web-1 (i-0a1b2c3d4e5f)`. */
  label: string;
  /** What is awaited, for the timeout message: `instance web-1 to be running`. */
  goal: string;
  /** Command that shows the current state, suggested when the wait times out. */
  checkWith: string;
  timeoutSeconds: number;
  /** The resource now; `null` when it is gone (404). */
  fetch(): Promise<T | null>;
  /** Status word for the progress line. */
  status(v: T | null): string;
  /** True when the goal is reached. */
  done(v: T | null): boolean;
  /** Set when the resource ended somewhere the goal cannot be reached from (error state). */
  failed?(v: T | null): WaitFailure | undefined;
  /** A value already in hand (the create/action response): shown at once, and checked first. */
  initial?: T | null;
  /** Without `initial`: the status to show until the first poll answers (e.g. `deleting`). */
  startStatus?: string;
}

/**
 * Polls until `done`, showing progress on stderr (a spinner on a terminal, one line per state
 * change elsewhere). Throws a one-line CliError (exit 1) on failure or timeout; a failure's detail
 * lines (e.g. a console tail) go to stderr first.
 */
export async function waitFor<T>(io: CliIo, spec: WaitSpec<T>): Promise<T | null> {
  const progress = statusProgress(io, spec.label);
  const deadline = Date.now() + spec.timeoutSeconds * 1000;
  let delay = FIRST_POLL_MS;
  let networkFailures = 0;
  let current: T | null | undefined = spec.initial;
  let failure: WaitFailure | undefined;
  if (current === undefined && spec.startStatus) progress.update(spec.startStatus);
  try {
    for (;;) {
      if (current !== undefined) {
        progress.update(spec.status(current));
        if (spec.done(current)) return current;
        failure = spec.failed?.(current);
        if (failure) break;
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        const now = current === undefined ? 'unknown' : spec.status(current);
        throw new CliError(
          `timed out after ${spec.timeoutSeconds} s waiting for ${spec.goal} (it is ${now}); it carries on in the background: check with \`${spec.checkWith}\``,
          1,
        );
      }
      await sleep(Math.min(delay, left));
      delay = Math.min(MAX_POLL_MS, Math.round(delay * 1.4));
      try {
        current = await spec.fetch();
        networkFailures = 0;
      } catch (e) {
        // Cannot connect (exit 3): retry a few times before giving up; anything else is final.
        if (!(e instanceof CliError) || e.exitCode !== 3 || ++networkFailures >= MAX_NETWORK_FAILURES)
          throw e;
      }
    }
  } finally {
    progress.stop();
  }
  const f: { message: string; details?: string } =
    typeof failure === 'string' ? { message: failure } : failure!;
  if (f.details) io.err(f.details.endsWith('\n') ? f.details : `${f.details}\n`);
  throw new CliError(f.message, 1);
}

/** Commander parser for `--timeout SECONDS`. */
export function timeoutSeconds(v: string): number {
  const n = Number(v);
  if (!/^\d+(\.\d+)?$/.test(v.trim()) || !(n > 0)) {
    throw new InvalidArgumentError('--timeout must be a positive number of seconds.');
  }
  return n;
}
