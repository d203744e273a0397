import { createHash, createHmac, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeletePublicAccessBlockCommand,
  GetObjectCommand,
  GetPublicAccessBlockCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  PutBucketAclCommand,
  PutBucketEncryptionCommand,
  PutObjectCommand,
  PutPublicAccessBlockCommand,
  type S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestControlPlane, type TestControlPlane } from '../../../test-support/control-plane.js';
import { rawS3, type S3Keys, s3Client, seedS3Tenants } from '../../../test-support/s3.js';
import { s3Error } from './s3-config.case.js';

const KEY = randomBytes(32);
const KEY_B64 = KEY.toString('base64');
const KEY_MD5 = createHash('md5').update(KEY).digest('base64');
const OTHER = randomBytes(32);
const sseC = (k: Buffer = KEY) => ({
  SSECustomerAlgorithm: 'AES256',
  SSECustomerKey: k.toString('base64'),
  SSECustomerKeyMD5: createHash('md5').update(k).digest('base64'),
});

/** Every file under the data dir's blob store, to check nothing lands there in plaintext. */
function blobFiles(dataDir: string): Buffer[] {
  const dir = join(dataDir, 'blobs');
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => readFileSync(join(e.parentPath, e.name)));
}

/**
 * Server-side encryption (SSE-S3, SSE-KMS with platform-managed keys, SSE-C), expected bucket
 * owner checks, browser POST uploads and public access blocks through @aws-sdk/client-s3 and raw
 * HTTP, once per SQL dialect (s3-sse.sqlite.test.ts, s3-sse.postgres.test.ts).
 */
export function runS3SseSuite(dialect: 'sqlite' | 'postgres') {
  describe(`S3 encryption, POST uploads and public access blocks on ${dialect}`, () => {
    let cp: TestControlPlane;
    let keys: { acme: S3Keys; globex: S3Keys };
    let acme: S3Client;
    let globex: S3Client;
    const b = (name: string) => `${name}-sse-${dialect}`;

    beforeAll(async () => {
      cp = await startTestControlPlane({ dialect, s3: { minPartSize: 64 * 1024 } });
      keys = await seedS3Tenants(cp);
      acme = s3Client(cp, keys.acme);
      globex = s3Client(cp, keys.globex);
    });
    afterAll(async () => cp?.stop());

    const body = async (r: { Body?: unknown }) =>
      Buffer.from(await (r.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());

    it('SSE-S3 and SSE-KMS: bodies are encrypted at rest, read back whole and by range, headers as AWS', async () => {
      const Bucket = b('s3');
      await acme.send(new CreateBucketCommand({ Bucket }));
      const marker = Buffer.from(`plaintext-marker-${randomBytes(8).toString('hex')}`);
      const data = Buffer.concat([marker, randomBytes(200_000)]);
      const put = await acme.send(
        new PutObjectCommand({ Bucket, Key: 'a', Body: data, ServerSideEncryption: 'AES256' }),
      );
      expect(put.ServerSideEncryption).toBe('AES256');
      for (const f of blobFiles(cp.dataDir)) expect(f.includes(marker)).toBe(false);
      const got = await acme.send(new GetObjectCommand({ Bucket, Key: 'a' }));
      expect(got.ServerSideEncryption).toBe('AES256');
      expect((await body(got)).equals(data)).toBe(true);
      const ranged = await acme.send(new GetObjectCommand({ Bucket, Key: 'a', Range: 'bytes=65530-131080' }));
      expect((await body(ranged)).equals(data.subarray(65530, 131081))).toBe(true);
      // A read that names SSE-S3 is refused (AWS answers 400).
      const named = await rawS3(cp, keys.acme, 'HEAD', `/${Bucket}/a`, {
        headers: { 'x-amz-server-side-encryption': 'AES256' },
      });
      expect(named.status).toBe(400);

      const kms = await acme.send(
        new PutObjectCommand({
          Bucket,
          Key: 'k',
          Body: 'kms body',
          ServerSideEncryption: 'aws:kms',
          SSEKMSKeyId: 'testkey-1',
        }),
      );
      expect([kms.ServerSideEncryption, kms.SSEKMSKeyId]).toEqual(['aws:kms', 'testkey-1']);
      const head = await acme.send(new HeadObjectCommand({ Bucket, Key: 'k' }));
      expect([head.ServerSideEncryption, head.SSEKMSKeyId]).toEqual(['aws:kms', 'testkey-1']);
      expect(
        await s3Error(
          acme.send(new PutObjectCommand({ Bucket, Key: 'x', Body: 'x', ServerSideEncryption: 'aws:kms' })),
        ),
      ).toEqual({ code: 'InvalidArgument', status: 400 });
    });

    it('applies the bucket default encryption to PUT, copies and multipart uploads', async () => {
      const Bucket = b('default');
      await acme.send(new CreateBucketCommand({ Bucket }));
      await acme.send(
        new PutBucketEncryptionCommand({
          Bucket,
          ServerSideEncryptionConfiguration: {
            Rules: [
              { ApplyServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: 'k2' } },
            ],
          },
        }),
      );
      const put = await acme.send(new PutObjectCommand({ Bucket, Key: 'p', Body: 'hello' }));
      expect([put.ServerSideEncryption, put.SSEKMSKeyId]).toEqual(['aws:kms', 'k2']);
      const copy = await acme.send(
        new CopyObjectCommand({
          Bucket,
          Key: 'c',
          CopySource: `${Bucket}/p`,
          ServerSideEncryption: 'AES256',
        }),
      );
      expect(copy.ServerSideEncryption).toBe('AES256');
      expect((await body(await acme.send(new GetObjectCommand({ Bucket, Key: 'c' })))).toString()).toBe(
        'hello',
      );
      const up = await acme.send(new CreateMultipartUploadCommand({ Bucket, Key: 'm' }));
      expect(up.ServerSideEncryption).toBe('aws:kms');
      const p1 = randomBytes(70_000);
      const p2 = randomBytes(1000);
      const e1 = await acme.send(
        new UploadPartCommand({ Bucket, Key: 'm', UploadId: up.UploadId, PartNumber: 1, Body: p1 }),
      );
      const e2 = await acme.send(
        new UploadPartCommand({ Bucket, Key: 'm', UploadId: up.UploadId, PartNumber: 2, Body: p2 }),
      );
      await acme.send(
        new CompleteMultipartUploadCommand({
          Bucket,
          Key: 'm',
          UploadId: up.UploadId,
          MultipartUpload: {
            Parts: [
              { PartNumber: 1, ETag: e1.ETag },
              { PartNumber: 2, ETag: e2.ETag },
            ],
          },
        }),
      );
      const all = Buffer.concat([p1, p2]);
      const r = await acme.send(new GetObjectCommand({ Bucket, Key: 'm', Range: 'bytes=69000-70500' }));
      expect(r.ServerSideEncryption).toBe('aws:kms');
      expect((await body(r)).equals(all.subarray(69000, 70501))).toBe(true);
    });

    it('SSE-C: the key is needed to read, a wrong or missing key is refused, ranges and multipart work', async () => {
      const Bucket = b('ssec');
      await acme.send(new CreateBucketCommand({ Bucket }));
      const data = randomBytes(150_000);
      const put = await acme.send(new PutObjectCommand({ Bucket, Key: 'c', Body: data, ...sseC() }));
      expect([put.SSECustomerAlgorithm, put.SSECustomerKeyMD5]).toEqual(['AES256', KEY_MD5]);
      expect(await s3Error(acme.send(new GetObjectCommand({ Bucket, Key: 'c' })))).toEqual({
        code: 'InvalidRequest',
        status: 400,
      });
      expect(
        (await s3Error(acme.send(new GetObjectCommand({ Bucket, Key: 'c', ...sseC(OTHER) })))).status,
      ).toBe(400);
      expect((await s3Error(acme.send(new HeadObjectCommand({ Bucket, Key: 'c' })))).status).toBe(400);
      const r = await acme.send(
        new GetObjectCommand({ Bucket, Key: 'c', Range: 'bytes=100-70000', ...sseC() }),
      );
      expect((await body(r)).equals(data.subarray(100, 70001))).toBe(true);
      // A wrong key MD5 is refused before anything is stored.
      const badMd5 = await rawS3(cp, keys.acme, 'PUT', `/${Bucket}/d`, {
        body: 'x',
        headers: {
          'x-amz-server-side-encryption-customer-algorithm': 'AES256',
          'x-amz-server-side-encryption-customer-key': KEY_B64,
          'x-amz-server-side-encryption-customer-key-md5': createHash('md5').update(OTHER).digest('base64'),
        },
      });
      expect([badMd5.status, badMd5.code]).toEqual([400, 'InvalidArgument']);
      expect((await s3Error(acme.send(new HeadObjectCommand({ Bucket, Key: 'd' })))).status).toBe(404);
      // Multipart: every part and the completion need the upload's key.
      const up = await acme.send(new CreateMultipartUploadCommand({ Bucket, Key: 'm', ...sseC() }));
      expect(
        (
          await s3Error(
            acme.send(
              new UploadPartCommand({ Bucket, Key: 'm', UploadId: up.UploadId, PartNumber: 1, Body: 'x' }),
            ),
          )
        ).status,
      ).toBe(400);
      expect(
        (
          await s3Error(
            acme.send(
              new UploadPartCommand({
                Bucket,
                Key: 'm',
                UploadId: up.UploadId,
                PartNumber: 1,
                Body: 'x',
                ...sseC(OTHER),
              }),
            ),
          )
        ).status,
      ).toBe(400);
      const parts = [randomBytes(65_537), randomBytes(33)];
      const tags = [];
      for (const [i, p] of parts.entries())
        tags.push(
          await acme.send(
            new UploadPartCommand({
              Bucket,
              Key: 'm',
              UploadId: up.UploadId,
              PartNumber: i + 1,
              Body: p,
              ...sseC(),
            }),
          ),
        );
      const Parts = tags.map((t, i) => ({ PartNumber: i + 1, ETag: t.ETag }));
      expect(
        (
          await s3Error(
            acme.send(
              new CompleteMultipartUploadCommand({
                Bucket,
                Key: 'm',
                UploadId: up.UploadId,
                MultipartUpload: { Parts },
              }),
            ),
          )
        ).status,
      ).toBe(400);
      await acme.send(
        new CompleteMultipartUploadCommand({
          Bucket,
          Key: 'm',
          UploadId: up.UploadId,
          MultipartUpload: { Parts },
          ...sseC(),
        }),
      );
      const whole = Buffer.concat(parts);
      const g = await acme.send(
        new GetObjectCommand({ Bucket, Key: 'm', Range: 'bytes=65530-65545', ...sseC() }),
      );
      expect((await body(g)).equals(whole.subarray(65530, 65546))).toBe(true);
      // Copy out of SSE-C needs the source key; the copy is SSE-S3.
      expect(
        (await s3Error(acme.send(new CopyObjectCommand({ Bucket, Key: 'o', CopySource: `${Bucket}/c` }))))
          .status,
      ).toBe(400);
      await acme.send(
        new CopyObjectCommand({
          Bucket,
          Key: 'o',
          CopySource: `${Bucket}/c`,
          CopySourceSSECustomerAlgorithm: 'AES256',
          CopySourceSSECustomerKey: KEY_B64,
          CopySourceSSECustomerKeyMD5: KEY_MD5,
          ServerSideEncryption: 'AES256',
        }),
      );
      expect((await body(await acme.send(new GetObjectCommand({ Bucket, Key: 'o' })))).equals(data)).toBe(
        true,
      );
    });

    it('x-amz-expected-bucket-owner: another account id is AccessDenied, the owner passes', async () => {
      const Bucket = b('owner');
      await acme.send(new CreateBucketCommand({ Bucket }));
      const owner = (await acme.send(new ListBucketsCommand({}))).Owner!.ID!;
      await acme.send(new PutObjectCommand({ Bucket, Key: 'k', Body: 'v', ExpectedBucketOwner: owner }));
      expect(
        await s3Error(
          acme.send(new PutObjectCommand({ Bucket, Key: 'k', Body: 'v', ExpectedBucketOwner: `${owner}1` })),
        ),
      ).toEqual({ code: 'AccessDenied', status: 403 });
      expect(
        await s3Error(
          acme.send(new GetObjectCommand({ Bucket, Key: 'k', ExpectedBucketOwner: '000000000000' })),
        ),
      ).toEqual({ code: 'AccessDenied', status: 403 });
    });

    it('POST uploads: anonymous to a public-write bucket, signed v2 and v4 forms, policy conditions enforced', async () => {
      const Bucket = b('post');
      await acme.send(new CreateBucketCommand({ Bucket }));
      const url = `${cp.endpoints.s3}/${Bucket}`;
      const post = (fields: [string, string][], file = 'bar') => {
        const f = new FormData();
        for (const [k, v] of fields) f.append(k, v);
        f.append('file', new Blob([file]), 'upload.txt');
        return fetch(url, { method: 'POST', body: f, redirect: 'manual' });
      };
      // Private bucket: an anonymous form is refused.
      expect((await post([['key', 'anon.txt']])).status).toBe(403);
      await acme.send(new PutBucketAclCommand({ Bucket, ACL: 'public-read-write' }));
      expect((await post([['key', 'anon.txt']])).status).toBe(204);
      expect(
        (await body(await acme.send(new GetObjectCommand({ Bucket, Key: 'anon.txt' })))).toString(),
      ).toBe('bar');

      const policy = (conditions: unknown[]) =>
        Buffer.from(
          JSON.stringify({ expiration: new Date(Date.now() + 60_000).toISOString(), conditions }),
        ).toString('base64');
      const p = policy([
        { bucket: Bucket },
        ['starts-with', '$key', 'up/'],
        { success_action_status: '201' },
        ['content-length-range', 0, 10],
      ]);
      const v2 = createHmac('sha1', keys.acme.secretAccessKey).update(p).digest('base64');
      const ok = await post([
        ['key', `up/${'$'}{filename}`],
        ['AWSAccessKeyId', keys.acme.accessKeyId],
        ['policy', p],
        ['signature', v2],
        ['success_action_status', '201'],
      ]);
      expect(ok.status).toBe(201);
      expect(await ok.text()).toContain('<Key>up/upload.txt</Key>');
      // Too large for the policy, a failed condition, a bad signature.
      expect(
        (
          await post(
            [
              ['key', 'up/big'],
              ['AWSAccessKeyId', keys.acme.accessKeyId],
              ['policy', p],
              ['signature', v2],
              ['success_action_status', '201'],
            ],
            'x'.repeat(11),
          )
        ).status,
      ).toBe(400);
      expect(
        (
          await post([
            ['key', 'other'],
            ['AWSAccessKeyId', keys.acme.accessKeyId],
            ['policy', p],
            ['signature', v2],
            ['success_action_status', '201'],
          ])
        ).status,
      ).toBe(403);
      expect(
        (
          await post([
            ['key', 'up/x'],
            ['AWSAccessKeyId', keys.acme.accessKeyId],
            ['policy', p],
            ['signature', 'AAAA'],
          ])
        ).status,
      ).toBe(403);
      expect(await s3Error(acme.send(new HeadObjectCommand({ Bucket, Key: 'up/big' })))).toMatchObject({
        status: 404,
      });

      // Version 4 form.
      const date = new Date().toISOString().slice(0, 10).replace(/-/g, '');
      const credential = `${keys.acme.accessKeyId}/${date}/us-east-1/s3/aws4_request`;
      const p4 = policy([
        { bucket: Bucket },
        ['eq', '$key', 'v4.txt'],
        { 'x-amz-algorithm': 'AWS4-HMAC-SHA256' },
        { 'x-amz-credential': credential },
        { 'x-amz-date': `${date}T000000Z` },
      ]);
      const h = (k: Buffer | string, m: string) => createHmac('sha256', k).update(m).digest();
      const signingKey = h(
        h(h(h(`AWS4${keys.acme.secretAccessKey}`, date), 'us-east-1'), 's3'),
        'aws4_request',
      );
      const v4 = await post([
        ['key', 'v4.txt'],
        ['x-amz-algorithm', 'AWS4-HMAC-SHA256'],
        ['x-amz-credential', credential],
        ['x-amz-date', `${date}T000000Z`],
        ['policy', p4],
        ['x-amz-signature', createHmac('sha256', signingKey).update(p4).digest('hex')],
      ]);
      expect(v4.status).toBe(204);
      expect((await body(await acme.send(new GetObjectCommand({ Bucket, Key: 'v4.txt' })))).toString()).toBe(
        'bar',
      );
    });

    it('public access block: stored, enforced against public ACLs, and removable', async () => {
      const Bucket = b('pab');
      await acme.send(new CreateBucketCommand({ Bucket }));
      expect(await s3Error(acme.send(new GetPublicAccessBlockCommand({ Bucket })))).toEqual({
        code: 'NoSuchPublicAccessBlockConfiguration',
        status: 404,
      });
      const conf = {
        BlockPublicAcls: true,
        IgnorePublicAcls: false,
        BlockPublicPolicy: true,
        RestrictPublicBuckets: false,
      };
      await acme.send(new PutPublicAccessBlockCommand({ Bucket, PublicAccessBlockConfiguration: conf }));
      expect(
        (await acme.send(new GetPublicAccessBlockCommand({ Bucket }))).PublicAccessBlockConfiguration,
      ).toEqual(conf);
      expect(await s3Error(acme.send(new PutBucketAclCommand({ Bucket, ACL: 'public-read' })))).toEqual({
        code: 'AccessDenied',
        status: 403,
      });
      expect(
        await s3Error(acme.send(new PutObjectCommand({ Bucket, Key: 'p', Body: 'x', ACL: 'public-read' }))),
      ).toEqual({ code: 'AccessDenied', status: 403 });
      await acme.send(new PutObjectCommand({ Bucket, Key: 'p', Body: 'x', ACL: 'private' }));
      // Another tenant cannot read or change it.
      expect((await s3Error(globex.send(new GetPublicAccessBlockCommand({ Bucket })))).status).toBe(403);
      await acme.send(new DeletePublicAccessBlockCommand({ Bucket }));
      await acme.send(new PutBucketAclCommand({ Bucket, ACL: 'public-read' }));
    });
  });
}
