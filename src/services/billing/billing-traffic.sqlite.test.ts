import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { CreateQueueCommand, SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFakeDriver } from '../../agent/drivers/fake/fake-driver.js';
import { apiRequest, until } from '../../test-support/api.js';
import { seedComputeFixture } from '../../test-support/compute-fixture.js';
import { startTestControlPlane, type TestControlPlane } from '../../test-support/control-plane.js';
import { s3Client, seedS3Tenants } from '../../test-support/s3.js';
import { defaultPrices } from './rate-cards.js';
import { monthStart, PriceBook, priceQuantity } from './rating.js';

/**
 * Real traffic through every metered service (an instance on the fake driver, S3 puts and gets
 * through the AWS SDK, SQS sends), metered every 300 ms, rated by the control plane's own loop and
 * invoiced: every ledger row is rated once, and each tenant's invoice equals the ledger's totals per
 * meter priced independently (one price and one month here, so the exact total of each meter).
 */
describe('billing of real traffic (sqlite)', () => {
  let cp: TestControlPlane;
  let admin: string;
  let owner: string;
  let imageId: string;
  const call = (method: string, path: string, token: string, body?: unknown) =>
    apiRequest(cp.endpoints.api, token, method, `/api/v1${path}`, body);

  beforeAll(async () => {
    const driver = createFakeDriver({
      bootMs: 30,
      capabilities: { vcpus: 8, memoryMiB: 4096, diskGiB: 100 },
    });
    cp = await startTestControlPlane({
      localAgent: { driver, heartbeatMs: 200, stopTimeoutMs: 1000 },
      meterIntervalMs: 300,
    });
    await cp.agent();
    ({ admin, owner, imageId } = await seedComputeFixture(cp));
  });
  afterAll(async () => cp?.stop());

  it('invoices exactly the usage the services metered', async () => {
    const inst = await call('POST', '/instances', owner, {
      name: 'busy',
      image: imageId,
      flavor: 'tiny.small',
    });
    expect(inst.status).toBe(202);
    await until(
      'running',
      async () =>
        (await call('GET', `/instances/${inst.json.id}`, owner)).json.state === 'running' ? true : undefined,
      20_000,
      50,
    );
    const { acme } = await seedS3Tenants(cp, '-s3');
    const s3 = s3Client(cp, acme);
    await s3.send(new CreateBucketCommand({ Bucket: 'billed-bucket' }));
    for (let i = 0; i < 20; i++)
      await s3.send(
        new PutObjectCommand({ Bucket: 'billed-bucket', Key: `k${i}`, Body: Buffer.alloc(64 * 1024, i) }),
      );
    for (let i = 0; i < 10; i++) {
      const got = await s3.send(new GetObjectCommand({ Bucket: 'billed-bucket', Key: `k${i}` }));
      await got.Body!.transformToByteArray();
    }
    const sqs = new SQSClient({
      endpoint: cp.endpoints.sqs,
      region: 'us-east-1',
      credentials: acme,
      maxAttempts: 1,
    });
    const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: 'billed-queue' }));
    for (let b = 0; b < 5; b++)
      await sqs.send(
        new SendMessageBatchCommand({
          QueueUrl,
          Entries: Array.from({ length: 10 }, (_, i) => ({
            Id: `m${i}`,
            MessageBody: 'x'.repeat(20_000 + i),
          })),
        }),
      );
    await new Promise((r) => setTimeout(r, 2500));
    expect((await call('POST', `/instances/${inst.json.id}/stop`, owner)).status).toBeLessThan(300);
    await until(
      'stopped',
      async () =>
        (await call('GET', `/instances/${inst.json.id}`, owner)).json.state === 'stopped' ? true : undefined,
      20_000,
      50,
    );
    // Nothing left that accrues: the ledger is final once the last flush has run.
    for (let i = 0; i < 20; i++)
      await s3.send(new DeleteObjectCommand({ Bucket: 'billed-bucket', Key: `k${i}` }));
    await s3.send(new DeleteBucketCommand({ Bucket: 'billed-bucket' }));
    await new Promise((r) => setTimeout(r, 1000));

    expect((await call('POST', '/billing/rate', admin)).status).toBe(200);
    const db = cp.database.db;
    const usage = await db.selectFrom('usage_records').selectAll().execute();
    const meters = new Set(usage.map((u) => u.meter));
    for (const m of [
      'compute.vcpu-seconds',
      'compute.memory-mib-seconds',
      's3.storage-byte-seconds',
      's3.requests-class-a',
      's3.requests-class-b',
      's3.egress-bytes',
      'sqs.requests',
    ])
      expect(meters).toContain(m);
    // Every ledger row rated exactly once (one month, one price: one line each).
    const charges = await db.selectFrom('billing_charges').selectAll().execute();
    expect(charges.length).toBe(usage.length);
    expect(new Set(charges.map((c) => c.usage_record_id)).size).toBe(usage.length);

    const period = monthStart(Date.now());
    await call('POST', '/billing/invoices/generate', admin, { period: new Date(period).toISOString() });
    const book = new PriceBook([
      { id: 'x', tenantId: null, version: 1, effectiveFrom: 0, currency: 'CNY', prices: defaultPrices() },
    ]);
    const tenants = [...new Set(usage.map((u) => u.tenant_id))];
    expect(tenants.length).toBe(2);
    for (const t of tenants) {
      const list = (await call('GET', `/billing/invoices?tenantId=${t}`, admin)).json.items;
      const inv = (await call('GET', `/billing/invoices/${list[0].id}`, admin)).json;
      // Independently: the ledger's total per meter, priced once at the default card.
      let expected = 0;
      for (const m of new Set(usage.filter((u) => u.tenant_id === t).map((u) => u.meter))) {
        const q = usage.filter((u) => u.tenant_id === t && u.meter === m).reduce((s, u) => s + u.quantity, 0);
        const price =
          defaultPrices().find((p) => p.meter === m) ??
          defaultPrices().find((p) => p.meter.endsWith(':*') && m.startsWith(p.meter.slice(0, -1)));
        expect(book.timeline(t, m)[0]?.price).toBeTruthy();
        if (price) expected += priceQuantity(price, q);
      }
      expect(inv.subtotalMicros).toBe(expected);
      expect(inv.lines.reduce((s: number, l: { amountMicros: number }) => s + l.amountMicros, 0)).toBe(
        expected,
      );
      expect(inv.subtotalMicros).toBeGreaterThan(0);
    }
  });
});
