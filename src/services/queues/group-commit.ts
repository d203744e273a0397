/**
 * Group commit for the queue hot path on SQLite. Message traffic is many tiny transactions (a
 * batch of ten inserts, an update of ten rows, a delete of ten rows); what each one costs is mostly
 * the transaction around it and the flush to disk, not the rows. So:
 *
 * - Operations submitted in the same event-loop turn (every request parsed from the sockets that
 *   were readable together) run in ONE SQLite transaction on the raw connection, with prepared
 *   statements and a savepoint each, so one operation's failure rolls back only its own writes.
 * - A durable operation (a send) is acknowledged only after the write-ahead log holding its commit
 *   has been fdatasync()ed. The sync runs in libuv's thread pool, so the event loop keeps parsing
 *   and committing the next group meanwhile; one sync covers every commit that finished before it
 *   started, so concurrent senders share it.
 *
 * The connection itself runs `synchronous = NORMAL` (no sync per commit; a commit survives kill -9
 * of the process because it is in the OS page cache). The explicit sync is what makes an
 * acknowledged send survive power loss too, as RabbitMQ's publisher confirms do. Receives and
 * deletes are not synced before they answer: losing one to power loss only makes a message visible
 * again, which at-least-once delivery allows. See docs/queue-throughput.md.
 */
import type SqliteDatabase from 'better-sqlite3';
import type { Database } from '../../platform/db/database.js';
import { createLogSync } from '../../platform/db/log-sync.js';
import { prepared } from '../../platform/db/prepared.js';

type Raw = SqliteDatabase.Database;

interface Op {
  fn: (db: Raw) => unknown;
  durable: boolean;
  oneStatement: boolean;
  onCommit: ((v: unknown) => void) | undefined;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

export interface GroupCommitOptions {
  /** Makes every commit so far durable; default: fdatasync() of the database's WAL file. */
  sync?: () => Promise<void>;
}

export interface RunOptions<T> {
  /** Answer only after the log holding the commit was synced (a send). */
  durable: boolean;
  /**
   * Runs as soon as the transaction committed, before that sync: what others may learn at once
   * (a send wakes long polls: its rows are visible from the commit on).
   */
  onCommit?: (v: T) => void;
  /**
   * `fn` writes with at most one statement and does nothing after it that can throw, so it needs
   * no savepoint: SQLite undoes a failing statement by itself and leaves the transaction open.
   * (Two statements per operation fewer; the three queue hot-path operations are all like this.)
   */
  oneStatement?: boolean;
}

export interface GroupCommit {
  /**
   * Runs `fn` (synchronous, on the raw connection) in the next group transaction and answers its
   * result once that transaction committed and, for a `durable` operation, once the log was synced.
   */
  run<T>(fn: (db: Raw) => T, opts: RunOptions<T>): Promise<T>;
  /** Resolves after a sync that started after this call: commits made before it are durable. */
  durable(): Promise<void>;
  /** Groups committed, operations run in them, and syncs done (for tests and the bench). */
  readonly stats: { groups: number; ops: number; syncs: number };
  close(): Promise<void>;
}

/** A group committer over `database` (SQLite only: it needs `database.sqlite`). */
export function createGroupCommit(database: Database, opts: GroupCommitOptions = {}): GroupCommit {
  const onConnection = database.sqlite;
  if (!onConnection) throw new Error('group commit needs a SQLite database');
  const log = createLogSync(database.walPath, opts.sync);
  const durable = log.durable;
  const stats = {
    groups: 0,
    ops: 0,
    get syncs() {
      return log.syncs;
    },
  };

  // ---- groups ------------------------------------------------------------------------------
  let pending: Op[] = [];
  let scheduled = false;

  async function flush() {
    scheduled = false;
    const ops = pending;
    pending = [];
    const results: { ok: boolean; value: unknown }[] = [];
    try {
      await onConnection!((db) => {
        prepared(db, 'BEGIN').run();
        try {
          // A group of one needs no savepoint: its failure rolls the whole transaction back.
          if (ops.length === 1) results.push({ ok: true, value: ops[0]!.fn(db) });
          else
            for (const op of ops) {
              if (op.oneStatement) {
                try {
                  results.push({ ok: true, value: op.fn(db) });
                } catch (e) {
                  // Errors such as SQLITE_FULL or IOERR may roll the whole transaction back:
                  // then nothing of the group is left to commit, and every operation fails.
                  if (!db.inTransaction) throw e;
                  results.push({ ok: false, value: e });
                }
                continue;
              }
              prepared(db, 'SAVEPOINT op').run();
              try {
                results.push({ ok: true, value: op.fn(db) });
                prepared(db, 'RELEASE op').run();
              } catch (e) {
                prepared(db, 'ROLLBACK TO op').run();
                prepared(db, 'RELEASE op').run();
                results.push({ ok: false, value: e });
              }
            }
          prepared(db, 'COMMIT').run();
        } catch (e) {
          if (db.inTransaction) db.exec('ROLLBACK');
          throw e;
        }
      });
    } catch (e) {
      for (const op of ops) op.reject(e);
      return;
    }
    stats.groups++;
    stats.ops += ops.length;
    let sync: Promise<void> | undefined;
    for (const [i, op] of ops.entries()) {
      const r = results[i]!;
      if (r.ok && op.onCommit) {
        try {
          op.onCommit(r.value);
        } catch {
          // A notification must not fail a committed operation.
        }
      }
    }
    for (const [i, op] of ops.entries()) {
      const r = results[i]!;
      if (!r.ok) op.reject(r.value);
      else if (!op.durable) op.resolve(r.value);
      else {
        sync ??= durable();
        sync.then(
          () => op.resolve(r.value),
          (e) => op.reject(e),
        );
      }
    }
  }

  return {
    run<T>(fn: (db: Raw) => T, opts: RunOptions<T>): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        pending.push({
          fn,
          durable: opts.durable,
          oneStatement: opts.oneStatement === true,
          onCommit: opts.onCommit as ((v: unknown) => void) | undefined,
          resolve: resolve as (v: unknown) => void,
          reject,
        });
        if (!scheduled) {
          scheduled = true;
          // A log due to be emptied (Database.logGate) is emptied first, while no write of this
          // group is under way: PASSIVE checkpoints never catch up with a writer that commits
          // every few ms, so a queue-only load would otherwise grow the log without bound.
          const gate = database.logGate?.();
          if (gate) {
            const syncing = log.idle();
            void (syncing ? Promise.all([gate, syncing]) : gate).then(() => setImmediate(() => void flush()));
          } else setImmediate(() => void flush());
        }
      });
    },
    durable,
    stats,
    /** Waits for the sync in flight (its senders are answered), then closes the log descriptor. */
    close: () => log.close(),
  };
}
