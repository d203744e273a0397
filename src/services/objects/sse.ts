/**
 * Server-side encryption of object bodies: SSE-S3 (`AES256`), SSE-KMS as a platform-managed key
 * (`aws:kms` with a key id the tenant names; the id is recorded and echoed, the key material is
 * the tenant's) and SSE-C (customer-provided keys).
 *
 * Keys: every tenant has one random 256-bit key, stored sealed by the platform master key
 * (`object_sse_keys`, migration 0008_objects_sse). Every encrypted object version (or multipart
 * upload) gets its own random data key, stored in the version row wrapped (AES-256-GCM) by the
 * tenant key. SSE-C data keys are never stored: they are derived from the customer's key and a
 * per-object salt (HMAC-SHA256), and only the key's MD5 is kept to tell a wrong key early.
 *
 * Blobs: an encrypted blob is an 8-byte random nonce prefix followed by sse-chunks' sealed
 * 64 KiB chunks, so every blob (a body or one multipart part) has its own nonces under the data
 * key, and a range read decrypts only the chunks it touches.
 */
import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Sealer } from '../../platform/crypto/sealer.js';
import type { Database } from '../../platform/db/database.js';
import { childNamed, childrenNamed, childText, parseXml, XmlParseError } from '../../platform/xml/parser.js';
import type { BlobStore } from './blob-store.js';
import { ObjectError } from './errors.js';
import { decryptRange, encryptChunks } from './sse-chunks.js';

export const SSE_PREFIX_BYTES = 8;

/** The SSE headers of a request, as sent (validated by parseSseRequest / parseSseCustomer). */
export interface SseHeaders {
  /** x-amz-server-side-encryption */
  algorithm?: string;
  /** x-amz-server-side-encryption-aws-kms-key-id */
  kmsKeyId?: string;
  /** x-amz-server-side-encryption-customer-algorithm / -key / -key-MD5 */
  customerAlgorithm?: string;
  customerKey?: string;
  customerKeyMd5?: string;
}

export interface CustomerKey {
  key: Buffer;
  /** base64 MD5 of the key, as the client sends it. */
  md5: string;
}

export type SseSpec =
  | { mode: 'AES256' }
  | { mode: 'aws:kms'; kmsKeyId: string }
  | { mode: 'SSE-C'; customer: CustomerKey };

/** What a version row (objects.sse) or an upload's params keep. */
export interface StoredSse {
  mode: 'AES256' | 'aws:kms' | 'SSE-C';
  kmsKeyId?: string;
  /** SSE-C: base64 MD5 of the customer key. */
  keyMd5?: string;
  /** SSE-C: base64 salt the data key is derived with. */
  salt?: string;
  /** SSE-S3/KMS: the data key wrapped by the tenant key (base64url iv.ct.tag). */
  wrapped?: string;
  /** Tenant whose key wraps the data key. */
  tenantId?: string;
}

/** What clients see of an object's encryption (response headers). */
export interface SseInfo {
  mode: StoredSse['mode'];
  kmsKeyId?: string;
  keyMd5?: string;
}

const invalid = (message: string, name?: string, value?: string) =>
  new ObjectError('InvalidArgument', message, {
    ...(name !== undefined ? { extra: { ArgumentName: name, ArgumentValue: value ?? '' } } : {}),
  });

/**
 * The SSE-C key headers (`prefix` '' or 'copy-source-'): undefined when none is present; throws
 * InvalidArgument for an incomplete set, another algorithm, a key that is not 256 bits or an MD5
 * that does not match the key.
 */
export function parseSseCustomer(h: SseHeaders): CustomerKey | undefined {
  const { customerAlgorithm: alg, customerKey: key, customerKeyMd5: md5 } = h;
  if (alg === undefined && key === undefined && md5 === undefined) return undefined;
  if (alg === undefined)
    throw invalid(
      'Requests specifying Server Side Encryption with Customer provided keys must provide a valid encryption algorithm.',
      'x-amz-server-side-encryption-customer-algorithm',
    );
  if (alg !== 'AES256')
    throw invalid(
      'The encryption algorithm specified is not valid.',
      'x-amz-server-side-encryption-customer-algorithm',
      alg,
    );
  if (key === undefined)
    throw invalid(
      'Requests specifying Server Side Encryption with Customer provided keys must provide an appropriate secret key.',
      'x-amz-server-side-encryption-customer-key',
    );
  const raw = /^[A-Za-z0-9+/]+={0,2}$/.test(key.trim()) ? Buffer.from(key.trim(), 'base64') : Buffer.alloc(0);
  if (raw.length !== 32)
    throw invalid(
      'The secret key was invalid for the specified algorithm.',
      'x-amz-server-side-encryption-customer-key',
    );
  if (md5 === undefined)
    throw invalid(
      'Requests specifying Server Side Encryption with Customer provided keys must provide the client calculated MD5 of the secret key.',
      'x-amz-server-side-encryption-customer-key-MD5',
    );
  const actual = createHash('md5').update(raw).digest('base64');
  if (md5.trim() !== actual)
    throw invalid(
      'The calculated MD5 hash of the key did not match the hash that was provided.',
      'x-amz-server-side-encryption-customer-key-MD5',
    );
  return { key: raw, md5: actual };
}

/** The encryption a write asks for in its headers (undefined: none asked, the bucket default applies). */
export function parseSseRequest(h: SseHeaders): SseSpec | undefined {
  const customer = parseSseCustomer(h);
  const alg = h.algorithm?.trim();
  if (customer) {
    if (alg !== undefined || h.kmsKeyId !== undefined)
      throw invalid(
        'Server Side Encryption with Customer provided key is incompatible with the encryption method specified',
        'x-amz-server-side-encryption',
        alg ?? '',
      );
    return { mode: 'SSE-C', customer };
  }
  if (alg === undefined) {
    if (h.kmsKeyId !== undefined)
      throw invalid(
        'x-amz-server-side-encryption-aws-kms-key-id is only valid with x-amz-server-side-encryption: aws:kms',
        'x-amz-server-side-encryption-aws-kms-key-id',
        h.kmsKeyId,
      );
    return undefined;
  }
  if (alg === 'AES256') {
    if (h.kmsKeyId !== undefined)
      throw invalid(
        'Server Side Encryption with AWS KMS managed key requires HTTP header x-amz-server-side-encryption : aws:kms',
        'x-amz-server-side-encryption-aws-kms-key-id',
        h.kmsKeyId,
      );
    return { mode: 'AES256' };
  }
  if (alg === 'aws:kms') {
    const id = h.kmsKeyId?.trim();
    if (!id)
      throw invalid(
        'Server Side Encryption with KMS requires a key id (x-amz-server-side-encryption-aws-kms-key-id).',
        'x-amz-server-side-encryption-aws-kms-key-id',
      );
    validKmsKeyId(id);
    return { mode: 'aws:kms', kmsKeyId: id };
  }
  throw invalid('The encryption method specified is not supported', 'x-amz-server-side-encryption', alg);
}

function validKmsKeyId(id: string) {
  if (id.length > 2048 || !/^[\x21-\x7e]+$/.test(id))
    throw invalid('Invalid KMS key id.', 'x-amz-server-side-encryption-aws-kms-key-id', id);
}

/** A bucket's default encryption (ServerSideEncryptionConfiguration), validated. */
export function parseEncryptionConfig(xml: string): SseSpec | undefined {
  let root: ReturnType<typeof parseXml>;
  try {
    root = parseXml(xml);
  } catch (e) {
    if (e instanceof XmlParseError) throw malformed();
    throw e;
  }
  if (root.name !== 'ServerSideEncryptionConfiguration') throw malformed();
  const rules = childrenNamed(root, 'Rule');
  if (rules.length === 0) throw malformed();
  let spec: SseSpec | undefined;
  for (const rule of rules) {
    const d = childNamed(rule, 'ApplyServerSideEncryptionByDefault');
    if (!d) continue;
    const alg = childText(d, 'SSEAlgorithm')?.trim();
    const keyId = childText(d, 'KMSMasterKeyID')?.trim();
    if (alg === 'AES256') {
      if (keyId) throw malformed();
      spec = { mode: 'AES256' };
    } else if (alg === 'aws:kms' || alg === 'aws:kms:dsse') {
      const id = keyId || 'aws/s3';
      validKmsKeyId(id);
      spec = { mode: 'aws:kms', kmsKeyId: id };
    } else throw malformed();
  }
  return spec;
}

/** The bucket default from the stored document (undefined when none or unreadable). */
export function storedEncryptionDefault(xml: string | null): SseSpec | undefined {
  if (!xml) return undefined;
  try {
    return parseEncryptionConfig(xml);
  } catch {
    return undefined;
  }
}

const malformed = () =>
  new ObjectError(
    'MalformedXML',
    'The XML you provided was not well-formed or did not validate against our published schema',
  );

export const sseInfo = (s: StoredSse | null): SseInfo | null =>
  s
    ? {
        mode: s.mode,
        ...(s.kmsKeyId !== undefined ? { kmsKeyId: s.kmsKeyId } : {}),
        ...(s.keyMd5 !== undefined ? { keyMd5: s.keyMd5 } : {}),
      }
    : null;

/** Response headers that describe an object's encryption, as AWS sends them. */
export function sseResponseHeaders(s: SseInfo | null | undefined): Record<string, string> {
  if (!s) return {};
  if (s.mode === 'SSE-C')
    return {
      'x-amz-server-side-encryption-customer-algorithm': 'AES256',
      'x-amz-server-side-encryption-customer-key-md5': s.keyMd5 ?? '',
    };
  return {
    'x-amz-server-side-encryption': s.mode,
    ...(s.mode === 'aws:kms' && s.kmsKeyId
      ? { 'x-amz-server-side-encryption-aws-kms-key-id': s.kmsKeyId }
      : {}),
  };
}

export const parseStoredSse = (text: string | null | undefined): StoredSse | null =>
  text ? (JSON.parse(text) as StoredSse) : null;

const wrongKey = () =>
  new ObjectError(
    'InvalidRequest',
    'The provided encryption parameters did not match the ones used originally.',
  );

// ---- keys ---------------------------------------------------------------------------------------

function wrap(kek: Buffer, dataKey: Buffer, aad: string): string {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', kek, iv);
  c.setAAD(Buffer.from(aad));
  const ct = Buffer.concat([c.update(dataKey), c.final()]);
  return [iv, ct, c.getAuthTag()].map((b) => b.toString('base64url')).join('.');
}

function unwrap(kek: Buffer, wrapped: string, aad: string): Buffer {
  const [iv, ct, tag] = wrapped.split('.');
  if (iv === undefined || ct === undefined || tag === undefined)
    throw new ObjectError('InternalError', 'The stored data key has an unknown format.');
  try {
    const d = createDecipheriv('aes-256-gcm', kek, Buffer.from(iv, 'base64url'));
    d.setAAD(Buffer.from(aad));
    d.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([d.update(Buffer.from(ct, 'base64url')), d.final()]);
  } catch {
    throw new ObjectError('InternalError', 'The stored data key failed authentication.');
  }
}

const deriveCustomerKey = (customer: Buffer, salt: Buffer) =>
  createHmac('sha256', customer).update('yunhai-sse-c\0').update(salt).digest();

export interface SseKeys {
  /** A fresh data key for a new version or upload, and what to store about it. */
  newKey(spec: SseSpec, tenantId: string): Promise<{ key: Buffer; stored: StoredSse }>;
  /**
   * The data key of stored encryption. SSE-C needs the customer's key (InvalidRequest when it is
   * missing or another one); the other modes refuse customer keys.
   */
  openKey(stored: StoredSse, customer: CustomerKey | undefined): Promise<Buffer>;
}

/**
 * Tenant keys live in `object_sse_keys`, sealed by the platform master key; they are cached
 * unsealed in memory once read. `sealer` undefined: SSE-S3/KMS answer NotImplemented (SSE-C still
 * works, it needs no stored key).
 */
export function createSseKeys(database: Database, sealer: Sealer | undefined): SseKeys {
  const cache = new Map<string, Buffer>();
  const context = (tenantId: string) => `object-sse-tenant-key:${tenantId}`;

  async function tenantKey(tenantId: string): Promise<Buffer> {
    const hit = cache.get(tenantId);
    if (hit) return hit;
    if (!sealer)
      throw new ObjectError('NotImplemented', 'Server-side encryption needs the platform master key.');
    const read = async () =>
      database.db
        .selectFrom('object_sse_keys')
        .select('sealed_key')
        .where('tenant_id', '=', tenantId)
        .executeTakeFirst();
    let row = await read();
    if (!row) {
      const sealed = sealer.seal(randomBytes(32), context(tenantId));
      await database.db
        .insertInto('object_sse_keys')
        .values({ tenant_id: tenantId, sealed_key: sealed, created_at: Date.now() })
        .onConflict((oc) => oc.column('tenant_id').doNothing())
        .execute();
      row = await read();
      if (!row) throw new ObjectError('InternalError', 'The tenant encryption key could not be stored.');
    }
    const key = sealer.open(row.sealed_key, context(tenantId));
    cache.set(tenantId, key);
    return key;
  }

  const aadOf = (s: Pick<StoredSse, 'mode' | 'kmsKeyId'>) => `${s.mode}\0${s.kmsKeyId ?? ''}`;

  return {
    async newKey(spec, tenantId) {
      if (spec.mode === 'SSE-C') {
        const salt = randomBytes(16);
        return {
          key: deriveCustomerKey(spec.customer.key, salt),
          stored: { mode: 'SSE-C', keyMd5: spec.customer.md5, salt: salt.toString('base64') },
        };
      }
      const key = randomBytes(32);
      const meta =
        spec.mode === 'aws:kms' ? { mode: spec.mode, kmsKeyId: spec.kmsKeyId } : { mode: spec.mode };
      const kek = await tenantKey(tenantId);
      return { key, stored: { ...meta, tenantId, wrapped: wrap(kek, key, aadOf(meta)) } };
    },

    async openKey(stored, customer) {
      if (stored.mode === 'SSE-C') {
        if (!customer)
          throw new ObjectError(
            'InvalidRequest',
            'The object was stored using a form of Server Side Encryption. The correct parameters must be provided to retrieve the object.',
          );
        if (customer.md5 !== stored.keyMd5) throw wrongKey();
        return deriveCustomerKey(customer.key, Buffer.from(stored.salt ?? '', 'base64'));
      }
      if (customer)
        throw new ObjectError(
          'InvalidRequest',
          'The encryption parameters are not applicable to this object.',
        );
      if (!stored.wrapped || !stored.tenantId)
        throw new ObjectError('InternalError', 'The stored encryption has no data key.');
      return unwrap(await tenantKey(stored.tenantId), stored.wrapped, aadOf(stored));
    },
  };
}

// ---- blobs ----------------------------------------------------------------------------------------

/** The stored form of a body: a random nonce prefix, then the sealed chunks. */
export async function* encryptBlob(source: AsyncIterable<Uint8Array>, key: Buffer): AsyncGenerator<Buffer> {
  const prefix = randomBytes(SSE_PREFIX_BYTES);
  yield prefix;
  yield* encryptChunks(source, key, prefix);
}

async function readAll(s: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const p of s) parts.push(Buffer.from(p));
  return Buffer.concat(parts);
}

/**
 * Plaintext bytes `start..end` (inclusive) of an encrypted blob holding `plainSize` bytes. The
 * prefix is read (and the first chunk opened) before this resolves, so a missing blob or a wrong
 * key fails before any response is sent.
 */
export async function openEncryptedBlob(
  blobs: BlobStore,
  blobId: string,
  key: Buffer,
  plainSize: number,
  start: number,
  end: number,
): Promise<Readable> {
  const prefix = await readAll(await blobs.get(blobId, { start: 0, end: SSE_PREFIX_BYTES - 1 }));
  return decrypted(
    prefix,
    (from, to) => {
      const p = blobs.get(blobId, { start: from + SSE_PREFIX_BYTES, end: to + SSE_PREFIX_BYTES });
      return (async function* () {
        yield* await p;
      })();
    },
    key,
    plainSize,
    start,
    end,
  );
}

/** As openEncryptedBlob, for a stored form held in memory (an inline body). */
export function openEncryptedBytes(
  stored: Buffer,
  key: Buffer,
  plainSize: number,
  start: number,
  end: number,
): Promise<Readable> {
  return decrypted(
    stored.subarray(0, SSE_PREFIX_BYTES),
    (from, to) =>
      (async function* () {
        yield stored.subarray(from + SSE_PREFIX_BYTES, to + SSE_PREFIX_BYTES + 1);
      })(),
    key,
    plainSize,
    start,
    end,
  );
}

async function decrypted(
  prefix: Buffer,
  read: (from: number, to: number) => AsyncIterable<Uint8Array>,
  key: Buffer,
  plainSize: number,
  start: number,
  end: number,
): Promise<Readable> {
  if (prefix.length !== SSE_PREFIX_BYTES)
    throw new ObjectError('InternalError', 'Encrypted body is truncated.');
  const gen = decryptRange(read, key, prefix, plainSize, start, end);
  // Pull the first piece now: authentication failures surface here rather than mid-response.
  const first = await gen.next();
  return Readable.from(
    (async function* () {
      if (!first.done) yield first.value;
      yield* gen;
    })(),
    { objectMode: false },
  );
}
