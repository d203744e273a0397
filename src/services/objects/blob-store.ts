import type { Readable } from 'node:stream';

/**
 * Where object bodies live. Metadata is in SQL; a blob is an immutable byte string with an
 * unguessable id. The contract every implementation keeps (blob-store.case.ts checks it):
 * - `put` resolves only once the bytes are durable, and a failed or aborted put leaves nothing
 *   readable behind: the caller commits metadata after `put`, so a crash can only orphan a blob,
 *   never expose a partial one;
 * - blobs are never modified, only deleted; `delete` of an absent blob is not an error;
 * - `list` reports blobs written before a time, so an orphan sweep never races an in-flight put.
 * Bodies stream both ways; nothing holds a whole blob in memory.
 */
export interface BlobStore {
  /** Streams `source` into a new blob and makes it durable. Throws (and keeps nothing) if the source fails. */
  put(source: AsyncIterable<Uint8Array>, opts?: { signal?: AbortSignal }): Promise<PutBlobResult>;
  /** Reads a blob, or the inclusive byte range `[start, end]` of it. Throws BlobNotFoundError if absent. */
  get(id: string, range?: { start: number; end: number }): Promise<Readable>;
  /**
   * Reads the inclusive byte range `[start, end]` of a blob into memory: for bodies small enough to
   * answer in one write, without a stream's reads and hand-offs. Throws BlobNotFoundError if absent,
   * and when the blob is shorter than the range (it was replaced or cut short). The Buffer may be
   * shared (blob-cache.ts keeps and hands out the same bytes): callers read it and never write to it.
   */
  read(id: string, range: { start: number; end: number }): Promise<Buffer>;
  /** Size in bytes, or null when there is no such blob. */
  size(id: string): Promise<number | null>;
  delete(id: string): Promise<void>;
  /** Ids of blobs written before `writtenBefore` (epoch ms), in no particular order. */
  list(opts: { writtenBefore: number }): AsyncIterable<string>;
  /** Removes leftovers of puts that never finished (started before `startedBefore`); answers how many. */
  removeStaleTemps(startedBefore: number): Promise<number>;
}

export interface PutBlobResult {
  id: string;
  size: number;
}

export class BlobNotFoundError extends Error {
  readonly blobId: string;
  constructor(id: string) {
    super(`blob ${id} does not exist`);
    this.name = 'BlobNotFoundError';
    this.blobId = id;
  }
}
