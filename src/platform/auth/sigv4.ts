/**
 * AWS Signature Version 4 (AWS4-HMAC-SHA256), written from the AWS specification:
 * https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html
 * and, for S3's variations, https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-authenticating-requests.html
 *
 * Server side: `parseSigV4` pulls the auth out of a request (Authorization header or presigned query),
 * `verifySigV4` recomputes the signature with the caller's secret. Looking up the secret, checking that the
 * scope's region/service are ours and validating a session token are the caller's job.
 * Client side: `signRequest` and `presignUrl` produce requests the verifier (and AWS) accept.
 */
import { createHmac, hash, timingSafeEqual } from 'node:crypto';
import { YunhaiError } from '../errors.js';

export interface IncomingSignedRequest {
  method: string;
  /** Raw request path as received, percent-encoding intact, no query string. */
  path: string;
  /** Raw query string without the leading '?', '' when none. */
  query: string;
  /** Node's IncomingHttpHeaders (lowercase names). */
  headers: Record<string, string | string[] | undefined>;
  /** Full body when the caller has it (used when x-amz-content-sha256 is absent). */
  body?: Buffer;
}

export interface SigV4Auth {
  kind: 'header' | 'query';
  accessKeyId: string;
  /** YYYYMMDD from the credential scope. */
  scopeDate: string;
  region: string;
  service: string;
  signedHeaders: string[];
  signature: string;
  /** From X-Amz-Date (or the Date header). */
  requestTime: Date;
  /** Presigned only (X-Amz-Expires). */
  expiresSeconds?: number;
  /** X-Amz-Security-Token header or query parameter. */
  sessionToken?: string;
}

export interface VerifyOptions {
  now?: Date;
  /** Default 900 (15 minutes), as AWS. */
  maxSkewSeconds?: number;
  /** S3 style: single encoding, no path normalisation. Default false = other AWS services: normalise + double encode. */
  s3PathEncoding?: boolean;
}

export const ALGORITHM = 'AWS4-HMAC-SHA256';
export const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';
export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
/** Longest validity AWS allows for a presigned URL: 7 days. */
export const MAX_PRESIGN_EXPIRES_SECONDS = 604800;
const DEFAULT_MAX_SKEW_SECONDS = 900;

const SIGNATURE_MISMATCH =
  'The request signature we calculated does not match the signature you provided. ' +
  'Check your AWS Secret Access Key and signing method. Consult the service documentation for details.';
const QUERY_PARAMS_REQUIRED =
  "AWS query-string parameters must include 'X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Signature', " +
  "'X-Amz-Date', 'X-Amz-SignedHeaders' and 'X-Amz-Expires'. Re-examine the query-string parameters.";

/** Query parameters that make a request a presigned (query-auth) one. */
const PRESIGN_PARAMS = ['X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Signature', 'X-Amz-SignedHeaders'];

/**
 * Headers the client signer leaves out: hop-by-hop headers proxies rewrite or drop, plus headers that
 * are set or changed after signing (authorization itself, user-agent, expect, tracing).
 */
const UNSIGNABLE_HEADERS = new Set([
  'authorization',
  'connection',
  'expect',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'user-agent',
  'x-amzn-trace-id',
]);

// ---------------------------------------------------------------------------------------------------------
// Primitives
// ---------------------------------------------------------------------------------------------------------

/** One-shot hashing (no Hash object per call): strings hash as UTF-8, as `update(string)` did. */
export function sha256Hex(data: string | Uint8Array): string {
  return hash('sha256', data, 'hex');
}

/** HMAC-SHA256 per RFC 2104; see hmacSha256 for the fast path every request takes. */
function hmac(key: string | Uint8Array, data: string): Buffer {
  if (typeof key !== 'string' && key.length <= SHA256_BLOCK && data.length * 3 <= HMAC_DATA_MAX)
    return hmacSha256(key, data);
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

const SHA256_BLOCK = 64;
const HMAC_DATA_MAX = 4096;
/** (key XOR ipad) || data, and (key XOR opad) || inner digest: reused, every call is synchronous. */
const innerScratch = Buffer.allocUnsafe(SHA256_BLOCK + HMAC_DATA_MAX);
const outerScratch = Buffer.allocUnsafe(SHA256_BLOCK + 32);

/**
 * HMAC-SHA256 of `data` (UTF-8, at most HMAC_DATA_MAX bytes) under `key` (at most one block), built
 * from two one-shot hashes: H((K ^ opad) || H((K ^ ipad) || data)). A Hmac object costs about ten
 * times a one-shot hash of a string to sign here (its key object and three calls into C++), and
 * every verified request and every signature needs one. Exported for the test against createHmac.
 */
export function hmacSha256(key: Uint8Array, data: string): Buffer {
  for (let i = 0; i < SHA256_BLOCK; i++) {
    const k = i < key.length ? key[i]! : 0;
    innerScratch[i] = k ^ 0x36;
    outerScratch[i] = k ^ 0x5c;
  }
  const n = innerScratch.write(data, SHA256_BLOCK, 'utf8');
  // base64 keeps crypto.hash on its one-shot path (a 'buffer' output goes through a Hash object).
  outerScratch.write(
    hash('sha256', innerScratch.subarray(0, SHA256_BLOCK + n), 'base64'),
    SHA256_BLOCK,
    'base64',
  );
  return Buffer.from(hash('sha256', outerScratch, 'base64'), 'base64');
}

/** Derived signing keys by secret and scope; cleared when it grows past SIGNING_KEY_CACHE_SIZE. */
const signingKeys = new Map<string, Buffer>();
const SIGNING_KEY_CACHE_SIZE = 1024;

/**
 * kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request").
 * The key depends only on the secret and the scope (one day, region, service), so it is derived
 * once and reused: four of the five HMACs per request. A rotated or revoked secret is simply never
 * looked up again (the key is a function of the secret itself, never of the access key id).
 */
export function deriveSigningKey(
  secretAccessKey: string,
  scopeDate: string,
  region: string,
  service: string,
): Buffer {
  const id = `${scopeDate}\0${region}\0${service}\0${secretAccessKey}`;
  const hit = signingKeys.get(id);
  if (hit) return hit;
  const kDate = hmac(`AWS4${secretAccessKey}`, scopeDate);
  const kRegion = hmac(kDate, region);
  const kService = hmac(kRegion, service);
  const key = hmac(kService, 'aws4_request');
  if (signingKeys.size >= SIGNING_KEY_CACHE_SIZE) signingKeys.clear();
  signingKeys.set(id, key);
  return key;
}

/**
 * The last time formatted, by its milliseconds: a verifier formats each request's X-Amz-Date twice
 * (checking the parse, building the string to sign) and a busy listener sees the same second over
 * and over; formatting showed in profiles.
 */
let lastAmzDate = { ms: Number.NaN, text: '' };

/** 2015-08-30T12:36:00.000Z -> 20150830T123600Z */
export function toAmzDate(d: Date): string {
  const ms = d.getTime();
  if (ms === lastAmzDate.ms) return lastAmzDate.text;
  const iso = d.toISOString();
  // YYYY-MM-DDTHH:MM:SS.sssZ (years 0-9999) by position; anything else the general way.
  const text =
    iso.length === 24
      ? `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`
      : iso.replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '');
  lastAmzDate = { ms, text };
  return text;
}

const isUnreserved = (b: number) =>
  (b >= 0x41 && b <= 0x5a) || // A-Z
  (b >= 0x61 && b <= 0x7a) || // a-z
  (b >= 0x30 && b <= 0x39) || // 0-9
  b === 0x2d || // -
  b === 0x2e || // .
  b === 0x5f || // _
  b === 0x7e; // ~

const HEX = '0123456789ABCDEF';

/** RFC 3986 encoding of the UTF-8 bytes: everything but A-Za-z0-9-_.~ becomes %XX (uppercase hex). */
function uriEncodeBytes(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) {
    out += isUnreserved(b) ? String.fromCharCode(b) : `%${HEX[b >> 4]}${HEX[b & 15]}`;
  }
  return out;
}

/** Exported for the S3 layer and tests: AWS's UriEncode() of a string (never keeps '/'). */
export function uriEncode(s: string): string {
  return uriEncodeBytes(Buffer.from(s, 'utf8'));
}

const hexVal = (b: number | undefined): number => {
  if (b === undefined) return -1;
  if (b >= 0x30 && b <= 0x39) return b - 0x30;
  if (b >= 0x41 && b <= 0x46) return b - 0x37;
  if (b >= 0x61 && b <= 0x66) return b - 0x57;
  return -1;
};

/**
 * Percent-decodes to raw bytes. Lenient like browsers: a '%' not followed by two hex digits stays a
 * literal '%'. Works on bytes so invalid UTF-8 in %XX sequences survives a decode/encode round trip.
 */
function percentDecode(s: string, plusIsSpace: boolean): Buffer {
  const src = Buffer.from(s, 'utf8');
  const out = Buffer.allocUnsafe(src.length);
  let n = 0;
  for (let i = 0; i < src.length; i++) {
    const b = src[i]!;
    if (b === 0x25) {
      const hi = hexVal(src[i + 1]);
      const lo = hexVal(src[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out[n++] = (hi << 4) | lo;
        i += 2;
        continue;
      }
    }
    out[n++] = plusIsSpace && b === 0x2b ? 0x20 : b;
  }
  return out.subarray(0, n);
}

// ---------------------------------------------------------------------------------------------------------
// Canonical request parts
// ---------------------------------------------------------------------------------------------------------

/**
 * Canonical URI.
 * - S3: the path as sent, no normalisation; each segment is decoded and re-encoded once so that
 *   equivalent encodings (%7e vs ~, %2a vs *) compare equal and match what the client signed.
 * - Other services: remove empty, '.' and '..' segments (RFC 3986 normalisation as the AWS SDKs do it),
 *   then encode the already-encoded path once more, i.e. each segment ends up encoded twice.
 */
export function canonicalUri(rawPath: string, s3PathEncoding: boolean): string {
  // The root (every SQS, IAM and STS request) is its own canonical form in both schemes.
  if (rawPath === '/' || rawPath === '') return '/';
  const path = rawPath;
  if (s3PathEncoding) {
    return path
      .split('/')
      .map((seg) => uriEncodeBytes(percentDecode(seg, false)))
      .join('/');
  }
  const segments: string[] = [];
  for (const seg of path.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') segments.pop();
    else segments.push(seg);
  }
  const leading = path.startsWith('/') ? '/' : '';
  const trailing = segments.length > 0 && path.endsWith('/') ? '/' : '';
  return leading + segments.map(uriEncode).join('/') + trailing;
}

/**
 * Canonical query string: split on '&', each name/value percent-decoded ('+' is a space, as in
 * form encoding) and re-encoded with the RFC 3986 unreserved set, sorted by encoded name then value.
 * A parameter without '=' has an empty value. Presigned requests leave out X-Amz-Signature.
 */
export function canonicalQuery(rawQuery: string, excludeSignature: boolean): string {
  const pairs: [string, string][] = [];
  for (const part of rawQuery.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const rawName = eq < 0 ? part : part.slice(0, eq);
    const rawValue = eq < 0 ? '' : part.slice(eq + 1);
    const nameBytes = percentDecode(rawName, true);
    if (excludeSignature && nameBytes.toString('utf8') === 'X-Amz-Signature') continue;
    pairs.push([uriEncodeBytes(nameBytes), uriEncodeBytes(percentDecode(rawValue, true))]);
  }
  // Encoded strings are pure ASCII, so code-unit order is byte order.
  pairs.sort(([an, av], [bn, bv]) => (an < bn ? -1 : an > bn ? 1 : av < bv ? -1 : av > bv ? 1 : 0));
  return pairs.map(([n, v]) => `${n}=${v}`).join('&');
}

/** Whitespace a canonical value may not keep: a run of two, or any but a plain space. */
const NOT_CANONICAL_SPACE = /\s\s|[^\S ]/;

/** Trim, collapse whitespace runs to one space; multiple values joined with ','. */
function canonicalHeaderValue(value: string | string[]): string {
  const one = (v: string) => {
    const t = v.trim();
    // Most values have nothing to collapse: one test instead of a replace that copies.
    return NOT_CANONICAL_SPACE.test(t) ? t.replace(/\s+/g, ' ') : t;
  };
  return Array.isArray(value) ? value.map(one).join(',') : one(value);
}

/** Lowercased, deduplicated and sorted, as the canonical request lists them. */
function canonicalHeaderNames(names: string[]): string[] {
  // Clients send them sorted and lowercase already (the SDKs, awscli, our signer): check, don't sort.
  let ordered = true;
  for (let i = 0; i < names.length; i++) {
    const n = names[i]!;
    if (n !== n.toLowerCase() || (i > 0 && names[i - 1]! >= n)) {
      ordered = false;
      break;
    }
  }
  return ordered ? names : [...new Set(names.map((h) => h.toLowerCase()))].sort();
}

function headerValue(headers: IncomingSignedRequest['headers'], name: string): string | undefined {
  const v = headers[name];
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v.join(',') : v;
}

function buildCanonicalRequest(parts: {
  method: string;
  uri: string;
  query: string;
  headers: [string, string][]; // sorted, canonical values
  payloadHash: string;
}): string {
  const headerBlock = parts.headers.map(([n, v]) => `${n}:${v}\n`).join('');
  const signed = parts.headers.map(([n]) => n).join(';');
  return `${parts.method}\n${parts.uri}\n${parts.query}\n${headerBlock}\n${signed}\n${parts.payloadHash}`;
}

function buildStringToSign(amzDate: string, scope: string, canonicalRequest: string): string {
  return `${ALGORITHM}\n${amzDate}\n${scope}\n${sha256Hex(canonicalRequest)}`;
}

const scopeOf = (date: string, region: string, service: string) =>
  `${date}/${region}/${service}/aws4_request`;

// ---------------------------------------------------------------------------------------------------------
// Server side: parse
// ---------------------------------------------------------------------------------------------------------

function parseCredential(credential: string, where: string) {
  const parts = credential.split('/');
  const [accessKeyId, scopeDate, region, service, terminator] = parts;
  if (parts.length !== 5 || !accessKeyId || !region || !service) {
    throw new YunhaiError(
      'IncompleteSignature',
      `${where} Credential should be of the form '<AccessKeyId>/<YYYYMMDD>/<region>/<service>/aws4_request'; got '${credential}'.`,
    );
  }
  if (terminator !== 'aws4_request') {
    throw new YunhaiError(
      'IncompleteSignature',
      `Credential should be scoped with a valid terminator: 'aws4_request', not '${terminator}'.`,
    );
  }
  if (!scopeDate || !/^\d{8}$/.test(scopeDate)) {
    throw new YunhaiError(
      'IncompleteSignature',
      `Credential should be scoped to a valid date in YYYYMMDD format; got '${scopeDate}'.`,
    );
  }
  return { accessKeyId, scopeDate, region, service };
}

function parseSignedHeaders(value: string, where: string): string[] {
  const names = value.split(';').map((h) => h.trim().toLowerCase());
  if (names.some((h) => h === '')) {
    throw new YunhaiError('IncompleteSignature', `${where} SignedHeaders is malformed: '${value}'.`);
  }
  if (!names.includes('host')) {
    throw new YunhaiError('IncompleteSignature', `'Host' must be a 'SignedHeader' in the ${where}.`);
  }
  return names;
}

function parseSignature(value: string, where: string): string {
  if (!/^[0-9a-f]{64}$/.test(value)) {
    throw new YunhaiError(
      'IncompleteSignature',
      `${where} Signature must be 64 lowercase hexadecimal characters.`,
    );
  }
  return value;
}

function parseAmzDate(value: string, name: string): Date {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  if (m) {
    const d = new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!));
    if (toAmzDate(d) === value) return d;
  }
  throw new YunhaiError(
    'InvalidParameterValue',
    `${name} must be in ISO-8601 'basic format' (YYYYMMDD'T'HHMMSS'Z'). Got '${value}'.`,
  );
}

/** Parses a query string into decoded name -> values (exact, case-sensitive names). */
function decodeQuery(rawQuery: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const part of rawQuery.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const name = percentDecode(eq < 0 ? part : part.slice(0, eq), true).toString('utf8');
    const value = eq < 0 ? '' : percentDecode(part.slice(eq + 1), true).toString('utf8');
    const list = out.get(name);
    if (list) list.push(value);
    else out.set(name, [value]);
  }
  return out;
}

/**
 * Returns null when the request carries no SigV4 auth at all (no AWS4 Authorization header and no
 * X-Amz-Algorithm/Credential/Signature/SignedHeaders query parameter); throws YunhaiError
 * ('IncompleteSignature' for missing or malformed parts, 'InvalidParameterValue' for bad values) when
 * it is malformed.
 */
export function parseSigV4(req: IncomingSignedRequest): SigV4Auth | null {
  const authorization = headerValue(req.headers, 'authorization')?.trim();
  const headerAuth = authorization !== undefined && /^AWS4-/i.test(authorization);
  const params = req.query === '' ? new Map<string, string[]>() : decodeQuery(req.query);
  const queryAuth = PRESIGN_PARAMS.some((p) => params.has(p));

  if (headerAuth && queryAuth) {
    throw new YunhaiError(
      'InvalidParameterValue',
      'Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization header should be specified.',
    );
  }
  if (headerAuth) return parseHeaderAuth(authorization, req.headers);
  if (queryAuth) return parseQueryAuth(params, req.headers);
  return null;
}

function parseHeaderAuth(authorization: string, headers: IncomingSignedRequest['headers']): SigV4Auth {
  const space = authorization.search(/\s/);
  const algorithm = space < 0 ? authorization : authorization.slice(0, space);
  if (algorithm !== ALGORITHM) {
    throw new YunhaiError('IncompleteSignature', `Unsupported AWS 'algorithm': '${algorithm}'.`);
  }
  const fields = new Map<string, string>();
  for (const item of (space < 0 ? '' : authorization.slice(space + 1)).split(',')) {
    const trimmed = item.trim();
    if (trimmed === '') continue;
    const eq = trimmed.indexOf('=');
    if (eq < 0) {
      throw new YunhaiError(
        'IncompleteSignature',
        `Authorization header requires each component to be of the form key=value; got '${trimmed}'.`,
      );
    }
    const key = trimmed.slice(0, eq).trim();
    if (fields.has(key)) {
      throw new YunhaiError(
        'IncompleteSignature',
        `Authorization header has a duplicate '${key}' parameter.`,
      );
    }
    fields.set(key, trimmed.slice(eq + 1).trim());
  }

  const amzDate = headerValue(headers, 'x-amz-date')?.trim();
  const httpDate = headerValue(headers, 'date')?.trim();
  const problems: string[] = [];
  for (const required of ['Credential', 'Signature', 'SignedHeaders']) {
    if (!fields.get(required)) problems.push(`Authorization header requires '${required}' parameter.`);
  }
  if (!amzDate && !httpDate) {
    problems.push("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.");
  }
  if (problems.length > 0) throw new YunhaiError('IncompleteSignature', problems.join(' '));

  const credential = parseCredential(fields.get('Credential')!, 'Authorization header');
  const signedHeaders = parseSignedHeaders(fields.get('SignedHeaders')!, 'Authorization header');
  const signature = parseSignature(fields.get('Signature')!, 'Authorization header');

  let requestTime: Date;
  if (amzDate) {
    requestTime = parseAmzDate(amzDate, 'X-Amz-Date');
  } else {
    const ms = Date.parse(httpDate!);
    if (Number.isNaN(ms)) {
      throw new YunhaiError(
        'InvalidParameterValue',
        `The Date header is not a valid HTTP date: '${httpDate}'.`,
      );
    }
    requestTime = new Date(ms);
  }

  const sessionToken = headerValue(headers, 'x-amz-security-token');
  return {
    kind: 'header',
    ...credential,
    signedHeaders,
    signature,
    requestTime,
    ...(sessionToken !== undefined ? { sessionToken } : {}),
  };
}

function parseQueryAuth(params: Map<string, string[]>, headers: IncomingSignedRequest['headers']): SigV4Auth {
  const single = (name: string): string | undefined => {
    const values = params.get(name);
    if (values && values.length > 1) {
      throw new YunhaiError('InvalidParameterValue', `The query parameter '${name}' may appear only once.`);
    }
    return values?.[0];
  };
  const algorithm = single('X-Amz-Algorithm');
  const credentialValue = single('X-Amz-Credential');
  const signatureValue = single('X-Amz-Signature');
  const dateValue = single('X-Amz-Date');
  const signedHeadersValue = single('X-Amz-SignedHeaders');
  const expiresValue = single('X-Amz-Expires');
  if (
    !algorithm ||
    !credentialValue ||
    !signatureValue ||
    !dateValue ||
    !signedHeadersValue ||
    !expiresValue
  ) {
    throw new YunhaiError('IncompleteSignature', QUERY_PARAMS_REQUIRED);
  }
  if (algorithm !== ALGORITHM) {
    throw new YunhaiError('InvalidParameterValue', `X-Amz-Algorithm only supports "${ALGORITHM}".`);
  }
  if (!/^\d{1,9}$/.test(expiresValue)) {
    throw new YunhaiError(
      'InvalidParameterValue',
      `X-Amz-Expires should be a number of seconds; got '${expiresValue}'.`,
    );
  }
  const expiresSeconds = Number(expiresValue);
  if (expiresSeconds < 1) {
    throw new YunhaiError('InvalidParameterValue', 'X-Amz-Expires must be at least 1 second.');
  }
  const sessionToken = single('X-Amz-Security-Token') ?? headerValue(headers, 'x-amz-security-token');
  return {
    kind: 'query',
    ...parseCredential(credentialValue, 'X-Amz-Credential:'),
    signedHeaders: parseSignedHeaders(signedHeadersValue, 'X-Amz-SignedHeaders'),
    signature: parseSignature(signatureValue, 'X-Amz-Signature:'),
    requestTime: parseAmzDate(dateValue, 'X-Amz-Date'),
    expiresSeconds,
    ...(sessionToken !== undefined ? { sessionToken } : {}),
  };
}

// ---------------------------------------------------------------------------------------------------------
// Server side: verify
// ---------------------------------------------------------------------------------------------------------

function checkTime(auth: SigV4Auth, now: Date, maxSkewSeconds: number): void {
  const skewMs = maxSkewSeconds * 1000;
  const t = auth.requestTime.getTime();
  // Only a rejected request needs these (formatting dates on every request showed in profiles).
  const details = () => ({
    requestTime: toAmzDate(auth.requestTime),
    serverTime: toAmzDate(now),
    maxAllowedSkewMilliseconds: skewMs,
  });
  if (auth.kind === 'header') {
    if (Math.abs(now.getTime() - t) > skewMs) {
      throw new YunhaiError(
        'RequestTimeTooSkewed',
        'The difference between the request time and the current time is too large.',
        details(),
      );
    }
    return;
  }
  const expires = auth.expiresSeconds;
  if (expires === undefined) {
    throw new YunhaiError('IncompleteSignature', QUERY_PARAMS_REQUIRED);
  }
  if (expires > MAX_PRESIGN_EXPIRES_SECONDS) {
    throw new YunhaiError(
      'RequestExpired',
      `X-Amz-Expires must be less than a week (in seconds) that is; ${MAX_PRESIGN_EXPIRES_SECONDS}`,
      { ...details(), expiresSeconds: expires },
    );
  }
  if (t - now.getTime() > skewMs) {
    throw new YunhaiError(
      'RequestExpired',
      'Request is not valid yet: X-Amz-Date is in the future.',
      details(),
    );
  }
  if (now.getTime() > t + expires * 1000) {
    throw new YunhaiError('RequestExpired', 'Request has expired', {
      ...details(),
      expiresSeconds: expires,
      expiredAt: toAmzDate(new Date(t + expires * 1000)),
    });
  }
}

const HEX_SHA256 = /^[0-9a-fA-F]{64}$/;

/**
 * Payload hashes to try, in order. x-amz-content-sha256 (header, or query parameter on presigned URLs) is
 * used verbatim. A presigned URL otherwise signs UNSIGNED-PAYLOAD (S3 rule, and what most presigners do)
 * or, as botocore and the Go SDK do for non-S3 services, the hash of the (normally empty) body; both are
 * accepted since the body is not authenticated by a presigned URL either way.
 */
function payloadHashCandidates(req: IncomingSignedRequest, auth: SigV4Auth, s3: boolean): string[] {
  const declared =
    headerValue(req.headers, 'x-amz-content-sha256')?.trim() ??
    (auth.kind === 'query' ? decodeQuery(req.query).get('X-Amz-Content-Sha256')?.[0] : undefined);
  if (declared !== undefined) {
    // A hash that disagrees with the body we hold means the body was swapped after signing.
    if (
      req.body !== undefined &&
      HEX_SHA256.test(declared) &&
      declared.toLowerCase() !== sha256Hex(req.body)
    ) {
      throw new YunhaiError(
        'SignatureDoesNotMatch',
        "The provided 'x-amz-content-sha256' header does not match what was computed.",
      );
    }
    return [declared];
  }
  const bodyHash = req.body !== undefined ? sha256Hex(req.body) : EMPTY_SHA256;
  if (auth.kind === 'header') return [bodyHash];
  return s3 ? [UNSIGNED_PAYLOAD, bodyHash] : [bodyHash, UNSIGNED_PAYLOAD];
}

/**
 * Throws YunhaiError('SignatureDoesNotMatch') on a mismatch, 'RequestTimeTooSkewed' when header-auth time is
 * outside the skew window, 'RequestExpired' for an expired presigned URL (or X-Amz-Expires > 604800 / in the
 * future beyond skew). Compares signatures in constant time.
 */
export function verifySigV4(
  req: IncomingSignedRequest,
  auth: SigV4Auth,
  secretAccessKey: string,
  opts: VerifyOptions = {},
): void {
  const now = opts.now ?? new Date();
  const s3 = opts.s3PathEncoding ?? false;
  checkTime(auth, now, opts.maxSkewSeconds ?? DEFAULT_MAX_SKEW_SECONDS);

  const amzDate = toAmzDate(auth.requestTime);
  const requestDay = amzDate.slice(0, 8);
  if (auth.scopeDate !== requestDay) {
    throw new YunhaiError(
      'SignatureDoesNotMatch',
      `Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: ` +
        `'${auth.scopeDate}' != '${requestDay}', from '${amzDate}'.`,
    );
  }

  const headers: [string, string][] = [];
  for (const name of canonicalHeaderNames(auth.signedHeaders)) {
    const value = req.headers[name] ?? (name === 'host' ? req.headers[':authority'] : undefined);
    if (value === undefined) {
      throw new YunhaiError(
        'SignatureDoesNotMatch',
        `The header '${name}' is listed in SignedHeaders but is not present in the request.`,
      );
    }
    headers.push([name, canonicalHeaderValue(value)]);
  }

  const base = {
    method: req.method,
    uri: canonicalUri(req.path, s3),
    query: canonicalQuery(req.query, auth.kind === 'query'),
    headers,
  };
  const scope = scopeOf(auth.scopeDate, auth.region, auth.service);
  const key = deriveSigningKey(secretAccessKey, auth.scopeDate, auth.region, auth.service);

  // parseSignature admitted only 64 lowercase hex digits, so the bytes compare directly.
  const given = Buffer.from(auth.signature, 'hex');
  let first: { canonicalRequest: string; stringToSign: string } | undefined;
  for (const payloadHash of payloadHashCandidates(req, auth, s3)) {
    const canonicalRequest = buildCanonicalRequest({ ...base, payloadHash });
    const stringToSign = buildStringToSign(amzDate, scope, canonicalRequest);
    const expected = hmac(key, stringToSign);
    // Lengths are public (32 bytes); only the contents must not leak.
    if (given.length === expected.length && timingSafeEqual(given, expected)) return;
    first ??= { canonicalRequest, stringToSign };
  }
  // Like S3, hand back what we signed so a client author can diff it against theirs (no secrets in it).
  throw new YunhaiError('SignatureDoesNotMatch', SIGNATURE_MISMATCH, first);
}

// ---------------------------------------------------------------------------------------------------------
// Client side
// ---------------------------------------------------------------------------------------------------------

const isS3 = (service: string) => service === 's3';

/**
 * Client side (our CLI uses this): returns the headers to add (authorization, x-amz-date,
 * x-amz-content-sha256, and x-amz-security-token if given). Signs every given header except hop-by-hop
 * and other unsignable ones, plus host (taken from the URL when not given). An x-amz-content-sha256 in
 * `headers` (e.g. UNSIGNED-PAYLOAD) is used as is; otherwise the body is hashed.
 */
export function signRequest(input: {
  method: string;
  url: URL;
  headers: Record<string, string>;
  body?: Buffer | string;
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  region: string;
  service: string;
  now?: Date;
}): Record<string, string> {
  const now = input.now ?? new Date();
  const amzDate = toAmzDate(now);
  const scopeDate = amzDate.slice(0, 8);

  const all = new Map<string, string[]>();
  for (const [name, value] of Object.entries(input.headers)) {
    const lower = name.toLowerCase();
    const list = all.get(lower);
    if (list) list.push(value);
    else all.set(lower, [value]);
  }
  const payloadHash =
    all.get('x-amz-content-sha256')?.[0]?.trim() ??
    (input.body !== undefined ? sha256Hex(input.body) : EMPTY_SHA256);

  const added: Record<string, string> = {
    'x-amz-date': amzDate,
    'x-amz-content-sha256': payloadHash,
  };
  if (input.sessionToken !== undefined) added['x-amz-security-token'] = input.sessionToken;
  for (const [name, value] of Object.entries(added)) all.set(name, [value]);
  if (!all.has('host')) all.set('host', [input.url.host]);

  const headers = [...all]
    .filter(([name]) => !UNSIGNABLE_HEADERS.has(name))
    .map(([name, values]): [string, string] => [name, canonicalHeaderValue(values)])
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

  const canonicalRequest = buildCanonicalRequest({
    method: input.method,
    uri: canonicalUri(input.url.pathname, isS3(input.service)),
    query: canonicalQuery(input.url.search.slice(1), false),
    headers,
    payloadHash,
  });
  const scope = scopeOf(scopeDate, input.region, input.service);
  const key = deriveSigningKey(input.secretAccessKey, scopeDate, input.region, input.service);
  const signature = hmac(key, buildStringToSign(amzDate, scope, canonicalRequest)).toString('hex');

  return {
    authorization: `${ALGORITHM} Credential=${input.accessKeyId}/${scope}, SignedHeaders=${headers.map(([n]) => n).join(';')}, Signature=${signature}`,
    ...added,
  };
}

/**
 * Client side presign: returns the URL with X-Amz-* query parameters (only host is signed). The payload
 * hash is UNSIGNED-PAYLOAD for S3 and the empty-body hash for other services, as the AWS SDKs do.
 */
export function presignUrl(input: {
  method: string;
  url: URL;
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  region: string;
  service: string;
  expiresSeconds: number;
  now?: Date;
}): URL {
  const { expiresSeconds } = input;
  if (
    !Number.isInteger(expiresSeconds) ||
    expiresSeconds < 1 ||
    expiresSeconds > MAX_PRESIGN_EXPIRES_SECONDS
  ) {
    throw new YunhaiError(
      'InvalidParameterValue',
      `expiresSeconds must be an integer between 1 and ${MAX_PRESIGN_EXPIRES_SECONDS}; got ${expiresSeconds}.`,
    );
  }
  const existing = input.url.search.slice(1);
  const present = decodeQuery(existing);
  for (const name of [...PRESIGN_PARAMS, 'X-Amz-Date', 'X-Amz-Expires', 'X-Amz-Security-Token']) {
    if (present.has(name)) {
      throw new YunhaiError('InvalidParameterValue', `The URL to presign already has a '${name}' parameter.`);
    }
  }

  const amzDate = toAmzDate(input.now ?? new Date());
  const scopeDate = amzDate.slice(0, 8);
  const scope = scopeOf(scopeDate, input.region, input.service);
  const params: [string, string][] = [
    ['X-Amz-Algorithm', ALGORITHM],
    ['X-Amz-Credential', `${input.accessKeyId}/${scope}`],
    ['X-Amz-Date', amzDate],
    ['X-Amz-Expires', String(expiresSeconds)],
    ['X-Amz-SignedHeaders', 'host'],
  ];
  if (input.sessionToken !== undefined) params.push(['X-Amz-Security-Token', input.sessionToken]);
  const added = params.map(([n, v]) => `${n}=${uriEncode(v)}`).join('&');
  const query = existing === '' ? added : `${existing}&${added}`;

  const canonicalRequest = buildCanonicalRequest({
    method: input.method,
    uri: canonicalUri(input.url.pathname, isS3(input.service)),
    query: canonicalQuery(query, true),
    headers: [['host', canonicalHeaderValue(input.url.host)]],
    payloadHash: isS3(input.service) ? UNSIGNED_PAYLOAD : EMPTY_SHA256,
  });
  const key = deriveSigningKey(input.secretAccessKey, scopeDate, input.region, input.service);
  const signature = hmac(key, buildStringToSign(amzDate, scope, canonicalRequest)).toString('hex');

  const out = new URL(input.url.href);
  out.search = `${query}&X-Amz-Signature=${signature}`;
  return out;
}
