import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSealer } from '../../platform/crypto/sealer.js';
import { type Database, migrate, openDatabase } from '../../platform/db/database.js';
import { ObjectError } from './errors.js';
import { createFsBlobStore } from './fs-blob-store.js';
import {
  createSseKeys,
  encryptBlob,
  openEncryptedBlob,
  parseEncryptionConfig,
  parseSseCustomer,
  parseSseRequest,
  SSE_PREFIX_BYTES,
  sseResponseHeaders,
} from './sse.js';
import { encryptedSize, SSE_CHUNK } from './sse-chunks.js';

const KEY = 'pO3upElrwuEXSoFwCfnZPdSsmt/xWeFa0N9KgDijwVs=';
const KEY_MD5 = 'DWygnHRtgiJ77HCm+1rvHw==';
const OTHER = '6b+WOZ1T3cqZMxgThRcXAQBrS5mXKdDUphvpxptl9/4=';
const OTHER_MD5 = 'arxBvwY2V4SiOne6yppVPQ==';

const code = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    return e instanceof ObjectError ? e.s3Code : String(e);
  }
  return 'no error';
};

async function read(s: AsyncIterable<Uint8Array>) {
  const parts: Buffer[] = [];
  for await (const p of s) parts.push(Buffer.from(p));
  return Buffer.concat(parts);
}

describe('SSE request headers', () => {
  it('reads SSE-S3, SSE-KMS and SSE-C', () => {
    expect(parseSseRequest({})).toBeUndefined();
    expect(parseSseRequest({ algorithm: 'AES256' })).toEqual({ mode: 'AES256' });
    expect(parseSseRequest({ algorithm: 'aws:kms', kmsKeyId: 'testkey-1' })).toEqual({
      mode: 'aws:kms',
      kmsKeyId: 'testkey-1',
    });
    const c = parseSseRequest({ customerAlgorithm: 'AES256', customerKey: KEY, customerKeyMd5: KEY_MD5 });
    expect(c?.mode).toBe('SSE-C');
  });

  it('refuses conflicting, incomplete or wrong encryption headers with InvalidArgument', () => {
    const customer = { customerAlgorithm: 'AES256', customerKey: KEY, customerKeyMd5: KEY_MD5 };
    expect(code(() => parseSseRequest({ ...customer, algorithm: 'AES256' }))).toBe('InvalidArgument');
    expect(code(() => parseSseRequest({ ...customer, algorithm: 'aws:kms', kmsKeyId: 'k' }))).toBe(
      'InvalidArgument',
    );
    expect(code(() => parseSseRequest({ algorithm: 'AES256', kmsKeyId: 'k' }))).toBe('InvalidArgument');
    expect(code(() => parseSseRequest({ algorithm: 'aes:kms' }))).toBe('InvalidArgument');
    expect(code(() => parseSseRequest({ algorithm: 'aws:kms' }))).toBe('InvalidArgument');
    expect(code(() => parseSseRequest({ kmsKeyId: 'testkey-2' }))).toBe('InvalidArgument');
    expect(code(() => parseSseCustomer({ customerKey: KEY, customerKeyMd5: KEY_MD5 }))).toBe(
      'InvalidArgument',
    );
    expect(code(() => parseSseCustomer({ customerAlgorithm: 'AES256' }))).toBe('InvalidArgument');
    expect(code(() => parseSseCustomer({ customerAlgorithm: 'AES192', customerKey: KEY }))).toBe(
      'InvalidArgument',
    );
    expect(code(() => parseSseCustomer({ customerAlgorithm: 'AES256', customerKey: KEY }))).toBe(
      'InvalidArgument',
    );
    expect(
      code(() =>
        parseSseCustomer({
          customerAlgorithm: 'AES256',
          customerKey: KEY,
          customerKeyMd5: 'AAAAAAAAAAAAAAAAAAAAAA==',
        }),
      ),
    ).toBe('InvalidArgument');
    const short = randomBytes(16).toString('base64');
    const shortMd5 = createHash('md5').update(Buffer.from(short, 'base64')).digest('base64');
    expect(
      code(() =>
        parseSseCustomer({ customerAlgorithm: 'AES256', customerKey: short, customerKeyMd5: shortMd5 }),
      ),
    ).toBe('InvalidArgument');
  });

  it('answers the response headers AWS sends', () => {
    expect(sseResponseHeaders({ mode: 'AES256' })).toEqual({ 'x-amz-server-side-encryption': 'AES256' });
    expect(sseResponseHeaders({ mode: 'aws:kms', kmsKeyId: 'k1' })).toEqual({
      'x-amz-server-side-encryption': 'aws:kms',
      'x-amz-server-side-encryption-aws-kms-key-id': 'k1',
    });
    expect(sseResponseHeaders({ mode: 'SSE-C', keyMd5: KEY_MD5 })).toEqual({
      'x-amz-server-side-encryption-customer-algorithm': 'AES256',
      'x-amz-server-side-encryption-customer-key-md5': KEY_MD5,
    });
    expect(sseResponseHeaders(null)).toEqual({});
  });

  it('parses and validates a bucket default encryption', () => {
    const doc = (inner: string) =>
      `<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault>${inner}</ApplyServerSideEncryptionByDefault></Rule></ServerSideEncryptionConfiguration>`;
    expect(parseEncryptionConfig(doc('<SSEAlgorithm>AES256</SSEAlgorithm>'))).toEqual({ mode: 'AES256' });
    expect(
      parseEncryptionConfig(doc('<SSEAlgorithm>aws:kms</SSEAlgorithm><KMSMasterKeyID>k9</KMSMasterKeyID>')),
    ).toEqual({ mode: 'aws:kms', kmsKeyId: 'k9' });
    expect(code(() => parseEncryptionConfig(doc('<SSEAlgorithm>DES</SSEAlgorithm>')))).toBe('MalformedXML');
    expect(code(() => parseEncryptionConfig('<ServerSideEncryptionConfiguration/>'))).toBe('MalformedXML');
  });
});

describe('SSE keys and encrypted blobs', () => {
  let dir: string;
  let database: Database;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'yunhai-sse-'));
    database = await openDatabase({ url: join(dir, 'test.db') });
    await migrate(database);
  });
  afterAll(async () => {
    await database.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('wraps SSE-S3/KMS data keys with a per-tenant key that survives a restart, sealed by the master key', async () => {
    const master = randomBytes(32);
    const keys = createSseKeys(database, createSealer(master));
    const a = await keys.newKey({ mode: 'aws:kms', kmsKeyId: 'testkey-1' }, 'tenant-a');
    expect(a.stored).toMatchObject({ mode: 'aws:kms', kmsKeyId: 'testkey-1', tenantId: 'tenant-a' });
    expect(JSON.stringify(a.stored)).not.toContain(a.key.toString('base64'));
    // A new process (empty cache) opens the same data key.
    const again = createSseKeys(database, createSealer(master));
    expect((await again.openKey(a.stored, undefined)).equals(a.key)).toBe(true);
    // Another master key cannot.
    await expect(
      createSseKeys(database, createSealer(randomBytes(32))).openKey(a.stored, undefined),
    ).rejects.toThrow();
    // A stored record moved to another key id fails authentication.
    await expect(again.openKey({ ...a.stored, kmsKeyId: 'testkey-2' }, undefined)).rejects.toThrow();
    const row = await database.db.selectFrom('object_sse_keys').selectAll().execute();
    expect(row.map((r) => r.tenant_id)).toEqual(['tenant-a']);
    // Customer keys are refused for SSE-S3/KMS objects.
    const customer = parseSseCustomer({
      customerAlgorithm: 'AES256',
      customerKey: KEY,
      customerKeyMd5: KEY_MD5,
    });
    await expect(again.openKey(a.stored, customer)).rejects.toMatchObject({ s3Code: 'InvalidRequest' });
  });

  it('derives SSE-C data keys from the customer key and refuses a missing or different key', async () => {
    const keys = createSseKeys(database, undefined);
    const customer = parseSseCustomer({
      customerAlgorithm: 'AES256',
      customerKey: KEY,
      customerKeyMd5: KEY_MD5,
    })!;
    const other = parseSseCustomer({
      customerAlgorithm: 'AES256',
      customerKey: OTHER,
      customerKeyMd5: OTHER_MD5,
    })!;
    const k = await keys.newKey({ mode: 'SSE-C', customer }, 't');
    expect(k.stored).toMatchObject({ mode: 'SSE-C', keyMd5: KEY_MD5 });
    expect(k.stored.wrapped).toBeUndefined();
    expect((await keys.openKey(k.stored, customer)).equals(k.key)).toBe(true);
    await expect(keys.openKey(k.stored, undefined)).rejects.toMatchObject({ s3Code: 'InvalidRequest' });
    await expect(keys.openKey(k.stored, other)).rejects.toMatchObject({ s3Code: 'InvalidRequest' });
    // Without the master key SSE-S3 is refused, never stored in plaintext.
    await expect(keys.newKey({ mode: 'AES256' }, 't')).rejects.toMatchObject({ s3Code: 'NotImplemented' });
  });

  it('round-trips bodies through the blob store, whole and by ranges across chunk boundaries', async () => {
    const blobDir = join(dir, 'blobs');
    const store = createFsBlobStore({ dir: blobDir });
    const key = randomBytes(32);
    for (const size of [0, 1, 13, SSE_CHUNK - 1, SSE_CHUNK, SSE_CHUNK + 1, 3 * SSE_CHUNK + 17]) {
      const plain = randomBytes(size);
      const put = await store.put(
        encryptBlob(
          (async function* () {
            yield plain.subarray(0, 7);
            yield plain.subarray(7);
          })(),
          key,
        ),
      );
      expect(await store.size(put.id)).toBe(SSE_PREFIX_BYTES + encryptedSize(size));
      const onDisk = readdirSync(blobDir, { recursive: true, withFileTypes: true })
        .filter((e) => e.isFile() && e.name.includes(put.id))
        .map((e) => readFileSync(join(e.parentPath, e.name)));
      if (size >= 16) for (const b of onDisk) expect(b.includes(plain.subarray(0, 16))).toBe(false);
      if (size === 0) continue;
      const whole = await read(await openEncryptedBlob(store, put.id, key, size, 0, size - 1));
      expect(whole.equals(plain)).toBe(true);
      for (const [s, e] of [
        [0, 0],
        [size - 1, size - 1],
        [Math.floor(size / 3), Math.floor((2 * size) / 3)],
        [Math.max(0, SSE_CHUNK - 2), Math.min(size - 1, SSE_CHUNK + 2)],
      ] as const) {
        if (s > e) continue;
        const part = await read(await openEncryptedBlob(store, put.id, key, size, s, e));
        expect(part.equals(plain.subarray(s, e + 1))).toBe(true);
      }
      // A wrong data key fails before any byte is handed out.
      await expect(openEncryptedBlob(store, put.id, randomBytes(32), size, 0, size - 1)).rejects.toThrow();
    }
  });
});
