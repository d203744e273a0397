import type { Readable } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { MAX_PRESIGN_EXPIRES_SECONDS, presignUrl, uriEncode } from '../../platform/auth/sigv4.js';
import { YunhaiError } from '../../platform/errors.js';
import { decodeCursor, encodeCursor } from '../../platform/http/pagination.js';
import { checkCsrf, type RouteDef, route, validationError } from '../../platform/http/rest.js';
import type { Principal, RequestContext } from '../../platform/policy/principal.js';
import type { IamService } from '../iam/service.js';
import type { ObjectInfo, ObjectService } from './service.js';

/**
 * Object storage on the REST API, for the portal and anyone without an S3 client: create and
 * delete buckets, versioning, list objects by folder (prefix + delimiter), upload (the body is
 * streamed into the object service, never buffered), download, delete, and time-limited presigned
 * GET links on the s3 listener. Every call goes through the object service, so bucket policies,
 * ACLs, quotas, metering and audit apply exactly as over S3.
 */

const bucketName = z.string().min(3).max(63);
const bucketParam = z.strictObject({ name: bucketName });
const objectKey = z.string().min(1).max(1024);

const objectView = z.object({
  key: z.string(),
  size: z.number(),
  etag: z.string(),
  lastModified: z.string(),
  contentType: z.string().nullable(),
  versionId: z.string().nullable(),
  storageClass: z.string(),
});

const view = (o: ObjectInfo): z.infer<typeof objectView> => ({
  key: o.key,
  size: o.size,
  etag: `"${o.etag}"`,
  lastModified: new Date(o.lastModified).toISOString(),
  contentType: o.headers.contentType ?? null,
  versionId: o.versionId === 'null' || o.versionId === '' ? null : o.versionId,
  storageClass: o.storageClass,
});

const ctxOf = (ctx: RequestContext) => ({
  principal: ctx.principal,
  requestId: ctx.requestId,
  sourceIp: ctx.sourceIp,
});

export interface ObjectRouteDeps {
  objects: ObjectService;
  iam: IamService;
  /** Base URL of the s3 listener (presigned links point there). */
  s3Endpoint: () => string;
}

export function objectRoutes(deps: ObjectRouteDeps): RouteDef[] {
  const { objects, iam } = deps;
  return [
    route({
      method: 'POST',
      path: '/buckets',
      operationId: 'createBucket',
      summary: 'Create a bucket in your tenant, optionally with versioning on.',
      tag: 'objects',
      body: z.strictObject({
        name: bucketName,
        region: z.string().min(1).max(32).optional(),
        versioning: z.boolean().optional(),
        objectLockEnabled: z.boolean().optional(),
      }),
      status: 201,
      response: z.object({ name: z.string(), region: z.string(), versioning: z.string() }),
      handler: async (ctx, { body }) => {
        const b = await objects.createBucket(ctxOf(ctx), {
          name: body.name,
          ...(body.region ? { region: body.region } : {}),
          ...(body.objectLockEnabled ? { objectLockEnabled: true } : {}),
        });
        if (body.versioning && !body.objectLockEnabled)
          await objects.putBucketVersioning(ctxOf(ctx), body.name, 'Enabled');
        return {
          name: b.name,
          region: b.region,
          versioning: body.versioning || body.objectLockEnabled ? 'Enabled' : 'Disabled',
        };
      },
    }),
    route({
      method: 'DELETE',
      path: '/buckets/{name}',
      operationId: 'deleteBucket',
      summary: 'Delete an empty bucket (BucketNotEmpty while any object version remains).',
      tag: 'objects',
      params: bucketParam,
      status: 204,
      handler: async (ctx, { params }) => {
        await objects.deleteBucket(ctxOf(ctx), params.name);
      },
    }),
    route({
      method: 'PUT',
      path: '/buckets/{name}/versioning',
      operationId: 'putBucketVersioning',
      summary: 'Turn versioning on (Enabled) or pause it (Suspended); it cannot be turned off once on.',
      tag: 'objects',
      params: bucketParam,
      body: z.strictObject({ status: z.enum(['Enabled', 'Suspended']) }),
      response: z.object({ versioning: z.enum(['Enabled', 'Suspended']) }),
      handler: async (ctx, { params, body }) => {
        await objects.putBucketVersioning(ctxOf(ctx), params.name, body.status);
        return { versioning: body.status };
      },
    }),
    route({
      method: 'GET',
      path: '/buckets/{name}/objects',
      operationId: 'listObjects',
      summary:
        'Objects of a bucket in key order. With delimiter (usually "/"), keys below the next delimiter after the prefix roll up into folders.',
      tag: 'objects',
      params: bucketParam,
      query: z.strictObject({
        prefix: z.string().max(1024).optional(),
        delimiter: z.string().min(1).max(16).optional(),
        limit: z.coerce.number().int().min(1).max(1000).default(100),
        cursor: z.string().max(2048).optional(),
      }),
      response: z.object({
        items: z.array(objectView),
        folders: z.array(z.string()),
        nextCursor: z.string().nullable(),
      }),
      handler: async (ctx, { params, query }) => {
        const raw = decodeCursor(query.cursor);
        if (raw !== undefined && typeof raw[0] !== 'string')
          throw new YunhaiError('ValidationError', 'The pagination cursor is malformed.');
        const after = raw?.[0] as string | undefined;
        const page = await objects.listObjects(ctxOf(ctx), {
          bucket: params.name,
          ...(query.prefix ? { prefix: query.prefix } : {}),
          ...(query.delimiter ? { delimiter: query.delimiter } : {}),
          maxKeys: query.limit,
          ...(after !== undefined ? { after, marker: after } : {}),
        });
        return {
          items: page.entries.map(view),
          folders: page.commonPrefixes,
          nextCursor: page.truncated && page.last ? encodeCursor([page.last.key]) : null,
        };
      },
    }),
    route({
      method: 'DELETE',
      path: '/buckets/{name}/objects',
      operationId: 'deleteObject',
      summary:
        'Delete an object (?key=). In a versioned bucket this adds a delete marker; with ?versionId= it removes that version for good.',
      tag: 'objects',
      params: bucketParam,
      query: z.strictObject({ key: objectKey, versionId: z.string().min(1).max(64).optional() }),
      response: z.object({ deleteMarker: z.boolean(), versionId: z.string().nullable() }),
      handler: async (ctx, { params, query }) => {
        const r = await objects.deleteObject(ctxOf(ctx), {
          bucket: params.name,
          key: query.key,
          ...(query.versionId ? { versionId: query.versionId } : {}),
        });
        return { deleteMarker: r.deleteMarker, versionId: r.versionId ?? null };
      },
    }),
    route({
      method: 'POST',
      path: '/buckets/{name}/presign',
      operationId: 'presignObject',
      summary:
        'A time-limited link that downloads one object from the s3 listener without signing in (signed with temporary credentials of the caller that last as long as the link).',
      tag: 'objects',
      params: bucketParam,
      body: z.strictObject({
        key: objectKey,
        expiresSeconds: z.number().int().min(60).max(MAX_PRESIGN_EXPIRES_SECONDS).default(3600),
      }),
      response: z.object({ url: z.string(), expiresAt: z.string() }),
      handler: async (ctx, { params, body }) => {
        // The object must exist and be readable by the caller now, or the link would only ever fail.
        await objects.getObject(ctxOf(ctx), { bucket: params.name, key: body.key, head: true });
        const bucket = await objects.headBucket(ctxOf(ctx), params.name);
        const creds = await iam.createSessionCredentials(ctx, body.expiresSeconds);
        const path = `/${uriEncode(params.name)}/${body.key.split('/').map(uriEncode).join('/')}`;
        const url = presignUrl({
          method: 'GET',
          url: new URL(path, deps.s3Endpoint()),
          accessKeyId: creds.accessKeyId,
          secretAccessKey: creds.secretAccessKey,
          sessionToken: creds.sessionToken,
          region: bucket.region,
          service: 's3',
          expiresSeconds: body.expiresSeconds,
        });
        return { url: url.href, expiresAt: new Date(Date.now() + body.expiresSeconds * 1000).toISOString() };
      },
    }),
  ];
}

/** How the raw (non-JSON) transfer routes authenticate: the REST API's own authenticator. */
export type RestAuthenticate = (req: FastifyRequest) => Promise<{ principal: Principal }>;

const transferQuery = z.strictObject({ key: objectKey, versionId: z.string().min(1).max(64).optional() });

function parseTransferQuery(req: FastifyRequest) {
  const r = transferQuery.safeParse(req.query ?? {});
  if (!r.success) throw validationError(r.error, 'query');
  return r.data;
}

/**
 * Upload and download, which carry object bytes rather than JSON, so they are plain Fastify routes
 * in their own plugin scope: the body of an upload is handed to the object service as the request
 * stream (the listener's JSON body limit does not apply; the object service's size limit does).
 *
 * - `PUT {prefix}/buckets/{name}/objects/content?key=` with the bytes as the body (Content-Type is stored).
 * - `GET {prefix}/buckets/{name}/objects/content?key=[&versionId=]` answers the bytes as an attachment.
 */
export async function registerObjectTransferRoutes(
  app: FastifyInstance,
  prefix: string,
  deps: { objects: ObjectService; authenticate: RestAuthenticate },
): Promise<void> {
  const { objects } = deps;
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    // Leave the body unread: the handler streams it.
    scope.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined));

    const who = async (req: FastifyRequest) => {
      checkCsrf(req);
      const { principal } = await deps.authenticate(req);
      return { principal, requestId: req.id, sourceIp: req.ip };
    };
    const bucketOf = (req: FastifyRequest) => {
      const r = bucketParam.safeParse(req.params);
      if (!r.success) throw validationError(r.error, 'path');
      return r.data.name;
    };

    scope.put(`${prefix}/buckets/:name/objects/content`, async (req, reply) => {
      const bucket = bucketOf(req);
      const { key } = parseTransferQuery(req);
      const ctx = await who(req);
      const length = req.headers['content-length'];
      const expectedSize = length !== undefined && /^\d+$/.test(length) ? Number(length) : undefined;
      const type = req.headers['content-type'];
      const r = await objects.putObject(ctx, {
        bucket,
        key,
        body: { stream: req.raw, ...(expectedSize !== undefined ? { expectedSize } : {}) },
        headers: type ? { contentType: type } : {},
      });
      return reply.code(201).send({ key, etag: `"${r.etag}"`, versionId: r.versionId });
    });

    scope.get(`${prefix}/buckets/:name/objects/content`, async (req, reply) => {
      const bucket = bucketOf(req);
      const { key, versionId } = parseTransferQuery(req);
      const ctx = await who(req);
      const got = await objects.getObject(ctx, { bucket, key, ...(versionId ? { versionId } : {}) });
      const body = got.body as Readable;
      const name = key.slice(key.lastIndexOf('/') + 1) || 'download';
      const ascii = name.replace(/[^\x20-\x7e]|["\\]/g, '_');
      return reply
        .code(200)
        .header('content-type', got.info.headers.contentType ?? 'application/octet-stream')
        .header('content-length', String(got.info.size))
        .header('etag', `"${got.info.etag}"`)
        .header('cache-control', 'private, no-store')
        .header('x-content-type-options', 'nosniff')
        .header(
          'content-disposition',
          `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name)}`,
        )
        .send(body);
    });
  });
}
