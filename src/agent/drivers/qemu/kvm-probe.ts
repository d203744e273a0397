/**
 * Decides whether this host can really run guests under KVM. An openable /dev/kvm is not enough:
 * on hosts whose KVM is paravirtual (PVM), stock guest kernels fail in its instruction emulator or
 * QEMU aborts setting MSRs. So the probe boots the tiny guest under KVM with `-cpu host` (what
 * real VMs get) and claims KVM only if the guest's init prints its marker before a deadline;
 * anything else means TCG. The result is cached in `<dataDir>/kvm-probe.json`, keyed by the host
 * kernel release and the QEMU version, so it runs once per host (re-run after an upgrade).
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { access, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { signal, sleep } from './process.js';

export interface TinyImage {
  kernelPath: string;
  initrdPath: string;
  cmdline: string;
}

export interface KvmProbeResult {
  accelerator: 'kvm' | 'tcg';
  /** Why: the marker's arrival time, QEMU's last error line, the deadline, no /dev/kvm... */
  detail: string;
  /** `<kernel release>|<qemu version>`; a cached result with another key is ignored. */
  key: string;
  probedAt: string;
}

export interface KvmProbeOptions {
  dataDir: string;
  qemuBinary: string;
  qemuVersion: string;
  /** Supplies the tiny guest (built on first use). */
  image: () => Promise<TinyImage>;
  timeoutMs?: number;
  kvmDevice?: string;
}

/** Lines the tiny guest prints as its init starts and once it is up. */
export const TINY_GUEST_MARKER = /YUNHAI-(BOOT|READY)/;
export const KVM_PROBE_FILE = 'kvm-probe.json';

export async function probeAccelerator(opts: KvmProbeOptions): Promise<KvmProbeResult> {
  const key = `${os.release()}|${opts.qemuVersion}`;
  const result = (accelerator: 'kvm' | 'tcg', detail: string): KvmProbeResult => ({
    accelerator,
    detail,
    key,
    probedAt: new Date().toISOString(),
  });
  const device = opts.kvmDevice ?? '/dev/kvm';
  try {
    await access(device, constants.R_OK | constants.W_OK);
  } catch (err) {
    return result('tcg', `${device} not usable: ${(err as NodeJS.ErrnoException).code ?? err}`);
  }
  const cacheFile = join(opts.dataDir, KVM_PROBE_FILE);
  try {
    const cached = JSON.parse(await readFile(cacheFile, 'utf8')) as KvmProbeResult;
    if (cached.key === key && (cached.accelerator === 'kvm' || cached.accelerator === 'tcg')) return cached;
  } catch {
    // no cache yet, or unreadable: probe
  }
  let image: TinyImage;
  try {
    image = await opts.image();
  } catch (err) {
    // Not cached: once the image can be built, the next start probes for real.
    return result('tcg', `no probe guest image: ${(err as Error).message}`);
  }
  const probed = await bootUnderKvm(opts, image, opts.timeoutMs ?? 10_000);
  const out = result(probed.ok ? 'kvm' : 'tcg', probed.detail);
  await writeFile(cacheFile, `${JSON.stringify(out, null, 2)}\n`).catch(() => {});
  return out;
}

async function bootUnderKvm(
  opts: KvmProbeOptions,
  image: TinyImage,
  timeoutMs: number,
): Promise<{ ok: boolean; detail: string }> {
  const dir = await mkdtemp(join(opts.dataDir, 'kvm-probe-'));
  const consoleLog = join(dir, 'console.log');
  const qemuLog = join(dir, 'qemu.log');
  const logFd = await open(qemuLog, 'w');
  const started = Date.now();
  const child = spawn(
    opts.qemuBinary,
    [
      '-no-user-config',
      '-nodefaults',
      '-display',
      'none',
      '-machine',
      'q35',
      '-accel',
      'kvm',
      '-cpu',
      'host',
      '-m',
      '256M',
      '-serial',
      `file:${consoleLog}`,
      '-kernel',
      image.kernelPath,
      '-initrd',
      image.initrdPath,
      '-append',
      image.cmdline,
    ],
    { stdio: ['ignore', logFd.fd, logFd.fd] },
  );
  // Listen before any await: a QEMU that dies at once must not exit unobserved.
  let exited: string | undefined;
  const gone = new Promise<void>((r) => {
    child.on('exit', (code, sig) => {
      exited = sig ? `signal ${sig}` : `exit code ${code}`;
      r();
    });
    child.on('error', (err) => {
      exited = err.message;
      r();
    });
  });
  await logFd.close();
  try {
    for (;;) {
      const text = await readFile(consoleLog, 'utf8').catch(() => '');
      if (TINY_GUEST_MARKER.test(text)) {
        return { ok: true, detail: `tiny guest reached init under KVM in ${Date.now() - started} ms` };
      }
      if (exited !== undefined) {
        const err = (await readFile(qemuLog, 'utf8').catch(() => ''))
          .trim()
          .split('\n')
          .slice(-2)
          .join(' / ');
        return { ok: false, detail: `QEMU under KVM ended (${exited}) before the guest's init: ${err}` };
      }
      if (Date.now() - started > timeoutMs) {
        return { ok: false, detail: `no guest init marker under KVM within ${timeoutMs} ms` };
      }
      await sleep(100);
    }
  } finally {
    if (exited === undefined && child.pid) signal(child.pid, 'SIGKILL');
    await gone;
    await rm(dir, { recursive: true, force: true });
  }
}
