import SqliteDatabase from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { withStatementCache } from './database.js';

describe('SQLite statement cache', () => {
  const open = () => {
    const raw = new SqliteDatabase(':memory:');
    raw.exec('create table t (id integer primary key, v text)');
    return raw;
  };

  it('hands back the same prepared statement for the same SQL', () => {
    const raw = open();
    const db = withStatementCache(raw);
    const a = db.prepare('insert into t (v) values (?)');
    a.run('x');
    const b = db.prepare('insert into t (v) values (?)');
    expect(b).toBe(a);
    b.run('y');
    expect(db.prepare('select count(*) as n from t').get()).toEqual({ n: 2 });
    db.close();
    expect(raw.open).toBe(false);
  });

  it('never shares a statement that is still iterating', () => {
    const db = withStatementCache(open());
    db.prepare('insert into t (v) values (?)').run('a');
    db.prepare('insert into t (v) values (?)').run('b');
    const sql = 'select v from t order by id';
    const it1 = db.prepare(sql).iterate() as IterableIterator<{ v: string }>;
    expect(it1.next().value).toEqual({ v: 'a' });
    // The cached statement is busy: a fresh one runs the same SQL alongside.
    expect(db.prepare(sql).all()).toEqual([{ v: 'a' }, { v: 'b' }]);
    expect(it1.next().value).toEqual({ v: 'b' });
    it1.return?.();
    db.close();
  });

  it('drops the least recently used statement past its size', () => {
    const db = withStatementCache(open(), 2);
    const s1 = db.prepare('select 1');
    const s2 = db.prepare('select 2');
    expect(db.prepare('select 1')).toBe(s1); // 1 is now the most recent
    db.prepare('select 3'); // evicts 2
    expect(db.prepare('select 1')).toBe(s1);
    expect(db.prepare('select 2')).not.toBe(s2);
    db.close();
  });
});
