import { createServer, type Server } from 'node:http';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFakeDriver } from '../../agent/drivers/fake/fake-driver.js';
import { recordUsage, type UsageInput } from '../../platform/usage/ledger.js';
import { apiRequest, until } from '../../test-support/api.js';
import { seedComputeFixture } from '../../test-support/compute-fixture.js';
import { startTestControlPlane, type TestControlPlane } from '../../test-support/control-plane.js';
import { defaultPrices } from './rate-cards.js';
import { rateAll } from './rater.js';
import { priceQuantity } from './rating.js';
import { createBillingService } from './service.js';

const OCT = Date.UTC(2026, 9, 1);
const NOV = Date.UTC(2026, 10, 1);
const MIN = 60_000;

/**
 * Billing through the REST API on each SQL dialect: rating exactness (price changes, re-rating,
 * a crash mid-rating, a restart), invoices equal to rated usage to the micro-unit, immutability of
 * finalised invoices, prepaid balances and the out-of-balance policy, budgets, showback.
 */
export function runBillingSuite(dialect: 'sqlite' | 'postgres') {
  describe(`billing on ${dialect}`, () => {
    let cp: TestControlPlane;
    let admin: string;
    let owner: string;
    let other: string;
    let imageId: string;
    let acme: string;
    let globex: string;
    const call = (method: string, path: string, token: string, body?: unknown) =>
      apiRequest(cp.endpoints.api, token, method, `/api/v1${path}`, body);
    const usage = (rows: UsageInput[]) => cp.database.tx((trx) => recordUsage(trx, rows));
    const chargesOf = async (tenantId: string, period?: number) => {
      let q = cp.database.db
        .selectFrom('billing_charges')
        .select([
          (eb) => eb.fn.countAll<number | string>().as('n'),
          (eb) => eb.fn.sum<number | string>('amount_micros').as('s'),
        ])
        .where('tenant_id', '=', tenantId);
      if (period !== undefined) q = q.where('billing_period', '=', period);
      const r = await q.executeTakeFirstOrThrow();
      return { lines: Number(r.n), micros: Number(r.s ?? 0) };
    };

    beforeAll(async () => {
      const driver = createFakeDriver({
        bootMs: 30,
        capabilities: { vcpus: 8, memoryMiB: 4096, diskGiB: 100 },
      });
      cp = await startTestControlPlane({
        dialect,
        localAgent: { driver, heartbeatMs: 200, stopTimeoutMs: 1000 },
      });
      await cp.agent();
      ({ admin, owner, other, imageId } = await seedComputeFixture(cp));
      const tenants = (await call('GET', '/tenants', admin)).json.items as { id: string; name: string }[];
      acme = tenants.find((t) => t.name === 'acme')!.id;
      globex = tenants.find((t) => t.name === 'globex')!.id;
    });
    afterAll(async () => cp?.stop());

    it('lists the meters catalogue and seeds the default rate card on first start', async () => {
      const meters = await call('GET', '/billing/meters', owner);
      expect(meters.status).toBe(200);
      expect(meters.json.items.map((m: { meter: string }) => m.meter)).toEqual(
        expect.arrayContaining([
          'compute.vcpu-seconds',
          's3.storage-byte-seconds',
          'sqs.requests',
          'compute.instance-seconds:*',
        ]),
      );
      for (const m of meters.json.items) expect(m.unit && m.description).toBeTruthy();
      const cards = await call('GET', '/billing/rate-cards', owner);
      expect(cards.json.items).toHaveLength(1);
      expect(cards.json.items[0]).toMatchObject({
        name: 'default',
        version: 1,
        currency: 'CNY',
        tenantId: null,
      });
      expect((await call('GET', '/billing/settings', owner)).json).toEqual({
        currency: 'CNY',
        taxRatePpm: 0,
      });
    });

    it('refuses rate cards from tenants, for unknown meters, with bad tiers or in the past', async () => {
      const card = {
        name: 'x',
        prices: [{ meter: 'compute.vcpu-seconds', tiers: [{ upToUnits: null, unitPriceMicros: 1 }] }],
      };
      expect((await call('POST', '/billing/rate-cards', owner, card)).status).toBe(403);
      const bad = async (body: unknown) =>
        (await call('POST', '/billing/rate-cards', admin, body)).json.error.code;
      expect(
        await bad({
          ...card,
          prices: [{ meter: 'nope.meter', tiers: [{ upToUnits: null, unitPriceMicros: 1 }] }],
        }),
      ).toBe('ValidationError');
      expect(
        await bad({
          ...card,
          prices: [{ meter: 'sqs.requests', tiers: [{ upToUnits: 5, unitPriceMicros: 1 }] }],
        }),
      ).toBe('ValidationError');
      expect(
        await bad({
          ...card,
          prices: [{ meter: 'sqs.requests', tiers: [{ upToUnits: null, unitPriceMicros: 1.5 }] }],
        }),
      ).toBe('ValidationError');
      expect(await bad({ ...card, effectiveFrom: '2020-01-01T00:00:00Z' })).toBe('ValidationError');
      expect(await bad({ ...card, currency: 'USD' })).toBe('ValidationError');
      expect(await bad({ ...card, bogus: 1 })).toBe('UnknownField');
    });

    it('charges an instance running across a price change at each price for its own share of seconds', async () => {
      const change = Date.now() + 1500;
      const prices = defaultPrices().map((p) =>
        p.meter === 'compute.vcpu-seconds'
          ? { ...p, tiers: [{ upToUnits: null, unitPriceMicros: 360_000 }] }
          : p,
      );
      const created = await call('POST', '/billing/rate-cards', admin, {
        name: 'default',
        effectiveFrom: new Date(change).toISOString(),
        prices,
      });
      expect(created.status).toBe(201);
      expect(created.json.version).toBe(2);
      // One vCPU from an hour before the change to an hour after it: 3600 s at 0.12/h, 3600 s at 0.36/h.
      await usage([
        {
          tenantId: acme,
          service: 'compute',
          resourceId: 'ins-span',
          meter: 'compute.vcpu-seconds',
          quantity: 7200,
          periodStart: change - 3_600_000,
          periodEnd: change + 3_600_000,
          idempotencyKey: 'span-1',
        },
      ]);
      await cp.billing.rate();
      const lines = await cp.database.db
        .selectFrom('billing_charges')
        .selectAll()
        .where('resource_id', '=', 'ins-span')
        .orderBy('seg')
        .execute();
      expect(lines.map((l) => [l.quantity, l.amount_micros, l.start_at, l.end_at])).toEqual([
        [3600, 120_000, change - 3_600_000, change],
        [3600, 360_000, change, change + 3_600_000],
      ]);
      expect(lines[0]!.card_id).not.toBe(lines[1]!.card_id);
    });

    it('rates each ledger row exactly once: re-rating is a no-op, a crash mid-rating leaves nothing, a restart rates what was left', async () => {
      const rows: UsageInput[] = Array.from({ length: 300 }, (_, i) => ({
        tenantId: globex,
        service: 'sqs',
        resourceId: 'q-crash',
        meter: 'sqs.requests',
        quantity: 1000 + i,
        periodStart: OCT + i * MIN,
        periodEnd: OCT + (i + 1) * MIN,
        idempotencyKey: `crash-${i}`,
      }));
      await usage(rows);
      // A crash between writing the charge lines and committing: nothing of the batch stays.
      await expect(
        rateAll(cp.database, {
          full: true,
          batch: 100,
          beforeCommit: () => {
            throw new Error('power cut');
          },
        }),
      ).rejects.toThrow('power cut');
      expect((await chargesOf(globex)).lines).toBe(0);
      // A new control plane on the same database rates the rows at start-up.
      const second = createBillingService({ database: cp.database });
      expect(await second.rate({ full: true })).toBe(300);
      second.close();
      const once = await chargesOf(globex);
      expect(once.lines).toBe(300);
      // Re-running, incrementally or from the beginning, changes nothing.
      expect(await cp.billing.rate()).toBe(0);
      expect(await cp.billing.rate({ full: true })).toBe(0);
      expect(await rateAll(cp.database, { full: true, batch: 7 })).toBe(0);
      expect(await chargesOf(globex)).toEqual(once);
      // Writing the same usage again (same idempotency keys) records and rates nothing new.
      expect(await usage(rows)).toBe(0);
      expect(await cp.billing.rate()).toBe(0);
      // 300 rows summing 349,850 requests with 1 M free: nothing to pay yet, to the micro-unit.
      expect(once.micros).toBe(
        priceQuantity(defaultPrices().find((p) => p.meter === 'sqs.requests')!, 349_850),
      );
    });

    let invoiceId: string;
    it('makes invoices whose lines sum to the rated usage to the micro-unit, with tax and credits', async () => {
      const P = Object.fromEntries(defaultPrices().map((p) => [p.meter, p]));
      const rows: UsageInput[] = [];
      for (let i = 0; i < 500; i++) {
        const base = { tenantId: globex, periodStart: OCT + i * MIN, periodEnd: OCT + (i + 1) * MIN };
        rows.push({
          ...base,
          service: 'compute',
          resourceId: 'ins-g1',
          meter: 'compute.vcpu-seconds',
          quantity: 120,
          idempotencyKey: `g-v-${i}`,
        });
        rows.push({
          ...base,
          service: 'compute',
          resourceId: 'ins-g1',
          meter: 'compute.memory-mib-seconds',
          quantity: 60 * 1536,
          idempotencyKey: `g-m-${i}`,
        });
        rows.push({
          ...base,
          service: 's3',
          resourceId: 'bkt',
          meter: 's3.storage-byte-seconds',
          quantity: 60 * (3 * 1024 ** 3 + i),
          idempotencyKey: `g-s-${i}`,
        });
        rows.push({
          ...base,
          service: 's3',
          resourceId: 'bkt',
          meter: 's3.egress-bytes',
          quantity: 37 * 1024 ** 2 + i,
          idempotencyKey: `g-e-${i}`,
        });
        rows.push({
          ...base,
          service: 's3',
          resourceId: 'bkt',
          meter: 's3.requests-class-b',
          quantity: 7 + (i % 5),
          idempotencyKey: `g-r-${i}`,
        });
      }
      await usage(rows);
      await cp.billing.rate();
      expect((await call('PUT', '/billing/settings', admin, { taxRatePpm: 60_000 })).status).toBe(200);
      expect(
        (
          await call('POST', `/billing/accounts/${globex}/credits`, admin, {
            amount: '1.5',
            idempotencyKey: 'promo-1',
          })
        ).status,
      ).toBe(200);
      // The same idempotency key again grants nothing.
      const acct = await call('POST', `/billing/accounts/${globex}/credits`, admin, {
        amount: '1.5',
        idempotencyKey: 'promo-1',
      });
      expect(acct.json.creditMicros).toBe(1_500_000);
      const gen = await call('POST', '/billing/invoices/generate', admin, {
        period: new Date(OCT).toISOString(),
      });
      expect(gen.json.invoices).toBeGreaterThanOrEqual(1);
      const list = await call('GET', `/billing/invoices?tenantId=${globex}`, admin);
      invoiceId = list.json.items.find(
        (i: { periodStart: string }) => i.periodStart === new Date(OCT).toISOString(),
      ).id;
      const fin = await call('POST', `/billing/invoices/${invoiceId}/finalise`, admin);
      expect(fin.status).toBe(200);
      const inv = fin.json;
      const rated = await chargesOf(globex, OCT);
      const lineSum = inv.lines.reduce((s: number, l: { amountMicros: number }) => s + l.amountMicros, 0);
      expect(lineSum).toBe(rated.micros);
      expect(inv.subtotalMicros).toBe(rated.micros);
      expect(inv.services.reduce((s: number, x: { subtotalMicros: number }) => s + x.subtotalMicros, 0)).toBe(
        rated.micros,
      );
      // Independently: each meter's total quantity priced once (one price, one period).
      const qty = (m: string) => rows.filter((r) => r.meter === m).reduce((s, r) => s + r.quantity, 0);
      const expected =
        priceQuantity(P['compute.vcpu-seconds']!, qty('compute.vcpu-seconds')) +
        priceQuantity(P['compute.memory-mib-seconds']!, qty('compute.memory-mib-seconds')) +
        priceQuantity(P['s3.storage-byte-seconds']!, qty('s3.storage-byte-seconds')) +
        priceQuantity(P['s3.egress-bytes']!, qty('s3.egress-bytes')) +
        priceQuantity(P['s3.requests-class-b']!, qty('s3.requests-class-b')) +
        priceQuantity(P['sqs.requests']!, 349_850);
      expect(inv.subtotalMicros).toBe(expected);
      expect(inv.taxMicros).toBe(Math.floor((inv.subtotalMicros * 6) / 100 + 0.5));
      expect(inv.creditsMicros).toBe(1_500_000);
      expect(inv.totalMicros).toBe(inv.subtotalMicros + inv.taxMicros - 1_500_000);
      expect(inv.state).toBe('finalised');
      const storage = inv.lines.find((l: { meter: string }) => l.meter === 's3.storage-byte-seconds');
      expect(storage.quantity).toBe(String(qty('s3.storage-byte-seconds')));
    });

    it('keeps a finalised invoice immutable: API, database triggers, and late usage going to the next period', async () => {
      const before = (await call('GET', `/billing/invoices/${invoiceId}`, admin)).json;
      expect((await call('POST', `/billing/invoices/${invoiceId}/finalise`, admin)).json.error.code).toBe(
        'InvalidState',
      );
      const db = cp.database.db;
      await expect(
        db.updateTable('billing_invoices').set({ total_micros: 1 }).where('id', '=', invoiceId).execute(),
      ).rejects.toThrow(/billing/);
      await expect(
        db.updateTable('billing_invoices').set({ state: 'draft' }).where('id', '=', invoiceId).execute(),
      ).rejects.toThrow(/billing/);
      await expect(
        db
          .updateTable('billing_invoice_lines')
          .set({ amount_micros: 0 })
          .where('invoice_id', '=', invoiceId)
          .execute(),
      ).rejects.toThrow(/billing/);
      await expect(
        db.deleteFrom('billing_invoice_lines').where('invoice_id', '=', invoiceId).execute(),
      ).rejects.toThrow(/billing/);
      await expect(db.deleteFrom('billing_invoices').where('id', '=', invoiceId).execute()).rejects.toThrow(
        /billing/,
      );
      await expect(
        db
          .insertInto('billing_invoice_lines')
          .values({
            invoice_id: invoiceId,
            seq: 999,
            service: 'x',
            resource_id: 'x',
            meter: 'x',
            quantity: '1',
            amount_micros: 1,
          })
          .execute(),
      ).rejects.toThrow(/billing/);
      // Usage of October that arrives late is charged in November.
      await usage([
        {
          tenantId: globex,
          service: 'compute',
          resourceId: 'ins-g1',
          meter: 'compute.vcpu-seconds',
          quantity: 3600,
          periodStart: NOV - 2 * MIN,
          periodEnd: NOV - MIN,
          idempotencyKey: 'late-1',
        },
      ]);
      await cp.billing.rate();
      const late = await db
        .selectFrom('billing_charges')
        .select(['billing_period', 'amount_micros'])
        .where(
          'usage_record_id',
          'in',
          db.selectFrom('usage_records').select('id').where('idempotency_key', '=', 'late-1'),
        )
        .execute();
      expect(late).toEqual([{ billing_period: NOV, amount_micros: 120_000 }]);
      await call('POST', '/billing/invoices/generate', admin, { period: new Date(OCT).toISOString() });
      expect((await call('GET', `/billing/invoices/${invoiceId}`, admin)).json).toEqual(before);
    });

    it('exports JSON, CSV and printable HTML in en and zh-CN, only to the tenant and admins', async () => {
      const csv = await fetch(
        `${cp.endpoints.api}/api/v1/billing/invoices/${invoiceId}/export?format=csv&lang=zh-CN`,
        { headers: { authorization: `Bearer ${other}` } },
      );
      expect(csv.status).toBe(200);
      expect(csv.headers.get('content-type')).toMatch(/text\/csv/);
      const text = await csv.text();
      expect(text.split('\r\n')[0]).toContain('服务');
      expect(text).toContain('应付总额');
      const html = await fetch(
        `${cp.endpoints.api}/api/v1/billing/invoices/${invoiceId}/export?format=html&lang=en`,
        { headers: { authorization: `Bearer ${admin}` } },
      );
      const page = await html.text();
      expect(page).toContain('<html lang="en">');
      expect(page).toContain('Total');
      expect((await call('GET', `/billing/invoices/${invoiceId}`, owner)).status).toBe(404);
      expect(
        (await call('GET', `/billing/invoices/${invoiceId}/export?format=pdf`, admin)).json.error.code,
      ).toBe('ValidationError');
    });

    it('pays from the prepaid balance, refuses to pay twice or without enough balance, voids only what is unpaid', async () => {
      const inv = (await call('GET', `/billing/invoices/${invoiceId}`, admin)).json;
      expect(
        (await call('POST', `/billing/invoices/${invoiceId}/pay`, admin, { method: 'balance' })).json.error
          .code,
      ).toBe('Conflict');
      await call('POST', `/billing/accounts/${globex}/top-ups`, admin, { amount: 1000 });
      // Three pays at once: one is taken, the others see it paid; the balance is debited once.
      const pays = await Promise.all(
        [1, 2, 3].map(() => call('POST', `/billing/invoices/${invoiceId}/pay`, admin, { method: 'balance' })),
      );
      expect(pays.filter((p) => p.json.state === 'paid')).toHaveLength(1);
      expect(pays.filter((p) => p.json.error?.code === 'InvalidState')).toHaveLength(2);
      const acct = (await call('GET', '/billing/account', other)).json;
      expect(acct.balanceMicros).toBe(1_000_000_000 - inv.totalMicros);
      expect(
        (await call('POST', `/billing/invoices/${invoiceId}/pay`, admin, { method: 'external' })).json.error
          .code,
      ).toBe('InvalidState');
      expect(
        (await call('POST', `/billing/invoices/${invoiceId}/void`, admin, { reason: 'x' })).json.error.code,
      ).toBe('InvalidState');
      expect((await call('POST', `/billing/accounts/${globex}/top-ups`, other, { amount: 5 })).status).toBe(
        403,
      );
      expect(
        (await call('POST', `/billing/accounts/${globex}/top-ups`, admin, { amount: '1.1234567' })).json.error
          .code,
      ).toBe('ValidationError');
    });

    it('notifies, refuses creates, then stops running instances of a prepaid tenant out of balance, all audited', async () => {
      const inst = await call('POST', '/instances', owner, {
        name: 'web',
        image: imageId,
        flavor: 'tiny.small',
      });
      expect(inst.status).toBe(202);
      await until(
        'instance running',
        async () =>
          (await call('GET', `/instances/${inst.json.id}`, owner)).json.state === 'running'
            ? true
            : undefined,
        20_000,
        50,
      );
      const strict = createBillingService({
        database: cp.database,
        compute: cp.compute,
        queues: cp.queues,
        config: { restrictAfterMs: 0, suspendAfterMs: 0 },
      });
      try {
        expect((await call('PUT', `/billing/accounts/${acme}`, admin, { mode: 'prepaid' })).json.status).toBe(
          'notified',
        );
        await strict.enforceBalances();
        expect((await call('GET', '/billing/account', owner)).json.status).toBe('restricted');
        const refused = await call('POST', '/instances', owner, {
          name: 'web2',
          image: imageId,
          flavor: 'tiny.small',
        });
        expect(refused.status).toBe(409);
        expect(refused.json.error.code).toBe('QuotaExceeded');
        await strict.enforceBalances();
        expect((await call('GET', '/billing/account', owner)).json.status).toBe('suspended');
        await until(
          'instance stopped',
          async () =>
            ['stopping', 'stopped'].includes(
              (await call('GET', `/instances/${inst.json.id}`, owner)).json.state,
            )
              ? true
              : undefined,
          10_000,
          50,
        );
        const audit = (await call('GET', `/audit?tenantId=${acme}&limit=200`, admin)).json.items.map(
          (e: { action: string }) => e.action,
        );
        expect(audit).toEqual(
          expect.arrayContaining(
            [
              'billing:BalanceExhausted',
              'billing:CreatesRefused',
              'billing:InstancesSuspended',
              'compute:StopInstance',
              'billing:TopUp',
              'billing:UpdateAccount',
            ].filter((a) => a !== 'billing:TopUp'),
          ),
        );
        // A top-up restores creating.
        const topped = await call('POST', `/billing/accounts/${acme}/top-ups`, admin, { amount: 100 });
        expect(topped.json.status).toBe('ok');
        const again = await call('POST', '/instances', owner, {
          name: 'web3',
          image: imageId,
          flavor: 'tiny.small',
        });
        expect(again.status).toBe(202);
        const notes = (await call('GET', '/billing/notifications', owner)).json.items.map(
          (n: { kind: string }) => n.kind,
        );
        expect(notes).toEqual(
          expect.arrayContaining([
            'BalanceExhausted',
            'CreatesRefused',
            'InstancesSuspended',
            'BalanceRestored',
          ]),
        );
      } finally {
        strict.close();
        await call('PUT', `/billing/accounts/${acme}`, admin, { mode: 'postpaid' });
      }
    });

    it('raises budget alerts at 50/80/100% once each, delivered to a queue and to a webhook with retries', async () => {
      expect((await call('POST', '/queues', owner, { name: 'billing-alerts' })).status).toBe(201);
      let hits = 0;
      const bodies: unknown[] = [];
      const server: Server = createServer((req, res) => {
        let b = '';
        req.on('data', (c) => {
          b += c;
        });
        req.on('end', () => {
          hits++;
          if (hits === 1) {
            res.statusCode = 500;
            res.end();
            return;
          }
          bodies.push(JSON.parse(b));
          res.end('ok');
        });
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const port = (server.address() as { port: number }).port;
      try {
        const spent = (await call('GET', '/billing/spend', owner)).json.totalMicros as number;
        expect(spent).toBeGreaterThan(0);
        const mk = await call('POST', '/billing/budgets', owner, {
          name: 'monthly',
          amount: (spent / 1e6 / 0.9).toFixed(6),
          queueName: 'billing-alerts',
        });
        expect(mk.status).toBe(201);
        const hook = await call('POST', '/billing/budgets', owner, {
          name: 'hooked',
          amount: (spent / 1e6 / 0.6).toFixed(6),
          thresholds: [50],
          webhookUrl: `http://127.0.0.1:${port}/alerts`,
        });
        expect(hook.status).toBe(201);
        expect(
          (await call('POST', '/billing/budgets', owner, { name: 'bad', amount: 1, webhookUrl: 'ftp://x' }))
            .status,
        ).toBe(400);
        expect(await cp.billing.checkBudgets()).toBe(3); // 50 and 80 of 'monthly', 50 of 'hooked'
        expect(await cp.billing.checkBudgets()).toBe(0);
        await cp.billing.deliverNotifications();
        const kinds: number[] = [];
        for (let k = 0; k < 5 && kinds.length < 2; k++) {
          const msgs = await call('POST', '/queues/billing-alerts/receive', owner, {
            max: 10,
            waitSeconds: 1,
          });
          for (const m of msgs.json.items as { body: string }[])
            kinds.push(JSON.parse(m.body).details.threshold);
        }
        kinds.sort();
        expect(kinds).toEqual([50, 80]);
        // The webhook failed once: it is retried after its backoff.
        const n = (await call('GET', '/billing/notifications', owner)).json.items.find(
          (x: { target: { kind: string } }) => x.target.kind === 'webhook',
        );
        expect(n).toMatchObject({ delivery: 'pending', attempts: 1, lastError: 'HTTP 500' });
        await cp.database.db
          .updateTable('billing_notifications')
          .set({ next_attempt_at: 0 })
          .where('id', '=', n.id)
          .execute();
        await cp.billing.deliverNotifications();
        expect(bodies).toEqual([expect.objectContaining({ kind: 'BudgetThreshold', tenantId: acme })]);
        const budgets = (await call('GET', '/billing/budgets', owner)).json.items;
        expect(budgets.map((b: { name: string }) => b.name)).toEqual(['hooked', 'monthly']);
        expect((await call('DELETE', `/billing/budgets/${budgets[0].id}`, other)).status).toBe(404);
        expect((await call('DELETE', `/billing/budgets/${budgets[0].id}`, owner)).status).toBe(204);
      } finally {
        server.close();
      }
    });

    it('shows revenue per tenant, service and host to platform admins only', async () => {
      const since = new Date(OCT - 86_400_000).toISOString();
      const untilT = new Date(Date.now() + 10 * 86_400_000).toISOString();
      const total = (await chargesOf(acme)).micros + (await chargesOf(globex)).micros;
      for (const groupBy of ['tenant', 'service', 'host', 'meter']) {
        const r = await call(
          'GET',
          `/billing/showback?groupBy=${groupBy}&bucket=month&since=${since}&until=${untilT}`,
          admin,
        );
        expect(r.status).toBe(200);
        expect(r.json.items.reduce((s: number, i: { amountMicros: number }) => s + i.amountMicros, 0)).toBe(
          total,
        );
      }
      const byDay = await call(
        'GET',
        `/billing/showback?groupBy=tenant&bucket=day&since=${since}&until=${untilT}`,
        admin,
      );
      expect(byDay.json.items.some((i: { key: string }) => i.key === globex)).toBe(true);
      expect((await call('GET', '/billing/showback', owner)).status).toBe(403);
      expect((await call('GET', '/billing/showback?groupBy=host', owner)).status).toBe(403);
      const own = await call(
        'GET',
        `/billing/showback?groupBy=service&bucket=month&since=${since}&until=${untilT}&tenantId=${globex}`,
        owner,
      );
      expect(own.status).toBe(200);
      expect(own.json.items.reduce((s: number, i: { amountMicros: number }) => s + i.amountMicros, 0)).toBe(
        (await chargesOf(acme)).micros,
      );
    });

    it('the database agrees: no usage row without charges, no charge without a usage row', async () => {
      const orphans = await sql<{
        n: number | string;
      }>`select count(*) as n from usage_records u where not exists (select 1 from billing_charges c where c.usage_record_id = u.id)`.execute(
        cp.database.db,
      );
      await cp.billing.rate();
      const left = await sql<{
        n: number | string;
      }>`select count(*) as n from usage_records u where not exists (select 1 from billing_charges c where c.usage_record_id = u.id)`.execute(
        cp.database.db,
      );
      expect(Number(left.rows[0]!.n)).toBe(0);
      expect(Number(orphans.rows[0]!.n)).toBeGreaterThanOrEqual(0);
      const dangling = await sql<{
        n: number | string;
      }>`select count(*) as n from billing_charges c where not exists (select 1 from usage_records u where u.id = c.usage_record_id)`.execute(
        cp.database.db,
      );
      expect(Number(dangling.rows[0]!.n)).toBe(0);
    });
  });
}
