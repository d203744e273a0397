import {
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  GetObjectLegalHoldCommand,
  GetObjectLockConfigurationCommand,
  GetObjectRetentionCommand,
  HeadObjectCommand,
  ListObjectVersionsCommand,
  PutBucketLifecycleConfigurationCommand,
  PutBucketVersioningCommand,
  PutObjectCommand,
  PutObjectLegalHoldCommand,
  PutObjectLockConfigurationCommand,
  PutObjectRetentionCommand,
  type S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestControlPlane, type TestControlPlane } from '../../../test-support/control-plane.js';
import { s3Client, seedS3Tenants } from '../../../test-support/s3.js';
import { s3Error } from './s3-config.case.js';

const DAY = 86_400_000;
const later = (days: number) => new Date(Date.now() + days * DAY);

/**
 * Object Lock (WORM) through @aws-sdk/client-s3, once per SQL dialect (s3-lock.sqlite.test.ts,
 * s3-lock.postgres.test.ts): bucket configuration, retention, legal hold, deletes and lifecycle.
 */
export function runS3LockSuite(dialect: 'sqlite' | 'postgres') {
  describe(`S3 object lock on ${dialect}`, () => {
    let cp: TestControlPlane;
    let acme: S3Client;
    let globex: S3Client;
    const b = (name: string) => `${name}-lock-${dialect}`;

    beforeAll(async () => {
      cp = await startTestControlPlane({ dialect });
      const keys = await seedS3Tenants(cp);
      acme = s3Client(cp, keys.acme);
      globex = s3Client(cp, keys.globex);
    });
    afterAll(async () => cp?.stop());

    it('creates a lock bucket with versioning on, which cannot be suspended; configuration is validated', async () => {
      const Bucket = b('cfg');
      await acme.send(new CreateBucketCommand({ Bucket, ObjectLockEnabledForBucket: true }));
      expect(
        await s3Error(
          acme.send(
            new PutBucketVersioningCommand({ Bucket, VersioningConfiguration: { Status: 'Suspended' } }),
          ),
        ),
      ).toEqual({ code: 'InvalidBucketState', status: 409 });
      expect(
        (await acme.send(new GetObjectLockConfigurationCommand({ Bucket }))).ObjectLockConfiguration,
      ).toEqual({ ObjectLockEnabled: 'Enabled' });
      const put = (conf: object) =>
        acme.send(new PutObjectLockConfigurationCommand({ Bucket, ObjectLockConfiguration: conf }));
      await put({
        ObjectLockEnabled: 'Enabled',
        Rule: { DefaultRetention: { Mode: 'GOVERNANCE', Days: 1 } },
      });
      expect(
        (await acme.send(new GetObjectLockConfigurationCommand({ Bucket }))).ObjectLockConfiguration,
      ).toEqual({
        ObjectLockEnabled: 'Enabled',
        Rule: { DefaultRetention: { Mode: 'GOVERNANCE', Days: 1 } },
      });
      expect(
        await s3Error(
          put({
            ObjectLockEnabled: 'Enabled',
            Rule: { DefaultRetention: { Mode: 'GOVERNANCE', Days: 1, Years: 1 } },
          }),
        ),
      ).toEqual({ code: 'MalformedXML', status: 400 });
      expect(
        await s3Error(
          put({ ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: 'FOO', Days: 1 } } }),
        ),
      ).toEqual({ code: 'MalformedXML', status: 400 });
      expect(
        await s3Error(
          put({ ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Days: 0 } } }),
        ),
      ).toEqual({ code: 'InvalidRetentionPeriod', status: 400 });
      expect(await s3Error(put({ ObjectLockEnabled: 'Disabled' }))).toEqual({
        code: 'MalformedXML',
        status: 400,
      });

      // The default retention applies to new versions.
      await acme.send(new PutObjectCommand({ Bucket, Key: 'd', Body: 'x' }));
      const head = await acme.send(new HeadObjectCommand({ Bucket, Key: 'd' }));
      expect(head.ObjectLockMode).toBe('GOVERNANCE');
      expect(head.ObjectLockRetainUntilDate!.getTime()).toBeGreaterThan(Date.now() + DAY - 60_000);

      // A bucket without Object Lock.
      const Plain = b('plain');
      await acme.send(new CreateBucketCommand({ Bucket: Plain }));
      expect(await s3Error(acme.send(new GetObjectLockConfigurationCommand({ Bucket: Plain })))).toEqual({
        code: 'ObjectLockConfigurationNotFoundError',
        status: 404,
      });
      expect(
        await s3Error(
          acme.send(
            new PutObjectLockConfigurationCommand({
              Bucket: Plain,
              ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled' },
            }),
          ),
        ),
      ).toEqual({ code: 'InvalidBucketState', status: 409 });
      await acme.send(new PutObjectCommand({ Bucket: Plain, Key: 'k', Body: 'x' }));
      expect(
        await s3Error(
          acme.send(
            new PutObjectRetentionCommand({
              Bucket: Plain,
              Key: 'k',
              Retention: { Mode: 'GOVERNANCE', RetainUntilDate: later(1) },
            }),
          ),
        ),
      ).toEqual({ code: 'InvalidRequest', status: 400 });
      expect(
        await s3Error(
          acme.send(
            new PutObjectCommand({
              Bucket: Plain,
              Key: 'k',
              Body: 'x',
              ObjectLockMode: 'GOVERNANCE',
              ObjectLockRetainUntilDate: later(1),
            }),
          ),
        ),
      ).toEqual({ code: 'InvalidRequest', status: 400 });
    });

    it('a version under retention or legal hold cannot be deleted; a delete without versionId adds a marker', async () => {
      const Bucket = b('worm');
      await acme.send(new CreateBucketCommand({ Bucket, ObjectLockEnabledForBucket: true }));
      const v1 = await acme.send(
        new PutObjectCommand({
          Bucket,
          Key: 'c',
          Body: 'locked',
          ObjectLockMode: 'COMPLIANCE',
          ObjectLockRetainUntilDate: later(2),
        }),
      );
      const got = await acme.send(new GetObjectCommand({ Bucket, Key: 'c' }));
      expect(got.ObjectLockMode).toBe('COMPLIANCE');
      await got.Body?.transformToString();
      expect((await acme.send(new GetObjectRetentionCommand({ Bucket, Key: 'c' }))).Retention?.Mode).toBe(
        'COMPLIANCE',
      );

      // Overwriting makes a new version; the locked one stays.
      const v2 = await acme.send(new PutObjectCommand({ Bucket, Key: 'c', Body: 'newer' }));
      expect(v2.VersionId).not.toBe(v1.VersionId);
      expect(
        await s3Error(acme.send(new DeleteObjectCommand({ Bucket, Key: 'c', VersionId: v1.VersionId }))),
      ).toEqual({ code: 'AccessDenied', status: 403 });
      expect(
        await s3Error(
          acme.send(
            new DeleteObjectCommand({
              Bucket,
              Key: 'c',
              VersionId: v1.VersionId,
              BypassGovernanceRetention: true,
            }),
          ),
        ),
      ).toEqual({ code: 'AccessDenied', status: 403 });
      const marker = await acme.send(new DeleteObjectCommand({ Bucket, Key: 'c' }));
      expect(marker.DeleteMarker).toBe(true);
      // COMPLIANCE can be extended, not shortened nor removed nor turned into GOVERNANCE.
      await acme.send(
        new PutObjectRetentionCommand({
          Bucket,
          Key: 'c',
          VersionId: v1.VersionId,
          Retention: { Mode: 'COMPLIANCE', RetainUntilDate: later(3) },
        }),
      );
      for (const Retention of [
        { Mode: 'COMPLIANCE' as const, RetainUntilDate: later(1) },
        { Mode: 'GOVERNANCE' as const, RetainUntilDate: later(5) },
      ])
        expect(
          await s3Error(
            acme.send(
              new PutObjectRetentionCommand({
                Bucket,
                Key: 'c',
                VersionId: v1.VersionId,
                Retention,
                BypassGovernanceRetention: true,
              }),
            ),
          ),
        ).toEqual({ code: 'AccessDenied', status: 403 });

      // DeleteObjects reports each locked version.
      const r = await acme.send(
        new DeleteObjectsCommand({
          Bucket,
          Delete: {
            Objects: [
              { Key: 'c', VersionId: v1.VersionId },
              { Key: 'c', VersionId: v2.VersionId },
            ],
          },
        }),
      );
      expect(r.Errors?.map((e) => [e.VersionId, e.Code])).toEqual([[v1.VersionId, 'AccessDenied']]);
      expect(r.Deleted?.map((d) => d.VersionId)).toEqual([v2.VersionId]);

      // Lifecycle goes through the same path: the locked noncurrent version survives.
      await acme.send(
        new PutBucketLifecycleConfigurationCommand({
          Bucket,
          LifecycleConfiguration: {
            Rules: [
              {
                ID: 'gone',
                Status: 'Enabled',
                Filter: { Prefix: '' },
                NoncurrentVersionExpiration: { NoncurrentDays: 1 },
              },
            ],
          },
        }),
      );
      await cp.objects.runLifecycle(Date.now() + 3 * DAY);
      const versions = await acme.send(new ListObjectVersionsCommand({ Bucket, Prefix: 'c' }));
      expect(versions.Versions?.map((v) => v.VersionId)).toContain(v1.VersionId);
    });

    it('GOVERNANCE yields to the owner with the bypass header, not to others or without it', async () => {
      const Bucket = b('gov');
      await acme.send(new CreateBucketCommand({ Bucket, ObjectLockEnabledForBucket: true }));
      const v = await acme.send(
        new PutObjectCommand({
          Bucket,
          Key: 'g',
          Body: 'g',
          ObjectLockMode: 'GOVERNANCE',
          ObjectLockRetainUntilDate: later(2),
        }),
      );
      const VersionId = v.VersionId!;
      expect(await s3Error(acme.send(new DeleteObjectCommand({ Bucket, Key: 'g', VersionId })))).toEqual({
        code: 'AccessDenied',
        status: 403,
      });
      expect(
        await s3Error(
          acme.send(
            new PutObjectRetentionCommand({
              Bucket,
              Key: 'g',
              VersionId,
              Retention: { Mode: 'GOVERNANCE', RetainUntilDate: later(1) },
            }),
          ),
        ),
      ).toEqual({ code: 'AccessDenied', status: 403 });
      expect(
        await s3Error(
          globex.send(
            new DeleteObjectCommand({ Bucket, Key: 'g', VersionId, BypassGovernanceRetention: true }),
          ),
        ),
      ).toEqual({ code: 'AccessDenied', status: 403 });
      await acme.send(
        new PutObjectRetentionCommand({
          Bucket,
          Key: 'g',
          VersionId,
          Retention: { Mode: 'GOVERNANCE', RetainUntilDate: later(1) },
          BypassGovernanceRetention: true,
        }),
      );
      await acme.send(
        new DeleteObjectCommand({ Bucket, Key: 'g', VersionId, BypassGovernanceRetention: true }),
      );
      expect((await acme.send(new ListObjectVersionsCommand({ Bucket }))).Versions ?? []).toEqual([]);
    });

    it('legal hold ON blocks deletion until turned OFF; multipart uploads take lock headers', async () => {
      const Bucket = b('hold');
      await acme.send(new CreateBucketCommand({ Bucket, ObjectLockEnabledForBucket: true }));
      const v = await acme.send(
        new PutObjectCommand({ Bucket, Key: 'h', Body: 'h', ObjectLockLegalHoldStatus: 'ON' }),
      );
      expect((await acme.send(new HeadObjectCommand({ Bucket, Key: 'h' }))).ObjectLockLegalHoldStatus).toBe(
        'ON',
      );
      expect((await acme.send(new GetObjectLegalHoldCommand({ Bucket, Key: 'h' }))).LegalHold?.Status).toBe(
        'ON',
      );
      expect(
        await s3Error(
          acme.send(
            new DeleteObjectCommand({
              Bucket,
              Key: 'h',
              VersionId: v.VersionId,
              BypassGovernanceRetention: true,
            }),
          ),
        ),
      ).toEqual({ code: 'AccessDenied', status: 403 });
      await acme.send(new PutObjectLegalHoldCommand({ Bucket, Key: 'h', LegalHold: { Status: 'OFF' } }));
      expect((await acme.send(new GetObjectLegalHoldCommand({ Bucket, Key: 'h' }))).LegalHold?.Status).toBe(
        'OFF',
      );
      expect(await s3Error(acme.send(new GetObjectRetentionCommand({ Bucket, Key: 'h' })))).toEqual({
        code: 'NoSuchObjectLockConfiguration',
        status: 404,
      });
      await acme.send(new DeleteObjectCommand({ Bucket, Key: 'h', VersionId: v.VersionId }));

      const up = await acme.send(
        new CreateMultipartUploadCommand({
          Bucket,
          Key: 'mp',
          ObjectLockMode: 'GOVERNANCE',
          ObjectLockRetainUntilDate: later(1),
          ObjectLockLegalHoldStatus: 'ON',
        }),
      );
      const part = await acme.send(
        new UploadPartCommand({ Bucket, Key: 'mp', UploadId: up.UploadId, PartNumber: 1, Body: 'part' }),
      );
      await acme.send(
        new CompleteMultipartUploadCommand({
          Bucket,
          Key: 'mp',
          UploadId: up.UploadId,
          MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag }] },
        }),
      );
      const head = await acme.send(new HeadObjectCommand({ Bucket, Key: 'mp' }));
      expect([head.ObjectLockMode, head.ObjectLockLegalHoldStatus]).toEqual(['GOVERNANCE', 'ON']);
    });
  });
}
