/**
 * AWS Signature Version 2 for the S3 listener (legacy clients, `signature_version='s3'`): the
 * `Authorization: AWS <key>:<signature>` header and presigned `?AWSAccessKeyId=&Expires=&Signature=`
 * URLs. The signature is base64 HMAC-SHA1 over
 *
 *   VERB \n Content-MD5 \n Content-Type \n Date (or Expires) \n CanonicalizedAmzHeaders CanonicalizedResource
 *
 * (Amazon S3 developer guide, "Signing and authenticating REST requests"). Payloads are not
 * signed in V2; Content-MD5 still protects a body when the client sends it.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { CredentialSource } from '../../../platform/auth/authenticate.js';
import type { Principal } from '../../../platform/policy/principal.js';
import { ObjectError } from '../errors.js';

/** Query parameters that are part of the canonical resource. */
const SUBRESOURCES = new Set([
  'acl',
  'attributes',
  'cors',
  'delete',
  'encryption',
  'legal-hold',
  'lifecycle',
  'location',
  'logging',
  'notification',
  'object-lock',
  'ownershipControls',
  'partNumber',
  'policy',
  'policyStatus',
  'publicAccessBlock',
  'requestPayment',
  'response-cache-control',
  'response-content-disposition',
  'response-content-encoding',
  'response-content-language',
  'response-content-type',
  'response-expires',
  'restore',
  'retention',
  'tagging',
  'torrent',
  'uploadId',
  'uploads',
  'versionId',
  'versioning',
  'versions',
  'website',
]);

const MAX_SKEW_MS = 15 * 60_000;

const unquote = (s: string) => {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
};

const one = (v: string | string[] | undefined) => (Array.isArray(v) ? v.join(',') : v);

export interface SigV2Request {
  method: string;
  /** The path as sent (percent-encoded), without the query. */
  path: string;
  /** The raw query string (without '?'). */
  query: string;
  headers: IncomingHttpHeaders;
  /** The bucket when it came from the Host name (virtual-hosted style): it leads the canonical resource. */
  virtualHostBucket?: string;
}

/** The string a V2 signature covers; `dateLine` is the Date header, or Expires for presigned URLs. */
export function stringToSignV2(r: SigV2Request, dateLine: string): string {
  const amz = new Map<string, string[]>();
  for (const [name, value] of Object.entries(r.headers)) {
    const n = name.toLowerCase();
    if (!n.startsWith('x-amz-') || value === undefined) continue;
    const values = Array.isArray(value) ? value : [value];
    amz.set(n, [...(amz.get(n) ?? []), ...values.map((v) => v.trim())]);
  }
  const amzLines = [...amz.keys()]
    .sort()
    .map((n) => `${n}:${amz.get(n)!.join(',')}\n`)
    .join('');
  const sub = r.query
    .split('&')
    .filter((p) => p !== '')
    .map((p) => {
      const eq = p.indexOf('=');
      return eq < 0 ? ([p, undefined] as const) : ([p.slice(0, eq), unquote(p.slice(eq + 1))] as const);
    })
    .filter(([k]) => SUBRESOURCES.has(k))
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => (v === undefined ? k : `${k}=${v}`));
  const resource =
    (r.virtualHostBucket !== undefined ? `/${r.virtualHostBucket}` : '') +
    r.path +
    (sub.length > 0 ? `?${sub.join('&')}` : '');
  return [
    r.method.toUpperCase(),
    one(r.headers['content-md5'])?.trim() ?? '',
    one(r.headers['content-type'])?.trim() ?? '',
    dateLine,
    `${amzLines}${resource}`,
  ].join('\n');
}

export const signV2 = (secret: string, stringToSign: string) =>
  createHmac('sha1', secret).update(stringToSign, 'utf8').digest('base64');

const same = (a: string, b: string) => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
};

/** Whether the request carries a V2 signature (header or query). */
export function isSigV2(headers: IncomingHttpHeaders, query: URLSearchParams): boolean {
  return (
    one(headers.authorization)?.startsWith('AWS ') === true ||
    (query.has('AWSAccessKeyId') && query.has('Signature'))
  );
}

/** Verifies a V2-signed request; answers its principal or throws S3's error. */
export async function authenticateSigV2(
  credentials: CredentialSource,
  r: SigV2Request,
  meta: { sourceIp: string; requestId: string },
  now = Date.now(),
): Promise<Principal> {
  const q = new URLSearchParams(r.query);
  const authz = one(r.headers.authorization);
  let accessKeyId: string;
  let signature: string;
  let dateLine: string;
  if (authz?.startsWith('AWS ')) {
    const m = /^AWS ([^:\s]+):(\S+)$/.exec(authz.trim());
    if (!m) throw new ObjectError('AuthorizationHeaderMalformed', 'The authorization header is malformed.');
    accessKeyId = m[1]!;
    signature = m[2]!;
    const date = one(r.headers['x-amz-date']) ?? one(r.headers.date);
    const at = date !== undefined ? Date.parse(date) : Number.NaN;
    if (Number.isNaN(at))
      throw new ObjectError('AccessDenied', 'AWS authentication requires a valid Date or x-amz-date header');
    if (Math.abs(now - at) > MAX_SKEW_MS)
      throw new ObjectError(
        'RequestTimeTooSkewed',
        'The difference between the request time and the current time is too large.',
      );
    // With x-amz-date the Date line is empty; clients that send both sign the Date header.
    dateLine = one(r.headers.date)?.trim() ?? '';
  } else {
    accessKeyId = q.get('AWSAccessKeyId') ?? '';
    signature = q.get('Signature') ?? '';
    const expires = q.get('Expires') ?? '';
    if (!/^\d+$/.test(expires))
      throw new ObjectError('AccessDenied', 'Query-string authentication requires the Expires parameter');
    if (Number(expires) * 1000 < now) throw new ObjectError('AccessDenied', 'Request has expired');
    dateLine = expires;
  }
  const fail = async (code: 'InvalidAccessKeyId' | 'SignatureDoesNotMatch', tenantId?: string) => {
    await credentials.auditAuthFailure({
      sourceIp: meta.sourceIp,
      requestId: meta.requestId,
      principal: accessKeyId,
      action: 's3:Authenticate',
      errorCode: code,
      ...(tenantId ? { tenantId } : {}),
    });
    return code === 'InvalidAccessKeyId'
      ? new ObjectError(
          'InvalidAccessKeyId',
          'The AWS Access Key Id you provided does not exist in our records.',
        )
      : new ObjectError(
          'SignatureDoesNotMatch',
          'The request signature we calculated does not match the signature you provided. Check your key and signing method.',
        );
  };
  const cred = await credentials.credentialForKey(accessKeyId);
  if (!cred) throw await fail('InvalidAccessKeyId');
  const token = one(r.headers['x-amz-security-token']) ?? q.get('x-amz-security-token') ?? undefined;
  if (
    cred.sessionTokenHash !== undefined &&
    (token === undefined || credentials.mac(token) !== cred.sessionTokenHash)
  )
    throw await fail('SignatureDoesNotMatch', cred.principal.tenantId);
  const dates = [dateLine];
  if (authz && one(r.headers['x-amz-date']) !== undefined) dates.push('');
  // A bucket-level path is signed as `/bucket/` by botocore (and `/bucket` by others).
  const requests = [r];
  if (r.virtualHostBucket === undefined && /^\/[^/]+$/.test(r.path))
    requests.push({ ...r, path: `${r.path}/` });
  const ok = dates.some((d) =>
    requests.some((x) => same(signV2(cred.secretAccessKey, stringToSignV2(x, d)), signature)),
  );
  if (!ok) throw await fail('SignatureDoesNotMatch', cred.principal.tenantId);
  return cred.principal;
}
