import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { BodyHasher, checksumOf, crc32, crc32c } from './checksums.js';

describe('checksums', () => {
  it('matches the published check values of CRC32 and CRC32C', () => {
    const check = Buffer.from('123456789');
    expect(crc32(check)).toBe(0xcbf43926);
    expect(crc32c(check)).toBe(0xe3069283);
    expect(crc32c(Buffer.alloc(32))).toBe(0x8a9136aa);
    expect(crc32c(Buffer.alloc(32, 0xff))).toBe(0x62a8ab43);
  });

  it('continues a CRC across chunks of any size', () => {
    const data = randomBytes(100_003);
    const whole = crc32c(data);
    for (const step of [1, 7, 8, 9, 4096, 65_537]) {
      let c = 0;
      for (let i = 0; i < data.length; i += step) c = crc32c(data.subarray(i, i + step), c);
      expect(c).toBe(whole);
    }
  });

  it('answers base64 of the big-endian digest, as S3 headers carry it', () => {
    expect(checksumOf('CRC32', Buffer.from('hello'))).toBe('NhCmhg==');
    expect(checksumOf('SHA256', Buffer.from(''))).toBe('47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=');
  });

  it('computes size, MD5, SHA-256 and the asked checksums in one pass', () => {
    const data = randomBytes(10_000);
    const h = new BodyHasher({ algorithms: ['CRC32C', 'SHA256', 'SHA1'], sha256: true });
    h.update(data.subarray(0, 3000));
    h.update(data.subarray(3000));
    const d = h.digest();
    expect(d.size).toBe(10_000);
    expect(d.md5.toString('hex')).toBe(createHash('md5').update(data).digest('hex'));
    expect(d.sha256Hex).toBe(createHash('sha256').update(data).digest('hex'));
    expect(d.checksums).toEqual({
      CRC32C: checksumOf('CRC32C', data),
      SHA1: createHash('sha1').update(data).digest('base64'),
      SHA256: createHash('sha256').update(data).digest('base64'),
    });
  });
});
