/**
 * LZ4 "legacy" frame decoding, the format the Linux kernel build uses for LZ4-compressed bzImages
 * (Debian's cloud kernels): magic 0x184C2102, then blocks of `u32le compressed size` + one LZ4
 * block each (at most 8 MiB decompressed). The kernel build appends the decompressed size as a
 * `u32le` after the last block; anything that does not parse as a whole block ends the stream.
 * Node has no LZ4 codec and this is ~50 lines, so it lives here rather than as a dependency.
 */

export const LZ4_LEGACY_MAGIC = 0x184c2102;
const LEGACY_BLOCK_MAX = 8 << 20;

/** Decodes one raw LZ4 block into `out` from offset 0; returns the number of bytes written. */
export function lz4DecodeBlock(src: Uint8Array, out: Uint8Array): number {
  let ip = 0;
  let op = 0;
  const end = src.length;
  for (;;) {
    if (ip >= end) throw new RangeError('lz4: block ends before its last literals');
    const token = src[ip++]!;
    let lit = token >>> 4;
    if (lit === 15) {
      let b: number;
      do {
        if (ip >= end) throw new RangeError('lz4: truncated literal length');
        b = src[ip++]!;
        lit += b;
      } while (b === 255);
    }
    if (ip + lit > end) throw new RangeError('lz4: literals run past the block');
    if (op + lit > out.length) throw new RangeError('lz4: output larger than the block limit');
    out.set(src.subarray(ip, ip + lit), op);
    ip += lit;
    op += lit;
    if (ip === end) return op; // the last sequence has literals only
    if (ip + 2 > end) throw new RangeError('lz4: truncated match offset');
    const offset = src[ip]! | (src[ip + 1]! << 8);
    ip += 2;
    if (offset === 0 || offset > op) throw new RangeError('lz4: match offset outside the output');
    let len = token & 15;
    if (len === 15) {
      let b: number;
      do {
        if (ip >= end) throw new RangeError('lz4: truncated match length');
        b = src[ip++]!;
        len += b;
      } while (b === 255);
    }
    len += 4;
    if (op + len > out.length) throw new RangeError('lz4: output larger than the block limit');
    let from = op - offset;
    if (offset >= len) {
      out.copyWithin(op, from, from + len);
      op += len;
    } else {
      // Overlapping match: repeats the last `offset` bytes, so copy forwards byte by byte.
      for (const stop = op + len; op < stop; ) out[op++] = out[from++]!;
    }
  }
}

/** Decodes an LZ4 legacy stream (see the module comment) to one buffer. */
export function lz4LegacyDecode(data: Uint8Array): Buffer {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (buf.length < 4 || buf.readUInt32LE(0) !== LZ4_LEGACY_MAGIC) {
    throw new RangeError('lz4: not an LZ4 legacy stream');
  }
  const chunks: Buffer[] = [];
  const scratch = Buffer.allocUnsafe(LEGACY_BLOCK_MAX);
  let ip = 4;
  while (ip + 4 <= buf.length) {
    const size = buf.readUInt32LE(ip);
    if (size === LZ4_LEGACY_MAGIC) {
      ip += 4; // concatenated streams
      continue;
    }
    if (size === 0 || ip + 4 + size > buf.length) break; // the appended length, or trailing bytes
    const n = lz4DecodeBlock(buf.subarray(ip + 4, ip + 4 + size), scratch);
    chunks.push(Buffer.from(scratch.subarray(0, n)));
    ip += 4 + size;
  }
  if (chunks.length === 0) throw new RangeError('lz4: stream has no blocks');
  return Buffer.concat(chunks);
}
