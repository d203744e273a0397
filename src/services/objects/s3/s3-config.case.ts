import {
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteBucketCorsCommand,
  DeleteBucketLifecycleCommand,
  DeleteBucketPolicyCommand,
  DeleteObjectCommand,
  GetBucketAclCommand,
  GetBucketCorsCommand,
  GetBucketLifecycleConfigurationCommand,
  GetBucketPolicyCommand,
  GetBucketPolicyStatusCommand,
  GetObjectAclCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListObjectVersionsCommand,
  PutBucketAclCommand,
  PutBucketCorsCommand,
  PutBucketLifecycleConfigurationCommand,
  PutBucketOwnershipControlsCommand,
  PutBucketPolicyCommand,
  PutBucketVersioningCommand,
  PutObjectAclCommand,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestControlPlane, type TestControlPlane } from '../../../test-support/control-plane.js';
import { rawS3, type S3Keys, s3Client, seedS3Tenants } from '../../../test-support/s3.js';

/** What the SDK makes of an S3 error. */
export async function s3Error(p: Promise<unknown>): Promise<{ code: string; status: number }> {
  try {
    await p;
  } catch (e) {
    const err = e as { name: string; Code?: string; $metadata?: { httpStatusCode?: number } };
    return { code: err.Code ?? err.name, status: err.$metadata?.httpStatusCode ?? 0 };
  }
  throw new Error('expected the call to fail');
}

const text = async (r: { Body?: unknown }) =>
  Buffer.from(
    await (r.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray(),
  ).toString();

/**
 * Bucket configuration documents wired into the S3 listener (bucket policy, ACLs, CORS,
 * lifecycle, encryption, object lock) through @aws-sdk/client-s3, once per SQL dialect
 * (s3-config.sqlite.test.ts, s3-config.postgres.test.ts).
 */
export function runS3ConfigSuite(dialect: 'sqlite' | 'postgres') {
  describe(`S3 bucket configuration on ${dialect}`, () => {
    let cp: TestControlPlane;
    let keys: { acme: S3Keys; globex: S3Keys };
    let acme: S3Client;
    let globex: S3Client;
    let acmeAccount: string;
    let globexAccount: string;
    const b = (name: string) => `${name}-cfg-${dialect}`;

    beforeAll(async () => {
      cp = await startTestControlPlane({ dialect });
      keys = await seedS3Tenants(cp);
      acme = s3Client(cp, keys.acme);
      globex = s3Client(cp, keys.globex);
      const accountOf = async (name: string) =>
        (
          await cp.database.db
            .selectFrom('tenants')
            .select('account_id')
            .where('name', '=', name)
            .executeTakeFirstOrThrow()
        ).account_id;
      acmeAccount = await accountOf('acme');
      globexAccount = await accountOf('globex');
    });
    afterAll(async () => cp?.stop());

    it('stores, validates and enforces bucket policies', async () => {
      const Bucket = b('policy');
      await acme.send(new CreateBucketCommand({ Bucket }));
      await acme.send(new PutObjectCommand({ Bucket, Key: 'public/a.txt', Body: 'A' }));
      await acme.send(new PutObjectCommand({ Bucket, Key: 'secret/b.txt', Body: 'B' }));
      expect(await s3Error(acme.send(new GetBucketPolicyCommand({ Bucket })))).toEqual({
        code: 'NoSuchBucketPolicy',
        status: 404,
      });
      for (const bad of [
        'not json',
        '{"Statement":[]}',
        JSON.stringify({
          Version: '2012-10-17',
          Statement: [
            { Effect: 'Allow', Principal: '*', Action: 's3:GetObject', Resource: 'arn:aws:s3:::other/*' },
          ],
        }),
        JSON.stringify({
          Version: '2012-10-17',
          Statement: [
            { Effect: 'Maybe', Principal: '*', Action: 's3:GetObject', Resource: `arn:aws:s3:::${Bucket}/*` },
          ],
        }),
      ]) {
        expect(await s3Error(acme.send(new PutBucketPolicyCommand({ Bucket, Policy: bad })))).toEqual({
          code: 'MalformedPolicy',
          status: 400,
        });
      }
      // Anonymous read of public/*, globex may list with prefix public/ only.
      const policy = JSON.stringify({
        Version: '2012-10-17',
        Statement: [
          {
            Sid: 'pub',
            Effect: 'Allow',
            Principal: '*',
            Action: 's3:GetObject',
            Resource: `arn:aws:s3:::${Bucket}/public/*`,
          },
          {
            Sid: 'list',
            Effect: 'Allow',
            Principal: { AWS: `arn:aws:iam::${globexAccount}:root` },
            Action: 's3:ListBucket',
            Resource: `arn:aws:s3:::${Bucket}`,
            Condition: { StringLike: { 's3:prefix': 'public/*' } },
          },
        ],
      });
      await acme.send(new PutBucketPolicyCommand({ Bucket, Policy: policy }));
      expect((await acme.send(new GetBucketPolicyCommand({ Bucket }))).Policy).toBe(policy);
      expect((await acme.send(new GetBucketPolicyStatusCommand({ Bucket }))).PolicyStatus?.IsPublic).toBe(
        true,
      );

      const anon = await fetch(`${cp.endpoints.s3}/${Bucket}/public/a.txt`);
      expect([anon.status, await anon.text()]).toEqual([200, 'A']);
      expect((await fetch(`${cp.endpoints.s3}/${Bucket}/secret/b.txt`)).status).toBe(403);
      // Another tenant: only what the policy grants explicitly.
      expect(await text(await globex.send(new GetObjectCommand({ Bucket, Key: 'public/a.txt' })))).toBe('A');
      expect((await s3Error(globex.send(new GetObjectCommand({ Bucket, Key: 'secret/b.txt' })))).code).toBe(
        'AccessDenied',
      );
      // A missing key answers 404 only to callers who may list it (the policy's s3:prefix applies).
      expect(
        (await s3Error(globex.send(new HeadObjectCommand({ Bucket, Key: 'public/missing' })))).status,
      ).toBe(404);
      expect(
        (await s3Error(globex.send(new HeadObjectCommand({ Bucket, Key: 'secret/missing' })))).status,
      ).toBe(403);
      const listed = await globex.send(new ListObjectsV2Command({ Bucket, Prefix: 'public/' }));
      expect(listed.Contents?.map((o) => o.Key)).toEqual(['public/a.txt']);
      expect((await s3Error(globex.send(new ListObjectsV2Command({ Bucket, Prefix: 'secret/' })))).code).toBe(
        'AccessDenied',
      );
      expect(
        (await s3Error(globex.send(new PutObjectCommand({ Bucket, Key: 'public/x', Body: 'x' })))).code,
      ).toBe('AccessDenied');
      expect((await s3Error(globex.send(new GetBucketPolicyCommand({ Bucket })))).code).toBe('AccessDenied');

      // An explicit Deny wins over the owner's own rights, on the condition keys the request carries.
      await acme.send(
        new PutBucketPolicyCommand({
          Bucket,
          Policy: JSON.stringify({
            Version: '2012-10-17',
            Statement: [
              {
                Effect: 'Deny',
                Principal: '*',
                Action: 's3:PutObject',
                Resource: `arn:aws:s3:::${Bucket}/*`,
                Condition: { StringNotEquals: { 's3:x-amz-acl': 'bucket-owner-full-control' } },
              },
              {
                Effect: 'Deny',
                Principal: '*',
                Action: 's3:GetObject',
                Resource: `arn:aws:s3:::${Bucket}/secret/*`,
              },
            ],
          }),
        }),
      );
      expect((await acme.send(new GetBucketPolicyStatusCommand({ Bucket }))).PolicyStatus?.IsPublic).toBe(
        false,
      );
      expect((await s3Error(acme.send(new GetObjectCommand({ Bucket, Key: 'secret/b.txt' })))).code).toBe(
        'AccessDenied',
      );
      expect((await s3Error(acme.send(new PutObjectCommand({ Bucket, Key: 'c', Body: 'c' })))).code).toBe(
        'AccessDenied',
      );
      await acme.send(
        new PutObjectCommand({ Bucket, Key: 'c', Body: 'c', ACL: 'bucket-owner-full-control' }),
      );
      expect(await text(await acme.send(new GetObjectCommand({ Bucket, Key: 'public/a.txt' })))).toBe('A');
      // The owner can always remove a policy that locks it out.
      await acme.send(new DeleteBucketPolicyCommand({ Bucket }));
      expect((await acme.send(new GetBucketPolicyStatusCommand({ Bucket }))).PolicyStatus?.IsPublic).toBe(
        false,
      );
      await acme.send(new PutBucketAclCommand({ Bucket, ACL: 'public-read' }));
      expect((await acme.send(new GetBucketPolicyStatusCommand({ Bucket }))).PolicyStatus?.IsPublic).toBe(
        true,
      );
      await acme.send(new PutBucketAclCommand({ Bucket, ACL: 'private' }));
      expect(await text(await acme.send(new GetObjectCommand({ Bucket, Key: 'secret/b.txt' })))).toBe('B');
      expect((await fetch(`${cp.endpoints.s3}/${Bucket}/public/a.txt`)).status).toBe(403);
      const audited = await cp.database.db
        .selectFrom('audit_events')
        .select('action')
        .where('resource', '=', `arn:aws:s3:::${Bucket}`)
        .where('action', 'in', ['s3:PutBucketPolicy', 's3:DeleteBucketPolicy'])
        .execute();
      expect(audited.length).toBe(3);
    });

    it('reads and writes bucket and object ACLs (canned, grant headers, XML) and enforces them', async () => {
      const Bucket = b('acl');
      await acme.send(new CreateBucketCommand({ Bucket }));
      await acme.send(new PutObjectCommand({ Bucket, Key: 'o', Body: 'obj' }));
      const acl = await acme.send(new GetBucketAclCommand({ Bucket }));
      expect(acl.Owner?.ID).toBe(acmeAccount);
      expect(acl.Grants).toEqual([
        {
          Grantee: { Type: 'CanonicalUser', ID: acmeAccount, DisplayName: 'acme' },
          Permission: 'FULL_CONTROL',
        },
      ]);
      // Grant headers: globex may read the bucket listing.
      await acme.send(new PutBucketAclCommand({ Bucket, GrantRead: `id="${globexAccount}"` }));
      expect((await acme.send(new GetBucketAclCommand({ Bucket }))).Grants).toEqual([
        { Grantee: { Type: 'CanonicalUser', ID: globexAccount, DisplayName: 'globex' }, Permission: 'READ' },
      ]);
      expect((await globex.send(new ListObjectsV2Command({ Bucket }))).KeyCount).toBe(1);
      expect((await s3Error(globex.send(new GetObjectCommand({ Bucket, Key: 'o' })))).code).toBe(
        'AccessDenied',
      );
      expect((await s3Error(globex.send(new PutObjectCommand({ Bucket, Key: 'g', Body: 'g' })))).code).toBe(
        'AccessDenied',
      );
      // An AccessControlPolicy body: globex may write, everyone may read the listing.
      await acme.send(
        new PutBucketAclCommand({
          Bucket,
          AccessControlPolicy: {
            Owner: { ID: acmeAccount },
            Grants: [
              { Grantee: { Type: 'CanonicalUser', ID: acmeAccount }, Permission: 'FULL_CONTROL' },
              { Grantee: { Type: 'CanonicalUser', ID: globexAccount }, Permission: 'WRITE' },
              {
                Grantee: { Type: 'Group', URI: 'http://acs.amazonaws.com/groups/global/AllUsers' },
                Permission: 'READ',
              },
            ],
          },
        }),
      );
      expect((await acme.send(new GetBucketAclCommand({ Bucket }))).Grants?.map((g) => g.Permission)).toEqual(
        ['READ', 'FULL_CONTROL', 'WRITE'],
      );
      expect((await fetch(`${cp.endpoints.s3}/${Bucket}`)).status).toBe(200);
      await globex.send(new PutObjectCommand({ Bucket, Key: 'g', Body: 'from globex' }));
      // The writer owns its object; the object's ACL governs reads of it.
      const gAcl = await globex.send(new GetObjectAclCommand({ Bucket, Key: 'g' }));
      expect(gAcl.Owner?.ID).toBe(globexAccount);
      expect(await text(await globex.send(new GetObjectCommand({ Bucket, Key: 'g' })))).toBe('from globex');
      // ... so the bucket owner reads it, or its ACL, only if the writer grants that.
      expect((await s3Error(acme.send(new GetObjectAclCommand({ Bucket, Key: 'g' })))).code).toBe(
        'AccessDenied',
      );
      expect((await s3Error(acme.send(new GetObjectCommand({ Bucket, Key: 'g' })))).code).toBe(
        'AccessDenied',
      );
      await globex.send(new PutObjectAclCommand({ Bucket, Key: 'g', ACL: 'bucket-owner-read' }));
      expect(await text(await acme.send(new GetObjectCommand({ Bucket, Key: 'g' })))).toBe('from globex');
      // Object ACLs: canned and grant headers, per version.
      await acme.send(new PutObjectAclCommand({ Bucket, Key: 'o', ACL: 'public-read' }));
      expect((await fetch(`${cp.endpoints.s3}/${Bucket}/o`)).status).toBe(200);
      expect(
        (await acme.send(new GetObjectAclCommand({ Bucket, Key: 'o' }))).Grants?.map((g) => [
          g.Grantee?.URI ?? g.Grantee?.ID,
          g.Permission,
        ]),
      ).toEqual([
        ['http://acs.amazonaws.com/groups/global/AllUsers', 'READ'],
        [acmeAccount, 'FULL_CONTROL'],
      ]);
      await acme.send(
        new PutObjectCommand({ Bucket, Key: 'h', Body: 'h', GrantRead: `id="${globexAccount}"` }),
      );
      expect(await text(await globex.send(new GetObjectCommand({ Bucket, Key: 'h' })))).toBe('h');
      expect(
        (await s3Error(globex.send(new PutObjectAclCommand({ Bucket, Key: 'h', ACL: 'public-read' })))).code,
      ).toBe('AccessDenied');
      // Bad input.
      expect(
        (
          await rawS3(cp, keys.acme, 'PUT', `/${Bucket}?acl`, {
            headers: { 'x-amz-grant-read': 'id="999999999999"' },
          })
        ).code,
      ).toBe('InvalidArgument');
      expect(
        (
          await rawS3(cp, keys.acme, 'PUT', `/${Bucket}/o?acl`, {
            headers: { 'x-amz-acl': 'public-read', 'x-amz-grant-read': `id="${globexAccount}"` },
          })
        ).code,
      ).toBe('InvalidRequest');
      expect(
        (
          await rawS3(cp, keys.acme, 'PUT', `/${Bucket}?acl`, {
            body: '<AccessControlPolicy><Nope/></AccessControlPolicy>',
          })
        ).code,
      ).toMatch(/Malformed/);
      // BucketOwnerEnforced turns ACLs off.
      await acme.send(
        new PutBucketOwnershipControlsCommand({
          Bucket,
          OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
        }),
      );
      expect(await s3Error(acme.send(new PutBucketAclCommand({ Bucket, ACL: 'public-read' })))).toEqual({
        code: 'AccessControlListNotSupported',
        status: 400,
      });
      expect((await fetch(`${cp.endpoints.s3}/${Bucket}/o`)).status).toBe(403);
    });

    it('serves CORS configurations: preflights and headers on actual requests', async () => {
      const Bucket = b('cors');
      await acme.send(new CreateBucketCommand({ Bucket }));
      await acme.send(new PutObjectCommand({ Bucket, Key: 'k', Body: 'v' }));
      const preflight = (origin: string, method: string, headers?: string) =>
        fetch(`${cp.endpoints.s3}/${Bucket}/k`, {
          method: 'OPTIONS',
          headers: {
            origin,
            'access-control-request-method': method,
            ...(headers ? { 'access-control-request-headers': headers } : {}),
          },
        });
      expect((await preflight('https://a.example', 'GET')).status).toBe(403);
      expect(await s3Error(acme.send(new GetBucketCorsCommand({ Bucket })))).toEqual({
        code: 'NoSuchCORSConfiguration',
        status: 404,
      });
      await acme.send(
        new PutBucketCorsCommand({
          Bucket,
          CORSConfiguration: {
            CORSRules: [
              {
                AllowedOrigins: ['https://*.example'],
                AllowedMethods: ['GET', 'PUT'],
                AllowedHeaders: ['x-amz-*', 'content-type'],
                ExposeHeaders: ['ETag'],
                MaxAgeSeconds: 600,
              },
              { AllowedOrigins: ['*'], AllowedMethods: ['GET'] },
            ],
          },
        }),
      );
      const got = await acme.send(new GetBucketCorsCommand({ Bucket }));
      expect(got.CORSRules?.[0]?.AllowedOrigins).toEqual(['https://*.example']);
      expect(got.CORSRules?.[0]?.MaxAgeSeconds).toBe(600);
      const ok = await preflight('https://a.example', 'PUT', 'Content-Type, X-Amz-Date');
      expect(ok.status).toBe(200);
      expect(ok.headers.get('access-control-allow-origin')).toBe('https://a.example');
      expect(ok.headers.get('access-control-allow-methods')).toBe('GET, PUT');
      expect(ok.headers.get('access-control-allow-headers')).toBe('content-type, x-amz-date');
      expect(ok.headers.get('access-control-max-age')).toBe('600');
      expect((await preflight('https://a.example', 'DELETE')).status).toBe(403);
      expect((await preflight('https://a.example', 'PUT', 'authorization')).status).toBe(403);
      expect((await preflight('https://other.test', 'GET')).headers.get('access-control-allow-origin')).toBe(
        '*',
      );
      // Actual requests: headers only when a rule matches; the request itself is authorised as usual.
      const actual = await fetch(`${cp.endpoints.s3}/${Bucket}/k`, {
        headers: { origin: 'https://a.example' },
      });
      expect(actual.status).toBe(403);
      expect(actual.headers.get('access-control-allow-origin')).toBe('https://a.example');
      expect(actual.headers.get('access-control-expose-headers')).toBe('ETag');
      const none = await fetch(`${cp.endpoints.s3}/${Bucket}/k`, {
        method: 'DELETE',
        headers: { origin: 'https://a.example' },
      });
      expect(none.headers.get('access-control-allow-origin')).toBeNull();
      expect(
        (
          await rawS3(cp, keys.acme, 'PUT', `/${Bucket}?cors`, {
            body: '<CORSConfiguration><CORSRule><AllowedMethod>PATCH</AllowedMethod><AllowedOrigin>*</AllowedOrigin></CORSRule></CORSConfiguration>',
          })
        ).code,
      ).toBe('InvalidRequest');
      await acme.send(new DeleteBucketCorsCommand({ Bucket }));
      expect((await preflight('https://a.example', 'GET')).status).toBe(403);
    });

    it('applies lifecycle rules: x-amz-expiration and the background pass', async () => {
      const DAY = 86_400_000;
      const Bucket = b('lifecycle');
      const Versioned = b('lifecycle-v');
      await acme.send(new CreateBucketCommand({ Bucket }));
      await acme.send(new CreateBucketCommand({ Bucket: Versioned }));
      await acme.send(
        new PutBucketVersioningCommand({ Bucket: Versioned, VersioningConfiguration: { Status: 'Enabled' } }),
      );
      expect(
        (
          await rawS3(cp, keys.acme, 'PUT', `/${Bucket}?lifecycle`, {
            body: '<LifecycleConfiguration><Rule><ID>x</ID><Status>Enabled</Status><Filter><Prefix>a</Prefix></Filter><Expiration><Days>0</Days></Expiration></Rule></LifecycleConfiguration>',
          })
        ).code,
      ).toBe('InvalidArgument');
      await acme.send(
        new PutBucketLifecycleConfigurationCommand({
          Bucket,
          LifecycleConfiguration: {
            Rules: [
              { ID: 'tmp', Status: 'Enabled', Filter: { Prefix: 'tmp/' }, Expiration: { Days: 1 } },
              {
                ID: 'uploads',
                Status: 'Enabled',
                Filter: { Prefix: '' },
                AbortIncompleteMultipartUpload: { DaysAfterInitiation: 2 },
              },
            ],
          },
        }),
      );
      const rules = (await acme.send(new GetBucketLifecycleConfigurationCommand({ Bucket }))).Rules;
      expect(rules?.map((r) => r.ID)).toEqual(['tmp', 'uploads']);
      const put = await acme.send(new PutObjectCommand({ Bucket, Key: 'tmp/a', Body: 'a' }));
      expect(put.Expiration).toMatch(/^expiry-date="[^"]+ 00:00:00 GMT", rule-id="tmp"$/);
      expect((await acme.send(new HeadObjectCommand({ Bucket, Key: 'tmp/a' }))).Expiration).toBe(
        put.Expiration,
      );
      expect((await acme.send(new GetObjectCommand({ Bucket, Key: 'tmp/a' }))).Expiration).toBe(
        put.Expiration,
      );
      await acme.send(new PutObjectCommand({ Bucket, Key: 'keep', Body: 'k' }));
      expect((await acme.send(new HeadObjectCommand({ Bucket, Key: 'keep' }))).Expiration).toBeUndefined();
      const upload = await acme.send(new CreateMultipartUploadCommand({ Bucket, Key: 'big' }));

      await acme.send(
        new PutBucketLifecycleConfigurationCommand({
          Bucket: Versioned,
          LifecycleConfiguration: {
            Rules: [
              {
                ID: 'all',
                Status: 'Enabled',
                Filter: {},
                Expiration: { Days: 1 },
                NoncurrentVersionExpiration: { NoncurrentDays: 1 },
              },
              {
                ID: 'markers',
                Status: 'Enabled',
                Filter: { Prefix: 'm' },
                Expiration: { ExpiredObjectDeleteMarker: true },
              },
            ],
          },
        }),
      );
      await acme.send(new PutObjectCommand({ Bucket: Versioned, Key: 'v', Body: '1' }));
      await acme.send(new PutObjectCommand({ Bucket: Versioned, Key: 'v', Body: '2' }));
      await acme.send(new PutObjectCommand({ Bucket: Versioned, Key: 'm', Body: 'm' }));
      await acme.send(new DeleteObjectCommand({ Bucket: Versioned, Key: 'm' }));

      // Nothing is due yet.
      expect((await cp.objects.runLifecycle()).expired).toBe(0);
      const first = await cp.objects.runLifecycle(Date.now() + 3 * DAY);
      expect(first).toMatchObject({ expired: 2, noncurrentDeleted: 2, uploadsAborted: 1, failed: 0 });
      expect((await acme.send(new ListObjectsV2Command({ Bucket }))).Contents?.map((o) => o.Key)).toEqual([
        'keep',
      ]);
      expect((await acme.send(new ListMultipartUploadsCommand({ Bucket }))).Uploads ?? []).toEqual([]);
      expect(upload.UploadId).toBeDefined();
      const versions = await acme.send(new ListObjectVersionsCommand({ Bucket: Versioned }));
      // v: the current version expired into a delete marker; the noncurrent one and m's only version went.
      expect(versions.Versions?.map((v) => [v.Key, v.IsLatest])).toEqual([['v', false]]);
      expect(versions.DeleteMarkers?.map((d) => [d.Key, d.IsLatest])).toEqual([
        ['m', true],
        ['v', true],
      ]);
      // Next pass: m's marker has no versions left and is removed; v's marker still has one.
      const second = await cp.objects.runLifecycle(Date.now() + 3 * DAY);
      expect(second).toMatchObject({ markersRemoved: 1, noncurrentDeleted: 1 });
      const audited = await cp.database.db
        .selectFrom('audit_events')
        .select(['action', 'principal'])
        .where('principal', '=', 'lifecycle')
        .execute();
      expect(new Set(audited.map((a) => a.action))).toEqual(
        new Set(['s3:DeleteObject', 's3:DeleteObjectVersion', 's3:AbortMultipartUpload']),
      );
      await acme.send(new DeleteBucketLifecycleCommand({ Bucket }));
      expect(
        (await acme.send(new PutObjectCommand({ Bucket, Key: 'tmp/b', Body: 'b' }))).Expiration,
      ).toBeUndefined();
    });
  });
}
