/**
 * Kernel image handling for direct kernel boot: locating the compressed payload inside an x86 bzImage
 * (boot protocol >= 2.08, Documentation/arch/x86/boot.rst) and inspecting ELF files (the uncompressed
 * `vmlinux` must carry a PVH entry note so QEMU's `-kernel` can start it without the real-mode setup and
 * decompressor; busybox must be static to run from an initramfs).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import { lz4LegacyDecode } from './lz4.js';
import { commandExists, pipeCommand } from './run-command.js';

export type PayloadFormat = 'xz' | 'gzip' | 'zstd' | 'lzma' | 'lz4' | 'bzip2' | 'lzo' | 'unknown';

export interface BzImagePayload {
  offset: number;
  length: number;
  format: PayloadFormat;
  /** Boot protocol version, e.g. 0x020f. */
  protocol: number;
}

const XZ_MAGIC = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]);

/** Finds the compressed kernel inside a bzImage from its setup header. Throws on anything else. */
export function bzImagePayload(bz: Uint8Array): BzImagePayload {
  const buf = Buffer.from(bz.buffer, bz.byteOffset, bz.byteLength);
  if (
    buf.length < 0x250 ||
    buf.readUInt16LE(0x1fe) !== 0xaa55 ||
    buf.toString('ascii', 0x202, 0x206) !== 'HdrS'
  ) {
    throw new RangeError('not an x86 bzImage (no HdrS setup header)');
  }
  const protocol = buf.readUInt16LE(0x206);
  if (protocol < 0x208) throw new RangeError(`boot protocol ${protocol.toString(16)} has no payload fields`);
  const setupSects = buf[0x1f1] || 4;
  const start = (setupSects + 1) * 512 + buf.readUInt32LE(0x248);
  const length = buf.readUInt32LE(0x24c);
  if (start + length > buf.length) throw new RangeError('bzImage payload runs past the end of the file');
  return { offset: start, length, format: payloadFormat(buf.subarray(start, start + 6)), protocol };
}

function payloadFormat(magic: Buffer): PayloadFormat {
  if (magic.equals(XZ_MAGIC)) return 'xz';
  if (magic[0] === 0x1f && (magic[1] === 0x8b || magic[1] === 0x9e)) return 'gzip';
  if (magic.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  if (magic[0] === 0x5d && magic[1] === 0x00) return 'lzma';
  if (magic.readUInt32LE(0) === 0x184c2102) return 'lz4';
  if (magic.toString('ascii', 0, 3) === 'BZh') return 'bzip2';
  if (magic[0] === 0x89 && magic.toString('ascii', 1, 4) === 'LZO') return 'lzo';
  return 'unknown';
}

export interface ElfInfo {
  class64: boolean;
  /** A PT_INTERP header means the binary needs a dynamic loader (not static). */
  dynamic: boolean;
  /** Physical entry point from the XEN_ELFNOTE_PHYS32_ENTRY note (PVH boot), if present. */
  pvhEntry: number | null;
}

const PT_INTERP = 3;
const PT_NOTE = 4;
const XEN_ELFNOTE_PHYS32_ENTRY = 18;

/** Reads the program headers and notes of a little-endian ELF file. */
export function elfInfo(elf: Uint8Array): ElfInfo {
  const buf = Buffer.from(elf.buffer, elf.byteOffset, elf.byteLength);
  if (buf.length < 52 || buf.readUInt32BE(0) !== 0x7f454c46) throw new RangeError('not an ELF file');
  if (buf[5] !== 1) throw new RangeError('big-endian ELF is not supported');
  const class64 = buf[4] === 2;
  const phoff = class64 ? Number(buf.readBigUInt64LE(0x20)) : buf.readUInt32LE(0x1c);
  const phentsize = buf.readUInt16LE(class64 ? 0x36 : 0x2a);
  const phnum = buf.readUInt16LE(class64 ? 0x38 : 0x2c);
  let dynamic = false;
  let pvhEntry: number | null = null;
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * phentsize;
    if (ph + phentsize > buf.length) throw new RangeError('ELF program header past end of file');
    const type = buf.readUInt32LE(ph);
    if (type === PT_INTERP) dynamic = true;
    if (type !== PT_NOTE) continue;
    const offset = class64 ? Number(buf.readBigUInt64LE(ph + 8)) : buf.readUInt32LE(ph + 4);
    const size = class64 ? Number(buf.readBigUInt64LE(ph + 32)) : buf.readUInt32LE(ph + 16);
    for (let n = offset; n + 12 <= offset + size && n + 12 <= buf.length; ) {
      const namesz = buf.readUInt32LE(n);
      const descsz = buf.readUInt32LE(n + 4);
      const ntype = buf.readUInt32LE(n + 8);
      const name = buf.toString('ascii', n + 12, n + 12 + Math.max(0, namesz - 1));
      const desc = n + 12 + align4(namesz);
      if (name === 'Xen' && ntype === XEN_ELFNOTE_PHYS32_ENTRY && descsz >= 4)
        pvhEntry = buf.readUInt32LE(desc);
      n = desc + align4(descsz);
    }
  }
  return { class64, dynamic, pvhEntry };
}

function align4(n: number): number {
  return (n + 3) & ~3;
}

/**
 * Decompresses the kernel inside `bzImagePath` to `outPath` (the ELF `vmlinux`). gzip is handled in
 * process, and so is lz4 (Debian's cloud kernels); xz, the format of Debian's generic kernel, by `xz` (xz-utils) or else python3's lzma module, since Node has
 * no xz decoder; zstd by `zstd`.
 */
export async function extractVmlinux(bzImagePath: string, outPath: string): Promise<PayloadFormat> {
  const bz = await readFile(bzImagePath);
  const payload = bzImagePayload(bz);
  const data = bz.subarray(payload.offset, payload.offset + payload.length);
  switch (payload.format) {
    case 'gzip':
      await writeFile(outPath, gunzipSync(data));
      break;
    case 'xz':
      if (await commandExists('xz')) {
        // The payload is followed by the decompressor's own code; --single-stream ignores it.
        await pipeCommand('xz', ['-dc', '--single-stream'], data, outPath);
      } else if (await commandExists('python3')) {
        const script =
          'import lzma,sys; sys.stdout.buffer.write(lzma.LZMADecompressor().decompress(sys.stdin.buffer.read()))';
        await pipeCommand('python3', ['-c', script], data, outPath);
      } else {
        throw new Error('decompressing an xz kernel needs xz (xz-utils) or python3');
      }
      break;
    case 'lz4':
      await writeFile(outPath, lz4LegacyDecode(data));
      break;
    case 'zstd':
      if (!(await commandExists('zstd'))) throw new Error('decompressing a zstd kernel needs zstd');
      await pipeCommand('zstd', ['-dc'], data, outPath);
      break;
    default:
      throw new Error(`unsupported kernel compression: ${payload.format}`);
  }
  return payload.format;
}

const PT_LOAD = 1;

/**
 * Shrinks each loadable segment's file size to exclude the zero bytes at its end, in place; memory
 * sizes stay, so a loader zero-fills the same bytes. Returns the bytes dropped from the file images.
 *
 * Why: a vmlinux cut out of a bzImage carries `.bss`, `.brk` and `.init.scratch` as ~20 MB of file
 * zeros. QEMU keeps every `-kernel` ELF segment mapped from the file for resets, so those zeros were
 * resident in every VM's QEMU process for nothing.
 */
export function trimElfZeroTails(elf: Uint8Array): number {
  const buf = Buffer.from(elf.buffer, elf.byteOffset, elf.byteLength);
  if (buf.length < 64 || buf.readUInt32BE(0) !== 0x7f454c46) throw new RangeError('not an ELF file');
  if (buf[4] !== 2 || buf[5] !== 1) throw new RangeError('only little-endian 64-bit ELF is supported');
  const phoff = Number(buf.readBigUInt64LE(0x20));
  const phentsize = buf.readUInt16LE(0x36);
  const phnum = buf.readUInt16LE(0x38);
  let dropped = 0;
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * phentsize;
    if (ph + 56 > buf.length) throw new RangeError('ELF program header past end of file');
    if (buf.readUInt32LE(ph) !== PT_LOAD) continue;
    const offset = Number(buf.readBigUInt64LE(ph + 8));
    const filesz = Number(buf.readBigUInt64LE(ph + 32));
    if (offset + filesz > buf.length) throw new RangeError('ELF segment past end of file');
    let end = offset + filesz;
    while (end > offset && buf[end - 1] === 0) end--;
    buf.writeBigUInt64LE(BigInt(end - offset), ph + 32);
    dropped += offset + filesz - end;
  }
  return dropped;
}
