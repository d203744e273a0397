import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { bzImagePayload, elfInfo, extractVmlinux } from './kernel-image.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'yunhai-kernel-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A bzImage-shaped buffer: setup header fields only, `payload` at the recorded offset, then a tail. */
function fakeBzImage(payload: Buffer, opts: { setupSects?: number; protocol?: number; tail?: Buffer } = {}) {
  const setupSects = opts.setupSects ?? 3;
  const payloadOffset = 100;
  const start = (setupSects + 1) * 512 + payloadOffset;
  const tail = opts.tail ?? Buffer.from('decompressor code follows the payload');
  const buf = Buffer.alloc(start + payload.length + tail.length);
  buf[0x1f1] = setupSects;
  buf.writeUInt16LE(0xaa55, 0x1fe);
  buf.write('HdrS', 0x202, 'ascii');
  buf.writeUInt16LE(opts.protocol ?? 0x020f, 0x206);
  buf.writeUInt32LE(payloadOffset, 0x248);
  buf.writeUInt32LE(payload.length, 0x24c);
  payload.copy(buf, start);
  tail.copy(buf, start + payload.length);
  return { buf, start };
}

/** A minimal ELF64 with a PT_NOTE segment holding `notes`, and optionally a PT_INTERP. */
function fakeElf(notes: { name: string; type: number; desc: Buffer }[], interp = false): Buffer {
  const noteBytes = Buffer.concat(
    notes.map((n) => {
      const name = Buffer.from(`${n.name}\0`);
      const head = Buffer.alloc(12);
      head.writeUInt32LE(name.length, 0);
      head.writeUInt32LE(n.desc.length, 4);
      head.writeUInt32LE(n.type, 8);
      const pad = (b: Buffer) => Buffer.concat([b, Buffer.alloc((4 - (b.length % 4)) % 4)]);
      return Buffer.concat([head, pad(name), pad(n.desc)]);
    }),
  );
  const phnum = interp ? 2 : 1;
  const phoff = 64;
  const dataOff = phoff + 56 * phnum;
  const elf = Buffer.alloc(dataOff + noteBytes.length);
  elf.writeUInt32BE(0x7f454c46, 0);
  elf[4] = 2; // ELFCLASS64
  elf[5] = 1; // little-endian
  elf.writeBigUInt64LE(BigInt(phoff), 0x20);
  elf.writeUInt16LE(56, 0x36);
  elf.writeUInt16LE(phnum, 0x38);
  elf.writeUInt32LE(4, phoff); // PT_NOTE
  elf.writeBigUInt64LE(BigInt(dataOff), phoff + 8);
  elf.writeBigUInt64LE(BigInt(noteBytes.length), phoff + 32);
  if (interp) elf.writeUInt32LE(3, phoff + 56); // PT_INTERP
  noteBytes.copy(elf, dataOff);
  return elf;
}

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};

describe('bzImagePayload', () => {
  it.each([
    ['xz', Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 1, 2])],
    ['gzip', Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0])],
    ['zstd', Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0])],
    ['lz4', Buffer.from([0x02, 0x21, 0x4c, 0x18, 0, 0, 0, 0])],
    ['bzip2', Buffer.from('BZh91AY&')],
    ['unknown', Buffer.from('plain text')],
  ])('finds a %s payload from the setup header', (format, payload) => {
    const { buf, start } = fakeBzImage(payload);
    expect(bzImagePayload(buf)).toEqual({ offset: start, length: payload.length, format, protocol: 0x020f });
  });

  it('treats setup_sects 0 as 4, as the boot protocol says', () => {
    const payload = Buffer.from('x');
    const { buf } = fakeBzImage(payload, { setupSects: 4 });
    buf[0x1f1] = 0;
    expect(bzImagePayload(buf).offset).toBe(5 * 512 + 100);
  });

  it('rejects files without a setup header and too-old boot protocols', () => {
    expect(() => bzImagePayload(Buffer.alloc(4096))).toThrow(/HdrS/);
    expect(() => bzImagePayload(fakeBzImage(Buffer.from('x'), { protocol: 0x0206 }).buf)).toThrow(/protocol/);
  });
});

describe('elfInfo', () => {
  it('reads the PVH entry point from the Xen PHYS32_ENTRY note', () => {
    const elf = fakeElf([
      { name: 'GNU', type: 3, desc: Buffer.from('build-id-bytes') },
      { name: 'Xen', type: 18, desc: u32(0x1000200) },
    ]);
    expect(elfInfo(elf)).toEqual({ class64: true, dynamic: false, pvhEntry: 0x1000200 });
  });

  it('reports no PVH entry when the note is missing', () => {
    expect(elfInfo(fakeElf([{ name: 'Xen', type: 1, desc: u32(1) }])).pvhEntry).toBeNull();
  });

  it('reports a PT_INTERP header as dynamic', () => {
    expect(elfInfo(fakeElf([], true)).dynamic).toBe(true);
  });

  it('rejects non-ELF input', () => {
    expect(() => elfInfo(Buffer.from('#!/bin/sh\n'.padEnd(64)))).toThrow(/ELF/);
  });

  it.skipIf(!existsSync('/bin/busybox') || !existsSync('/bin/ls'))(
    'tells the static busybox from a dynamic host binary',
    () => {
      expect(elfInfo(readFileSync('/bin/busybox')).dynamic).toBe(false);
      expect(elfInfo(readFileSync('/bin/ls')).dynamic).toBe(true);
    },
  );
});

describe('extractVmlinux', () => {
  const kernel = fakeElf([{ name: 'Xen', type: 18, desc: u32(0x1000000) }]);

  it('decompresses a gzip payload in process', async () => {
    const bz = path.join(tmp, 'gzip.bz');
    writeFileSync(bz, fakeBzImage(gzipSync(kernel)).buf);
    const out = path.join(tmp, 'gzip.vmlinux');
    expect(await extractVmlinux(bz, out)).toBe('gzip');
    expect(readFileSync(out).equals(kernel)).toBe(true);
  });

  const hasXz = spawnSync('sh', ['-c', 'command -v xz']).status === 0;
  it.skipIf(!hasXz)('decompresses an xz payload with x86 BCJ and ignores the code after it', async () => {
    const xz = execFileSync('xz', ['--format=xz', '--check=crc32', '--x86', '--lzma2', '-c'], {
      input: kernel,
    });
    const bz = path.join(tmp, 'xz.bz');
    writeFileSync(bz, fakeBzImage(xz, { tail: Buffer.alloc(300, 0xcc) }).buf);
    const out = path.join(tmp, 'xz.vmlinux');
    expect(await extractVmlinux(bz, out)).toBe('xz');
    expect(elfInfo(readFileSync(out)).pvhEntry).toBe(0x1000000);
  });

  it('refuses payload formats it cannot decompress', async () => {
    const bz = path.join(tmp, 'lz4.bz');
    writeFileSync(bz, fakeBzImage(Buffer.from([0x02, 0x21, 0x4c, 0x18, 0, 0])).buf);
    await expect(extractVmlinux(bz, path.join(tmp, 'lz4.vmlinux'))).rejects.toThrow(
      /unsupported kernel compression: lz4/,
    );
  });
});
