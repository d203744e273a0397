/**
 * Random ids for the write path from a pool of CSPRNG bytes refilled 4 KiB at a time. One
 * `randomBytes` call per id (object row id, version id, audit event id) went through OpenSSL each
 * time and cost several microseconds apiece on a busy machine; taking slices of a pool filled by
 * `randomFillSync` costs a fraction of that and the bytes are the same quality.
 */
import { randomFillSync } from 'node:crypto';

const POOL_BYTES = 4096;
const pool = Buffer.allocUnsafeSlow(POOL_BYTES);
let offset = POOL_BYTES;

/** `n` (at most 4096) fresh random bytes, valid until the next call. */
function take(n: number): Buffer {
  if (offset + n > POOL_BYTES) {
    randomFillSync(pool);
    offset = 0;
  }
  const out = pool.subarray(offset, offset + n);
  offset += n;
  return out;
}

export const randomHex = (bytes: number) => take(bytes).toString('hex');

export const randomBase64url = (bytes: number) => take(bytes).toString('base64url');

const ALPHANUM = 'abcdefghijklmnopqrstuvwxyz0123456789';

/** `n` characters of [a-z0-9], as platform/ids.ts `newId` draws them. */
export function randomAlnum(n: number): string {
  const b = take(n);
  let out = '';
  for (let i = 0; i < n; i++) out += ALPHANUM[b[i]! % ALPHANUM.length];
  return out;
}
