/**
 * Checksums S3 computes while a body streams through: MD5 (the ETag), and the flexible checksums
 * clients ask for (`x-amz-checksum-crc32`, `-crc32c`, `-sha1`, `-sha256`, as base64 of the
 * big-endian digest). CRC32 uses zlib's (Node >= 20.15); CRC32C (Castagnoli, reflected polynomial
 * 0x82F63B78) is ours, table-driven with slicing-by-8.
 */
import { createHash, type Hash } from 'node:crypto';
import zlib from 'node:zlib';

export const CHECKSUM_ALGORITHMS = ['CRC32', 'CRC32C', 'SHA1', 'SHA256'] as const;
export type ChecksumAlgorithm = (typeof CHECKSUM_ALGORITHMS)[number];

export const isChecksumAlgorithm = (v: string): v is ChecksumAlgorithm =>
  (CHECKSUM_ALGORITHMS as readonly string[]).includes(v);

/** The header that carries an algorithm's value: `x-amz-checksum-crc32c`. */
export const checksumHeader = (a: ChecksumAlgorithm) => `x-amz-checksum-${a.toLowerCase()}`;

const CRC32C_TABLES = (() => {
  const t = Array.from({ length: 8 }, () => new Uint32Array(256));
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    t[0]![n] = c >>> 0;
  }
  for (let n = 0; n < 256; n++) {
    let c = t[0]![n]!;
    for (let k = 1; k < 8; k++) {
      c = t[0]![c & 0xff]! ^ (c >>> 8);
      t[k]![n] = c >>> 0;
    }
  }
  return t;
})();

/** CRC32C of `data`, continuing from `crc` (the value returned for the bytes before). */
export function crc32c(data: Uint8Array, crc = 0): number {
  const [t0, t1, t2, t3, t4, t5, t6, t7] = CRC32C_TABLES as [
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
  ];
  let c = ~crc >>> 0;
  let i = 0;
  const n = data.length;
  const end8 = n - (n % 8);
  while (i < end8) {
    const a = (c ^ (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24))) >>> 0;
    c =
      t7[a & 0xff]! ^
      t6[(a >>> 8) & 0xff]! ^
      t5[(a >>> 16) & 0xff]! ^
      t4[a >>> 24]! ^
      t3[data[i + 4]!]! ^
      t2[data[i + 5]!]! ^
      t1[data[i + 6]!]! ^
      t0[data[i + 7]!]!;
    i += 8;
  }
  while (i < n) c = t0[(c ^ data[i++]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

/** CRC32 (IEEE) of `data`, continuing from `crc`. */
export const crc32 = (data: Uint8Array, crc = 0): number => zlib.crc32(data, crc);

const u32be = (v: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0);
  return b;
};

/** One running checksum; `digest()` answers base64 as S3 does. */
export interface RunningChecksum {
  update(chunk: Uint8Array): void;
  digest(): Buffer;
}

export function newChecksum(a: ChecksumAlgorithm): RunningChecksum {
  switch (a) {
    case 'CRC32':
    case 'CRC32C': {
      const f = a === 'CRC32' ? crc32 : crc32c;
      let v = 0;
      return {
        update: (c) => {
          v = f(c, v);
        },
        digest: () => u32be(v),
      };
    }
    case 'SHA1':
    case 'SHA256': {
      const h: Hash = createHash(a === 'SHA1' ? 'sha1' : 'sha256');
      return { update: (c) => h.update(c), digest: () => h.digest() };
    }
  }
}

/** Base64 checksum of a whole buffer (tests, small bodies). */
export const checksumOf = (a: ChecksumAlgorithm, data: Uint8Array): string => {
  const c = newChecksum(a);
  c.update(data);
  return c.digest().toString('base64');
};

export interface BodyDigests {
  size: number;
  md5: Buffer;
  /** Hex SHA-256 when it was asked for (a signed payload hash to check). */
  sha256Hex?: string;
  /** base64 values by algorithm. */
  checksums: Partial<Record<ChecksumAlgorithm, string>>;
}

/**
 * Everything computed over one body as it streams: size, MD5, and the requested checksums.
 * SHA256 serves both the payload hash and the flexible checksum when both are wanted.
 */
export class BodyHasher {
  size = 0;
  readonly #md5 = createHash('md5');
  readonly #sha256: Hash | undefined;
  readonly #sums: [ChecksumAlgorithm, RunningChecksum][];
  readonly #wantSha256Sum: boolean;

  constructor(opts: { algorithms?: Iterable<ChecksumAlgorithm>; sha256?: boolean } = {}) {
    const algos = new Set(opts.algorithms ?? []);
    this.#wantSha256Sum = algos.delete('SHA256');
    this.#sha256 = opts.sha256 || this.#wantSha256Sum ? createHash('sha256') : undefined;
    this.#sums = [...algos].map((a) => [a, newChecksum(a)]);
  }

  update(chunk: Uint8Array): void {
    this.size += chunk.length;
    this.#md5.update(chunk);
    this.#sha256?.update(chunk);
    for (const [, s] of this.#sums) s.update(chunk);
  }

  digest(): BodyDigests {
    const checksums: Partial<Record<ChecksumAlgorithm, string>> = {};
    for (const [a, s] of this.#sums) checksums[a] = s.digest().toString('base64');
    const sha = this.#sha256?.digest();
    if (sha && this.#wantSha256Sum) checksums.SHA256 = sha.toString('base64');
    return {
      size: this.size,
      md5: this.#md5.digest(),
      ...(sha ? { sha256Hex: sha.toString('hex') } : {}),
      checksums,
    };
  }
}
