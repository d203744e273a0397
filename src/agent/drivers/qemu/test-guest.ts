/**
 * Test support for the qemu driver: whether QEMU is installed, and the tiny guest
 * (images/tiny.ts, built once into its cache). Its console contract — `YUNHAI-BOOT`, `YUNHAI-READY
 * cpus=N mem_kib=M`, `YUNHAI-STATS ...` on change, `YUNHAI-POWEROFF reason=acpi`, then a root
 * shell — is documented in tiny.ts.
 */
import { execFileSync } from 'node:child_process';
import type { BootSource } from '../../hypervisor.js';
import { ensureTinyImage, type TinyImage } from '../../images/tiny.js';

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
