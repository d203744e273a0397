/** Multipart upload operations. */
import { childNamed, childrenNamed, childText } from '../../../platform/xml/parser.js';
import { el, elAttrs, xmlDocument } from '../../../platform/xml/writer.js';
import { CHECKSUM_ALGORITHMS, type ChecksumAlgorithm, checksumHeader } from '../checksums.js';
import { ObjectError } from '../errors.js';
import { sseResponseHeaders } from '../sse.js';
import { grantHeadersAcl } from './bucket-handlers.js';
import { parseCopySource } from './object-handlers.js';
import {
  header,
  intParam,
  isoMs,
  malformedXml,
  parseRange,
  readPreconditions,
  readXml,
  requestBody,
  S3_XMLNS,
  type S3Call,
  sendEmpty,
  sendXml,
  sseHeaders,
  urlEncodeKey,
  writeOptions,
} from './request.js';

const doc = (name: string, ...content: Parameters<typeof el>[1][]) =>
  xmlDocument(elAttrs(name, { xmlns: S3_XMLNS }, ...content));

const uploadIdOf = (call: S3Call) => call.query.get('uploadId') ?? '';

export async function createMultipartUpload(call: S3Call) {
  const r = await call.objects.createMultipartUpload(call.ctx, {
    bucket: call.bucket!,
    key: call.key!,
    ...writeOptions(call),
    ...(await grantHeadersAcl(call)),
  });
  return sendXml(
    call,
    doc(
      'InitiateMultipartUploadResult',
      el('Bucket', call.bucket!),
      el('Key', call.key!),
      el('UploadId', r.uploadId),
    ),
    200,
    {
      ...sseResponseHeaders(r.sse),
      ...(r.checksumAlgorithm ? { 'x-amz-checksum-algorithm': r.checksumAlgorithm } : {}),
    },
  );
}

function partNumberOf(call: S3Call): number {
  const v = call.query.get('partNumber') ?? '';
  if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 10000)
    throw new ObjectError(
      'InvalidArgument',
      'Part number must be an integer between 1 and 10000, inclusive',
      {
        extra: { ArgumentName: 'partNumber', ArgumentValue: v },
      },
    );
  return Number(v);
}

export async function uploadPart(call: S3Call) {
  const r = await call.objects.uploadPart(call.ctx, {
    bucket: call.bucket!,
    key: call.key!,
    uploadId: uploadIdOf(call),
    partNumber: partNumberOf(call),
    body: requestBody(call),
    ...partSse(call),
  });
  const h: Record<string, string> = { etag: `"${r.etag}"`, ...sseResponseHeaders(r.sse) };
  for (const [a, v] of Object.entries(r.checksums)) h[checksumHeader(a as ChecksumAlgorithm)] = v;
  return sendEmpty(call, 200, h);
}

export async function uploadPartCopy(call: S3Call) {
  const source = parseCopySource(call);
  const rangeHeader = header(call, 'x-amz-copy-source-range');
  const range = rangeHeader !== undefined ? parseRange(rangeHeader) : undefined;
  if (rangeHeader !== undefined && !range)
    throw new ObjectError(
      'InvalidArgument',
      'The x-amz-copy-source-range value must be of the form bytes=first-last',
      {
        extra: { ArgumentName: 'x-amz-copy-source-range', ArgumentValue: rangeHeader },
      },
    );
  const preconditions = readPreconditions(call, 'x-amz-copy-source-');
  const sourceSse = sseHeaders(call, true);
  const r = await call.objects.uploadPart(call.ctx, {
    bucket: call.bucket!,
    key: call.key!,
    uploadId: uploadIdOf(call),
    partNumber: partNumberOf(call),
    copySource: {
      ...source,
      ...(range ? { range } : {}),
      ...(preconditions ? { preconditions } : {}),
      ...(sourceSse ? { sse: sourceSse } : {}),
    },
    ...partSse(call),
  });
  return sendXml(
    call,
    doc('CopyPartResult', el('LastModified', isoMs(r.lastModified)), el('ETag', `"${r.etag}"`)),
    200,
    {
      ...sseResponseHeaders(r.sse),
      ...(r.sourceVersionId ? { 'x-amz-copy-source-version-id': r.sourceVersionId } : {}),
    },
  );
}

export async function completeMultipartUpload(call: S3Call) {
  // No parts at all is MalformedXML here (s3-tests), not MissingRequestBodyError.
  const body = await readXml(call, 'CompleteMultipartUpload', { optional: true });
  if (!body) throw malformedXml();
  const parts = childrenNamed(body, 'Part').map((p) => {
    const n = childText(p, 'PartNumber')?.trim() ?? '';
    const etag = childNamed(p, 'ETag');
    if (!/^\d+$/.test(n) || !etag) throw malformedXml();
    const checksums: Partial<Record<ChecksumAlgorithm, string>> = {};
    for (const a of CHECKSUM_ALGORITHMS) {
      const v = childText(p, `Checksum${a}`);
      if (v !== undefined) checksums[a] = v.trim();
    }
    return { partNumber: Number(n), etag: etag.text.trim(), checksums };
  });
  const preconditions = readPreconditions(call);
  const r = await call.objects.completeMultipartUpload(call.ctx, {
    bucket: call.bucket!,
    key: call.key!,
    uploadId: uploadIdOf(call),
    parts,
    ...(preconditions ? { preconditions } : {}),
    ...partSse(call),
  });
  const location = `/${call.bucket}/${urlEncodeKey(call.key!)}`;
  return sendXml(
    call,
    doc(
      'CompleteMultipartUploadResult',
      el('Location', location),
      el('Bucket', call.bucket!),
      el('Key', call.key!),
      el('ETag', `"${r.etag}"`),
      r.checksum ? el(`Checksum${r.checksum.algorithm}`, r.checksum.value) : undefined,
    ),
    200,
    { ...sseResponseHeaders(r.sse), ...(r.versionId ? { 'x-amz-version-id': r.versionId } : {}) },
  );
}

/**
 * The SSE-C key of an UploadPart/UploadPartCopy/Complete; x-amz-server-side-encryption and the KMS
 * key id are the upload's (set when it was created) and are not looked at here.
 */
function partSse(call: S3Call) {
  const h = sseHeaders(call);
  if (!h) return {};
  const { algorithm: _a, kmsKeyId: _k, ...customer } = h;
  return Object.keys(customer).length > 0 ? { sse: customer } : {};
}

export async function abortMultipartUpload(call: S3Call) {
  await call.objects.abortMultipartUpload(call.ctx, {
    bucket: call.bucket!,
    key: call.key!,
    uploadId: uploadIdOf(call),
  });
  return sendEmpty(call, 204);
}

export async function listParts(call: S3Call) {
  const maxParts = intParam(call, 'max-parts', 1000, 1000);
  const marker = intParam(call, 'part-number-marker', 0, 10000);
  const r = await call.objects.listParts(call.ctx, {
    bucket: call.bucket!,
    key: call.key!,
    uploadId: uploadIdOf(call),
    maxParts,
    partNumberMarker: marker,
  });
  const owner = el('Owner', el('ID', r.owner.accountId), el('DisplayName', r.owner.name));
  return sendXml(
    call,
    doc(
      'ListPartsResult',
      el('Bucket', call.bucket!),
      el('Key', call.key!),
      el('UploadId', uploadIdOf(call)),
      el('Initiator', el('ID', r.owner.accountId), el('DisplayName', r.initiator)),
      owner,
      el('StorageClass', r.storageClass),
      el('PartNumberMarker', marker),
      el('NextPartNumberMarker', r.nextPartNumberMarker),
      el('MaxParts', maxParts),
      el('IsTruncated', r.truncated),
      r.checksumAlgorithm ? el('ChecksumAlgorithm', r.checksumAlgorithm) : undefined,
      r.parts.map((p) =>
        el(
          'Part',
          el('PartNumber', p.partNumber),
          el('LastModified', isoMs(p.lastModified)),
          el('ETag', `"${p.etag}"`),
          el('Size', p.size),
          Object.entries(p.checksums).map(([a, v]) => el(`Checksum${a}`, v)),
        ),
      ),
    ),
  );
}

export async function listMultipartUploads(call: S3Call) {
  const maxUploads = intParam(call, 'max-uploads', 1000, 1000);
  const prefix = call.query.get('prefix') ?? '';
  const delimiter = call.query.get('delimiter') || undefined;
  const keyMarker = call.query.get('key-marker') ?? '';
  const uploadIdMarker = call.query.get('upload-id-marker') ?? '';
  const url = call.query.get('encoding-type') === 'url';
  const e = (s: string) => (url ? urlEncodeKey(s) : s);
  const page = await call.objects.listMultipartUploads(call.ctx, {
    bucket: call.bucket!,
    prefix,
    ...(delimiter ? { delimiter } : {}),
    maxUploads,
    ...(keyMarker ? { keyMarker } : {}),
    ...(uploadIdMarker ? { uploadIdMarker } : {}),
  });
  return sendXml(
    call,
    doc(
      'ListMultipartUploadsResult',
      el('Bucket', call.bucket!),
      el('KeyMarker', e(keyMarker)),
      el('UploadIdMarker', uploadIdMarker),
      el('NextKeyMarker', page.truncated && page.last ? e(page.last.key) : ''),
      el('NextUploadIdMarker', page.truncated && page.last?.entry ? page.last.entry.uploadId : ''),
      el('Prefix', e(prefix)),
      delimiter ? el('Delimiter', e(delimiter)) : undefined,
      el('MaxUploads', maxUploads),
      el('IsTruncated', page.truncated),
      url ? el('EncodingType', 'url') : undefined,
      page.entries.map((u) =>
        el(
          'Upload',
          el('Key', e(u.key)),
          el('UploadId', u.uploadId),
          el('Initiator', el('ID', u.ownerAccountId), el('DisplayName', u.ownerName)),
          el('Owner', el('ID', u.ownerAccountId), el('DisplayName', u.ownerName)),
          el('StorageClass', u.storageClass),
          el('Initiated', isoMs(u.initiated)),
        ),
      ),
      page.commonPrefixes.map((p) => el('CommonPrefixes', el('Prefix', e(p)))),
    ),
  );
}
