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
 * On PostgreSQL each write is its own transaction: the server batches WAL flushes of concurrent
 * commits itself (and a committed transaction is durable under its settings).
 */
import { sql } from 'kysely';
import type { Database, Tx } from '../../platform/db/database.js';
import { createLogSync } from '../../platform/db/log-sync.js';

export interface WriteCommitter {
  /** Runs `fn` in a transaction; resolves with its result once that commit is durable. */
  tx<T>(fn: (trx: Tx) => Promise<T>): Promise<T>;
  /** Groups and syncs so far (tests, the bench). */
  readonly stats: { groups: number; writes: number; syncs: number };
  /** Waits for the sync in flight, then releases the log's descriptor. */
  close(): Promise<void>;
}

interface Pending {
  fn: (trx: Tx) => Promise<unknown>;
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

  // ---- groups ----------------------------------------------------------------------------------
  let pending: Pending[] = [];
  let scheduled = false;

  async function flush() {
    scheduled = false;
    const group = pending;
    pending = [];
    const results: { ok: boolean; value: unknown }[] = [];
    try {
      await database.db.transaction().execute(async (trx) => {
        // A group of one needs no savepoint: its failure rolls the whole transaction back.
        if (group.length === 1) {
          results.push({ ok: true, value: await group[0]!.fn(trx) });
          return;
        }
        for (const w of group) {
          await sql`SAVEPOINT s3_write`.execute(trx);
          try {
            const value = await w.fn(trx);
            await sql`RELEASE s3_write`.execute(trx);
            results.push({ ok: true, value });
          } catch (e) {
            await sql`ROLLBACK TO s3_write`.execute(trx);
            await sql`RELEASE s3_write`.execute(trx);
            results.push({ ok: false, value: e });
          }
        }
      });
    } catch (e) {
      // The transaction itself failed (or the lone writer did): nothing of the group committed.
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

  return {
    tx<T>(fn: (trx: Tx) => Promise<T>): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        pending.push({ fn, resolve: resolve as (v: unknown) => void, reject });
        if (!scheduled) {
          scheduled = true;
          setImmediate(() => void flush());
        }
      });
    },
    stats,
    close: () => log.close(),
  };
}
