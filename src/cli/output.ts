import type { CliIo } from './context.js';
import { CliError } from './errors.js';

export type OutputFormat = 'table' | 'json';

export function parseOutputFormat(v: string | undefined): OutputFormat {
  const f = (v ?? 'table').toLowerCase();
  if (f === 'table' || f === 'json') return f;
  throw new CliError(`--output must be table or json, got '${v}'`, 2);
}

export interface Column<T> {
  header: string;
  value: (row: T) => unknown;
  align?: 'left' | 'right';
  /** May be cut (with …) when the table is wider than the terminal. Default true for left-aligned columns. */
  shrink?: boolean;
}

/**
 * Terminal display width: East Asian wide and fullwidth characters (云海) and most emoji take two columns,
 * combining marks none.
 */
export function displayWidth(s: string): number {
  let w = 0;
  for (const ch of s) w += charWidth(ch.codePointAt(0)!);
  return w;
}

function charWidth(cp: number): number {
  if (cp === 0x200b || (cp >= 0x300 && cp <= 0x36f) || (cp >= 0xfe00 && cp <= 0xfe0f)) return 0;
  if (
    (cp >= 0x1100 && cp <= 0x115f) ||
    (cp >= 0x2e80 && cp <= 0xa4cf && cp !== 0x303f) ||
    (cp >= 0xac00 && cp <= 0xd7a3) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0xfe30 && cp <= 0xfe4f) ||
    (cp >= 0xff00 && cp <= 0xff60) ||
    (cp >= 0xffe0 && cp <= 0xffe6) ||
    (cp >= 0x1f300 && cp <= 0x1f64f) ||
    (cp >= 0x1f900 && cp <= 0x1f9ff) ||
    (cp >= 0x20000 && cp <= 0x3fffd)
  ) {
    return 2;
  }
  return 1;
}

/** Cuts `s` to at most `width` columns, ending with … when something was cut. */
export function truncate(s: string, width: number): string {
  if (displayWidth(s) <= width) return s;
  if (width <= 0) return '';
  let out = '';
  let w = 0;
  for (const ch of s) {
    const cw = charWidth(ch.codePointAt(0)!);
    if (w + cw > width - 1) break;
    out += ch;
    w += cw;
  }
  return out + '…';
}

const pad = (s: string, width: number, align: 'left' | 'right') => {
  const fill = ' '.repeat(Math.max(0, width - displayWidth(s)));
  return align === 'right' ? fill + s : s + fill;
};

/**
 * Text for one cell. Control characters (newlines, ANSI escapes) in server data are shown escaped,
 * so a crafted name or audit detail cannot rewrite the terminal.
 */
export function cell(v: unknown): string {
  if (v === null || v === undefined || v === '') return '-';
  const s = typeof v === 'string' ? v : typeof v === 'object' ? JSON.stringify(v) : String(v);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: escaping control characters is the point
  return s.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => {
    if (c === '\n') return '\\n';
    if (c === '\t') return '\\t';
    if (c === '\r') return '\\r';
    return `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
  });
}

const GAP = 2;

/**
 * An aligned table with a header row. When `maxWidth` is given and the table is wider, the widest
 * shrinkable columns are cut (never below their header or 6 columns) until it fits.
 */
export function renderTable<T>(rows: T[], columns: Column<T>[], maxWidth?: number): string {
  const cells = rows.map((r) => columns.map((c) => cell(c.value(r))));
  const widths = columns.map((c, i) =>
    Math.max(displayWidth(c.header), ...cells.map((row) => displayWidth(row[i]!))),
  );
  if (maxWidth !== undefined) {
    const total = () => widths.reduce((a, b) => a + b, 0) + GAP * (columns.length - 1);
    const floor = columns.map((c) => Math.max(displayWidth(c.header), 6));
    while (total() > maxWidth) {
      let widest = -1;
      for (let i = 0; i < columns.length; i++) {
        const c = columns[i]!;
        const shrinkable = c.shrink ?? c.align !== 'right';
        if (shrinkable && widths[i]! > floor[i]! && (widest < 0 || widths[i]! > widths[widest]!)) widest = i;
      }
      if (widest < 0) break;
      widths[widest] = Math.max(floor[widest]!, widths[widest]! - Math.max(1, total() - maxWidth));
    }
  }
  const line = (values: string[]) =>
    values
      .map((v, i) => pad(truncate(v, widths[i]!), widths[i]!, columns[i]!.align ?? 'left'))
      .join(' '.repeat(GAP))
      .trimEnd();
  return [line(columns.map((c) => c.header)), ...cells.map(line)].join('\n') + '\n';
}

/** `key  value` lines for one object (show commands). */
export function renderFields(fields: [string, unknown][]): string {
  const width = Math.max(...fields.map(([k]) => displayWidth(k)));
  return fields.map(([k, v]) => `${pad(k, width, 'left')}  ${cell(v)}`).join('\n') + '\n';
}

/** A small usage bar: `████░░░░░░`; empty when there is no limit. */
export function bar(used: number, limit: number, width = 10): string {
  if (limit < 0) return '';
  const ratio = limit === 0 ? (used > 0 ? 1 : 0) : Math.min(1, used / limit);
  const full = Math.round(ratio * width);
  return '█'.repeat(full) + '░'.repeat(width - full);
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${Number.isInteger(v) ? v : v.toFixed(1)} ${units[i]}`;
}

/** 2025-01-02T03:04:05.678Z -> 2025-01-02 03:04:05Z (tables only; JSON keeps the original). */
export function shortTime(iso: string | null | undefined): string | null {
  if (!iso) return null;
  const m = /^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(\.\d+)?Z$/.exec(iso);
  return m ? `${m[1]} ${m[2]}Z` : iso;
}

/** Prints the result of a command: raw JSON, or the table/text rendering. */
export class Printer {
  readonly format: OutputFormat;
  private readonly io: CliIo;

  constructor(io: CliIo, format: OutputFormat) {
    this.io = io;
    this.format = format;
  }

  get json(): boolean {
    return this.format === 'json';
  }

  /** Raw JSON in json mode; otherwise `render()`'s text. */
  result(data: unknown, render: () => string): void {
    if (this.json) this.io.out(JSON.stringify(data, null, 2) + '\n');
    else this.io.out(render());
  }

  table<T>(data: unknown, rows: T[], columns: Column<T>[], empty = 'Nothing found.'): void {
    if (this.json) {
      this.io.out(JSON.stringify(data, null, 2) + '\n');
      return;
    }
    if (rows.length === 0) {
      this.io.err(`${empty}\n`);
      return;
    }
    this.io.out(renderTable(rows, columns, this.io.columns));
  }

  /** A note for humans on stderr (never mixed into JSON on stdout). */
  note(text: string): void {
    this.io.err(text.endsWith('\n') ? text : `${text}\n`);
  }
}

/** A transient "fetched N …" line on a terminal's stderr; silent elsewhere. */
export function progress(io: CliIo, label: string) {
  let shown = false;
  return {
    update(count: number) {
      if (!io.errIsTTY) return;
      io.err(`\r\u001b[2K${label}: ${count}…`);
      shown = true;
    },
    done() {
      if (shown) io.err('\r\u001b[2K');
      shown = false;
    },
  };
}
