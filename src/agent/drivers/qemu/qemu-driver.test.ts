import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VmEvent, VmSpec } from '../../hypervisor.js';
import { loadHypervisor } from '../load.js';
import { vmCgroupDirs } from './cgroup.js';
import type { TinyImage } from './kvm-probe.js';
import { isOurQemu, processRssBytes } from './process.js';
import { createQemuDriver } from './qemu-driver.js';
import { consoleText, qemuAvailable, tinyGuest, waitUntil } from './test-guest.js';

const execFileP = promisify(execFile);
const MIB = 1024 * 1024;

function spec(id: string, image: TinyImage, over: Partial<VmSpec> = {}): VmSpec {
  return {
    id,
    name: `test ${id}`,
    vcpus: 1,
    maxVcpus: 2,
    memoryMiB: 256,
    maxMemoryMiB: 256,
    diskGiB: 1,
    boot: {
      kernel: { kernelPath: image.kernelPath, initrdPath: image.initrdPath, cmdline: image.cmdline },
      firmware: 'bios',
    },
    ...over,
  };
}

describe.skipIf(!qemuAvailable)('qemu driver with the tiny guest under TCG', () => {
  let dataDir: string;
  let image: TinyImage;
  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'yh-qemu-'));
    image = await tinyGuest();
  }, 240_000);
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it('runs a VM through define, boot, live resize, reboot, ACPI stop, restart, crash and destroy', async () => {
    const d = createQemuDriver({ dataDir, accelerator: 'tcg' });
    const events: VmEvent[] = [];
    d.onEvent((e) => events.push(e));
    const id = 'life';
    try {
      await d.define(spec(id, image, { memoryMiB: 192 }));
      const dir = join(dataDir, 'instances', id);
      expect((await stat(dir)).mode & 0o777).toBe(0o700);
      expect(existsSync(join(dir, 'disk.qcow2'))).toBe(true);
      expect(await d.status(id)).toEqual({ id, state: 'stopped', vcpus: 1, memoryMiB: 192 });

      const t0 = Date.now();
      await d.start(id);
      const started = await d.status(id);
      expect(started).toMatchObject({ state: 'running', vcpus: 1, memoryMiB: 192 });
      const pid = started!.pid!;
      expect(await isOurQemu(pid, join(dir, 'qemu.pid'))).toBe(true);
      await expect(d.start(id)).rejects.toMatchObject({ code: 'InvalidState' });

      const cg = await d.cgroupSupport();
      if (cg.available && cg.version === 1) {
        const [memDir, cpuDir] = vmCgroupDirs(cg, id);
        expect(Number(await readFile(join(memDir!, 'memory.limit_in_bytes'), 'utf8'))).toBe(
          (256 + 300) * MIB,
        );
        expect((await readFile(join(memDir!, 'cgroup.procs'), 'utf8')).split('\n')).toContain(String(pid));
        expect(Number(await readFile(join(cpuDir!, 'cpu.cfs_quota_us'), 'utf8'))).toBe(100_000);
      }

      await waitUntil('guest-ready', async () => events.some((e) => e.type === 'guest-ready' && e.id === id));
      const bootMs = Date.now() - t0;
      expect(await consoleText(d, id)).toMatch(/YUNHAI-READY/);
      // The balloon took the guest from its 256 MiB boot size down to 192 MiB.
      await waitUntil('balloon at 192 MiB', async () => {
        const b = await d.qmp<{ actual: number }>(id, 'query-balloon');
        return b.actual === 192 * MIB;
      });
      const rssBooted = await processRssBytes(pid);

      // Memory: down, then up to the maximum, then out of range.
      expect(await d.resize(id, { memoryMiB: 128 })).toMatchObject({ state: 'running', memoryMiB: 128 });
      expect((await d.qmp<{ actual: number }>(id, 'query-balloon')).actual).toBe(128 * MIB);
      await waitUntil('guest MemTotal below 128 MiB', async () => {
        const m = [...(await consoleText(d, id)).matchAll(/YUNHAI-STATS .*mem_kib=(\d+)/g)].pop();
        return m && Number(m[1]) < 128 * 1024;
      });
      expect(await d.resize(id, { memoryMiB: 256 })).toMatchObject({ memoryMiB: 256 });
      expect((await d.qmp<{ actual: number }>(id, 'query-balloon')).actual).toBe(256 * MIB);
      await expect(d.resize(id, { memoryMiB: 257 })).rejects.toMatchObject({ code: 'ResizeOutOfRange' });
      await expect(d.resize(id, { vcpus: 3 })).rejects.toMatchObject({ code: 'ResizeOutOfRange' });

      // vCPUs: hot-plug the second one; QEMU and the guest both see it.
      expect(await d.resize(id, { vcpus: 2 })).toMatchObject({ vcpus: 2, memoryMiB: 256 });
      expect(await d.qmp<unknown[]>(id, 'query-cpus-fast')).toHaveLength(2);
      await waitUntil('guest onlined 2 cpus', async () =>
        /YUNHAI-STATS cpus=2/.test(await consoleText(d, id)),
      );
      if (cg.available && cg.version === 1) {
        expect(Number(await readFile(join(vmCgroupDirs(cg, id)[1]!, 'cpu.cfs_quota_us'), 'utf8'))).toBe(
          200_000,
        );
      }
      expect(events.filter((e) => e.type === 'resized').at(-1)).toEqual({
        type: 'resized',
        id,
        vcpus: 2,
        memoryMiB: 256,
      });
      const rss = await processRssBytes(pid);

      // Remove it again. Single-threaded TCG cannot unplug (QEMU 7.2 aborts), so the driver replaces
      // the process with one vCPU: the guest boots again, and nothing reports a stop or a crash.
      const beforeUnplug = events.length;
      expect(await d.resize(id, { vcpus: 1 })).toMatchObject({ vcpus: 1 });
      expect(await d.qmp<unknown[]>(id, 'query-cpus-fast')).toHaveLength(1);
      await waitUntil('guest ready again with 1 cpu', async () =>
        events.slice(beforeUnplug).some((e) => e.type === 'guest-ready'),
      );
      expect(events.slice(beforeUnplug).map((e) => e.type)).not.toContain('stopped');
      const beforeReboot = events.length;
      const boots = (await consoleText(d, id)).split('YUNHAI-BOOT').length;
      await d.reboot(id);
      await waitUntil('guest-ready after reboot', async () =>
        events.slice(beforeReboot).some((e) => e.type === 'guest-ready'),
      );
      expect((await consoleText(d, id)).split('YUNHAI-BOOT').length).toBe(boots + 1);
      expect(events.slice(beforeReboot).map((e) => e.type)).toEqual(['guest-ready']);
      const rebooted = (await d.status(id))!;
      expect(rebooted).toMatchObject({ state: 'running', vcpus: 1, memoryMiB: 256 });

      // ACPI power-off: the guest's acpid powers it off cleanly.
      await d.stop(id, { timeoutMs: 20_000 });
      expect(await consoleText(d, id)).toMatch(/YUNHAI-POWEROFF reason=acpi/);
      expect(events.at(-1)).toEqual({ type: 'stopped', id, reason: 'guest powered off' });
      expect(await d.status(id)).toEqual({ id, state: 'stopped', vcpus: 1, memoryMiB: 192 });
      expect(await isOurQemu(rebooted.pid!, join(dir, 'qemu.pid'))).toBe(false);
      await d.stop(id, { timeoutMs: 1000 }); // stopping a stopped VM is a no-op

      // Start again, then kill QEMU behind the driver's back.
      await d.start(id);
      const pid2 = (await d.status(id))!.pid!;
      expect(pid2).not.toBe(pid);
      process.kill(pid2, 'SIGKILL');
      await waitUntil('crashed event', async () => events.some((e) => e.type === 'crashed'));
      const crashed = await d.status(id);
      expect(crashed).toMatchObject({ state: 'crashed', vcpus: 1, memoryMiB: 192 });
      expect(crashed!.reason).toMatch(/SIGKILL/);
      await expect(d.resize(id, { memoryMiB: 128 })).rejects.toMatchObject({ code: 'InvalidState' });

      // Destroy leaves no files, no process and no cgroup.
      await d.destroy(id);
      expect(existsSync(dir)).toBe(false);
      expect(await d.status(id)).toBeNull();
      for (const cgDir of vmCgroupDirs(cg, id)) expect(existsSync(cgDir)).toBe(false);
      const { stdout } = await execFileP('ps', ['-eo', 'args']);
      expect(stdout).not.toContain(join(dir, 'qemu.pid'));
      await d.destroy(id); // idempotent

      console.info(
        `[qemu figures] TCG boot to YUNHAI-READY: ${bootMs} ms; QEMU RSS (256 MiB max guest) after boot with balloon at 192 MiB: ${Math.round((rssBooted ?? 0) / MIB)} MiB, after resizes at 256 MiB: ${Math.round((rss ?? 0) / MIB)} MiB`,
      );
    } finally {
      await d.destroy(id).catch(() => {});
      await d.close();
    }
  }, 90_000);

  it('a new driver object rediscovers a running VM, talks to its console and stops it', async () => {
    const id = 'survivor';
    const first = createQemuDriver({ dataDir, accelerator: 'tcg' });
    await first.define(spec(id, image));
    await first.start(id);
    const pid = (await first.status(id))!.pid!;
    await first.close(); // the agent goes away; the VM does not
    expect(await isOurQemu(pid, join(dataDir, 'instances', id, 'qemu.pid'))).toBe(true);

    const second = createQemuDriver({ dataDir, accelerator: 'tcg' });
    const events: VmEvent[] = [];
    second.onEvent((e) => events.push(e));
    try {
      const listed = await second.list();
      expect(listed).toEqual([{ id, state: 'running', pid, vcpus: 1, memoryMiB: 256 }]);
      await waitUntil('shell up', async () => /YUNHAI-READY[\s\S]*# /.test(await consoleText(second, id)));
      // Typed key by key, all at once (as the portal's terminal sends them): every write lands, in order.
      await Promise.all([...'echo HELLO-$((6*7))\n'].map((ch) => second.writeConsole(id, Buffer.from(ch))));
      await waitUntil('console echo', async () => /HELLO-42/.test(await consoleText(second, id)));
      await second.stop(id, { timeoutMs: 20_000 });
      expect(await second.status(id)).toMatchObject({ state: 'stopped' });
      // It was still booting when the first driver went: the second one saw it become ready.
      expect(events).toEqual([
        { type: 'guest-ready', id },
        { type: 'stopped', id, reason: 'guest powered off' },
      ]);
      expect(await isOurQemu(pid, join(dataDir, 'instances', id, 'qemu.pid'))).toBe(false);
      await expect(second.writeConsole(id, Buffer.from('x'))).rejects.toMatchObject({ code: 'InvalidState' });
    } finally {
      await second.destroy(id);
      await second.close();
    }
  }, 60_000);

  it('reports a crash that happened while no driver was watching', async () => {
    const id = 'unwatched';
    const first = createQemuDriver({ dataDir, accelerator: 'tcg' });
    await first.define(spec(id, image));
    await first.start(id);
    const pid = (await first.status(id))!.pid!;
    await first.close();
    process.kill(pid, 'SIGKILL');
    await waitUntil(
      'process gone',
      async () => !(await isOurQemu(pid, join(dataDir, 'instances', id, 'qemu.pid'))),
    );
    const second = createQemuDriver({ dataDir, accelerator: 'tcg' });
    try {
      const st = await second.status(id);
      expect(st).toMatchObject({ id, state: 'crashed' });
      expect(st!.reason).toMatch(/ended/);
      // A crashed VM can be started again.
      await second.start(id);
      expect(await second.status(id)).toMatchObject({ state: 'running' });
      await second.stop(id, { timeoutMs: 0 });
      expect(await second.status(id)).toMatchObject({ state: 'stopped' });
    } finally {
      await second.destroy(id);
      await second.close();
    }
  }, 60_000);

  it('fails a start with StartFailed and the tail of QEMU’s log when QEMU exits at once', async () => {
    const d = createQemuDriver({ dataDir, accelerator: 'tcg' });
    const bogus = join(dataDir, 'not-a-kernel');
    await writeFile(bogus, 'this is not a kernel\n');
    try {
      await d.define(
        spec('bad-kernel', image, { boot: { kernel: { kernelPath: bogus }, firmware: 'bios' } }),
      );
      const err = await d.start('bad-kernel').catch((e: unknown) => e);
      expect(err).toMatchObject({
        code: 'StartFailed',
        message: expect.stringMatching(/exited with code 1\n.*invalid kernel header/),
      });
      expect(await d.status('bad-kernel')).toMatchObject({ state: 'stopped' });
    } finally {
      await d.destroy('bad-kernel');
      await d.close();
    }
  });

  it('starts a UEFI VM with its own copy of the OVMF variables and a cloud-init seed disk', async () => {
    const d = createQemuDriver({ dataDir, accelerator: 'tcg' });
    const caps = await d.capabilities();
    if (!caps.firmware.includes('uefi')) return;
    const base = join(dataDir, 'empty-base.qcow2');
    await execFileP('qemu-img', ['create', '-q', '-f', 'qcow2', base, '512M']);
    const id = 'uefi';
    try {
      await d.define({
        ...spec(id, image),
        boot: { diskImage: { path: base, format: 'qcow2' }, firmware: 'uefi' },
        cloudInit: { userData: '#cloud-config\n', metaData: { 'instance-id': id } },
      });
      const dir = join(dataDir, 'instances', id);
      expect((await stat(join(dir, 'ovmf-vars.fd'))).size).toBe(
        (await stat('/usr/share/OVMF/OVMF_VARS_4M.fd')).size,
      );
      expect((await readFile(join(dir, 'seed.iso'))).subarray(0x8001, 0x8006).toString()).toBe('CD001');
      await d.start(id);
      const blocks = await d.qmp<Array<{ device: string; inserted?: { ro: boolean; file: string } }>>(
        id,
        'query-block',
      );
      expect(blocks.find((b) => b.inserted?.file.endsWith('seed.iso'))?.inserted?.ro).toBe(true);
      expect(blocks.find((b) => b.inserted?.file.endsWith('disk.qcow2'))?.inserted?.ro).toBe(false);
    } finally {
      await d.destroy(id);
      await d.close();
    }
  }, 30_000);

  it('refuses specs it cannot run before writing any file', async () => {
    const d = createQemuDriver({ dataDir, accelerator: 'tcg' });
    try {
      await expect(d.define(spec('../escape', image))).rejects.toMatchObject({ code: 'CommandFailed' });
      await expect(d.define(spec('v', image, { vcpus: 3 }))).rejects.toMatchObject({
        code: 'ResizeOutOfRange',
      });
      await expect(d.define(spec('v', image, { memoryMiB: 512 }))).rejects.toMatchObject({
        code: 'ResizeOutOfRange',
      });
      const big = join(dataDir, 'big.qcow2');
      await execFileP('qemu-img', ['create', '-q', '-f', 'qcow2', big, '2G']);
      await expect(
        d.define(spec('v', image, { boot: { diskImage: { path: big, format: 'qcow2' }, firmware: 'bios' } })),
      ).rejects.toMatchObject({ code: 'DiskTooSmall' });
      expect(existsSync(join(dataDir, 'instances', 'v'))).toBe(false);
      await expect(d.start('nope')).rejects.toMatchObject({ code: 'NotDefined' });
      await expect(d.readConsole('nope', 0)).rejects.toMatchObject({ code: 'NotDefined' });
      expect(await d.status('nope')).toBeNull();
    } finally {
      await d.close();
    }
    await expect(d.list()).rejects.toMatchObject({ code: 'MonitorDisconnected' });
  });

  it('probes KVM by booting the tiny guest and settles on TCG on this host, caching the result', async () => {
    const probeDir = await mkdtemp(join(tmpdir(), 'yh-probe-'));
    const d = createQemuDriver({ dataDir: probeDir, probeImage: async () => image, probeTimeoutMs: 10_000 });
    try {
      const caps = await d.capabilities();
      expect(caps).toMatchObject({ driver: 'qemu', hypervisorVersion: expect.stringMatching(/^\d+\.\d+/) });
      expect(caps.vcpus).toBeGreaterThan(0);
      expect(caps.diskGiB).toBeGreaterThan(0);
      expect(caps.firmware).toContain('bios');
      const kvmWorks = (await d.acceleratorInfo()).accelerator === 'kvm';
      // The architecture notes say this host's /dev/kvm cannot boot stock guests.
      if (existsSync('/dev/kvm'))
        console.info(`[qemu figures] KVM probe: ${(await d.acceleratorInfo()).detail}`);
      expect(caps.accelerator).toBe(kvmWorks ? 'kvm' : 'tcg');
      if (existsSync('/dev/kvm')) {
        const cached = JSON.parse(await readFile(join(probeDir, 'kvm-probe.json'), 'utf8'));
        expect(cached).toMatchObject({
          accelerator: caps.accelerator,
          key: expect.stringContaining(caps.hypervisorVersion),
        });
        // A second driver reads the cache instead of booting again.
        const again = createQemuDriver({
          dataDir: probeDir,
          probeImage: () => Promise.reject(new Error('no probe')),
        });
        expect((await again.capabilities()).accelerator).toBe(caps.accelerator);
        await again.close();
      }
    } finally {
      await d.close();
      await rm(probeDir, { recursive: true, force: true });
    }
  }, 30_000);

  it('is registered as "qemu" in the driver loader, next to "fake"', async () => {
    const qemu = loadHypervisor('qemu', { dataDir, accelerator: 'tcg' });
    const fake = loadHypervisor('fake', {});
    expect([qemu.name, fake.name]).toEqual(['qemu', 'fake']);
    await Promise.all([qemu.close(), fake.close()]);
    expect(() => loadHypervisor('xen' as 'qemu', { dataDir })).toThrow(/unknown hypervisor driver "xen"/);
  });
});
