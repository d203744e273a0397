import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { startCheckpointer } from './checkpointer.js';
import { openDatabase } from './database.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('WAL checkpoints on a worker thread', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const tempDb = () => {
    const dir = mkdtempSync(join(tmpdir(), 'yh-ckpt-'));
    dirs.push(dir);
    return join(dir, 'test.db');
  };

  it('keeps the log bounded while commits on this thread never checkpoint', async () => {
    const file = tempDb();
    const db = new SqliteDatabase(file);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('wal_autocheckpoint = 0');
    db.exec('create table t (id integer primary key, body blob)');
    const ckpt = startCheckpointer(file, { intervalMs: 10, minBytes: 256 * 1024 });
    const insert = db.prepare('insert into t (body) values (?)');
    const chunk = Buffer.alloc(64 * 1024, 7);
    // 4 MiB written in 64 small transactions; without checkpoints the log would hold all of it.
    for (let i = 0; i < 64; i++) {
      insert.run(chunk);
      await sleep(15);
    }
    await ckpt.stop();
    expect(ckpt.lastError).toBeUndefined();
    expect(ckpt.checkpoints).toBeGreaterThan(0);
    expect(statSync(`${file}-wal`).size).toBeLessThan(2 * 1024 * 1024);
    expect((db.prepare('select count(*) as n from t').get() as { n: number }).n).toBe(64);
    db.close();
    // Everything is in the database file once the last connection closed.
    const again = new SqliteDatabase(file, { readonly: true });
    expect((again.prepare('select count(*) as n from t').get() as { n: number }).n).toBe(64);
    again.close();
  });

  it('empties a log that writes without a pause let grow, between two group commits', async () => {
    const file = tempDb();
    const database = await openDatabase({
      url: file,
      checkpointInWorker: true,
      checkpointer: { intervalMs: 5, minBytes: 256 * 1024, restartBytes: 1024 * 1024 },
    });
    await database.sqlite!((r) => r.exec('create table t (id integer primary key, body blob)'));
    const chunk = Buffer.alloc(16 * 1024, 7);
    // 48 MiB in commits separated only by a turn of the event loop, as a busy group commit runs
    // them; each asks the gate first, as the committers do.
    let largest = 0;
    let emptied = 0;
    for (let i = 0; i < 768; i++) {
      const gate = database.logGate!();
      if (gate) {
        await gate;
        emptied++;
      }
      await database.sqlite!((r) =>
        r.transaction(() => {
          for (let j = 0; j < 4; j++) r.prepare('insert into t (body) values (?)').run(chunk);
        })(),
      );
      await new Promise((r) => setImmediate(r));
      if (i % 16 === 0) largest = Math.max(largest, statSync(`${file}-wal`).size);
    }
    // Without the gate the log holds all 48 MiB; how soon the worker notices depends on the machine's
    // load, so the bound only asks that the log was emptied along the way.
    expect(emptied).toBeGreaterThan(1);
    expect(largest).toBeLessThan(36 * 1024 * 1024);
    const n = await database.sqlite!(
      (r) => (r.prepare('select count(*) as n from t').get() as { n: number }).n,
    );
    expect(n).toBe(768 * 4);
    await database.close();
  }, 60_000);

  it('is what a database opened for the control plane uses, and stops with it', async () => {
    const file = tempDb();
    const database = await openDatabase({ url: file, checkpointInWorker: true });
    const raw = await database.sqlite!((r) => r.pragma('wal_autocheckpoint', { simple: true }));
    expect(raw).toBe(0);
    await database.close();
  });
});
