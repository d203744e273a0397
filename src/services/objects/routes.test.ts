import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signRequest } from '../../platform/auth/sigv4.js';
import { startTestControlPlane, type TestControlPlane } from '../../test-support/control-plane.js';
import { rawS3, type S3Keys, seedS3Tenants } from '../../test-support/s3.js';

// biome-ignore lint/suspicious/noExplicitAny: tests read whatever JSON the API answered
type Json = any;

describe('REST view of buckets (GET /api/v1/buckets, /buckets/{name}) and GET /api/v1/endpoints', () => {
  let cp: TestControlPlane;
  let keys: Awaited<ReturnType<typeof seedS3Tenants>>;

  const api = async (k: S3Keys | null, path: string) => {
    const url = new URL(`${cp.endpoints.api}/api/v1${path}`);
    const headers: Record<string, string> = {};
    if (k)
      Object.assign(
        headers,
        signRequest({
          method: 'GET',
          url,
          headers,
          accessKeyId: k.accessKeyId,
          secretAccessKey: k.secretAccessKey,
          region: 'us-east-1',
          service: 'yunhai',
        }),
      );
    const res = await fetch(url, { headers });
    return { status: res.status, body: (await res.json()) as Record<string, Json> };
  };

  beforeAll(async () => {
    cp = await startTestControlPlane();
    keys = await seedS3Tenants(cp);
    expect((await rawS3(cp, keys.acme, 'PUT', '/acme-photos')).status).toBe(200);
    expect((await rawS3(cp, keys.acme, 'PUT', '/acme-logs')).status).toBe(200);
    expect((await rawS3(cp, keys.globex, 'PUT', '/globex-data')).status).toBe(200);
    for (const [k, body] of [
      ['a.txt', 'hello'],
      ['b/c.txt', 'world!!'],
      ['a.txt', 'hello again'],
    ] as const)
      expect((await rawS3(cp, keys.acme, 'PUT', `/acme-photos/${k}`, { body })).status).toBe(200);
    expect((await rawS3(cp, keys.acme, 'POST', '/acme-photos/big?uploads')).status).toBe(200);
  });
  afterAll(async () => {
    await cp?.stop();
  });

  it('lists the caller’s tenant’s buckets with size and object count', async () => {
    const r = await api(keys.acme, '/buckets');
    expect(r.status).toBe(200);
    expect(r.body.items.map((b: { name: string }) => b.name)).toEqual(['acme-logs', 'acme-photos']);
    const photos = r.body.items[1];
    expect(photos).toMatchObject({
      name: 'acme-photos',
      tenantName: 'acme',
      region: 'us-east-1',
      versioning: 'Disabled',
      objectLockEnabled: false,
      objectCount: 2,
      sizeBytes: 'hello again'.length + 'world!!'.length,
    });
    expect(Date.parse(photos.createdAt)).toBeGreaterThan(0);
    expect(r.body.nextCursor).toBeNull();
  });

  it('pages by name', async () => {
    const first = await api(keys.acme, '/buckets?limit=1');
    expect(first.body.items.map((b: { name: string }) => b.name)).toEqual(['acme-logs']);
    const next = await api(keys.acme, `/buckets?limit=1&cursor=${first.body.nextCursor}`);
    expect(next.body.items.map((b: { name: string }) => b.name)).toEqual(['acme-photos']);
    expect(next.body.nextCursor).toBeNull();
  });

  it('a platform admin sees every tenant, or one with ?tenant= (name or id)', async () => {
    const all = await api(keys.root, '/buckets');
    expect(all.body.items.map((b: { name: string }) => b.name)).toEqual([
      'acme-logs',
      'acme-photos',
      'globex-data',
    ]);
    const globex = await api(keys.root, '/buckets?tenant=globex');
    expect(globex.body.items.map((b: { name: string }) => b.name)).toEqual(['globex-data']);
    const byId = await api(keys.root, `/buckets?tenant=${globex.body.items[0].tenantId}`);
    expect(byId.body.items).toHaveLength(1);
    expect((await api(keys.root, '/buckets?tenant=nobody')).status).toBe(404);
  });

  it('a tenant cannot list another tenant’s buckets', async () => {
    const r = await api(keys.acme, '/buckets?tenant=globex');
    expect(r.status).toBe(403);
    expect(r.body.error.code).toBe('AccessDenied');
    expect((await api(keys.acme, '/buckets?tenant=acme')).status).toBe(200);
  });

  it('shows one bucket with current objects and open uploads; others’ buckets are not found', async () => {
    const r = await api(keys.acme, '/buckets/acme-photos');
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({
      name: 'acme-photos',
      currentObjects: 2,
      multipartUploads: 1,
      objectCount: 2,
    });
    expect((await api(keys.globex, '/buckets/acme-photos')).status).toBe(404);
    expect((await api(keys.acme, '/buckets/no-such-bucket')).status).toBe(404);
    expect((await api(keys.root, '/buckets/acme-photos')).body.currentObjects).toBe(2);
  });

  it('needs authentication', async () => {
    expect((await api(null, '/buckets')).status).toBe(401);
  });

  it('GET /endpoints names every listener without authentication; the routes are in the OpenAPI document', async () => {
    const r = await api(null, '/endpoints');
    expect(r.status).toBe(200);
    expect(r.body.s3).toBe(cp.endpoints.s3);
    expect(r.body.api).toBe(cp.endpoints.api);
    const doc = (await api(null, '/openapi.json')).body;
    expect(doc.paths['/api/v1/buckets'].get.operationId).toBe('listBuckets');
    expect(doc.paths['/api/v1/buckets/{name}'].get.operationId).toBe('getBucket');
    expect(doc.paths['/api/v1/endpoints'].get.operationId).toBe('getEndpoints');
  });
});
