import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Database, openDatabase } from '../db/database.js';
import { YunhaiError } from '../errors.js';
import { addQuotaGate, getQuotas, initQuotas, reserveQuota } from './quota.js';

describe('quota gates', () => {
  let database: Database;
  beforeAll(async () => {
    database = await openDatabase({ url: ':memory:' });
    await database.tx(async (trx) => {
      await trx
        .insertInto('tenants')
        .values({
          id: 'ten-1',
          account_id: '100000000001',
          name: 't1',
          display_name: 't1',
          status: 'active',
          created_at: 0,
          updated_at: 0,
        })
        .execute();
      await initQuotas(trx, 'ten-1');
    });
  });
  afterAll(async () => database.close());
  const used = async () =>
    (await getQuotas(database.db, 'ten-1')).find((q) => q.resource === 'buckets')!.used;

  it('refuses a reservation a gate throws for, in the create transaction, and reserves nothing', async () => {
    const seen: string[] = [];
    const remove = addQuotaGate(async (_trx, tenantId, resource, amount) => {
      seen.push(`${tenantId}:${resource}:${amount}`);
      if (tenantId === 'ten-1') throw new YunhaiError('QuotaExceeded', 'out of balance');
    });
    try {
      await expect(database.tx((trx) => reserveQuota(trx, 'ten-1', 'buckets', 2))).rejects.toMatchObject({
        code: 'QuotaExceeded',
        message: 'out of balance',
      });
      expect(seen).toEqual(['ten-1:buckets:2']);
      expect(await used()).toBe(0);
    } finally {
      remove();
    }
  });

  it('reserves again once the gate is removed', async () => {
    await database.tx((trx) => reserveQuota(trx, 'ten-1', 'buckets', 1));
    expect(await used()).toBe(1);
  });
});
