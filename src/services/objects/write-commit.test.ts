import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type AuditInput, appendAudit, appendAuditAlone, verifyAudit } from '../../platform/audit/audit.js';
import { type Database, openDatabase } from '../../platform/db/database.js';
import { createWriteCommitter, type FastWrite } from './write-commit.js';

describe('object write commits on SQLite', () => {
  let dir: string;
  let database: Database;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'yunhai-write-commit-'));
    database = await openDatabase({ url: join(dir, 'db.sqlite'), migrate: false });
    await sql`create table t (k text primary key, v integer not null)`.execute(database.db);
  });
  afterEach(async () => {
    await database.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const insert = (k: string, v: number) => async (trx: Parameters<Parameters<Database['tx']>[0]>[0]) => {
    await sql`insert into t (k, v) values (${k}, ${v})`.execute(trx);
    return k;
  };
  const rows = async () =>
    (await sql<{ k: string }>`select k from t order by k`.execute(database.db)).rows.map((r) => r.k);

  it('runs concurrent writes in one transaction and answers each only after one shared log sync', async () => {
    let releaseSync: () => void = () => {};
    let syncsStarted = 0;
    const w = createWriteCommitter(database, {
      sync: () => {
        syncsStarted++;
        return new Promise<void>((r) => {
          releaseSync = r;
        });
      },
    });
    const answered: string[] = [];
    const all = ['a', 'b', 'c', 'd'].map((k, i) => w.tx(insert(k, i)).then((v) => answered.push(v)));
    // Committed (visible) but not answered until the sync that covers them is done.
    for (let i = 0; i < 50 && syncsStarted === 0; i++) await new Promise((r) => setTimeout(r, 5));
    expect(await rows()).toEqual(['a', 'b', 'c', 'd']);
    expect(answered).toEqual([]);
    expect(w.stats).toMatchObject({ groups: 1, writes: 4 });
    releaseSync();
    await Promise.all(all);
    expect(answered.sort()).toEqual(['a', 'b', 'c', 'd']);
    expect(syncsStarted).toBe(1);
    await w.close();
  });

  it('holds writes that arrive during a sync and commits them as one group when it ends', async () => {
    const releases: (() => void)[] = [];
    const w = createWriteCommitter(database, {
      sync: () => new Promise<void>((r) => releases.push(r)),
    });
    const first = w.tx(insert('a', 0));
    for (let i = 0; i < 50 && releases.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
    // Three writes in three separate turns while the first sync is in flight: none commits yet
    // (none could be acknowledged before the next sync anyway).
    const later: Promise<string>[] = [];
    for (const k of ['b', 'c', 'd']) {
      later.push(w.tx(insert(k, 1)));
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(await rows()).toEqual(['a']);
    expect(w.stats).toMatchObject({ groups: 1, writes: 1 });
    releases[0]!();
    await first;
    for (let i = 0; i < 50 && releases.length < 2; i++) await new Promise((r) => setTimeout(r, 5));
    expect(await rows()).toEqual(['a', 'b', 'c', 'd']);
    expect(w.stats).toMatchObject({ groups: 2, writes: 4 });
    releases[1]!();
    expect((await Promise.all(later)).sort()).toEqual(['b', 'c', 'd']);
    await w.close();
  });

  it('rolls back only the failing write of a group', async () => {
    const w = createWriteCommitter(database, { sync: async () => {} });
    const results = await Promise.allSettled([
      w.tx(insert('x', 1)),
      w.tx(async (trx) => {
        await insert('y', 2)(trx);
        await insert('x', 3)(trx); // duplicate key: this write fails, its 'y' goes too
      }),
      w.tx(insert('z', 4)),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(await rows()).toEqual(['x', 'z']);
    await w.close();
  });

  it('answers a write with the error of a failed sync, and later writes sync again', async () => {
    let fail = true;
    const w = createWriteCommitter(database, {
      sync: async () => {
        if (fail) throw new Error('disk gone');
      },
    });
    await expect(w.tx(insert('p', 1))).rejects.toThrow('disk gone');
    fail = false;
    await expect(w.tx(insert('q', 2))).resolves.toBe('q');
    await w.close();
  });

  it('syncs the real write-ahead log by default', async () => {
    const w = createWriteCommitter(database);
    await Promise.all([w.tx(insert('m', 1)), w.tx(insert('n', 2))]);
    expect(w.stats.syncs).toBeGreaterThanOrEqual(1);
    await w.close();
  });
});

describe('fast writes and the group audit chain on SQLite', () => {
  let dir: string;
  let database: Database;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'yunhai-write-commit-'));
    database = await openDatabase({ url: join(dir, 'db.sqlite') });
    await sql`create table t (k text primary key, v integer not null)`.execute(database.db);
  });
  afterEach(async () => {
    await database.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const event = (n: string): AuditInput => ({
    tenantId: null,
    principal: 'test',
    action: `test:${n}`,
    resource: n,
    outcome: 'success',
    sourceIp: '127.0.0.1',
    requestId: `req-${n}`,
  });
  const fastInsert = (k: string) => async (w: FastWrite) => {
    w.prepare('insert into t (k, v) values (?, 1)').run(k);
    w.audit(event(k));
    return k;
  };
  const actions = async () =>
    (await database.db.selectFrom('audit_events').select('action').orderBy('seq').execute()).map(
      (r) => r.action,
    );

  it('chains the audit rows of a group of fast and query-builder writes as appendAudit would, and verify passes', async () => {
    const w = createWriteCommitter(database, { sync: async () => {} });
    await appendAuditAlone(database, event('before'));
    const results = await Promise.allSettled([
      w.fast!(fastInsert('a')),
      w.fast!(fastInsert('b')),
      w.tx(async (trx) => {
        await sql`insert into t (k, v) values ('c', 1)`.execute(trx);
        await appendAudit(trx, event('c'));
      }),
      w.fast!(fastInsert('d')),
      // Fails after appending: its row is rolled back and the chain continues from 'd'.
      w.fast!(async (fw) => {
        fw.audit(event('lost'));
        throw new Error('precondition');
      }),
      w.fast!(fastInsert('e')),
    ]);
    expect(results.map((r) => r.status)).toEqual([
      'fulfilled',
      'fulfilled',
      'fulfilled',
      'fulfilled',
      'rejected',
      'fulfilled',
    ]);
    expect(w.stats).toMatchObject({ groups: 1, writes: 6 });
    expect(await actions()).toEqual(['before', 'a', 'b', 'c', 'd', 'e'].map((n) => `test:${n}`));
    await appendAuditAlone(database, event('after'));
    const v = await verifyAudit(database.db);
    expect(v).toMatchObject({ ok: true, checked: 7, headSeq: 7 });
    await w.close();
  });

  it('keeps the chain when a query-builder write that appended fails between fast writes', async () => {
    const w = createWriteCommitter(database, { sync: async () => {} });
    const results = await Promise.allSettled([
      w.fast!(fastInsert('a')),
      w.fast!(fastInsert('b')),
      w.tx(async (trx) => {
        await appendAudit(trx, event('gone'));
        throw new Error('refused after appending');
      }),
      w.fast!(fastInsert('c')),
      w.tx(async (trx) => {
        await appendAudit(trx, event('d'));
      }),
      w.fast!(fastInsert('e')),
    ]);
    expect(results.map((r) => r.status)).toEqual([
      'fulfilled',
      'fulfilled',
      'rejected',
      'fulfilled',
      'fulfilled',
      'fulfilled',
    ]);
    expect(w.stats).toMatchObject({ groups: 1, writes: 6 });
    expect(await actions()).toEqual(['a', 'b', 'c', 'd', 'e'].map((n) => `test:${n}`));
    expect(await verifyAudit(database.db)).toMatchObject({ ok: true, checked: 5, headSeq: 5 });
    await w.close();
  });

  it('writes nothing of a lone fast write that fails, and the chain stays valid', async () => {
    const w = createWriteCommitter(database, { sync: async () => {} });
    await expect(
      w.fast!(async (fw) => {
        fw.prepare("insert into t (k, v) values ('x', 1)").run();
        fw.audit(event('x'));
        throw new Error('refused');
      }),
    ).rejects.toThrow('refused');
    await w.fast!(fastInsert('y'));
    expect(await actions()).toEqual(['test:y']);
    expect((await verifyAudit(database.db)).ok).toBe(true);
    await w.close();
  });

  it('answers fast writes only after the shared log sync', async () => {
    let release: () => void = () => {};
    const w = createWriteCommitter(database, {
      sync: () =>
        new Promise<void>((r) => {
          release = r;
        }),
    });
    let answered = 0;
    const all = ['p', 'q'].map((k) => w.fast!(fastInsert(k)).then(() => answered++));
    for (let i = 0; i < 50 && (await actions()).length < 2; i++) await new Promise((r) => setTimeout(r, 5));
    expect(answered).toBe(0);
    release();
    await Promise.all(all);
    expect(answered).toBe(2);
    await w.close();
  });
});
