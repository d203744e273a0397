/**
 * The S3 REST protocol on its own listener, written from the Amazon S3 API reference. Every
 * request runs one pipeline, as Miniflare's R2 front does:
 *
 *   resolve bucket (Host or path) → authenticate (SigV4 header or presigned query, or anonymous)
 *   → detect the operation (method + sub-resource) → its handler → ObjectService
 *
 * Bodies are never buffered by Fastify: the content-type parser hands the raw request stream to
 * the handler, which streams it (aws-chunked decoded, chunk signatures checked) into the blob
 * store. Errors leave as S3 `<Error>` documents (s3ErrorRenderer).
 *
 * Known gaps against AWS: website, notifications, replication, select.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import {
  type AuthRequest,
  authenticateRequest,
  type CredentialSource,
  headerValue,
} from '../../../platform/auth/authenticate.js';
import { cachedCredentials } from '../../../platform/auth/credential-cache.js';
import { deriveSigningKey, parseSigV4, toAmzDate } from '../../../platform/auth/sigv4.js';
import type { Principal } from '../../../platform/policy/principal.js';
import { storedCors } from '../bucket-configs.js';
import { S3DocumentError } from '../bucket-policy.js';
import { corsPreflight, corsResponseHeaders } from '../cors.js';
import { ObjectError } from '../errors.js';
import type { ObjectService } from '../service.js';
import type { ChunkSigning } from './aws-chunked.js';
import { detectOperation, OPERATIONS } from './operations.js';
import { parseQuery, percentDecodeUtf8, resolveTarget, type S3Target } from './paths.js';
import type { S3Call } from './request.js';
import { authenticateSigV2, isSigV2 } from './sigv2.js';

export { s3ErrorRenderer } from './errors.js';

export interface S3ApiOptions {
  objects: ObjectService;
  credentials: CredentialSource;
  /**
   * Host names of the S3 endpoint: a request to `<bucket>.<domain>` addresses that bucket
   * (virtual-hosted style); any other Host is path style.
   */
  domains: readonly string[];
}

function authRequest(req: FastifyRequest): AuthRequest {
  const q = req.url.indexOf('?');
  return {
    method: req.method,
    path: q < 0 ? req.url : req.url.slice(0, q),
    query: q < 0 ? '' : req.url.slice(q + 1),
    headers: req.headers,
    // No body: payloads stream, and x-amz-content-sha256 is checked while they do.
    sourceIp: req.ip,
    requestId: req.id,
  };
}

/**
 * How long a verified access key's secret and principal are reused: every S3 request looks its key
 * up (two queries and unsealing the secret), mostly the same few keys. A deleted, deactivated or
 * expired key keeps working for at most that long (IAM changes are eventually consistent on AWS too).
 */
const CREDENTIAL_CACHE_MS = 1000;

export function registerS3Api(app: FastifyInstance, opts: S3ApiOptions) {
  const { objects, domains } = opts;
  const credentials = cachedCredentials(opts.credentials, { ttlMs: CREDENTIAL_CACHE_MS });

  // Leave every body on the request stream; handlers read it (or Node discards it).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined));

  // A response sent before the body was read (an early error) closes the connection rather than
  // leave unread request bytes in front of the next request on it.
  app.addHook('onSend', async (req, reply) => {
    if (!req.raw.complete) reply.header('connection', 'close');
  });

  async function authenticateCall(
    req: FastifyRequest,
    target: S3Target,
  ): Promise<{ principal: Principal | null; signed: boolean; signing?: ChunkSigning }> {
    const ar = authRequest(req);
    checkPresignedExpiry(ar.query);
    const parsed = parseSigV4(ar);
    if (!parsed) {
      if (isSigV2(req.headers, new URLSearchParams(ar.query))) {
        const principal = await authenticateSigV2(
          credentials,
          {
            method: req.method,
            path: ar.path,
            query: ar.query,
            headers: req.headers,
            ...(target.virtualHost && target.bucket !== undefined
              ? { virtualHostBucket: target.bucket }
              : {}),
          },
          { sourceIp: req.ip, requestId: req.id },
        );
        return { principal, signed: true };
      }
      return { principal: null, signed: false };
    }
    const r = await authenticateRequest(credentials, ar, {
      allowBearer: false,
      s3PathEncoding: true,
      service: 's3',
      auditAction: 's3:Authenticate',
    });
    let signing: ChunkSigning | undefined;
    if (parsed.kind === 'header' && r.sigv4) {
      signing = {
        signingKey: deriveSigningKey(
          r.sigv4.secretAccessKey,
          parsed.scopeDate,
          parsed.region,
          parsed.service,
        ),
        amzDate: toAmzDate(parsed.requestTime),
        scope: `${parsed.scopeDate}/${parsed.region}/${parsed.service}/aws4_request`,
        seedSignature: parsed.signature,
      };
    }
    return { principal: r.principal, signed: true, ...(signing ? { signing } : {}) };
  }

  // CORS preflight: anonymous, answered from the bucket's CORS configuration alone.
  app.route({
    method: 'OPTIONS',
    url: '/*',
    handler: async (req, reply) => {
      reply.header('x-amz-request-id', req.id).header('x-amz-id-2', req.id);
      const q = req.url.indexOf('?');
      const target = resolveTarget(
        q < 0 ? req.url : req.url.slice(0, q),
        headerValue(req.headers.host),
        domains,
      );
      const h = (name: string) => headerValue(req.headers[name]);
      const config =
        target.bucket !== undefined ? storedCors(await objects.bucketCors(target.bucket)) : undefined;
      const origin = h('origin');
      const method = h('access-control-request-method');
      const requested = h('access-control-request-headers');
      const out = corsPreflight(config, {
        ...(origin !== undefined ? { origin } : {}),
        ...(method !== undefined ? { accessControlRequestMethod: method } : {}),
        ...(requested !== undefined ? { accessControlRequestHeaders: requested } : {}),
      });
      if (!out.ok) throw new ObjectError(out.code, out.message);
      for (const [k, v] of Object.entries(out.headers)) reply.header(k, v);
      return reply.code(200).send();
    },
  });

  app.route({
    method: ['GET', 'HEAD', 'PUT', 'POST', 'DELETE'],
    url: '/*',
    handler: async (req, reply) => {
      reply.header('x-amz-request-id', req.id).header('x-amz-id-2', req.id);
      const q = req.url.indexOf('?');
      const rawPath = q < 0 ? req.url : req.url.slice(0, q);
      const query = parseQuery(q < 0 ? '' : req.url.slice(q + 1));
      const target = resolveTarget(rawPath, headerValue(req.headers.host), domains);
      const origin = headerValue(req.headers.origin);
      if (origin !== undefined && target.bucket !== undefined) {
        const cors = corsResponseHeaders(storedCors(await objects.bucketCors(target.bucket)), {
          origin,
          method: req.method,
          ...(req.headers['access-control-request-method'] !== undefined
            ? { accessControlRequestMethod: headerValue(req.headers['access-control-request-method'])! }
            : {}),
        });
        for (const [k, v] of Object.entries(cors)) reply.header(k, v);
      }
      const auth = await authenticateCall(req, target);
      const expectedOwner = headerValue(req.headers['x-amz-expected-bucket-owner']);
      if (expectedOwner !== undefined && target.bucket !== undefined)
        await objects.checkExpectedOwner(target.bucket, expectedOwner);
      const expectedSourceOwner = headerValue(req.headers['x-amz-source-expected-bucket-owner']);
      const copySource = headerValue(req.headers['x-amz-copy-source']);
      if (expectedSourceOwner !== undefined && copySource !== undefined) {
        const path = percentDecodeUtf8(copySource.split('?')[0] ?? '').replace(/^\//, '');
        const slash = path.indexOf('/');
        if (slash > 0) await objects.checkExpectedOwner(path.slice(0, slash), expectedSourceOwner);
      }
      const op = detectOperation(
        req.method,
        target.bucket,
        target.key,
        query,
        req.headers['x-amz-copy-source'] !== undefined,
      );
      const call: S3Call = {
        req,
        reply,
        objects,
        ctx: {
          principal: auth.principal,
          requestId: req.id,
          sourceIp: req.ip,
          conditions: requestConditions(req, query),
        },
        ...(target.bucket !== undefined ? { bucket: target.bucket } : {}),
        ...(target.key !== undefined ? { key: target.key } : {}),
        query,
        ...(auth.signing ? { signing: auth.signing } : {}),
        signed: auth.signed,
        credentials,
      };
      try {
        return await OPERATIONS[op](call);
      } catch (e) {
        if (e instanceof S3DocumentError)
          throw new ObjectError(e.code, e.message, e.details ? { extra: e.details } : {});
        throw e;
      }
    },
  });
}

/**
 * A presigned URL's lifetime: X-Amz-Expires must be 1..604800 seconds and not over. Refused with
 * AccessDenied (403) before the signature is looked at, as S3 answers such links.
 */
export function checkPresignedExpiry(rawQuery: string, now = Date.now()): void {
  if (!rawQuery.includes('X-Amz-Signature=')) return;
  const q = new URLSearchParams(rawQuery);
  const expires = q.get('X-Amz-Expires');
  const date = q.get('X-Amz-Date');
  if (expires === null || date === null) return;
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(date);
  const seconds = /^\d+$/.test(expires) ? Number(expires) : Number.NaN;
  if (!(seconds >= 1 && seconds <= 604800))
    throw new ObjectError('AccessDenied', 'X-Amz-Expires must be between 1 and 604800 seconds (one week).');
  if (!m) return;
  const signedAt = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!);
  if (signedAt + seconds * 1000 < now) throw new ObjectError('AccessDenied', 'Request has expired');
}

/** Request headers whose values bucket policies may test as `s3:<header>` condition keys. */
const CONDITION_HEADERS = [
  'x-amz-acl',
  'x-amz-grant-read',
  'x-amz-grant-write',
  'x-amz-grant-read-acp',
  'x-amz-grant-write-acp',
  'x-amz-grant-full-control',
  'x-amz-copy-source',
  'x-amz-metadata-directive',
  'x-amz-server-side-encryption',
  'x-amz-server-side-encryption-aws-kms-key-id',
  'x-amz-server-side-encryption-customer-algorithm',
  'x-amz-storage-class',
  'x-amz-object-lock-mode',
  'x-amz-object-lock-retain-until-date',
  'x-amz-object-lock-legal-hold',
];

/** The policy condition context a request carries (beyond who and when, which the service adds). */
export function requestConditions(
  req: FastifyRequest,
  query: Map<string, string>,
): Record<string, string | string[]> {
  const c: Record<string, string | string[]> = {
    'aws:SecureTransport': req.protocol === 'https' ? 'true' : 'false',
  };
  const h = (name: string) => headerValue(req.headers[name]);
  const referer = h('referer');
  if (referer !== undefined) c['aws:Referer'] = referer;
  const ua = h('user-agent');
  if (ua !== undefined) c['aws:UserAgent'] = ua;
  for (const name of CONDITION_HEADERS) {
    const v = h(name);
    if (v !== undefined) c[`s3:${name}`] = v;
  }
  const retention = h('x-amz-object-lock-retain-until-date');
  if (retention !== undefined) {
    const until = Date.parse(retention);
    if (!Number.isNaN(until))
      c['s3:object-lock-remaining-retention-days'] = String(
        Math.max(0, Math.ceil((until - Date.now()) / 86400000)),
      );
  }
  for (const q of ['prefix', 'delimiter', 'max-keys']) {
    const v = query.get(q);
    if (v !== undefined) c[`s3:${q}`] = v;
  }
  const versionId = query.get('versionId');
  if (versionId !== undefined) c['s3:VersionId'] = versionId;
  const tagging = h('x-amz-tagging');
  if (tagging !== undefined) {
    const keys: string[] = [];
    for (const [k, v] of new URLSearchParams(tagging)) {
      c[`s3:RequestObjectTag/${k}`] = v;
      keys.push(k);
    }
    c['s3:RequestObjectTagKeys'] = keys;
  }
  return c;
}
