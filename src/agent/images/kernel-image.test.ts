import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { bzImagePayload, elfInfo, extractVmlinux, trimElfZeroTails } from './kernel-image.js';

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

  it('decompresses an lz4 legacy payload in process (Debian cloud kernels)', async () => {
    // One block holding the whole ELF as literals, then the size the kernel build appends.
    const lits = kernel.length;
    const lenBytes: number[] = [];
    for (let rest = lits - 15; ; rest -= 255) {
      lenBytes.push(Math.min(rest, 255));
      if (rest < 255) break;
    }
    const block = Buffer.concat([Buffer.from([0xf0, ...lenBytes]), kernel]);
    const head = Buffer.alloc(8);
    head.writeUInt32LE(0x184c2102, 0);
    head.writeUInt32LE(block.length, 4);
    const size = Buffer.alloc(4);
    size.writeUInt32LE(kernel.length);
    const bz = path.join(tmp, 'lz4.bz');
    writeFileSync(bz, fakeBzImage(Buffer.concat([head, block, size])).buf);
    const out = path.join(tmp, 'lz4.vmlinux');
    expect(await extractVmlinux(bz, out)).toBe('lz4');
    expect(readFileSync(out).equals(kernel)).toBe(true);
  });

  it('refuses payload formats it cannot decompress', async () => {
    const bz = path.join(tmp, 'bz2.bz');
    writeFileSync(bz, fakeBzImage(Buffer.from('BZh91AY&SY')).buf);
    await expect(extractVmlinux(bz, path.join(tmp, 'bz2.vmlinux'))).rejects.toThrow(
      /unsupported kernel compression: bzip2/,
    );
  });
});

describe('trimElfZeroTails', () => {
  /** ELF64 with two PT_LOAD segments and one PT_NOTE. */
  function loadElf(seg1: Buffer, seg2: Buffer): Buffer {
    const phoff = 64;
    const d1 = phoff + 56 * 3;
    const d2 = d1 + seg1.length;
    const elf = Buffer.alloc(d2 + seg2.length + 16, 0);
    elf.writeUInt32BE(0x7f454c46, 0);
    elf[4] = 2;
    elf[5] = 1;
    elf.writeBigUInt64LE(BigInt(phoff), 0x20);
    elf.writeUInt16LE(56, 0x36);
    elf.writeUInt16LE(3, 0x38);
    const ph = (i: number, type: number, off: number, size: number) => {
      const o = phoff + 56 * i;
      elf.writeUInt32LE(type, o);
      elf.writeBigUInt64LE(BigInt(off), o + 8);
      elf.writeBigUInt64LE(BigInt(size), o + 32);
      elf.writeBigUInt64LE(BigInt(size), o + 40);
    };
    ph(0, 1, d1, seg1.length);
    ph(1, 4, d1, 4);
    ph(2, 1, d2, seg2.length);
    seg1.copy(elf, d1);
    seg2.copy(elf, d2);
    return elf;
  }
  const field = (elf: Buffer, i: number, at: number) => Number(elf.readBigUInt64LE(64 + 56 * i + at));

  it('drops trailing zeros from each PT_LOAD file size and keeps memory sizes', () => {
    const seg1 = Buffer.concat([Buffer.from('text'), Buffer.alloc(10), Buffer.from('x'), Buffer.alloc(100)]);
    const seg2 = Buffer.concat([Buffer.from('data'), Buffer.alloc(4096)]);
    const elf = loadElf(seg1, seg2);
    expect(trimElfZeroTails(elf)).toBe(100 + 4096);
    expect([field(elf, 0, 32), field(elf, 0, 40)]).toEqual([15, seg1.length]);
    expect([field(elf, 2, 32), field(elf, 2, 40)]).toEqual([4, seg2.length]);
    expect(field(elf, 1, 32)).toBe(4); // the note is not a load segment
    expect(trimElfZeroTails(elf)).toBe(0); // idempotent
  });

  it('refuses what is not a 64-bit little-endian ELF', () => {
    expect(() => trimElfZeroTails(Buffer.alloc(80))).toThrow(/not an ELF/);
  });
});
