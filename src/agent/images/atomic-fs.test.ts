import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { withFileLock, writeFileAtomic } from './atomic-fs.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'yunhai-atomic-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A pid that certainly belongs to no running process. */
function deadPid(): number {
  return spawnSync('true').pid!;
}

describe('writeFileAtomic', () => {
  it('replaces the content with the given mode and leaves no temp file', async () => {
    const dir = mkdtempSync(path.join(tmp, 'w-'));
    const file = path.join(dir, 'f');
    writeFileSync(file, 'old');
    await writeFileAtomic(file, 'new', 0o600);
    expect(readFileSync(file, 'utf8')).toBe('new');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir)).toEqual(['f']);
  });

  it('fails cleanly when the directory does not exist', async () => {
    await expect(writeFileAtomic(path.join(tmp, 'missing', 'f'), 'x')).rejects.toThrow(/ENOENT/);
  });
});

describe('withFileLock', () => {
  it('runs holders one after the other', async () => {
    const lock = path.join(tmp, 'serial.lock');
    const events: string[] = [];
    const holder = (name: string) =>
      withFileLock(
        lock,
        async () => {
          events.push(`${name} in`);
          await sleep(50);
          events.push(`${name} out`);
        },
        { pollMs: 10 },
      );
    await Promise.all([holder('a'), holder('b')]);
    expect(events).toEqual(['a in', 'a out', 'b in', 'b out']);
    expect(existsSync(lock)).toBe(false);
  });

  it('takes over a lock whose owner process is gone', async () => {
    const lock = path.join(tmp, 'stale.lock');
    writeFileSync(lock, `${deadPid()} abc\n`);
    expect(await withFileLock(lock, async () => 'ran', { timeoutMs: 1000 })).toBe('ran');
  });

  it('waits for a live owner and gives up at the timeout', async () => {
    const lock = path.join(tmp, 'live.lock');
    writeFileSync(lock, `${process.pid} someone-else\n`);
    await expect(withFileLock(lock, async () => 'ran', { timeoutMs: 100, pollMs: 20 })).rejects.toThrow(
      /timed out/,
    );
    expect(readFileSync(lock, 'utf8')).toBe(`${process.pid} someone-else\n`);
  });

  it('releases the lock when the holder throws', async () => {
    const lock = path.join(tmp, 'throw.lock');
    await expect(withFileLock(lock, async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(existsSync(lock)).toBe(false);
  });

  it('leaves a lock alone that another process took over meanwhile', async () => {
    const lock = path.join(tmp, 'taken.lock');
    await withFileLock(lock, async () => writeFileSync(lock, `${process.pid} new-owner\n`));
    expect(readFileSync(lock, 'utf8')).toBe(`${process.pid} new-owner\n`);
  });
});
