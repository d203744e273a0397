import { describe, expect, it } from 'vitest';
import { deriveSigningKey } from '../../../platform/auth/sigv4.js';
import { checksumOf } from '../checksums.js';
import type { ObjectError } from '../errors.js';
import { type AwsChunkedOptions, decodeAwsChunked } from './aws-chunked.js';

// The worked example of https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming.html
const SIGNING = {
  signingKey: deriveSigningKey('wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', '20130524', 'us-east-1', 's3'),
  amzDate: '20130524T000000Z',
  scope: '20130524/us-east-1/s3/aws4_request',
  seedSignature: '4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9',
};
const SIGS = [
  'ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648',
  '0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497',
  'b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9',
];

function exampleBody(sigs = SIGS): Buffer {
  return Buffer.concat([
    Buffer.from(`10000;chunk-signature=${sigs[0]}\r\n`),
    Buffer.alloc(65536, 'a'),
    Buffer.from(`\r\n400;chunk-signature=${sigs[1]}\r\n`),
    Buffer.alloc(1024, 'a'),
    Buffer.from(`\r\n0;chunk-signature=${sigs[2]}\r\n\r\n`),
  ]);
}

async function* pieces(data: Buffer, size: number) {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

async function decodeAll(data: Buffer, opts: AwsChunkedOptions, step = 1000) {
  const d = decodeAwsChunked(pieces(data, step), opts);
  const out: Buffer[] = [];
  for await (const c of d.stream) out.push(Buffer.from(c));
  return { body: Buffer.concat(out), trailers: d.trailers() };
}

const codeOf = async (p: Promise<unknown>) => {
  try {
    await p;
  } catch (e) {
    return (e as ObjectError).s3Code;
  }
  return 'no error';
};

describe('aws-chunked decoding', () => {
  it('decodes and verifies the AWS worked example, however the bytes arrive', async () => {
    for (const step of [1, 7, 1000, 70_000]) {
      const { body } = await decodeAll(exampleBody(), { signing: SIGNING, trailer: false }, step);
      expect(body.equals(Buffer.alloc(66560, 'a'))).toBe(true);
    }
  });

  it('refuses a chunk whose signature does not chain', async () => {
    const bad = [SIGS[0]!, SIGS[0]!, SIGS[2]!];
    expect(await codeOf(decodeAll(exampleBody(bad), { signing: SIGNING, trailer: false }))).toBe(
      'SignatureDoesNotMatch',
    );
    const tampered = exampleBody();
    tampered[200] = 0x62;
    expect(await codeOf(decodeAll(tampered, { signing: SIGNING, trailer: false }))).toBe(
      'SignatureDoesNotMatch',
    );
  });

  it('reads unsigned chunks with a checksum trailer', async () => {
    const data = Buffer.from('hello world');
    const sum = checksumOf('CRC32', data);
    const body = Buffer.from(`5\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:${sum}\r\n\r\n`);
    const r = await decodeAll(body, { trailer: true }, 3);
    expect(r.body.toString()).toBe('hello world');
    expect(r.trailers).toEqual({ 'x-amz-checksum-crc32': sum });
  });

  it('reports truncated and malformed encodings', async () => {
    expect(await codeOf(decodeAll(Buffer.from('5\r\nhel'), { trailer: true }))).toBe('IncompleteBody');
    expect(await codeOf(decodeAll(Buffer.from('zz\r\nhello\r\n'), { trailer: true }))).toBe('InvalidRequest');
    expect(await codeOf(decodeAll(Buffer.from('5\r\nhelloXX0\r\n\r\n'), { trailer: true }))).toBe(
      'InvalidRequest',
    );
    expect(
      await codeOf(decodeAll(exampleBody().subarray(0, 66_000), { signing: SIGNING, trailer: false })),
    ).toBe('IncompleteBody');
  });
});
