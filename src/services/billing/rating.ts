/**
 * Rating: usage rows + the rate cards in force → charge lines. Pure and deterministic: the only
 * input besides the rows and the cards is the per-(tenant, meter, billing period) accumulator
 * `state`, which the function advances and the caller persists in the same transaction as the
 * lines. The continuous rater keys lines by usage record id, so a row is rated once.
 *
 * Exactness rules (docs/billing.md):
 * - A row spanning a price change or a billing-period boundary is split there; its integer
 *   quantity is shared by time, `Q(t) = floor(q·(t−start)/(end−start))`, each share priced at
 *   its own price. The shares add up to the row's quantity exactly.
 * - Prices are micro-units per `unitQuantity` ledger units (e.g. per 3600·2^30 byte-seconds =
 *   per GiB-hour). Graduated tiers and the free allowance are positions in the tenant's
 *   cumulative quantity of that meter in the billing period.
 * - The accumulator keeps the exact cost so far as a fraction (BigInt numerator/denominator).
 *   A line's amount is `round(exact after) − round(exact before)`, rounding half up to the
 *   micro-unit, so the lines of a period always sum to the exact total rounded once: no rounding
 *   drift however small the rows, and never negative.
 */

export interface Tier {
  /** Upper bound of the tier in price units (cumulative in the period); null for the last tier. */
  upToUnits: number | null;
  unitPriceMicros: number;
}

export interface PriceDef {
  /** A ledger meter, or a family `compute.instance-seconds:*`; an exact meter wins over its family. */
  meter: string;
  /** Display name of the price unit, e.g. `GiB-hour`. */
  unit: string;
  /** Ledger units per price unit (3600 for per-hour prices of a per-second meter). */
  unitQuantity: number;
  tiers: Tier[];
  /** Price units free per tenant and billing period, before the tiers. */
  freeUnits: number;
}

export interface RateCardVersion {
  id: string;
  /** null: the default card; otherwise a tenant's override (its prices win for the meters it names). */
  tenantId: string | null;
  version: number;
  effectiveFrom: number;
  currency: string;
  prices: PriceDef[];
}

export interface UsageRow {
  id: string;
  tenantId: string;
  service: string;
  resourceId: string;
  meter: string;
  quantity: number;
  periodStart: number;
  periodEnd: number;
}

export interface ChargeLine {
  usageId: string;
  seg: number;
  tenantId: string;
  service: string;
  resourceId: string;
  meter: string;
  /** Start of the billing period the line belongs to. */
  billingPeriod: number;
  start: number;
  end: number;
  quantity: number;
  amountMicros: number;
  /** The card version that priced it; null when no card prices the meter (amount 0). */
  cardId: string | null;
}

/** Exact cost so far of one (tenant, meter, billing period): quantity and num/den in micro-units. */
export interface Accumulator {
  qty: bigint;
  num: bigint;
  den: bigint;
  charged: bigint;
}

export type RatingState = Map<string, Accumulator>;

export const accumulatorKey = (tenantId: string, meter: string, period: number) =>
  `${tenantId}\u0000${meter}\u0000${period}`;

/** Calendar months in UTC: the default billing period. */
export function monthStart(t: number): number {
  const d = new Date(t);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
}
export function nextMonthStart(t: number): number {
  const d = new Date(t);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
}

interface Band {
  hi: bigint | null;
  price: bigint;
}
interface CompiledPrice {
  unitQuantity: bigint;
  bands: Band[];
  /** Single band: cost = q · price. */
  flat: bigint | null;
}
interface TimelineEntry {
  from: number;
  cardId: string;
  price: CompiledPrice | null;
}

function compilePrice(p: PriceDef): CompiledPrice {
  const uq = BigInt(p.unitQuantity);
  let bands: Band[] = p.tiers.map((t) => ({
    hi: t.upToUnits === null ? null : BigInt(t.upToUnits) * uq,
    price: BigInt(t.unitPriceMicros),
  }));
  if (p.freeUnits > 0) {
    const free = BigInt(p.freeUnits) * uq;
    bands = [{ hi: free, price: 0n }, ...bands.filter((b) => b.hi === null || b.hi > free)];
  }
  const only = bands.length === 1 ? bands[0]! : undefined;
  return { unitQuantity: uq, bands, flat: only && only.hi === null ? only.price : null };
}

/** Cost numerator (over unitQuantity) of quantity [c, c+q) in the cumulative position. */
function bandCost(cp: CompiledPrice, c: bigint, q: bigint): bigint {
  if (cp.flat !== null) return q * cp.flat;
  let lo = 0n;
  let sum = 0n;
  const end = c + q;
  for (const b of cp.bands) {
    const hi = b.hi ?? end;
    const from = lo > c ? lo : c;
    // biome-ignore lint/complexity/useMathMinMax: BigInt operands (Math.min takes numbers only)
    const to = hi < end ? hi : end;
    if (to > from) sum += (to - from) * b.price;
    if (b.hi === null || hi >= end) break;
    lo = hi;
  }
  return sum;
}

const gcd = (a: bigint, b: bigint) => {
  while (b) [a, b] = [b, a % b];
  return a;
};

/** Rounds the exact value num/den half up (both non-negative). */
const roundHalfUp = (num: bigint, den: bigint) => (2n * num + den) / (2n * den);

/**
 * Which price applies to a tenant's meter over time, from every card version. Built once per
 * rating run; timelines are cached per (tenant, meter).
 */
export class PriceBook {
  private readonly defaults: RateCardVersion[];
  private readonly byTenant = new Map<string, RateCardVersion[]>();
  private readonly timelines = new Map<string, TimelineEntry[]>();
  private readonly compiled = new Map<PriceDef, CompiledPrice>();

  constructor(cards: RateCardVersion[]) {
    const order = (a: RateCardVersion, b: RateCardVersion) =>
      a.effectiveFrom - b.effectiveFrom || a.version - b.version;
    this.defaults = cards.filter((c) => c.tenantId === null).sort(order);
    for (const c of cards) {
      if (c.tenantId === null) continue;
      const list = this.byTenant.get(c.tenantId) ?? [];
      list.push(c);
      this.byTenant.set(c.tenantId, list);
    }
    for (const list of this.byTenant.values()) list.sort(order);
  }

  private static findPrice(card: RateCardVersion, meter: string): PriceDef | undefined {
    const exact = card.prices.find((p) => p.meter === meter);
    if (exact) return exact;
    const colon = meter.indexOf(':');
    if (colon < 0) return undefined;
    const family = `${meter.slice(0, colon)}:*`;
    return card.prices.find((p) => p.meter === family);
  }

  private static inForce(list: RateCardVersion[], t: number): RateCardVersion | undefined {
    let found: RateCardVersion | undefined;
    for (const c of list) {
      if (c.effectiveFrom <= t) found = c;
      else break;
    }
    return found;
  }

  timeline(tenantId: string, meter: string): TimelineEntry[] {
    const key = `${tenantId}\u0000${meter}`;
    const hit = this.timelines.get(key);
    if (hit) return hit;
    const own = this.byTenant.get(tenantId) ?? [];
    const times = [...new Set([...this.defaults, ...own].map((c) => c.effectiveFrom))].sort((a, b) => a - b);
    const out: TimelineEntry[] = [];
    for (const t of times) {
      const tc = PriceBook.inForce(own, t);
      const tp = tc && PriceBook.findPrice(tc, meter);
      const dc = PriceBook.inForce(this.defaults, t);
      const card = tp ? tc! : dc;
      const def = tp ?? (dc && PriceBook.findPrice(dc, meter));
      if (!card) continue;
      let cp: CompiledPrice | null = null;
      if (def) {
        cp = this.compiled.get(def) ?? compilePrice(def);
        this.compiled.set(def, cp);
      }
      out.push({ from: t, cardId: card.id, price: cp });
    }
    this.timelines.set(key, out);
    return out;
  }
}

export interface RateOptions {
  /** Billing period a moment belongs to for a tenant (default: its calendar month, UTC). */
  periodOf?: (tenantId: string, t: number) => number;
  /** Boundaries of billing periods: the next period start after `t` (default: next month). */
  nextPeriod?: (t: number) => number;
}

/**
 * Rates rows in the order given, advancing `state`. Deterministic: the same rows, cards and
 * state give the same lines and the same final state.
 */
export function rateUsage(
  rows: readonly UsageRow[],
  book: PriceBook,
  state: RatingState,
  opts: RateOptions = {},
): ChargeLine[] {
  const periodOf = opts.periodOf ?? ((_t: string, t: number) => monthStart(t));
  const nextPeriod = opts.nextPeriod ?? nextMonthStart;
  const out: ChargeLine[] = [];
  for (const r of rows) {
    const tl = book.timeline(r.tenantId, r.meter);
    const s = r.periodStart;
    const e = r.periodEnd;
    // Cut points inside (s, e): price changes and billing-period starts.
    const cuts: number[] = [];
    if (e > s) {
      for (const entry of tl) if (entry.from > s && entry.from < e) cuts.push(entry.from);
      for (let p = nextPeriod(s); p < e; p = nextPeriod(p)) cuts.push(p);
      if (cuts.length > 1) cuts.sort((a, b) => a - b);
    }
    const q = BigInt(r.quantity);
    const d = BigInt(e - s);
    let prevQ = 0n;
    let a = s;
    let seg = 0;
    for (let i = 0; i <= cuts.length; i++) {
      const b = i < cuts.length ? cuts[i]! : e;
      if (i < cuts.length && b === a) continue;
      const upto = i === cuts.length ? q : (q * BigInt(b - s)) / d;
      const share = upto - prevQ;
      prevQ = upto;
      // The entry in force at `a`: timelines are short (one entry per card version).
      let entry: TimelineEntry | undefined;
      for (const t of tl) {
        if (t.from <= a) entry = t;
        else break;
      }
      const period = periodOf(r.tenantId, a);
      let amount = 0n;
      if (entry?.price && share > 0n) {
        const key = accumulatorKey(r.tenantId, r.meter, period);
        let acc = state.get(key);
        if (!acc) {
          acc = { qty: 0n, num: 0n, den: 1n, charged: 0n };
          state.set(key, acc);
        }
        const cp = entry.price;
        const add = bandCost(cp, acc.qty, share);
        acc.qty += share;
        if (acc.den === cp.unitQuantity) acc.num += add;
        else if (acc.num === 0n) {
          acc.num = add;
          acc.den = cp.unitQuantity;
        } else {
          const num = acc.num * cp.unitQuantity + add * acc.den;
          const den = acc.den * cp.unitQuantity;
          const g = gcd(num, den);
          acc.num = num / g;
          acc.den = den / g;
        }
        const rounded = roundHalfUp(acc.num, acc.den);
        amount = rounded - acc.charged;
        acc.charged = rounded;
      }
      out.push({
        usageId: r.id,
        seg: seg++,
        tenantId: r.tenantId,
        service: r.service,
        resourceId: r.resourceId,
        meter: r.meter,
        billingPeriod: period,
        start: a,
        end: b,
        quantity: Number(share),
        amountMicros: Number(amount),
        cardId: entry?.cardId ?? null,
      });
      a = b;
    }
  }
  return out;
}

/** Exact cost of `quantity` at one price from position 0, rounded half up (tests, previews). */
export function priceQuantity(p: PriceDef, quantity: number): number {
  const cp = compilePrice(p);
  return Number(roundHalfUp(bandCost(cp, 0n, BigInt(quantity)), cp.unitQuantity));
}
