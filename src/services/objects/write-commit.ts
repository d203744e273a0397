/**
 * How object-storage writes commit. A small PUT's own work is a few rows; what used to dominate
 * it was the transaction around them and the syncs. So on SQLite:
 *
 * - Write transactions submitted in the same event-loop turn run as ONE SQLite transaction, each in
 *   its own savepoint: one writer's failure (a precondition, a quota) rolls back only its writes.
 *   The rows every writer touches (the bucket's counters, the tenant's quota, the audit head) are
 *   then written to the log once per group rather than once per request.
 * - A write is acknowledged only after the write-ahead log holding its commit was fdatasync()ed.
 *   The connection runs `synchronous = NORMAL` (a commit survives kill -9 as soon as it is in the
 *   OS page cache); the sync makes it survive power loss too. One sync runs at a time, in libuv's
 *   thread pool, and covers every commit made before it started, so concurrent writers share it
 *   while the event loop already commits the next group.
 *
 * - Hot writes (a PUT's commit) may run on the raw connection (`fast`): prepared statements
 *   instead of the query builder, inside the same group transaction. Their audit rows go through a
 *   chain cursor of the group: the head (`audit_head`) is read once, every event row is inserted
 *   with the same hash chain as `appendAudit` builds, and the head is written once before COMMIT
 *   (or before any query-builder write of the group, which may append through `appendAudit`).
 *   `verifyAudit` sees exactly the chain it would after one `appendAudit` per write.
 *
 * On PostgreSQL each write is its own transaction: the server batches WAL flushes of concurrent
 * commits itself (and a committed transaction is durable under its settings). `fast` is SQLite only.
 */
import type SqliteDatabase from 'better-sqlite3';
import { type AuditEvent, type AuditInput, chainedEvent } from '../../platform/audit/audit.js';
import type { Database, Tx } from '../../platform/db/database.js';
import { createLogSync } from '../../platform/db/log-sync.js';
import { prepared } from '../../platform/db/prepared.js';
import { randomAlnum } from './random-pool.js';

type Raw = SqliteDatabase.Database;

/** What a hot write gets: the group's transaction both ways, and the group's audit chain. */
export interface FastWrite {
  /** The raw connection, inside the group transaction (synchronous statements: `prepared`). */
  raw: Raw;
  /** The same transaction for the query builder (e.g. quota gates of other services). */
  trx: Tx;
  /** Appends an audit event to the chain, as `appendAudit(trx, input)` would. */
  audit(input: AuditInput): AuditEvent;
  /** `text` prepared once on the raw connection. */
  prepare(text: string): SqliteDatabase.Statement;
  /**
   * Facts established earlier in this group's transaction (e.g. a tenant's quota gates passed):
   * nothing else writes while the group holds the connection, so they still hold.
   */
  group: Map<string, unknown>;
}

export interface WriteCommitter {
  /** Runs `fn` in a transaction; resolves with its result once that commit is durable. */
  tx<T>(fn: (trx: Tx) => Promise<T>): Promise<T>;
  /**
   * SQLite only (undefined on PostgreSQL): as `tx`, for a write that uses the raw connection and
   * the group's audit chain (see the module header).
   */
  fast?: <T>(fn: (w: FastWrite) => Promise<T>) => Promise<T>;
  /** Groups and syncs so far (tests, the bench). */
  readonly stats: { groups: number; writes: number; syncs: number };
  /** Waits for the sync in flight, then releases the log's descriptor. */
  close(): Promise<void>;
}

interface Pending {
  fn: ((trx: Tx) => Promise<unknown>) | undefined;
  fastFn: ((w: FastWrite) => Promise<unknown>) | undefined;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

export function createWriteCommitter(
  database: Database,
  opts: { sync?: () => Promise<void> } = {},
): WriteCommitter {
  if (database.dialect === 'postgres' || !database.sqlite) {
    const pgStats = { groups: 0, writes: 0, syncs: 0 };
    return {
      tx: (fn) => {
        pgStats.writes++;
        return database.tx(fn);
      },
      stats: pgStats,
      close: async () => {},
    };
  }
  const log = createLogSync(database.walPath, opts.sync);
  const durable = log.durable;
  const stats = {
    groups: 0,
    writes: 0,
    get syncs() {
      return log.syncs;
    },
  };

  // ---- statements on the raw connection ---------------------------------------------------------
  let raw: Raw | undefined;
  const stmt = (text: string) => prepared(raw!, text);

  // ---- the group's audit chain cursor ---------------------------------------------------------------
  /** The head as this group's fast writes left it; `dirty` until written back to `audit_head`. */
  let chain: { seq: number; hash: string; dirty: boolean } | undefined;
  function appendChain(input: AuditInput): AuditEvent {
    if (!chain) {
      const head = stmt('SELECT seq, hash FROM audit_head WHERE id = 1').get() as
        | { seq: number; hash: string }
        | undefined;
      if (!head) throw new Error('audit_head row missing');
      chain = { seq: head.seq, hash: head.hash, dirty: false };
    }
    // The id has the shape of platform/ids.ts newId('evt'), from the pooled random buffer.
    const row = chainedEvent(chain.seq + 1, chain.hash, input, `evt-${randomAlnum(12)}`, Date.now());
    stmt(
      'INSERT INTO audit_events (seq, id, time, tenant_id, principal, action, resource, outcome, ' +
        'error_code, source_ip, request_id, details, prev_hash, hash) ' +
        'VALUES (@seq, @id, @time, @tenant_id, @principal, @action, @resource, @outcome, ' +
        '@error_code, @source_ip, @request_id, @details, @prev_hash, @hash)',
    ).run(row);
    chain = { seq: row.seq, hash: row.hash, dirty: true };
    return row;
  }
  /** Writes the cursor back to `audit_head` and forgets it (the head row is the truth again). */
  function storeChain() {
    if (chain?.dirty) stmt('UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1').run(chain.seq, chain.hash);
    chain = undefined;
  }

  // ---- groups ----------------------------------------------------------------------------------
  let pending: Pending[] = [];
  let scheduled = false;

  /**
   * Before a query-builder write: it may append through appendAudit, which reads and writes the head
   * row, and may change what the group's facts are about. Called before its savepoint, so a
   * rollback of that write cannot take the stored head of earlier writes with it.
   */
  function beforeQueryBuilderWrite(facts: Map<string, unknown>) {
    storeChain();
    facts.clear();
  }

  async function run(w: Pending, trx: Tx, facts: Map<string, unknown>) {
    if (w.fastFn) return w.fastFn({ raw: raw!, trx, audit: appendChain, prepare: stmt, group: facts });
    return w.fn!(trx);
  }

  async function flush() {
    scheduled = false;
    const group = pending;
    pending = [];
    const results: { ok: boolean; value: unknown }[] = [];
    const facts = new Map<string, unknown>();
    chain = undefined;
    try {
      raw ??= await database.sqlite!((r) => r);
      await database.db.transaction().execute(async (trx) => {
        // A group of one needs no savepoint: its failure rolls the whole transaction back.
        if (group.length === 1) {
          results.push({ ok: true, value: await run(group[0]!, trx, facts) });
        } else {
          for (const w of group) {
            if (!w.fastFn) beforeQueryBuilderWrite(facts);
            const before = chain && { ...chain };
            stmt('SAVEPOINT s3_write').run();
            try {
              const value = await run(w, trx, facts);
              stmt('RELEASE s3_write').run();
              results.push({ ok: true, value });
            } catch (e) {
              stmt('ROLLBACK TO s3_write').run();
              stmt('RELEASE s3_write').run();
              // Rows this write appended are gone with its savepoint; the cursor steps back (a
              // query-builder write's own head update went too: the stored head is the truth).
              chain = w.fastFn ? before : undefined;
              results.push({ ok: false, value: e });
            }
          }
        }
        storeChain();
      });
    } catch (e) {
      // The transaction itself failed (or the lone writer did): nothing of the group committed.
      chain = undefined;
      for (const w of group) w.reject(e);
      return;
    }
    stats.groups++;
    stats.writes += group.length;
    let synced: Promise<void> | undefined;
    for (const [i, w] of group.entries()) {
      const r = results[i]!;
      if (!r.ok) {
        w.reject(r.value);
        continue;
      }
      synced ??= durable();
      synced.then(
        () => w.resolve(r.value),
        (e) => w.reject(e),
      );
    }
  }

  // A write that arrives while a sync is in flight cannot be acknowledged before the NEXT sync (the
  // one in flight started before its commit), so its commit waits until that sync has ended and
  // then goes with every other write that arrived meanwhile: larger groups, the shared rows and
  // index pages written to the log once for all of them, and no later acknowledgement.
  const submit = (p: Pending) => {
    pending.push(p);
    if (!scheduled) {
      scheduled = true;
      // A log due to be emptied is emptied first, while no write of this group is under way.
      const gate = database.logGate?.();
      const syncing = log.idle();
      const wait = gate && syncing ? Promise.all([gate, syncing]) : (gate ?? syncing);
      if (wait) void wait.then(() => setImmediate(() => void flush()));
      else setImmediate(() => void flush());
    }
  };

  return {
    tx<T>(fn: (trx: Tx) => Promise<T>): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        submit({ fn, fastFn: undefined, resolve: resolve as (v: unknown) => void, reject });
      });
    },
    fast<T>(fastFn: (w: FastWrite) => Promise<T>): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        submit({ fn: undefined, fastFn, resolve: resolve as (v: unknown) => void, reject });
      });
    },
    stats,
    close: () => log.close(),
  };
}
