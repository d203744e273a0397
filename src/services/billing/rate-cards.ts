import { z } from 'zod';
import { YunhaiError } from '../../platform/errors.js';
import { isPriceableMeter, meterDef } from './catalogue.js';
import { isCurrencyCode } from './money.js';
import type { PriceDef, RateCardVersion } from './rating.js';

const safeInt = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

export const tierSchema = z.strictObject({
  upToUnits: safeInt.positive().nullable(),
  unitPriceMicros: safeInt,
});

export const priceSchema = z.strictObject({
  meter: z.string().min(1).max(120),
  unit: z.string().min(1).max(40).optional(),
  unitQuantity: safeInt.positive().optional(),
  tiers: z.array(tierSchema).min(1).max(20),
  freeUnits: safeInt.default(0),
});

export const rateCardInputSchema = z.strictObject({
  name: z.string().min(1).max(100),
  tenantId: z.string().min(1).max(64).nullable().default(null),
  currency: z.string().length(3).optional(),
  effectiveFrom: z.iso
    .datetime({ offset: true })
    .transform((s) => Date.parse(s))
    .optional(),
  prices: z.array(priceSchema).max(200),
});
export type RateCardInput = z.output<typeof rateCardInputSchema>;

/** Checks a price list and fills each price's unit from the catalogue. */
export function normalisePrices(prices: z.output<typeof priceSchema>[]): PriceDef[] {
  const seen = new Set<string>();
  return prices.map((p) => {
    if (!isPriceableMeter(p.meter))
      throw new YunhaiError(
        'ValidationError',
        `'${p.meter}' is not a meter of the catalogue (GET /billing/meters).`,
      );
    if (seen.has(p.meter)) throw new YunhaiError('ValidationError', `meter '${p.meter}' is priced twice.`);
    seen.add(p.meter);
    const def = meterDef(p.meter)!;
    p.tiers.forEach((t, i) => {
      const last = i === p.tiers.length - 1;
      if (last !== (t.upToUnits === null))
        throw new YunhaiError(
          'ValidationError',
          `${p.meter}: only the last tier is open-ended (upToUnits: null).`,
        );
      const prev = i > 0 ? p.tiers[i - 1]!.upToUnits! : 0;
      if (t.upToUnits !== null && t.upToUnits <= prev)
        throw new YunhaiError('ValidationError', `${p.meter}: tier bounds must increase.`);
    });
    const unitQuantity = p.unitQuantity ?? def.priceUnitQuantity;
    return {
      meter: p.meter,
      unit: p.unit ?? (p.unitQuantity ? `${p.unitQuantity} ${def.unit}` : def.priceUnit),
      unitQuantity,
      tiers: p.tiers,
      freeUnits: p.freeUnits,
    };
  });
}

export function checkCurrency(code: string) {
  if (!isCurrencyCode(code))
    throw new YunhaiError('ValidationError', `'${code}' is not an ISO 4217 currency code.`);
}

const flat = (meter: string, unitPriceMicros: number, freeUnits = 0): PriceDef => {
  const def = meterDef(meter)!;
  return {
    meter,
    unit: def.priceUnit,
    unitQuantity: def.priceUnitQuantity,
    tiers: [{ upToUnits: null, unitPriceMicros }],
    freeUnits,
  };
};

/**
 * The rate card seeded on first start (CNY unless configured). Instances are priced by their
 * vCPUs and memory, so the per-flavor instance-seconds family costs nothing by default.
 */
export function defaultPrices(): PriceDef[] {
  return [
    flat('compute.instance-seconds:*', 0),
    flat('compute.vcpu-seconds', 120_000),
    flat('compute.memory-mib-seconds', 30_000),
    flat('s3.storage-byte-seconds', 165),
    flat('s3.requests-class-a', 100_000),
    flat('s3.requests-class-b', 10_000),
    {
      ...flat('s3.egress-bytes', 0, 1),
      tiers: [
        { upToUnits: 10_240, unitPriceMicros: 500_000 },
        { upToUnits: null, unitPriceMicros: 400_000 },
      ],
    },
    flat('sqs.requests', 2_500_000, 1),
  ];
}

export interface RateCardView {
  id: string;
  name: string;
  tenantId: string | null;
  version: number;
  effectiveFrom: string;
  currency: string;
  prices: PriceDef[];
  createdBy: string;
  createdAt: string;
}

export const toCardVersion = (r: {
  id: string;
  tenant_id: string | null;
  version: number;
  effective_from: number;
  currency: string;
  prices: string;
}): RateCardVersion => ({
  id: r.id,
  tenantId: r.tenant_id,
  version: r.version,
  effectiveFrom: r.effective_from,
  currency: r.currency,
  prices: JSON.parse(r.prices) as PriceDef[],
});
