import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Database, openDatabase } from '../../platform/db/database.js';
import { prepared } from '../../platform/db/prepared.js';
import { createGroupCommit } from './group-commit.js';

/** A sync the test finishes by hand, to see what is acknowledged before the log is durable. */
function manualSync() {
  const calls: (() => void)[] = [];
  return {
    sync: () => new Promise<void>((resolve) => calls.push(resolve)),
    calls,
    finish() {
      for (const c of calls.splice(0)) c();
    },
  };
}

const flushIo = () => new Promise((r) => setImmediate(r));

describe('group commit (SQLite)', () => {
  let dir: string;
  let database: Database;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'yunhai-group-commit-'));
    database = await openDatabase({ url: join(dir, 'db.sqlite'), migrate: false });
    await database.sqlite!((db) =>
      db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL UNIQUE)'),
    );
  });
  afterEach(async () => {
    await database.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const count = () =>
    database.sqlite!((db) => (db.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n);

  it('commits concurrent sends in one transaction and acknowledges them only after the log sync', async () => {
    const s = manualSync();
    const gc = createGroupCommit(database, { sync: s.sync });
    const acked: number[] = [];
    const sends = Array.from({ length: 20 }, (_, i) =>
      gc
        .run((db) => prepared(db, 'INSERT INTO t (v) VALUES (?)').run(`m${i}`), { durable: true })
        .then(() => acked.push(i)),
    );
    await flushIo();
    await flushIo();
    // Committed (visible to a reader) but not yet acknowledged: the sync has not finished.
    expect(await count()).toBe(20);
    expect(acked).toEqual([]);
    expect(gc.stats.groups).toBe(1);
    expect(gc.stats.ops).toBe(20);
    expect(s.calls.length).toBe(1);
    s.finish();
    await Promise.all(sends);
    expect(acked.length).toBe(20);
    expect(gc.stats.syncs).toBe(1);
  });

  it('answers operations that need no sync (receives, deletes) right after the commit', async () => {
    const s = manualSync();
    const gc = createGroupCommit(database, { sync: s.sync });
    const n = await gc.run((db) => prepared(db, 'INSERT INTO t (v) VALUES (?)').run('x').changes, {
      durable: false,
    });
    expect(n).toBe(1);
    expect(s.calls.length).toBe(0);
  });

  it('tells a durable operation it committed before the sync, and only if it committed', async () => {
    const s = manualSync();
    const gc = createGroupCommit(database, { sync: s.sync });
    const committed: string[] = [];
    let acked = false;
    const ins = (v: string) =>
      gc.run((db) => prepared(db, 'INSERT INTO t (v) VALUES (?)').run(v).lastInsertRowid, {
        durable: true,
        onCommit: (id) => committed.push(`${v}:${id}`),
      });
    const first = ins('a').then(() => {
      acked = true;
    });
    // A unique violation: rolled back, never reported as committed (its rejection is kept for later).
    const failing = ins('a').then(
      () => undefined,
      (e: unknown) => e,
    );
    await flushIo();
    await flushIo();
    expect(committed).toEqual(['a:1']);
    expect(await count()).toBe(1);
    expect(acked).toBe(false);
    expect(String(await failing)).toMatch(/UNIQUE/);
    s.finish();
    await first;
    expect(acked).toBe(true);
  });

  it('rolls back only the failing operation of a group', async () => {
    const gc = createGroupCommit(database, { sync: async () => {} });
    const ins = (v: string) =>
      gc.run((db) => prepared(db, 'INSERT INTO t (v) VALUES (?)').run(v), { durable: true });
    const results = await Promise.allSettled([
      ins('a'),
      gc.run(
        (db) => {
          prepared(db, 'INSERT INTO t (v) VALUES (?)').run('b');
          prepared(db, 'INSERT INTO t (v) VALUES (?)').run('a'); // unique violation: b goes too
        },
        { durable: true },
      ),
      ins('c'),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    const rows = await database.sqlite!((db) => db.prepare('SELECT v FROM t ORDER BY v').pluck().all());
    expect(rows).toEqual(['a', 'c']);
    expect(gc.stats.groups).toBe(1);
  });

  it('fails a one-statement operation alone without a savepoint and keeps the rest of its group', async () => {
    const gc = createGroupCommit(database, { sync: async () => {} });
    const ins = (v: string) =>
      gc.run((db) => prepared(db, 'INSERT INTO t (v) VALUES (?)').run(v).changes, {
        durable: true,
        oneStatement: true,
      });
    const results = await Promise.allSettled([
      ins('a'),
      // Two rows in one statement, the second a unique violation: SQLite undoes the whole statement.
      gc.run((db) => prepared(db, 'INSERT INTO t (v) VALUES (?), (?)').run('b', 'a'), {
        durable: true,
        oneStatement: true,
      }),
      ins('c'),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    const rows = await database.sqlite!((db) => db.prepare('SELECT v FROM t ORDER BY v').pluck().all());
    expect(rows).toEqual(['a', 'c']);
    expect(gc.stats.groups).toBe(1);
  });

  it('rejects a group of one that fails and leaves none of its writes', async () => {
    const gc = createGroupCommit(database, { sync: async () => {} });
    await gc.run((db) => prepared(db, 'INSERT INTO t (v) VALUES (?)').run('a'), { durable: true });
    await expect(
      gc.run(
        (db) => {
          prepared(db, 'INSERT INTO t (v) VALUES (?)').run('b');
          prepared(db, 'INSERT INTO t (v) VALUES (?)').run('a');
        },
        { durable: true },
      ),
    ).rejects.toThrow(/UNIQUE/);
    expect(await count()).toBe(1);
    // The connection is usable afterwards (no transaction left open).
    await gc.run((db) => prepared(db, 'INSERT INTO t (v) VALUES (?)').run('c'), { durable: false });
    expect(await count()).toBe(2);
  });

  it('makes commits that finish during a sync wait for the next sync', async () => {
    const s = manualSync();
    const gc = createGroupCommit(database, { sync: s.sync });
    const first = gc.run((db) => prepared(db, 'INSERT INTO t (v) VALUES (?)').run('1'), { durable: true });
    await flushIo();
    expect(s.calls.length).toBe(1);
    let secondDone = false;
    const second = gc
      .run((db) => prepared(db, 'INSERT INTO t (v) VALUES (?)').run('2'), { durable: true })
      .then(() => {
        secondDone = true;
      });
    await flushIo();
    s.finish(); // the first sync started before the second commit: it does not cover it
    await first;
    await flushIo();
    expect(secondDone).toBe(false);
    expect(s.calls.length).toBe(1);
    s.finish();
    await second;
    expect(gc.stats.syncs).toBe(2);
  });

  it('answers the senders of a sync in flight before close() returns', async () => {
    const s = manualSync();
    const gc = createGroupCommit(database, { sync: s.sync });
    let acked = false;
    const send = gc
      .run((db) => prepared(db, 'INSERT INTO t (v) VALUES (?)').run('x'), { durable: true })
      .then(() => {
        acked = true;
      });
    await flushIo();
    let closed = false;
    const closing = gc.close().then(() => {
      closed = true;
    });
    await flushIo();
    expect(closed).toBe(false);
    s.finish();
    await closing;
    await send;
    expect(acked).toBe(true);
  });

  it('waits for a log restart the database asks for before it begins the next group', async () => {
    const gc = createGroupCommit(database, { sync: async () => {} });
    let restart: () => void = () => {};
    let asked = 0;
    database.logGate = () => {
      asked++;
      return asked === 1 ? new Promise<void>((r) => (restart = r)) : undefined;
    };
    const send = gc.run((db) => prepared(db, 'INSERT INTO t (v) VALUES (?)').run('x'), { durable: true });
    await flushIo();
    await flushIo();
    expect(await count()).toBe(0);
    restart();
    await send;
    expect(await count()).toBe(1);
    // Later groups go straight on when no restart is due.
    await gc.run((db) => prepared(db, 'INSERT INTO t (v) VALUES (?)').run('y'), { durable: false });
    expect(asked).toBe(2);
  });

  it('syncs the real write-ahead log by default', async () => {
    const gc = createGroupCommit(database);
    await gc.run((db) => prepared(db, 'INSERT INTO t (v) VALUES (?)').run('durable'), { durable: true });
    expect(gc.stats.syncs).toBe(1);
    await gc.close();
  });

  it('serialises with Kysely transactions on the same connection', async () => {
    const gc = createGroupCommit(database, { sync: async () => {} });
    let inside = false;
    const tx = database.tx(async (trx) => {
      inside = true;
      await new Promise((r) => setTimeout(r, 20));
      await trx
        .selectFrom('t' as never)
        .selectAll()
        .execute();
      inside = false;
    });
    await flushIo();
    const sawInside = await gc.run(() => inside, { durable: false });
    await tx;
    expect(sawInside).toBe(false);
  });
});
