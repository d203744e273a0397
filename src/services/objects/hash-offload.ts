/**
 * MD5 (every PUT's ETag) and SHA-256 (signed payloads) of large bodies, computed on a worker
 * thread instead of the event loop. A 1 MiB body costs ~2 ms of MD5 on this class of machine,
 * which was a third of the event loop's time per 1 MiB PUT; on the worker it overlaps with the
 * next request's parsing and the blob writes.
 *
 * A job copies its body into 256 KiB batches whose buffers are transferred to the worker (the
 * socket's chunks stay with the blob writer). At most MAX_IN_FLIGHT bytes per job are on their way
 * or queued in the worker; past that `update` answers a promise that resolves once the worker
 * caught up, so memory stays flat however fast the body arrives. Small bodies are not worth the
 * messages (the caller decides: OFFLOAD_MIN_BYTES).
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

/** Bodies announced at least this large are hashed off the event loop. */
export const OFFLOAD_MIN_BYTES = 256 * 1024;
const BATCH = 256 * 1024;
const MAX_IN_FLIGHT = 2 * 1024 * 1024;

// CommonJS, evaluated in the worker.
const WORKER = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const jobs = new Map();
parentPort.on('message', (m) => {
  if (m.t === 'start') {
    jobs.set(m.job, { md5: createHash('md5'), sha256: m.sha256 ? createHash('sha256') : null });
  } else if (m.t === 'data') {
    const j = jobs.get(m.job);
    if (j) {
      const b = new Uint8Array(m.buf, 0, m.len);
      j.md5.update(b);
      if (j.sha256) j.sha256.update(b);
    }
    parentPort.postMessage({ t: 'ack', job: m.job, n: m.len });
  } else if (m.t === 'end') {
    const j = jobs.get(m.job);
    jobs.delete(m.job);
    if (!j) return;
    parentPort.postMessage({ t: 'digest', job: m.job, md5: j.md5.digest(), sha256: j.sha256 ? j.sha256.digest() : null });
  } else if (m.t === 'drop') {
    jobs.delete(m.job);
  }
});
`;

export interface OffloadedDigests {
  md5: Buffer;
  sha256?: Buffer;
}

/** One body's running MD5 (and SHA-256) on the worker. */
export interface HashJob {
  /** Feeds a chunk; answers a promise only when the caller should wait (worker behind). */
  update(chunk: Uint8Array): Promise<void> | undefined;
  /** Sends what is left and answers the digests. */
  digest(): Promise<OffloadedDigests>;
  /** Abandons the job (the body failed); its digest is never asked for. */
  drop(): void;
}

interface JobState {
  inFlight: number;
  wake: (() => void) | undefined;
  done: ((d: OffloadedDigests) => void) | undefined;
  fail: (e: Error) => void;
}

interface Lane {
  worker: Worker;
  jobs: Map<number, JobState>;
}

let lanes: Lane[] | undefined;
let nextLane = 0;
let nextJob = 1;

function startLane(): Lane {
  const worker = new Worker(WORKER, { eval: true });
  const lane: Lane = { worker, jobs: new Map() };
  worker.unref();
  worker.on(
    'message',
    (
      m:
        | { t: 'ack'; job: number; n: number }
        | { t: 'digest'; job: number; md5: Uint8Array; sha256: Uint8Array | null },
    ) => {
      const j = lane.jobs.get(m.job);
      if (!j) return;
      if (m.t === 'ack') {
        j.inFlight -= m.n;
        if (j.wake && j.inFlight <= MAX_IN_FLIGHT / 2) {
          const w = j.wake;
          j.wake = undefined;
          w();
        }
        return;
      }
      lane.jobs.delete(m.job);
      if (lane.jobs.size === 0) worker.unref();
      j.done?.({
        md5: Buffer.from(m.md5),
        ...(m.sha256 ? { sha256: Buffer.from(m.sha256) } : {}),
      });
    },
  );
  const broken = (e: Error) => {
    // Every job of this worker fails; the next job starts a new worker.
    if (lanes) lanes = lanes.filter((l) => l !== lane);
    for (const j of lane.jobs.values()) j.fail(e);
    lane.jobs.clear();
  };
  worker.on('error', broken);
  worker.on('exit', (code) => broken(new Error(`hash worker exited (${code})`)));
  return lane;
}

function laneFor(): Lane {
  if (!lanes || lanes.length === 0) {
    const n = Math.max(1, Math.min(2, availableParallelism() - 1));
    lanes = Array.from({ length: n }, startLane);
  }
  nextLane = (nextLane + 1) % lanes.length;
  return lanes[nextLane]!;
}

/** Starts hashing one body on a worker (MD5 always, SHA-256 when `sha256`). */
export function startHashJob(opts: { sha256: boolean }): HashJob {
  const lane = laneFor();
  const job = nextJob++;
  let failure: Error | undefined;
  let digestWait: { resolve: (d: OffloadedDigests) => void; reject: (e: Error) => void } | undefined;
  const state: JobState = {
    inFlight: 0,
    wake: undefined,
    done: undefined,
    fail: (e) => {
      failure = e;
      state.wake?.();
      state.wake = undefined;
      digestWait?.reject(e);
    },
  };
  lane.jobs.set(job, state);
  lane.worker.ref();
  lane.worker.postMessage({ t: 'start', job, sha256: opts.sha256 });

  let batch: Buffer | undefined;
  let used = 0;
  const send = () => {
    if (!batch || used === 0) return;
    const buf = batch.buffer as ArrayBuffer;
    lane.worker.postMessage({ t: 'data', job, buf, len: used }, [buf]);
    state.inFlight += used;
    batch = undefined;
    used = 0;
  };

  return {
    update(chunk) {
      if (failure) throw failure;
      let off = 0;
      while (off < chunk.length) {
        batch ??= Buffer.allocUnsafeSlow(BATCH);
        const n = Math.min(BATCH - used, chunk.length - off);
        batch.set(chunk.subarray(off, off + n), used);
        used += n;
        off += n;
        if (used === BATCH) send();
      }
      if (state.inFlight <= MAX_IN_FLIGHT) return undefined;
      return new Promise<void>((resolve) => {
        state.wake = resolve;
      }).then(() => {
        if (failure) throw failure;
      });
    },
    digest() {
      if (failure) return Promise.reject(failure);
      send();
      return new Promise<OffloadedDigests>((resolve, reject) => {
        digestWait = { resolve, reject };
        state.done = resolve;
        lane.worker.postMessage({ t: 'end', job });
      });
    },
    drop() {
      if (!lane.jobs.delete(job)) return;
      if (lane.jobs.size === 0) lane.worker.unref();
      lane.worker.postMessage({ t: 'drop', job });
    },
  };
}
