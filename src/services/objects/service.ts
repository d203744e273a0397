/**
 * Object storage: buckets, object versions, multipart uploads. Protocol-neutral (the S3 adapter
 * in ./s3 is one caller); errors are ObjectErrors with S3's codes.
 *
 * Write path of every body: stream → checksums → blob store (durable) → verify digests → one
 * transaction (lock the bucket row, replace/insert version rows, counters, quota, audit) → delete
 * blobs the transaction unreferenced. A crash anywhere leaves at most an unreferenced blob, which
 * the orphan sweep removes; metadata never points at a blob that is not complete.
 */
import { createHash, randomBytes } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import type { Logger } from 'pino';
import { type AuditInput, appendAudit, appendAuditAlone } from '../../platform/audit/audit.js';
import type { Sealer } from '../../platform/crypto/sealer.js';
import { type Database, isUniqueViolation, type Tx } from '../../platform/db/database.js';
import type { ObjectPartsTable } from '../../platform/db/schema.js';
import { YunhaiError } from '../../platform/errors.js';
import { type Principal, principalLabel } from '../../platform/policy/principal.js';
import { releaseQuota, reserveQuota } from '../../platform/quota/quota.js';
import { recordUsage } from '../../platform/usage/ledger.js';
import { parseXml } from '../../platform/xml/parser.js';
import { type AccessHooks, type AccessRequest, evaluateBucketAccess, type S3Action } from './access.js';
import { isPublicAcl, POLICY_AND_ACL_HOOKS, parsedPolicy, publicAccessBlockOf } from './access-hooks.js';
import { BlobNotFoundError, type BlobStore } from './blob-store.js';
import { storedLifecycle } from './bucket-configs.js';
import { isPolicyPublic } from './bucket-policy.js';
import { type BodyDigests, BodyHasher, type ChecksumAlgorithm, checksumOf } from './checksums.js';
import { noSuchBucket, noSuchKey, ObjectError } from './errors.js';
import { abortRuleFor, expirationHeader, lifecycleActionFor } from './lifecycle-rules.js';
import { type ListCursor, type ListPage, walkListing } from './listing.js';
import type { ObjectMeter, RequestClass } from './meter.js';
import { assertBucketName, assertObjectKey } from './names.js';
import {
  defaultRetainUntil,
  deleteBlockedBy,
  type LockMode,
  parseLockConfiguration,
  type RequestedLock,
  retentionChangeAllowed,
  type VersionLock,
} from './object-lock.js';
import { randomBase64url, randomHex } from './random-pool.js';
import { commitVersionSqlite, type NewVersionRow } from './sqlite-commit.js';
import {
  type CustomerKey,
  createSseKeys,
  encryptBlob,
  openEncryptedBlob,
  openEncryptedBytes,
  parseSseCustomer,
  parseSseRequest,
  parseStoredSse,
  type SseHeaders,
  type SseInfo,
  type SseSpec,
  type StoredSse,
  sseInfo,
  storedEncryptionDefault,
} from './sse.js';
import {
  type BucketRow,
  deleteVersionRow,
  fetchLatest,
  fetchUploads,
  fetchVersions,
  findBucket,
  findVersion,
  inlineBody,
  isInline,
  latestVersion,
  lockBucket,
  OBJECT_META_COLUMNS,
  type ObjectRow,
  objectParts,
  promoteNewest,
  referencedBlobs,
  updateBucketUsage,
  versionReads,
} from './store.js';
import { createWriteCommitter } from './write-commit.js';

/** Who is asking; `principal` is null for anonymous requests. */
export interface ObjectContext {
  principal: Principal | null;
  requestId: string;
  sourceIp: string;
  /** Condition values for bucket policies beyond the defaults (s3:prefix, s3:x-amz-acl, ...). */
  conditions?: Record<string, string | string[]>;
  /** Who acts for audit rows when there is no principal (e.g. `lifecycle` for the lifecycle loop). */
  actor?: string;
}

export interface Tag {
  Key: string;
  Value: string;
}

export interface ContentHeaders {
  contentType?: string;
  contentEncoding?: string;
  contentDisposition?: string;
  contentLanguage?: string;
  cacheControl?: string;
  expires?: string;
}

/** A request body as it arrives, with what the client said it should hash to. */
export interface ObjectBody {
  stream: AsyncIterable<Uint8Array>;
  /** Decoded length the client announced (Content-Length or x-amz-decoded-content-length). */
  expectedSize?: number;
  /** Content-MD5, base64. */
  contentMd5?: string;
  /** Signed hex SHA-256 of the payload (x-amz-content-sha256), to check. */
  sha256Hex?: string;
  /** Flexible checksums to compute (declared in headers, trailers, or asked for by x-amz-sdk-checksum-algorithm). */
  checksumAlgorithms?: ChecksumAlgorithm[];
  /** Expected checksum values; read once the stream has ended, so trailers count. */
  expectedChecksums?: () => Partial<Record<ChecksumAlgorithm, string>>;
}

export interface WriteOptions {
  headers?: ContentHeaders;
  metadata?: Record<string, string>;
  tags?: Tag[];
  storageClass?: string;
  /** Canned ACL of the new object. */
  acl?: string;
  /** The algorithm whose checksum is stored with the object. */
  checksumAlgorithm?: ChecksumAlgorithm;
  /** x-amz-object-lock-* headers. */
  lock?: RequestedLock;
  /** x-amz-server-side-encryption* headers as sent (validated after the access check). */
  sse?: SseHeaders;
}

export interface Preconditions {
  ifMatch?: string;
  ifNoneMatch?: string;
  ifModifiedSince?: Date;
  ifUnmodifiedSince?: Date;
}

export interface BucketInfo {
  name: string;
  tenantId: string;
  accountId: string;
  tenantName: string;
  region: string;
  createdAt: number;
  versioning: '' | 'Enabled' | 'Suspended';
  objectLockEnabled: boolean;
  /** BucketOwnerEnforced: ACLs are disabled. */
  aclsDisabled: boolean;
}

export interface ObjectInfo {
  key: string;
  versionId: string;
  isLatest: boolean;
  deleteMarker: boolean;
  size: number;
  etag: string;
  lastModified: number;
  headers: ContentHeaders;
  metadata: Record<string, string>;
  tagCount: number;
  storageClass: string;
  partsCount: number | null;
  checksum: { algorithm: string; value: string; type: string } | null;
  ownerAccountId: string;
  ownerName: string;
  lock: VersionLock;
  /** How the body is encrypted at rest (null: it is not). */
  sse: SseInfo | null;
}

export interface UploadInfo {
  uploadId: string;
  key: string;
  initiated: number;
  storageClass: string;
  ownerAccountId: string;
  ownerName: string;
}

export interface PartInfo {
  partNumber: number;
  size: number;
  etag: string;
  lastModified: number;
  checksums: Record<string, string>;
}

export const MAX_PUT_SIZE = 5 * 1024 ** 3;
export const MAX_METADATA_BYTES = 2048;
/**
 * Bodies up to this size (plaintext) are stored in their version row rather than as a blob: a
 * small PUT then costs one row in one (group-committed) transaction instead of a file write, two
 * syncs and a rename. Large enough for typical small objects, small enough that a row stays cheap.
 */
export const INLINE_MAX_BYTES = 64 * 1024;
/** How long a bucket row is reused without reading it again (see bucketOrThrow). */
const BUCKET_CACHE_MS = 1000;
const BUCKET_CACHE_MAX = 10_000;
const DEFAULT_MIN_PART_SIZE = 5 * 1024 * 1024;
const MAX_PARTS = 10_000;
const STORAGE_CLASSES = new Set([
  'STANDARD',
  'REDUCED_REDUNDANCY',
  'STANDARD_IA',
  'ONEZONE_IA',
  'INTELLIGENT_TIERING',
  'GLACIER',
  'DEEP_ARCHIVE',
  'GLACIER_IR',
]);
const CANNED_ACLS = new Set([
  'private',
  'public-read',
  'public-read-write',
  'authenticated-read',
  'aws-exec-read',
  'bucket-owner-read',
  'bucket-owner-full-control',
  'log-delivery-write',
]);

const quoted = (etag: string) => `"${etag}"`;
const md5Hex = (b: Uint8Array) => createHash('md5').update(b).digest('hex');

/** A refused storage reservation (limit or quota gate) as S3 answers it; other errors unchanged. */
function storageQuotaError(e: unknown): unknown {
  return e instanceof YunhaiError && e.code === 'QuotaExceeded'
    ? new ObjectError('QuotaExceeded', `The bucket owner's storage quota is exhausted: ${e.message}`)
    : e;
}

/** S3-style version id: 32 URL-safe characters. */
const newVersionId = () => randomBase64url(24);
const newUploadId = () => randomBytes(30).toString('base64url');
const newObjectId = () => `ov-${randomHex(12)}`;

let lastSeq = 0;
/** Monotonic version order: microseconds since the epoch, never repeating within a process. */
function nextSeq(): number {
  lastSeq = Math.max(lastSeq + 1, Date.now() * 1000);
  return lastSeq;
}

/** Compares an `If-Match`-style header value (`"a"`, `a`, `*`, lists) with an ETag. */
export function etagMatches(header: string, etag: string): boolean {
  return header
    .split(',')
    .map((t) =>
      t
        .trim()
        .replace(/^W\//, '')
        .replace(/^"(.*)"$/, '$1'),
    )
    .some((t) => t === '*' || t === etag);
}

const seconds = (ms: number) => Math.floor(ms / 1000);

/**
 * GET/HEAD preconditions (RFC 7232 order): If-Match, then If-Unmodified-Since (only without
 * If-Match), If-None-Match, then If-Modified-Since (only without If-None-Match).
 */
export function checkReadPreconditions(p: Preconditions, etag: string, lastModified: number, headers = {}) {
  if (p.ifMatch !== undefined) {
    if (!etagMatches(p.ifMatch, etag))
      throw new ObjectError(
        'PreconditionFailed',
        'At least one of the pre-conditions you specified did not hold',
        {
          extra: { Condition: 'If-Match' },
        },
      );
  } else if (p.ifUnmodifiedSince && seconds(lastModified) > seconds(p.ifUnmodifiedSince.getTime())) {
    throw new ObjectError(
      'PreconditionFailed',
      'At least one of the pre-conditions you specified did not hold',
      {
        extra: { Condition: 'If-Unmodified-Since' },
      },
    );
  }
  if (p.ifNoneMatch !== undefined) {
    if (etagMatches(p.ifNoneMatch, etag)) throw new ObjectError('NotModified', 'Not Modified', { headers });
  } else if (p.ifModifiedSince && seconds(lastModified) <= seconds(p.ifModifiedSince.getTime())) {
    throw new ObjectError('NotModified', 'Not Modified', { headers });
  }
}

/** Validates a tag set (S3 limits: keys 1-128, values 0-256 characters, unique keys). */
export function validateTags(tags: Tag[], max: number): void {
  if (tags.length > max)
    throw new ObjectError('InvalidTag', `Object tags cannot be greater than ${max}`, {
      extra: { TagCount: String(tags.length) },
    });
  const seen = new Set<string>();
  for (const t of tags) {
    if ([...t.Key].length < 1 || [...t.Key].length > 128)
      throw new ObjectError('InvalidTag', 'The TagKey you have provided is invalid', {
        extra: { TagKey: t.Key },
      });
    if ([...t.Value].length > 256)
      throw new ObjectError('InvalidTag', 'The TagValue you have provided is invalid', {
        extra: { TagKey: t.Key },
      });
    if (t.Key.startsWith('aws:'))
      throw new ObjectError('InvalidTag', 'Your TagKey cannot be prefixed with aws:', {
        extra: { TagKey: t.Key },
      });
    if (seen.has(t.Key))
      throw new ObjectError('InvalidTag', 'Cannot provide multiple Tags with the same key', {
        extra: { TagKey: t.Key },
      });
    seen.add(t.Key);
  }
}

function validateMetadata(metadata: Record<string, string>): void {
  let size = 0;
  for (const [k, v] of Object.entries(metadata)) size += Buffer.byteLength(k) + Buffer.byteLength(v);
  if (size > MAX_METADATA_BYTES)
    throw new ObjectError(
      'MetadataTooLarge',
      'Your metadata headers exceed the maximum allowed metadata size.',
      {
        extra: { Size: String(size), MaxSizeAllowed: String(MAX_METADATA_BYTES) },
      },
    );
}

function checkWriteOptions(opts: WriteOptions) {
  validateMetadata(opts.metadata ?? {});
  if (opts.tags) validateTags(opts.tags, 10);
  if (opts.storageClass !== undefined && !STORAGE_CLASSES.has(opts.storageClass))
    throw new ObjectError('InvalidStorageClass', 'The storage class you specified is not valid', {
      extra: { StorageClassRequested: opts.storageClass },
    });
  if (opts.acl !== undefined && !opts.acl.startsWith('{') && !CANNED_ACLS.has(opts.acl))
    throw new ObjectError('InvalidArgument', `Invalid canned ACL '${opts.acl}'.`, {
      extra: { ArgumentName: 'x-amz-acl', ArgumentValue: opts.acl },
    });
}

function objectInfo(row: ObjectRow, owner: { accountId: string; name: string }): ObjectInfo {
  const tags = row.tags ? (JSON.parse(row.tags) as Tag[]) : [];
  return {
    key: row.key,
    versionId: row.version_id,
    isLatest: row.is_latest === 1,
    deleteMarker: row.delete_marker === 1,
    size: row.size,
    etag: row.etag,
    lastModified: row.last_modified,
    headers: {
      ...(row.content_type !== null ? { contentType: row.content_type } : {}),
      ...(row.content_encoding !== null ? { contentEncoding: row.content_encoding } : {}),
      ...(row.content_disposition !== null ? { contentDisposition: row.content_disposition } : {}),
      ...(row.content_language !== null ? { contentLanguage: row.content_language } : {}),
      ...(row.cache_control !== null ? { cacheControl: row.cache_control } : {}),
      ...(row.expires !== null ? { expires: row.expires } : {}),
    },
    metadata: JSON.parse(row.metadata) as Record<string, string>,
    tagCount: tags.length,
    storageClass: row.storage_class,
    partsCount: row.parts_count,
    checksum:
      row.checksum_algorithm && row.checksum_value
        ? {
            algorithm: row.checksum_algorithm,
            value: row.checksum_value,
            type: row.checksum_type ?? 'FULL_OBJECT',
          }
        : null,
    ownerAccountId: owner.accountId,
    ownerName: owner.name,
    lock: versionLock(row),
    sse: sseInfo(parseStoredSse(row.sse)),
  };
}

const versionLock = (row: Pick<ObjectRow, 'lock_mode' | 'lock_until' | 'legal_hold'>): VersionLock => ({
  mode: row.lock_mode as LockMode | null,
  until: row.lock_until,
  legalHold: row.legal_hold === 1,
});

/** The bucket's stored ObjectLockConfiguration, parsed (undefined when none or unreadable). */
function storedLockConfig(text: string | null) {
  if (!text) return undefined;
  try {
    return parseLockConfiguration(parseXml(text));
  } catch {
    return undefined;
  }
}

/**
 * Lock columns of a new version: what the request asked for, else the bucket's default retention.
 * Lock headers on a bucket without Object Lock are refused as AWS does.
 */
function lockColumns(
  b: Pick<BucketRow, 'object_lock_enabled' | 'object_lock'>,
  lock: RequestedLock | undefined,
  at: number,
): { lock_mode: string | null; lock_until: number | null; legal_hold: number } {
  if (b.object_lock_enabled !== 1) {
    if (lock) throw new ObjectError('InvalidRequest', 'Bucket is missing Object Lock Configuration');
    return { lock_mode: null, lock_until: null, legal_hold: 0 };
  }
  let mode: string | null = lock?.mode ?? null;
  let until: number | null = lock?.until ?? null;
  if (mode === null) {
    const config = storedLockConfig(b.object_lock);
    const d = config ? defaultRetainUntil(config, at) : undefined;
    if (config?.rule && d !== undefined) {
      mode = config.rule.mode;
      until = d;
    }
  }
  return { lock_mode: mode, lock_until: until, legal_hold: lock?.legalHold ? 1 : 0 };
}

/**
 * Who owns a new object (Object Ownership): the bucket owner under BucketOwnerEnforced, and under
 * BucketOwnerPreferred when the writer grants it bucket-owner-full-control; otherwise the writer.
 */
function objectOwnerTenant(
  b: Pick<BucketRow, 'ownership' | 'tenant_id'>,
  writer: string,
  acl: string | undefined,
) {
  if (b.ownership?.includes('BucketOwnerEnforced')) return b.tenant_id;
  if (b.ownership?.includes('BucketOwnerPreferred') && acl === 'bucket-owner-full-control')
    return b.tenant_id;
  return writer;
}

/** BlockPublicAcls: a write that would set a public ACL is refused (AWS answers AccessDenied). */
function refusePublicAcl(b: Pick<BucketRow, 'public_access_block'>, acl: string | undefined) {
  if (acl !== undefined && publicAccessBlockOf(b)?.blockPublicAcls && isPublicAcl(acl))
    throw new ObjectError('AccessDenied', 'Access Denied');
}

const lockedVersion = () =>
  new ObjectError('AccessDenied', 'Access Denied because object protected by object lock.');

const bucketInfo = (b: BucketRow): BucketInfo => ({
  name: b.name,
  tenantId: b.tenant_id,
  accountId: b.account_id,
  tenantName: b.tenant_name,
  region: b.region,
  createdAt: b.created_at,
  versioning: b.versioning,
  objectLockEnabled: b.object_lock_enabled === 1,
  aclsDisabled: aclsDisabled(b),
});

/** BucketOwnerEnforced object ownership: ACLs are off (they neither grant nor may be set but `bucket-owner-full-control`/private). */
export const aclsDisabled = (b: Pick<BucketRow, 'ownership'>) =>
  b.ownership?.includes('BucketOwnerEnforced') === true;

export interface ObjectServiceDeps {
  database: Database;
  blobs: BlobStore;
  /** The region buckets are created in when the client names none (default us-east-1). */
  region?: string;
  access?: AccessHooks;
  meter?: ObjectMeter;
  logger?: Logger;
  /** Smallest part (but the last) CompleteMultipartUpload accepts (default 5 MiB, as AWS). */
  minPartSize?: number;
  /** How often the control plane runs `runLifecycle` (default 5 min). */
  lifecycleIntervalMs?: number;
  now?: () => number;
  /** Seals the tenants' encryption keys (platform master key); without it SSE-S3/KMS answer NotImplemented. */
  sealer?: Sealer;
}

export function createObjectService(deps: ObjectServiceDeps) {
  const { database, blobs } = deps;
  const defaultRegion = deps.region ?? 'us-east-1';
  const hooks = deps.access ?? POLICY_AND_ACL_HOOKS;
  const now = deps.now ?? Date.now;
  const minPartSize = deps.minPartSize ?? DEFAULT_MIN_PART_SIZE;
  const sseKeys = createSseKeys(database, deps.sealer);
  /** Every write transaction: group-committed and synced on SQLite (write-commit.ts). */
  const writes = createWriteCommitter(database);
  /** Results of the latest completed uploads, for retried CompleteMultipartUpload requests. */
  const recentlyCompleted = new Map<
    string,
    {
      bucket: string;
      key: string;
      result: {
        etag: string;
        versionId: string | null;
        checksum?: { algorithm: string; value: string };
        sse: SseInfo | null;
      };
    }
  >();

  // ---- helpers ------------------------------------------------------------------------------

  const who = (ctx: ObjectContext) =>
    ctx.principal ? principalLabel(ctx.principal) : (ctx.actor ?? 'anonymous');

  const auditRow = (
    ctx: ObjectContext,
    tenantId: string,
    action: string,
    resource: string,
    details?: Record<string, unknown>,
  ): AuditInput => ({
    tenantId,
    principal: who(ctx),
    action,
    resource,
    outcome: 'success',
    sourceIp: ctx.sourceIp,
    requestId: ctx.requestId,
    ...(details ? { details } : {}),
  });

  const count = (b: { tenant_id: string; name: string }, cls: RequestClass) =>
    deps.meter?.request(b.tenant_id, b.name, cls);

  /**
   * Bucket rows by name, kept for BUCKET_CACHE_MS: every request needs its bucket (owner, policy,
   * ACL, configuration), and they rarely change. A change made here drops the entry at once (and a
   * read that raced with it is not kept: `bucketGeneration`); another replica's change shows within
   * BUCKET_CACHE_MS, as AWS documents for bucket configuration. Counters in a cached row are not
   * used: writers read the bucket row again under its lock.
   */
  const bucketCache = new Map<string, { row: BucketRow; until: number }>();
  const reads = versionReads(database);
  let bucketGeneration = 0;
  const forgetBucket = (name: string) => {
    bucketGeneration++;
    bucketCache.delete(name);
  };

  async function bucketOrThrow(name: string): Promise<BucketRow> {
    const t = Date.now();
    const hit = bucketCache.get(name);
    if (hit && hit.until > t) return hit.row;
    const generation = bucketGeneration;
    const b = await findBucket(database.db, name);
    if (!b) {
      bucketCache.delete(name);
      throw noSuchBucket(name);
    }
    if (generation === bucketGeneration) {
      if (bucketCache.size >= BUCKET_CACHE_MAX) bucketCache.clear();
      bucketCache.set(name, { row: b, until: t + BUCKET_CACHE_MS });
    }
    return b;
  }

  /** Runs the access decision; a denial is audited (in the caller's tenant, or the bucket's for anonymous callers). */
  async function allow(
    ctx: ObjectContext,
    action: S3Action,
    b: BucketRow,
    key?: string,
    obj?: Pick<ObjectRow, 'acl' | 'owner_tenant_id' | 'tags'> | null,
    /** The action bucket policies see when it is not `action` (one without its own platform action). */
    policyAction?: string,
  ): Promise<void> {
    const existingTags: Record<string, string> = {};
    if (obj?.tags)
      for (const t of JSON.parse(obj.tags) as Tag[]) existingTags[`s3:ExistingObjectTag/${t.Key}`] = t.Value;
    const objectOwnerAccountId = obj
      ? obj.owner_tenant_id === b.tenant_id
        ? b.account_id
        : (await ownerOf(obj, b)).accountId
      : undefined;
    const req: AccessRequest = {
      principal: ctx.principal,
      action,
      bucket: {
        name: b.name,
        tenantId: b.tenant_id,
        accountId: b.account_id,
        policy: b.policy,
        acl: b.acl,
        aclsDisabled: aclsDisabled(b),
        publicAccessBlock: publicAccessBlockOf(b),
      },
      ...(policyAction !== undefined ? { policyAction } : {}),
      ...(key !== undefined ? { key } : {}),
      ...(obj ? { objectAcl: obj.acl, objectOwnerAccountId } : {}),
      resource: key === undefined ? `arn:aws:s3:::${b.name}` : `arn:aws:s3:::${b.name}/${key}`,
      conditions: {
        'aws:SourceIp': ctx.sourceIp,
        'aws:CurrentTime': new Date(now()).toISOString(),
        'aws:EpochTime': String(Math.floor(now() / 1000)),
        ...(ctx.principal
          ? {
              'aws:username': ctx.principal.userName,
              'aws:userid': ctx.principal.uniqueId,
              'aws:PrincipalAccount': ctx.principal.accountId,
              'aws:PrincipalArn': ctx.principal.arn,
            }
          : {}),
        ...existingTags,
        ...ctx.conditions,
      },
    };
    const d = evaluateBucketAccess(req, hooks);
    if (d.allowed) return;
    await appendAuditAlone(database, {
      tenantId: ctx.principal?.tenantId ?? b.tenant_id,
      principal: who(ctx),
      action,
      resource: req.resource,
      outcome: 'denied',
      errorCode: 'AccessDenied',
      sourceIp: ctx.sourceIp,
      requestId: ctx.requestId,
      details: { reason: d.reason },
    });
    throw new ObjectError('AccessDenied', 'Access Denied');
  }

  async function deleteBlobs(ids: Iterable<string>) {
    for (const id of ids) {
      await blobs
        .delete(id)
        .catch((err) => deps.logger?.warn({ err: String(err), blob: id }, 'blob delete failed'));
    }
  }

  /**
   * Streams a body into a new blob, computing digests, and checks them; nothing is kept when a check
   * fails. With `inline`, a body announced as at most INLINE_MAX_BYTES is collected in memory (in its
   * stored, possibly encrypted, form) for the version row instead: `blobId` is then null.
   */
  async function ingest(
    body: ObjectBody,
    extraAlgorithm?: ChecksumAlgorithm,
    dataKey?: Buffer,
    opts: { inline?: boolean } = {},
  ): Promise<{ blobId: string | null; inline: Buffer | null; digests: BodyDigests }> {
    const algorithms = new Set(body.checksumAlgorithms ?? []);
    if (extraAlgorithm) algorithms.add(extraAlgorithm);
    const hasher = new BodyHasher({ algorithms, sha256: body.sha256Hex !== undefined });
    const limit = body.expectedSize ?? MAX_PUT_SIZE;
    async function* tap() {
      for await (const chunk of body.stream) {
        hasher.update(chunk);
        if (hasher.size > limit) {
          throw body.expectedSize !== undefined
            ? new ObjectError('IncompleteBody', 'The request body is longer than its declared length.')
            : new ObjectError('EntityTooLarge', 'Your proposed upload exceeds the maximum allowed size');
        }
        yield chunk;
      }
    }
    if (opts.inline && body.expectedSize !== undefined && body.expectedSize <= INLINE_MAX_BYTES) {
      const pieces: Buffer[] = [];
      for await (const c of dataKey ? encryptBlob(tap(), dataKey) : tap())
        pieces.push(Buffer.from(c.buffer, c.byteOffset, c.byteLength));
      const digests = hasher.digest();
      verifyDigests(body, digests);
      return { blobId: null, inline: Buffer.concat(pieces), digests };
    }
    const blob = await blobs.put(dataKey ? encryptBlob(tap(), dataKey) : tap());
    try {
      const digests = hasher.digest();
      verifyDigests(body, digests);
      return { blobId: blob.id, inline: null, digests };
    } catch (e) {
      await blobs.delete(blob.id);
      throw e;
    }
  }

  function verifyDigests(body: ObjectBody, d: BodyDigests) {
    if (body.expectedSize !== undefined && d.size !== body.expectedSize)
      throw new ObjectError(
        'IncompleteBody',
        'You did not provide the number of bytes specified by the Content-Length HTTP header.',
      );
    if (body.sha256Hex !== undefined && d.sha256Hex !== body.sha256Hex.toLowerCase())
      throw new ObjectError(
        'XAmzContentSHA256Mismatch',
        "The provided 'x-amz-content-sha256' header does not match what was computed.",
        {
          extra: { ClientComputedContentSHA256: body.sha256Hex, S3ComputedContentSHA256: d.sha256Hex ?? '' },
        },
      );
    if (body.contentMd5 !== undefined && d.md5.toString('base64') !== body.contentMd5)
      throw new ObjectError('BadDigest', 'The Content-MD5 you specified did not match what we received.', {
        extra: { ExpectedDigest: body.contentMd5, CalculatedDigest: d.md5.toString('base64') },
      });
    const expected = body.expectedChecksums?.() ?? {};
    for (const [alg, value] of Object.entries(expected) as [ChecksumAlgorithm, string][]) {
      if (d.checksums[alg] !== value)
        throw new ObjectError('BadDigest', `The ${alg} you specified did not match the calculated checksum.`);
    }
  }

  /** The checksum stored with an object: the one the client sent or asked for. */
  function chosenChecksum(body: ObjectBody, opts: WriteOptions, d: BodyDigests) {
    const alg = opts.checksumAlgorithm ?? body.checksumAlgorithms?.[0];
    const value = alg ? d.checksums[alg] : undefined;
    return alg && value
      ? { checksum_algorithm: alg, checksum_value: value, checksum_type: 'FULL_OBJECT' }
      : {};
  }

  /** The preconditions of a conditional write, checked against the current latest version inside the commit. */
  function checkWritePreconditions(p: Preconditions, current: ObjectRow | undefined) {
    const live = current && current.delete_marker === 0 ? current : undefined;
    if (p.ifNoneMatch !== undefined) {
      // `*`: only if there is no current object; an ETag list: only if the current one is not among them.
      if (live && etagMatches(p.ifNoneMatch, live.etag))
        throw new ObjectError(
          'PreconditionFailed',
          'At least one of the pre-conditions you specified did not hold',
          {
            extra: { Condition: 'If-None-Match' },
          },
        );
    }
    if (p.ifMatch !== undefined) {
      if (!live) throw noSuchKey(current?.key ?? '');
      if (!etagMatches(p.ifMatch, live.etag))
        throw new ObjectError(
          'PreconditionFailed',
          'At least one of the pre-conditions you specified did not hold',
          {
            extra: { Condition: 'If-Match' },
          },
        );
    }
  }

  type NewVersion = Omit<ObjectRow, 'id' | 'bucket' | 'key' | 'version_id' | 'seq' | 'is_latest'>;

  /**
   * Inside a transaction holding the bucket lock: writes a new latest version of `key` (replacing
   * the 'null' version when versioning is not enabled) and updates counters and quota. Answers the
   * version id and the blobs no longer referenced (delete them after commit).
   */
  async function commitVersion(
    trx: Tx,
    b: BucketRow,
    key: string,
    row: NewVersion,
    opts: {
      parts?: Omit<ObjectPartsTable, 'object_id'>[];
      preconditions?: Preconditions;
      bytesAlreadyCounted?: number;
    },
  ) {
    const locked = await lockBucket(trx, database.dialect, b.name);
    if (!locked) throw noSuchBucket(b.name);
    // The latest version and the 'null' one (replaced unless versioning is on), in one query.
    const both = await trx
      .selectFrom('objects')
      .select(OBJECT_META_COLUMNS)
      .where('bucket', '=', b.name)
      .where('key', '=', key)
      .where((eb) => eb.or([eb('is_latest', '=', 1), eb('version_id', '=', 'null')]))
      .execute();
    const current = both.find((r) => r.is_latest === 1);
    if (opts.preconditions) checkWritePreconditions(opts.preconditions, current);
    const versionId = locked.versioning === 'Enabled' ? newVersionId() : 'null';
    let bytes = row.size - (opts.bytesAlreadyCounted ?? 0);
    let objects = 1;
    const freed: string[] = [];
    const old = versionId === 'null' ? both.find((r) => r.version_id === 'null') : undefined;
    if (old) {
      freed.push(...(await deleteVersionRow(trx, old)));
      bytes -= old.size;
      objects -= 1;
    }
    if (current && current.id !== old?.id)
      await trx.updateTable('objects').set({ is_latest: 0 }).where('id', '=', current.id).execute();
    const id = newObjectId();
    await trx
      .insertInto('objects')
      .values({ ...row, id, bucket: b.name, key, version_id: versionId, seq: nextSeq(), is_latest: 1 })
      .execute();
    if (opts.parts && opts.parts.length > 0)
      await trx
        .insertInto('object_parts')
        .values(opts.parts.map((p) => ({ ...p, object_id: id })))
        .execute();
    await updateBucketUsage(trx, locked, now(), { bytes, objects });
    if (bytes > 0) await reserveStorage(trx, locked.tenant_id, bytes);
    else await releaseQuota(trx, locked.tenant_id, 'storageBytes', -bytes);
    return { versionId, freed, locked };
  }

  async function reserveStorage(trx: Tx, tenantId: string, bytes: number) {
    try {
      await reserveQuota(trx, tenantId, 'storageBytes', bytes);
    } catch (e) {
      throw storageQuotaError(e);
    }
  }

  /** Resolves the version a read or delete addresses; throws what S3 answers for missing ones. */
  async function resolveVersion(
    b: BucketRow,
    key: string,
    versionId: string | undefined,
    /** Also load an inline body (reads of the body). */
    withBody = false,
  ): Promise<ObjectRow> {
    if (versionId !== undefined) {
      if (versionId === '') throw new ObjectError('InvalidArgument', 'Version id cannot be the empty string');
      const row = await reads.version(b.name, key, versionId, withBody);
      if (!row) {
        if (versionId !== 'null' && !/^[A-Za-z0-9_-]{32}$/.test(versionId))
          throw new ObjectError('InvalidArgument', 'Invalid version id specified', {
            extra: { ArgumentName: 'versionId', ArgumentValue: versionId },
          });
        throw new ObjectError('NoSuchVersion', 'The specified version does not exist.', {
          extra: { Key: key, VersionId: versionId },
        });
      }
      if (row.delete_marker === 1)
        throw new ObjectError(
          'MethodNotAllowed',
          'The specified method is not allowed against this resource.',
          {
            extra: { Method: 'GET', ResourceType: 'DeleteMarker' },
            headers: {
              'x-amz-delete-marker': 'true',
              'x-amz-version-id': row.version_id,
              'last-modified': new Date(row.last_modified).toUTCString(),
            },
          },
        );
      return row;
    }
    const row = await reads.latest(b.name, key, withBody);
    // No version at all: say so explicitly (RGW's answer; s3-tests checks it after deletes).
    if (!row) throw noSuchKey(key, { 'x-amz-delete-marker': 'false' });
    if (row.delete_marker === 1)
      throw noSuchKey(key, { 'x-amz-delete-marker': 'true', 'x-amz-version-id': row.version_id });
    return row;
  }

  /** A readable over an object's body (or a range of it), across its parts when it has them. */
  /**
   * The plain body (or its range) of a version stored inline or as one blob, in memory; undefined
   * for multipart versions (their parts stream, see openBody).
   */
  async function readBody(
    row: ObjectRow,
    range?: { start: number; end: number },
  ): Promise<Buffer | undefined> {
    const start = range?.start ?? 0;
    const end = range?.end ?? row.size - 1;
    if (row.size === 0) return Buffer.alloc(0);
    if (row.blob_id) return blobs.read(row.blob_id, { start, end });
    if (!isInline(row)) return undefined;
    return (await storedInline(row)).subarray(start, end + 1);
  }

  /** An inline version's body as stored (sealed under SSE), loaded if the row was read without it. */
  async function storedInline(row: ObjectRow): Promise<Buffer> {
    const stored = row.body ?? (await inlineBody(database.db, row.id));
    // The version was removed since its row was read: as for a deleted blob.
    if (!stored) throw new BlobNotFoundError(row.id);
    return stored;
  }

  async function openBody(
    row: ObjectRow,
    range?: { start: number; end: number },
    dataKey?: Buffer,
  ): Promise<Readable> {
    if (row.size === 0) return Readable.from([]);
    const open = (blobId: string, plainSize: number, r?: { start: number; end: number }) =>
      dataKey
        ? openEncryptedBlob(blobs, blobId, dataKey, plainSize, r?.start ?? 0, r?.end ?? plainSize - 1)
        : blobs.get(blobId, r);
    if (row.blob_id) return open(row.blob_id, row.size, range);
    if (isInline(row)) {
      const stored = await storedInline(row);
      const start = range?.start ?? 0;
      const end = range?.end ?? row.size - 1;
      if (dataKey) return openEncryptedBytes(stored, dataKey, row.size, start, end);
      return Readable.from([stored.subarray(start, end + 1)], { objectMode: false });
    }
    const parts = await objectParts(database.db, row.id);
    const start = range?.start ?? 0;
    const end = range?.end ?? row.size - 1;
    const pieces: { blobId: string; size: number; start: number; end: number }[] = [];
    let offset = 0;
    for (const p of parts) {
      const pStart = offset;
      const pEnd = offset + p.size - 1;
      offset += p.size;
      if (p.size === 0 || pEnd < start || pStart > end) continue;
      pieces.push({
        blobId: p.blob_id,
        size: p.size,
        start: Math.max(start, pStart) - pStart,
        end: Math.min(end, pEnd) - pStart,
      });
    }
    // Open the first piece now, so a missing blob fails before any response header is sent.
    const at = (p: (typeof pieces)[number]) => ({ start: p.start, end: p.end });
    const first =
      pieces.length > 0 ? await open(pieces[0]!.blobId, pieces[0]!.size, at(pieces[0]!)) : undefined;
    const out = new PassThrough({ highWaterMark: 256 * 1024 });
    (async () => {
      for (const [i, piece] of pieces.entries()) {
        const s = i === 0 && first ? first : await open(piece.blobId, piece.size, at(piece));
        for await (const chunk of s) {
          if (!out.write(chunk)) await new Promise((r) => out.once('drain', r));
          if (out.destroyed) {
            s.destroy();
            return;
          }
        }
      }
      out.end();
    })().catch((e) => out.destroy(e as Error));
    return out;
  }

  /** The encryption of a new version or upload: what the request asks for, else the bucket's default. */
  async function newEncryption(b: BucketRow, headers: SseHeaders | undefined, spec?: SseSpec) {
    const s = spec ?? parseSseRequest(headers ?? {}) ?? storedEncryptionDefault(b.encryption);
    return s ? sseKeys.newKey(s, b.tenant_id) : undefined;
  }

  /** The data key a stored version (or upload) is read with; SSE-C needs the customer's key headers. */
  async function dataKeyOf(stored: StoredSse | null, customer: CustomerKey | undefined) {
    if (!stored) {
      if (customer)
        throw new ObjectError(
          'InvalidRequest',
          'The encryption parameters are not applicable to this object.',
        );
      return undefined;
    }
    return sseKeys.openKey(stored, customer);
  }

  async function ownerOf(row: Pick<ObjectRow, 'owner_tenant_id'>, b: BucketRow) {
    if (row.owner_tenant_id === b.tenant_id) return { accountId: b.account_id, name: b.tenant_name };
    const t = await database.db
      .selectFrom('tenants')
      .select(['account_id', 'name'])
      .where('id', '=', row.owner_tenant_id)
      .executeTakeFirst();
    return { accountId: t?.account_id ?? '', name: t?.name ?? '' };
  }

  /** Where a new version's body is (a blob, or inline in the row) and what it is. */
  const bodyColumns = (blobId: string | null, inline: Buffer | null, size: number, etag: string) => ({
    delete_marker: 0,
    blob_id: blobId,
    body: inline,
    size,
    etag,
    parts_count: null,
  });

  /** A new version's encryption, lock, ACL and owner as `ctx` writes it into `b` at `at`. */
  const writerColumns = (
    b: BucketRow,
    ctx: ObjectContext,
    w: {
      enc: Awaited<ReturnType<typeof newEncryption>>;
      lock: RequestedLock | undefined;
      acl: string | undefined;
    },
    at: number,
  ) => ({
    sse: w.enc ? JSON.stringify(w.enc.stored) : null,
    ...lockColumns(b, w.lock, at),
    acl: w.acl ?? null,
    owner_tenant_id: objectOwnerTenant(b, ctx.principal?.tenantId ?? b.tenant_id, w.acl),
    last_modified: at,
  });

  const contentColumns = (h: ContentHeaders = {}) => ({
    content_type: h.contentType ?? null,
    content_encoding: h.contentEncoding ?? null,
    content_disposition: h.contentDisposition ?? null,
    content_language: h.contentLanguage ?? null,
    cache_control: h.cacheControl ?? null,
    expires: h.expires ?? null,
  });

  // ---- the service --------------------------------------------------------------------------

  return {
    /** Waits for the log sync in flight (its writers are answered) and releases the log's descriptor. */
    close: () => writes.close(),

    /** Loads a bucket the caller may see at all (used by adapters for per-bucket checks). */
    async headBucket(ctx: ObjectContext, name: string): Promise<BucketInfo> {
      const b = await bucketOrThrow(name);
      await allow(ctx, 's3:ListBucket', b);
      count(b, 'B');
      return bucketInfo(b);
    },

    async listBuckets(
      ctx: ObjectContext,
      opts: { prefix?: string } = {},
    ): Promise<{ owner: { accountId: string; name: string }; buckets: BucketInfo[] }> {
      const p = ctx.principal;
      if (!p) throw new ObjectError('AccessDenied', 'Access Denied');
      let q = database.db
        .selectFrom('buckets')
        .innerJoin('tenants', 'tenants.id', 'buckets.tenant_id')
        .selectAll('buckets')
        .select(['tenants.account_id as account_id', 'tenants.name as tenant_name'])
        .where('buckets.tenant_id', '=', p.tenantId)
        .orderBy('buckets.name');
      if (opts.prefix) q = q.where('buckets.name', 'like', `${opts.prefix.replace(/[%_\\]/g, '\\$&')}%`);
      const rows = await q.execute();
      return { owner: { accountId: p.accountId, name: p.tenantName }, buckets: rows.map(bucketInfo) };
    },

    async createBucket(
      ctx: ObjectContext,
      input: { name: string; region?: string; acl?: string; objectLockEnabled?: boolean; ownership?: string },
    ): Promise<BucketInfo> {
      const p = ctx.principal;
      if (!p) throw new ObjectError('AccessDenied', 'Access Denied');
      assertBucketName(input.name);
      if (input.acl !== undefined && !input.acl.startsWith('{') && !CANNED_ACLS.has(input.acl))
        throw new ObjectError('InvalidArgument', `Invalid canned ACL '${input.acl}'.`);
      const existing = await findBucket(database.db, input.name);
      if (existing) {
        // us-east-1 keeps S3's legacy answer: re-creating your own bucket there succeeds and changes
        // nothing, unless it asks for another ACL (BucketAlreadyExists, as RGW and s3-tests expect).
        const region = input.region || defaultRegion;
        if (existing.tenant_id === p.tenantId && region === 'us-east-1' && existing.region === region) {
          if ((input.acl ?? 'private') === existing.acl) return bucketInfo(existing);
          throw new ObjectError(
            'BucketAlreadyExists',
            'The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again.',
            { extra: { BucketName: input.name } },
          );
        }
        if (existing.tenant_id === p.tenantId)
          throw new ObjectError(
            'BucketAlreadyOwnedByYou',
            'Your previous request to create the named bucket succeeded and you already own it.',
            { extra: { BucketName: input.name } },
          );
        throw new ObjectError(
          'BucketAlreadyExists',
          'The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again.',
          { extra: { BucketName: input.name } },
        );
      }
      const d = evaluateBucketAccess(
        {
          principal: p,
          action: 's3:CreateBucket',
          bucket: {
            name: input.name,
            tenantId: p.tenantId,
            accountId: p.accountId,
            policy: null,
            acl: 'private',
          },
          resource: `arn:aws:s3:::${input.name}`,
          conditions: {},
        },
        hooks,
      );
      if (!d.allowed) throw new ObjectError('AccessDenied', 'Access Denied');
      const ts = now();
      const row = {
        name: input.name,
        tenant_id: p.tenantId,
        owner_user_id: p.userId,
        region: input.region || defaultRegion,
        versioning: (input.objectLockEnabled ? 'Enabled' : '') as '' | 'Enabled',
        object_lock_enabled: input.objectLockEnabled ? 1 : 0,
        acl: input.acl ?? 'private',
        policy: null,
        cors: null,
        lifecycle: null,
        tagging: null,
        encryption: null,
        object_lock: null,
        ownership: input.ownership ?? null,
        public_access_block: null,
        logging: null,
        object_count: 0,
        bytes_stored: 0,
        accrued_byte_seconds: 0,
        accrued_at: ts,
        created_at: ts,
      };
      try {
        await writes.tx(async (trx) => {
          try {
            await reserveQuota(trx, p.tenantId, 'buckets');
          } catch (e) {
            if (e instanceof YunhaiError && e.code === 'QuotaExceeded')
              throw new ObjectError(
                'TooManyBuckets',
                'You have attempted to create more buckets than allowed',
              );
            throw e;
          }
          await trx.insertInto('buckets').values(row).execute();
          await appendAudit(
            trx,
            auditRow(ctx, p.tenantId, 's3:CreateBucket', `arn:aws:s3:::${row.name}`, { region: row.region }),
          );
        });
      } catch (e) {
        if (isUniqueViolation(e)) {
          const other = await findBucket(database.db, input.name);
          throw other?.tenant_id === p.tenantId
            ? new ObjectError(
                'BucketAlreadyOwnedByYou',
                'Your previous request to create the named bucket succeeded and you already own it.',
              )
            : new ObjectError('BucketAlreadyExists', 'The requested bucket name is not available.');
        }
        throw e;
      }
      deps.meter?.request(p.tenantId, row.name, 'A');
      return bucketInfo({ ...row, account_id: p.accountId, tenant_name: p.tenantName });
    },

    async deleteBucket(ctx: ObjectContext, name: string): Promise<void> {
      const b = await bucketOrThrow(name);
      await allow(ctx, 's3:DeleteBucket', b);
      const freed: string[] = [];
      await writes.tx(async (trx) => {
        const locked = await lockBucket(trx, database.dialect, name);
        if (!locked) throw noSuchBucket(name);
        const anyObject = await trx
          .selectFrom('objects')
          .select('id')
          .where('bucket', '=', name)
          .limit(1)
          .executeTakeFirst();
        if (anyObject)
          throw new ObjectError('BucketNotEmpty', 'The bucket you tried to delete is not empty', {
            extra: { BucketName: name },
          });
        // Storage accrued since the last metering flush is written before the row goes.
        const accrued =
          locked.accrued_byte_seconds +
          Math.floor((locked.bytes_stored * Math.max(0, now() - locked.accrued_at)) / 1000);
        if (accrued > 0) {
          await recordUsage(trx, [
            {
              tenantId: locked.tenant_id,
              service: 's3',
              resourceId: name,
              meter: 's3.storage-byte-seconds',
              quantity: Math.min(Number.MAX_SAFE_INTEGER, accrued),
              periodStart: locked.accrued_at,
              periodEnd: now(),
              idempotencyKey: `s3:${name}:storage:${locked.created_at}:final`,
            },
          ]);
        }
        // Incomplete multipart uploads do not keep a bucket alive (as on AWS): they go with it.
        const uploadIds = (
          await trx.selectFrom('multipart_uploads').select('upload_id').where('bucket', '=', name).execute()
        ).map((u) => u.upload_id);
        if (uploadIds.length > 0) {
          const parts = await trx
            .selectFrom('upload_parts')
            .select(['blob_id', 'size'])
            .where('upload_id', 'in', uploadIds)
            .execute();
          await trx.deleteFrom('upload_parts').where('upload_id', 'in', uploadIds).execute();
          await trx.deleteFrom('multipart_uploads').where('bucket', '=', name).execute();
          const bytes = parts.reduce((n, p) => n + p.size, 0);
          if (bytes > 0) await releaseQuota(trx, locked.tenant_id, 'storageBytes', bytes);
          freed.push(...parts.map((p) => p.blob_id));
        }
        await trx.deleteFrom('buckets').where('name', '=', name).execute();
        await releaseQuota(trx, locked.tenant_id, 'buckets');
        await appendAudit(trx, auditRow(ctx, locked.tenant_id, 's3:DeleteBucket', `arn:aws:s3:::${name}`));
      });
      forgetBucket(name);
      await deleteBlobs(freed);
      count(b, 'A');
    },

    async getBucketLocation(ctx: ObjectContext, name: string): Promise<string> {
      const b = await bucketOrThrow(name);
      await allow(ctx, 's3:GetBucketLocation', b);
      count(b, 'B');
      return b.region;
    },

    async getBucketVersioning(ctx: ObjectContext, name: string) {
      const b = await bucketOrThrow(name);
      await allow(ctx, 's3:GetBucketVersioning', b);
      count(b, 'B');
      return { status: b.versioning, mfaDelete: b.versioning === '' ? undefined : 'Disabled' };
    },

    async putBucketVersioning(ctx: ObjectContext, name: string, status: 'Enabled' | 'Suspended') {
      const b = await bucketOrThrow(name);
      await allow(ctx, 's3:PutBucketVersioning', b);
      if (status === 'Suspended' && b.object_lock_enabled === 1)
        throw new ObjectError(
          'InvalidBucketState',
          'An Object Lock configuration is present on this bucket, so the versioning state cannot be changed.',
        );
      forgetBucket(name);
      await writes
        .tx(async (trx) => {
          await trx.updateTable('buckets').set({ versioning: status }).where('name', '=', name).execute();
          await appendAudit(
            trx,
            auditRow(ctx, b.tenant_id, 's3:PutBucketVersioning', `arn:aws:s3:::${name}`, { status }),
          );
        })
        .finally(() => forgetBucket(name));
      count(b, 'A');
    },

    /**
     * A bucket sub-resource stored as a document (policy, cors, lifecycle, tagging, encryption,
     * object-lock, ownership, acl): the adapter validates and renders it, the service stores,
     * authorises and audits it. `null` deletes it.
     */
    async getBucketConfig(
      ctx: ObjectContext,
      name: string,
      field: BucketConfigField,
    ): Promise<{ value: string | null; bucket: BucketInfo; acl: string }> {
      const b = await bucketOrThrow(name);
      const a = BUCKET_CONFIG_ACTIONS[field];
      await allow(ctx, a.get, b, undefined, undefined, a.policyGet);
      count(b, 'B');
      return { value: b[field], bucket: bucketInfo(b), acl: b.acl };
    },

    async putBucketConfig(
      ctx: ObjectContext,
      name: string,
      field: BucketConfigField,
      document: string | null | ((bucket: BucketInfo) => Promise<string | null>),
    ) {
      const b = await bucketOrThrow(name);
      const a = BUCKET_CONFIG_ACTIONS[field];
      await allow(ctx, a.put, b, undefined, undefined, a.policyPut);
      // Object Lock can be turned on for a bucket created without it only once versioning is on (AWS).
      if (field === 'object_lock' && b.object_lock_enabled !== 1 && b.versioning !== 'Enabled')
        throw new ObjectError(
          'InvalidBucketState',
          "Versioning must be 'Enabled' on the bucket to apply a Object Lock configuration",
        );
      // A function builds the document once the caller is known to be allowed (ACLs need the owner).
      const value = typeof document === 'function' ? await document(bucketInfo(b)) : document;
      if (field === 'acl' && value === null)
        throw new YunhaiError('InternalError', 'a bucket always has an ACL');
      const block = publicAccessBlockOf(b);
      if (field === 'acl' && block?.blockPublicAcls && value !== null && isPublicAcl(value))
        throw new ObjectError('AccessDenied', 'Access Denied');
      if (field === 'policy' && block?.blockPublicPolicy && value !== null) {
        const parsed = parsedPolicy(value);
        if (parsed && isPolicyPublic(parsed)) throw new ObjectError('AccessDenied', 'Access Denied');
      }
      forgetBucket(name);
      await writes.tx(async (trx) => {
        forgetBucket(name);
        await trx
          .updateTable('buckets')
          .set(
            field === 'acl' ? { acl: value ?? 'private' } : ({ [field]: value } as { policy: string | null }),
          )
          .where('name', '=', name)
          .execute();
        if (field === 'object_lock' && value !== null)
          await trx.updateTable('buckets').set({ object_lock_enabled: 1 }).where('name', '=', name).execute();
        await appendAudit(
          trx,
          auditRow(
            ctx,
            b.tenant_id,
            value === null ? BUCKET_CONFIG_ACTIONS[field].deleteName : BUCKET_CONFIG_ACTIONS[field].putName,
            `arn:aws:s3:::${name}`,
          ),
        );
      });
      forgetBucket(name);
      count(b, 'A');
    },

    // ---- objects ------------------------------------------------------------------------------

    async putObject(
      ctx: ObjectContext,
      input: { bucket: string; key: string; body: ObjectBody; preconditions?: Preconditions } & WriteOptions,
    ): Promise<{
      etag: string;
      versionId: string | null;
      checksum?: { algorithm: string; value: string };
      expiration?: string;
      sse: SseInfo | null;
    }> {
      const b = await bucketOrThrow(input.bucket);
      assertObjectKey(input.key);
      await allow(ctx, 's3:PutObject', b, input.key);
      checkWriteOptions(input);
      refusePublicAcl(b, input.acl);
      if (input.body.expectedSize !== undefined && input.body.expectedSize > MAX_PUT_SIZE)
        throw new ObjectError('EntityTooLarge', 'Your proposed upload exceeds the maximum allowed size', {
          extra: { ProposedSize: String(input.body.expectedSize), MaxSizeAllowed: String(MAX_PUT_SIZE) },
        });
      if (input.preconditions)
        checkWritePreconditions(input.preconditions, await latestVersion(database.db, b.name, input.key));
      lockColumns(b, input.lock, now());
      const enc = await newEncryption(b, input.sse);
      const { blobId, inline, digests } = await ingest(input.body, input.checksumAlgorithm, enc?.key, {
        inline: true,
      });
      const etag = digests.md5.toString('hex');
      const sum = chosenChecksum(input.body, input, digests);
      const versionRow = (): NewVersionRow => ({
        ...bodyColumns(blobId, inline, digests.size, etag),
        ...contentColumns(input.headers),
        metadata: JSON.stringify(input.metadata ?? {}),
        tags: input.tags && input.tags.length > 0 ? JSON.stringify(input.tags) : null,
        storage_class: input.storageClass ?? 'STANDARD',
        checksum_algorithm: null,
        checksum_value: null,
        checksum_type: null,
        ...sum,
        ...writerColumns(b, ctx, { enc, lock: input.lock, acl: input.acl }, now()),
      });
      const audit = (versionId: string) =>
        auditRow(ctx, b.tenant_id, 's3:PutObject', `arn:aws:s3:::${b.name}/${input.key}`, {
          versionId,
          size: digests.size,
        });
      const check = input.preconditions
        ? (current: ObjectRow | undefined) => checkWritePreconditions(input.preconditions!, current)
        : undefined;
      let result: { versionId: string; freed: string[] };
      try {
        result = writes.fast
          ? await writes.fast(async (w) => {
              const r = await commitVersionSqlite(w, b.name, input.key, versionRow(), {
                now,
                newVersionId,
                newObjectId,
                nextSeq,
                check,
                reserveSlow: reserveStorage,
                quotaError: storageQuotaError,
              });
              w.audit(audit(r.versionId));
              return r;
            })
          : await writes.tx(async (trx) => {
              const r = await commitVersion(trx, b, input.key, versionRow(), {
                preconditions: input.preconditions,
              });
              await appendAudit(trx, audit(r.versionId));
              return r;
            });
      } catch (e) {
        if (blobId) await blobs.delete(blobId);
        throw e;
      }
      await deleteBlobs(result.freed);
      count(b, 'A');
      const expiration = expirationHeader(storedLifecycle(b.lifecycle), {
        key: input.key,
        size: digests.size,
        tags: (input.tags ?? []).map((t) => ({ key: t.Key, value: t.Value })),
        lastModified: now(),
      });
      return {
        etag,
        versionId: result.versionId === 'null' ? null : result.versionId,
        sse: sseInfo(enc?.stored ?? null),
        ...(expiration ? { expiration } : {}),
        ...(sum.checksum_algorithm
          ? { checksum: { algorithm: sum.checksum_algorithm, value: sum.checksum_value } }
          : {}),
      };
    },

    /** Reads an object; the caller must consume or destroy `body`. */
    async getObject(
      ctx: ObjectContext,
      input: {
        bucket: string;
        key: string;
        versionId?: string;
        range?: RangeSpec;
        partNumber?: number;
        preconditions?: Preconditions;
        head?: boolean;
        /** SSE-C key headers. */
        sse?: SseHeaders;
        /**
         * Answer a plain (unencrypted) body of at most this many bytes as a Buffer, read at once,
         * instead of a stream: one read and one socket write without a stream's hand-offs.
         */
        bufferUpTo?: number;
      },
    ): Promise<{
      info: ObjectInfo;
      body: Readable | Buffer | null;
      range?: { start: number; end: number; total: number };
      /** x-amz-expiration for a current version the bucket's lifecycle rules expire. */
      expiration?: string;
    }> {
      const b = await bucketOrThrow(input.bucket);
      const action: S3Action = input.versionId !== undefined ? 's3:GetObjectVersion' : 's3:GetObject';
      let row: ObjectRow;
      try {
        row = await resolveVersion(b, input.key, input.versionId, !input.head);
      } catch (e) {
        // A caller who may not list must not learn whether the key exists (AWS answers 403 then).
        // ListBucket as if listing the key itself, so a policy's s3:prefix condition applies.
        const asListing = { ...ctx, conditions: { ...ctx.conditions, 's3:prefix': input.key } };
        await allow(asListing, 's3:ListBucket', b).catch(() => allow(ctx, action, b, input.key));
        throw e;
      }
      await allow(ctx, action, b, input.key, row);
      count(b, 'B');
      const info = objectInfo(row, await ownerOf(row, b));
      const validators = {
        etag: quoted(row.etag),
        'last-modified': new Date(row.last_modified).toUTCString(),
      };
      if (input.preconditions)
        checkReadPreconditions(input.preconditions, row.etag, row.last_modified, validators);
      let range: { start: number; end: number; total: number } | undefined;
      if (input.partNumber !== undefined) {
        range = await partRange(row, input.partNumber);
      } else if (input.range) {
        range = resolveRange(input.range, row.size);
      }
      const expiration =
        row.is_latest === 1
          ? expirationHeader(storedLifecycle(b.lifecycle), {
              key: row.key,
              size: row.size,
              tags: row.tags
                ? (JSON.parse(row.tags) as Tag[]).map((t) => ({ key: t.Key, value: t.Value }))
                : [],
              lastModified: row.last_modified,
            })
          : undefined;
      const extra = { ...(range ? { range } : {}), ...(expiration ? { expiration } : {}) };
      // SSE-C: the key is checked on HEAD too (AWS answers 400 without it).
      const dataKey = await dataKeyOf(parseStoredSse(row.sse), parseSseCustomer(input.sse ?? {}));
      if (input.head) return { info, body: null, ...extra };
      const bytes = range ? range.end - range.start + 1 : row.size;
      let body: Readable | Buffer;
      try {
        const whole =
          input.bufferUpTo !== undefined && bytes <= input.bufferUpTo && !dataKey
            ? await readBody(row, range)
            : undefined;
        body = whole ?? (await openBody(row, range, dataKey));
      } catch (e) {
        // Replaced between the metadata read and the open: the caller retries and reads the new latest.
        if (e instanceof BlobNotFoundError)
          throw new ObjectError(
            'ServiceUnavailable',
            'The object changed while it was being read; retry the request.',
          );
        throw e;
      }
      deps.meter?.egress(b.tenant_id, b.name, bytes);
      return { info, body, ...extra };
    },

    /**
     * GetObjectAttributes: the version's metadata and, for multipart objects, a page of its parts
     * (sizes and checksums). An SSE-C object needs its key, as for HEAD.
     */
    async getObjectAttributes(
      ctx: ObjectContext,
      input: {
        bucket: string;
        key: string;
        versionId?: string;
        sse?: SseHeaders;
        maxParts: number;
        partNumberMarker: number;
      },
    ): Promise<{
      info: ObjectInfo;
      versioned: boolean;
      parts?: {
        total: number;
        items: { partNumber: number; size: number; checksums: Record<string, string> }[];
        isTruncated: boolean;
        nextMarker?: number;
      };
    }> {
      const b = await bucketOrThrow(input.bucket);
      const row = await resolveVersion(b, input.key, input.versionId);
      await allow(ctx, 's3:GetObjectAttributes', b, input.key, row);
      await dataKeyOf(parseStoredSse(row.sse), parseSseCustomer(input.sse ?? {}));
      count(b, 'B');
      const info = objectInfo(row, await ownerOf(row, b));
      const versioned = b.versioning !== '';
      if (row.parts_count === null) return { info, versioned };
      const all = await objectParts(database.db, row.id);
      const after = all.filter((p) => p.part_number > input.partNumberMarker);
      const page = after.slice(0, input.maxParts);
      const isTruncated = after.length > page.length;
      return {
        info,
        versioned,
        parts: {
          total: all.length,
          items: page.map((p) => ({
            partNumber: p.part_number,
            size: p.size,
            checksums: p.checksum ? (JSON.parse(p.checksum) as Record<string, string>) : {},
          })),
          isTruncated,
          ...(isTruncated && page.length > 0 ? { nextMarker: page[page.length - 1]!.part_number } : {}),
        },
      };
    },

    async deleteObject(
      ctx: ObjectContext,
      input: {
        bucket: string;
        key: string;
        versionId?: string;
        preconditions?: Preconditions;
        bypassGovernance?: boolean;
      },
    ): Promise<{ versionId?: string; deleteMarker: boolean }> {
      const b = await bucketOrThrow(input.bucket);
      await allow(
        ctx,
        input.versionId !== undefined ? 's3:DeleteObjectVersion' : 's3:DeleteObject',
        b,
        input.key,
      );
      const bypass = input.bypassGovernance ? await mayBypass(ctx, b) : false;
      const r = await deleteOne(ctx, b, input.key, input.versionId, input.preconditions, bypass);
      count(b, 'B');
      return r;
    },

    async deleteObjects(
      ctx: ObjectContext,
      input: { bucket: string; objects: { key: string; versionId?: string }[]; bypassGovernance?: boolean },
    ): Promise<
      Array<
        | {
            key: string;
            versionId?: string;
            deleted: true;
            deleteMarker: boolean;
            deleteMarkerVersionId?: string;
          }
        | { key: string; versionId?: string; deleted: false; code: string; message: string }
      >
    > {
      const b = await bucketOrThrow(input.bucket);
      const bypass = input.bypassGovernance ? await mayBypass(ctx, b) : false;
      const out = [];
      for (const o of input.objects) {
        try {
          await allow(
            ctx,
            o.versionId !== undefined ? 's3:DeleteObjectVersion' : 's3:DeleteObject',
            b,
            o.key,
          );
          const r = await deleteOne(ctx, b, o.key, o.versionId, undefined, bypass);
          out.push({
            key: o.key,
            ...(o.versionId !== undefined ? { versionId: o.versionId } : {}),
            deleted: true as const,
            deleteMarker: r.deleteMarker,
            ...(r.deleteMarker && r.versionId ? { deleteMarkerVersionId: r.versionId } : {}),
          });
        } catch (e) {
          const err =
            e instanceof ObjectError
              ? e
              : new ObjectError('InternalError', 'We encountered an internal error. Please try again.');
          if (!(e instanceof ObjectError))
            deps.logger?.error({ err: String(e) }, 'DeleteObjects entry failed');
          out.push({
            key: o.key,
            ...(o.versionId !== undefined ? { versionId: o.versionId } : {}),
            deleted: false as const,
            code: err.s3Code,
            message: err.message,
          });
        }
      }
      count(b, 'A');
      return out;
    },

    async copyObject(
      ctx: ObjectContext,
      input: {
        bucket: string;
        key: string;
        source: { bucket: string; key: string; versionId?: string };
        sourcePreconditions?: Preconditions;
        metadataDirective?: 'COPY' | 'REPLACE';
        taggingDirective?: 'COPY' | 'REPLACE';
        preconditions?: Preconditions;
        /** x-amz-copy-source-server-side-encryption-customer-* (the source's SSE-C key). */
        sourceSse?: SseHeaders;
      } & WriteOptions,
    ): Promise<{
      etag: string;
      lastModified: number;
      versionId: string | null;
      sourceVersionId: string | null;
      sse: SseInfo | null;
    }> {
      const dest = await bucketOrThrow(input.bucket);
      assertObjectKey(input.key);
      const src = input.source.bucket === dest.name ? dest : await bucketOrThrow(input.source.bucket);
      const srcRow = await resolveVersion(src, input.source.key, input.source.versionId, true);
      await allow(
        ctx,
        input.source.versionId ? 's3:GetObjectVersion' : 's3:GetObject',
        src,
        srcRow.key,
        srcRow,
      );
      await allow(ctx, 's3:PutObject', dest, input.key);
      checkWriteOptions(input);
      refusePublicAcl(dest, input.acl);
      lockColumns(dest, input.lock, now());
      if (input.sourcePreconditions) {
        try {
          checkReadPreconditions(input.sourcePreconditions, srcRow.etag, srcRow.last_modified);
        } catch (e) {
          // For copies every failed source condition is a 412.
          if (e instanceof ObjectError && e.s3Code === 'NotModified')
            throw new ObjectError(
              'PreconditionFailed',
              'At least one of the pre-conditions you specified did not hold',
            );
          throw e;
        }
      }
      const sourceKey = await dataKeyOf(parseStoredSse(srcRow.sse), parseSseCustomer(input.sourceSse ?? {}));
      const requestedSse = parseSseRequest(input.sse ?? {});
      const replaceMeta = input.metadataDirective === 'REPLACE';
      const sameObject =
        src.name === dest.name &&
        srcRow.key === input.key &&
        (input.source.versionId === undefined || srcRow.is_latest === 1);
      if (
        sameObject &&
        !replaceMeta &&
        input.storageClass === undefined &&
        requestedSse === undefined &&
        dest.versioning !== 'Enabled'
      )
        throw new ObjectError(
          'InvalidRequest',
          "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.",
        );
      if (srcRow.size > MAX_PUT_SIZE)
        throw new ObjectError(
          'InvalidRequest',
          'The specified copy source is larger than the maximum allowable size for a copy source: 5368709120',
        );
      const enc = await newEncryption(dest, undefined, requestedSse);
      const stream = await openBody(srcRow, undefined, sourceKey);
      const { blobId, inline, digests } = await ingest(
        { stream, expectedSize: srcRow.size },
        input.checksumAlgorithm,
        enc?.key,
        { inline: true },
      );
      const etag = digests.md5.toString('hex');
      const headers: ContentHeaders = replaceMeta
        ? (input.headers ?? {})
        : objectInfo(srcRow, { accountId: '', name: '' }).headers;
      const metadata = replaceMeta
        ? (input.metadata ?? {})
        : (JSON.parse(srcRow.metadata) as Record<string, string>);
      const tags =
        input.taggingDirective === 'REPLACE'
          ? input.tags && input.tags.length > 0
            ? JSON.stringify(input.tags)
            : null
          : srcRow.tags;
      const ts = now();
      let result: Awaited<ReturnType<typeof commitVersion>>;
      const alg =
        input.checksumAlgorithm ?? (srcRow.checksum_algorithm as ChecksumAlgorithm | null) ?? undefined;
      try {
        result = await writes.tx(async (trx) => {
          const r = await commitVersion(
            trx,
            dest,
            input.key,
            {
              ...bodyColumns(blobId, inline, digests.size, etag),
              ...contentColumns(headers),
              metadata: JSON.stringify(metadata),
              tags,
              storage_class: input.storageClass ?? srcRow.storage_class,
              checksum_algorithm: alg && digests.checksums[alg] ? alg : null,
              checksum_value: alg ? (digests.checksums[alg] ?? null) : null,
              checksum_type: alg && digests.checksums[alg] ? 'FULL_OBJECT' : null,
              ...writerColumns(dest, ctx, { enc, lock: input.lock, acl: input.acl }, ts),
            },
            { preconditions: input.preconditions },
          );
          await appendAudit(
            trx,
            auditRow(ctx, dest.tenant_id, 's3:CopyObject', `arn:aws:s3:::${dest.name}/${input.key}`, {
              source: `${src.name}/${srcRow.key}`,
              sourceVersionId: srcRow.version_id,
              versionId: r.versionId,
            }),
          );
          return r;
        });
      } catch (e) {
        if (blobId) await blobs.delete(blobId);
        throw e;
      }
      await deleteBlobs(result.freed);
      count(dest, 'A');
      deps.meter?.request(src.tenant_id, src.name, 'B');
      return {
        etag,
        lastModified: ts,
        versionId: result.versionId === 'null' ? null : result.versionId,
        sourceVersionId: src.versioning === '' ? null : srcRow.version_id,
        sse: sseInfo(enc?.stored ?? null),
      };
    },

    async getObjectTagging(ctx: ObjectContext, input: { bucket: string; key: string; versionId?: string }) {
      const b = await bucketOrThrow(input.bucket);
      const row = await resolveVersion(b, input.key, input.versionId);
      await allow(
        ctx,
        input.versionId ? 's3:GetObjectVersionTagging' : 's3:GetObjectTagging',
        b,
        input.key,
        row,
      );
      count(b, 'B');
      return { tags: row.tags ? (JSON.parse(row.tags) as Tag[]) : [], versionId: row.version_id };
    },

    async putObjectTagging(
      ctx: ObjectContext,
      input: { bucket: string; key: string; versionId?: string; tags: Tag[] | null },
    ) {
      const b = await bucketOrThrow(input.bucket);
      const row = await resolveVersion(b, input.key, input.versionId);
      const action: S3Action =
        input.tags === null
          ? input.versionId
            ? 's3:DeleteObjectVersionTagging'
            : 's3:DeleteObjectTagging'
          : input.versionId
            ? 's3:PutObjectVersionTagging'
            : 's3:PutObjectTagging';
      await allow(ctx, action, b, input.key, row);
      if (input.tags) validateTags(input.tags, 10);
      await writes.tx(async (trx) => {
        await trx
          .updateTable('objects')
          .set({ tags: input.tags && input.tags.length > 0 ? JSON.stringify(input.tags) : null })
          .where('id', '=', row.id)
          .execute();
        await appendAudit(
          trx,
          auditRow(ctx, b.tenant_id, action, `arn:aws:s3:::${b.name}/${row.key}`, {
            versionId: row.version_id,
          }),
        );
      });
      count(b, 'A');
      return { versionId: row.version_id };
    },

    async getObjectLock(
      ctx: ObjectContext,
      input: { bucket: string; key: string; versionId?: string; what: 'retention' | 'legal-hold' },
    ): Promise<VersionLock & { versionId: string }> {
      const b = await bucketOrThrow(input.bucket);
      requireLockBucket(b);
      const row = await resolveVersion(b, input.key, input.versionId);
      await allow(
        ctx,
        input.what === 'retention' ? 's3:GetObjectRetention' : 's3:GetObjectLegalHold',
        b,
        input.key,
        row,
      );
      count(b, 'B');
      return { ...versionLock(row), versionId: row.version_id };
    },

    /** PutObjectRetention (`retention`, null removes it) or PutObjectLegalHold (`legalHold`). */
    async putObjectLock(
      ctx: ObjectContext,
      input: {
        bucket: string;
        key: string;
        versionId?: string;
        retention?: { mode: LockMode; until: number } | null;
        legalHold?: boolean;
        bypassGovernance?: boolean;
      },
    ): Promise<{ versionId: string }> {
      const b = await bucketOrThrow(input.bucket);
      requireLockBucket(b);
      const row = await resolveVersion(b, input.key, input.versionId);
      const action: S3Action =
        input.legalHold !== undefined ? 's3:PutObjectLegalHold' : 's3:PutObjectRetention';
      await allow(ctx, action, b, input.key, row);
      const bypass = input.bypassGovernance ? await mayBypass(ctx, b) : false;
      await writes.tx(async (trx) => {
        const cur = await trx.selectFrom('objects').selectAll().where('id', '=', row.id).executeTakeFirst();
        if (!cur) throw noSuchKey(input.key);
        if (input.legalHold !== undefined) {
          await trx
            .updateTable('objects')
            .set({ legal_hold: input.legalHold ? 1 : 0 })
            .where('id', '=', row.id)
            .execute();
        } else {
          const next = input.retention ?? null;
          if (!retentionChangeAllowed(versionLock(cur), next, now(), bypass)) throw lockedVersion();
          await trx
            .updateTable('objects')
            .set({ lock_mode: next?.mode ?? null, lock_until: next?.until ?? null })
            .where('id', '=', row.id)
            .execute();
        }
        await appendAudit(
          trx,
          auditRow(ctx, b.tenant_id, action, `arn:aws:s3:::${b.name}/${row.key}`, {
            versionId: row.version_id,
            ...(input.legalHold !== undefined
              ? { legalHold: input.legalHold }
              : { mode: input.retention?.mode ?? null, until: input.retention?.until ?? null }),
          }),
        );
      });
      count(b, 'A');
      return { versionId: row.version_id };
    },

    /** The stored ACL of one object version (canned name or JSON, see access-hooks.ts) and who owns it. */
    async getObjectAcl(ctx: ObjectContext, input: { bucket: string; key: string; versionId?: string }) {
      const b = await bucketOrThrow(input.bucket);
      const row = await resolveVersion(b, input.key, input.versionId);
      await allow(ctx, input.versionId ? 's3:GetObjectVersionAcl' : 's3:GetObjectAcl', b, input.key, row);
      count(b, 'B');
      return {
        acl: row.acl,
        owner: await ownerOf(row, b),
        bucketOwner: { accountId: b.account_id, name: b.tenant_name },
        versionId: row.version_id,
        bucket: bucketInfo(b),
      };
    },

    /**
     * Replaces one object version's ACL. `acl` is a canned name or the JSON the adapter built; it
     * is called with the object's owner so the adapter can expand and check grants.
     */
    async putObjectAcl(
      ctx: ObjectContext,
      input: {
        bucket: string;
        key: string;
        versionId?: string;
        acl: (owner: { accountId: string; name: string }, bucket: BucketInfo) => Promise<string>;
      },
    ) {
      const b = await bucketOrThrow(input.bucket);
      const row = await resolveVersion(b, input.key, input.versionId);
      const action: S3Action = input.versionId ? 's3:PutObjectVersionAcl' : 's3:PutObjectAcl';
      await allow(ctx, action, b, input.key, row);
      const acl = await input.acl(await ownerOf(row, b), bucketInfo(b));
      refusePublicAcl(b, acl);
      await writes.tx(async (trx) => {
        await trx.updateTable('objects').set({ acl }).where('id', '=', row.id).execute();
        await appendAudit(
          trx,
          auditRow(ctx, b.tenant_id, action, `arn:aws:s3:::${b.name}/${row.key}`, {
            versionId: row.version_id,
          }),
        );
      });
      count(b, 'A');
      return { versionId: row.version_id };
    },

    /** The stored CORS configuration of a bucket, without authorisation (preflights are anonymous); null when none or no bucket. */
    async bucketCors(name: string): Promise<string | null> {
      const b = await database.db
        .selectFrom('buckets')
        .select('cors')
        .where('name', '=', name)
        .executeTakeFirst();
      return b?.cors ?? null;
    },

    /**
     * x-amz-expected-bucket-owner: AccessDenied unless the bucket exists and belongs to that
     * account (a missing bucket is left to the operation, which answers NoSuchBucket).
     */
    async checkExpectedOwner(name: string, expectedAccountId: string): Promise<void> {
      const b = await findBucket(database.db, name);
      if (b && b.account_id !== expectedAccountId.trim())
        throw new ObjectError('AccessDenied', 'Access Denied');
    },

    /** How often the control plane should call runLifecycle. */
    lifecycleIntervalMs: deps.lifecycleIntervalMs ?? 5 * 60_000,

    /**
     * One pass of the lifecycle rules over every bucket that has them: expires current versions
     * (a delete marker in versioned buckets), deletes noncurrent versions, removes expired delete
     * markers and aborts stale multipart uploads. Each change goes through the same code as a
     * user's delete or abort (audited as `lifecycle`, counted, usage updated). Returns what it did.
     */
    async runLifecycle(at: number = now()) {
      const done = { expired: 0, noncurrentDeleted: 0, markersRemoved: 0, uploadsAborted: 0, failed: 0 };
      const buckets = await database.db
        .selectFrom('buckets')
        .select('name')
        .where('lifecycle', 'is not', null)
        .orderBy('name')
        .execute();
      for (const { name } of buckets) {
        const b = await findBucket(database.db, name);
        const config = storedLifecycle(b?.lifecycle);
        if (!b || !config) continue;
        const ctx: ObjectContext = {
          principal: null,
          actor: 'lifecycle',
          requestId: `lifecycle-${randomBytes(8).toString('hex')}`,
          sourceIp: '',
        };
        const act = async (what: keyof typeof done, fn: () => Promise<unknown>) => {
          try {
            await fn();
            done[what]++;
            count(b, 'A');
          } catch (e) {
            // Changed since the scan (a new version, a lock, a racing delete): next pass decides again.
            done.failed++;
            deps.logger?.debug({ err: String(e), bucket: name }, 'lifecycle action skipped');
          }
        };
        // Versions key by key, newest first; pages end on a key boundary.
        let after: string | undefined;
        for (;;) {
          let q = database.db
            .selectFrom('objects')
            .selectAll()
            .where('bucket', '=', name)
            .orderBy('key')
            .orderBy('seq', 'desc')
            .limit(1000);
          if (after !== undefined) q = q.where('key', '>', after);
          const rows = await q.execute();
          if (rows.length === 0) break;
          const groups = new Map<string, ObjectRow[]>();
          for (const r of rows) {
            const g = groups.get(r.key);
            if (g) g.push(r);
            else groups.set(r.key, [r]);
          }
          const keys = [...groups.keys()];
          if (rows.length === 1000 && keys.length > 1) groups.delete(keys.at(-1)!);
          else if (rows.length === 1000) {
            // One key with more versions than a page: read all of them.
            groups.set(
              keys[0]!,
              await database.db
                .selectFrom('objects')
                .selectAll()
                .where('bucket', '=', name)
                .where('key', '=', keys[0]!)
                .orderBy('seq', 'desc')
                .execute(),
            );
          }
          for (const [key, versions] of groups) {
            let newerNoncurrent = 0;
            for (let i = 0; i < versions.length; i++) {
              const v = versions[i]!;
              const tags = v.tags
                ? (JSON.parse(v.tags) as Tag[]).map((t) => ({ key: t.Key, value: t.Value }))
                : [];
              const latest = v.is_latest === 1;
              const action = lifecycleActionFor(
                config,
                {
                  key,
                  size: v.size,
                  tags,
                  lastModified: v.last_modified,
                  isLatest: latest,
                  isDeleteMarker: v.delete_marker === 1,
                  ...(latest
                    ? { hasOtherVersions: versions.length > 1 }
                    : {
                        noncurrentSince: versions[i - 1]?.last_modified ?? v.last_modified,
                        newerNoncurrentVersions: newerNoncurrent,
                      }),
                },
                at,
              );
              if (!latest) newerNoncurrent++;
              if (!action) continue;
              if (action.type === 'ExpireCurrent')
                // If-Match: a version written since the scan is not expired by this pass.
                await act('expired', () => deleteOne(ctx, b, key, undefined, { ifMatch: `"${v.etag}"` }));
              else if (action.type === 'DeleteNoncurrent')
                await act('noncurrentDeleted', () => deleteOne(ctx, b, key, v.version_id));
              else await act('markersRemoved', () => deleteOne(ctx, b, key, v.version_id));
            }
          }
          const last = [...groups.keys()].at(-1);
          if (last === undefined || rows.length < 1000) break;
          after = last;
        }
        const uploads = await database.db
          .selectFrom('multipart_uploads')
          .select(['upload_id', 'key', 'created_at'])
          .where('bucket', '=', name)
          .execute();
        for (const u of uploads)
          if (abortRuleFor(config, { key: u.key, initiated: u.created_at }, at))
            await act('uploadsAborted', () => abortUpload(ctx, b, u.key, u.upload_id));
      }
      return done;
    },

    /** Looks up ACL grantees: account ids (canonical ids) and users' e-mail addresses. */
    aclDirectory: {
      async displayNameOf(id: string): Promise<string | undefined> {
        const t = await database.db
          .selectFrom('tenants')
          .select('name')
          .where('account_id', '=', id)
          .executeTakeFirst();
        return t?.name;
      },
      async userByEmail(email: string): Promise<{ id: string; displayName: string } | undefined> {
        const u = await database.db
          .selectFrom('users')
          .innerJoin('tenants', 'tenants.id', 'users.tenant_id')
          .select(['tenants.account_id as account_id', 'tenants.name as name'])
          .where('users.email', '=', email)
          .executeTakeFirst();
        return u ? { id: u.account_id, displayName: u.name } : undefined;
      },
    },

    // ---- listings -----------------------------------------------------------------------------

    async listObjects(
      ctx: ObjectContext,
      input: {
        bucket: string;
        prefix?: string;
        delimiter?: string;
        maxKeys: number;
        after?: string;
        marker?: string;
      },
    ): Promise<ListPage<ObjectInfo> & { bucket: BucketInfo }> {
      const b = await bucketOrThrow(input.bucket);
      await allow(
        { ...ctx, conditions: { ...ctx.conditions, 's3:prefix': input.prefix ?? '' } },
        's3:ListBucket',
        b,
      );
      const prefix = input.prefix ?? '';
      const page = await walkListing<ObjectRow>({
        prefix,
        ...(input.delimiter ? { delimiter: input.delimiter } : {}),
        maxKeys: input.maxKeys,
        ...(input.after !== undefined ? { start: { gt: input.after } } : {}),
        ...(input.marker !== undefined ? { marker: input.marker } : {}),
        fetch: (cursor, limit) => fetchLatest(database.db, b.name, prefix, cursor, limit),
        after: (row) => ({ gt: row.key }),
      });
      count(b, 'A');
      const owner = { accountId: b.account_id, name: b.tenant_name };
      return {
        entries: page.entries.map((r) => objectInfo(r, owner)),
        commonPrefixes: page.commonPrefixes,
        truncated: page.truncated,
        ...(page.last ? { last: { key: page.last.key } } : {}),
        bucket: bucketInfo(b),
      };
    },

    async listObjectVersions(
      ctx: ObjectContext,
      input: {
        bucket: string;
        prefix?: string;
        delimiter?: string;
        maxKeys: number;
        keyMarker?: string;
        versionIdMarker?: string;
      },
    ): Promise<ListPage<ObjectInfo> & { bucket: BucketInfo }> {
      const b = await bucketOrThrow(input.bucket);
      await allow(
        { ...ctx, conditions: { ...ctx.conditions, 's3:prefix': input.prefix ?? '' } },
        's3:ListBucketVersions',
        b,
      );
      const prefix = input.prefix ?? '';
      let start: ListCursor | undefined;
      if (input.keyMarker !== undefined && input.keyMarker !== '') {
        start = { gt: input.keyMarker };
        if (input.versionIdMarker) {
          const v = await findVersion(database.db, b.name, input.keyMarker, input.versionIdMarker);
          if (!v && input.versionIdMarker !== 'null')
            throw new ObjectError('InvalidArgument', 'Invalid version id specified', {
              extra: { ArgumentName: 'version-id-marker', ArgumentValue: input.versionIdMarker },
            });
          if (v) start = { key: v.key, after: v.seq };
        }
      }
      const page = await walkListing<ObjectRow>({
        prefix,
        ...(input.delimiter ? { delimiter: input.delimiter } : {}),
        maxKeys: input.maxKeys,
        ...(start ? { start } : {}),
        ...(input.keyMarker ? { marker: input.keyMarker } : {}),
        fetch: (cursor, limit) => fetchVersions(database.db, b.name, prefix, cursor, limit),
        after: (row) => ({ key: row.key, after: row.seq }),
      });
      count(b, 'A');
      const owner = { accountId: b.account_id, name: b.tenant_name };
      const entries = page.entries.map((r) => objectInfo(r, owner));
      return {
        entries,
        commonPrefixes: page.commonPrefixes,
        truncated: page.truncated,
        ...(page.last
          ? {
              last: {
                key: page.last.key,
                ...(page.last.entry ? { entry: objectInfo(page.last.entry, owner) } : {}),
              },
            }
          : {}),
        bucket: bucketInfo(b),
      };
    },

    // ---- multipart ----------------------------------------------------------------------------

    async createMultipartUpload(
      ctx: ObjectContext,
      input: { bucket: string; key: string } & WriteOptions,
    ): Promise<{ uploadId: string; checksumAlgorithm?: string; sse: SseInfo | null }> {
      const b = await bucketOrThrow(input.bucket);
      assertObjectKey(input.key);
      await allow(ctx, 's3:PutObject', b, input.key);
      checkWriteOptions(input);
      refusePublicAcl(b, input.acl);
      lockColumns(b, input.lock, now());
      // The upload's data key: every part is encrypted with it (each blob with its own nonces).
      const enc = await newEncryption(b, input.sse);
      const uploadId = newUploadId();
      await writes.tx(async (trx) => {
        await trx
          .insertInto('multipart_uploads')
          .values({
            upload_id: uploadId,
            bucket: b.name,
            key: input.key,
            initiator_tenant_id: ctx.principal?.tenantId ?? b.tenant_id,
            initiator: who(ctx),
            params: JSON.stringify({
              headers: input.headers ?? {},
              metadata: input.metadata ?? {},
              tags: input.tags ?? [],
              storageClass: input.storageClass,
              acl: input.acl,
              checksumAlgorithm: input.checksumAlgorithm,
              lock: input.lock,
              sse: enc?.stored,
              ownerTenantId: objectOwnerTenant(b, ctx.principal?.tenantId ?? b.tenant_id, input.acl),
            }),
            created_at: now(),
          })
          .execute();
        await appendAudit(
          trx,
          auditRow(ctx, b.tenant_id, 's3:CreateMultipartUpload', `arn:aws:s3:::${b.name}/${input.key}`, {
            uploadId,
          }),
        );
      });
      count(b, 'A');
      return {
        uploadId,
        sse: sseInfo(enc?.stored ?? null),
        ...(input.checksumAlgorithm ? { checksumAlgorithm: input.checksumAlgorithm } : {}),
      };
    },

    async uploadPart(
      ctx: ObjectContext,
      input: {
        bucket: string;
        key: string;
        uploadId: string;
        partNumber: number;
        body?: ObjectBody;
        copySource?: {
          bucket: string;
          key: string;
          versionId?: string;
          range?: RangeSpec;
          preconditions?: Preconditions;
          /** The source's SSE-C key headers. */
          sse?: SseHeaders;
        };
        /** SSE-C key headers (an SSE-C upload needs its key on every part). */
        sse?: SseHeaders;
      },
    ): Promise<{
      etag: string;
      checksums: Partial<Record<ChecksumAlgorithm, string>>;
      lastModified: number;
      sourceVersionId?: string;
      sse: SseInfo | null;
    }> {
      const b = await bucketOrThrow(input.bucket);
      await allow(ctx, 's3:PutObject', b, input.key);
      if (!Number.isInteger(input.partNumber) || input.partNumber < 1 || input.partNumber > MAX_PARTS)
        throw new ObjectError(
          'InvalidArgument',
          'Part number must be an integer between 1 and 10000, inclusive',
          {
            extra: { ArgumentName: 'partNumber', ArgumentValue: String(input.partNumber) },
          },
        );
      const upload = await uploadOrThrow(b, input.key, input.uploadId);
      const params = JSON.parse(upload.params) as { checksumAlgorithm?: ChecksumAlgorithm; sse?: StoredSse };
      const partKey = await dataKeyOf(params.sse ?? null, parseSseCustomer(input.sse ?? {}));
      let body = input.body;
      let sourceVersionId: string | undefined;
      if (input.copySource) {
        const src = input.copySource.bucket === b.name ? b : await bucketOrThrow(input.copySource.bucket);
        const srcRow = await resolveVersion(src, input.copySource.key, input.copySource.versionId);
        await allow(
          ctx,
          input.copySource.versionId ? 's3:GetObjectVersion' : 's3:GetObject',
          src,
          srcRow.key,
          srcRow,
        );
        if (input.copySource.preconditions) {
          try {
            checkReadPreconditions(input.copySource.preconditions, srcRow.etag, srcRow.last_modified);
          } catch (e) {
            if (e instanceof ObjectError && e.s3Code === 'NotModified')
              throw new ObjectError(
                'PreconditionFailed',
                'At least one of the pre-conditions you specified did not hold',
              );
            throw e;
          }
        }
        const range = input.copySource.range
          ? resolveCopyRange(input.copySource.range, srcRow.size)
          : undefined;
        const sourceKey = await dataKeyOf(
          parseStoredSse(srcRow.sse),
          parseSseCustomer(input.copySource.sse ?? {}),
        );
        const stream = await openBody(srcRow, range, sourceKey);
        body = { stream, expectedSize: range ? range.end - range.start + 1 : srcRow.size };
        sourceVersionId = src.versioning === '' ? undefined : srcRow.version_id;
      }
      if (!body) throw new YunhaiError('InternalError', 'uploadPart needs a body or a copy source');
      const { blobId, digests } = await ingest(body, params.checksumAlgorithm, partKey);
      if (blobId === null) throw new YunhaiError('InternalError', 'a part is always stored as a blob');
      const etag = digests.md5.toString('hex');
      const ts = now();
      let freed: string[] = [];
      try {
        await writes.tx(async (trx) => {
          const locked = await lockBucket(trx, database.dialect, b.name);
          if (!locked) throw noSuchBucket(b.name);
          const still = await trx
            .selectFrom('multipart_uploads')
            .select('upload_id')
            .where('upload_id', '=', input.uploadId)
            .executeTakeFirst();
          if (!still) throw noSuchUpload(input.uploadId);
          const old = await trx
            .selectFrom('upload_parts')
            .selectAll()
            .where('upload_id', '=', input.uploadId)
            .where('part_number', '=', input.partNumber)
            .executeTakeFirst();
          if (old) {
            freed = [old.blob_id];
            await trx
              .deleteFrom('upload_parts')
              .where('upload_id', '=', input.uploadId)
              .where('part_number', '=', input.partNumber)
              .execute();
          }
          await trx
            .insertInto('upload_parts')
            .values({
              upload_id: input.uploadId,
              part_number: input.partNumber,
              blob_id: blobId,
              size: digests.size,
              etag,
              checksums: JSON.stringify(digests.checksums),
              last_modified: ts,
            })
            .execute();
          const bytes = digests.size - (old?.size ?? 0);
          await updateBucketUsage(trx, locked, ts, { bytes, objects: 0 });
          if (bytes > 0) await reserveStorage(trx, locked.tenant_id, bytes);
          else await releaseQuota(trx, locked.tenant_id, 'storageBytes', -bytes);
        });
      } catch (e) {
        if (blobId) await blobs.delete(blobId);
        throw e;
      }
      await deleteBlobs(freed);
      count(b, 'A');
      return {
        etag,
        checksums: digests.checksums,
        lastModified: ts,
        sse: sseInfo(params.sse ?? null),
        ...(sourceVersionId ? { sourceVersionId } : {}),
      };
    },

    async completeMultipartUpload(
      ctx: ObjectContext,
      input: {
        bucket: string;
        key: string;
        uploadId: string;
        parts: { partNumber: number; etag: string; checksums?: Partial<Record<ChecksumAlgorithm, string>> }[];
        preconditions?: Preconditions;
        /** SSE-C key headers (an SSE-C upload needs its key to complete). */
        sse?: SseHeaders;
      },
    ): Promise<{
      etag: string;
      versionId: string | null;
      checksum?: { algorithm: string; value: string };
      sse: SseInfo | null;
    }> {
      const b = await bucketOrThrow(input.bucket);
      await allow(ctx, 's3:PutObject', b, input.key);
      let upload: Awaited<ReturnType<typeof uploadOrThrow>>;
      try {
        upload = await uploadOrThrow(b, input.key, input.uploadId);
      } catch (e) {
        // A retried completion of an upload this process completed answers the same result (S3 does).
        const done = recentlyCompleted.get(input.uploadId);
        if (done && done.bucket === b.name && done.key === input.key) return done.result;
        throw e;
      }
      if (input.parts.length === 0)
        throw new ObjectError(
          'MalformedXML',
          'The XML you provided was not well-formed or did not validate against our published schema',
        );
      for (let i = 1; i < input.parts.length; i++) {
        if (input.parts[i]!.partNumber <= input.parts[i - 1]!.partNumber)
          throw new ObjectError(
            'InvalidPartOrder',
            'The list of parts was not in ascending order. The parts list must be specified in order by part number.',
          );
      }
      const params = JSON.parse(upload.params) as {
        headers: ContentHeaders;
        metadata: Record<string, string>;
        tags: Tag[];
        storageClass?: string;
        acl?: string;
        checksumAlgorithm?: ChecksumAlgorithm;
        lock?: RequestedLock;
        sse?: StoredSse;
        ownerTenantId?: string;
      };
      const customer = parseSseCustomer(input.sse ?? {});
      if (params.sse?.mode === 'SSE-C' || customer) await dataKeyOf(params.sse ?? null, customer);
      let result: Awaited<ReturnType<typeof commitVersion>> | undefined;
      let etag = '';
      let unused: string[] = [];
      let checksum: { algorithm: string; value: string } | undefined;
      await writes.tx(async (trx) => {
        const stored = await trx
          .selectFrom('upload_parts')
          .selectAll()
          .where('upload_id', '=', input.uploadId)
          .orderBy('part_number')
          .execute();
        const still = await trx
          .selectFrom('multipart_uploads')
          .select('upload_id')
          .where('upload_id', '=', input.uploadId)
          .executeTakeFirst();
        if (!still) throw noSuchUpload(input.uploadId);
        const byNumber = new Map(stored.map((p) => [p.part_number, p]));
        const chosen = input.parts.map((p, i) => {
          const s = byNumber.get(p.partNumber);
          if (!s || !etagMatches(p.etag, s.etag))
            throw new ObjectError(
              'InvalidPart',
              "One or more of the specified parts could not be found.  The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.",
              { extra: { UploadId: input.uploadId, PartNumber: String(p.partNumber), ETag: p.etag } },
            );
          if (i < input.parts.length - 1 && s.size < minPartSize)
            throw new ObjectError(
              'EntityTooSmall',
              'Your proposed upload is smaller than the minimum allowed object size.',
              {
                extra: {
                  ProposedSize: String(s.size),
                  MinSizeAllowed: String(minPartSize),
                  PartNumber: String(p.partNumber),
                  ETag: s.etag,
                },
              },
            );
          return s;
        });
        const md5s = Buffer.concat(chosen.map((p) => Buffer.from(p.etag, 'hex')));
        etag = `${md5Hex(md5s)}-${chosen.length}`;
        const size = chosen.reduce((n, p) => n + p.size, 0);
        const alg = params.checksumAlgorithm;
        if (alg) {
          const h = createHash(alg === 'SHA1' ? 'sha1' : 'sha256');
          // Composite checksum: the checksum of the concatenated part checksums, '-N'.
          const raw = chosen.map((p) =>
            Buffer.from((JSON.parse(p.checksums) as Record<string, string>)[alg] ?? '', 'base64'),
          );
          if (alg === 'CRC32' || alg === 'CRC32C') {
            checksum = { algorithm: alg, value: `${checksumOf(alg, Buffer.concat(raw))}-${chosen.length}` };
          } else {
            h.update(Buffer.concat(raw));
            checksum = { algorithm: alg, value: `${h.digest('base64')}-${chosen.length}` };
          }
        }
        const chosenNumbers = new Set(chosen.map((p) => p.part_number));
        const leftovers = stored.filter((p) => !chosenNumbers.has(p.part_number));
        unused = leftovers.map((p) => p.blob_id);
        const leftoverBytes = leftovers.reduce((n, p) => n + p.size, 0);
        result = await commitVersion(
          trx,
          b,
          input.key,
          {
            delete_marker: 0,
            blob_id: null,
            size,
            etag,
            parts_count: chosen.length,
            ...contentColumns(params.headers),
            metadata: JSON.stringify(params.metadata ?? {}),
            tags: params.tags && params.tags.length > 0 ? JSON.stringify(params.tags) : null,
            storage_class: params.storageClass ?? 'STANDARD',
            checksum_algorithm: checksum?.algorithm ?? null,
            checksum_value: checksum?.value ?? null,
            checksum_type: checksum ? 'COMPOSITE' : null,
            sse: params.sse ? JSON.stringify(params.sse) : null,
            ...lockColumns(b, params.lock, now()),
            acl: params.acl ?? null,
            owner_tenant_id: params.ownerTenantId ?? upload.initiator_tenant_id,
            last_modified: now(),
          },
          {
            parts: chosen.map((p, i) => ({
              part_number: i + 1,
              blob_id: p.blob_id,
              size: p.size,
              etag: p.etag,
              checksum: p.checksums,
            })),
            preconditions: input.preconditions,
            // The parts' bytes were counted when they were uploaded; leftovers are freed now.
            bytesAlreadyCounted: size + leftoverBytes,
          },
        );
        await trx.deleteFrom('upload_parts').where('upload_id', '=', input.uploadId).execute();
        await trx.deleteFrom('multipart_uploads').where('upload_id', '=', input.uploadId).execute();
        await appendAudit(
          trx,
          auditRow(ctx, b.tenant_id, 's3:CompleteMultipartUpload', `arn:aws:s3:::${b.name}/${input.key}`, {
            uploadId: input.uploadId,
            versionId: result.versionId,
            size,
          }),
        );
      });
      await deleteBlobs([...unused, ...result!.freed]);
      count(b, 'A');
      const completed = {
        etag,
        versionId: result!.versionId === 'null' ? null : result!.versionId,
        sse: sseInfo(params.sse ?? null),
        ...(checksum ? { checksum } : {}),
      };
      if (recentlyCompleted.size >= 10_000) recentlyCompleted.delete(recentlyCompleted.keys().next().value!);
      recentlyCompleted.set(input.uploadId, { bucket: b.name, key: input.key, result: completed });
      return completed;
    },

    async abortMultipartUpload(ctx: ObjectContext, input: { bucket: string; key: string; uploadId: string }) {
      const b = await bucketOrThrow(input.bucket);
      await allow(ctx, 's3:AbortMultipartUpload', b, input.key);
      await uploadOrThrow(b, input.key, input.uploadId);
      await abortUpload(ctx, b, input.key, input.uploadId);
      count(b, 'B');
    },

    async listMultipartUploads(
      ctx: ObjectContext,
      input: {
        bucket: string;
        prefix?: string;
        delimiter?: string;
        maxUploads: number;
        keyMarker?: string;
        uploadIdMarker?: string;
      },
    ): Promise<ListPage<UploadInfo> & { bucket: BucketInfo }> {
      const b = await bucketOrThrow(input.bucket);
      await allow(ctx, 's3:ListBucketMultipartUploads', b);
      const prefix = input.prefix ?? '';
      let start: ListCursor | undefined;
      if (input.keyMarker) {
        start = { gt: input.keyMarker };
        if (input.uploadIdMarker) {
          const u = await database.db
            .selectFrom('multipart_uploads')
            .select(['key', 'created_at'])
            .where('upload_id', '=', input.uploadIdMarker)
            .executeTakeFirst();
          if (u && u.key === input.keyMarker) start = { key: u.key, after: u.created_at };
        }
      }
      type Row = Awaited<ReturnType<typeof fetchUploads>>[number];
      const page = await walkListing<Row>({
        prefix,
        ...(input.delimiter ? { delimiter: input.delimiter } : {}),
        maxKeys: input.maxUploads,
        ...(start ? { start } : {}),
        ...(input.keyMarker ? { marker: input.keyMarker } : {}),
        fetch: (cursor, limit) => fetchUploads(database.db, b.name, prefix, cursor, limit),
        after: (row) => ({ key: row.key, after: row.created_at }),
      });
      count(b, 'A');
      // Who started each upload (another tenant may write to a public-write bucket).
      const owners = new Map<string, { accountId: string; name: string }>();
      for (const u of [...page.entries, ...(page.last?.entry ? [page.last.entry] : [])])
        if (!owners.has(u.initiator_tenant_id))
          owners.set(u.initiator_tenant_id, await ownerOf({ owner_tenant_id: u.initiator_tenant_id }, b));
      const view = (u: Row): UploadInfo => {
        const params = JSON.parse(u.params) as { storageClass?: string };
        const owner = owners.get(u.initiator_tenant_id) ?? { accountId: b.account_id, name: b.tenant_name };
        return {
          uploadId: u.upload_id,
          key: u.key,
          initiated: u.created_at,
          storageClass: params.storageClass ?? 'STANDARD',
          ownerAccountId: owner.accountId,
          ownerName: owner.name,
        };
      };
      return {
        entries: page.entries.map(view),
        commonPrefixes: page.commonPrefixes,
        truncated: page.truncated,
        ...(page.last
          ? { last: { key: page.last.key, ...(page.last.entry ? { entry: view(page.last.entry) } : {}) } }
          : {}),
        bucket: bucketInfo(b),
      };
    },

    async listParts(
      ctx: ObjectContext,
      input: { bucket: string; key: string; uploadId: string; maxParts: number; partNumberMarker?: number },
    ) {
      const b = await bucketOrThrow(input.bucket);
      await allow(ctx, 's3:ListMultipartUploadParts', b, input.key);
      const upload = await uploadOrThrow(b, input.key, input.uploadId);
      const rows = await database.db
        .selectFrom('upload_parts')
        .selectAll()
        .where('upload_id', '=', input.uploadId)
        .where('part_number', '>', input.partNumberMarker ?? 0)
        .orderBy('part_number')
        .limit(input.maxParts + 1)
        .execute();
      const truncated = rows.length > input.maxParts;
      const parts: PartInfo[] = rows.slice(0, input.maxParts).map((p) => ({
        partNumber: p.part_number,
        size: p.size,
        etag: p.etag,
        lastModified: p.last_modified,
        checksums: JSON.parse(p.checksums) as Record<string, string>,
      }));
      count(b, 'B');
      const params = JSON.parse(upload.params) as {
        storageClass?: string;
        checksumAlgorithm?: string;
        ownerTenantId?: string;
      };
      const owner = await ownerOf({ owner_tenant_id: params.ownerTenantId ?? upload.initiator_tenant_id }, b);
      return {
        parts,
        truncated,
        nextPartNumberMarker: parts.length > 0 ? parts[parts.length - 1]!.partNumber : 0,
        storageClass: params.storageClass ?? 'STANDARD',
        checksumAlgorithm: params.checksumAlgorithm,
        initiator: upload.initiator,
        owner,
      };
    },

    // ---- housekeeping -------------------------------------------------------------------------

    /**
     * Deletes blobs no row references that were written before `writtenBefore`, and temp files of
     * puts that never finished. At start-up the cut-off is the start time (nothing of ours is in
     * flight yet); the periodic sweep uses a grace period so it never races a put that is between
     * its blob and its commit.
     */
    async sweepOrphans(writtenBefore: number): Promise<{ blobs: number; temps: number }> {
      const temps = await blobs.removeStaleTemps(writtenBefore);
      let removed = 0;
      let batch: string[] = [];
      const check = async () => {
        const live = await referencedBlobs(database.db, batch);
        for (const id of batch) {
          if (!live.has(id)) {
            await blobs.delete(id);
            removed++;
          }
        }
        batch = [];
      };
      for await (const id of blobs.list({ writtenBefore })) {
        batch.push(id);
        if (batch.length >= 500) await check();
      }
      await check();
      if (removed > 0 || temps > 0) deps.logger?.info({ blobs: removed, temps }, 'swept orphaned blobs');
      return { blobs: removed, temps };
    },
  };

  // ---- internals that need the service's closure ------------------------------------------------

  async function uploadOrThrow(b: BucketRow, key: string, uploadId: string) {
    const u = await database.db
      .selectFrom('multipart_uploads')
      .selectAll()
      .where('upload_id', '=', uploadId)
      .executeTakeFirst();
    if (!u || u.bucket !== b.name || u.key !== key) throw noSuchUpload(uploadId);
    return u;
  }

  async function partRange(row: ObjectRow, partNumber: number) {
    if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > MAX_PARTS)
      throw new ObjectError(
        'InvalidArgument',
        'Part number must be an integer between 1 and 10000, inclusive',
      );
    if (row.parts_count === null) {
      if (partNumber !== 1)
        throw new ObjectError('InvalidPart', 'The requested partnumber is not satisfiable', {
          extra: { PartNumber: String(partNumber) },
        });
      return { start: 0, end: Math.max(0, row.size - 1), total: row.size };
    }
    const parts = await objectParts(database.db, row.id);
    let offset = 0;
    for (const p of parts) {
      if (p.part_number === partNumber) return { start: offset, end: offset + p.size - 1, total: row.size };
      offset += p.size;
    }
    throw new ObjectError('InvalidPart', 'The requested partnumber is not satisfiable', {
      extra: { PartNumber: String(partNumber) },
    });
  }

  /** Removes an upload and its parts (AbortMultipartUpload, and the lifecycle loop); the caller authorised it. */
  async function abortUpload(ctx: ObjectContext, b: BucketRow, key: string, uploadId: string) {
    const freed = await writes.tx(async (trx) => {
      const locked = await lockBucket(trx, database.dialect, b.name);
      if (!locked) throw noSuchBucket(b.name);
      const parts = await trx
        .selectFrom('upload_parts')
        .selectAll()
        .where('upload_id', '=', uploadId)
        .execute();
      const gone = await trx
        .deleteFrom('multipart_uploads')
        .where('upload_id', '=', uploadId)
        .executeTakeFirst();
      if (Number(gone.numDeletedRows) === 0) throw noSuchUpload(uploadId);
      await trx.deleteFrom('upload_parts').where('upload_id', '=', uploadId).execute();
      const bytes = parts.reduce((n, p) => n + p.size, 0);
      await updateBucketUsage(trx, locked, now(), { bytes: -bytes, objects: 0 });
      await releaseQuota(trx, locked.tenant_id, 'storageBytes', bytes);
      await appendAudit(
        trx,
        auditRow(ctx, b.tenant_id, 's3:AbortMultipartUpload', `arn:aws:s3:::${b.name}/${key}`, {
          uploadId: uploadId,
        }),
      );
      return parts.map((p) => p.blob_id);
    });
    await deleteBlobs(freed);
  }

  /** x-amz-bypass-governance-retention is honoured for the bucket's owner tenant when allowed s3:BypassGovernanceRetention. */
  async function mayBypass(ctx: ObjectContext, b: BucketRow): Promise<boolean> {
    if (!ctx.principal || ctx.principal.tenantId !== b.tenant_id) return false;
    try {
      await allow(ctx, 's3:BypassGovernanceRetention', b);
      return true;
    } catch {
      return false;
    }
  }

  function requireLockBucket(b: BucketRow) {
    if (b.object_lock_enabled !== 1)
      throw new ObjectError('InvalidRequest', 'Bucket is missing Object Lock Configuration');
  }

  async function deleteOne(
    ctx: ObjectContext,
    b: BucketRow,
    key: string,
    versionId: string | undefined,
    preconditions?: Preconditions,
    bypassGovernance = false,
  ): Promise<{ versionId?: string; deleteMarker: boolean }> {
    let freed: string[] = [];
    const r = await writes.tx(async (trx) => {
      const locked = await lockBucket(trx, database.dialect, b.name);
      if (!locked) throw noSuchBucket(b.name);
      const ts = now();
      if (versionId !== undefined) {
        const row = await findVersion(trx, b.name, key, versionId);
        if (!row) {
          if (versionId !== 'null' && !/^[A-Za-z0-9_-]{32}$/.test(versionId))
            throw new ObjectError('InvalidArgument', 'Invalid version id specified', {
              extra: { ArgumentName: 'versionId', ArgumentValue: versionId },
            });
          return { versionId, deleteMarker: false };
        }
        if (preconditions?.ifMatch !== undefined && !etagMatches(preconditions.ifMatch, row.etag))
          throw new ObjectError(
            'PreconditionFailed',
            'At least one of the pre-conditions you specified did not hold',
          );
        if (deleteBlockedBy(versionLock(row), ts, bypassGovernance)) throw lockedVersion();
        freed = await deleteVersionRow(trx, row);
        if (row.is_latest === 1) await promoteNewest(trx, b.name, key);
        await updateBucketUsage(trx, locked, ts, { bytes: -row.size, objects: -1 });
        await releaseQuota(trx, locked.tenant_id, 'storageBytes', row.size);
        await appendAudit(
          trx,
          auditRow(ctx, b.tenant_id, 's3:DeleteObjectVersion', `arn:aws:s3:::${b.name}/${key}`, {
            versionId,
          }),
        );
        return { versionId, deleteMarker: row.delete_marker === 1 };
      }
      const current = await latestVersion(trx, b.name, key);
      if (preconditions?.ifMatch !== undefined) {
        if (!current || current.delete_marker === 1) throw noSuchKey(key);
        if (!etagMatches(preconditions.ifMatch, current.etag))
          throw new ObjectError(
            'PreconditionFailed',
            'At least one of the pre-conditions you specified did not hold',
          );
      }
      if (locked.versioning === '') {
        if (!current) return { deleteMarker: false };
        freed = await deleteVersionRow(trx, current);
        await updateBucketUsage(trx, locked, ts, { bytes: -current.size, objects: -1 });
        await releaseQuota(trx, locked.tenant_id, 'storageBytes', current.size);
        await appendAudit(
          trx,
          auditRow(ctx, b.tenant_id, 's3:DeleteObject', `arn:aws:s3:::${b.name}/${key}`),
        );
        return { deleteMarker: false };
      }
      // Versioned: a delete marker becomes the latest version ('null' when suspended, replacing the null version).
      let bytes = 0;
      let objects = 1;
      const markerId = locked.versioning === 'Enabled' ? newVersionId() : 'null';
      if (markerId === 'null') {
        const old = await findVersion(trx, b.name, key, 'null');
        if (old) {
          freed = await deleteVersionRow(trx, old);
          bytes -= old.size;
          objects -= 1;
        }
      }
      if (current)
        await trx.updateTable('objects').set({ is_latest: 0 }).where('id', '=', current.id).execute();
      await trx
        .insertInto('objects')
        .values({
          id: newObjectId(),
          bucket: b.name,
          key,
          version_id: markerId,
          seq: nextSeq(),
          is_latest: 1,
          delete_marker: 1,
          blob_id: null,
          size: 0,
          etag: '',
          parts_count: null,
          ...contentColumns(),
          metadata: '{}',
          tags: null,
          storage_class: 'STANDARD',
          checksum_algorithm: null,
          checksum_value: null,
          checksum_type: null,
          sse: null,
          lock_mode: null,
          lock_until: null,
          legal_hold: 0,
          acl: null,
          owner_tenant_id: ctx.principal?.tenantId ?? b.tenant_id,
          last_modified: ts,
        })
        .execute();
      await updateBucketUsage(trx, locked, ts, { bytes, objects });
      if (bytes < 0) await releaseQuota(trx, locked.tenant_id, 'storageBytes', -bytes);
      await appendAudit(
        trx,
        auditRow(ctx, b.tenant_id, 's3:DeleteObject', `arn:aws:s3:::${b.name}/${key}`, {
          deleteMarker: markerId,
        }),
      );
      return { versionId: markerId, deleteMarker: true };
    });
    await deleteBlobs(freed);
    return r;
  }
}

export type ObjectService = ReturnType<typeof createObjectService>;

export type BucketConfigField =
  | 'public_access_block'
  | 'logging'
  | 'policy'
  | 'cors'
  | 'lifecycle'
  | 'tagging'
  | 'encryption'
  | 'object_lock'
  | 'ownership'
  | 'acl';

const BUCKET_CONFIG_ACTIONS: Record<
  BucketConfigField,
  {
    get: S3Action;
    put: S3Action;
    putName: string;
    deleteName: string;
    /** What bucket policies match when the platform has no action of this name (get/put use a peer's role level). */
    policyGet?: string;
    policyPut?: string;
  }
> = {
  public_access_block: {
    get: 's3:GetBucketAcl',
    put: 's3:PutBucketAcl',
    putName: 's3:PutBucketPublicAccessBlock',
    deleteName: 's3:DeleteBucketPublicAccessBlock',
    policyGet: 's3:GetBucketPublicAccessBlock',
    policyPut: 's3:PutBucketPublicAccessBlock',
  },
  logging: {
    get: 's3:GetBucketTagging',
    put: 's3:PutBucketTagging',
    putName: 's3:PutBucketLogging',
    deleteName: 's3:PutBucketLogging',
    policyGet: 's3:GetBucketLogging',
    policyPut: 's3:PutBucketLogging',
  },
  policy: {
    get: 's3:GetBucketPolicy',
    put: 's3:PutBucketPolicy',
    putName: 's3:PutBucketPolicy',
    deleteName: 's3:DeleteBucketPolicy',
  },
  cors: {
    get: 's3:GetBucketCORS',
    put: 's3:PutBucketCORS',
    putName: 's3:PutBucketCors',
    deleteName: 's3:DeleteBucketCors',
  },
  lifecycle: {
    get: 's3:GetLifecycleConfiguration',
    put: 's3:PutLifecycleConfiguration',
    putName: 's3:PutBucketLifecycleConfiguration',
    deleteName: 's3:DeleteBucketLifecycle',
  },
  tagging: {
    get: 's3:GetBucketTagging',
    put: 's3:PutBucketTagging',
    putName: 's3:PutBucketTagging',
    deleteName: 's3:DeleteBucketTagging',
  },
  encryption: {
    get: 's3:GetEncryptionConfiguration',
    put: 's3:PutEncryptionConfiguration',
    putName: 's3:PutBucketEncryption',
    deleteName: 's3:DeleteBucketEncryption',
  },
  object_lock: {
    get: 's3:GetBucketObjectLockConfiguration',
    put: 's3:PutBucketObjectLockConfiguration',
    putName: 's3:PutObjectLockConfiguration',
    deleteName: 's3:DeleteObjectLockConfiguration',
  },
  ownership: {
    get: 's3:GetBucketOwnershipControls',
    put: 's3:PutBucketOwnershipControls',
    putName: 's3:PutBucketOwnershipControls',
    deleteName: 's3:DeleteBucketOwnershipControls',
  },
  acl: {
    get: 's3:GetBucketAcl',
    put: 's3:PutBucketAcl',
    putName: 's3:PutBucketAcl',
    deleteName: 's3:PutBucketAcl',
  },
};

/** A parsed Range header: `bytes=a-b`, `bytes=a-` or `bytes=-n`. */
export type RangeSpec = { start: number; end?: number } | { suffix: number };

const noSuchUpload = (uploadId: string) =>
  new ObjectError(
    'NoSuchUpload',
    'The specified multipart upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.',
    { extra: { UploadId: uploadId } },
  );

/** Resolves a Range against an object size; unsatisfiable ranges are 416 InvalidRange. */
export function resolveRange(r: RangeSpec, size: number): { start: number; end: number; total: number } {
  const invalid = () =>
    new ObjectError('InvalidRange', 'The requested range is not satisfiable', {
      extra: {
        RangeRequested: 'start' in r ? `bytes=${r.start}-${r.end ?? ''}` : `bytes=-${r.suffix}`,
        ActualObjectSize: String(size),
      },
      headers: { 'content-range': `bytes */${size}` },
    });
  if ('suffix' in r) {
    if (r.suffix === 0 || size === 0) throw invalid();
    return { start: Math.max(0, size - r.suffix), end: size - 1, total: size };
  }
  if (r.start >= size) throw invalid();
  return { start: r.start, end: Math.min(r.end ?? size - 1, size - 1), total: size };
}

/** UploadPartCopy ranges must lie inside the source (no clamping, unlike GET). */
function resolveCopyRange(r: RangeSpec, size: number) {
  // A well-formed range past the end of the source is InvalidRange (416), as S3 answers.
  if (!('suffix' in r) && r.end !== undefined && r.end >= r.start && r.end >= size)
    throw new ObjectError('InvalidRange', 'The requested range is not satisfiable', {
      extra: { RangeRequested: `bytes=${r.start}-${r.end}`, ActualObjectSize: String(size) },
    });
  if ('suffix' in r || r.end === undefined || r.end < r.start || r.end >= size)
    throw new ObjectError(
      'InvalidArgument',
      'Range specified is not valid for source object of size: ' + size,
      {
        extra: { ArgumentName: 'x-amz-copy-source-range' },
      },
    );
  return { start: r.start, end: r.end };
}
