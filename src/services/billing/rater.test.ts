import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Database, openDatabase } from '../../platform/db/database.js';
import { recordUsage } from '../../platform/usage/ledger.js';
import { rateAll } from './rater.js';

describe('the rater', () => {
  let database: Database;
  beforeAll(async () => {
    database = await openDatabase({ url: ':memory:' });
    await database.db
      .insertInto('billing_rate_cards')
      .values({
        id: 'rc-absurd',
        scope: 'default',
        tenant_id: null,
        name: 'absurd',
        version: 1,
        effective_from: 0,
        currency: 'CNY',
        prices: JSON.stringify([
          {
            meter: 's3.egress-bytes',
            unit: 'byte',
            unitQuantity: 1,
            tiers: [{ upToUnits: null, unitPriceMicros: 5_000_000 }],
            freeUnits: 0,
          },
          {
            meter: 'sqs.requests',
            unit: 'request',
            unitQuantity: 1,
            tiers: [{ upToUnits: null, unitPriceMicros: 3 }],
            freeUnits: 0,
          },
        ]),
        created_by: 'test',
        created_at: 0,
      })
      .execute();
  });
  afterAll(async () => database.close());

  it('leaves a row it cannot price exactly unrated and reported, and rates the others', async () => {
    const base = { tenantId: 'ten-x', service: 's3', resourceId: 'b', periodStart: 1000, periodEnd: 2000 };
    await database.tx((trx) =>
      recordUsage(trx, [
        { ...base, meter: 's3.egress-bytes', quantity: 2 ** 52, idempotencyKey: 'poison' },
        ...Array.from({ length: 5 }, (_, i) => ({
          ...base,
          service: 'sqs',
          meter: 'sqs.requests',
          quantity: 10,
          idempotencyKey: `ok-${i}`,
        })),
      ]),
    );
    const refused: string[] = [];
    expect(await rateAll(database, { full: true, batch: 4, onRefused: (id) => refused.push(id) })).toBe(5);
    const poison = await database.db
      .selectFrom('usage_records')
      .select('id')
      .where('idempotency_key', '=', 'poison')
      .executeTakeFirstOrThrow();
    expect(refused).toEqual([poison.id]);
    const charged = await database.db
      .selectFrom('billing_charges')
      .select(['usage_record_id', 'amount_micros'])
      .execute();
    expect(charged).toHaveLength(5);
    expect(charged.every((c) => c.amount_micros === 30)).toBe(true);
    expect(await rateAll(database, { full: true })).toBe(0);
  });
});
