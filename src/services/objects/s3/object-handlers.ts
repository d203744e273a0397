/** Object-level S3 operations (single objects, copies, tagging, DeleteObjects). */
import { childNamed, childrenNamed, childText } from '../../../platform/xml/parser.js';
import { el, elAttrs, xmlDocument } from '../../../platform/xml/writer.js';
import { storedAcl } from '../access-hooks.js';
import { accessControlPolicyXml } from '../acl.js';
import { checksumHeader, isChecksumAlgorithm } from '../checksums.js';
import { ObjectError } from '../errors.js';
import { legalHoldXml, parseLegalHold, parseRetention, retentionXml } from '../object-lock.js';
import type { ObjectInfo } from '../service.js';
import { sseResponseHeaders } from '../sse.js';
import { aclFromRequest, grantHeadersAcl } from './bucket-handlers.js';
import { percentDecodeUtf8 } from './paths.js';
import {
  bypassGovernance,
  header,
  httpDate,
  isoMs,
  malformedXml,
  parseRange,
  parseTagging,
  readPreconditions,
  readXml,
  requestBody,
  S3_XMLNS,
  type S3Call,
  sendEmpty,
  sendXml,
  sseHeaders,
  writeOptions,
} from './request.js';

const versionOf = (call: S3Call) => call.query.get('versionId');

/** Response headers that describe a stored object (GET and HEAD). */
function objectHeaders(
  o: ObjectInfo,
  versioned: boolean,
  call: S3Call,
  withChecksum: boolean,
): Record<string, string> {
  const h: Record<string, string> = {
    etag: `"${o.etag}"`,
    'last-modified': httpDate(o.lastModified),
    'accept-ranges': 'bytes',
    'content-type': o.headers.contentType ?? 'binary/octet-stream',
  };
  if (o.headers.contentEncoding) h['content-encoding'] = o.headers.contentEncoding;
  if (o.headers.contentDisposition) h['content-disposition'] = o.headers.contentDisposition;
  if (o.headers.contentLanguage) h['content-language'] = o.headers.contentLanguage;
  if (o.headers.cacheControl) h['cache-control'] = o.headers.cacheControl;
  if (o.headers.expires) h.expires = o.headers.expires;
  if (versioned) h['x-amz-version-id'] = o.versionId;
  if (o.storageClass !== 'STANDARD') h['x-amz-storage-class'] = o.storageClass;
  if (o.tagCount > 0) h['x-amz-tagging-count'] = String(o.tagCount);
  for (const [k, v] of Object.entries(o.metadata)) h[`x-amz-meta-${k}`] = v;
  if (o.lock.mode !== null && o.lock.until !== null) {
    h['x-amz-object-lock-mode'] = o.lock.mode;
    h['x-amz-object-lock-retain-until-date'] = isoMs(o.lock.until);
  }
  if (o.lock.legalHold) h['x-amz-object-lock-legal-hold'] = 'ON';
  Object.assign(h, sseResponseHeaders(o.sse));
  if (withChecksum && o.checksum && header(call, 'x-amz-checksum-mode')?.toUpperCase() === 'ENABLED') {
    const a = o.checksum.algorithm;
    if (isChecksumAlgorithm(a)) h[checksumHeader(a)] = o.checksum.value;
    h['x-amz-checksum-type'] = o.checksum.type;
  }
  // response-* query parameters override what is stored (signed requests only, as S3).
  if (call.signed) {
    for (const [param, name] of [
      ['response-content-type', 'content-type'],
      ['response-content-language', 'content-language'],
      ['response-expires', 'expires'],
      ['response-cache-control', 'cache-control'],
      ['response-content-disposition', 'content-disposition'],
      ['response-content-encoding', 'content-encoding'],
    ] as const) {
      const v = call.query.get(param);
      if (v !== undefined) h[name] = v;
    }
  }
  return h;
}

/**
 * Bodies up to this size are read into memory and sent in one write (a stream reads in chunks of
 * the same size anyway, so memory per request is no higher); larger ones stream.
 */
const BUFFERED_BODY_MAX = 1024 * 1024;

async function getOrHead(call: S3Call, head: boolean) {
  const versionId = versionOf(call);
  const partNumber = call.query.get('partNumber');
  if (partNumber !== undefined && !/^\d+$/.test(partNumber))
    throw new ObjectError(
      'InvalidArgument',
      'Part number must be an integer between 1 and 10000, inclusive',
      {
        extra: { ArgumentName: 'partNumber', ArgumentValue: partNumber },
      },
    );
  const range = parseRange(header(call, 'range'));
  const preconditions = readPreconditions(call);
  const sse = sseHeaders(call);
  // Reads name only an SSE-C key; SSE-S3/KMS is the server's business (AWS answers 400).
  if (sse?.algorithm !== undefined || sse?.kmsKeyId !== undefined)
    throw new ObjectError(
      'InvalidArgument',
      'x-amz-server-side-encryption header is not supported for this operation.',
      { extra: { ArgumentName: 'x-amz-server-side-encryption', ArgumentValue: sse.algorithm ?? '' } },
    );
  const r = await call.objects.getObject(call.ctx, {
    bucket: call.bucket!,
    key: call.key!,
    ...(versionId !== undefined ? { versionId } : {}),
    ...(range && partNumber === undefined ? { range } : {}),
    ...(partNumber !== undefined ? { partNumber: Number(partNumber) } : {}),
    ...(preconditions ? { preconditions } : {}),
    ...(sse ? { sse } : {}),
    head,
    bufferUpTo: BUFFERED_BODY_MAX,
  });
  const versioned = r.info.versionId !== 'null' || versionId !== undefined;
  // A checksum describes the whole object; sent with a range, clients would check the part against it.
  const whole = !r.range;
  const h = objectHeaders(r.info, versioned, call, whole);
  if (r.expiration) h['x-amz-expiration'] = r.expiration;
  if (r.info.partsCount !== null && partNumber !== undefined)
    h['x-amz-mp-parts-count'] = String(r.info.partsCount);
  let status = 200;
  let length = r.info.size;
  if (r.range) {
    status = 206;
    length = r.range.end - r.range.start + 1;
    h['content-range'] = `bytes ${r.range.start}-${r.range.end}/${r.range.total}`;
  }
  h['content-length'] = String(length);
  call.reply.code(status);
  for (const [k, v] of Object.entries(h)) call.reply.header(k, v);
  if (head || !r.body) return call.reply.send();
  return call.reply.send(r.body);
}

export const getObject = (call: S3Call) => getOrHead(call, false);
export const headObject = (call: S3Call) => getOrHead(call, true);

export async function putObject(call: S3Call) {
  const preconditions = readPreconditions(call);
  const r = await call.objects.putObject(call.ctx, {
    bucket: call.bucket!,
    key: call.key!,
    body: requestBody(call),
    ...writeOptions(call),
    ...(await grantHeadersAcl(call)),
    ...(preconditions ? { preconditions } : {}),
  });
  const h: Record<string, string> = { etag: `"${r.etag}"`, ...sseResponseHeaders(r.sse) };
  if (r.versionId) h['x-amz-version-id'] = r.versionId;
  if (r.expiration) h['x-amz-expiration'] = r.expiration;
  if (r.checksum && isChecksumAlgorithm(r.checksum.algorithm))
    h[checksumHeader(r.checksum.algorithm)] = r.checksum.value;
  return sendEmpty(call, 200, h);
}

export async function deleteObject(call: S3Call) {
  const versionId = versionOf(call);
  const preconditions = readPreconditions(call);
  const r = await call.objects.deleteObject(call.ctx, {
    bucket: call.bucket!,
    key: call.key!,
    ...(versionId !== undefined ? { versionId } : {}),
    ...(preconditions ? { preconditions } : {}),
    bypassGovernance: bypassGovernance(call),
  });
  const h: Record<string, string> = {};
  if (r.versionId) h['x-amz-version-id'] = r.versionId;
  if (r.deleteMarker) h['x-amz-delete-marker'] = 'true';
  return sendEmpty(call, 204, h);
}

export async function deleteObjects(call: S3Call) {
  const body = (await readXml(call, 'Delete'))!;
  const quiet = childText(body, 'Quiet')?.trim() === 'true';
  const items = childrenNamed(body, 'Object');
  if (items.length === 0 || items.length > 1000) throw malformedXml();
  const objects = items.map((o) => {
    const key = childNamed(o, 'Key');
    if (!key) throw malformedXml();
    const versionId = childText(o, 'VersionId');
    return { key: key.text, ...(versionId !== undefined ? { versionId } : {}) };
  });
  const results = await call.objects.deleteObjects(call.ctx, {
    bucket: call.bucket!,
    objects,
    bypassGovernance: bypassGovernance(call),
  });
  return sendXml(
    call,
    xmlDocument(
      elAttrs(
        'DeleteResult',
        { xmlns: S3_XMLNS },
        results.map((r) =>
          r.deleted
            ? quiet
              ? undefined
              : el(
                  'Deleted',
                  el('Key', r.key),
                  r.versionId !== undefined ? el('VersionId', r.versionId) : undefined,
                  r.deleteMarker ? el('DeleteMarker', true) : undefined,
                  r.deleteMarkerVersionId ? el('DeleteMarkerVersionId', r.deleteMarkerVersionId) : undefined,
                )
            : el(
                'Error',
                el('Key', r.key),
                r.versionId !== undefined ? el('VersionId', r.versionId) : undefined,
                el('Code', r.code),
                el('Message', r.message),
              ),
        ),
      ),
    ),
  );
}

/** `x-amz-copy-source: [/]bucket/key[?versionId=v]`, URL-encoded. */
export function parseCopySource(call: S3Call): { bucket: string; key: string; versionId?: string } {
  const raw = header(call, 'x-amz-copy-source') ?? '';
  const q = raw.indexOf('?');
  const path = percentDecodeUtf8(q < 0 ? raw : raw.slice(0, q)).replace(/^\//, '');
  let versionId: string | undefined;
  if (q >= 0) {
    const params = new URLSearchParams(raw.slice(q + 1));
    versionId = params.get('versionId') ?? undefined;
  }
  const slash = path.indexOf('/');
  if (slash <= 0 || slash === path.length - 1)
    throw new ObjectError('InvalidArgument', 'Invalid copy source: it must be <bucket>/<key>.', {
      extra: { ArgumentName: 'x-amz-copy-source', ArgumentValue: raw },
    });
  return {
    bucket: path.slice(0, slash),
    key: path.slice(slash + 1),
    ...(versionId !== undefined ? { versionId } : {}),
  };
}

export async function copyObject(call: S3Call) {
  const source = parseCopySource(call);
  const directive = header(call, 'x-amz-metadata-directive')?.toUpperCase() ?? 'COPY';
  const tagging = header(call, 'x-amz-tagging-directive')?.toUpperCase() ?? 'COPY';
  if ((directive !== 'COPY' && directive !== 'REPLACE') || (tagging !== 'COPY' && tagging !== 'REPLACE'))
    throw new ObjectError('InvalidArgument', 'Unknown metadata or tagging directive.');
  const opts = { ...writeOptions(call), ...(await grantHeadersAcl(call)) };
  const sourcePreconditions = readPreconditions(call, 'x-amz-copy-source-');
  const preconditions = readPreconditions(call);
  const sourceSse = sseHeaders(call, true);
  const r = await call.objects.copyObject(call.ctx, {
    bucket: call.bucket!,
    key: call.key!,
    source,
    metadataDirective: directive,
    taggingDirective: tagging,
    ...opts,
    ...(sourcePreconditions ? { sourcePreconditions } : {}),
    ...(preconditions ? { preconditions } : {}),
    ...(sourceSse ? { sourceSse } : {}),
  });
  const h: Record<string, string> = sseResponseHeaders(r.sse);
  if (r.versionId) h['x-amz-version-id'] = r.versionId;
  if (r.sourceVersionId) h['x-amz-copy-source-version-id'] = r.sourceVersionId;
  return sendXml(
    call,
    xmlDocument(
      elAttrs(
        'CopyObjectResult',
        { xmlns: S3_XMLNS },
        el('LastModified', isoMs(r.lastModified)),
        el('ETag', `"${r.etag}"`),
      ),
    ),
    200,
    h,
  );
}

export async function getObjectTagging(call: S3Call) {
  const versionId = versionOf(call);
  const r = await call.objects.getObjectTagging(call.ctx, {
    bucket: call.bucket!,
    key: call.key!,
    ...(versionId !== undefined ? { versionId } : {}),
  });
  return sendXml(
    call,
    xmlDocument(
      elAttrs(
        'Tagging',
        { xmlns: S3_XMLNS },
        el(
          'TagSet',
          // In key order, as S3 answers (whatever order x-amz-tagging listed them in).
          [...r.tags]
            .sort((x, y) => (x.Key < y.Key ? -1 : x.Key > y.Key ? 1 : 0))
            .map((t) => el('Tag', el('Key', t.Key), el('Value', t.Value))),
        ),
      ),
    ),
    200,
    { 'x-amz-version-id': r.versionId },
  );
}

export async function putObjectTagging(call: S3Call) {
  const versionId = versionOf(call);
  const tags = parseTagging((await readXml(call, 'Tagging'))!);
  const r = await call.objects.putObjectTagging(call.ctx, {
    bucket: call.bucket!,
    key: call.key!,
    ...(versionId !== undefined ? { versionId } : {}),
    tags,
  });
  return sendEmpty(call, 200, { 'x-amz-version-id': r.versionId });
}

export async function deleteObjectTagging(call: S3Call) {
  const versionId = versionOf(call);
  const r = await call.objects.putObjectTagging(call.ctx, {
    bucket: call.bucket!,
    key: call.key!,
    ...(versionId !== undefined ? { versionId } : {}),
    tags: null,
  });
  return sendEmpty(call, 204, { 'x-amz-version-id': r.versionId });
}

export async function getObjectAcl(call: S3Call) {
  const versionId = versionOf(call);
  const r = await call.objects.getObjectAcl(call.ctx, {
    bucket: call.bucket!,
    key: call.key!,
    ...(versionId !== undefined ? { versionId } : {}),
  });
  const owner = { id: r.owner.accountId, displayName: r.owner.name };
  const bucketOwner = { id: r.bucketOwner.accountId, displayName: r.bucketOwner.name };
  return sendXml(call, accessControlPolicyXml(storedAcl(r.acl, owner, bucketOwner)), 200, {
    ...(r.bucket.versioning !== '' ? { 'x-amz-version-id': r.versionId } : {}),
  });
}

export async function putObjectAcl(call: S3Call) {
  const versionId = versionOf(call);
  const r = await call.objects.putObjectAcl(call.ctx, {
    bucket: call.bucket!,
    key: call.key!,
    ...(versionId !== undefined ? { versionId } : {}),
    acl: async (o, b) => {
      const owner = { id: o.accountId, displayName: o.name };
      const bucketOwner = { id: b.accountId, displayName: b.tenantName };
      return (
        (await aclFromRequest(call, owner, { bucketOwner, body: true, aclsDisabled: b.aclsDisabled })) ??
        'private'
      );
    },
  });
  return sendEmpty(call, 200, { 'x-amz-version-id': r.versionId });
}

export async function getObjectRetention(call: S3Call) {
  const versionId = versionOf(call);
  const r = await call.objects.getObjectLock(call.ctx, {
    bucket: call.bucket!,
    key: call.key!,
    ...(versionId !== undefined ? { versionId } : {}),
    what: 'retention',
  });
  if (r.mode === null || r.until === null)
    throw new ObjectError(
      'NoSuchObjectLockConfiguration',
      'The specified object does not have a ObjectLock configuration',
    );
  return sendXml(call, retentionXml(r.mode, r.until));
}

export async function putObjectRetention(call: S3Call) {
  const versionId = versionOf(call);
  const retention = parseRetention((await readXml(call, 'Retention'))!);
  const r = await call.objects.putObjectLock(call.ctx, {
    bucket: call.bucket!,
    key: call.key!,
    ...(versionId !== undefined ? { versionId } : {}),
    retention,
    bypassGovernance: bypassGovernance(call),
  });
  return sendEmpty(call, 200, r.versionId !== 'null' ? { 'x-amz-version-id': r.versionId } : {});
}

export async function getObjectLegalHold(call: S3Call) {
  const versionId = versionOf(call);
  const r = await call.objects.getObjectLock(call.ctx, {
    bucket: call.bucket!,
    key: call.key!,
    ...(versionId !== undefined ? { versionId } : {}),
    what: 'legal-hold',
  });
  return sendXml(call, legalHoldXml(r.legalHold));
}

export async function putObjectLegalHold(call: S3Call) {
  const versionId = versionOf(call);
  const legalHold = parseLegalHold((await readXml(call, 'LegalHold'))!);
  const r = await call.objects.putObjectLock(call.ctx, {
    bucket: call.bucket!,
    key: call.key!,
    ...(versionId !== undefined ? { versionId } : {}),
    legalHold,
  });
  return sendEmpty(call, 200, r.versionId !== 'null' ? { 'x-amz-version-id': r.versionId } : {});
}

/** GetObjectAttributes: the attributes x-amz-object-attributes names, as one XML document. */
export async function getObjectAttributes(call: S3Call) {
  const versionId = versionOf(call);
  const wanted = new Set(
    (header(call, 'x-amz-object-attributes') ?? '')
      .split(',')
      .map((a) => a.trim())
      .filter((a) => a !== ''),
  );
  if (wanted.size === 0)
    throw new ObjectError(
      'InvalidArgument',
      'The x-amz-object-attributes header specifying the attributes to be retrieved is either missing or empty',
      {
        extra: { ArgumentName: 'x-amz-object-attributes', ArgumentValue: '' },
      },
    );
  const intHeader = (name: string, dflt: number) => {
    const v = header(call, name);
    if (v === undefined) return dflt;
    if (!/^\d+$/.test(v.trim()))
      throw new ObjectError('InvalidArgument', `${name} must be a non-negative integer.`, {
        extra: { ArgumentName: name, ArgumentValue: v },
      });
    return Number(v.trim());
  };
  const maxParts = Math.min(intHeader('x-amz-max-parts', 1000), 1000);
  const partNumberMarker = intHeader('x-amz-part-number-marker', 0);
  const sse = sseHeaders(call);
  const r = await call.objects.getObjectAttributes(call.ctx, {
    bucket: call.bucket!,
    key: call.key!,
    ...(versionId !== undefined ? { versionId } : {}),
    ...(sse ? { sse } : {}),
    maxParts,
    partNumberMarker,
  });
  const o = r.info;
  const checksumEl = (alg: string, value: string) => el(`Checksum${alg}`, value);
  const xml = xmlDocument(
    elAttrs(
      'GetObjectAttributesResponse',
      { xmlns: S3_XMLNS },
      wanted.has('ETag') ? el('ETag', o.etag) : undefined,
      wanted.has('Checksum') && o.checksum
        ? el(
            'Checksum',
            checksumEl(o.checksum.algorithm, o.checksum.value),
            el('ChecksumType', o.checksum.type),
          )
        : undefined,
      wanted.has('ObjectParts') && r.parts
        ? el(
            'ObjectParts',
            // botocore 1.29 reads PartsCount, newer models TotalPartsCount.
            el('PartsCount', r.parts.total),
            el('TotalPartsCount', r.parts.total),
            el('PartNumberMarker', partNumberMarker),
            el(
              'NextPartNumberMarker',
              r.parts.nextMarker ?? r.parts.items.at(-1)?.partNumber ?? partNumberMarker,
            ),
            el('MaxParts', maxParts),
            el('IsTruncated', r.parts.isTruncated),
            r.parts.items.map((p) =>
              el(
                'Part',
                el('PartNumber', p.partNumber),
                el('Size', p.size),
                o.checksum && p.checksums[o.checksum.algorithm] !== undefined
                  ? checksumEl(o.checksum.algorithm, p.checksums[o.checksum.algorithm]!)
                  : undefined,
              ),
            ),
          )
        : undefined,
      wanted.has('StorageClass') ? el('StorageClass', o.storageClass) : undefined,
      wanted.has('ObjectSize') ? el('ObjectSize', o.size) : undefined,
    ),
  );
  const h: Record<string, string> = { 'last-modified': httpDate(o.lastModified) };
  if (r.versioned || versionId !== undefined) h['x-amz-version-id'] = o.versionId;
  return sendXml(call, xml, 200, h);
}
