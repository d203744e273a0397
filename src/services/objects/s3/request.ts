/** What every S3 handler gets, and the header and body parsing they share. */

import type { FastifyReply, FastifyRequest } from 'fastify';
import type { CredentialSource } from '../../../platform/auth/authenticate.js';
import {
  childNamed,
  childrenNamed,
  parseXml,
  type XmlElement,
  XmlParseError,
} from '../../../platform/xml/parser.js';
import {
  BodyHasher,
  CHECKSUM_ALGORITHMS,
  type ChecksumAlgorithm,
  checksumHeader,
  isChecksumAlgorithm,
} from '../checksums.js';
import { ObjectError } from '../errors.js';
import { parseLockHeaders } from '../object-lock.js';
import type {
  ContentHeaders,
  ObjectBody,
  ObjectContext,
  ObjectService,
  Preconditions,
  RangeSpec,
  Tag,
  WriteOptions,
} from '../service.js';
import type { SseHeaders } from '../sse.js';
import { type ChunkSigning, decodeAwsChunked } from './aws-chunked.js';

export const S3_XMLNS = 'http://s3.amazonaws.com/doc/2006-03-01/';

export interface S3Call {
  req: FastifyRequest;
  reply: FastifyReply;
  objects: ObjectService;
  ctx: ObjectContext;
  /** Bucket from the host or the first path segment; undefined for service-level requests. */
  bucket?: string;
  /** Decoded object key; undefined for bucket-level requests. */
  key?: string;
  /** Decoded query parameters (first value of each). */
  query: Map<string, string>;
  /** The request's SigV4 signing material, for aws-chunked bodies. */
  signing?: ChunkSigning;
  /** The request was signed (header or query), i.e. the caller is not anonymous. */
  signed: boolean;
  /** Access keys, for operations that verify their own signatures (POST Object forms). */
  credentials?: CredentialSource;
}

export const header = (call: S3Call, name: string): string | undefined => {
  const v = call.req.headers[name];
  return Array.isArray(v) ? v.join(',') : v;
};

export function sendXml(call: S3Call, xml: string, status = 200, headers: Record<string, string> = {}) {
  call.reply.code(status);
  for (const [k, v] of Object.entries(headers)) call.reply.header(k, v);
  return call.reply.type('application/xml').send(xml);
}

export function sendEmpty(call: S3Call, status = 200, headers: Record<string, string> = {}) {
  call.reply.code(status);
  for (const [k, v] of Object.entries(headers)) call.reply.header(k, v);
  return call.reply.send();
}

/** S3 timestamps in XML: ISO 8601 with milliseconds. */
export const isoMs = (ms: number) => new Date(ms).toISOString();
export const httpDate = (ms: number) => new Date(ms).toUTCString();

/** `encoding-type=url`: percent-encodes everything but unreserved characters and '/'. */
export function urlEncodeKey(s: string): string {
  return encodeURIComponent(s)
    .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(/%2F/g, '/');
}

// ---- headers ------------------------------------------------------------------------------

const HTTP_DATE = (v: string | undefined): Date | undefined => {
  if (v === undefined) return undefined;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : new Date(t);
};

export function readPreconditions(call: S3Call, prefix = ''): Preconditions | undefined {
  const p: Preconditions = {};
  const ifMatch = header(call, `${prefix}if-match`);
  const ifNoneMatch = header(call, `${prefix}if-none-match`);
  const ims = HTTP_DATE(header(call, `${prefix}if-modified-since`));
  const ius = HTTP_DATE(header(call, `${prefix}if-unmodified-since`));
  if (ifMatch !== undefined) p.ifMatch = ifMatch;
  if (ifNoneMatch !== undefined) p.ifNoneMatch = ifNoneMatch;
  if (ims) p.ifModifiedSince = ims;
  if (ius) p.ifUnmodifiedSince = ius;
  return Object.keys(p).length > 0 ? p : undefined;
}

/** `bytes=a-b`, `bytes=a-`, `bytes=-n`; anything else (several ranges, other units) is ignored, as S3 does. */
export function parseRange(v: string | undefined): RangeSpec | undefined {
  if (!v) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(v.trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  if (m[1] === '') return { suffix: Number(m[2]) };
  const start = Number(m[1]);
  if (m[2] === '') return { start };
  const end = Number(m[2]);
  if (end < start) return undefined;
  return { start, end };
}

export function contentHeaders(call: S3Call): ContentHeaders {
  const h: ContentHeaders = {};
  const set = (k: keyof ContentHeaders, name: string) => {
    const v = header(call, name);
    if (v !== undefined) h[k] = v;
  };
  set('contentType', 'content-type');
  set('contentDisposition', 'content-disposition');
  set('contentLanguage', 'content-language');
  set('cacheControl', 'cache-control');
  set('expires', 'expires');
  const enc = header(call, 'content-encoding');
  // aws-chunked is transfer framing, not a property of the object.
  const kept = enc
    ?.split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '' && s.toLowerCase() !== 'aws-chunked')
    .join(', ');
  if (kept) h.contentEncoding = kept;
  return h;
}

export function userMetadata(call: S3Call): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(call.req.headers)) {
    if (!name.startsWith('x-amz-meta-') || value === undefined) continue;
    out[name.slice('x-amz-meta-'.length)] = Array.isArray(value) ? value.join(',') : value;
  }
  return out;
}

/** `x-amz-tagging: k1=v1&k2=v2` (URL-encoded). */
export function taggingHeader(call: S3Call): Tag[] | undefined {
  const v = header(call, 'x-amz-tagging');
  if (v === undefined) return undefined;
  const tags: Tag[] = [];
  for (const [Key, Value] of new URLSearchParams(v)) tags.push({ Key, Value });
  return tags;
}

export function checksumAlgorithmHeader(call: S3Call): ChecksumAlgorithm | undefined {
  const v = header(call, 'x-amz-checksum-algorithm') ?? header(call, 'x-amz-sdk-checksum-algorithm');
  if (v === undefined) return undefined;
  const a = v.toUpperCase();
  if (!isChecksumAlgorithm(a))
    throw new ObjectError(
      'InvalidRequest',
      `Checksum algorithm '${v}' is not supported (CRC32, CRC32C, SHA1, SHA256).`,
    );
  return a;
}

export function writeOptions(call: S3Call): WriteOptions {
  const o: WriteOptions = { headers: contentHeaders(call), metadata: userMetadata(call) };
  const tags = taggingHeader(call);
  if (tags) o.tags = tags;
  const sc = header(call, 'x-amz-storage-class');
  if (sc !== undefined) o.storageClass = sc;
  const acl = header(call, 'x-amz-acl');
  if (acl !== undefined) o.acl = acl;
  const alg = checksumAlgorithmHeader(call);
  if (alg) o.checksumAlgorithm = alg;
  const lock = parseLockHeaders((name) => header(call, name));
  if (lock) o.lock = lock;
  const sse = sseHeaders(call);
  if (sse) o.sse = sse;
  return o;
}

/**
 * The request's server-side encryption headers; `copySource` reads the
 * x-amz-copy-source-server-side-encryption-customer-* set (the source's SSE-C key).
 */
export function sseHeaders(call: S3Call, copySource = false): SseHeaders | undefined {
  const p = copySource ? 'x-amz-copy-source-server-side-encryption' : 'x-amz-server-side-encryption';
  const h: SseHeaders = {};
  const set = (k: keyof SseHeaders, name: string) => {
    const v = header(call, name);
    if (v !== undefined) h[k] = v;
  };
  if (!copySource) {
    set('algorithm', p);
    set('kmsKeyId', `${p}-aws-kms-key-id`);
  }
  set('customerAlgorithm', `${p}-customer-algorithm`);
  set('customerKey', `${p}-customer-key`);
  set('customerKeyMd5', `${p}-customer-key-md5`);
  return Object.keys(h).length > 0 ? h : undefined;
}

/** `x-amz-bypass-governance-retention: true` */
export const bypassGovernance = (call: S3Call) =>
  header(call, 'x-amz-bypass-governance-retention')?.trim().toLowerCase() === 'true';

const DIGEST_LENGTH: Record<ChecksumAlgorithm, number> = { CRC32: 4, CRC32C: 4, SHA1: 20, SHA256: 32 };

function validBase64(v: string, bytes: number) {
  return /^[A-Za-z0-9+/]+={0,2}$/.test(v) && Buffer.from(v, 'base64').length === bytes;
}

// ---- bodies -------------------------------------------------------------------------------

/**
 * The request body as the service takes it: aws-chunked decoded (chunk signatures checked),
 * with the digests the client declared (Content-MD5, x-amz-content-sha256, x-amz-checksum-*
 * headers or trailers).
 */
export function requestBody(call: S3Call): ObjectBody {
  const declared = header(call, 'x-amz-content-sha256')?.trim();
  // Stopping early (a failed check) must not destroy the request: the error response still has to go out.
  const raw: AsyncIterable<Uint8Array> = call.req.raw.iterator({ destroyOnReturn: false });
  let stream = raw;
  let trailers = (): Record<string, string> => ({});
  let expectedSize: number | undefined;
  const body: ObjectBody = { stream };

  if (declared?.startsWith('STREAMING-')) {
    const signed = declared.startsWith('STREAMING-AWS4-HMAC-SHA256-PAYLOAD');
    const trailer = declared.endsWith('-TRAILER');
    if (!signed && declared !== 'STREAMING-UNSIGNED-PAYLOAD-TRAILER')
      throw new ObjectError('InvalidArgument', `x-amz-content-sha256 '${declared}' is not supported.`);
    if (signed && !call.signing)
      throw new ObjectError('InvalidRequest', 'A signed streaming payload needs a header-signed request.');
    const d = decodeAwsChunked(raw, { trailer, ...(signed ? { signing: call.signing } : {}) });
    stream = d.stream;
    trailers = d.trailers;
    const decoded = header(call, 'x-amz-decoded-content-length');
    if (decoded === undefined) {
      if (!trailer)
        throw new ObjectError('MissingContentLength', 'You must provide the Content-Length HTTP header.');
    } else if (!/^\d+$/.test(decoded)) {
      throw new ObjectError('InvalidArgument', 'x-amz-decoded-content-length must be a number.');
    } else expectedSize = Number(decoded);
  } else {
    const len = header(call, 'content-length');
    if (len !== undefined) expectedSize = Number(len);
    if (declared !== undefined && declared !== 'UNSIGNED-PAYLOAD') {
      if (!/^[0-9a-fA-F]{64}$/.test(declared))
        throw new ObjectError(
          'InvalidArgument',
          'x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-… or a hex SHA-256.',
        );
      body.sha256Hex = declared;
    }
  }
  body.stream = stream;
  if (expectedSize !== undefined) body.expectedSize = expectedSize;

  const md5 = header(call, 'content-md5');
  if (md5 !== undefined) {
    if (!validBase64(md5.trim(), 16))
      throw new ObjectError('InvalidDigest', 'The Content-MD5 you specified is not valid.');
    body.contentMd5 = md5.trim();
  }
  const algorithms = new Set<ChecksumAlgorithm>();
  const fromHeaders: Partial<Record<ChecksumAlgorithm, string>> = {};
  for (const a of CHECKSUM_ALGORITHMS) {
    const v = header(call, checksumHeader(a));
    if (v === undefined) continue;
    if (!validBase64(v.trim(), DIGEST_LENGTH[a]))
      throw new ObjectError('BadDigest', `Value for ${checksumHeader(a)} header is invalid.`);
    algorithms.add(a);
    fromHeaders[a] = v.trim();
  }
  const trailerNames = (header(call, 'x-amz-trailer') ?? '')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
  for (const name of trailerNames) {
    const a = name.replace(/^x-amz-checksum-/, '').toUpperCase();
    if (!name.startsWith('x-amz-checksum-') || !isChecksumAlgorithm(a))
      throw new ObjectError('InvalidRequest', `The trailer '${name}' is not supported.`);
    algorithms.add(a);
  }
  const asked = header(call, 'x-amz-sdk-checksum-algorithm')?.toUpperCase();
  if (asked && isChecksumAlgorithm(asked)) algorithms.add(asked);
  body.checksumAlgorithms = [...algorithms];
  body.expectedChecksums = () => {
    const out = { ...fromHeaders };
    const t = trailers();
    for (const name of trailerNames) {
      const a = name.replace(/^x-amz-checksum-/, '').toUpperCase() as ChecksumAlgorithm;
      const v = t[name];
      if (v === undefined)
        throw new ObjectError('IncompleteBody', `The trailer ${name} announced in x-amz-trailer is missing.`);
      if (!validBase64(v, DIGEST_LENGTH[a]))
        throw new ObjectError('InvalidRequest', `Value for ${name} trailer is invalid.`);
      out[a] = v;
    }
    return out;
  };
  return body;
}

/** Reads a small request body (XML configuration) through the same checks, up to `limit` bytes. */
export async function readSmallBody(call: S3Call, limit = 2 * 1024 * 1024): Promise<Buffer> {
  const body = requestBody(call);
  if (body.expectedSize !== undefined && body.expectedSize > limit)
    throw new ObjectError('EntityTooLarge', `The request body is larger than ${limit} bytes.`);
  const hasher = new BodyHasher({
    algorithms: body.checksumAlgorithms ?? [],
    sha256: body.sha256Hex !== undefined,
  });
  const parts: Buffer[] = [];
  for await (const c of body.stream) {
    hasher.update(c);
    if (hasher.size > limit)
      throw new ObjectError('EntityTooLarge', `The request body is larger than ${limit} bytes.`);
    parts.push(Buffer.from(c));
  }
  const d = hasher.digest();
  if (body.expectedSize !== undefined && d.size !== body.expectedSize)
    throw new ObjectError(
      'IncompleteBody',
      'You did not provide the number of bytes specified by the Content-Length HTTP header.',
    );
  if (body.sha256Hex !== undefined && d.sha256Hex !== body.sha256Hex.toLowerCase())
    throw new ObjectError(
      'XAmzContentSHA256Mismatch',
      "The provided 'x-amz-content-sha256' header does not match what was computed.",
    );
  if (body.contentMd5 !== undefined && d.md5.toString('base64') !== body.contentMd5)
    throw new ObjectError('BadDigest', 'The Content-MD5 you specified did not match what we received.');
  for (const [a, v] of Object.entries(body.expectedChecksums?.() ?? {}) as [ChecksumAlgorithm, string][]) {
    if (d.checksums[a] !== v)
      throw new ObjectError('BadDigest', `The ${a} you specified did not match the calculated checksum.`);
  }
  return Buffer.concat(parts);
}

/** Parses an XML request body whose root must be `root`; anything malformed is MalformedXML. */
export async function readXml(
  call: S3Call,
  root: string,
  opts: { optional?: boolean } = {},
): Promise<XmlElement | undefined> {
  const buf = await readSmallBody(call);
  if (buf.length === 0 || buf.toString('utf8').trim() === '') {
    if (opts.optional) return undefined;
    throw new ObjectError('MissingRequestBodyError', 'Request Body is empty');
  }
  try {
    const el = parseXml(buf.toString('utf8'));
    if (el.name !== root) throw new XmlParseError(`root element is ${el.name}, not ${root}`);
    return el;
  } catch (e) {
    if (e instanceof XmlParseError)
      throw new ObjectError(
        'MalformedXML',
        'The XML you provided was not well-formed or did not validate against our published schema',
      );
    throw e;
  }
}

export const malformedXml = () =>
  new ObjectError(
    'MalformedXML',
    'The XML you provided was not well-formed or did not validate against our published schema',
  );

/** `<Tagging><TagSet><Tag><Key/><Value/></Tag>...</TagSet></Tagging>` */
export function parseTagging(el: XmlElement): Tag[] {
  const set = childNamed(el, 'TagSet');
  if (!set) throw malformedXml();
  return childrenNamed(set, 'Tag').map((t) => {
    const k = childNamed(t, 'Key');
    const v = childNamed(t, 'Value');
    if (!k) throw malformedXml();
    return { Key: k.text, Value: v?.text ?? '' };
  });
}

/** Query parameter as a non-negative integer within bounds (max-keys, max-parts, ...). */
export function intParam(call: S3Call, name: string, dflt: number, max: number): number {
  const v = call.query.get(name);
  if (v === undefined || v === '') return dflt;
  if (!/^-?\d+$/.test(v) || Number(v) < 0)
    throw new ObjectError('InvalidArgument', `Provided ${name} not an integer or within integer range`, {
      extra: { ArgumentName: name, ArgumentValue: v },
    });
  return Math.min(Number(v), max);
}
