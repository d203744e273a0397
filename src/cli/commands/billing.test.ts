import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordUsage } from '../../platform/usage/ledger.js';
import { cliAgainst } from '../../test-support/cli.js';
import { startTestControlPlane, type TestControlPlane } from '../../test-support/control-plane.js';
import { parseTaxRate } from './billing.js';

describe('yunhai billing', () => {
  let cp: TestControlPlane;
  let tmp: string;
  let tenant: string;
  let cli: ReturnType<typeof cliAgainst>;
  const yh = (...argv: string[]) => cli.yh(...argv);
  const json = <T>(...argv: string[]) => cli.json<T>(...argv);

  beforeAll(async () => {
    cp = await startTestControlPlane();
    cli = cliAgainst(cp, 'yunhai-cli-billing-');
    ({ tmp } = cli);
    expect((await yh('tenant', 'create', 'acme')).code).toBe(0);
    tenant = (
      await cp.database.db
        .selectFrom('tenants')
        .select('id')
        .where('name', '=', 'acme')
        .executeTakeFirstOrThrow()
    ).id;
    const oct = Date.UTC(2026, 9, 1);
    await cp.database.tx((trx) =>
      recordUsage(trx, [
        {
          tenantId: tenant,
          service: 'compute',
          resourceId: 'ins-1',
          meter: 'compute.vcpu-seconds',
          quantity: 36_000,
          periodStart: oct,
          periodEnd: oct + 36_000_000,
          idempotencyKey: 'cli-1',
        },
      ]),
    );
  });
  afterAll(async () => {
    await cp?.stop();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('parses tax rates as percentages or parts per million', () => {
    expect(parseTaxRate('6%')).toBe(60_000);
    expect(parseTaxRate('6.5%')).toBe(65_000);
    expect(parseTaxRate('130000')).toBe(130_000);
    expect(() => parseTaxRate('six')).toThrow(/tax-rate/);
  });

  it('lists meters and rate cards, creates a version from a file', async () => {
    expect((await yh('billing', 'meters')).stdout).toContain('compute.vcpu-seconds');
    const file = join(tmp, 'card.json');
    writeFileSync(
      file,
      JSON.stringify({
        name: 'default',
        prices: [{ meter: 'compute.vcpu-seconds', tiers: [{ upToUnits: null, unitPriceMicros: 200_000 }] }],
      }),
    );
    const c = await json<{ version: number }>(
      'billing',
      'rate-card',
      'create',
      '--file',
      'card.json',
      '--effective-from',
      new Date(Date.now() + 60_000).toISOString(),
    );
    expect(c.version).toBe(2);
    expect((await yh('billing', 'rate-card', 'list')).stdout).toMatch(/default\s+2/);
  });

  it('rates, shows spend, makes, finalises, exports and pays an invoice, with balance and credits', async () => {
    expect((await json<{ rated: number }>('billing', 'rate')).rated).toBeGreaterThanOrEqual(0);
    const spend = await json<{ totalMicros: number }>(
      'billing',
      'spend',
      '--tenant',
      tenant,
      '--period',
      '2026-10-15',
    );
    expect(spend.totalMicros).toBe(1_200_000); // 10 vCPU-hours at 0.12
    expect((await yh('billing', 'settings', '--tax-rate', '6%')).stdout).toContain('tax 6%');
    await json('billing', 'credit', '--tenant', tenant, '0.2');
    await json('billing', 'top-up', '--tenant', tenant, '100', '--idempotency-key', 'k1');
    await json('billing', 'top-up', '--tenant', tenant, '100', '--idempotency-key', 'k1');
    expect(
      (await json<{ balanceMicros: number }>('billing', 'balance', '--tenant', tenant)).balanceMicros,
    ).toBe(100_000_000);
    expect(
      (await json<{ invoices: number }>('billing', 'invoices', 'generate', '--period', '2026-10-01'))
        .invoices,
    ).toBe(1);
    const list = await json<{ items: { id: string; state: string }[] }>(
      'billing',
      'invoices',
      'list',
      '--tenant',
      tenant,
    );
    const id = list.items[0]!.id;
    const fin = await json<{ state: string; totalMicros: number }>('billing', 'invoices', 'finalise', id);
    // 1.20 + 6% tax 0.072 − 0.20 credit = 1.072
    expect(fin).toMatchObject({ state: 'finalised', totalMicros: 1_072_000 });
    const shown = await yh('billing', 'invoices', 'show', id);
    expect(shown.stdout).toMatch(/Total\s+1\.072 CNY/);
    expect(
      (
        await yh(
          'billing',
          'invoices',
          'export',
          id,
          '--format',
          'html',
          '--lang',
          'zh-CN',
          '--out',
          'inv.html',
        )
      ).code,
    ).toBe(0);
    expect(readFileSync(join(tmp, 'inv.html'), 'utf8')).toContain('应付总额');
    expect((await yh('billing', 'invoices', 'export', id, '--format', 'csv')).stdout).toContain('1.072');
    expect(
      (await json<{ state: string }>('billing', 'invoices', 'pay', id, '--method', 'balance')).state,
    ).toBe('paid');
    expect(
      (await json<{ balanceMicros: number }>('billing', 'balance', '--tenant', tenant)).balanceMicros,
    ).toBe(98_928_000);
    const voided = await yh('billing', 'invoices', 'void', id, '--reason', 'x');
    expect(voided.code).toBe(1);
    expect(voided.stderr).toContain('InvalidState');
  });

  it('creates and lists budgets, shows showback', async () => {
    await json('billing', 'budgets', 'create', 'monthly', '50', '--tenant', tenant);
    expect((await yh('billing', 'budgets', 'list', '--tenant', tenant)).stdout).toMatch(/monthly\s+50\.00/);
    const sb = await json<{ items: { key: string; amountMicros: number }[] }>(
      'billing',
      'showback',
      '--group-by',
      'tenant',
      '--bucket',
      'month',
      '--since',
      '2026-10-01',
    );
    expect(sb.items.find((i) => i.key === tenant)?.amountMicros).toBe(1_200_000);
  });
});
