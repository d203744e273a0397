import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createLogSync } from './log-sync.js';

describe('log sync', () => {
  it('starts a sync at once, and writers arriving during it share the next one', async () => {
    const started: Array<() => void> = [];
    const log = createLogSync(undefined, () => new Promise<void>((r) => started.push(r)));
    const answered: string[] = [];
    const a = log.durable().then(() => answered.push('a'));
    expect(started).toHaveLength(1);
    // These arrive while the first sync runs: their commits may be after its start, so they wait.
    const b = log.durable().then(() => answered.push('b'));
    const c = log.durable().then(() => answered.push('c'));
    expect(started).toHaveLength(1);
    started[0]!();
    await a;
    expect(answered).toEqual(['a']);
    await new Promise((r) => setImmediate(r));
    expect(started).toHaveLength(2); // one sync for both
    started[1]!();
    await Promise.all([b, c]);
    expect(answered).toEqual(['a', 'b', 'c']);
    expect(log.syncs).toBe(2);
    await log.close();
  });

  it('rejects the writers of a failed sync, and the next sync serves new writers', async () => {
    let fail = true;
    const log = createLogSync(undefined, async () => {
      if (fail) throw new Error('EIO');
    });
    await expect(log.durable()).rejects.toThrow('EIO');
    fail = false;
    await expect(log.durable()).resolves.toBeUndefined();
    expect(log.syncs).toBe(1);
  });

  it('syncs a real log file, and does nothing before the log exists', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'yh-logsync-'));
    try {
      const log = createLogSync(join(dir, 'db-wal'));
      await log.durable(); // no file yet: nothing to sync
      writeFileSync(join(dir, 'db-wal'), 'frames');
      await log.durable();
      expect(log.syncs).toBe(2);
      await log.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
