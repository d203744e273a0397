import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KVM_PROBE_FILE, type KvmProbeOptions, probeAccelerator } from './kvm-probe.js';

const IMAGE = { kernelPath: '/k', initrdPath: '/i', cmdline: 'console=ttyS0' };

/** A stand-in for qemu-system-x86_64: finds `-serial file:PATH` and runs `body` with $SERIAL set. */
async function fakeQemu(dir: string, name: string, body: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(
    path,
    `#!/bin/sh\nwhile [ $# -gt 0 ]; do case "$1" in -serial) SERIAL=\${2#file:};; esac; shift; done\n${body}\n`,
  );
  await chmod(path, 0o755);
  return path;
}

describe('KVM probe', () => {
  let dir: string;
  let device: string;
  const opts = (over: Partial<KvmProbeOptions>): KvmProbeOptions => ({
    dataDir: dir,
    qemuBinary: '/bin/false',
    qemuVersion: '7.2.0',
    image: async () => IMAGE,
    kvmDevice: device,
    timeoutMs: 5_000,
    ...over,
  });
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'yh-probe-'));
    device = join(dir, 'kvm'); // a read-write file passes the /dev/kvm access check
    await writeFile(device, '');
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('settles on TCG without booting anything when /dev/kvm cannot be opened', async () => {
    const r = await probeAccelerator(opts({ kvmDevice: join(dir, 'missing') }));
    expect(r).toMatchObject({ accelerator: 'tcg', detail: expect.stringMatching(/not usable: ENOENT/) });
    expect(existsSync(join(dir, KVM_PROBE_FILE))).toBe(false);
  });

  it('claims KVM only when the guest prints its init marker, and caches that per kernel and QEMU version', async () => {
    const good = await fakeQemu(dir, 'good-qemu', 'echo "YUNHAI-BOOT uptime=0.4" > "$SERIAL"; exec sleep 30');
    const r = await probeAccelerator(opts({ qemuBinary: good }));
    expect(r).toMatchObject({ accelerator: 'kvm', detail: expect.stringMatching(/reached init under KVM/) });
    const cached = JSON.parse(await readFile(join(dir, KVM_PROBE_FILE), 'utf8'));
    expect(cached).toEqual(r);
    expect(r.key).toMatch(/\|7\.2\.0$/);
    // The cache answers without booting (this binary would fail)...
    expect(await probeAccelerator(opts({ qemuBinary: '/bin/false' }))).toEqual(r);
    // ...until QEMU (or the kernel) changes.
    expect(await probeAccelerator(opts({ qemuBinary: '/bin/false', qemuVersion: '8.0.0' }))).toMatchObject({
      accelerator: 'tcg',
    });
  });

  it('falls back to TCG with QEMU’s error when QEMU dies before the guest’s init', async () => {
    const aborts = await fakeQemu(dir, 'abort-qemu', 'echo "error: failed to set MSR 0x10a" >&2; exit 134');
    const r = await probeAccelerator(opts({ qemuBinary: aborts }));
    expect(r.accelerator).toBe('tcg');
    expect(r.detail).toMatch(/ended \(exit code 134\).*failed to set MSR/);
  });

  it('falls back to TCG when the guest stalls past the deadline, and leaves no process or files', async () => {
    const stalls = await fakeQemu(dir, 'stall-qemu', 'exec sleep 30');
    const started = Date.now();
    const r = await probeAccelerator(opts({ qemuBinary: stalls, timeoutMs: 300 }));
    expect(r).toMatchObject({ accelerator: 'tcg', detail: expect.stringMatching(/within 300 ms/) });
    expect(Date.now() - started).toBeLessThan(3_000);
    expect((await readdir(dir)).filter((f) => f.startsWith('kvm-probe-'))).toEqual([]);
  });

  it('does not cache a TCG verdict it reached only for lack of a probe image', async () => {
    const r = await probeAccelerator(opts({ image: () => Promise.reject(new Error('apt is offline')) }));
    expect(r).toMatchObject({ accelerator: 'tcg', detail: expect.stringMatching(/apt is offline/) });
    expect(existsSync(join(dir, KVM_PROBE_FILE))).toBe(false);
  });
});
