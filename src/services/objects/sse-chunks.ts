/**
 * At-rest encryption of object bodies in fixed-size chunks (building block for SSE-S3/SSE-C; not
 * wired into the write/read paths yet). Each 64 KiB plaintext chunk is sealed with AES-256-GCM
 * under the object's data key, with a 12-byte nonce of an 8-byte per-object random prefix and the
 * 4-byte chunk index, and stored as ciphertext || 16-byte tag. The final chunk carries a flag in
 * its additional authenticated data, so a truncated blob (or chunks swapped or dropped) fails to
 * decrypt. Both directions stream with memory bounded by one chunk, and a ranged read decrypts
 * only the chunks it touches.
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';

export const SSE_CHUNK = 64 * 1024;
const TAG = 16;
const FINAL = Buffer.from([1]);
const NOT_FINAL = Buffer.from([0]);

export class SseIntegrityError extends Error {}

function nonce(prefix: Buffer, index: number): Buffer {
  if (prefix.length !== 8) throw new Error('nonce prefix must be 8 bytes');
  const n = Buffer.alloc(12);
  prefix.copy(n, 0);
  n.writeUInt32BE(index, 8);
  return n;
}

function sealChunk(key: Buffer, prefix: Buffer, index: number, plain: Buffer, final: boolean): Buffer {
  const c = createCipheriv('aes-256-gcm', key, nonce(prefix, index));
  c.setAAD(final ? FINAL : NOT_FINAL);
  return Buffer.concat([c.update(plain), c.final(), c.getAuthTag()]);
}

function openChunk(key: Buffer, prefix: Buffer, index: number, sealed: Buffer, final: boolean): Buffer {
  if (sealed.length < TAG) throw new SseIntegrityError('encrypted chunk is truncated');
  const d = createDecipheriv('aes-256-gcm', key, nonce(prefix, index));
  d.setAAD(final ? FINAL : NOT_FINAL);
  d.setAuthTag(sealed.subarray(sealed.length - TAG));
  try {
    return Buffer.concat([d.update(sealed.subarray(0, sealed.length - TAG)), d.final()]);
  } catch {
    throw new SseIntegrityError('encrypted chunk failed authentication');
  }
}

/** Chunks a body of `plainSize` bytes is stored in (an empty body is one empty final chunk). */
export const chunkCount = (plainSize: number) => Math.max(1, Math.ceil(plainSize / SSE_CHUNK));

/** Stored (encrypted) size of a body of `plainSize` bytes. */
export const encryptedSize = (plainSize: number) => plainSize + TAG * chunkCount(plainSize);

/** Encrypts a stream; one full chunk is held back until it is known whether it is the last. */
export async function* encryptChunks(
  source: AsyncIterable<Uint8Array>,
  key: Buffer,
  prefix: Buffer,
): AsyncGenerator<Buffer> {
  let pending: Buffer[] = [];
  let pendingLen = 0;
  let index = 0;
  let ready: Buffer | undefined;
  for await (const piece of source) {
    let buf = Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
    while (buf.length > 0) {
      const take = Math.min(SSE_CHUNK - pendingLen, buf.length);
      pending.push(buf.subarray(0, take));
      pendingLen += take;
      buf = buf.subarray(take);
      if (pendingLen === SSE_CHUNK) {
        if (ready) yield sealChunk(key, prefix, index++, ready, false);
        ready = Buffer.concat(pending, pendingLen);
        pending = [];
        pendingLen = 0;
      }
    }
  }
  if (pendingLen > 0) {
    if (ready) yield sealChunk(key, prefix, index++, ready, false);
    yield sealChunk(key, prefix, index, Buffer.concat(pending, pendingLen), true);
  } else {
    yield sealChunk(key, prefix, index, ready ?? Buffer.alloc(0), true);
  }
}

/**
 * Decrypts plaintext bytes `start..end` (inclusive) of a body of `plainSize` bytes. `read(from, to)`
 * yields the stored bytes from..to (inclusive); only the chunks covering the range are read.
 */
export async function* decryptRange(
  read: (from: number, to: number) => AsyncIterable<Uint8Array>,
  key: Buffer,
  prefix: Buffer,
  plainSize: number,
  start: number,
  end: number,
): AsyncGenerator<Buffer> {
  const total = chunkCount(plainSize);
  if (plainSize === 0) {
    const all: Buffer[] = [];
    for await (const p of read(0, TAG - 1)) all.push(Buffer.from(p));
    openChunk(key, prefix, 0, Buffer.concat(all), true);
    return;
  }
  if (start < 0 || end >= plainSize || start > end) throw new RangeError('range outside the body');
  const first = Math.floor(start / SSE_CHUNK);
  const last = Math.floor(end / SSE_CHUNK);
  const sealedLen = (i: number) => (i === total - 1 ? plainSize - i * SSE_CHUNK : SSE_CHUNK) + TAG;
  const from = first * (SSE_CHUNK + TAG);
  const to = last * (SSE_CHUNK + TAG) + sealedLen(last) - 1;
  let index = first;
  let parts: Buffer[] = [];
  let have = 0;
  const emit = (plain: Buffer, i: number) => {
    const chunkStart = i * SSE_CHUNK;
    const a = Math.max(start - chunkStart, 0);
    const b = Math.min(end - chunkStart + 1, plain.length);
    return plain.subarray(a, b);
  };
  for await (const piece of read(from, to)) {
    let buf = Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
    while (buf.length > 0 && index <= last) {
      const need = sealedLen(index) - have;
      const take = Math.min(need, buf.length);
      parts.push(buf.subarray(0, take));
      have += take;
      buf = buf.subarray(take);
      if (have === sealedLen(index)) {
        const plain = openChunk(key, prefix, index, Buffer.concat(parts, have), index === total - 1);
        yield emit(plain, index);
        index++;
        parts = [];
        have = 0;
      }
    }
  }
  if (index <= last) throw new SseIntegrityError('encrypted body is truncated');
}
