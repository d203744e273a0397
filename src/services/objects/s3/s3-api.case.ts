import { createHash, createHmac, randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteBucketCommand,
  DeleteBucketTaggingCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  DeleteObjectTaggingCommand,
  GetBucketLocationCommand,
  GetBucketTaggingCommand,
  GetBucketVersioningCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListMultipartUploadsCommand,
  ListObjectsCommand,
  ListObjectsV2Command,
  ListObjectVersionsCommand,
  ListPartsCommand,
  PutBucketAclCommand,
  PutBucketTaggingCommand,
  PutBucketVersioningCommand,
  PutObjectAclCommand,
  PutObjectCommand,
  PutObjectTaggingCommand,
  type S3Client,
  UploadPartCommand,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyAudit } from '../../../platform/audit/audit.js';
import { deriveSigningKey, EMPTY_SHA256, signRequest, toAmzDate } from '../../../platform/auth/sigv4.js';
import { YunhaiError } from '../../../platform/errors.js';
import { addQuotaGate } from '../../../platform/quota/quota.js';
import { until } from '../../../test-support/api.js';
import { startTestControlPlane, type TestControlPlane } from '../../../test-support/control-plane.js';
import { rawS3, type S3Keys, s3Client, seedS3Tenants } from '../../../test-support/s3.js';
import { checksumOf } from '../checksums.js';

/** What the SDK makes of an S3 error. */
async function s3Error(p: Promise<unknown>): Promise<{ code: string; status: number }> {
  try {
    await p;
  } catch (e) {
    const err = e as { name: string; Code?: string; $metadata?: { httpStatusCode?: number } };
    return { code: err.Code ?? err.name, status: err.$metadata?.httpStatusCode ?? 0 };
  }
  throw new Error('expected the call to fail');
}

const text = async (r: { Body?: unknown }) =>
  Buffer.from(await (r.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());

const MiB = 1024 * 1024;

/**
 * The S3 listener end to end through @aws-sdk/client-s3 (and hand-signed requests for what the
 * SDK would not send), once per SQL dialect (s3-api.sqlite.test.ts, s3-api.postgres.test.ts).
 */
export function runS3ApiSuite(dialect: 'sqlite' | 'postgres') {
  describe(`S3 API on ${dialect}`, () => {
    let cp: TestControlPlane;
    let keys: {
      root: S3Keys;
      acme: S3Keys;
      globex: S3Keys;
      keysFor: Awaited<ReturnType<typeof seedS3Tenants>>['keysFor'];
    };
    let acme: S3Client;
    let globex: S3Client;
    const b = (name: string) => `${name}-${dialect}`;

    beforeAll(async () => {
      cp = await startTestControlPlane({ dialect, meterIntervalMs: 300 });
      keys = await seedS3Tenants(cp);
      acme = s3Client(cp, keys.acme);
      globex = s3Client(cp, keys.globex);
    });
    afterAll(async () => cp?.stop());

    it('creates, lists, heads and deletes buckets whose names are global', async () => {
      await acme.send(new CreateBucketCommand({ Bucket: b('alpha') }));
      await acme.send(
        new CreateBucketCommand({
          Bucket: b('beta'),
          CreateBucketConfiguration: { LocationConstraint: 'eu-west-1' },
        }),
      );
      const list = await acme.send(new ListBucketsCommand({}));
      expect(list.Buckets?.map((x) => x.Name)).toEqual([b('alpha'), b('beta')]);
      expect((await globex.send(new ListBucketsCommand({}))).Buckets ?? []).toEqual([]);
      expect((await acme.send(new GetBucketLocationCommand({ Bucket: b('beta') }))).LocationConstraint).toBe(
        'eu-west-1',
      );
      expect(
        (await acme.send(new GetBucketLocationCommand({ Bucket: b('alpha') }))).LocationConstraint,
      ).toBeUndefined();
      // us-east-1: re-creating your own bucket succeeds unless it asks for another ACL; elsewhere it is a 409.
      await acme.send(new CreateBucketCommand({ Bucket: b('alpha') }));
      expect(
        await s3Error(acme.send(new CreateBucketCommand({ Bucket: b('alpha'), ACL: 'public-read' }))),
      ).toEqual({
        code: 'BucketAlreadyExists',
        status: 409,
      });
      expect(
        await s3Error(
          acme.send(
            new CreateBucketCommand({
              Bucket: b('beta'),
              CreateBucketConfiguration: { LocationConstraint: 'eu-west-1' },
            }),
          ),
        ),
      ).toEqual({ code: 'BucketAlreadyOwnedByYou', status: 409 });
      expect(await s3Error(globex.send(new CreateBucketCommand({ Bucket: b('alpha') })))).toEqual({
        code: 'BucketAlreadyExists',
        status: 409,
      });
      for (const bad of ['ab', 'Upper-Case', 'under_score', '-lead', 'a..b', '192.168.1.1', 'x'.repeat(64)]) {
        expect((await rawS3(cp, keys.acme, 'PUT', `/${bad}`)).code).toBe('InvalidBucketName');
      }
      await acme.send(new HeadBucketCommand({ Bucket: b('alpha') }));
      expect((await s3Error(acme.send(new HeadBucketCommand({ Bucket: b('nope') })))).status).toBe(404);
      expect((await s3Error(globex.send(new HeadBucketCommand({ Bucket: b('alpha') })))).status).toBe(403);
      await acme.send(new PutObjectCommand({ Bucket: b('beta'), Key: 'x', Body: 'x' }));
      expect(await s3Error(acme.send(new DeleteBucketCommand({ Bucket: b('beta') })))).toEqual({
        code: 'BucketNotEmpty',
        status: 409,
      });
      await acme.send(new DeleteObjectCommand({ Bucket: b('beta'), Key: 'x' }));
      await acme.send(new DeleteBucketCommand({ Bucket: b('beta') }));
      expect((await s3Error(acme.send(new DeleteBucketCommand({ Bucket: b('beta') })))).code).toBe(
        'NoSuchBucket',
      );
    });

    it('stores objects with content headers and user metadata, and refuses oversized metadata', async () => {
      const Bucket = b('alpha');
      const put = await acme.send(
        new PutObjectCommand({
          Bucket,
          Key: 'docs/readme.txt',
          Body: 'hello world',
          ContentType: 'text/plain; charset=utf-8',
          CacheControl: 'max-age=60',
          ContentDisposition: 'attachment; filename="r.txt"',
          ContentLanguage: 'en',
          Metadata: { colour: 'blue', 'long-name': 'v'.repeat(100) },
        }),
      );
      expect(put.ETag).toBe(`"${createHash('md5').update('hello world').digest('hex')}"`);
      const got = await acme.send(new GetObjectCommand({ Bucket, Key: 'docs/readme.txt' }));
      expect((await text(got)).toString()).toBe('hello world');
      expect(got.ContentType).toBe('text/plain; charset=utf-8');
      expect(got.CacheControl).toBe('max-age=60');
      expect(got.ContentDisposition).toBe('attachment; filename="r.txt"');
      expect(got.ContentLanguage).toBe('en');
      expect(got.Metadata).toEqual({ colour: 'blue', 'long-name': 'v'.repeat(100) });
      const head = await acme.send(new HeadObjectCommand({ Bucket, Key: 'docs/readme.txt' }));
      expect(head.ContentLength).toBe(11);
      expect(head.ETag).toBe(put.ETag);
      expect(
        await s3Error(
          acme.send(
            new PutObjectCommand({ Bucket, Key: 'm', Body: 'x', Metadata: { big: 'v'.repeat(2100) } }),
          ),
        ),
      ).toEqual({ code: 'MetadataTooLarge', status: 400 });
      expect(await s3Error(acme.send(new HeadObjectCommand({ Bucket, Key: 'm' })))).toEqual({
        code: 'NotFound',
        status: 404,
      });
      expect((await s3Error(acme.send(new GetObjectCommand({ Bucket, Key: 'missing' })))).code).toBe(
        'NoSuchKey',
      );
    });

    it('serves byte ranges, open and suffix ranges, and answers 416 beyond the end', async () => {
      const Bucket = b('alpha');
      const data = randomBytes(1000);
      await acme.send(new PutObjectCommand({ Bucket, Key: 'range.bin', Body: data }));
      const get = async (Range: string) => {
        const r = await acme.send(new GetObjectCommand({ Bucket, Key: 'range.bin', Range }));
        return { body: await text(r), range: r.ContentRange, length: r.ContentLength };
      };
      expect(await get('bytes=0-9')).toEqual({
        body: data.subarray(0, 10),
        range: 'bytes 0-9/1000',
        length: 10,
      });
      expect((await get('bytes=990-')).body.equals(data.subarray(990))).toBe(true);
      expect((await get('bytes=-5')).body.equals(data.subarray(995))).toBe(true);
      expect((await get('bytes=900-5000')).range).toBe('bytes 900-999/1000');
      expect(
        await s3Error(acme.send(new GetObjectCommand({ Bucket, Key: 'range.bin', Range: 'bytes=1000-' }))),
      ).toEqual({
        code: 'InvalidRange',
        status: 416,
      });
      await acme.send(new PutObjectCommand({ Bucket, Key: 'empty', Body: '' }));
      expect(
        (await s3Error(acme.send(new GetObjectCommand({ Bucket, Key: 'empty', Range: 'bytes=0-' })))).code,
      ).toBe('InvalidRange');
    });

    it('evaluates conditional reads and response-* overrides', async () => {
      const Bucket = b('alpha');
      const { ETag } = await acme.send(new PutObjectCommand({ Bucket, Key: 'cond', Body: 'abc' }));
      const past = new Date(Date.now() - 3600_000);
      const future = new Date(Date.now() + 3600_000);
      await acme.send(new GetObjectCommand({ Bucket, Key: 'cond', IfMatch: ETag }));
      expect(
        (await s3Error(acme.send(new GetObjectCommand({ Bucket, Key: 'cond', IfMatch: '"nope"' })))).status,
      ).toBe(412);
      expect(
        (await s3Error(acme.send(new GetObjectCommand({ Bucket, Key: 'cond', IfNoneMatch: ETag })))).status,
      ).toBe(304);
      expect(
        (await s3Error(acme.send(new GetObjectCommand({ Bucket, Key: 'cond', IfModifiedSince: future }))))
          .status,
      ).toBe(304);
      await acme.send(new GetObjectCommand({ Bucket, Key: 'cond', IfModifiedSince: past }));
      expect(
        (await s3Error(acme.send(new GetObjectCommand({ Bucket, Key: 'cond', IfUnmodifiedSince: past }))))
          .status,
      ).toBe(412);
      const r = await acme.send(
        new GetObjectCommand({
          Bucket,
          Key: 'cond',
          ResponseContentType: 'application/x-test',
          ResponseContentDisposition: 'inline',
          ResponseCacheControl: 'no-cache',
        }),
      );
      expect([r.ContentType, r.ContentDisposition, r.CacheControl]).toEqual([
        'application/x-test',
        'inline',
        'no-cache',
      ]);
    });

    it('refuses to overwrite with If-None-Match: * and checks If-Match on writes', async () => {
      const Bucket = b('alpha');
      await acme.send(new PutObjectCommand({ Bucket, Key: 'once', Body: 'first', IfNoneMatch: '*' }));
      expect(
        await s3Error(
          acme.send(new PutObjectCommand({ Bucket, Key: 'once', Body: 'second', IfNoneMatch: '*' })),
        ),
      ).toEqual({
        code: 'PreconditionFailed',
        status: 412,
      });
      expect((await text(await acme.send(new GetObjectCommand({ Bucket, Key: 'once' })))).toString()).toBe(
        'first',
      );
      expect(
        (await s3Error(acme.send(new PutObjectCommand({ Bucket, Key: 'once', Body: 'x', IfMatch: '"bad"' }))))
          .status,
      ).toBe(412);
    });

    it('keeps versions, writes delete markers and reads any version', async () => {
      const Bucket = b('versioned');
      await acme.send(new CreateBucketCommand({ Bucket }));
      expect((await acme.send(new GetBucketVersioningCommand({ Bucket }))).Status).toBeUndefined();
      await acme.send(new PutObjectCommand({ Bucket, Key: 'k', Body: 'null version' }));
      await acme.send(
        new PutBucketVersioningCommand({ Bucket, VersioningConfiguration: { Status: 'Enabled' } }),
      );
      expect((await acme.send(new GetBucketVersioningCommand({ Bucket }))).Status).toBe('Enabled');
      const v1 = await acme.send(new PutObjectCommand({ Bucket, Key: 'k', Body: 'one' }));
      const v2 = await acme.send(new PutObjectCommand({ Bucket, Key: 'k', Body: 'two' }));
      expect(v1.VersionId).toMatch(/^[A-Za-z0-9_-]{32}$/);
      expect((await text(await acme.send(new GetObjectCommand({ Bucket, Key: 'k' })))).toString()).toBe(
        'two',
      );
      const one = await acme.send(new GetObjectCommand({ Bucket, Key: 'k', VersionId: v1.VersionId }));
      expect([(await text(one)).toString(), one.VersionId]).toEqual(['one', v1.VersionId]);
      expect(
        (
          await text(await acme.send(new GetObjectCommand({ Bucket, Key: 'k', VersionId: 'null' })))
        ).toString(),
      ).toBe('null version');
      const del = await acme.send(new DeleteObjectCommand({ Bucket, Key: 'k' }));
      expect(del.DeleteMarker).toBe(true);
      expect((await s3Error(acme.send(new GetObjectCommand({ Bucket, Key: 'k' })))).code).toBe('NoSuchKey');
      expect(
        (await s3Error(acme.send(new GetObjectCommand({ Bucket, Key: 'k', VersionId: del.VersionId }))))
          .status,
      ).toBe(405);
      const versions = await acme.send(new ListObjectVersionsCommand({ Bucket }));
      expect(versions.Versions?.map((v) => [v.VersionId, v.IsLatest])).toEqual([
        [v2.VersionId, false],
        [v1.VersionId, false],
        ['null', false],
      ]);
      expect(versions.DeleteMarkers?.map((m) => [m.VersionId, m.IsLatest])).toEqual([[del.VersionId, true]]);
      // Removing the delete marker brings the newest version back.
      await acme.send(new DeleteObjectCommand({ Bucket, Key: 'k', VersionId: del.VersionId }));
      expect((await text(await acme.send(new GetObjectCommand({ Bucket, Key: 'k' })))).toString()).toBe(
        'two',
      );
      await acme.send(new DeleteObjectCommand({ Bucket, Key: 'k', VersionId: v2.VersionId }));
      expect((await text(await acme.send(new GetObjectCommand({ Bucket, Key: 'k' })))).toString()).toBe(
        'one',
      );
      expect(
        (await s3Error(acme.send(new GetObjectCommand({ Bucket, Key: 'k', VersionId: v2.VersionId })))).code,
      ).toBe('NoSuchVersion');
      // Suspended: new writes replace the null version.
      await acme.send(
        new PutBucketVersioningCommand({ Bucket, VersioningConfiguration: { Status: 'Suspended' } }),
      );
      await acme.send(new PutObjectCommand({ Bucket, Key: 'k', Body: 'suspended' }));
      const after = await acme.send(new ListObjectVersionsCommand({ Bucket }));
      expect(after.Versions?.map((v) => v.VersionId)).toEqual(['null', v1.VersionId]);
      expect(
        (
          await text(await acme.send(new GetObjectCommand({ Bucket, Key: 'k', VersionId: 'null' })))
        ).toString(),
      ).toBe('suspended');
    });

    it('lists objects (v1 and v2) with prefixes, delimiters, markers, continuation tokens and URL encoding', async () => {
      const Bucket = b('listing');
      await acme.send(new CreateBucketCommand({ Bucket }));
      const keyNames = ['a', 'b/1', 'b/2', 'b/c/3', 'c+d', 'e f', 'z/9', 'é'];
      for (const Key of keyNames) await acme.send(new PutObjectCommand({ Bucket, Key, Body: Key }));
      const all = await acme.send(new ListObjectsV2Command({ Bucket }));
      expect(all.Contents?.map((o) => o.Key)).toEqual(keyNames);
      expect(all.KeyCount).toBe(8);
      const delim = await acme.send(new ListObjectsV2Command({ Bucket, Delimiter: '/' }));
      expect(delim.Contents?.map((o) => o.Key)).toEqual(['a', 'c+d', 'e f', 'é']);
      expect(delim.CommonPrefixes?.map((p) => p.Prefix)).toEqual(['b/', 'z/']);
      const sub = await acme.send(new ListObjectsV2Command({ Bucket, Prefix: 'b/', Delimiter: '/' }));
      expect([sub.Contents?.map((o) => o.Key), sub.CommonPrefixes?.map((p) => p.Prefix)]).toEqual([
        ['b/1', 'b/2'],
        ['b/c/'],
      ]);
      // Paging two at a time with continuation tokens visits everything once.
      const seen: string[] = [];
      let token: string | undefined;
      do {
        const page = await acme.send(
          new ListObjectsV2Command({ Bucket, MaxKeys: 2, Delimiter: '/', ContinuationToken: token }),
        );
        seen.push(
          ...(page.Contents ?? []).map((o) => o.Key!),
          ...(page.CommonPrefixes ?? []).map((p) => p.Prefix!),
        );
        token = page.NextContinuationToken;
        expect(page.IsTruncated).toBe(token !== undefined);
      } while (token);
      expect(seen.sort()).toEqual(['a', 'b/', 'c+d', 'e f', 'z/', 'é'].sort());
      expect(
        (await acme.send(new ListObjectsV2Command({ Bucket, StartAfter: 'c+d' }))).Contents?.map(
          (o) => o.Key,
        ),
      ).toEqual(['e f', 'z/9', 'é']);
      const v1 = await acme.send(new ListObjectsCommand({ Bucket, MaxKeys: 3, Delimiter: '/' }));
      expect(v1.IsTruncated).toBe(true);
      expect(v1.NextMarker).toBe('c+d');
      const v1b = await acme.send(new ListObjectsCommand({ Bucket, Marker: v1.NextMarker, Delimiter: '/' }));
      expect([v1b.Contents?.map((o) => o.Key), v1b.CommonPrefixes?.map((p) => p.Prefix)]).toEqual([
        ['e f', 'é'],
        ['z/'],
      ]);
      const zero = await acme.send(new ListObjectsV2Command({ Bucket, MaxKeys: 0 }));
      expect([zero.KeyCount, zero.IsTruncated]).toEqual([0, false]);
      const enc = await rawS3(cp, keys.acme, 'GET', `/${Bucket}?list-type=2&encoding-type=url&prefix=c`);
      expect(enc.text).toContain('<Key>c%2Bd</Key>');
      expect(
        (await rawS3(cp, keys.acme, 'GET', `/${Bucket}?list-type=2&continuation-token=bogus`)).code,
      ).toBe('InvalidArgument');
    });

    it('lists object versions page by page with key and version-id markers', async () => {
      const Bucket = b('versions-list');
      await acme.send(new CreateBucketCommand({ Bucket }));
      await acme.send(
        new PutBucketVersioningCommand({ Bucket, VersioningConfiguration: { Status: 'Enabled' } }),
      );
      for (const Key of ['a', 'a', 'a', 'b', 'c/d'])
        await acme.send(new PutObjectCommand({ Bucket, Key, Body: Key }));
      await acme.send(new DeleteObjectCommand({ Bucket, Key: 'b' }));
      const full = await acme.send(new ListObjectVersionsCommand({ Bucket }));
      const fullIds = [...(full.Versions ?? []), ...(full.DeleteMarkers ?? [])]
        .map((v) => v.VersionId)
        .sort();
      const seen: string[] = [];
      let KeyMarker: string | undefined;
      let VersionIdMarker: string | undefined;
      for (;;) {
        const page = await acme.send(
          new ListObjectVersionsCommand({ Bucket, MaxKeys: 2, KeyMarker, VersionIdMarker }),
        );
        seen.push(...[...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])].map((v) => v.VersionId!));
        if (!page.IsTruncated) break;
        KeyMarker = page.NextKeyMarker;
        VersionIdMarker = page.NextVersionIdMarker;
      }
      expect(seen.sort()).toEqual(fullIds);
      expect(fullIds).toHaveLength(6);
      const delim = await acme.send(new ListObjectVersionsCommand({ Bucket, Delimiter: '/' }));
      expect(delim.CommonPrefixes?.map((p) => p.Prefix)).toEqual(['c/']);
    });

    it('deletes many objects in one request, quietly or not', async () => {
      const Bucket = b('alpha');
      for (const Key of ['d1', 'd2', 'd3']) await acme.send(new PutObjectCommand({ Bucket, Key, Body: Key }));
      const r = await acme.send(
        new DeleteObjectsCommand({
          Bucket,
          Delete: { Objects: [{ Key: 'd1' }, { Key: 'd2' }, { Key: 'never-there' }] },
        }),
      );
      expect(r.Deleted?.map((d) => d.Key).sort()).toEqual(['d1', 'd2', 'never-there']);
      const quiet = await acme.send(
        new DeleteObjectsCommand({ Bucket, Delete: { Objects: [{ Key: 'd3' }], Quiet: true } }),
      );
      expect(quiet.Deleted ?? []).toEqual([]);
      expect((await s3Error(acme.send(new HeadObjectCommand({ Bucket, Key: 'd3' })))).status).toBe(404);
      const denied = await globex.send(
        new DeleteObjectsCommand({ Bucket, Delete: { Objects: [{ Key: 'docs/readme.txt' }] } }),
      );
      expect(denied.Errors?.map((e) => e.Code)).toEqual(['AccessDenied']);
    });

    it('copies objects with COPY and REPLACE directives, from versions and under source conditions', async () => {
      const Bucket = b('alpha');
      const src = await acme.send(
        new PutObjectCommand({
          Bucket,
          Key: 'src',
          Body: 'copy me',
          ContentType: 'text/x-src',
          Metadata: { a: '1' },
        }),
      );
      await acme.send(new CopyObjectCommand({ Bucket, Key: 'dst1', CopySource: `${Bucket}/src` }));
      const d1 = await acme.send(new HeadObjectCommand({ Bucket, Key: 'dst1' }));
      expect([d1.ContentType, d1.Metadata, d1.ETag]).toEqual(['text/x-src', { a: '1' }, src.ETag]);
      await acme.send(
        new CopyObjectCommand({
          Bucket,
          Key: 'dst2',
          CopySource: `${Bucket}/src`,
          MetadataDirective: 'REPLACE',
          ContentType: 'text/x-new',
          Metadata: { b: '2' },
        }),
      );
      const d2 = await acme.send(new HeadObjectCommand({ Bucket, Key: 'dst2' }));
      expect([d2.ContentType, d2.Metadata]).toEqual(['text/x-new', { b: '2' }]);
      expect(
        (await s3Error(acme.send(new CopyObjectCommand({ Bucket, Key: 'src', CopySource: `${Bucket}/src` }))))
          .code,
      ).toBe('InvalidRequest');
      expect(
        (
          await s3Error(
            acme.send(
              new CopyObjectCommand({
                Bucket,
                Key: 'd3',
                CopySource: `${Bucket}/src`,
                CopySourceIfMatch: '"x"',
              }),
            ),
          )
        ).status,
      ).toBe(412);
      expect(
        (await s3Error(acme.send(new CopyObjectCommand({ Bucket, Key: 'd3', CopySource: `${Bucket}/none` }))))
          .code,
      ).toBe('NoSuchKey');
      // Copy from an old version of a versioned bucket.
      const vb = b('versioned');
      const versions = await acme.send(new ListObjectVersionsCommand({ Bucket: vb, Prefix: 'k' }));
      const old = versions.Versions!.find((v) => !v.IsLatest)!;
      await acme.send(
        new CopyObjectCommand({
          Bucket,
          Key: 'from-version',
          CopySource: `${vb}/k?versionId=${old.VersionId}`,
        }),
      );
      expect(
        (await text(await acme.send(new GetObjectCommand({ Bucket, Key: 'from-version' })))).toString(),
      ).toBe('one');
      // Another tenant cannot copy out of acme's bucket.
      await globex.send(new CreateBucketCommand({ Bucket: b('gbucket') }));
      expect(
        (
          await s3Error(
            globex.send(
              new CopyObjectCommand({ Bucket: b('gbucket'), Key: 'x', CopySource: `${Bucket}/src` }),
            ),
          )
        ).code,
      ).toBe('AccessDenied');
    });

    it('uploads in parts, copies ranges into parts, lists uploads and parts, completes and aborts', async () => {
      const Bucket = b('alpha');
      const Key = 'multi/big.bin';
      const part1 = randomBytes(5 * MiB);
      const part2 = randomBytes(MiB + 17);
      const { UploadId } = await acme.send(
        new CreateMultipartUploadCommand({
          Bucket,
          Key,
          ContentType: 'application/x-big',
          Metadata: { m: 'v' },
        }),
      );
      const p1 = await acme.send(
        new UploadPartCommand({ Bucket, Key, UploadId, PartNumber: 1, Body: part1 }),
      );
      const p2 = await acme.send(
        new UploadPartCommand({ Bucket, Key, UploadId, PartNumber: 2, Body: part2 }),
      );
      const uploads = await acme.send(new ListMultipartUploadsCommand({ Bucket }));
      expect(uploads.Uploads?.map((u) => [u.Key, u.UploadId])).toEqual([[Key, UploadId]]);
      const parts = await acme.send(new ListPartsCommand({ Bucket, Key, UploadId }));
      expect(parts.Parts?.map((p) => [p.PartNumber, p.Size, p.ETag])).toEqual([
        [1, part1.length, p1.ETag],
        [2, part2.length, p2.ETag],
      ]);
      expect(
        (
          await s3Error(
            acme.send(
              new CompleteMultipartUploadCommand({
                Bucket,
                Key,
                UploadId,
                MultipartUpload: { Parts: [{ PartNumber: 1, ETag: '"0000"' }] },
              }),
            ),
          )
        ).code,
      ).toBe('InvalidPart');
      expect(
        (
          await s3Error(
            acme.send(
              new CompleteMultipartUploadCommand({
                Bucket,
                Key,
                UploadId,
                MultipartUpload: {
                  Parts: [
                    { PartNumber: 2, ETag: p2.ETag },
                    { PartNumber: 1, ETag: p1.ETag },
                  ],
                },
              }),
            ),
          )
        ).code,
      ).toBe('InvalidPartOrder');
      const done = await acme.send(
        new CompleteMultipartUploadCommand({
          Bucket,
          Key,
          UploadId,
          MultipartUpload: {
            Parts: [
              { PartNumber: 1, ETag: p1.ETag },
              { PartNumber: 2, ETag: p2.ETag },
            ],
          },
        }),
      );
      const md5s = Buffer.concat([part1, part2].map((p) => createHash('md5').update(p).digest()));
      expect(done.ETag).toBe(`"${createHash('md5').update(md5s).digest('hex')}-2"`);
      const whole = await acme.send(new GetObjectCommand({ Bucket, Key }));
      expect([whole.ContentType, whole.Metadata]).toEqual(['application/x-big', { m: 'v' }]);
      expect((await text(whole)).equals(Buffer.concat([part1, part2]))).toBe(true);
      // A range across the part boundary, and a part by number.
      const across = await acme.send(
        new GetObjectCommand({ Bucket, Key, Range: `bytes=${5 * MiB - 3}-${5 * MiB + 2}` }),
      );
      expect(
        (await text(across)).equals(Buffer.concat([part1, part2]).subarray(5 * MiB - 3, 5 * MiB + 3)),
      ).toBe(true);
      const second = await acme.send(new GetObjectCommand({ Bucket, Key, PartNumber: 2 }));
      expect([second.PartsCount, second.ContentLength]).toEqual([2, part2.length]);
      expect((await s3Error(acme.send(new ListPartsCommand({ Bucket, Key, UploadId })))).code).toBe(
        'NoSuchUpload',
      );

      // Too-small parts, UploadPartCopy with a range, and abort.
      const u2 = (await acme.send(new CreateMultipartUploadCommand({ Bucket, Key: 'multi/small' }))).UploadId;
      const s1 = await acme.send(
        new UploadPartCommand({ Bucket, Key: 'multi/small', UploadId: u2, PartNumber: 1, Body: 'tiny' }),
      );
      const s2 = await acme.send(
        new UploadPartCopyCommand({
          Bucket,
          Key: 'multi/small',
          UploadId: u2,
          PartNumber: 2,
          CopySource: `${Bucket}/${Key}`,
          CopySourceRange: 'bytes=10-19',
        }),
      );
      expect(s2.CopyPartResult?.ETag).toBe(
        `"${createHash('md5').update(part1.subarray(10, 20)).digest('hex')}"`,
      );
      expect(
        (
          await s3Error(
            acme.send(
              new CompleteMultipartUploadCommand({
                Bucket,
                Key: 'multi/small',
                UploadId: u2,
                MultipartUpload: {
                  Parts: [
                    { PartNumber: 1, ETag: s1.ETag },
                    { PartNumber: 2, ETag: s2.CopyPartResult?.ETag },
                  ],
                },
              }),
            ),
          )
        ).code,
      ).toBe('EntityTooSmall');
      await acme.send(new AbortMultipartUploadCommand({ Bucket, Key: 'multi/small', UploadId: u2 }));
      expect(
        (
          await s3Error(
            acme.send(new AbortMultipartUploadCommand({ Bucket, Key: 'multi/small', UploadId: u2 })),
          )
        ).code,
      ).toBe('NoSuchUpload');
      expect((await acme.send(new ListMultipartUploadsCommand({ Bucket }))).Uploads ?? []).toEqual([]);
    });

    it('completes a multipart upload only when nothing exists yet under If-None-Match: *', async () => {
      const Bucket = b('alpha');
      const { UploadId } = await acme.send(
        new CreateMultipartUploadCommand({ Bucket, Key: 'docs/readme.txt' }),
      );
      const p = await acme.send(
        new UploadPartCommand({ Bucket, Key: 'docs/readme.txt', UploadId, PartNumber: 1, Body: 'x' }),
      );
      const err = await s3Error(
        acme.send(
          new CompleteMultipartUploadCommand({
            Bucket,
            Key: 'docs/readme.txt',
            UploadId,
            IfNoneMatch: '*',
            MultipartUpload: { Parts: [{ PartNumber: 1, ETag: p.ETag }] },
          }),
        ),
      );
      expect(err.status).toBe(412);
      await acme.send(new AbortMultipartUploadCommand({ Bucket, Key: 'docs/readme.txt', UploadId }));
    });

    it('tags objects and buckets', async () => {
      const Bucket = b('alpha');
      await acme.send(
        new PutObjectCommand({ Bucket, Key: 'tagged', Body: 't', Tagging: 'a=1&b=two%20words' }),
      );
      expect((await acme.send(new GetObjectTaggingCommand({ Bucket, Key: 'tagged' }))).TagSet).toEqual([
        { Key: 'a', Value: '1' },
        { Key: 'b', Value: 'two words' },
      ]);
      expect((await acme.send(new GetObjectCommand({ Bucket, Key: 'tagged' }))).TagCount).toBe(2);
      await acme.send(
        new PutObjectTaggingCommand({
          Bucket,
          Key: 'tagged',
          Tagging: { TagSet: [{ Key: 'c', Value: '3' }] },
        }),
      );
      expect((await acme.send(new GetObjectTaggingCommand({ Bucket, Key: 'tagged' }))).TagSet).toEqual([
        { Key: 'c', Value: '3' },
      ]);
      await acme.send(new DeleteObjectTaggingCommand({ Bucket, Key: 'tagged' }));
      expect((await acme.send(new GetObjectTaggingCommand({ Bucket, Key: 'tagged' }))).TagSet).toEqual([]);
      const eleven = Array.from({ length: 11 }, (_, i) => ({ Key: `k${i}`, Value: 'v' }));
      expect(
        (
          await s3Error(
            acme.send(new PutObjectTaggingCommand({ Bucket, Key: 'tagged', Tagging: { TagSet: eleven } })),
          )
        ).code,
      ).toBe('InvalidTag');
      expect((await s3Error(acme.send(new GetBucketTaggingCommand({ Bucket })))).code).toBe('NoSuchTagSet');
      await acme.send(
        new PutBucketTaggingCommand({ Bucket, Tagging: { TagSet: [{ Key: 'team', Value: 'storage' }] } }),
      );
      expect((await acme.send(new GetBucketTaggingCommand({ Bucket }))).TagSet).toEqual([
        { Key: 'team', Value: 'storage' },
      ]);
      await acme.send(new DeleteBucketTaggingCommand({ Bucket }));
      expect((await s3Error(acme.send(new GetBucketTaggingCommand({ Bucket })))).code).toBe('NoSuchTagSet');
    });

    it('checks Content-MD5, the signed payload hash and flexible checksums, and stores nothing on a mismatch', async () => {
      const Bucket = b('alpha');
      const body = Buffer.from('checked body');
      const md5 = createHash('md5').update(body).digest('base64');
      const sha = createHash('sha256').update(body).digest('hex');
      const put = (key: string, headers: Record<string, string>, payloadHash = sha, data: Buffer = body) =>
        rawS3(cp, keys.acme, 'PUT', `/${Bucket}/${key}`, { headers, body: data, payloadHash });
      expect((await put('ok', { 'content-md5': md5 })).status).toBe(200);
      expect(
        (await put('bad-md5', { 'content-md5': createHash('md5').update('x').digest('base64') })).code,
      ).toBe('BadDigest');
      expect((await put('bad-md5-format', { 'content-md5': 'not-base64!' })).code).toBe('InvalidDigest');
      expect((await put('bad-sha', {}, createHash('sha256').update('other').digest('hex'))).code).toBe(
        'XAmzContentSHA256Mismatch',
      );
      expect((await put('ok-crc', { 'x-amz-checksum-crc32c': checksumOf('CRC32C', body) })).status).toBe(200);
      expect(
        (await put('bad-crc', { 'x-amz-checksum-crc32': checksumOf('CRC32', Buffer.from('x')) })).code,
      ).toBe('BadDigest');
      expect(
        (
          await put(
            'bad-sha1',
            { 'x-amz-checksum-sha1': checksumOf('SHA1', Buffer.from('x')) },
            'UNSIGNED-PAYLOAD',
          )
        ).code,
      ).toBe('BadDigest');
      // The signature covers the declared hash; a body that does not match it is refused.
      const swapped = await put('swapped', {}, sha, Buffer.from('another body'));
      expect(swapped.code).toBe('XAmzContentSHA256Mismatch');
      for (const key of ['bad-md5', 'bad-md5-format', 'bad-sha', 'bad-crc', 'bad-sha1', 'swapped']) {
        expect((await s3Error(acme.send(new HeadObjectCommand({ Bucket, Key: key })))).status).toBe(404);
      }
      // The SDK's own CRC32 (header or aws-chunked trailer) is accepted and stored.
      const sdk = await acme.send(
        new PutObjectCommand({ Bucket, Key: 'sdk-crc', Body: body, ChecksumAlgorithm: 'CRC32' }),
      );
      expect(sdk.ChecksumCRC32).toBe(checksumOf('CRC32', body));
      const back = await acme.send(new GetObjectCommand({ Bucket, Key: 'sdk-crc', ChecksumMode: 'ENABLED' }));
      expect(back.ChecksumCRC32).toBe(checksumOf('CRC32', body));
      // A stream body: the SDK sends it aws-chunked with the checksum as a trailer.
      const big = randomBytes(300_000);
      const streamed = await acme.send(
        new PutObjectCommand({
          Bucket,
          Key: 'sdk-stream',
          Body: Readable.from([big.subarray(0, 100_000), big.subarray(100_000)]),
          ContentLength: big.length,
          ChecksumAlgorithm: 'CRC32C',
        }),
      );
      expect(streamed.ChecksumCRC32C).toBe(checksumOf('CRC32C', big));
      expect(
        (await text(await acme.send(new GetObjectCommand({ Bucket, Key: 'sdk-stream' })))).equals(big),
      ).toBe(true);
    });

    it('streams signed aws-chunked uploads, checking every chunk signature and the trailer', async () => {
      const Bucket = b('alpha');
      const data = randomBytes(200_000);
      const chunks = [data.subarray(0, 65536), data.subarray(65536, 131072), data.subarray(131072)];
      const upload = async (key: string, tamper: boolean, trailer: boolean) => {
        const url = new URL(`${cp.endpoints.s3}/${Bucket}/${key}`);
        const crc = checksumOf('CRC32', data);
        const mode = trailer
          ? 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER'
          : 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD';
        const headers: Record<string, string> = {
          'x-amz-content-sha256': mode,
          'content-encoding': 'aws-chunked',
          'x-amz-decoded-content-length': String(data.length),
          ...(trailer ? { 'x-amz-trailer': 'x-amz-checksum-crc32' } : {}),
        };
        const now = new Date();
        const signed = signRequest({
          method: 'PUT',
          url,
          headers,
          accessKeyId: keys.acme.accessKeyId,
          secretAccessKey: keys.acme.secretAccessKey,
          region: 'us-east-1',
          service: 's3',
          now,
        });
        const seed = /Signature=([0-9a-f]{64})/.exec(signed.authorization!)![1]!;
        const amzDate = toAmzDate(now);
        const scope = `${amzDate.slice(0, 8)}/us-east-1/s3/aws4_request`;
        const key4 = deriveSigningKey(keys.acme.secretAccessKey, amzDate.slice(0, 8), 'us-east-1', 's3');
        const hmac = (s: string) => createHmac('sha256', key4).update(s).digest('hex');
        let prev = seed;
        const parts: Buffer[] = [];
        for (const c of [...chunks, Buffer.alloc(0)]) {
          const sig = hmac(
            [
              'AWS4-HMAC-SHA256-PAYLOAD',
              amzDate,
              scope,
              prev,
              EMPTY_SHA256,
              createHash('sha256').update(c).digest('hex'),
            ].join('\n'),
          );
          prev = sig;
          const payload = tamper && c.length > 0 && parts.length === 0 ? Buffer.from(c).fill(1, 0, 1) : c;
          parts.push(
            Buffer.from(`${c.length.toString(16)};chunk-signature=${sig}\r\n`),
            payload,
            Buffer.from('\r\n'),
          );
        }
        if (trailer) {
          parts.pop();
          const line = `x-amz-checksum-crc32:${crc}\n`;
          const tsig = hmac(
            [
              'AWS4-HMAC-SHA256-TRAILER',
              amzDate,
              scope,
              prev,
              createHash('sha256').update(line).digest('hex'),
            ].join('\n'),
          );
          parts.push(Buffer.from(`x-amz-checksum-crc32:${crc}\r\nx-amz-trailer-signature:${tsig}\r\n\r\n`));
        }
        const res = await fetch(url, {
          method: 'PUT',
          headers: { ...headers, ...signed },
          body: Buffer.concat(parts),
        });
        return { status: res.status, body: await res.text() };
      };
      expect((await upload('chunked', false, false)).status).toBe(200);
      expect(
        (await text(await acme.send(new GetObjectCommand({ Bucket, Key: 'chunked' })))).equals(data),
      ).toBe(true);
      expect((await upload('chunked-trailer', false, true)).status).toBe(200);
      const tampered = await upload('chunked-bad', true, false);
      expect([tampered.status, /<Code>(\w+)/.exec(tampered.body)?.[1]]).toEqual([
        403,
        'SignatureDoesNotMatch',
      ]);
      expect((await s3Error(acme.send(new HeadObjectCommand({ Bucket, Key: 'chunked-bad' })))).status).toBe(
        404,
      );
    });

    it('refuses malformed XML and odd input with AWS codes', async () => {
      const Bucket = b('alpha');
      const post = (body: string) =>
        rawS3(cp, keys.acme, 'POST', `/${Bucket}?delete`, {
          body,
          headers: { 'content-md5': createHash('md5').update(body).digest('base64') },
        });
      expect((await post('<Delete><Object><Key>a</Key></Object>')).code).toBe('MalformedXML');
      expect((await post('<!DOCTYPE x [<!ENTITY a "b">]><Delete/>')).code).toBe('MalformedXML');
      expect((await post('<Other/>')).code).toBe('MalformedXML');
      expect((await post('<Delete></Delete>')).code).toBe('MalformedXML');
      const ver = await rawS3(cp, keys.acme, 'PUT', `/${Bucket}?versioning`, {
        body: '<VersioningConfiguration><Status>Maybe</Status></VersioningConfiguration>',
      });
      expect(ver.code).toBe('MalformedXML');
      expect((await rawS3(cp, keys.acme, 'GET', `/${Bucket}?website`)).code).toBe('NotImplemented');
      // Encryption headers that name no supported method are refused; nothing is stored.
      const sse = await rawS3(cp, keys.acme, 'PUT', `/${Bucket}/sse-object`, {
        headers: { 'x-amz-server-side-encryption': 'aes:kms' },
        body: 'secret',
      });
      expect(sse.code).toBe('InvalidArgument');
      expect((await rawS3(cp, keys.acme, 'GET', `/${Bucket}/sse-object`)).code).toBe('NoSuchKey');
      const defaultEnc = await rawS3(cp, keys.acme, 'PUT', `/${Bucket}?encryption`, {
        body: '<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>DES</SSEAlgorithm></ApplyServerSideEncryptionByDefault></Rule></ServerSideEncryptionConfiguration>',
      });
      expect(defaultEnc.code).toBe('MalformedXML');
      expect((await rawS3(cp, keys.acme, 'GET', `/${Bucket}?max-keys=-1`)).code).toBe('InvalidArgument');
      const err = await rawS3(cp, keys.acme, 'GET', `/${Bucket}/missing-key`);
      expect(err.text).toMatch(
        /<Error><Code>NoSuchKey<\/Code><Message>[^<]+<\/Message><Key>missing-key<\/Key><Resource>/,
      );
      expect(err.text).toContain('<RequestId>');
      expect(err.headers.get('x-amz-request-id')).toBeTruthy();
    });

    it('stores keys with dot segments, odd Unicode and the longest length, and refuses longer keys', async () => {
      const Bucket = b('alpha');
      const oddKeys = [
        '../up',
        'a/../../b',
        './.',
        'ü/日本語/🙂',
        'sp ace/plus+/percent%25',
        `${'x'.repeat(1023)}y`,
        'a//b',
      ];
      for (const Key of oddKeys) {
        await acme.send(new PutObjectCommand({ Bucket, Key, Body: Key }));
        expect((await text(await acme.send(new GetObjectCommand({ Bucket, Key })))).toString()).toBe(Key);
      }
      expect(
        (await s3Error(acme.send(new PutObjectCommand({ Bucket, Key: 'x'.repeat(1025), Body: 'x' })))).code,
      ).toBe('KeyTooLongError');
      // Nothing escapes the blob directory: every blob file sits in <dataDir>/blobs/<xx>/<id>.
      for (const sub of readdirSync(join(cp.dataDir, 'blobs'))) {
        if (sub === 'tmp') continue;
        expect(sub).toMatch(/^[0-9a-f]{2}$/);
        for (const f of readdirSync(join(cp.dataDir, 'blobs', sub))) expect(f).toMatch(/^[0-9a-f]{32}$/);
      }
    });

    it('signs presigned GET and PUT URLs that work until they expire', async () => {
      const Bucket = b('alpha');
      const putUrl = await getSignedUrl(acme, new PutObjectCommand({ Bucket, Key: 'presigned' }), {
        expiresIn: 60,
      });
      expect((await fetch(putUrl, { method: 'PUT', body: 'via url' })).status).toBe(200);
      const getUrl = await getSignedUrl(acme, new GetObjectCommand({ Bucket, Key: 'presigned' }), {
        expiresIn: 60,
      });
      const res = await fetch(getUrl);
      expect([res.status, await res.text()]).toEqual([200, 'via url']);
      const expired = await getSignedUrl(acme, new GetObjectCommand({ Bucket, Key: 'presigned' }), {
        expiresIn: 1,
        signingDate: new Date(Date.now() - 3600_000),
      });
      const r2 = await fetch(expired);
      expect([r2.status, /<Code>(\w+)/.exec(await r2.text())?.[1]]).toEqual([403, 'AccessDenied']);
      const tampered = getUrl.replace('presigned', 'presignee');
      expect((await fetch(tampered)).status).toBe(403);
    });

    it('keeps tenants apart and lets a public-read bucket be listed and a public-read object be read anonymously', async () => {
      const Bucket = b('alpha');
      expect(
        (await s3Error(globex.send(new GetObjectCommand({ Bucket, Key: 'docs/readme.txt' })))).code,
      ).toBe('AccessDenied');
      expect(
        (await s3Error(globex.send(new PutObjectCommand({ Bucket, Key: 'intruder', Body: 'x' })))).code,
      ).toBe('AccessDenied');
      expect((await s3Error(globex.send(new ListObjectsV2Command({ Bucket })))).code).toBe('AccessDenied');
      const anon = await fetch(`${cp.endpoints.s3}/${Bucket}/docs/readme.txt`);
      expect(anon.status).toBe(403);
      await acme.send(new PutBucketAclCommand({ Bucket, ACL: 'public-read' }));
      // As on AWS, the bucket's ACL governs listings; each object's own ACL governs reading it.
      expect((await fetch(`${cp.endpoints.s3}/${Bucket}?list-type=2`)).status).toBe(200);
      expect((await fetch(`${cp.endpoints.s3}/${Bucket}/docs/readme.txt`)).status).toBe(403);
      await acme.send(new PutObjectAclCommand({ Bucket, Key: 'docs/readme.txt', ACL: 'public-read' }));
      const pub = await fetch(`${cp.endpoints.s3}/${Bucket}/docs/readme.txt`);
      expect([pub.status, await pub.text()]).toEqual([200, 'hello world']);
      await acme.send(new PutObjectAclCommand({ Bucket, Key: 'docs/readme.txt', ACL: 'private' }));
      expect(
        (await fetch(`${cp.endpoints.s3}/${Bucket}/anon-write`, { method: 'PUT', body: 'x' })).status,
      ).toBe(403);
      expect((await fetch(`${cp.endpoints.s3}/`)).status).toBe(403);
      await acme.send(new PutBucketAclCommand({ Bucket, ACL: 'private' }));
      expect((await fetch(`${cp.endpoints.s3}/${Bucket}/docs/readme.txt`)).status).toBe(403);
      const denials = await cp.database.db
        .selectFrom('audit_events')
        .select(['action', 'outcome'])
        .where('outcome', '=', 'denied')
        .where('action', 'like', 's3:%')
        .execute();
      expect(denials.length).toBeGreaterThan(0);
    });

    it('addresses the bucket from the Host header (virtual-hosted style)', async () => {
      const port = new URL(cp.endpoints.s3).port;
      const now = new Date();
      const url = new URL(`http://${b('alpha')}.localhost:${port}/docs/readme.txt`);
      const headers = signRequest({
        method: 'GET',
        url,
        headers: {},
        accessKeyId: keys.acme.accessKeyId,
        secretAccessKey: keys.acme.secretAccessKey,
        region: 'us-east-1',
        service: 's3',
        now,
      });
      const body = await new Promise<string>((resolve, reject) => {
        const r = httpRequest(
          {
            host: '127.0.0.1',
            port,
            path: url.pathname,
            method: 'GET',
            headers: { ...headers, host: url.host },
          },
          (res) => {
            let s = '';
            res.on('data', (d) => {
              s += d;
            });
            res.on('end', () => resolve(`${res.statusCode} ${s}`));
          },
        );
        r.on('error', reject);
        r.end();
      });
      expect(body).toBe('200 hello world');
    });

    it('reserves bucket and storage quotas and meters requests, egress and stored bytes', async () => {
      const small = s3Client(cp, await keys.keysFor('tight', 'tom', { buckets: 1, storageBytes: 1000 }));
      await small.send(new CreateBucketCommand({ Bucket: b('tight-one') }));
      expect((await s3Error(small.send(new CreateBucketCommand({ Bucket: b('tight-two') })))).code).toBe(
        'TooManyBuckets',
      );
      await small.send(new PutObjectCommand({ Bucket: b('tight-one'), Key: 'a', Body: randomBytes(600) }));
      expect(
        (
          await s3Error(
            small.send(new PutObjectCommand({ Bucket: b('tight-one'), Key: 'b', Body: randomBytes(600) })),
          )
        ).code,
      ).toBe('QuotaExceeded');
      // Replacing an object only needs the difference.
      await small.send(new PutObjectCommand({ Bucket: b('tight-one'), Key: 'a', Body: randomBytes(900) }));
      await small.send(new DeleteObjectCommand({ Bucket: b('tight-one'), Key: 'a' }));
      await small.send(new PutObjectCommand({ Bucket: b('tight-one'), Key: 'b', Body: randomBytes(1000) }));
      const tenant = await cp.database.db
        .selectFrom('buckets')
        .select('tenant_id')
        .where('name', '=', b('tight-one'))
        .executeTakeFirstOrThrow();
      const used = await cp.database.db
        .selectFrom('quotas')
        .select(['resource', 'used'])
        .where('tenant_id', '=', tenant.tenant_id)
        .where('resource', 'in', ['buckets', 'storageBytes'])
        .orderBy('resource')
        .execute();
      expect(used.map((u) => [u.resource, Number(u.used)])).toEqual([
        ['buckets', 1],
        ['storageBytes', 1000],
      ]);
      await small.send(new GetObjectCommand({ Bucket: b('tight-one'), Key: 'b' })).then(text);
      const meters = await until(
        's3 usage rows',
        async () => {
          const rows = await cp.database.db
            .selectFrom('usage_records')
            .select(['meter', (eb) => eb.fn.sum<number | string>('quantity').as('total')])
            .where('tenant_id', '=', tenant.tenant_id)
            .groupBy('meter')
            .execute();
          const m = Object.fromEntries(rows.map((r) => [r.meter, Number(r.total)]));
          return m['s3.egress-bytes'] && m['s3.storage-byte-seconds'] ? m : undefined;
        },
        10_000,
        100,
      );
      expect(meters['s3.egress-bytes']).toBe(1000);
      expect(meters['s3.requests-class-a']).toBeGreaterThanOrEqual(4);
      expect(meters['s3.requests-class-b']).toBeGreaterThanOrEqual(1);
    });

    it('asks the quota gates (billing) before storing a PUT and stores nothing when one refuses', async () => {
      const Bucket = b('gated');
      await acme.send(new CreateBucketCommand({ Bucket }));
      const seen: string[] = [];
      let refuse = true;
      const remove = addQuotaGate(async (_trx, tenantId, resource) => {
        if (resource !== 'storageBytes') return;
        seen.push(tenantId);
        if (refuse) throw new YunhaiError('QuotaExceeded', 'out of balance');
      });
      try {
        expect(
          (await s3Error(acme.send(new PutObjectCommand({ Bucket, Key: 'no', Body: 'refused' })))).code,
        ).toBe('QuotaExceeded');
        expect((await s3Error(acme.send(new GetObjectCommand({ Bucket, Key: 'no' })))).code).toBe(
          'NoSuchKey',
        );
        refuse = false;
        seen.length = 0;
        await Promise.all(
          Array.from({ length: 8 }, (_, i) =>
            acme.send(new PutObjectCommand({ Bucket, Key: `yes${i}`, Body: 'stored' })),
          ),
        );
        // Every PUT passed a gate; on SQLite the PUTs of one group commit share one pass.
        expect(seen.length).toBeGreaterThanOrEqual(1);
        expect(seen.length).toBeLessThanOrEqual(8);
        expect(String(await text(await acme.send(new GetObjectCommand({ Bucket, Key: 'yes7' }))))).toBe(
          'stored',
        );
      } finally {
        remove();
      }
    });

    it('sweeps blobs that no row references and temp files of interrupted puts', async () => {
      const Bucket = b('alpha');
      const orphanDir = join(cp.dataDir, 'blobs', 'ab');
      mkdirSync(orphanDir, { recursive: true });
      const orphan = join(orphanDir, 'ab'.padEnd(32, '0'));
      writeFileSync(orphan, 'orphan');
      writeFileSync(join(cp.dataDir, 'blobs', 'tmp', 'deadbeef.tmp'), 'half');
      expect(await cp.objects.sweepOrphans(Date.now() + 1000)).toEqual({ blobs: 1, temps: 1 });
      expect(() => statSync(orphan)).toThrow();
      expect(
        (await text(await acme.send(new GetObjectCommand({ Bucket, Key: 'docs/readme.txt' })))).toString(),
      ).toBe('hello world');
      expect(
        (
          await text(
            await acme.send(new GetObjectCommand({ Bucket, Key: 'multi/big.bin', Range: 'bytes=0-0' })),
          )
        ).length,
      ).toBe(1);
    });

    it('stores bodies up to 64 KiB in their row: read whole, by range, copied, as a copied part, versioned, encrypted, deleted', async () => {
      const Bucket = b('inline');
      await acme.send(new CreateBucketCommand({ Bucket }));
      const blobFiles = () =>
        readdirSync(join(cp.dataDir, 'blobs'))
          .filter((d) => /^[0-9a-f]{2}$/.test(d))
          .flatMap((d) => readdirSync(join(cp.dataDir, 'blobs', d)));
      const row = (Key: string) =>
        cp.database.db
          .selectFrom('objects')
          .select(['blob_id', 'body', 'size', 'version_id'])
          .where('bucket', '=', Bucket)
          .where('key', '=', Key)
          .where('is_latest', '=', 1)
          .executeTakeFirstOrThrow();
      const before = blobFiles().length;
      const small = randomBytes(64 * 1024);
      const put = await acme.send(new PutObjectCommand({ Bucket, Key: 'small', Body: small }));
      expect(put.ETag).toBe(`"${createHash('md5').update(small).digest('hex')}"`);
      await acme.send(new PutObjectCommand({ Bucket, Key: 'empty', Body: Buffer.alloc(0) }));
      expect(blobFiles().length).toBe(before);
      const r = await row('small');
      expect(r.blob_id).toBeNull();
      expect(Buffer.from(r.body!).equals(small)).toBe(true);
      // One byte more is a blob.
      await acme.send(new PutObjectCommand({ Bucket, Key: 'large', Body: randomBytes(64 * 1024 + 1) }));
      expect(blobFiles().length).toBe(before + 1);
      expect((await row('large')).body).toBeNull();

      expect(
        (await text(await acme.send(new GetObjectCommand({ Bucket, Key: 'small' })))).equals(small),
      ).toBe(true);
      const ranged = await acme.send(new GetObjectCommand({ Bucket, Key: 'small', Range: 'bytes=100-4195' }));
      expect(ranged.ContentRange).toBe(`bytes 100-4195/${small.length}`);
      expect((await text(ranged)).equals(small.subarray(100, 4196))).toBe(true);
      expect((await text(await acme.send(new GetObjectCommand({ Bucket, Key: 'empty' })))).length).toBe(0);
      expect((await acme.send(new HeadObjectCommand({ Bucket, Key: 'small' }))).ContentLength).toBe(
        small.length,
      );

      // Copies of inline bodies are inline; a part copied from one works in a multipart upload.
      await acme.send(new CopyObjectCommand({ Bucket, Key: 'copy', CopySource: `${Bucket}/small` }));
      expect(Buffer.from((await row('copy')).body!).equals(small)).toBe(true);
      const up = await acme.send(new CreateMultipartUploadCommand({ Bucket, Key: 'joined' }));
      const p1 = await acme.send(
        new UploadPartCopyCommand({
          Bucket,
          Key: 'joined',
          UploadId: up.UploadId,
          PartNumber: 1,
          CopySource: `${Bucket}/small`,
          CopySourceRange: 'bytes=0-1023',
        }),
      );
      await acme.send(
        new CompleteMultipartUploadCommand({
          Bucket,
          Key: 'joined',
          UploadId: up.UploadId,
          MultipartUpload: { Parts: [{ PartNumber: 1, ETag: p1.CopyPartResult!.ETag! }] },
        }),
      );
      expect(
        (await text(await acme.send(new GetObjectCommand({ Bucket, Key: 'joined' })))).equals(
          small.subarray(0, 1024),
        ),
      ).toBe(true);

      // Versions keep their own inline bodies.
      await acme.send(
        new PutBucketVersioningCommand({ Bucket, VersioningConfiguration: { Status: 'Enabled' } }),
      );
      const v1 = await acme.send(new PutObjectCommand({ Bucket, Key: 'ver', Body: 'first' }));
      const v2 = await acme.send(new PutObjectCommand({ Bucket, Key: 'ver', Body: 'second' }));
      const read = async (VersionId: string) =>
        (await text(await acme.send(new GetObjectCommand({ Bucket, Key: 'ver', VersionId })))).toString();
      expect(await read(v1.VersionId!)).toBe('first');
      expect(await read(v2.VersionId!)).toBe('second');
      await acme.send(new DeleteObjectCommand({ Bucket, Key: 'ver', VersionId: v2.VersionId! }));
      expect((await text(await acme.send(new GetObjectCommand({ Bucket, Key: 'ver' })))).toString()).toBe(
        'first',
      );

      // Encrypted at rest in the row too.
      const secret = Buffer.from('inline and encrypted '.repeat(100));
      await acme.send(
        new PutObjectCommand({ Bucket, Key: 'sealed', Body: secret, ServerSideEncryption: 'AES256' }),
      );
      const sealed = Buffer.from((await row('sealed')).body!);
      expect(sealed.length).toBeGreaterThan(secret.length);
      expect(sealed.includes(Buffer.from('inline and encrypted'))).toBe(false);
      const back = await acme.send(new GetObjectCommand({ Bucket, Key: 'sealed', Range: 'bytes=5-30' }));
      expect((await text(back)).equals(secret.subarray(5, 31))).toBe(true);
      expect(back.ServerSideEncryption).toBe('AES256');

      // The orphan sweep leaves inline objects alone; listings and deletes work as for blobs.
      await cp.objects.sweepOrphans(Date.now() + 1000);
      expect((await text(await acme.send(new GetObjectCommand({ Bucket, Key: 'copy' })))).equals(small)).toBe(
        true,
      );
      const listed = await acme.send(new ListObjectsV2Command({ Bucket }));
      expect(listed.Contents?.find((c) => c.Key === 'small')?.Size).toBe(small.length);
      await acme.send(new DeleteObjectCommand({ Bucket, Key: 'copy' }));
      expect((await s3Error(acme.send(new GetObjectCommand({ Bucket, Key: 'copy' })))).code).toBe(
        'NoSuchKey',
      );
    });

    it('keeps the audit chain verifiable when concurrent PUTs (some refused by a precondition) commit together', async () => {
      const Bucket = b('chain');
      await acme.send(new CreateBucketCommand({ Bucket }));
      await acme.send(new PutObjectCommand({ Bucket, Key: 'taken', Body: 'x' }));
      const before = await cp.database.db
        .selectFrom('audit_events')
        .select((eb) => eb.fn.countAll<number | string>().as('n'))
        .where('action', '=', 's3:PutObject')
        .executeTakeFirstOrThrow();
      const results = await Promise.allSettled(
        Array.from({ length: 24 }, (_, i) =>
          acme.send(
            new PutObjectCommand({
              Bucket,
              Key: i % 4 === 3 ? 'taken' : `k${i}`,
              Body: randomBytes(100 + i),
              IfNoneMatch: '*',
            }),
          ),
        ),
      );
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(18);
      const after = await cp.database.db
        .selectFrom('audit_events')
        .select((eb) => eb.fn.countAll<number | string>().as('n'))
        .where('action', '=', 's3:PutObject')
        .executeTakeFirstOrThrow();
      expect(Number(after.n) - Number(before.n)).toBe(18);
      const verified = await verifyAudit(cp.database.db);
      expect(verified.problem).toBeUndefined();
      expect(verified.ok).toBe(true);
    });

    it('audits bucket and object changes', async () => {
      const audited = await cp.database.db
        .selectFrom('audit_events')
        .select('action')
        .where('action', 'like', 's3:%')
        .where('outcome', '=', 'success')
        .distinct()
        .execute();
      expect(audited.map((a) => a.action)).toEqual(
        expect.arrayContaining([
          's3:CreateBucket',
          's3:DeleteBucket',
          's3:PutObject',
          's3:DeleteObject',
          's3:CopyObject',
          's3:CompleteMultipartUpload',
          's3:PutBucketVersioning',
        ]),
      );
    });
  });
}
