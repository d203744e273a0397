/**
 * A memory cache in front of a blob store's `read` (the path of bodies small enough to answer in
 * one write). A blob never changes once written (blob-store.ts), so a cached copy can never be
 * stale: a blob id is only reached through a metadata row, and a row that names a blob means the
 * blob exists. Deleting a blob drops its copy; a copy a lost race keeps alive is never asked for
 * again and ages out.
 *
 * What it saves, measured with bench/s3 (docs/s3-performance.md): a 1 MiB GET from a file costs
 * three thread-pool round trips (open, read, close) and a 1 MiB copy out of the page cache; with
 * the copy in memory the server's CPU per 1 MiB GET fell from 1.5-2.0 ms to ~0.85 ms.
 *
 * Bounded: at most `maxBytes` in all, least recently read dropped first, and only reads that start
 * at the beginning of a blob and are at most `maxBlobBytes` long are kept (a prefix of a blob
 * answers every range inside it). Streams (`get`) and writes go straight to the store.
 */
import type { BlobStore } from './blob-store.js';

export interface ReadCacheOptions {
  /** Bytes kept in all (0 turns the cache off). */
  maxBytes: number;
  /** Longest read kept (default 1 MiB, the largest body GET answers in one write). */
  maxBlobBytes?: number;
}

export interface ReadCacheStats {
  hits: number;
  misses: number;
  bytes: number;
  readonly blobs: number;
}

/** `store` with its `read` answered from memory where it can; `stats` for tests and metrics. */
export function withReadCache(
  store: BlobStore,
  opts: ReadCacheOptions,
): BlobStore & { readonly cacheStats: ReadCacheStats } {
  const maxBlobBytes = opts.maxBlobBytes ?? 1024 * 1024;
  /** Blob id → a prefix of the blob; Map order is least recently read first. */
  const cached = new Map<string, Buffer>();
  const stats: ReadCacheStats = {
    hits: 0,
    misses: 0,
    bytes: 0,
    get blobs() {
      return cached.size;
    },
  };

  const drop = (id: string) => {
    const b = cached.get(id);
    if (!b) return;
    cached.delete(id);
    stats.bytes -= b.length;
  };
  const keep = (id: string, bytes: Buffer) => {
    drop(id);
    cached.set(id, bytes);
    stats.bytes += bytes.length;
    for (const oldest of cached.keys()) {
      if (stats.bytes <= opts.maxBytes) break;
      drop(oldest);
    }
  };

  return {
    put: (source, putOpts) => store.put(source, putOpts),
    get: (id, range) => store.get(id, range),
    size: (id) => store.size(id),
    list: (listOpts) => store.list(listOpts),
    removeStaleTemps: (startedBefore) => store.removeStaleTemps(startedBefore),
    cacheStats: stats,
    async read(id, range) {
      const hit = cached.get(id);
      if (hit && range.end < hit.length) {
        stats.hits++;
        // Most recently read goes last.
        cached.delete(id);
        cached.set(id, hit);
        return hit.subarray(range.start, range.end + 1);
      }
      stats.misses++;
      const bytes = await store.read(id, range);
      if (range.start === 0 && bytes.length <= maxBlobBytes && bytes.length <= opts.maxBytes) keep(id, bytes);
      return bytes;
    },
    async delete(id) {
      drop(id);
      await store.delete(id);
      // A read that started before the delete may have put the blob back meanwhile.
      drop(id);
    },
  };
}
