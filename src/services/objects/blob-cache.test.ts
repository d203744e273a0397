import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { withReadCache } from './blob-cache.js';
import { runBlobStoreConformance } from './blob-store.case.js';
import { BlobNotFoundError, type BlobStore } from './blob-store.js';
import { createFsBlobStore } from './fs-blob-store.js';

async function* once(data: Buffer) {
  yield data;
}

runBlobStoreConformance('fs + read cache', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'yunhai-blobs-'));
  return {
    store: withReadCache(createFsBlobStore({ dir }), { maxBytes: 1024 * 1024 }),
    tempCount: async () =>
      readdirSync(dir, { recursive: true }).filter((f) => /[0-9a-f]{32}/.test(String(f))).length,
    cleanup: async () => rmSync(dir, { recursive: true, force: true }),
  };
});

/** An fs store in a temp dir that counts the reads reaching it. */
function countedStore() {
  const dir = mkdtempSync(join(tmpdir(), 'yunhai-blobs-'));
  const inner = createFsBlobStore({ dir });
  const counted = { reads: 0 };
  const store: BlobStore = {
    ...inner,
    read: (id, range) => {
      counted.reads++;
      return inner.read(id, range);
    },
  };
  return { store, counted, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

describe('blob read cache', () => {
  it('answers repeated reads, and ranges inside what it read, from memory', async () => {
    const { store, counted, cleanup } = countedStore();
    const cache = withReadCache(store, { maxBytes: 1 << 20 });
    const data = Buffer.from('0123456789');
    const { id } = await cache.put(once(data));
    expect((await cache.read(id, { start: 0, end: 9 })).equals(data)).toBe(true);
    expect((await cache.read(id, { start: 0, end: 9 })).equals(data)).toBe(true);
    expect((await cache.read(id, { start: 3, end: 5 })).toString()).toBe('345');
    expect(counted.reads).toBe(1);
    expect(cache.cacheStats).toMatchObject({ hits: 2, misses: 1, bytes: 10, blobs: 1 });
    cleanup();
  });

  it('reads past what it holds from the store, and keeps the longer prefix', async () => {
    const { store, counted, cleanup } = countedStore();
    const cache = withReadCache(store, { maxBytes: 1 << 20 });
    const { id } = await cache.put(once(Buffer.from('abcdefgh')));
    expect((await cache.read(id, { start: 0, end: 2 })).toString()).toBe('abc');
    expect((await cache.read(id, { start: 2, end: 7 })).toString()).toBe('cdefgh');
    // A read not from the start is not kept; one from the start replaces the shorter copy.
    expect((await cache.read(id, { start: 0, end: 7 })).toString()).toBe('abcdefgh');
    expect((await cache.read(id, { start: 5, end: 7 })).toString()).toBe('fgh');
    expect(counted.reads).toBe(3);
    expect(cache.cacheStats.bytes).toBe(8);
    cleanup();
  });

  it('stays within its byte budget, dropping the least recently read first', async () => {
    const { store, counted, cleanup } = countedStore();
    const cache = withReadCache(store, { maxBytes: 250, maxBlobBytes: 200 });
    const ids: string[] = [];
    for (const fill of ['a', 'b', 'c']) ids.push((await cache.put(once(Buffer.alloc(100, fill)))).id);
    const [a, b, c] = ids as [string, string, string];
    await cache.read(a, { start: 0, end: 99 });
    await cache.read(b, { start: 0, end: 99 });
    await cache.read(a, { start: 0, end: 99 }); // a is now the most recent
    await cache.read(c, { start: 0, end: 99 }); // over budget: b goes
    expect(cache.cacheStats).toMatchObject({ bytes: 200, blobs: 2 });
    const before = counted.reads;
    await cache.read(a, { start: 0, end: 99 });
    await cache.read(c, { start: 0, end: 99 });
    expect(counted.reads).toBe(before);
    await cache.read(b, { start: 0, end: 99 });
    expect(counted.reads).toBe(before + 1);
    // Longer than maxBlobBytes: answered, not kept.
    const { id: big } = await cache.put(once(Buffer.alloc(201, 'd')));
    await cache.read(big, { start: 0, end: 200 });
    await cache.read(big, { start: 0, end: 200 });
    expect(counted.reads).toBe(before + 3);
    expect(cache.cacheStats.bytes).toBeLessThanOrEqual(250);
    cleanup();
  });

  it('forgets a blob when it is deleted', async () => {
    const { store, cleanup } = countedStore();
    const cache = withReadCache(store, { maxBytes: 1 << 20 });
    const { id } = await cache.put(once(Buffer.from('gone soon')));
    await cache.read(id, { start: 0, end: 8 });
    await cache.delete(id);
    expect(cache.cacheStats).toMatchObject({ bytes: 0, blobs: 0 });
    await expect(cache.read(id, { start: 0, end: 8 })).rejects.toBeInstanceOf(BlobNotFoundError);
    cleanup();
  });

  it('keeps nothing with a budget of 0', async () => {
    const { store, counted, cleanup } = countedStore();
    const cache = withReadCache(store, { maxBytes: 0 });
    const { id } = await cache.put(once(Buffer.from('x')));
    await cache.read(id, { start: 0, end: 0 });
    await cache.read(id, { start: 0, end: 0 });
    expect(counted.reads).toBe(2);
    expect(cache.cacheStats.blobs).toBe(0);
    cleanup();
  });
});
