import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { LZ4_LEGACY_MAGIC, lz4DecodeBlock, lz4LegacyDecode } from './lz4.js';

function legacy(...blocks: Buffer[]): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt32LE(LZ4_LEGACY_MAGIC);
  const parts: Buffer[] = [head];
  for (const b of blocks) {
    const len = Buffer.alloc(4);
    len.writeUInt32LE(b.length);
    parts.push(len, b);
  }
  return Buffer.concat(parts);
}

describe('lz4DecodeBlock', () => {
  it('decodes literals, a plain match and an overlapping match (hand-made block)', () => {
    // "abcd" literal, then match offset 4 len 4 ("abcd"), then literal "xy" with
    // match offset 1 len 6 (overlap: "yyyyyy"), then final literal "!".
    const block = Buffer.from([
      0x40,
      0x61,
      0x62,
      0x63,
      0x64,
      0x04,
      0x00, // 4 literals, match len 0+4 at offset 4
      0x22,
      0x78,
      0x79,
      0x01,
      0x00, // 2 literals, match len 2+4 at offset 1
      0x10,
      0x21, // 1 literal, end
    ]);
    const out = Buffer.alloc(64);
    const n = lz4DecodeBlock(block, out);
    expect(out.subarray(0, n).toString()).toBe('abcdabcdxyyyyyyy!');
  });

  it('decodes extended literal and match lengths', () => {
    const lits = Buffer.alloc(300, 0x41);
    // token 0xff: 15 + 255 + 30 = 300 literals; match offset 1, len 15 + 5 + 4 = 24.
    const block = Buffer.concat([
      Buffer.from([0xff, 255, 30]),
      lits,
      Buffer.from([0x01, 0x00, 5]),
      Buffer.from([0x00]), // final sequence: zero literals
    ]);
    const out = Buffer.alloc(1024);
    const n = lz4DecodeBlock(block, out);
    expect(n).toBe(324);
    expect(out.subarray(0, n).equals(Buffer.alloc(324, 0x41))).toBe(true);
  });

  it('rejects offsets before the start of the output and truncated blocks', () => {
    expect(() => lz4DecodeBlock(Buffer.from([0x10, 0x61, 0x05, 0x00]), Buffer.alloc(16))).toThrow(/offset/);
    expect(() => lz4DecodeBlock(Buffer.from([0x50, 0x61]), Buffer.alloc(16))).toThrow(/past the block/);
    expect(() => lz4DecodeBlock(Buffer.from([0x10, 0x61, 0x01]), Buffer.alloc(16))).toThrow(/truncated/);
  });
});

describe('lz4LegacyDecode', () => {
  it('joins blocks and stops at the appended length the kernel build adds', () => {
    const tail = Buffer.alloc(4);
    tail.writeUInt32LE(10);
    const stream = Buffer.concat([
      legacy(
        Buffer.from([0x50, 0x68, 0x65, 0x6c, 0x6c, 0x6f]),
        Buffer.from([0x50, 0x77, 0x6f, 0x72, 0x6c, 0x64]),
      ),
      tail,
    ]);
    expect(lz4LegacyDecode(stream).toString()).toBe('helloworld');
  });

  it('refuses data without the legacy magic', () => {
    expect(() => lz4LegacyDecode(Buffer.from('not lz4'))).toThrow(/not an LZ4 legacy stream/);
  });

  const hasLz4 = spawnSync('sh', ['-c', 'command -v lz4']).status === 0;
  it.skipIf(!hasLz4)('round-trips what the lz4 tool writes with -l (multi-block, mixed data)', () => {
    const text = Buffer.from('the quick brown fox jumps over the lazy dog\n'.repeat(250_000));
    const input = Buffer.concat([text, randomBytes(1 << 20), Buffer.alloc(3 << 20)]);
    const compressed = execFileSync('lz4', ['-l', '-9', '-c'], { input, maxBuffer: 64 << 20 });
    expect(lz4LegacyDecode(compressed).equals(input)).toBe(true);
  });
});
