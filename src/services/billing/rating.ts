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
  /**
   * The ledger row the line charges (its id, tenant, service, resource and meter), referenced rather
   * than copied: a line is allocated per row, and fewer fields are less for the collector.
   */
  usage: UsageRow;
  seg: number;
  /** Start of the billing period the line belongs to. */
  billingPeriod: number;
  start: number;
  end: number;
  quantity: number;
  amountMicros: number;
  /** The card version that priced it; null when no card prices the meter (amount 0). */
  cardId: string | null;
}

/**
 * Exact cost so far of one (tenant, meter, billing period). In memory the exact value is
 * `whole + rem/den` micro-units with plain numbers while everything stays below 2^53 (the fast
 * path), or `big.num / big.den` in BigInt once it does not (a unit change, huge quantities).
 * The cumulative quantity is `qtyPend` while it fits a number (`qty` null: the fast path compares
 * pointers only), else `qty + qtyPend` in BigInt.
 */
export interface Accumulator {
  qty: bigint | null;
  qtyPend: number;
  whole: number;
  rem: number;
  den: number;
  big: { num: bigint; den: bigint } | null;
  /** round-half-up of the exact value, already charged on earlier lines. */
  charged: number;
}

/** The stored form (decimal text, exact) of an accumulator. */
export interface StoredAccumulator {
  qty: string;
  num: string;
  den: string;
  charged: string;
}

const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const MAX_SAFE_BIG = BigInt(MAX_SAFE);

export const newAccumulator = (): Accumulator => ({
  qty: null,
  qtyPend: 0,
  whole: 0,
  rem: 0,
  den: 0,
  big: null,
  charged: 0,
});

export function accumulatorFromStored(s: StoredAccumulator): Accumulator {
  const num = BigInt(s.num);
  const den = BigInt(s.den);
  const qty = BigInt(s.qty);
  // A quantity that fits a number stays one, so the fast path applies to loaded accumulators too.
  const base =
    qty <= MAX_SAFE_BIG
      ? { qty: null, qtyPend: Number(qty), charged: Number(s.charged) }
      : { qty, qtyPend: 0, charged: Number(s.charged) };
  if (num === 0n) return { ...base, whole: 0, rem: 0, den: 0, big: null };
  if (den <= MAX_SAFE_BIG && num / den <= MAX_SAFE_BIG)
    return { ...base, whole: Number(num / den), rem: Number(num % den), den: Number(den), big: null };
  return { ...base, whole: 0, rem: 0, den: 0, big: { num, den } };
}

export function accumulatorToStored(a: Accumulator): StoredAccumulator {
  const qty = String((a.qty ?? 0n) + BigInt(a.qtyPend));
  if (a.big) return { qty, num: String(a.big.num), den: String(a.big.den), charged: String(a.charged) };
  const den = a.den === 0 ? 1n : BigInt(a.den);
  return {
    qty,
    num: String(BigInt(a.whole) * den + BigInt(a.rem)),
    den: String(den),
    charged: String(a.charged),
  };
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

// The month of the last lookup: rows come in runs of the same month, and Date is slow.
let cachedMonth = 0;
let cachedNext = -1;
/** monthStart() with a one-month cache (rating's hot path). */
export function monthOf(t: number): number {
  if (t >= cachedMonth && t < cachedNext) return cachedMonth;
  cachedMonth = monthStart(t);
  cachedNext = nextMonthStart(t);
  return cachedMonth;
}

interface Band {
  hi: bigint | null;
  price: bigint;
}
interface CompiledPrice {
  unitQuantity: bigint;
  unitQuantityN: number;
  bands: Band[];
  /** Single band: cost = q · price. */
  flat: bigint | null;
  flatN: number | null;
  /** Bands as numbers (an upper bound past 2^53 is Infinity: the fast path never reaches it). */
  bandsN: { hi: number; price: number }[];
  maxPriceN: number;
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
  const flat = only && only.hi === null ? only.price : null;
  return {
    unitQuantity: uq,
    unitQuantityN: p.unitQuantity,
    bands,
    flat,
    flatN: flat === null ? null : Number(flat),
    bandsN: bands.map((b) => ({
      hi: b.hi === null || b.hi > MAX_SAFE_BIG ? Number.POSITIVE_INFINITY : Number(b.hi),
      price: Number(b.price),
    })),
    maxPriceN: Math.max(0, ...bands.map((b) => Number(b.price))),
  };
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
  private readonly timelines = new Map<string, Map<string, TimelineEntry[]>>();
  private readonly defaultTimelines = new Map<string, TimelineEntry[]>();
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
    const own = this.byTenant.get(tenantId);
    if (!own) {
      // No override: every such tenant shares the default card's timeline of the meter.
      let tl = this.defaultTimelines.get(meter);
      if (!tl) {
        tl = this.build([], meter);
        this.defaultTimelines.set(meter, tl);
      }
      return tl;
    }
    let perTenant = this.timelines.get(tenantId);
    if (!perTenant) {
      perTenant = new Map();
      this.timelines.set(tenantId, perTenant);
    }
    let tl = perTenant.get(meter);
    if (!tl) {
      tl = this.build(own, meter);
      perTenant.set(meter, tl);
    }
    return tl;
  }

  private build(own: RateCardVersion[], meter: string): TimelineEntry[] {
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
 * Where a (tenant, meter) stands: the time window in which one price applies and one billing period
 * holds, with that period's accumulator. A row inside the window (nearly every row) is priced with
 * two comparisons and no lookup; a row outside it moves the window.
 */
interface Cursor {
  tl: TimelineEntry[];
  /** Rows with `from <= start` and `end <= to` need no split and take `price`, `period`, `acc`. */
  from: number;
  to: number;
  price: CompiledPrice | null;
  cardId: string | null;
  period: number;
  acc: Accumulator | null;
}
interface CursorCache {
  book: PriceBook;
  periodOf: RateOptions['periodOf'];
  nextPeriod: RateOptions['nextPeriod'];
  byTenant: Map<string, Map<string, Cursor>>;
}
/** Kept with the state across calls (rating in batches), valid for one book and one set of options. */
const CURSORS = new WeakMap<RatingState, CursorCache>();

function accumulatorIn(state: RatingState, tenantId: string, meter: string, period: number): Accumulator {
  const key = accumulatorKey(tenantId, meter, period);
  let acc = state.get(key);
  if (!acc) {
    acc = newAccumulator();
    state.set(key, acc);
  }
  return acc;
}

/** Adds `share` ledger units at price `cp` to `acc`; answers the micro-units newly due. */
function charge(acc: Accumulator, cp: CompiledPrice, share: number): number {
  // Fast path in plain numbers, exact because every value it computes is an integer of at most
  // MAX_SAFE = 2^53 − 1, where doubles represent integers exactly (rating.test.ts tests the edges
  // against BigInt):
  // - `end = pos + share ≤ MAX_SAFE` and `share · maxPrice ≤ MAX_SAFE` are checked (a true value
  //   above MAX_SAFE never rounds down to it, so the checks are sound);
  // - each band's `(to − from) · price ≤ share · maxPrice`, and the band widths add up to at most
  //   `share`, so every partial sum of `add` is at most `share · maxPrice ≤ MAX_SAFE`;
  // - `sum = rem + add ≤ MAX_SAFE − den` is checked;
  // - `w = floor(fl(sum / den))` is `floor(sum / den)` or one more (a rounded quotient never passes
  //   the next integer), so `w · den ≤ sum + den ≤ MAX_SAFE` and `sum − w · den` are exact, and the
  //   correction below leaves `0 ≤ r < den`;
  // - `whole + w < MAX_SAFE` is checked, else the BigInt path decides (and refuses past 2^53);
  // - `2 · r` only doubles (exact in binary floating point).
  if (acc.big === null && acc.qty === null && (acc.den === cp.unitQuantityN || acc.den === 0)) {
    const pos = acc.qtyPend;
    const end = pos + share;
    if (end <= MAX_SAFE && share * cp.maxPriceN <= MAX_SAFE) {
      let add: number;
      if (cp.flatN !== null) add = share * cp.flatN;
      else {
        add = 0;
        let lo = 0;
        for (const b of cp.bandsN) {
          const from = Math.max(lo, pos);
          const to = Math.min(b.hi, end);
          if (to > from) add += (to - from) * b.price;
          if (b.hi >= end) break;
          lo = b.hi;
        }
      }
      const den = cp.unitQuantityN;
      const sum = acc.rem + add;
      if (sum <= MAX_SAFE - den) {
        let w = Math.floor(sum / den);
        let r = sum - w * den;
        if (r < 0) {
          w--;
          r += den;
        } else if (r >= den) {
          w++;
          r -= den;
        }
        const whole = acc.whole + w;
        if (whole < MAX_SAFE) {
          acc.den = den;
          acc.qtyPend = end;
          acc.whole = whole;
          acc.rem = r;
          const rounded = whole + (2 * r >= den ? 1 : 0);
          const due = rounded - acc.charged;
          acc.charged = rounded;
          return due;
        }
      }
    }
  }
  // General path in BigInt: tiers, a change of unit, or values past 2^53.
  const q = BigInt(share);
  const pos = (acc.qty ?? 0n) + BigInt(acc.qtyPend);
  const after = pos + q;
  // Keep the quantity a number while it fits, so the fast path stays open.
  if (after <= MAX_SAFE_BIG) {
    acc.qty = null;
    acc.qtyPend = Number(after);
  } else {
    acc.qty = after;
    acc.qtyPend = 0;
  }
  const add = bandCost(cp, pos, q);
  let num: bigint;
  let den: bigint;
  if (acc.big) ({ num, den } = acc.big);
  else {
    den = acc.den === 0 ? cp.unitQuantity : BigInt(acc.den);
    num = BigInt(acc.whole) * den + BigInt(acc.rem);
  }
  if (den === cp.unitQuantity) num += add;
  else if (num === 0n) {
    num = add;
    den = cp.unitQuantity;
  } else {
    const n2 = num * cp.unitQuantity + add * den;
    const d2 = den * cp.unitQuantity;
    const g = gcd(n2, d2);
    num = n2 / g;
    den = d2 / g;
  }
  const whole = num / den;
  if (den <= MAX_SAFE_BIG && whole <= MAX_SAFE_BIG) {
    acc.big = null;
    acc.den = Number(den);
    acc.whole = Number(whole);
    acc.rem = Number(num % den);
  } else acc.big = { num, den };
  const roundedBig = roundHalfUp(num, den);
  // Money stays below 2^53 micro-units (9 billion units of a currency) per tenant, meter and month.
  if (roundedBig > MAX_SAFE_BIG)
    throw new RangeError(`a monthly charge of ${roundedBig} micro-units exceeds 2^53`);
  const rounded = Number(roundedBig);
  const due = rounded - acc.charged;
  acc.charged = rounded;
  return due;
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
  const periodOf = opts.periodOf ?? ((_t: string, t: number) => monthOf(t));
  const nextPeriod = opts.nextPeriod;
  let cache = CURSORS.get(state);
  if (
    !cache ||
    cache.book !== book ||
    cache.periodOf !== opts.periodOf ||
    cache.nextPeriod !== opts.nextPeriod
  ) {
    cache = { book, periodOf: opts.periodOf, nextPeriod, byTenant: new Map() };
    CURSORS.set(state, cache);
  }
  const byTenant = cache.byTenant;

  /** Moves `cur` to the window holding `s`. */
  const seek = (cur: Cursor, tenantId: string, meter: string, s: number) => {
    const tl = cur.tl;
    let i = -1;
    while (i + 1 < tl.length && tl[i + 1]!.from <= s) i++;
    const entry = i >= 0 ? tl[i]! : undefined;
    const changeFrom = entry ? entry.from : Number.NEGATIVE_INFINITY;
    const changeTo = i + 1 < tl.length ? tl[i + 1]!.from : Number.POSITIVE_INFINITY;
    let periodFrom: number;
    let periodTo: number;
    if (nextPeriod) {
      // Only the next boundary is known: the window starts at this row.
      periodFrom = s;
      periodTo = nextPeriod(s);
    } else {
      periodFrom = monthOf(s);
      periodTo = cachedNext;
    }
    cur.from = Math.max(changeFrom, periodFrom);
    cur.to = Math.min(changeTo, periodTo);
    cur.price = entry?.price ?? null;
    cur.cardId = entry?.cardId ?? null;
    cur.period = periodOf(tenantId, s);
    cur.acc = cur.price ? accumulatorIn(state, tenantId, meter, cur.period) : null;
  };

  const out: ChargeLine[] = new Array(rows.length);
  let n = 0;
  let lastTenant: string | undefined;
  let byMeter: Map<string, Cursor> | undefined;
  const cuts: number[] = [];
  for (const r of rows) {
    const tenantId = r.tenantId;
    if (tenantId !== lastTenant || !byMeter) {
      byMeter = byTenant.get(tenantId);
      if (!byMeter) {
        byMeter = new Map();
        byTenant.set(tenantId, byMeter);
      }
      lastTenant = tenantId;
    }
    let cur = byMeter.get(r.meter);
    if (!cur) {
      cur = {
        tl: book.timeline(tenantId, r.meter),
        from: Number.NaN,
        to: Number.NaN,
        price: null,
        cardId: null,
        period: 0,
        acc: null,
      };
      byMeter.set(r.meter, cur);
    }
    const s = r.periodStart;
    const e = r.periodEnd;
    if (!(s >= cur.from && s < cur.to)) seek(cur, tenantId, r.meter, s);
    if (e <= cur.to) {
      // One piece (nearly every row): no price change and no period start inside it.
      const q = r.quantity;
      out[n++] = {
        usage: r,
        seg: 0,
        billingPeriod: cur.period,
        start: s,
        end: e,
        quantity: q,
        amountMicros: cur.price !== null && q > 0 ? charge(cur.acc!, cur.price, q) : 0,
        cardId: cur.cardId,
      };
      continue;
    }
    // The row spans price changes or period starts: split it there, each share priced on its own.
    const tl = cur.tl;
    cuts.length = 0;
    for (const entry of tl) if (entry.from > s && entry.from < e) cuts.push(entry.from);
    if (nextPeriod) for (let p = nextPeriod(s); p < e; p = nextPeriod(p)) cuts.push(p);
    else {
      monthOf(s);
      for (let p = cachedNext; p < e; p = nextMonthStart(p)) cuts.push(p);
    }
    cuts.sort((a, b) => a - b);
    const q = BigInt(r.quantity);
    const d = BigInt(e - s);
    let prevQ = 0n;
    let a = s;
    let seg = 0;
    for (let i = 0; i <= cuts.length; i++) {
      const b = i < cuts.length ? cuts[i]! : e;
      if (i < cuts.length && b === a) continue;
      const upto = i === cuts.length ? q : (q * BigInt(b - s)) / d;
      const share = Number(upto - prevQ);
      prevQ = upto;
      let entry: TimelineEntry | undefined;
      for (const t of tl) {
        if (t.from <= a) entry = t;
        else break;
      }
      const period = periodOf(tenantId, a);
      const amount =
        entry?.price && share > 0
          ? charge(accumulatorIn(state, tenantId, r.meter, period), entry.price, share)
          : 0;
      const line: ChargeLine = {
        usage: r,
        seg: seg++,
        billingPeriod: period,
        start: a,
        end: b,
        quantity: share,
        amountMicros: amount,
        cardId: entry?.cardId ?? null,
      };
      if (n < out.length) out[n++] = line;
      else {
        out.push(line);
        n++;
      }
      a = b;
    }
  }
  out.length = n;
  return out;
}

/** Exact cost of `quantity` at one price from position 0, rounded half up (tests, previews). */
export function priceQuantity(p: PriceDef, quantity: number): number {
  const cp = compilePrice(p);
  return Number(roundHalfUp(bandCost(cp, 0n, BigInt(quantity)), cp.unitQuantity));
}
