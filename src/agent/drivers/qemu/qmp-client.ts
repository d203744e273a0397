/**
 * A QEMU Machine Protocol client over a unix socket (QMP spec: docs/interop/qmp-spec in QEMU).
 *
 * The wire format is one JSON object per line. After connecting, the server sends a greeting
 * (`{"QMP": {"version": ..., "capabilities": [...]}}`); the client leaves capabilities-negotiation
 * mode with `qmp_capabilities`, then sends `{"execute", "arguments", "id"}` commands and gets
 * `{"return", "id"}` or `{"error": {"class", "desc"}, "id"}` replies. Asynchronous events
 * (`{"event", "data", "timestamp"}`) may arrive at any time, interleaved with replies.
 *
 * Failures are HypervisorErrors: `MonitorTimeout` (no greeting or reply in time),
 * `MonitorDisconnected` (socket closed or unreachable), `CommandFailed` (QMP's own error,
 * carried as `errorClass` and `desc`).
 */
import net from 'node:net';
import { HypervisorError } from '../../hypervisor.js';

export interface QmpVersion {
  qemu: { major: number; minor: number; micro: number };
  package: string;
}

export interface QmpEvent {
  event: string;
  data: Record<string, unknown>;
  /** Seconds since the epoch, with microseconds as the fraction. */
  timestamp: number;
}

/** A command QEMU rejected; `errorClass` is QMP's class (GenericError, DeviceNotFound, ...). */
export class QmpCommandFailed extends HypervisorError {
  readonly command: string;
  readonly errorClass: string;
  readonly desc: string;
  constructor(command: string, errorClass: string, desc: string) {
    super('CommandFailed', `QMP ${command} failed: ${errorClass}: ${desc}`);
    this.name = 'QmpCommandFailed';
    this.command = command;
    this.errorClass = errorClass;
    this.desc = desc;
  }
}

export interface QmpConnectOptions {
  /** Deadline for connecting, the greeting and the capabilities handshake together. */
  timeoutMs?: number;
  /** Default deadline for each `execute` (overridable per call). */
  commandTimeoutMs?: number;
}

interface Pending {
  command: string;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
const DEFAULT_COMMAND_TIMEOUT_MS = 10_000;

export class QmpClient {
  #socket: net.Socket;
  #version: QmpVersion | null = null;
  #onGreeting: ((v: QmpVersion | null, line: string) => void) | null = null;
  #pending = new Map<string, Pending>();
  #eventListeners = new Set<(e: QmpEvent) => void>();
  #closeListeners = new Set<(err: HypervisorError) => void>();
  #nextId = 1;
  #closed: HypervisorError | null = null;
  #commandTimeoutMs: number;

  private constructor(socket: net.Socket, commandTimeoutMs: number) {
    this.#socket = socket;
    this.#commandTimeoutMs = commandTimeoutMs;
    socket.setEncoding('utf8');
    let buf = '';
    socket.on('data', (chunk: string) => {
      buf += chunk;
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (line) this.#onLine(line);
      }
    });
    socket.on('error', () => {}); // 'close' follows and is what we act on
    socket.on('close', () => this.#onClose());
  }

  /**
   * Connects to a QMP socket, reads the greeting and negotiates capabilities. Fails with
   * MonitorDisconnected if nothing listens there (or it is not QMP), MonitorTimeout if the
   * handshake stalls.
   */
  static async connect(socketPath: string, opts: QmpConnectOptions = {}): Promise<QmpClient> {
    const timeoutMs = opts.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const deadline = Date.now() + timeoutMs;
    const socket = await openUnixSocket(socketPath, timeoutMs);
    const client = new QmpClient(socket, opts.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS);
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          reject(
            new HypervisorError('MonitorTimeout', `QMP ${socketPath}: no greeting within ${timeoutMs} ms`),
          );
        }, timeoutMs);
        const offClose = client.onClose((err) => {
          clearTimeout(timer);
          reject(err);
        });
        client.#onGreeting = (v, line) => {
          clearTimeout(timer);
          offClose();
          if (v) resolve();
          else
            reject(
              new HypervisorError(
                'MonitorDisconnected',
                `QMP ${socketPath}: not a QMP greeting: ${JSON.stringify(line.slice(0, 200))}`,
              ),
            );
        };
      });
      await client.execute('qmp_capabilities', undefined, { timeoutMs: Math.max(1, deadline - Date.now()) });
      return client;
    } catch (err) {
      await client.close();
      throw err;
    }
  }

  /** QEMU's version from the greeting. */
  get version(): QmpVersion {
    return this.#version!;
  }

  get closed(): boolean {
    return this.#closed !== null;
  }

  /** Runs one command; resolves with its `return` value. */
  execute<T = unknown>(
    command: string,
    args?: Record<string, unknown>,
    opts: { timeoutMs?: number } = {},
  ): Promise<T> {
    if (this.#closed) return Promise.reject(this.#closed);
    const id = `yh-${this.#nextId++}`;
    const timeoutMs = opts.timeoutMs ?? this.#commandTimeoutMs;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        // A late reply for this id is dropped by #onLine (no pending entry left).
        this.#pending.delete(id);
        reject(new HypervisorError('MonitorTimeout', `QMP ${command}: no reply within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, { command, resolve: resolve as (v: unknown) => void, reject, timer });
      const msg: Record<string, unknown> = { execute: command, id };
      if (args) msg.arguments = args;
      this.#socket.write(`${JSON.stringify(msg)}\n`);
    });
  }

  /** Subscribes to asynchronous events; returns an unsubscribe function. */
  onEvent(listener: (e: QmpEvent) => void): () => void {
    this.#eventListeners.add(listener);
    return () => this.#eventListeners.delete(listener);
  }

  /** Called once when the connection ends (QEMU exited, or `close()`). */
  onClose(listener: (err: HypervisorError) => void): () => void {
    if (this.#closed) {
      const err = this.#closed;
      queueMicrotask(() => listener(err));
      return () => {};
    }
    this.#closeListeners.add(listener);
    return () => this.#closeListeners.delete(listener);
  }

  /** Waits for the next event accepted by `match`, up to `timeoutMs`. */
  waitForEvent(match: (e: QmpEvent) => boolean, timeoutMs: number): Promise<QmpEvent> {
    return new Promise((resolve, reject) => {
      const done = (fn: () => void) => {
        clearTimeout(timer);
        offEvent();
        offClose();
        fn();
      };
      const timer = setTimeout(
        () =>
          done(() =>
            reject(new HypervisorError('MonitorTimeout', `no matching QMP event in ${timeoutMs} ms`)),
          ),
        timeoutMs,
      );
      const offEvent = this.onEvent((e) => {
        if (match(e)) done(() => resolve(e));
      });
      const offClose = this.onClose((err) => done(() => reject(err)));
    });
  }

  /** Closes the connection; pending commands fail with MonitorDisconnected. Idempotent. */
  close(): Promise<void> {
    if (this.#socket.destroyed) {
      this.#onClose();
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.#socket.once('close', () => resolve());
      this.#socket.destroy();
    });
  }

  #onLine(line: string): void {
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(line) as Record<string, unknown>;
    } catch {
      msg = {};
    }
    if (this.#onGreeting) {
      const greet = this.#onGreeting;
      this.#onGreeting = null;
      const qmp = msg.QMP as { version?: QmpVersion } | undefined;
      this.#version = qmp?.version ?? null;
      greet(this.#version, line);
      return;
    }
    if (typeof msg.event === 'string') {
      const ts = msg.timestamp as { seconds?: number; microseconds?: number } | undefined;
      const event: QmpEvent = {
        event: msg.event,
        data: (msg.data as Record<string, unknown> | undefined) ?? {},
        timestamp: (ts?.seconds ?? 0) + (ts?.microseconds ?? 0) / 1e6,
      };
      for (const l of [...this.#eventListeners]) l(event);
      return;
    }
    if (typeof msg.id !== 'string') return; // not a reply to anything we sent
    const p = this.#pending.get(msg.id);
    if (!p) return; // the command already timed out
    this.#pending.delete(msg.id);
    clearTimeout(p.timer);
    if ('error' in msg) {
      const e = (msg.error ?? {}) as { class?: string; desc?: string };
      p.reject(new QmpCommandFailed(p.command, e.class ?? 'GenericError', e.desc ?? 'unknown error'));
    } else {
      p.resolve(msg.return);
    }
  }

  #onClose(): void {
    if (this.#closed) return;
    const err = new HypervisorError('MonitorDisconnected', 'QMP connection closed');
    this.#closed = err;
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer);
      p.reject(new HypervisorError('MonitorDisconnected', `QMP ${p.command}: connection closed`));
    }
    this.#pending.clear();
    for (const l of [...this.#closeListeners]) l(err);
    this.#closeListeners.clear();
    this.#eventListeners.clear();
  }
}

/** Same as `QmpClient.connect`. */
export function connectQmp(socketPath: string, opts?: QmpConnectOptions): Promise<QmpClient> {
  return QmpClient.connect(socketPath, opts);
}

function openUnixSocket(path: string, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection({ path });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new HypervisorError('MonitorTimeout', `QMP ${path}: no connection within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(new HypervisorError('MonitorDisconnected', `QMP ${path}: ${err.message}`));
    });
  });
}
