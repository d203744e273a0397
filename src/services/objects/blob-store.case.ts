import { createHash, randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlobNotFoundError, type BlobStore } from './blob-store.js';

async function readAll(s: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

async function* chunksOf(data: Buffer, size: number) {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

/**
 * The blob-store contract (blob-store.ts), run against every implementation
 * (fs-blob-store.test.ts, and later stores through the same call).
 */
export function runBlobStoreConformance(
  name: string,
  open: () => Promise<{ store: BlobStore; cleanup(): Promise<void>; tempCount(): Promise<number> }>,
) {
  describe(`blob store conformance: ${name}`, () => {
    let store: BlobStore;
    let cleanup: () => Promise<void>;
    let tempCount: () => Promise<number>;

    beforeAll(async () => {
      ({ store, cleanup, tempCount } = await open());
    });
    afterAll(async () => cleanup());

    it('stores a streamed body and reads back the same bytes', async () => {
      const data = randomBytes(1_000_003);
      const { id, size } = await store.put(chunksOf(data, 16_384));
      expect(size).toBe(data.length);
      expect(id).toMatch(/^[0-9a-f]{32}$/);
      expect((await readAll(await store.get(id))).equals(data)).toBe(true);
      expect(await store.size(id)).toBe(data.length);
      expect((await store.read(id, { start: 0, end: data.length - 1 })).equals(data)).toBe(true);
      expect((await store.read(id, { start: 17, end: 65_553 })).equals(data.subarray(17, 65_554))).toBe(true);
    });

    it('stores an empty body', async () => {
      const { id, size } = await store.put(chunksOf(Buffer.alloc(0), 1));
      expect(size).toBe(0);
      expect((await readAll(await store.get(id))).length).toBe(0);
    });

    it('reads inclusive byte ranges', async () => {
      const data = randomBytes(5000);
      const { id } = await store.put(chunksOf(data, 777));
      for (const [start, end] of [
        [0, 0],
        [0, 4999],
        [100, 199],
        [4999, 4999],
      ] as const) {
        expect(
          (await readAll(await store.get(id, { start, end }))).equals(data.subarray(start, end + 1)),
        ).toBe(true);
      }
    });

    it('streams a large body without holding it in memory', async () => {
      const chunk = randomBytes(1024 * 1024);
      const total = 64;
      async function* gen() {
        for (let i = 0; i < total; i++) yield chunk;
      }
      const before = process.memoryUsage().rss;
      const { id, size } = await store.put(gen());
      expect(size).toBe(total * chunk.length);
      const h = createHash('md5');
      for await (const c of await store.get(id)) h.update(c as Buffer);
      const expected = createHash('md5');
      for (let i = 0; i < total; i++) expected.update(chunk);
      expect(h.digest('hex')).toBe(expected.digest('hex'));
      expect(process.memoryUsage().rss - before).toBeLessThan(48 * 1024 * 1024);
      await store.delete(id);
    });

    it('keeps nothing when the source fails or the put is aborted', async () => {
      const before = await tempCount();
      async function* failing() {
        yield Buffer.from('partial');
        throw new Error('connection reset');
      }
      await expect(store.put(failing())).rejects.toThrow('connection reset');
      const ac = new AbortController();
      async function* slow() {
        yield Buffer.from('a');
        ac.abort();
        yield Buffer.from('b');
      }
      await expect(store.put(slow(), { signal: ac.signal })).rejects.toThrow();
      expect(await tempCount()).toBe(before);
    });

    it('gives distinct unguessable ids to concurrent puts', async () => {
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => store.put(chunksOf(Buffer.from(`body ${i}`), 3))),
      );
      expect(new Set(results.map((r) => r.id)).size).toBe(20);
      for (const [i, r] of results.entries()) {
        expect((await readAll(await store.get(r.id))).toString()).toBe(`body ${i}`);
      }
    });

    it('deletes idempotently and reports missing blobs', async () => {
      const { id } = await store.put(chunksOf(Buffer.from('x'), 1));
      // Read once first: a store that keeps what it read must not answer it after the delete.
      expect((await store.read(id, { start: 0, end: 0 })).toString()).toBe('x');
      await store.delete(id);
      await store.delete(id);
      await expect(store.get(id)).rejects.toBeInstanceOf(BlobNotFoundError);
      await expect(store.get('../../etc/passwd')).rejects.toBeInstanceOf(BlobNotFoundError);
      await expect(store.read(id, { start: 0, end: 0 })).rejects.toBeInstanceOf(BlobNotFoundError);
      expect(await store.size(id)).toBeNull();
    });

    it('refuses to read past the end of a blob', async () => {
      const { id } = await store.put(chunksOf(Buffer.from('short'), 5));
      expect((await store.read(id, { start: 0, end: 4 })).toString()).toBe('short');
      await expect(store.read(id, { start: 0, end: 9 })).rejects.toBeInstanceOf(BlobNotFoundError);
      expect((await store.read(id, { start: 1, end: 3 })).toString()).toBe('hor');
    });

    it('lists only blobs written before the cut-off', async () => {
      const { id: old } = await store.put(chunksOf(Buffer.from('old'), 3));
      await new Promise((r) => setTimeout(r, 20));
      const cut = Date.now();
      await new Promise((r) => setTimeout(r, 20));
      const { id: fresh } = await store.put(chunksOf(Buffer.from('new'), 3));
      const listed = new Set<string>();
      for await (const id of store.list({ writtenBefore: cut })) listed.add(id);
      expect(listed.has(old)).toBe(true);
      expect(listed.has(fresh)).toBe(false);
    });
  });
}
