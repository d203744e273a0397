/**
 * Durability shared by concurrent writers on SQLite. The connection runs `synchronous = NORMAL`: a
 * commit survives kill -9 of the process once it is in the OS page cache, but not power loss. A
 * writer that must survive power loss too awaits `durable()`, which resolves after an fdatasync()
 * of the write-ahead log that started after the call — so every commit made before the call is on
 * disk. One sync runs at a time, in libuv's thread pool (the event loop keeps committing the next
 * group meanwhile); callers arriving during a sync share the next one. The object store's and the
 * queues' group commits both answer their writers through this.
 */
import { type FileHandle, open } from 'node:fs/promises';

export interface LogSync {
  /** Resolves once a sync that started after this call has finished. */
  durable(): Promise<void>;
  /**
   * Undefined when no sync is in flight; otherwise resolves when it has ended (its writers are
   * answered, and no later sync has started yet unless someone called `durable()` meanwhile).
   */
  idle(): Promise<void> | undefined;
  /** Syncs done so far (tests, benches). */
  readonly syncs: number;
  /** Waits for the sync in flight (its writers are answered), then releases the log's descriptor. */
  close(): Promise<void>;
}

/**
 * A shared sync of the WAL at `walPath` (undefined: nothing to sync, e.g. an in-memory database),
 * or of whatever `sync` does instead (tests).
 */
export function createLogSync(walPath: string | undefined, sync?: () => Promise<void>): LogSync {
  // The log keeps its inode for as long as a connection is open (ours is, for the process's life),
  // so one descriptor serves; before the log exists everything is in the main file, which SQLite
  // synced itself.
  let fh: FileHandle | undefined;
  const syncLog = async () => {
    if (!walPath) return;
    if (!fh) {
      try {
        fh = await open(walPath, 'r');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw e;
      }
    }
    await fh.datasync();
  };
  const doSync = sync ?? syncLog;
  let syncs = 0;
  let inFlight: Promise<void> | undefined;
  let waiting: { resolve: () => void; reject: (e: unknown) => void }[] = [];
  function start() {
    const batch = waiting;
    waiting = [];
    inFlight = doSync()
      .then(
        () => {
          syncs++;
          for (const w of batch) w.resolve();
        },
        (e) => {
          for (const w of batch) w.reject(e);
        },
      )
      .finally(() => {
        inFlight = undefined;
        if (waiting.length > 0) start();
      });
  }
  return {
    durable: () =>
      new Promise<void>((resolve, reject) => {
        waiting.push({ resolve, reject });
        if (!inFlight) start();
      }),
    idle: () =>
      inFlight?.then(
        () => {},
        () => {},
      ),
    get syncs() {
      return syncs;
    },
    async close() {
      while (inFlight) await inFlight.catch(() => {});
      await fh?.close().catch(() => {});
      fh = undefined;
    },
  };
}
