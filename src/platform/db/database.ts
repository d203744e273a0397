import SqliteDatabase from 'better-sqlite3';
import { Kysely, Migrator, PostgresDialect, SqliteDialect, type Transaction } from 'kysely';
import pg from 'pg';
import { YunhaiError } from '../errors.js';
import {
  type Checkpointer,
  type CheckpointerOptions,
  startCheckpointer,
  WAL_KEEP_BYTES,
} from './checkpointer.js';
import { migrationProvider } from './migrations.js';
import type { Schema } from './schema.js';

export type DialectName = 'sqlite' | 'postgres';
export type Tx = Transaction<Schema>;
export type Conn = Kysely<Schema> | Tx;

/** A handle on the platform database: the Kysely instance plus which dialect sits under it. */
export interface Database {
  readonly db: Kysely<Schema>;
  readonly dialect: DialectName;
  /** Runs `fn` in one transaction; everything it writes commits together or not at all. */
  tx<T>(fn: (trx: Tx) => Promise<T>): Promise<T>;
  /** Cheap liveness query for /readyz. */
  ping(): Promise<void>;
  /**
   * SQLite only: runs `fn` on the raw better-sqlite3 connection while holding the connection Kysely
   * queries and transactions take, so a hot path can use its own prepared statements without
   * interleaving with another transaction. `fn` is synchronous: nothing else runs until it returns.
   */
  sqlite?: <T>(fn: (raw: SqliteDatabase.Database) => T) => Promise<T>;
  /** SQLite file databases: the write-ahead log's path (absent for `:memory:`). */
  walPath?: string;
  /**
   * SQLite with the worker checkpointer: a committer about to begin a write transaction calls this
   * first. It answers undefined, or — when the log has grown past its bound under writes that never
   * paused (see checkpointer.ts) — a promise to wait for while the log is emptied.
   */
  logGate?: () => Promise<void> | undefined;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  /** `postgres://...` / `postgresql://...`, or a SQLite file path (optionally `sqlite:` prefixed), or `:memory:`. */
  url: string;
  /** Run pending migrations on open (default true). */
  migrate?: boolean;
  /** PostgreSQL pool size (default 10). */
  poolSize?: number;
  /**
   * SQLite files: checkpoint the write-ahead log from a worker thread instead of inside commits on
   * this thread (see checkpointer.ts). The control plane turns it on.
   */
  checkpointInWorker?: boolean;
  /** Tuning of that checkpointer (tests). */
  checkpointer?: CheckpointerOptions;
}

export function dialectOf(url: string): DialectName {
  return /^postgres(ql)?:\/\//.test(url) ? 'postgres' : 'sqlite';
}

/** bigint (int8) and numeric columns come back from pg as strings; the schema uses JS numbers. */
function toSafeNumber(v: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new YunhaiError('InternalError', `integer ${v} exceeds 2^53`);
  return n;
}

/** Statements kept per SQLite connection (least recently used ones are dropped past this). */
const STATEMENT_CACHE_SIZE = 512;

/**
 * Kysely's SQLite driver calls `prepare()` for every query, so SQLite parses and plans the same SQL
 * again each time (about a tenth of the CPU of a small S3 PUT). Kysely compiles a query builder to
 * the same SQL text with parameters apart, so a cache keyed by that text hits nearly always. A
 * statement still being iterated (`busy`, a streamed query) is never handed out twice.
 */
export function withStatementCache(db: SqliteDatabase.Database, max = STATEMENT_CACHE_SIZE) {
  const cache = new Map<string, SqliteDatabase.Statement>();
  return {
    close: () => {
      cache.clear();
      db.close();
    },
    prepare(sql: string): SqliteDatabase.Statement {
      const hit = cache.get(sql);
      if (hit && !hit.busy) {
        // Map order is insertion order: re-inserting keeps the most recently used last.
        cache.delete(sql);
        cache.set(sql, hit);
        return hit;
      }
      const stmt = db.prepare(sql);
      if (hit) return stmt;
      if (cache.size >= max) cache.delete(cache.keys().next().value as string);
      cache.set(sql, stmt);
      return stmt;
    },
  };
}

export async function openDatabase(opts: DatabaseOptions): Promise<Database> {
  const dialect = dialectOf(opts.url);
  let db: Kysely<Schema>;
  let raw: SqliteDatabase.Database | undefined;
  let walPath: string | undefined;
  let checkpointer: Checkpointer | undefined;
  if (dialect === 'postgres') {
    const pool = new pg.Pool({
      connectionString: opts.url,
      max: opts.poolSize ?? 10,
      types: {
        getTypeParser: ((oid: number, format?: string) =>
          oid === 20
            ? toSafeNumber
            : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
      },
    });
    // An idle pooled connection that the server closes (restart, failover, pg_terminate_backend)
    // raises 'error' on the pool; unheard, that would crash the process. The pool drops the client
    // and the next query opens a new one.
    pool.on('error', () => {});
    db = new Kysely<Schema>({ dialect: new PostgresDialect({ pool }) });
  } else {
    const file = opts.url.replace(/^sqlite:/, '');
    const sqlite = new SqliteDatabase(file);
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('synchronous = NORMAL');
    sqlite.pragma('foreign_keys = ON');
    sqlite.pragma('busy_timeout = 5000');
    db = new Kysely<Schema>({ dialect: new SqliteDialect({ database: withStatementCache(sqlite) }) });
    raw = sqlite;
    if (!sqlite.memory) walPath = `${sqlite.name}-wal`;
    if (!sqlite.memory && opts.checkpointInWorker) {
      sqlite.pragma('wal_autocheckpoint = 0');
      // A log that starts over is cut back to this size (SQLite never shrinks it otherwise).
      sqlite.pragma(`journal_size_limit = ${WAL_KEEP_BYTES}`);
      checkpointer = startCheckpointer(sqlite.name, opts.checkpointer);
    }
  }
  const handle: Database = {
    db,
    dialect,
    tx: (fn) => db.transaction().execute(fn),
    ping: async () => {
      await db.selectFrom('settings').select('key').limit(1).execute();
    },
    close: async () => {
      await checkpointer?.stop();
      await db.destroy();
    },
    ...(raw ? { sqlite: onConnection(db, raw) } : {}),
    ...(walPath ? { walPath } : {}),
    ...(checkpointer ? { logGate: logGateOf(checkpointer) } : {}),
  };
  if (opts.migrate !== false) await migrate(handle);
  return handle;
}

/**
 * `Database.logGate`: a restart while the checkpointer says one is due (it stays due until one
 * succeeds); callers during a restart share it (`restart()` runs one at a time).
 */
function logGateOf(checkpointer: Checkpointer) {
  return () => (checkpointer.due ? checkpointer.restart().then(() => {}) : undefined);
}

/** `Database.sqlite`: `fn` on the raw connection, under Kysely's single-connection lock. */
function onConnection(db: Kysely<Schema>, raw: SqliteDatabase.Database) {
  return <T>(fn: (r: SqliteDatabase.Database) => T): Promise<T> =>
    db.connection().execute(async () => fn(raw));
}

export async function migrate(handle: Database): Promise<string[]> {
  // Migrations are named by number but written in parallel by different services and may land out
  // of order (0017 before 0016); each touches only its own tables and columns, so a database that
  // already ran a later one still takes an earlier one that arrives afterwards.
  const migrator = new Migrator({
    db: handle.db,
    provider: migrationProvider,
    allowUnorderedMigrations: true,
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw error;
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

/** True when `e` is a unique-constraint violation in either dialect. */
export function isUniqueViolation(e: unknown): boolean {
  const err = e as { code?: string } | null;
  return (
    err?.code === '23505' ||
    err?.code === 'SQLITE_CONSTRAINT_UNIQUE' ||
    err?.code === 'SQLITE_CONSTRAINT_PRIMARYKEY'
  );
}
