import { YunhaiError } from '../../platform/errors.js';

/**
 * Money is an integer number of micro-units (1/1,000,000) of an ISO 4217 currency, never a float.
 * Amounts stay below 2^53 micro-units (9 billion of a currency unit), which the database columns
 * (int8) and JS numbers both hold exactly; intermediate products use BigInt.
 */
export const MICROS_PER_UNIT = 1_000_000;

const ISO_4217 = /^[A-Z]{3}$/;
const KNOWN_CURRENCIES: ReadonlySet<string> = new Set(
  (Intl as { supportedValuesOf?: (k: string) => string[] }).supportedValuesOf?.('currency') ?? [],
);

export function isCurrencyCode(code: string): boolean {
  return ISO_4217.test(code) && (KNOWN_CURRENCIES.size === 0 || KNOWN_CURRENCIES.has(code));
}

/** `12.5` or `"12.50"` (currency units, at most 6 decimals) to micro-units, exactly. */
export function parseAmount(v: string | number): number {
  const s = typeof v === 'number' ? String(v) : v.trim();
  const m = /^(-?)(\d{1,10})(?:\.(\d{1,6}))?$/.exec(s);
  if (!m) throw new YunhaiError('ValidationError', `'${s}' is not an amount (up to 6 decimals, e.g. 12.50).`);
  const micros = Number(m[2]) * MICROS_PER_UNIT + Number((m[3] ?? '').padEnd(6, '0'));
  return m[1] === '-' ? -micros : micros;
}

/** 12500000 -> "12.50" (two decimals at least, more when the micro-units need them). */
export function formatMicros(micros: number): string {
  const neg = micros < 0;
  const abs = Math.abs(micros);
  const whole = Math.floor(abs / MICROS_PER_UNIT);
  let frac = String(abs % MICROS_PER_UNIT).padStart(6, '0');
  while (frac.length > 2 && frac.endsWith('0')) frac = frac.slice(0, -1);
  return `${neg ? '-' : ''}${whole}.${frac}`;
}

/** round-half-up(a * b / c) for non-negative integers, in BigInt. */
export function mulDivRound(a: bigint, b: bigint, c: bigint): bigint {
  return (2n * a * b + c) / (2n * c);
}

/** A value that must be an exact JS number (a sum of micro-units read back or about to be stored). */
export function toSafe(n: bigint): number {
  if (n > BigInt(Number.MAX_SAFE_INTEGER) || n < -BigInt(Number.MAX_SAFE_INTEGER))
    throw new YunhaiError('InternalError', `amount ${n} exceeds 2^53 micro-units`);
  return Number(n);
}
