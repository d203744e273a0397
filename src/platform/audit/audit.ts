import { createHash } from 'node:crypto';
import type { Conn, Database, Tx } from '../db/database.js';
import { GENESIS_HASH } from '../db/migrations.js';
import type { AuditEventsTable } from '../db/schema.js';
import { newId } from '../ids.js';

/**
 * Tamper-evident audit log. Every row's hash covers its own fields and the previous row's hash,
 * and `audit_head` holds the latest seq and hash, so editing, deleting or reordering any row
 * breaks verification. Rows are appended inside the caller's transaction, together with the
 * change they describe; the head row's update serialises appends (the chain is inherently serial).
 */
export interface AuditInput {
  tenantId: string | null;
  principal: string;
  action: string;
  resource: string;
  outcome: 'success' | 'failure' | 'denied';
  errorCode?: string | null;
  sourceIp: string;
  requestId: string;
  details?: Record<string, unknown>;
}

export type AuditEvent = AuditEventsTable;

type HashedFields = Omit<AuditEventsTable, 'hash' | 'prev_hash'>;

export function auditHash(prevHash: string, row: HashedFields): string {
  const fields = [
    row.seq,
    row.id,
    row.time,
    row.tenant_id,
    row.principal,
    row.action,
    row.resource,
    row.outcome,
    row.error_code,
    row.source_ip,
    row.request_id,
    row.details,
  ];
  return createHash('sha256').update(prevHash).update('\n').update(JSON.stringify(fields)).digest('hex');
}

/**
 * The chain's event number `seq`, linked to and hashed over `prevHash` (the hash of event seq - 1).
 * Every writer of the chain builds its rows here.
 */
export function chainedEvent(
  seq: number,
  prevHash: string,
  input: AuditInput,
  id: string,
  now: number,
): AuditEvent {
  const fields: HashedFields = {
    seq,
    id,
    time: now,
    tenant_id: input.tenantId,
    principal: input.principal,
    action: input.action,
    resource: input.resource,
    outcome: input.outcome,
    error_code: input.errorCode ?? null,
    source_ip: input.sourceIp,
    request_id: input.requestId,
    details: JSON.stringify(input.details ?? {}),
  };
  return { ...fields, prev_hash: prevHash, hash: auditHash(prevHash, fields) };
}

export async function appendAudit(trx: Tx, input: AuditInput, now = Date.now()): Promise<AuditEvent> {
  // Taking the next seq first locks the head row for the rest of the transaction.
  const head = await trx
    .updateTable('audit_head')
    .set((eb) => ({ seq: eb('seq', '+', 1) }))
    .where('id', '=', 1)
    .returning(['seq', 'hash'])
    .executeTakeFirstOrThrow();
  const row = chainedEvent(head.seq, head.hash, input, newId('evt'), now);
  await trx.insertInto('audit_events').values(row).execute();
  await trx.updateTable('audit_head').set({ hash: row.hash }).where('id', '=', 1).execute();
  return row;
}

/** Appends in a transaction of its own: for events with no state change (failed sign-ins, denials). */
export const appendAuditAlone = (database: Database, input: AuditInput) =>
  database.tx((trx) => appendAudit(trx, input));

export interface AuditFilter {
  tenantId?: string;
  principal?: string;
  action?: string;
  outcome?: AuditInput['outcome'];
  since?: number;
  until?: number;
  /** Return events with seq below this (newest first paging). */
  beforeSeq?: number;
  limit: number;
}

export async function listAudit(conn: Conn, f: AuditFilter): Promise<AuditEvent[]> {
  let q = conn.selectFrom('audit_events').selectAll().orderBy('seq', 'desc').limit(f.limit);
  if (f.tenantId !== undefined) q = q.where('tenant_id', '=', f.tenantId);
  if (f.principal !== undefined) q = q.where('principal', '=', f.principal);
  if (f.action !== undefined) q = q.where('action', '=', f.action);
  if (f.outcome !== undefined) q = q.where('outcome', '=', f.outcome);
  if (f.since !== undefined) q = q.where('time', '>=', f.since);
  if (f.until !== undefined) q = q.where('time', '<', f.until);
  if (f.beforeSeq !== undefined) q = q.where('seq', '<', f.beforeSeq);
  return q.execute();
}

export interface AuditVerification {
  ok: boolean;
  checked: number;
  headSeq: number;
  headHash: string;
  /** First row (by seq) where the chain breaks, with what is wrong. */
  problem?: { seq: number; reason: string };
}

/** Walks the whole chain in seq order. Detects edited rows, deleted rows (gaps or a truncated tail) and a rewritten head. */
export async function verifyAudit(conn: Conn, batch = 1000): Promise<AuditVerification> {
  const head = await conn
    .selectFrom('audit_head')
    .select(['seq', 'hash'])
    .where('id', '=', 1)
    .executeTakeFirstOrThrow();
  let prevHash = GENESIS_HASH;
  let expectSeq = 1;
  let checked = 0;
  const fail = (seq: number, reason: string): AuditVerification => ({
    ok: false,
    checked,
    headSeq: head.seq,
    headHash: head.hash,
    problem: { seq, reason },
  });
  for (;;) {
    const rows = await conn
      .selectFrom('audit_events')
      .selectAll()
      .where('seq', '>=', expectSeq)
      .orderBy('seq', 'asc')
      .limit(batch)
      .execute();
    for (const row of rows) {
      if (row.seq !== expectSeq)
        return fail(expectSeq, `row ${expectSeq} is missing (next row is ${row.seq})`);
      if (row.prev_hash !== prevHash) return fail(row.seq, 'prev_hash does not match the previous row');
      const { hash, prev_hash: _p, ...fields } = row;
      if (auditHash(prevHash, fields) !== hash)
        return fail(row.seq, 'row contents do not match its hash (edited)');
      prevHash = hash;
      expectSeq++;
      checked++;
    }
    if (rows.length < batch) break;
  }
  if (checked !== head.seq)
    return fail(checked + 1, `chain ends at ${checked} but the head says ${head.seq} (rows deleted)`);
  if (head.hash !== prevHash) return fail(checked, 'head hash does not match the last row');
  return { ok: true, checked, headSeq: head.seq, headHash: head.hash };
}
