import { mkdirSync } from 'node:fs';
import { appendFile, open, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';

/** Cap on a kept console log; older output is dropped from the front when exceeded. */
const MAX_CONSOLE_BYTES = 4 * 1024 * 1024;

/**
 * Serial console logs kept by the control plane, one file per instance, fed by agents in
 * offset-checked chunks (a retried chunk is not appended twice). Readable after the host is gone.
 */
export function createConsoleStore(dataDir: string) {
  const dir = join(dataDir, 'consoles');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = (id: string) => join(dir, `${id}.log`);
  const size = async (id: string) => (await stat(file(id)).catch(() => null))?.size ?? 0;

  return {
    size,
    /** Appends `data` if `offset` is where the log ends; returns the log's size either way. */
    async append(id: string, offset: number, data: Buffer): Promise<number> {
      const current = await size(id);
      if (offset !== current || data.length === 0) return current;
      if (current + data.length > MAX_CONSOLE_BYTES) {
        // Keep the newest half; agents resynchronise from the size we answer.
        const keep = await this.read(id, Math.max(0, current - MAX_CONSOLE_BYTES / 2), MAX_CONSOLE_BYTES);
        await rm(file(id), { force: true });
        await appendFile(file(id), Buffer.concat([keep.data, data]), { mode: 0o600 });
        return size(id);
      }
      await appendFile(file(id), data, { mode: 0o600 });
      return current + data.length;
    },
    async read(id: string, offset: number, maxBytes = 64 * 1024): Promise<{ data: Buffer; next: number }> {
      const total = await size(id);
      const from = Math.min(Math.max(0, offset), total);
      const len = Math.min(maxBytes, total - from);
      if (len <= 0) return { data: Buffer.alloc(0), next: from };
      const fh = await open(file(id), 'r');
      try {
        const buf = Buffer.alloc(len);
        const { bytesRead } = await fh.read(buf, 0, len, from);
        return { data: buf.subarray(0, bytesRead), next: from + bytesRead };
      } finally {
        await fh.close();
      }
    },
    /** The last `lines` lines (for error reasons). */
    async tail(id: string, lines = 20): Promise<string> {
      const total = await size(id);
      const { data } = await this.read(id, Math.max(0, total - 8192), 8192);
      return data.toString('utf8').split('\n').slice(-lines).join('\n');
    },
    async remove(id: string) {
      await rm(file(id), { force: true });
    },
  };
}

export type ConsoleStore = ReturnType<typeof createConsoleStore>;
