/**
 * WAL checkpoints off the event loop. SQLite's automatic checkpoint runs inside whichever commit
 * pushes the log past its threshold — on the main thread, which then stalls every request for as
 * long as copying pages back into the database and syncing it takes (tens of milliseconds seen on
 * a busy disk, see docs/queue-throughput.md). The control plane turns that off
 * (`wal_autocheckpoint = 0`) and checkpoints from a second connection on a worker thread instead:
 * PASSIVE checkpoints never block the writer, and once one has copied every frame the next commit
 * starts the log over from the beginning, so its size stays bounded as before.
 *
 * Under sustained writes a PASSIVE checkpoint never catches up (commits add frames while it copies),
 * so the log never starts over and grows without end: 191 MiB after 30 s of 4 KiB PUTs at ~650/s
 * (docs/s3-performance.md). Once a PASSIVE checkpoint leaves `restartBytes` or more in the log, the
 * checkpointer is `due`: the next group commit calls `restart()` before it begins (see
 * `Database.logGate`), and the worker runs a TRUNCATE checkpoint while no write is under way — it
 * copies the few frames the PASSIVE ones left, syncs the database file and empties the log. The
 * event loop never waits for it; only the writes queued behind that one group commit do.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

export interface CheckpointerOptions {
  /** How often to look at the log's size (default 250 ms). */
  intervalMs?: number;
  /** Checkpoint once the log is at least this big (default 4 MiB, SQLite's own 1000 pages). */
  minBytes?: number;
  /** A log still this long after a PASSIVE checkpoint is due to be emptied (default 32 MiB). */
  restartBytes?: number;
}

/** The default `restartBytes`, and the size `openDatabase` cuts a log back to when it starts over. */
export const WAL_KEEP_BYTES = 32 * 1024 * 1024;

export interface Checkpointer {
  /** Checkpoints done so far. */
  readonly checkpoints: number;
  /** The log has grown past `restartBytes`: call `restart()` while no write is under way. */
  readonly due: boolean;
  /**
   * Empties the log (TRUNCATE checkpoint) from the worker; answers whether it did. It waits up to
   * 100 ms for readers and writers on other connections and gives up after that (the log stays due).
   */
  restart(): Promise<boolean>;
  /** The last error the worker met, if any (it keeps trying). */
  readonly lastError: string | undefined;
  /** Stops the worker and closes its connection. */
  stop(): Promise<void>;
}

// CommonJS, evaluated in the worker: a second connection, a size check per tick, PASSIVE checkpoints.
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { statSync } = require('node:fs');
const Database = require(workerData.driver);
const db = new Database(workerData.file, { fileMustExist: true });
db.pragma('busy_timeout = 5000');
const pageBytes = db.pragma('page_size', { simple: true });
const timer = setInterval(() => {
  try {
    const st = statSync(workerData.file + '-wal', { throwIfNoEntry: false });
    if (!st || st.size < workerData.minBytes) return;
    const [r] = db.pragma('wal_checkpoint(PASSIVE)');
    parentPort.postMessage({ checkpoint: true, due: r.log * pageBytes >= workerData.restartBytes });
  } catch (e) {
    parentPort.postMessage({ error: String(e && e.message || e) });
  }
}, workerData.intervalMs);
parentPort.on('message', (m) => {
  if (m === 'restart') {
    let done = false;
    try {
      db.pragma('busy_timeout = 100');
      const [r] = db.pragma('wal_checkpoint(TRUNCATE)');
      done = r.busy === 0;
    } catch (e) {
      parentPort.postMessage({ error: String(e && e.message || e) });
    } finally {
      db.pragma('busy_timeout = 5000');
    }
    parentPort.postMessage({ restarted: done });
    return;
  }
  if (m !== 'stop') return;
  clearInterval(timer);
  db.close();
  parentPort.close();
});
`;

/** Starts checkpointing the SQLite database at `file` (in WAL mode) from a worker thread. */
export function startCheckpointer(file: string, opts: CheckpointerOptions = {}): Checkpointer {
  const driver = createRequire(import.meta.url).resolve('better-sqlite3');
  const worker = new Worker(WORKER, {
    eval: true,
    workerData: {
      file,
      driver,
      intervalMs: opts.intervalMs ?? 250,
      minBytes: opts.minBytes ?? 4 * 1024 * 1024,
      restartBytes: opts.restartBytes ?? WAL_KEEP_BYTES,
    },
  });
  // The checkpointer never keeps the process alive on its own.
  worker.unref();
  let checkpoints = 0;
  let due = false;
  let lastError: string | undefined;
  /** The answer of the restart the worker is running (one at a time). */
  let restarted: ((done: boolean) => void) | undefined;
  let running: Promise<boolean> | undefined;
  worker.on('message', (m: { checkpoint?: boolean; due?: boolean; restarted?: boolean; error?: string }) => {
    if (m.checkpoint) {
      checkpoints++;
      due = m.due === true;
    }
    if (m.restarted !== undefined) {
      if (m.restarted) due = false;
      restarted?.(m.restarted);
    }
    if (m.error) lastError = m.error;
  });
  worker.on('error', (e) => {
    lastError = e.message;
  });
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  exited.then(() => restarted?.(false));
  return {
    get checkpoints() {
      return checkpoints;
    },
    get lastError() {
      return lastError;
    },
    get due() {
      return due;
    },
    restart() {
      running ??= new Promise<boolean>((resolve) => {
        restarted = (done) => {
          restarted = undefined;
          running = undefined;
          resolve(done);
        };
        worker.postMessage('restart');
      });
      return running;
    },
    async stop() {
      // Referenced again while it stops: an unreferenced worker and timer alone would let the
      // process exit in the middle of a shutdown that awaits this.
      worker.ref();
      worker.postMessage('stop');
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 2000)))]);
      clearTimeout(timer);
      await worker.terminate().catch(() => {});
    },
  };
}
