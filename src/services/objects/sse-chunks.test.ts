import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  chunkCount,
  decryptRange,
  encryptChunks,
  encryptedSize,
  SSE_CHUNK,
  SseIntegrityError,
} from './sse-chunks.js';

async function collect(it: AsyncIterable<Buffer>): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const b of it) out.push(b);
  return Buffer.concat(out);
}

/** Feeds `data` in uneven pieces, as a network body arrives. */
async function* pieces(data: Buffer, size = 7_777) {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

const reader = (stored: Buffer) =>
  async function* (from: number, to: number) {
    yield* pieces(stored.subarray(from, to + 1), 5_000);
  };

describe('chunked AES-256-GCM', () => {
  const key = randomBytes(32);
  const prefix = randomBytes(8);

  it.each([0, 1, SSE_CHUNK - 1, SSE_CHUNK, SSE_CHUNK + 1, 3 * SSE_CHUNK, 3 * SSE_CHUNK + 12_345])(
    'round-trips %i bytes and sizes the stored form',
    async (n) => {
      const plain = randomBytes(n);
      const stored = await collect(encryptChunks(pieces(plain), key, prefix));
      expect(stored.length).toBe(encryptedSize(n));
      expect(chunkCount(n)).toBe(Math.max(1, Math.ceil(n / SSE_CHUNK)));
      if (n > 64) expect(stored.includes(plain.subarray(0, 64))).toBe(false);
      const back = await collect(decryptRange(reader(stored), key, prefix, n, 0, Math.max(0, n - 1)));
      expect(back.equals(plain)).toBe(true);
    },
  );

  it('decrypts ranges across chunk boundaries, reading only the chunks they touch', async () => {
    const n = 4 * SSE_CHUNK + 100;
    const plain = randomBytes(n);
    const stored = await collect(encryptChunks(pieces(plain), key, prefix));
    for (const [a, b] of [
      [0, 0],
      [SSE_CHUNK - 10, SSE_CHUNK + 10],
      [SSE_CHUNK, 2 * SSE_CHUNK - 1],
      [2 * SSE_CHUNK + 5, n - 1],
      [n - 1, n - 1],
    ] as const) {
      const reads: [number, number][] = [];
      const r = async function* (from: number, to: number) {
        reads.push([from, to]);
        yield* reader(stored)(from, to);
      };
      const got = await collect(decryptRange(r, key, prefix, n, a, b));
      expect(got.equals(plain.subarray(a, b + 1))).toBe(true);
      const chunks = Math.floor(b / SSE_CHUNK) - Math.floor(a / SSE_CHUNK) + 1;
      expect(reads[0]![1] - reads[0]![0] + 1).toBeLessThanOrEqual(chunks * (SSE_CHUNK + 16));
    }
  });

  it('refuses a wrong key, a flipped bit and a truncated body', async () => {
    const n = 2 * SSE_CHUNK;
    const plain = randomBytes(n);
    const stored = await collect(encryptChunks(pieces(plain), key, prefix));
    await expect(collect(decryptRange(reader(stored), randomBytes(32), prefix, n, 0, n - 1))).rejects.toThrow(
      SseIntegrityError,
    );
    const flipped = Buffer.from(stored);
    flipped[100]! ^= 1;
    await expect(collect(decryptRange(reader(flipped), key, prefix, n, 0, n - 1))).rejects.toThrow(
      SseIntegrityError,
    );
    // Dropping the last chunk and claiming a shorter body: the new last chunk is not marked final.
    const cut = stored.subarray(0, SSE_CHUNK + 16);
    await expect(
      collect(decryptRange(reader(cut), key, prefix, SSE_CHUNK, 0, SSE_CHUNK - 1)),
    ).rejects.toThrow(SseIntegrityError);
  });
});
