/**
 * Crash- and race-safe file helpers for image and seed builders: atomic replace (temp file in the same
 * directory, fsync, rename, fsync the directory) and a cross-process lock file.
 */
import { randomBytes } from 'node:crypto';
import { open, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** A unique sibling path for building `file` before renaming it into place. */
export function tempSibling(file: string): string {
  return path.join(
    path.dirname(file),
    `.${path.basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`,
  );
}

/** Makes a completed rename in `dir` durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Replaces `file` so readers see either the old content or all of the new one, never a torn write. */
export async function writeFileAtomic(file: string, data: Uint8Array | string, mode = 0o644): Promise<void> {
  const tmp = tempSibling(file);
  const fh = await open(tmp, 'wx', mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (e) {
    await fh.close();
    await rm(tmp, { force: true });
    throw e;
  }
  await fh.close();
  await commitTemp(tmp, file);
}

/** Renames a finished, fsynced temp file over `file` and syncs the directory; removes the temp on failure. */
export async function commitTemp(tmp: string, file: string): Promise<void> {
  try {
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  await fsyncDir(path.dirname(file));
}

export interface FileLockOptions {
  /** Give up waiting after this long (default 15 min). */
  timeoutMs?: number;
  /** How often to look again while another process holds the lock (default 200 ms). */
  pollMs?: number;
  /** A lock older than this is taken over even if its owner pid seems alive (pid reuse); default 30 min. */
  staleMs?: number;
}

/**
 * Runs `fn` while holding `lockPath` (created with O_EXCL, holding our pid). A lock whose owner process
 * is gone is taken over. Two waiters can in rare cases both take over the same stale lock, so callers
 * must still publish results atomically (rename); the lock only avoids duplicate work.
 */
export async function withFileLock<T>(
  lockPath: string,
  fn: () => Promise<T>,
  opts: FileLockOptions = {},
): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 15 * 60_000;
  const pollMs = opts.pollMs ?? 200;
  const staleMs = opts.staleMs ?? 30 * 60_000;
  const deadline = Date.now() + timeoutMs;
  const token = `${process.pid} ${randomBytes(8).toString('hex')}\n`;
  for (;;) {
    try {
      const fh = await open(lockPath, 'wx', 0o644);
      try {
        await fh.writeFile(token);
      } finally {
        await fh.close();
      }
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    if (await lockIsStale(lockPath, staleMs)) {
      await rm(lockPath, { force: true });
      continue;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for lock ${lockPath}`);
    await sleep(pollMs);
  }
  try {
    return await fn();
  } finally {
    // Only remove the lock if it is still ours (it may have been taken over as stale).
    const content = await readFile(lockPath, 'utf8').catch(() => null);
    if (content === token) await rm(lockPath, { force: true });
  }
}

async function lockIsStale(lockPath: string, staleMs: number): Promise<boolean> {
  let content: string;
  let mtimeMs: number;
  try {
    content = await readFile(lockPath, 'utf8');
    mtimeMs = (await stat(lockPath)).mtimeMs;
  } catch {
    return false; // vanished: the next open() attempt decides
  }
  if (Date.now() - mtimeMs > staleMs) return true;
  const pid = Number.parseInt(content, 10);
  // An empty file is a lock being written right now.
  if (!Number.isInteger(pid) || pid <= 0) return Date.now() - mtimeMs > 5_000;
  return !processAlive(pid);
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
