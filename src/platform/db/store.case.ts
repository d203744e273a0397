import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIamService, type IamService } from '../../services/iam/service.js';
import { appendAudit, verifyAudit } from '../audit/audit.js';
import { createSealer } from '../crypto/sealer.js';
import { YunhaiError } from '../errors.js';
import type { RequestContext } from '../policy/principal.js';
import { getQuotas, initQuotas, releaseQuota, reserveQuota, setQuotaLimit } from '../quota/quota.js';
import { listUsage, recordUsage, summariseUsage } from '../usage/ledger.js';
import { type Database, isUniqueViolation, migrate } from './database.js';

/**
 * The store-layer conformance suite. Every SQL dialect runs exactly these cases
 * (sqlite.test.ts, postgres.test.ts), so behaviour cannot drift between them.
 */
export function runStoreConformance(
  name: string,
  open: () => Promise<{ database: Database; cleanup(): Promise<void> }>,
) {
  describe(`store conformance: ${name}`, () => {
    let database: Database;
    let cleanup: () => Promise<void>;
    let iam: IamService;
    let admin: RequestContext;

    beforeAll(async () => {
      ({ database, cleanup } = await open());
      iam = createIamService({ database, sealer: createSealer(randomBytes(32)) });
      await iam.bootstrap({ password: 'root-password-1' });
      const root = await database.db.selectFrom('access_keys').select('id').executeTakeFirstOrThrow();
      const cred = await iam.credentialForKey(root.id);
      admin = { requestId: 'test', sourceIp: '127.0.0.1', principal: cred!.principal };
    });
    afterAll(async () => {
      await database.close();
      await cleanup();
    });

    const newTenant = async (quotas?: Record<string, number>) => {
      const n = `t-${randomBytes(4).toString('hex')}`;
      return (await iam.createTenant(admin, { name: n, quotas })).tenant;
    };

    it('runs the migration list once and is a no-op on the second run', async () => {
      expect(await migrate(database)).toEqual([]);
      const rows = await database.db.selectFrom('settings').selectAll().execute();
      expect(rows.find((r) => r.key === 'bootstrap')?.value).toBe('done');
    });

    it('takes a migration that lands after a later-numbered one already ran', async () => {
      // As a database that ran 0017 before 0016 was committed: 0016 is missing, 0017 is there.
      await database.db.schema.alterTable('objects').dropColumn('body').execute();
      await database.db
        .deleteFrom('kysely_migration' as never)
        .where('name' as never, '=', '0016_objects_inline' as never)
        .execute();
      expect(await migrate(database)).toEqual(['0016_objects_inline']);
      expect(await migrate(database)).toEqual([]);
    });

    it('bootstraps the root account only once', async () => {
      expect(await iam.bootstrap()).toBeNull();
      const tenants = await database.db
        .selectFrom('tenants')
        .select('name')
        .where('name', '=', 'system')
        .execute();
      expect(tenants).toHaveLength(1);
    });

    it('round-trips integers beyond 32 bits as numbers', async () => {
      const t = await newTenant();
      const big = 2 ** 52 + 1;
      await database.tx((trx) => setQuotaLimit(trx, t.id, 'storageBytes', big));
      const q = await getQuotas(database.db, t.id);
      expect(q.find((r) => r.resource === 'storageBytes')?.limit).toBe(big);
    });

    it('reports a unique violation the same way in both dialects', async () => {
      const t = await newTenant();
      const err = await database.db
        .insertInto('tenants')
        .values({
          ...{
            id: `ten-${randomBytes(6).toString('hex')}`,
            account_id: '1',
            name: t.name,
            display_name: 'x',
            status: 'active' as const,
          },
          created_at: 1,
          updated_at: 1,
        })
        .execute()
        .catch((e: unknown) => e);
      expect(isUniqueViolation(err)).toBe(true);
    });

    it('rolls back everything a failed transaction wrote', async () => {
      const t = await newTenant();
      await expect(
        database.tx(async (trx) => {
          await reserveQuota(trx, t.id, 'buckets', 3);
          await appendAudit(trx, {
            tenantId: t.id,
            principal: 'x',
            action: 'test:Fail',
            resource: 'r',
            outcome: 'success',
            sourceIp: '-',
            requestId: 'r',
          });
          throw new Error('boom');
        }),
      ).rejects.toThrow('boom');
      const q = await getQuotas(database.db, t.id);
      expect(q.find((r) => r.resource === 'buckets')?.used).toBe(0);
      const ev = await database.db
        .selectFrom('audit_events')
        .select('seq')
        .where('action', '=', 'test:Fail')
        .execute();
      expect(ev).toHaveLength(0);
      expect((await verifyAudit(database.db)).ok).toBe(true);
    });

    it('never lets 100 concurrent reservations exceed a quota', async () => {
      const t = await newTenant({ buckets: 10 });
      const results = await Promise.allSettled(
        Array.from({ length: 100 }, () => database.tx((trx) => reserveQuota(trx, t.id, 'buckets', 1))),
      );
      const ok = results.filter((r) => r.status === 'fulfilled').length;
      const refused = results.filter((r) => r.status === 'rejected');
      expect(ok).toBe(10);
      expect(refused).toHaveLength(90);
      for (const r of refused)
        expect(((r as PromiseRejectedResult).reason as YunhaiError).code).toBe('QuotaExceeded');
      expect((await getQuotas(database.db, t.id)).find((r) => r.resource === 'buckets')?.used).toBe(10);
    });

    it('never lets 100 concurrent user creates exceed the users quota', async () => {
      const t = await newTenant({ users: 7 });
      const results = await Promise.allSettled(
        Array.from({ length: 100 }, (_, i) =>
          iam.createUser(admin, { tenantId: t.id, name: `u${i}`, role: 'member' }),
        ),
      );
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(7);
      const users = await database.db
        .selectFrom('users')
        .select('id')
        .where('tenant_id', '=', t.id)
        .execute();
      expect(users).toHaveLength(7);
      expect((await getQuotas(database.db, t.id)).find((r) => r.resource === 'users')?.used).toBe(7);
    });

    it('releases quota without going below zero and treats -1 as unlimited', async () => {
      const t = await newTenant({ queues: -1 });
      await database.tx((trx) => reserveQuota(trx, t.id, 'queues', 5000));
      await database.tx((trx) => releaseQuota(trx, t.id, 'queues', 6000));
      expect((await getQuotas(database.db, t.id)).find((r) => r.resource === 'queues')?.used).toBe(0);
    });

    it('refuses a reservation over the limit with the numbers in the message', async () => {
      const t = await newTenant({ instances: 2 });
      const err = await database
        .tx((trx) => reserveQuota(trx, t.id, 'instances', 3))
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(YunhaiError);
      expect((err as YunhaiError).message).toMatch(/limit 2, in use 0, requested 3/);
    });

    it('keeps the audit chain intact under concurrent appends', async () => {
      await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          database.tx((trx) =>
            appendAudit(trx, {
              tenantId: null,
              principal: 'p',
              action: 'test:Concurrent',
              resource: `r${i}`,
              outcome: 'success',
              sourceIp: '-',
              requestId: `q${i}`,
            }),
          ),
        ),
      );
      const v = await verifyAudit(database.db);
      expect(v.ok).toBe(true);
      expect(v.checked).toBe(v.headSeq);
    });

    it('detects an edited, a deleted and a truncated audit row', async () => {
      const ev = await database.tx((trx) =>
        appendAudit(trx, {
          tenantId: null,
          principal: 'p',
          action: 'test:Tamper',
          resource: 'r',
          outcome: 'success',
          sourceIp: '-',
          requestId: 'q',
        }),
      );
      await database.tx((trx) =>
        appendAudit(trx, {
          tenantId: null,
          principal: 'p',
          action: 'test:After',
          resource: 'r',
          outcome: 'success',
          sourceIp: '-',
          requestId: 'q',
        }),
      );
      expect((await verifyAudit(database.db)).ok).toBe(true);

      await database.db
        .updateTable('audit_events')
        .set({ resource: 'edited' })
        .where('seq', '=', ev.seq)
        .execute();
      const edited = await verifyAudit(database.db);
      expect(edited.ok).toBe(false);
      expect(edited.problem).toEqual({ seq: ev.seq, reason: expect.stringMatching(/edited/) });
      await database.db
        .updateTable('audit_events')
        .set({ resource: 'r' })
        .where('seq', '=', ev.seq)
        .execute();
      expect((await verifyAudit(database.db)).ok).toBe(true);

      const row = await database.db
        .selectFrom('audit_events')
        .selectAll()
        .where('seq', '=', ev.seq)
        .executeTakeFirstOrThrow();
      await database.db.deleteFrom('audit_events').where('seq', '=', ev.seq).execute();
      const deleted = await verifyAudit(database.db);
      expect(deleted.ok).toBe(false);
      expect(deleted.problem?.reason).toMatch(/missing/);
      await database.db.insertInto('audit_events').values(row).execute();

      const last = await database.db
        .selectFrom('audit_events')
        .select((eb) => eb.fn.max('seq').as('m'))
        .executeTakeFirstOrThrow();
      const lastRow = await database.db
        .selectFrom('audit_events')
        .selectAll()
        .where('seq', '=', Number(last.m))
        .executeTakeFirstOrThrow();
      await database.db.deleteFrom('audit_events').where('seq', '=', lastRow.seq).execute();
      const truncated = await verifyAudit(database.db);
      expect(truncated.ok).toBe(false);
      expect(truncated.problem?.reason).toMatch(/rows deleted/);
      await database.db.insertInto('audit_events').values(lastRow).execute();
      expect((await verifyAudit(database.db)).ok).toBe(true);
    });

    it('records usage exactly once per idempotency key, even when retried concurrently', async () => {
      const t = await newTenant();
      const row = {
        tenantId: t.id,
        service: 'test',
        resourceId: 'r-1',
        meter: 'test.seconds',
        quantity: 60,
        periodStart: 1_000,
        periodEnd: 61_000,
        idempotencyKey: `k-${t.id}`,
      };
      const inserted = await Promise.all(
        Array.from({ length: 10 }, () => database.tx((trx) => recordUsage(trx, [row]))),
      );
      expect(inserted.reduce((a, b) => a + b, 0)).toBe(1);
      const rows = await listUsage(database.db, { tenantId: t.id, limit: 10 });
      expect(rows).toHaveLength(1);
      expect(await summariseUsage(database.db, t.id, 0, 100_000)).toEqual([
        { meter: 'test.seconds', total: 60 },
      ]);
    });

    it('writes usage and audit in the same transaction as the change, or not at all', async () => {
      const t = await newTenant();
      await database
        .tx(async (trx) => {
          await recordUsage(trx, [
            {
              tenantId: t.id,
              service: 'test',
              resourceId: 'r',
              meter: 'm',
              quantity: 1,
              periodStart: 0,
              periodEnd: 1,
              idempotencyKey: `x-${t.id}`,
            },
          ]);
          await reserveQuota(trx, t.id, 'volumes', 1);
          throw new Error('crash before commit');
        })
        .catch(() => {});
      expect(await listUsage(database.db, { tenantId: t.id, limit: 10 })).toHaveLength(0);
    });

    it('pages usage rows with a keyset cursor in a stable order', async () => {
      const t = await newTenant();
      await database.tx((trx) =>
        recordUsage(
          trx,
          Array.from({ length: 25 }, (_, i) => ({
            tenantId: t.id,
            service: 's',
            resourceId: 'r',
            meter: 'm',
            quantity: i,
            periodStart: Math.floor(i / 3),
            periodEnd: 100,
            idempotencyKey: `p-${t.id}-${i}`,
          })),
        ),
      );
      const seen: number[] = [];
      let after: { periodStart: number; id: string } | undefined;
      for (;;) {
        const page = await listUsage(database.db, { tenantId: t.id, limit: 7, after });
        seen.push(...page.map((r) => r.quantity));
        if (page.length < 7) break;
        const last = page[page.length - 1]!;
        after = { periodStart: last.period_start, id: last.id };
      }
      expect(seen.sort((a, b) => a - b)).toEqual(Array.from({ length: 25 }, (_, i) => i));
    });

    it('initialises quota rows for a new tenant', async () => {
      const t = await newTenant();
      const q = await getQuotas(database.db, t.id);
      expect(q.map((r) => r.resource)).toContain('instances');
      await expect(database.tx((trx) => initQuotas(trx, t.id))).rejects.toSatisfy(isUniqueViolation);
    });

    it('matches path prefixes exactly and searches names case-insensitively with wildcards taken literally', async () => {
      const t = await newTenant();
      for (const [name, path] of [
        ['a1', '/dev_ops/'],
        ['a2', '/devXops/'],
        ['a3', '/Eng/'],
        ['b_1', '/eng/'],
        ['bx1', '/'],
      ] as const) {
        await iam.createUser(admin, { tenantId: t.id, name, path, role: 'member' });
      }
      const names = async (q: { pathPrefix?: string; search?: string }) =>
        (await iam.listUsers(admin, { tenantId: t.id, limit: 50, ...q })).items.map((u) => u.name);
      expect(await names({ pathPrefix: '/dev_ops/' })).toEqual(['a1']);
      expect(await names({ pathPrefix: '/dev%' })).toEqual([]);
      expect(await names({ pathPrefix: '/eng/' })).toEqual(['b_1']);
      expect(await names({ search: 'B_' })).toEqual(['b_1']);
      expect(await names({ search: 'A' })).toEqual(['a1', 'a2', 'a3']);
    });

    it('answers a trivial raw query (the driver is alive)', async () => {
      const r = await sql<{ one: number }>`select 1 as one`.execute(database.db);
      expect(Number(r.rows[0]?.one)).toBe(1);
    });
  });
}
