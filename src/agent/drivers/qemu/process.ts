/** Host-process helpers for the qemu driver: finding our QEMU processes and waiting for them. */
import { open, readFile } from 'node:fs/promises';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * True when `pid` is a live QEMU started for the VM whose pid file is `pidFile`: its command line
 * has `-pidfile <pidFile>`. A recycled pid (another program) or a zombie (empty cmdline) is not.
 */
export async function isOurQemu(pid: number, pidFile: string): Promise<boolean> {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  let cmdline: string;
  try {
    cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return false;
  }
  const argv = cmdline.split('\0');
  const i = argv.indexOf('-pidfile');
  return i >= 0 && argv[i + 1] === pidFile;
}

/** Reads a pid file; undefined when missing or not a number. */
export async function readPidFile(path: string): Promise<number | undefined> {
  try {
    const pid = Number.parseInt((await readFile(path, 'utf8')).trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Polls until `pid` is no longer our QEMU, up to `timeoutMs`; true if it is gone. */
export async function waitForExit(pid: number, pidFile: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!(await isOurQemu(pid, pidFile))) return true;
    if (Date.now() >= deadline) return false;
    await sleep(25);
  }
}

/** Sends a signal, ignoring a process that is already gone. */
export function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/** The last `lines` non-empty lines of a text file (reading at most its last 8 KiB). */
export async function tailFile(path: string, lines = 8): Promise<string> {
  let fh: Awaited<ReturnType<typeof open>> | undefined;
  try {
    fh = await open(path, 'r');
    const { size } = await fh.stat();
    const len = Math.min(size, 8192);
    const buf = Buffer.alloc(len);
    await fh.read(buf, 0, len, size - len);
    return buf
      .toString('utf8')
      .split('\n')
      .map((l) => l.trimEnd())
      .filter(Boolean)
      .slice(-lines)
      .join('\n');
  } catch {
    return '';
  } finally {
    await fh?.close();
  }
}

/** The `rss` of a process in bytes (VmRSS from /proc/<pid>/status), or undefined. */
export async function processRssBytes(pid: number): Promise<number | undefined> {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(await readFile(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}
