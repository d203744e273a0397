import { type Command, InvalidArgumentError } from 'commander';
import { ApiClient, type ListOptions, type Page, type Query } from '../client.js';
import { resolveTarget, type Target } from '../config.js';
import type { CliContext } from '../context.js';
import { CliError } from '../errors.js';
import { type Column, Printer, parseOutputFormat, progress } from '../output.js';

/** Options every command inherits from the program. */
export interface GlobalFlags {
  profile?: string;
  endpoint?: string;
  output?: string;
}

export interface ListFlags {
  limit?: number;
  all?: boolean;
}

export const globals = (cmd: Command): GlobalFlags => cmd.optsWithGlobals<GlobalFlags>();

export const printerFor = (ctx: CliContext, cmd: Command) =>
  new Printer(ctx.io, parseOutputFormat(globals(cmd).output));

/** An API client for the profile/endpoint/credentials this invocation resolves to. */
export function clientFor(
  ctx: CliContext,
  cmd: Command,
  opts: { requireCredentials?: boolean } = {},
): { client: ApiClient; target: Target } {
  const target = resolveTarget(globals(cmd), ctx.env, opts);
  return {
    client: new ApiClient({ endpoint: target.endpoint, credentials: target.credentials, fetch: ctx.fetch }),
    target,
  };
}

/** Path segment: ids are validated by the server; this only keeps them one segment. */
export const seg = (s: string) => encodeURIComponent(s);

export function positiveInt(name: string) {
  return (v: string): number => {
    if (!/^\d+$/.test(v) || Number(v) < 1)
      throw new InvalidArgumentError(`${name} must be a positive whole number.`);
    return Number(v);
  };
}

/** Adds --limit and --all to a list command. */
export function withListOptions(cmd: Command): Command {
  return cmd
    .option('--limit <n>', 'show at most n items (follows pages as needed)', positiveInt('--limit'))
    .option('--all', 'follow every page to the end');
}

/** Lists with the --limit/--all flags, showing progress on a terminal, and hints when more results exist. */
export async function listPages<T>(
  ctx: CliContext,
  client: ApiClient,
  path: string,
  query: Query,
  flags: ListFlags,
  label: string,
): Promise<Page<T>> {
  if (flags.all && flags.limit !== undefined) throw new CliError('use either --limit or --all, not both', 2);
  const p = progress(ctx.io, `fetching ${label}`);
  const opts: ListOptions = { limit: flags.limit, all: flags.all, onPage: (n) => p.update(n) };
  try {
    return await client.list<T>(path, query, opts);
  } finally {
    p.done();
  }
}

export function moreHint(printer: Printer, page: Page<unknown>): void {
  if (page.nextCursor && !printer.json) printer.note(`(more results: use --all, or --limit N)`);
}

/** The whole of a list command: fetch pages per --limit/--all, print a table (or the JSON), hint at more. */
export async function printList<T>(
  ctx: CliContext,
  cmd: Command,
  list: { path: string; query: Query; flags: ListFlags; label: string; columns: Column<T>[] },
): Promise<void> {
  const { client } = clientFor(ctx, cmd);
  const printer = printerFor(ctx, cmd);
  const page = await listPages<T>(ctx, client, list.path, list.query, list.flags, list.label);
  printer.table(page, page.items, list.columns, `No ${list.label} found.`);
  moreHint(printer, page);
}

const RELATIVE = /^(\d+)\s*(s|m|h|d|w)$/i;
const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** --since/--until: an ISO date or time, or a duration ago (`30m`, `12h`, `7d`, `2w`). */
export function timeArg(name: string) {
  return (v: string): string => {
    const rel = RELATIVE.exec(v.trim());
    if (rel) return new Date(Date.now() - Number(rel[1]) * UNIT_MS[rel[2]!.toLowerCase()]!).toISOString();
    const ms = Date.parse(v);
    if (Number.isNaN(ms)) {
      throw new InvalidArgumentError(
        `${name} takes an ISO time (2025-01-31, 2025-01-31T08:00:00Z) or a duration ago (30m, 12h, 7d).`,
      );
    }
    return new Date(ms).toISOString();
  };
}

export function choice<T extends string>(name: string, values: readonly T[]) {
  return (v: string): T => {
    if (!(values as readonly string[]).includes(v))
      throw new InvalidArgumentError(`${name} must be one of ${values.join(', ')}.`);
    return v as T;
  };
}

/**
 * Asks before something irreversible (`action` like "delete tenant acme"); `--yes` skips the question,
 * and without a terminal it is required.
 */
export async function confirm(ctx: CliContext, action: string, yes: boolean | undefined): Promise<void> {
  if (yes) return;
  if (!ctx.io.interactive || !ctx.io.prompt) {
    throw new CliError(`refusing to ${action} without confirmation: pass --yes`, 2);
  }
  const question = `${action[0]!.toUpperCase()}${action.slice(1)}? This cannot be undone. [y/N] `;
  const answer = (await ctx.io.prompt(question)).trim().toLowerCase();
  if (answer !== 'y' && answer !== 'yes') throw new CliError('cancelled', 1);
}

/** A secret from its flag, else typed on a terminal without echo (twice when `twice`). */
export async function secretArg(
  ctx: CliContext,
  value: string | undefined,
  what: { flag: string; prompt: string; twice?: boolean },
): Promise<string> {
  if (value !== undefined && value !== '') return value;
  if (!ctx.io.interactive || !ctx.io.prompt)
    throw new CliError(`${what.flag} is required when not on a terminal`, 2);
  const first = await ctx.io.prompt(`${what.prompt}: `, { hidden: true });
  if (!first) throw new CliError(`${what.prompt.toLowerCase()} must not be empty`, 2);
  if (what.twice) {
    const again = await ctx.io.prompt(`${what.prompt} (again): `, { hidden: true });
    if (again !== first) throw new CliError('the two entries do not match', 2);
  }
  return first;
}

const USER_ID = /^usr-[a-z0-9]{12}$/;

/** `usr-…` ids and `me` go straight to the API; anything else is looked up as a user name (in --tenant). */
export async function resolveUserId(client: ApiClient, ref: string, tenant?: string): Promise<string> {
  if (ref === 'me' || USER_ID.test(ref)) return ref;
  const page = await client.get<Page<{ id: string; name: string }>>('/users', {
    tenantId: tenant,
    search: ref,
    limit: 1000,
  });
  const found = page.items.find((u) => u.name === ref);
  if (!found) {
    throw new CliError(
      `NotFound: no user named '${ref}' in ${tenant ? `tenant ${tenant}` : 'your tenant'} (pass a usr-… id, or --tenant)`,
      1,
    );
  }
  return found.id;
}

/** Help text block with examples, shown after the options. */
export const examples = (...lines: string[]) => `\nExamples:\n${lines.map((l) => `  ${l}`).join('\n')}\n`;
