import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { type FileHandle, mkdir, open, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { BlobNotFoundError, type BlobStore, type PutBlobResult } from './blob-store.js';

const ID = /^[0-9a-f]{32}$/;
/** Coalesce small network chunks into writes of about this size (fewer syscalls). */
const WRITE_BATCH = 256 * 1024;
/** Reads stream in chunks of this size: a 1 MiB object leaves in one read and one socket write. */
const READ_CHUNK = 1024 * 1024;

export interface FsBlobStoreOptions {
  /** Directory of the store, normally `<dataDir>/blobs`. */
  dir: string;
  /**
   * fsync the directory after each rename so the new name survives power loss (default true).
   * A process crash never needs it; turning it off trades power-loss durability for speed.
   */
  syncDirectories?: boolean;
}

/**
 * Blobs as files: `<dir>/<id[0..2]>/<id>`, ids of 128 random bits. A put creates its file under
 * its final name at once and streams into it; only the metadata commit that follows a successful
 * put makes the id known, so a blob that is still being written (or was cut short by a crash) is
 * never read: it is an orphan, skipped by `list` while in flight in this process and swept after
 * a restart. Durability of an acknowledged put, kill -9 and power loss alike, needs the name and
 * the bytes on disk before the commit: the directory is fsynced as soon as the file exists (while
 * the body is still arriving, so that sync costs no time on the put's path) and the file is
 * fdatasynced after its last write; `put` resolves after both. There is no rename: one journal
 * commit less than temp file + rename, and no second directory change to sync.
 * (`<dir>/tmp` only holds temp files of older versions, removed by `removeStaleTemps`.)
 */
export function createFsBlobStore(opts: FsBlobStoreOptions): BlobStore {
  const { dir } = opts;
  const syncDirs = opts.syncDirectories ?? true;
  const tmpDir = join(dir, 'tmp');
  mkdirSync(tmpDir, { recursive: true, mode: 0o700 });
  const madeDirs = new Set<string>();
  /** Ids of puts in progress: their files exist but must not look like orphans. */
  const writing = new Set<string>();

  const pathOf = (id: string) => {
    if (!ID.test(id)) throw new BlobNotFoundError(id);
    return join(dir, id.slice(0, 2), id);
  };

  /** A stored blob opened for reading; BlobNotFoundError when there is none. */
  async function openBlob(id: string): Promise<FileHandle> {
    try {
      return await open(pathOf(id), 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new BlobNotFoundError(id);
      throw e;
    }
  }

  async function syncDir(path: string) {
    const fh = await open(path, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  }

  /**
   * Writes the source in batches of about WRITE_BATCH bytes, one write in flight while the next
   * batch is read (and hashed by the caller's tap), so receiving and writing overlap.
   */
  async function writeAll(fh: FileHandle, source: AsyncIterable<Uint8Array>, signal?: AbortSignal) {
    let size = 0;
    let batch: Uint8Array[] = [];
    let batchBytes = 0;
    let inFlight: Promise<unknown> | undefined;
    const flush = async () => {
      const out = batch;
      batch = [];
      batchBytes = 0;
      if (inFlight) await inFlight;
      if (out.length === 0) return;
      inFlight = out.length === 1 ? fh.write(out[0]!) : fh.writev(out);
      // Seen by the next flush (or the final await); an early failure must not go unhandled.
      inFlight.catch(() => {});
    };
    try {
      for await (const chunk of source) {
        signal?.throwIfAborted();
        if (chunk.length === 0) continue;
        size += chunk.length;
        batch.push(chunk);
        batchBytes += chunk.length;
        if (batchBytes >= WRITE_BATCH) await flush();
      }
      await flush();
      await inFlight;
    } catch (e) {
      await inFlight?.catch(() => {});
      throw e;
    }
    signal?.throwIfAborted();
    return size;
  }

  return {
    async put(source, putOpts = {}): Promise<PutBlobResult> {
      const id = randomBytes(16).toString('hex');
      const sub = join(dir, id.slice(0, 2));
      const final = join(sub, id);
      if (!madeDirs.has(sub)) {
        await mkdir(sub, { recursive: true, mode: 0o700 });
        // A new subdirectory's own name must be durable too (once per directory and process).
        if (syncDirs) await syncDir(dir);
        madeDirs.add(sub);
      }
      writing.add(id);
      try {
        const fh = await open(final, 'wx', 0o600);
        // The new name is synced while the body arrives; ignored here, awaited below.
        const nameSynced = syncDirs ? syncDir(sub) : Promise.resolve();
        nameSynced.catch(() => {});
        let closed = false;
        try {
          const size = await writeAll(fh, source, putOpts.signal);
          await fh.datasync();
          closed = true;
          await fh.close();
          await nameSynced;
          return { id, size };
        } catch (e) {
          if (!closed) await fh.close().catch(() => {});
          await nameSynced.catch(() => {});
          await rm(final, { force: true });
          throw e;
        }
      } finally {
        writing.delete(id);
      }
    },

    async get(id, range) {
      const fh = await openBlob(id);
      const stream: Readable = fh.createReadStream({
        highWaterMark: READ_CHUNK,
        ...(range ? { start: range.start, end: range.end } : {}),
      });
      return stream;
    },

    async read(id, range) {
      const fh = await openBlob(id);
      try {
        const out = Buffer.allocUnsafe(range.end - range.start + 1);
        let n = 0;
        while (n < out.length) {
          const { bytesRead } = await fh.read(out, n, out.length - n, range.start + n);
          if (bytesRead === 0) throw new BlobNotFoundError(id);
          n += bytesRead;
        }
        return out;
      } finally {
        await fh.close();
      }
    },

    async size(id) {
      try {
        return (await stat(pathOf(id))).size;
      } catch (e) {
        if (e instanceof BlobNotFoundError || (e as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw e;
      }
    },

    async delete(id) {
      if (!ID.test(id)) return;
      await rm(pathOf(id), { force: true });
    },

    async *list({ writtenBefore }) {
      let subs: string[];
      try {
        subs = await readdir(dir);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw e;
      }
      for (const sub of subs) {
        if (!/^[0-9a-f]{2}$/.test(sub)) continue;
        let names: string[];
        try {
          names = await readdir(join(dir, sub));
        } catch {
          continue;
        }
        for (const name of names) {
          if (!ID.test(name) || writing.has(name)) continue;
          const st = await stat(join(dir, sub, name)).catch(() => null);
          if (st && st.mtimeMs < writtenBefore) yield name;
        }
      }
    },

    async removeStaleTemps(startedBefore) {
      let removed = 0;
      for (const name of await readdir(tmpDir).catch(() => [] as string[])) {
        const p = join(tmpDir, name);
        const st = await stat(p).catch(() => null);
        if (st && st.mtimeMs < startedBefore) {
          await rm(p, { force: true });
          removed++;
        }
      }
      return removed;
    },
  };
}
