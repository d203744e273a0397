import { CreateBucketCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../../../test-support/api.js';
import { startTestControlPlane, type TestControlPlane } from '../../../test-support/control-plane.js';
import { s3Client, seedS3Tenants } from '../../../test-support/s3.js';

/** The value of an unlabelled or `result`-labelled sample in a /metrics page. */
function sample(page: string, name: string, result?: string): number {
  const label = result ? `\\{result="${result}"\\}` : '';
  const m = new RegExp(`^${name}${label} (\\S+)$`, 'm').exec(page);
  if (!m) throw new Error(`${name} not in /metrics`);
  return Number(m[1]);
}

describe('s3 read cache (through the listener)', () => {
  let cp: TestControlPlane;
  beforeAll(async () => {
    cp = await startTestControlPlane({ s3: { readCacheBytes: 1024 * 1024 } });
  });
  afterAll(async () => cp.stop());

  it('answers repeated GETs of a blob body from memory, and shows it at /metrics', async () => {
    const keys = await seedS3Tenants(cp);
    const s3 = s3Client(cp, keys.acme);
    await s3.send(new CreateBucketCommand({ Bucket: 'cached' }));
    // Larger than bodies kept inline in the database: stored as a blob.
    const body = Buffer.alloc(200 * 1024, 7);
    await s3.send(new PutObjectCommand({ Bucket: 'cached', Key: 'k', Body: body }));
    const metrics = async () => (await fetch(`${cp.endpoints.api}/metrics`)).text();
    const before = await metrics();
    for (let i = 0; i < 3; i++) {
      const got = await s3.send(new GetObjectCommand({ Bucket: 'cached', Key: 'k' }));
      expect(Buffer.from(await got.Body!.transformToByteArray()).equals(body)).toBe(true);
    }
    const ranged = await s3.send(new GetObjectCommand({ Bucket: 'cached', Key: 'k', Range: 'bytes=10-19' }));
    expect(Buffer.from(await ranged.Body!.transformToByteArray()).equals(body.subarray(10, 20))).toBe(true);
    const after = await metrics();
    const hits =
      sample(after, 'yunhai_s3_read_cache_reads_total', 'hit') -
      sample(before, 'yunhai_s3_read_cache_reads_total', 'hit');
    const misses =
      sample(after, 'yunhai_s3_read_cache_reads_total', 'miss') -
      sample(before, 'yunhai_s3_read_cache_reads_total', 'miss');
    expect(misses).toBe(1);
    expect(hits).toBe(3);
    expect(sample(after, 'yunhai_s3_read_cache_bytes')).toBe(body.length);

    // A new version is a new blob; the old copy goes with the blob it replaced.
    const next = Buffer.alloc(200 * 1024, 9);
    await s3.send(new PutObjectCommand({ Bucket: 'cached', Key: 'k', Body: next }));
    const got = await s3.send(new GetObjectCommand({ Bucket: 'cached', Key: 'k' }));
    expect(Buffer.from(await got.Body!.transformToByteArray()).equals(next)).toBe(true);
    await until(
      'the replaced blob to leave the cache',
      async () => (sample(await metrics(), 'yunhai_s3_read_cache_bytes') === next.length ? true : undefined),
      10_000,
      50,
    );
  });
});
