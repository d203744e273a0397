/**
 * POST Object: browser-form uploads to `POST /<bucket>` with multipart/form-data. Signed forms
 * carry a base64 policy and its signature, version 2 (`AWSAccessKeyId`, `signature` =
 * base64 HMAC-SHA1 of the policy) or version 4 (`x-amz-algorithm`, `x-amz-credential`,
 * `x-amz-date`, `x-amz-signature` = hex HMAC-SHA256 with the SigV4 signing key); forms without a
 * policy are anonymous and need a bucket that lets everyone write.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { CredentialSource } from '../../../platform/auth/authenticate.js';
import { deriveSigningKey } from '../../../platform/auth/sigv4.js';
import { parseXml, XmlParseError } from '../../../platform/xml/parser.js';
import { el, elAttrs, xmlDocument } from '../../../platform/xml/writer.js';
import { CHECKSUM_ALGORITHMS, type ChecksumAlgorithm } from '../checksums.js';
import { ObjectError } from '../errors.js';
import type { ContentHeaders, WriteOptions } from '../service.js';
import { sseResponseHeaders } from '../sse.js';
import { checkPostPolicy, formBoundary, parsePostPolicy, readFormUpload } from './form-upload.js';
import { header, parseTagging, type S3Call, sendEmpty, sendXml, urlEncodeKey } from './request.js';

/** A key field may name the uploaded file's name. */
const FILENAME_VARIABLE = ['$', '{filename}'].join('');

const CONTENT_FIELDS: [keyof ContentHeaders, string][] = [
  ['contentType', 'content-type'],
  ['cacheControl', 'cache-control'],
  ['contentDisposition', 'content-disposition'],
  ['contentEncoding', 'content-encoding'],
  ['expires', 'expires'],
];

const sameSecret = (a: string, b: string) => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
};

async function authenticateForm(credentials: CredentialSource, get: (name: string) => string | undefined) {
  const policy = get('policy');
  if (policy === undefined) {
    if (get('awsaccesskeyid') !== undefined || get('x-amz-credential') !== undefined)
      throw new ObjectError('InvalidArgument', 'Bucket POST must contain a field named policy.', {
        extra: { ArgumentName: 'policy', ArgumentValue: '' },
      });
    return { principal: null, policy: undefined };
  }
  const v4 = get('x-amz-algorithm') !== undefined;
  let accessKeyId: string | undefined;
  let expected: (secret: string) => string;
  let signature: string | undefined;
  if (v4) {
    if (get('x-amz-algorithm') !== 'AWS4-HMAC-SHA256')
      throw new ObjectError('InvalidArgument', 'Unsupported x-amz-algorithm.', {
        extra: { ArgumentName: 'x-amz-algorithm', ArgumentValue: get('x-amz-algorithm') ?? '' },
      });
    const parts = (get('x-amz-credential') ?? '').split('/');
    if (parts.length !== 5 || parts[4] !== 'aws4_request')
      throw new ObjectError('InvalidArgument', 'Invalid x-amz-credential.', {
        extra: { ArgumentName: 'x-amz-credential', ArgumentValue: get('x-amz-credential') ?? '' },
      });
    const [id, date, region, service] = parts as [string, string, string, string];
    accessKeyId = id;
    signature = get('x-amz-signature');
    expected = (secret) =>
      createHmac('sha256', deriveSigningKey(secret, date, region, service))
        .update(policy)
        .digest('hex');
  } else {
    accessKeyId = get('awsaccesskeyid');
    signature = get('signature');
    expected = (secret) => createHmac('sha1', secret).update(policy).digest('base64');
  }
  if (accessKeyId === undefined || signature === undefined)
    throw new ObjectError(
      'InvalidArgument',
      'Bucket POST must contain a field named AWSAccessKeyId and signature (or the x-amz-* signature fields).',
      {
        extra: { ArgumentName: signature === undefined ? 'signature' : 'AWSAccessKeyId', ArgumentValue: '' },
      },
    );
  const cred = await credentials.credentialForKey(accessKeyId);
  if (!cred)
    throw new ObjectError(
      'InvalidAccessKeyId',
      'The AWS Access Key Id you provided does not exist in our records.',
      {
        extra: { AWSAccessKeyId: accessKeyId },
      },
    );
  if (!sameSecret(expected(cred.secretAccessKey), signature.trim()))
    throw new ObjectError(
      'SignatureDoesNotMatch',
      'The request signature we calculated does not match the signature you provided.',
    );
  return { principal: cred.principal, policy: parsePostPolicy(policy) };
}

export async function postObject(call: S3Call, credentials: CredentialSource) {
  const boundary = formBoundary(header(call, 'content-type'));
  if (!boundary)
    throw new ObjectError(
      'MalformedPOSTRequest',
      'The body of your POST request is not well-formed multipart/form-data.',
    );
  const form = await readFormUpload(call.req.raw.iterator({ destroyOnReturn: false }), boundary);
  const get = (name: string) => form.fields.get(name)?.value;
  const auth = await authenticateForm(credentials, get);
  let key = get('key');
  if (key === undefined)
    throw new ObjectError(
      'InvalidArgument',
      "Bucket POST must contain a field named 'key'.  If it is specified, please check the order of the fields.",
      {
        extra: { ArgumentName: 'key', ArgumentValue: '' },
      },
    );
  key = key.replaceAll(FILENAME_VARIABLE, form.file.filename ?? '');
  const values = new Map<string, string>();
  for (const [name, f] of form.fields) values.set(name, f.value);
  values.set('key', key);
  values.set('bucket', call.bucket!);
  const range = auth.policy ? checkPostPolicy(auth.policy, values, Date.now()) : undefined;

  const headers: ContentHeaders = {};
  for (const [k, name] of CONTENT_FIELDS) {
    const v = get(name);
    if (v !== undefined) headers[k] = v;
  }
  if (
    headers.contentType === undefined &&
    form.file.contentType &&
    form.file.contentType !== 'application/octet-stream'
  )
    headers.contentType = form.file.contentType;
  const metadata: Record<string, string> = {};
  for (const [name, f] of form.fields) if (name.startsWith('x-amz-meta-')) metadata[name.slice(11)] = f.value;
  const opts: WriteOptions = { headers, metadata };
  const acl = get('acl');
  if (acl !== undefined) opts.acl = acl;
  const sc = get('x-amz-storage-class');
  if (sc !== undefined) opts.storageClass = sc;
  const tagging = get('tagging');
  if (tagging !== undefined) {
    try {
      opts.tags = parseTagging(parseXml(tagging));
    } catch (e) {
      if (e instanceof XmlParseError)
        throw new ObjectError(
          'MalformedXML',
          'The XML you provided was not well-formed or did not validate against our published schema',
        );
      throw e;
    }
  }
  const sse: NonNullable<WriteOptions['sse']> = {};
  const setSse = (k: keyof typeof sse, name: string) => {
    const v = get(name);
    if (v !== undefined) sse[k] = v;
  };
  setSse('algorithm', 'x-amz-server-side-encryption');
  setSse('kmsKeyId', 'x-amz-server-side-encryption-aws-kms-key-id');
  setSse('customerAlgorithm', 'x-amz-server-side-encryption-customer-algorithm');
  setSse('customerKey', 'x-amz-server-side-encryption-customer-key');
  setSse('customerKeyMd5', 'x-amz-server-side-encryption-customer-key-md5');
  if (Object.keys(sse).length > 0) opts.sse = sse;
  const expected: Partial<Record<ChecksumAlgorithm, string>> = {};
  for (const a of CHECKSUM_ALGORITHMS) {
    const v = get(`x-amz-checksum-${a.toLowerCase()}`);
    if (v !== undefined) expected[a] = v.trim();
  }

  async function* limited() {
    let n = 0;
    for await (const chunk of form.file.stream) {
      n += chunk.length;
      if (range && n > range.max)
        throw new ObjectError('EntityTooLarge', 'Your proposed upload exceeds the maximum allowed size', {
          extra: { ProposedSize: String(n), MaxSizeAllowed: String(range.max) },
        });
      yield chunk;
    }
    if (range && n < range.min)
      throw new ObjectError(
        'EntityTooSmall',
        'Your proposed upload is smaller than the minimum allowed size',
        {
          extra: { ProposedSize: String(n), MinSizeAllowed: String(range.min) },
        },
      );
  }

  const ctx = auth.principal ? { ...call.ctx, principal: auth.principal } : call.ctx;
  const r = await call.objects.putObject(ctx, {
    bucket: call.bucket!,
    key,
    body: {
      stream: limited(),
      checksumAlgorithms: Object.keys(expected) as ChecksumAlgorithm[],
      expectedChecksums: () => expected,
    },
    ...opts,
  });
  const location = `/${call.bucket}/${urlEncodeKey(key)}`;
  const h: Record<string, string> = { etag: `"${r.etag}"`, location, ...sseResponseHeaders(r.sse) };
  if (r.versionId) h['x-amz-version-id'] = r.versionId;
  const redirect = get('success_action_redirect') ?? get('redirect');
  if (redirect) {
    let target: URL | undefined;
    try {
      target = new URL(redirect);
    } catch {
      target = undefined;
    }
    if (target) {
      target.searchParams.set('bucket', call.bucket!);
      target.searchParams.set('key', key);
      target.searchParams.set('etag', `"${r.etag}"`);
      return sendEmpty(call, 303, { ...h, location: target.toString() });
    }
  }
  const status = get('success_action_status');
  if (status === '201')
    return sendXml(
      call,
      xmlDocument(
        // No namespace: S3's PostResponse has none (clients look up <Key> unqualified).
        elAttrs(
          'PostResponse',
          {},
          el('Location', location),
          el('Bucket', call.bucket!),
          el('Key', key),
          el('ETag', `"${r.etag}"`),
        ),
      ),
      201,
      h,
    );
  return sendEmpty(call, status === '200' ? 200 : 204, h);
}
