/**
 * Decoder for `Content-Encoding: aws-chunked` bodies (SigV4 streaming uploads), from
 * https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming.html and
 * https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming-trailers.html:
 *
 *   <hex size>[;chunk-signature=<sig>]\r\n<data>\r\n ... 0[;chunk-signature=<sig>]\r\n
 *   [<trailer>:<value>\r\n ... [x-amz-trailer-signature:<sig>\r\n]]\r\n
 *
 * Signed variants chain each chunk's signature from the previous one, starting at the request's
 * own signature; the decoder checks every chunk (and the trailer) as it passes and fails the
 * stream on the first mismatch. Data flows through as it arrives; the caller keeps nothing until
 * the stream has ended cleanly.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { EMPTY_SHA256 } from '../../../platform/auth/sigv4.js';
import { ObjectError } from '../errors.js';

export interface ChunkSigning {
  signingKey: Buffer;
  /** X-Amz-Date of the request. */
  amzDate: string;
  /** `<date>/<region>/s3/aws4_request` */
  scope: string;
  /** The request's signature (seed of the chain). */
  seedSignature: string;
}

export interface AwsChunkedOptions {
  /** Present for STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]. */
  signing?: ChunkSigning;
  /** Trailers follow the last chunk (…-TRAILER variants). */
  trailer: boolean;
  /** Largest chunk accepted (default 16 MiB). */
  maxChunkSize?: number;
}

export interface DecodedBody {
  stream: AsyncIterable<Uint8Array>;
  /** Trailing headers (lowercase names), available once the stream has ended. */
  trailers(): Record<string, string>;
}

const MAX_LINE = 8 * 1024;

const malformed = (why: string) => new ObjectError('InvalidRequest', `Malformed aws-chunked body: ${why}.`);
const incomplete = () =>
  new ObjectError('IncompleteBody', 'The request body ended before the aws-chunked encoding was complete.');
const badSignature = (what: string) =>
  new ObjectError(
    'SignatureDoesNotMatch',
    `The ${what} signature we calculated does not match the signature you provided. Check your key and signing method.`,
  );

const sameHex = (a: string, b: string) =>
  a.length === b.length && timingSafeEqual(Buffer.from(a, 'latin1'), Buffer.from(b, 'latin1'));

export function decodeAwsChunked(source: AsyncIterable<Uint8Array>, opts: AwsChunkedOptions): DecodedBody {
  const trailers: Record<string, string> = {};
  const maxChunk = opts.maxChunkSize ?? 16 * 1024 * 1024;
  const signing = opts.signing;

  async function* decode(): AsyncGenerator<Uint8Array> {
    const it = source[Symbol.asyncIterator]();
    let buf: Buffer = Buffer.alloc(0);
    let prevSignature = signing?.seedSignature ?? '';
    const more = async () => {
      const r = await it.next();
      if (r.done) return false;
      const chunk = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      return true;
    };
    const readLine = async (): Promise<string> => {
      for (;;) {
        const i = buf.indexOf('\r\n');
        if (i >= 0) {
          const line = buf.subarray(0, i).toString('latin1');
          buf = buf.subarray(i + 2);
          return line;
        }
        if (buf.length > MAX_LINE) throw malformed('a chunk header or trailer line is too long');
        if (!(await more())) throw incomplete();
      }
    };
    const hmacHex = (s: string) => createHmac('sha256', signing!.signingKey).update(s, 'utf8').digest('hex');

    for (;;) {
      const header = await readLine();
      const m = /^([0-9a-fA-F]{1,16})(?:;chunk-signature=([0-9a-f]{64}))?$/.exec(header.trim());
      if (!m) throw malformed(`bad chunk header '${header.slice(0, 100)}'`);
      const size = Number.parseInt(m[1]!, 16);
      if (size > maxChunk) throw malformed(`chunk of ${size} bytes is larger than ${maxChunk}`);
      if (signing && !m[2]) throw malformed('a chunk has no chunk-signature');
      const hash = signing ? createHash('sha256') : undefined;
      let remaining = size;
      while (remaining > 0) {
        if (buf.length === 0 && !(await more())) throw incomplete();
        const take = buf.subarray(0, Math.min(remaining, buf.length));
        buf = buf.subarray(take.length);
        remaining -= take.length;
        hash?.update(take);
        yield take;
      }
      if (signing) {
        const stringToSign = [
          'AWS4-HMAC-SHA256-PAYLOAD',
          signing.amzDate,
          signing.scope,
          prevSignature,
          EMPTY_SHA256,
          hash!.digest('hex'),
        ].join('\n');
        const expected = hmacHex(stringToSign);
        if (!sameHex(expected, m[2]!)) throw badSignature('chunk');
        prevSignature = expected;
      }
      if (size === 0) break;
      if ((await readLine()) !== '') throw malformed('chunk data is not followed by CRLF');
    }

    if (!opts.trailer) {
      if ((await readLine()) !== '') throw malformed('the final chunk is not followed by CRLF');
    } else {
      const lines: string[] = [];
      let trailerSignature: string | undefined;
      for (;;) {
        const line = await readLine();
        if (line === '') break;
        const colon = line.indexOf(':');
        if (colon <= 0) throw malformed(`bad trailer line '${line.slice(0, 100)}'`);
        const name = line.slice(0, colon).trim().toLowerCase();
        const value = line.slice(colon + 1).trim();
        if (name === 'x-amz-trailer-signature') trailerSignature = value;
        else {
          trailers[name] = value;
          lines.push(`${name}:${value}\n`);
        }
        if (lines.length > 16) throw malformed('too many trailers');
      }
      if (signing) {
        if (!trailerSignature) throw malformed('the trailer has no x-amz-trailer-signature');
        const stringToSign = [
          'AWS4-HMAC-SHA256-TRAILER',
          signing.amzDate,
          signing.scope,
          prevSignature,
          createHash('sha256').update(lines.join('')).digest('hex'),
        ].join('\n');
        if (!sameHex(hmacHex(stringToSign), trailerSignature)) throw badSignature('trailer');
      }
    }
    // Anything after the encoding's end is a framing error, except a trailing CRLF some clients add.
    while (buf.length > 0 || (await more())) {
      if (buf.toString('latin1').trim() !== '') throw malformed('data after the final chunk');
      buf = Buffer.alloc(0);
    }
  }

  return { stream: decode(), trailers: () => trailers };
}
