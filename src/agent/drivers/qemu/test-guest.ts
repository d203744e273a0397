/**
 * Test support for the qemu driver: whether QEMU is installed, and the tiny guest
 * (images/tiny.ts, built once into its cache). Its console contract — `YUNHAI-BOOT`, `YUNHAI-READY
 * cpus=N mem_kib=M`, `YUNHAI-STATS ...` on change, `YUNHAI-POWEROFF reason=acpi`, then a root
 * shell — is documented in tiny.ts.
 */
import { execFileSync } from 'node:child_process';
import type { BootSource } from '../../hypervisor.js';
import { ensureTinyImage, type TinyImage } from '../../images/tiny.js';
import { sleep } from './process.js';

export const qemuAvailable = (() => {
  try {
    execFileSync('qemu-system-x86_64', ['--version'], { stdio: 'ignore' });
    execFileSync('qemu-img', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

export function tinyGuest(): Promise<TinyImage> {
  return ensureTinyImage();
}

export async function tinyBootSource(): Promise<BootSource> {
  const g = await tinyGuest();
  return {
    kernel: { kernelPath: g.kernelPath, initrdPath: g.initrdPath, cmdline: g.cmdline },
    firmware: 'bios',
  };
}

/** Polls `fn` every 100 ms until it returns something truthy; throws after `timeoutMs`. */
export async function waitUntil<T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** A VM's whole console log so far, read through the driver. */
export async function consoleText(
  d: { readConsole(id: string, offset: number): Promise<{ data: Buffer; next: number }> },
  id: string,
): Promise<string> {
  let out = '';
  let offset = 0;
  for (;;) {
    const { data, next } = await d.readConsole(id, offset);
    if (data.length === 0) return out;
    out += data.toString();
    offset = next;
  }
}
