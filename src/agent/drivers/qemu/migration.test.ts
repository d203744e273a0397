import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MigrationProgress, VmEvent, VmSpec } from '../../hypervisor.js';
import type { TinyImage } from './kvm-probe.js';
import { isOurQemu } from './process.js';
import { createQemuDriver } from './qemu-driver.js';
import { consoleText, qemuAvailable, tinyGuest, waitUntil } from './test-guest.js';

/**
 * Live migration between two driver objects with their own data directories — two hosts as far as
 * the driver can tell — over TCP on the loopback. The guest counts on its console and writes a mark
 * on its root disk before the move; after it, the target's console goes on counting from where the
 * source stopped, and the target reads the mark back from its own copy of the disk.
 */

const ticks = (text: string) => [...text.matchAll(/TICK (\d+)/g)].map((m) => Number(m[1]));

const COUNTER = '#!/bin/sh\n(i=0; while :; do echo "TICK $i"; i=$((i+1)); sleep 1; done) &\n';

describe.skipIf(!qemuAvailable)('qemu driver live migration', () => {
  const dirs: string[] = [];
  let image: TinyImage;
  beforeAll(async () => {
    image = await tinyGuest();
  }, 240_000);
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  const driverPair = async () => {
    const a = await mkdtemp(join(tmpdir(), 'yh-mig-a-'));
    const b = await mkdtemp(join(tmpdir(), 'yh-mig-b-'));
    dirs.push(a, b);
    return [
      createQemuDriver({ dataDir: a, accelerator: 'tcg' }),
      createQemuDriver({ dataDir: b, accelerator: 'tcg' }),
    ] as const;
  };

  const spec = (id: string): VmSpec => ({
    id,
    name: id,
    vcpus: 1,
    maxVcpus: 2,
    memoryMiB: 192,
    maxMemoryMiB: 256,
    diskGiB: 1,
    boot: {
      kernel: { kernelPath: image.kernelPath, initrdPath: image.initrdPath, cmdline: image.cmdline },
      firmware: 'bios',
    },
    cloudInit: { userData: COUNTER, metaData: { 'instance-id': id } },
  });

  it('moves a running guest with its disk to another host; it keeps counting', async () => {
    const [src, dst] = await driverPair();
    const id = 'mover';
    const srcEvents: VmEvent[] = [];
    src.onEvent((e) => srcEvents.push(e));
    try {
      await src.define(spec(id));
      await src.start(id);
      await waitUntil(
        'guest shell',
        async () => /YUNHAI-READY[\s\S]*# /.test(await consoleText(src, id)),
        60_000,
      );
      await waitUntil('ticks', async () => ticks(await consoleText(src, id)).length >= 2);
      // A mark on the root disk, written straight to the device and flushed.
      await src.writeConsole(
        id,
        Buffer.from(
          'printf MIGRATED-DISK-%s 4242 | dd of=/dev/vda bs=512 conv=sync,fsync 2>/dev/null; echo WROTE-$((40+2))\n',
        ),
      );
      await waitUntil('disk mark written', async () => /WROTE-42/.test(await consoleText(src, id)));

      const target = await dst.prepareIncoming(spec(id), { listenHost: '127.0.0.1' });
      expect(target.migrateUri).toMatch(/^tcp:127\.0\.0\.1:\d+$/);
      expect(target.diskUri).toMatch(/^nbd:\/\/127\.0\.0\.1:\d+\/root$/);
      expect(await dst.status(id)).toMatchObject({ state: 'paused' });

      const progress: MigrationProgress[] = [];
      const result = await src.migrateOut(id, target, (p) => progress.push(p));
      const lastOnSource = Math.max(...ticks(await consoleText(src, id)));
      await dst.finishIncoming(id);

      expect(result.transferredBytes).toBeGreaterThan(1024 * 1024);
      expect(result.downtimeMs).toBeGreaterThanOrEqual(0);
      expect(result.downtimeMs).toBeLessThan(5_000);
      expect(progress.some((p) => p.phase === 'disk')).toBe(true);
      expect(await dst.status(id)).toMatchObject({ state: 'running', vcpus: 1, memoryMiB: 192 });

      // The counter goes on in the target: its next numbers follow the source's last one.
      const next = await waitUntil(
        'ticks on the target',
        async () => {
          const t = ticks(await consoleText(dst, id));
          return t.length >= 2 ? t : undefined;
        },
        30_000,
      );
      expect(next[0]).toBeGreaterThanOrEqual(lastOnSource);
      expect(next[0]).toBeLessThanOrEqual(lastOnSource + 5);
      // Not a reboot: no boot banner in the target's console.
      expect(await consoleText(dst, id)).not.toMatch(/YUNHAI-BOOT/);

      // The disk came along.
      await dst.writeConsole(
        id,
        Buffer.from(
          // From the disk, not the guest's page cache (which came along with its memory).
          'echo 3 >/proc/sys/vm/drop_caches; dd if=/dev/vda bs=512 count=1 2>/dev/null | head -c 18; echo\n',
        ),
      );
      await waitUntil('disk mark read back', async () =>
        /MIGRATED-DISK-4242/.test((await consoleText(dst, id)).replace(/dd if=\/dev\/vda[^\n]*\n/, '')),
      );

      // The source copy is stale; destroying it reports nothing (the instance did not stop).
      const srcPid = (await src.status(id))?.pid;
      await src.destroy(id);
      if (srcPid) expect(await isOurQemu(srcPid, join(dirs[0]!, 'instances', id, 'qemu.pid'))).toBe(false);
      expect(srcEvents.filter((e) => e.type === 'stopped' || e.type === 'crashed')).toEqual([]);
    } finally {
      await src.destroy(id).catch(() => {});
      await dst.destroy(id).catch(() => {});
      await src.close();
      await dst.close();
    }
  }, 180_000);

  it('moves a stopped VM with its disk (cold migration); it boots on the target with the data', async () => {
    const [src, dst] = await driverPair();
    const id = 'sleeper';
    const srcEvents: VmEvent[] = [];
    src.onEvent((e) => srcEvents.push(e));
    try {
      await src.define({ ...spec(id), cloudInit: undefined });
      await src.start(id);
      await waitUntil(
        'guest shell',
        async () => /YUNHAI-READY[\s\S]*# /.test(await consoleText(src, id)),
        60_000,
      );
      await src.writeConsole(
        id,
        Buffer.from(
          'printf COLD-DISK-%s 7777 | dd of=/dev/vda bs=512 conv=sync,fsync 2>/dev/null; echo WROTE-$((40+2))\n',
        ),
      );
      await waitUntil('disk mark written', async () => /WROTE-42/.test(await consoleText(src, id)));
      await src.stop(id, { timeoutMs: 30_000 });
      expect(await src.status(id)).toMatchObject({ state: 'stopped' });
      srcEvents.length = 0;

      // Not while it runs, and a live migration refuses a stopped VM.
      const target = await dst.prepareIncoming(
        { ...spec(id), cloudInit: undefined },
        { listenHost: '127.0.0.1' },
      );
      await expect(src.migrateOut(id, target)).rejects.toMatchObject({ code: 'InvalidState' });
      const result = await src.migrateOut(id, target, undefined, { cold: true });
      expect(result.transferredBytes).toBeGreaterThan(0);
      await dst.finishIncoming(id, { resume: false });
      expect(await dst.status(id)).toMatchObject({ state: 'stopped' });
      await src.destroy(id);
      expect(srcEvents).toEqual([]);

      await dst.start(id);
      await waitUntil(
        'guest shell on the target',
        async () => /YUNHAI-READY[\s\S]*# /.test(await consoleText(dst, id)),
        60_000,
      );
      await dst.writeConsole(
        id,
        Buffer.from('dd if=/dev/vda bs=512 count=1 2>/dev/null | head -c 14; echo\n'),
      );
      await waitUntil('disk mark on the target', async () =>
        /COLD-DISK-7777/.test((await consoleText(dst, id)).replace(/dd if=\/dev\/vda[^\n]*\n/, '')),
      );
    } finally {
      await src.destroy(id).catch(() => {});
      await dst.destroy(id).catch(() => {});
      await src.close();
      await dst.close();
    }
  }, 180_000);

  it('keeps the guest running on the source when nothing listens at the target', async () => {
    const [src, dst] = await driverPair();
    const id = 'stayer';
    try {
      await src.define(spec(id));
      await src.start(id);
      await waitUntil('ticks', async () => ticks(await consoleText(src, id)).length >= 1, 60_000);
      // A real target, abandoned before the source connects.
      const target = await dst.prepareIncoming(spec(id), { listenHost: '127.0.0.1' });
      await dst.destroy(id);
      await expect(src.migrateOut(id, target)).rejects.toMatchObject({ code: 'CommandFailed' });
      expect(await src.status(id)).toMatchObject({ state: 'running' });
      const before = Math.max(...ticks(await consoleText(src, id)));
      await waitUntil(
        'still counting',
        async () => Math.max(...ticks(await consoleText(src, id))) > before + 1,
      );
      await expect(dst.finishIncoming(id)).rejects.toMatchObject({ code: 'NotDefined' });
    } finally {
      await src.destroy(id).catch(() => {});
      await dst.destroy(id).catch(() => {});
      await src.close();
      await dst.close();
    }
  }, 120_000);
});
