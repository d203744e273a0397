/**
 * Statements prepared once per raw SQLite connection, for hot paths that run on `Database.sqlite`
 * instead of the query builder (the object commit and version reads, the queue group commit):
 * building and compiling a Kysely query costs about as much CPU as SQLite answering it.
 */
import type SqliteDatabase from 'better-sqlite3';

type Raw = SqliteDatabase.Database;

const STATEMENTS = new WeakMap<Raw, Map<string, SqliteDatabase.Statement>>();

/**
 * `sql` prepared once per connection. Callers use fixed SQL texts (a handful per call site), so the
 * map stays small; statements are run to completion (`get`, `all`, `run`), never left iterating.
 */
export function prepared(db: Raw, sql: string): SqliteDatabase.Statement {
  let map = STATEMENTS.get(db);
  if (!map) {
    map = new Map();
    STATEMENTS.set(db, map);
  }
  let st = map.get(sql);
  if (!st) {
    st = db.prepare(sql);
    map.set(sql, st);
  }
  return st;
}
