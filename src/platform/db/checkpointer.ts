/**
 * WAL checkpoints off the event loop. SQLite's automatic checkpoint runs inside whichever commit
 * pushes the log past its threshold — on the main thread, which then stalls every request for as
 * long as copying pages back into the database and syncing it takes (tens of milliseconds seen on
 * a busy disk, see docs/queue-throughput.md). The control plane turns that off
 * (`wal_autocheckpoint = 0`) and checkpoints from a second connection on a worker thread instead:
 * PASSIVE checkpoints never block the writer, and once one has copied every frame the next commit
 * starts the log over from the beginning, so its size stays bounded as before.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

export interface CheckpointerOptions {
  /** How often to look at the log's size (default 250 ms). */
  intervalMs?: number;
  /** Checkpoint once the log is at least this big (default 4 MiB, SQLite's own 1000 pages). */
  minBytes?: number;
}

export interface Checkpointer {
  /** Checkpoints done so far. */
  readonly checkpoints: number;
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
const timer = setInterval(() => {
  try {
    const st = statSync(workerData.file + '-wal', { throwIfNoEntry: false });
    if (!st || st.size < workerData.minBytes) return;
    db.pragma('wal_checkpoint(PASSIVE)');
    parentPort.postMessage({ checkpoint: true });
  } catch (e) {
    parentPort.postMessage({ error: String(e && e.message || e) });
  }
}, workerData.intervalMs);
parentPort.on('message', (m) => {
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
    },
  });
  // The checkpointer never keeps the process alive on its own.
  worker.unref();
  let checkpoints = 0;
  let lastError: string | undefined;
  worker.on('message', (m: { checkpoint?: boolean; error?: string }) => {
    if (m.checkpoint) checkpoints++;
    if (m.error) lastError = m.error;
  });
  worker.on('error', (e) => {
    lastError = e.message;
  });
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  return {
    get checkpoints() {
      return checkpoints;
    },
    get lastError() {
      return lastError;
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
