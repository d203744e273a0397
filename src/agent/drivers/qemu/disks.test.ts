import { execFile } from 'node:child_process';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBlankDisk, createOverlay, GIB, inspectBaseImage } from './disks.js';
import { qemuAvailable } from './test-guest.js';

const execFileP = promisify(execFile);
const info = async (path: string) =>
  JSON.parse((await execFileP('qemu-img', ['info', '-U', '--output=json', path])).stdout) as Record<
    string,
    unknown
  >;

describe.skipIf(!qemuAvailable)('instance disks', () => {
  let dir: string;
  let base: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'yh-disks-'));
    base = join(dir, 'base.qcow2');
    await execFileP('qemu-img', ['create', '-q', '-f', 'qcow2', base, '1G']);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('creates a qcow2 overlay of the requested size backed by the base image', async () => {
    const overlay = join(dir, 'vm1.qcow2');
    const base0 = await createOverlay({ base, baseFormat: 'qcow2', overlay, sizeGiB: 2 });
    expect(base0.virtualSize).toBe(GIB);
    expect(await info(overlay)).toMatchObject({
      format: 'qcow2',
      'virtual-size': 2 * GIB,
      'backing-filename': base,
      'backing-filename-format': 'qcow2',
    });
  });

  it('accepts a disk exactly the size of the image', async () => {
    await createOverlay({ base, baseFormat: 'qcow2', overlay: join(dir, 'exact.qcow2'), sizeGiB: 1 });
  });

  it('overlays raw bases as raw, so a raw file is never probed as another format', async () => {
    const raw = join(dir, 'base.raw');
    await execFileP('qemu-img', ['create', '-q', '-f', 'raw', raw, '512M']);
    const overlay = join(dir, 'raw-overlay.qcow2');
    await createOverlay({ base: raw, baseFormat: 'raw', overlay, sizeGiB: 1 });
    expect(await info(overlay)).toMatchObject({ 'backing-filename-format': 'raw' });
  });

  it('refuses a disk smaller than the image with DiskTooSmall and creates nothing', async () => {
    const big = join(dir, 'big.qcow2');
    await execFileP('qemu-img', ['create', '-q', '-f', 'qcow2', big, '3G']);
    const overlay = join(dir, 'small.qcow2');
    await expect(
      createOverlay({ base: big, baseFormat: 'qcow2', overlay, sizeGiB: 2 }),
    ).rejects.toMatchObject({
      code: 'DiskTooSmall',
    });
    await expect(info(overlay)).rejects.toThrow();
  });

  it('refuses a qcow2 with a corrupt header with ImageInvalid', async () => {
    const bad = join(dir, 'bad-header.qcow2');
    await execFileP('qemu-img', ['create', '-q', '-f', 'qcow2', bad, '1G']);
    const fh = await open(bad, 'r+');
    await fh.write(Buffer.alloc(8, 0xff), 0, 8, 48); // refcount table offset
    await fh.close();
    await expect(inspectBaseImage(bad, 'qcow2')).rejects.toMatchObject({ code: 'ImageInvalid' });
  });

  it('refuses a qcow2 whose metadata qemu-img check finds corrupt', async () => {
    const bad = join(dir, 'bad-l1.qcow2');
    await execFileP('qemu-img', ['create', '-q', '-f', 'qcow2', bad, '1G']);
    await execFileP('qemu-io', ['-c', 'write 0 64k', bad]);
    const fh = await open(bad, 'r+');
    const header = Buffer.alloc(48);
    await fh.read(header, 0, 48, 0);
    const l1 = Number(header.readBigUInt64BE(40));
    const entry = Buffer.alloc(8);
    entry.writeBigUInt64BE((1n << 63n) | 0x12345600000n); // points far past the end of the file
    await fh.write(entry, 0, 8, l1);
    await fh.close();
    await expect(
      createOverlay({ base: bad, baseFormat: 'qcow2', overlay: join(dir, 'x.qcow2'), sizeGiB: 2 }),
    ).rejects.toMatchObject({
      code: 'ImageInvalid',
      message: expect.stringMatching(/check/),
    });
  });

  it('refuses a file that is not the claimed format', async () => {
    const junk = join(dir, 'junk.qcow2');
    await writeFile(junk, Buffer.alloc(100_000, 7));
    await expect(inspectBaseImage(junk, 'qcow2')).rejects.toMatchObject({ code: 'ImageInvalid' });
    await expect(inspectBaseImage(join(dir, 'missing.qcow2'), 'qcow2')).rejects.toMatchObject({
      code: 'ImageInvalid',
    });
  });

  it('refuses a base image that has a backing file of its own', async () => {
    const chained = join(dir, 'chained.qcow2');
    await execFileP('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', base, chained]);
    await expect(inspectBaseImage(chained, 'qcow2')).rejects.toMatchObject({
      code: 'ImageInvalid',
      message: expect.stringMatching(/backing file/),
    });
  });

  it('creates blank qcow2 root disks for kernel-boot VMs', async () => {
    const blank = join(dir, 'blank.qcow2');
    await createBlankDisk(blank, 3);
    const i = await info(blank);
    expect(i).toMatchObject({ format: 'qcow2', 'virtual-size': 3 * GIB });
    expect(i['backing-filename']).toBeUndefined();
  });
});
