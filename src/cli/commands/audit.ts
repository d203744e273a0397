import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { CliError } from '../errors.js';
import { type Column, shortTime } from '../output.js';
import type { AuditEventView, AuditVerification } from '../types.js';
import {
  choice,
  clientFor,
  examples,
  type ListFlags,
  printerFor,
  printList,
  timeArg,
  withListOptions,
} from './common.js';

/** Exit status of `audit verify` when the chain is broken. */
export const EXIT_AUDIT_BROKEN = 4;

const AUDIT_COLUMNS: Column<AuditEventView>[] = [
  { header: 'SEQ', value: (e) => e.seq, align: 'right' },
  { header: 'TIME', value: (e) => shortTime(e.time), shrink: false },
  { header: 'PRINCIPAL', value: (e) => e.principal },
  { header: 'ACTION', value: (e) => e.action },
  { header: 'RESOURCE', value: (e) => e.resource },
  { header: 'OUTCOME', value: (e) => (e.errorCode ? `${e.outcome} (${e.errorCode})` : e.outcome) },
  { header: 'SOURCE', value: (e) => e.sourceIp },
  { header: 'REQUEST', value: (e) => e.requestId },
];

interface ListAuditFlags extends ListFlags {
  tenant?: string;
  principal?: string;
  action?: string;
  outcome?: string;
  since?: string;
  until?: string;
}

interface VerifyFlags {
  dataDir?: string;
  database?: string;
}

/** Opens the database directly (no server, no migrations) and walks the chain. */
async function verifyOffline(ctx: CliContext, f: VerifyFlags): Promise<AuditVerification> {
  if (f.dataDir && f.database) throw new CliError('use either --data-dir or --database, not both', 2);
  let url: string;
  if (f.database) {
    const isPostgres = /^postgres(ql)?:\/\//.test(f.database);
    url = isPostgres ? f.database : resolve(ctx.cwd, f.database.replace(/^sqlite:/, ''));
    if (!isPostgres && !existsSync(url)) throw new CliError(`no SQLite database at ${url}`, 2);
  } else {
    url = join(resolve(ctx.cwd, f.dataDir!), 'yunhai.db');
    if (!existsSync(url)) {
      throw new CliError(
        `no database at ${url}; for a PostgreSQL control plane pass --database postgres://...`,
        2,
      );
    }
  }
  // Loaded on demand: the database drivers are not needed by any other client command.
  const [{ openDatabase }, { verifyAudit }] = await Promise.all([
    import('../../platform/db/database.js'),
    import('../../platform/audit/audit.js'),
  ]);
  let database: Awaited<ReturnType<typeof openDatabase>>;
  try {
    database = await openDatabase({ url, migrate: false });
  } catch (e) {
    throw new CliError(`cannot open the database: ${e instanceof Error ? e.message : String(e)}`, 3);
  }
  try {
    return await verifyAudit(database.db);
  } catch (e) {
    throw new CliError(`cannot read the audit log: ${e instanceof Error ? e.message : String(e)}`, 1);
  } finally {
    await database.close();
  }
}

export function registerAuditCommands(program: Command, ctx: CliContext) {
  const audit = program
    .command('audit')
    .description('The tamper-evident audit log: who did what, when, from where')
    .addHelpText('after', examples('yunhai audit list --since 1h', 'yunhai audit verify'));

  withListOptions(
    audit
      .command('list')
      .description('Audit events, newest first (owners see their tenant; platform admins see all)')
      .option('--tenant <tenant>', 'only events of this tenant id')
      .option('--principal <account:user>', 'only events by this principal, e.g. 123456789012:alice')
      .option('--action <action>', 'only this action, e.g. iam:CreateUser')
      .option(
        '--outcome <outcome>',
        'success, failure or denied',
        choice('--outcome', ['success', 'failure', 'denied'] as const),
      )
      .option(
        '--since <time>',
        'from this time: ISO (2025-01-31T08:00:00Z) or a duration ago (30m, 12h, 7d)',
        timeArg('--since'),
      )
      .option('--until <time>', 'before this time (same forms)', timeArg('--until')),
  )
    .addHelpText(
      'after',
      examples(
        'yunhai audit list',
        'yunhai audit list --outcome denied --since 24h',
        'yunhai audit list --action iam:DeleteUser --all -o json',
      ),
    )
    .action(async (f: ListAuditFlags, cmd: Command) => {
      await printList<AuditEventView>(ctx, cmd, {
        path: '/audit',
        query: {
          tenantId: f.tenant,
          principal: f.principal,
          action: f.action,
          outcome: f.outcome,
          since: f.since,
          until: f.until,
        },
        flags: f,
        label: 'audit events',
        columns: AUDIT_COLUMNS,
      });
    });

  audit
    .command('verify')
    .description(`Recompute the audit hash chain; exits ${EXIT_AUDIT_BROKEN} when it is broken`)
    .option('--data-dir <dir>', 'verify offline, straight from <dir>/yunhai.db (no server needed)')
    .option(
      '--database <url>',
      'verify offline, straight from this database (SQLite path or postgres:// URL)',
    )
    .addHelpText(
      'after',
      `
Through the API this needs a platform admin. Offline, it reads the database directly: use it on a
backup or when the control plane is down. Every row's hash covers its fields and the previous hash,
so an edited, deleted or reordered row is reported with the first event where the chain breaks.
${examples('yunhai audit verify', 'yunhai audit verify --data-dir ./yunhai-data', 'yunhai audit verify --database postgres://yunhai@db/yunhai')}`,
    )
    .action(async (f: VerifyFlags, cmd: Command) => {
      const printer = printerFor(ctx, cmd);
      let v: AuditVerification;
      if (f.dataDir || f.database) {
        v = await verifyOffline(ctx, f);
      } else {
        const { client } = clientFor(ctx, cmd);
        v = await client.get<AuditVerification>('/audit/verify');
      }
      printer.result(v, () =>
        v.ok
          ? `audit chain OK: ${v.checked} events, head ${v.headHash}\n`
          : `audit chain BROKEN at event ${v.problem?.seq ?? '?'}: ${v.problem?.reason ?? 'unknown reason'}\n`,
      );
      if (!v.ok) ctx.exitCode = EXIT_AUDIT_BROKEN;
    });
}
