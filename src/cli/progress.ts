/**
 * Progress display for long-running commands, on stderr (never mixed into stdout's results):
 *
 * - `statusProgress`: a spinner, a status word and the elapsed seconds, redrawn in place on a
 *   terminal; elsewhere (pipes, CI logs) one line per status change.
 * - `barProgress`: a bar for work with a known fraction or byte count (builds, uploads, downloads).
 * - `renderBar` / `fractionBar`: the bars as plain strings, for anyone drawing their own lines.
 */
import type { CliIo } from './context.js';
import { formatBytes, truncate } from './output.js';

export const SPINNER_FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'] as const;
/** Back to column 0 and erase the line. */
const CLEAR_LINE = '\r\u001b[2K';
const SPIN_MS = 100;

const clamp01 = (x: number) => (Number.isFinite(x) ? Math.min(1, Math.max(0, x)) : 0);

/** `█████░░░░░  50%`: a bar of `width` cells and the percentage (the fraction is clamped to 0..1). */
export function fractionBar(fraction: number, width = 20): string {
  const f = clamp01(fraction);
  const w = Math.max(1, Math.floor(width));
  const full = Math.floor(f * w);
  return `${'█'.repeat(full)}${'░'.repeat(w - full)} ${String(Math.floor(f * 100)).padStart(3)}%`;
}

/**
 * A byte progress bar of `width` cells: `████████░░░░░░░░  50% 5 MiB/10 MiB`. With an unknown total
 * (0, negative or not finite) there is no bar, only the count so far: `5 MiB`.
 */
export function renderBar(done: number, total: number, width = 20): string {
  const d = Math.max(0, done);
  if (!(total > 0) || !Number.isFinite(total)) return formatBytes(d);
  return `${fractionBar(d / total, width)} ${formatBytes(Math.min(d, total))}/${formatBytes(total)}`;
}

/** Whole seconds since `start`. */
const secondsSince = (start: number, now: () => number) => Math.max(0, Math.floor((now() - start) / 1000));

/** Fits a transient line into the terminal so `\r` redraws the same row (a wrapped line would not). */
const fitLine = (io: CliIo, line: string) => (io.columns ? truncate(line, io.columns - 1) : line);

export interface StatusProgress {
  /** Sets the current status (e.g. an instance state). A terminal redraws; elsewhere a change prints a line. */
  update(status: string): void;
  /** Whole seconds since the progress started. */
  elapsed(): number;
  /** Stops the spinner and clears its line; `final` (if any) is printed on stderr as its own line. */
  stop(final?: string): void;
}

/**
 * `⠙ web-1 (i-…): building  3s`, redrawn in place every 100 ms on a terminal's stderr; on a
 * non-terminal `web-1 (i-…): building (0s)` once per distinct status, so logs show each state change.
 */
export function statusProgress(
  io: CliIo,
  label: string,
  opts: { now?: () => number; intervalMs?: number } = {},
): StatusProgress {
  const now = opts.now ?? Date.now;
  const start = now();
  let status: string | undefined;
  let frame = 0;
  let timer: NodeJS.Timeout | undefined;
  let drawn = false;
  let stopped = false;

  const draw = () => {
    if (status === undefined) return;
    const spin = SPINNER_FRAMES[frame++ % SPINNER_FRAMES.length];
    io.err(`${CLEAR_LINE}${fitLine(io, `${spin} ${label}: ${status}  ${secondsSince(start, now)}s`)}`);
    drawn = true;
  };

  return {
    update(next) {
      if (stopped) return;
      if (io.errIsTTY) {
        status = next;
        if (!timer) {
          timer = setInterval(draw, opts.intervalMs ?? SPIN_MS);
          timer.unref?.();
        }
        draw();
        return;
      }
      if (next === status) return;
      status = next;
      io.err(`${label}: ${next} (${secondsSince(start, now)}s)\n`);
    },
    elapsed: () => secondsSince(start, now),
    stop(final) {
      if (stopped) return;
      stopped = true;
      if (timer) clearInterval(timer);
      if (drawn) io.err(CLEAR_LINE);
      if (final) io.err(final.endsWith('\n') ? final : `${final}\n`);
    },
  };
}

export interface BarProgress {
  /** Progress as a fraction 0..1 of the whole, with what is happening now (`step`). */
  update(fraction: number, step: string): void;
  /** Progress in bytes (`total` 0 = unknown), with an optional step. */
  bytes(done: number, total: number, step?: string): void;
  /** Clears the bar; `final` (if any) is printed on stderr as its own line. */
  stop(final?: string): void;
}

/**
 * `label [████░░░░  40%] step`, redrawn in place on a terminal (at most every 100 ms, and always
 * when the step changes); on a non-terminal one line per step (`label: step`), so logs stay short.
 */
export function barProgress(
  io: CliIo,
  label: string,
  opts: { width?: number; now?: () => number; minRedrawMs?: number } = {},
): BarProgress {
  const now = opts.now ?? Date.now;
  const width = opts.width ?? 20;
  const minRedraw = opts.minRedrawMs ?? SPIN_MS;
  let lastStep: string | undefined;
  let lastDraw = -Infinity;
  let drawn = false;
  let stopped = false;

  const show = (barText: string, step: string | undefined) => {
    if (stopped) return;
    const stepChanged = step !== undefined && step !== lastStep;
    if (step !== undefined) lastStep = step;
    if (!io.errIsTTY) {
      if (stepChanged) io.err(`${label}: ${step}\n`);
      return;
    }
    const t = now();
    if (!stepChanged && t - lastDraw < minRedraw) return;
    lastDraw = t;
    io.err(`${CLEAR_LINE}${fitLine(io, `${label} ${barText}${lastStep ? `  ${lastStep}` : ''}`)}`);
    drawn = true;
  };

  return {
    update: (fraction, step) => show(fractionBar(fraction, width), step),
    bytes: (done, total, step) => show(renderBar(done, total, width), step),
    stop(final) {
      if (stopped) return;
      stopped = true;
      if (drawn) io.err(CLEAR_LINE);
      if (final) io.err(final.endsWith('\n') ? final : `${final}\n`);
    },
  };
}
