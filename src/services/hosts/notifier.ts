import { EventEmitter } from 'node:events';

/**
 * Wakes agents that long-poll for their host's desired state. In-process only: with several
 * control-plane replicas an agent still sees changes within its poll interval.
 */
export function createHostNotifier() {
  const events = new EventEmitter();
  events.setMaxListeners(0);
  return {
    notify(hostId: string) {
      events.emit(hostId);
    },
    /** Resolves after a notify for the host, or after `timeoutMs`, or when `signal` aborts. */
    wait(hostId: string, timeoutMs: number, signal?: AbortSignal): Promise<void> {
      return new Promise((resolve) => {
        const done = () => {
          clearTimeout(timer);
          events.off(hostId, done);
          signal?.removeEventListener('abort', done);
          resolve();
        };
        const timer = setTimeout(done, timeoutMs);
        events.once(hostId, done);
        signal?.addEventListener('abort', done);
      });
    },
  };
}

export type HostNotifier = ReturnType<typeof createHostNotifier>;
