import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  accumulatorFromStored,
  accumulatorToStored,
  type ChargeLine,
  monthStart,
  PriceBook,
  type PriceDef,
  priceQuantity,
  type RateCardVersion,
  type RatingState,
  rateUsage,
  type UsageRow,
} from './rating.js';

const T0 = Date.UTC(2026, 0, 1);
const HOUR = 3_600_000;
const MIN_MS = 60_000;
const vcpu = (unitPriceMicros: number, extra: Partial<PriceDef> = {}): PriceDef => ({
  meter: 'compute.vcpu-seconds',
  unit: 'vCPU-hour',
  unitQuantity: 3600,
  tiers: [{ upToUnits: null, unitPriceMicros }],
  freeUnits: 0,
  ...extra,
});
const card = (id: string, from: number, prices: PriceDef[], tenantId: string | null = null, version = 1) =>
  ({ id, tenantId, version, effectiveFrom: from, currency: 'CNY', prices }) satisfies RateCardVersion;
const row = (id: string, start: number, end: number, quantity: number, extra: Partial<UsageRow> = {}) =>
  ({
    id,
    tenantId: 'ten-a',
    service: 'compute',
    resourceId: 'ins-1',
    meter: 'compute.vcpu-seconds',
    quantity,
    periodStart: start,
    periodEnd: end,
    ...extra,
  }) satisfies UsageRow;
const total = (lines: ChargeLine[]) => lines.reduce((s, l) => s + l.amountMicros, 0);

describe('rateUsage', () => {
  it('prices a row at the card in force: 2 vCPU for an hour at 0.10/vCPU-hour is 0.20', () => {
    const book = new PriceBook([card('rc1', 0, [vcpu(100_000)])]);
    const lines = rateUsage([row('u1', T0, T0 + HOUR, 7200)], book, new Map());
    expect(lines).toEqual([
      expect.objectContaining({
        usage: expect.objectContaining({ id: 'u1' }),
        seg: 0,
        quantity: 7200,
        amountMicros: 200_000,
        cardId: 'rc1',
      }),
    ]);
  });

  it('splits a row spanning a price change and charges each share of seconds at its own price', () => {
    const change = T0 + HOUR / 2;
    const book = new PriceBook([
      card('old', 0, [vcpu(100_000)]),
      card('new', change, [vcpu(300_000)], null, 2),
    ]);
    const lines = rateUsage([row('u1', T0, T0 + HOUR, 3600)], book, new Map());
    expect(lines.map((l) => [l.cardId, l.quantity, l.start, l.end])).toEqual([
      ['old', 1800, T0, change],
      ['new', 1800, change, T0 + HOUR],
    ]);
    // 1800 s at 0.10/h = 0.05; 1800 s at 0.30/h = 0.15.
    expect(lines.map((l) => l.amountMicros)).toEqual([50_000, 150_000]);
  });

  it('splits a row at the month boundary into two billing periods', () => {
    const feb = Date.UTC(2026, 1, 1);
    const book = new PriceBook([card('rc', 0, [vcpu(3_600_000)])]);
    const lines = rateUsage([row('u1', feb - 10_000, feb + 30_000, 40)], book, new Map());
    expect(lines.map((l) => [l.billingPeriod, l.quantity, l.amountMicros])).toEqual([
      [monthStart(feb - 1), 10, 10_000],
      [feb, 30, 30_000],
    ]);
  });

  it('does not lose sub-micro amounts of many small rows (cumulative rounding)', () => {
    // 1 second of a 1-vCPU instance at 0.001/h is 0.2778 micro-units; 3600 of them make 1000.
    const book = new PriceBook([card('rc', 0, [vcpu(1000)])]);
    const rows = Array.from({ length: 3600 }, (_, i) => row(`u${i}`, T0 + i * 1000, T0 + (i + 1) * 1000, 1));
    expect(total(rateUsage(rows, book, new Map()))).toBe(1000);
  });

  it('applies the free allowance, then graduated tiers', () => {
    const p = vcpu(0, {
      freeUnits: 10,
      tiers: [
        { upToUnits: 100, unitPriceMicros: 1_000_000 },
        { upToUnits: null, unitPriceMicros: 500_000 },
      ],
    });
    expect(priceQuantity(p, 10 * 3600)).toBe(0);
    expect(priceQuantity(p, 100 * 3600)).toBe(90_000_000);
    expect(priceQuantity(p, 200 * 3600)).toBe(140_000_000);
  });

  it('uses a tenant override for the meters it prices and the default card for the rest', () => {
    const mem: PriceDef = {
      ...vcpu(1_000_000),
      meter: 'compute.memory-mib-seconds',
      unitQuantity: 1024 * 3600,
    };
    const book = new PriceBook([
      card('def', 0, [vcpu(100_000), mem]),
      card('vip', 0, [vcpu(50_000)], 'ten-a'),
    ]);
    const lines = rateUsage(
      [
        row('u1', T0, T0 + HOUR, 3600),
        row('u2', T0, T0 + HOUR, 1024 * 3600, { meter: 'compute.memory-mib-seconds' }),
      ],
      book,
      new Map(),
    );
    expect(lines.map((l) => [l.cardId, l.amountMicros])).toEqual([
      ['vip', 50_000],
      ['def', 1_000_000],
    ]);
  });

  it('prices a flavor variant through its family entry', () => {
    const fam: PriceDef = { ...vcpu(10_000), meter: 'compute.instance-seconds:*' };
    const book = new PriceBook([card('def', 0, [fam])]);
    const lines = rateUsage(
      [row('u1', T0, T0 + HOUR, 3600, { meter: 'compute.instance-seconds:m1.small' })],
      book,
      new Map(),
    );
    expect(lines[0]!.amountMicros).toBe(10_000);
  });

  it('rates an unpriced meter at zero, still producing its line', () => {
    const book = new PriceBook([card('def', 0, [])]);
    const lines = rateUsage([row('u1', T0, T0 + HOUR, 3600)], book, new Map());
    expect(lines).toEqual([expect.objectContaining({ amountMicros: 0, cardId: 'def', quantity: 3600 })]);
  });
});

// ---- properties -------------------------------------------------------------------------------

const priceArb = fc.record({
  meter: fc.constant('compute.vcpu-seconds'),
  unit: fc.constant('vCPU-hour'),
  unitQuantity: fc.constantFrom(1, 3600, 10_000, 3600 * 1024 ** 3),
  freeUnits: fc.integer({ min: 0, max: 5 }),
  tiers: fc
    .tuple(
      fc.array(fc.integer({ min: 1, max: 50 }), { maxLength: 3 }),
      fc.array(fc.integer({ min: 0, max: 5_000_000 }), { minLength: 4, maxLength: 4 }),
    )
    .map(([steps, prices]) => {
      let at = 0;
      const tiers = steps.map((s, i) => {
        at += s;
        return { upToUnits: at, unitPriceMicros: prices[i]! };
      });
      // Volume discounts: each tier costs no more than the one before.
      const sorted = [...prices].sort((a, b) => b - a);
      return [...tiers, { upToUnits: null, unitPriceMicros: prices[steps.length]! }].map((t, i) => ({
        ...t,
        unitPriceMicros: sorted[i]!,
      }));
    }),
}) satisfies fc.Arbitrary<PriceDef>;

const rowsArb = fc.array(
  fc.record({
    start: fc.integer({ min: 0, max: 60 * 24 * 40 }),
    minutes: fc.integer({ min: 0, max: 600 }),
    quantity: fc.integer({ min: 0, max: 10_000_000 }),
  }),
  { minLength: 1, maxLength: 40 },
);
const toRows = (rs: { start: number; minutes: number; quantity: number }[]) =>
  rs.map((r, i) => row(`u${i}`, T0 + r.start * 60_000, T0 + (r.start + r.minutes) * 60_000, r.quantity));

describe('rating properties', () => {
  it('is additive: rating in any two batches gives the same lines as rating at once', () => {
    fc.assert(
      fc.property(priceArb, priceArb, rowsArb, fc.nat(), (p1, p2, rs, cut) => {
        const cards = [card('a', 0, [p1]), card('b', T0 + 10 * 86_400_000, [p2], null, 2)];
        const rows = toRows(rs);
        const k = cut % (rows.length + 1);
        const whole = rateUsage(rows, new PriceBook(cards), new Map());
        const state: RatingState = new Map();
        const split = [
          ...rateUsage(rows.slice(0, k), new PriceBook(cards), state),
          ...rateUsage(rows.slice(k), new PriceBook(cards), state),
        ];
        expect(split).toEqual(whole);
      }),
    );
  });

  it('gives the same lines when the state is stored and loaded between batches (as the rater does)', () => {
    fc.assert(
      fc.property(priceArb, priceArb, rowsArb, fc.nat(), (p1, p2, rs, cut) => {
        const cards = [card('a', 0, [p1]), card('b', T0 + 10 * 86_400_000, [p2], null, 2)];
        const rows = toRows(rs);
        const k = cut % (rows.length + 1);
        const whole = rateUsage(rows, new PriceBook(cards), new Map());
        const first: RatingState = new Map();
        const a = rateUsage(rows.slice(0, k), new PriceBook(cards), first);
        const reloaded: RatingState = new Map(
          [...first].map(([key, acc]) => [key, accumulatorFromStored(accumulatorToStored(acc))]),
        );
        const b = rateUsage(rows.slice(k), new PriceBook(cards), reloaded);
        expect([...a, ...b]).toEqual(whole);
      }),
    );
  });

  it('never charges a negative amount, and the shares of a row add up to its quantity', () => {
    fc.assert(
      fc.property(priceArb, priceArb, rowsArb, (p1, p2, rs) => {
        const book = new PriceBook([card('a', 0, [p1]), card('b', T0 + 3 * 86_400_000, [p2], null, 2)]);
        const rows = toRows(rs);
        const lines = rateUsage(rows, book, new Map());
        for (const l of lines) expect(l.amountMicros).toBeGreaterThanOrEqual(0);
        for (const r of rows)
          expect(lines.filter((l) => l.usage.id === r.id).reduce((s, l) => s + l.quantity, 0)).toBe(
            r.quantity,
          );
      }),
    );
  });

  it('sums to the exact cost of the total rounded once, whatever the order of the rows', () => {
    fc.assert(
      fc.property(priceArb, rowsArb, fc.nat(), (p, rs, seed) => {
        // One billing period (all rows inside January) and one price.
        const rows = toRows(rs.map((r) => ({ ...r, start: r.start % (60 * 24 * 20) })));
        const book = new PriceBook([card('a', 0, [p])]);
        const shuffled = [...rows].sort(
          (a, b) => ((a.id.length * 31 + seed) % 7) - ((b.id.length * 17 + seed) % 5),
        );
        const q = rows.reduce((s, r) => s + r.quantity, 0);
        expect(total(rateUsage(rows, book, new Map()))).toBe(priceQuantity(p, q));
        expect(total(rateUsage(shuffled, book, new Map()))).toBe(priceQuantity(p, q));
      }),
    );
  });

  it('stays exact past 2^53: huge quantities take the BigInt path and agree with it', () => {
    fc.assert(
      fc.property(
        priceArb,
        fc.array(
          fc.oneof(fc.integer({ min: 0, max: 1000 }), fc.integer({ min: 2 ** 50, max: 2 ** 53 - 1 })),
          {
            minLength: 1,
            maxLength: 12,
          },
        ),
        (p, qs) => {
          const rows = qs.map((q, i) => row(`u${i}`, T0 + i * MIN_MS, T0 + (i + 1) * MIN_MS, q));
          const rate = () =>
            rateUsage(rows, new PriceBook([card('a', 0, [p])]), new Map()).reduce(
              (s, l) => s + BigInt(l.amountMicros),
              0n,
            );
          const q = qs.reduce((s, x) => s + BigInt(x), 0n);
          // The exact cost of the total quantity, computed here from the price alone.
          const uq = BigInt(p.unitQuantity);
          let lo = 0n;
          let num = 0n;
          const bands = [
            ...(p.freeUnits > 0 ? [{ hi: BigInt(p.freeUnits) * uq, price: 0n }] : []),
            ...p.tiers
              .map((t) => ({
                hi: t.upToUnits === null ? null : BigInt(t.upToUnits) * uq,
                price: BigInt(t.unitPriceMicros),
              }))
              .filter((b) => p.freeUnits === 0 || b.hi === null || b.hi > BigInt(p.freeUnits) * uq),
          ];
          for (const b of bands) {
            const hi = b.hi === null || b.hi > q ? q : b.hi;
            if (hi > lo) num += (hi - lo) * b.price;
            if (hi >= q) break;
            lo = hi;
          }
          const exact = (2n * num + uq) / (2n * uq);
          if (exact > BigInt(Number.MAX_SAFE_INTEGER)) {
            // Past the money limit the rater refuses rather than lose precision.
            expect(() => rateUsage(rows, new PriceBook([card('a', 0, [p])]), new Map())).toThrow(RangeError);
            return;
          }
          expect(rate()).toBe(exact);
        },
      ),
    );
  });

  it('is exact at the edges of the number fast path: sums, quotients and units near 2^53', () => {
    const MAX = Number.MAX_SAFE_INTEGER;
    fc.assert(
      fc.property(
        fc.oneof(
          fc.integer({ min: 1, max: 4096 }),
          fc.integer({ min: 2 ** 40, max: 2 ** 53 - 1 }),
          fc.constantFrom(1, 3600, 3600 * 2 ** 30, 2 ** 52, MAX - 1, MAX),
        ),
        fc.oneof(fc.integer({ min: 1, max: 16 }), fc.integer({ min: 1, max: 2 ** 21 })),
        fc.array(fc.oneof(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 10_000 })), {
          minLength: 1,
          maxLength: 6,
        }),
        fc.boolean(),
        (unitQuantity, price, offsets, tiered) => {
          // Totals whose cost numerator (quantity × price) lands just below 2^53, split in rows.
          const total = Math.floor(MAX / price) - offsets.reduce((a, b) => a + b, 0);
          if (total <= 0) return;
          const parts = offsets.map((o, i) =>
            i === 0 ? total - offsets.slice(1).reduce((a, b) => a + b, 0) : o,
          );
          const p: PriceDef = tiered
            ? vcpu(price, {
                unitQuantity,
                tiers: [
                  { upToUnits: 1, unitPriceMicros: price },
                  { upToUnits: null, unitPriceMicros: Math.max(0, price - 1) },
                ],
              })
            : vcpu(price, { unitQuantity });
          // Small rows first: a remainder below the unit, then the large row that nears 2^53.
          parts.reverse();
          const rows = parts.map((q, i) => row(`u${i}`, T0 + i * MIN_MS, T0 + (i + 1) * MIN_MS, q));
          // Each line, independently in BigInt: round(exact cost so far) − round(exact cost before).
          const uq = BigInt(unitQuantity);
          const cost = (q: bigint) => {
            if (!tiered) return q * BigInt(price);
            const first = q < uq ? q : uq;
            return first * BigInt(price) + (q - first) * BigInt(Math.max(0, price - 1));
          };
          const round = (num: bigint) => (2n * num + uq) / (2n * uq);
          let cum = 0n;
          const want: bigint[] = [];
          for (const q of parts) {
            const before = round(cost(cum));
            cum += BigInt(q);
            want.push(round(cost(cum)) - before);
          }
          if (round(cost(cum)) > BigInt(MAX)) {
            expect(() => rateUsage(rows, new PriceBook([card('a', 0, [p])]), new Map())).toThrow(RangeError);
            return;
          }
          const lines = rateUsage(rows, new PriceBook([card('a', 0, [p])]), new Map());
          expect(lines.map((l) => BigInt(l.amountMicros))).toEqual(want);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('tiers are monotone: more usage never costs less, and never more per unit than the first tier', () => {
    fc.assert(
      fc.property(priceArb, fc.nat({ max: 1e9 }), fc.nat({ max: 1e9 }), (p, a, b) => {
        const [lo, hi] = a <= b ? [a, b] : [b, a];
        expect(priceQuantity(p, hi)).toBeGreaterThanOrEqual(priceQuantity(p, lo));
        const first = BigInt(p.tiers[0]!.unitPriceMicros);
        expect(BigInt(priceQuantity(p, hi))).toBeLessThanOrEqual(
          (BigInt(hi) * first * 2n + BigInt(p.unitQuantity)) / (2n * BigInt(p.unitQuantity)) + 1n,
        );
      }),
    );
  });
});
