import { InvalidArgumentError } from 'commander';

const MIB_PER: Record<string, number> = { m: 1, g: 1024, t: 1024 * 1024 };

/**
 * A memory size in MiB from `512MiB`, `512M`, `1GiB`, `1.5G`, `2TiB` or a bare number of MiB.
 * Binary units either way (`1GB` is read as 1 GiB, as for RAM); the result must be whole MiB.
 */
export function parseMemoryMiB(v: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(?:([mgt])(?:i?b)?)?\s*$/i.exec(v);
  if (!m) return undefined;
  const n = Number(m[1]) * MIB_PER[(m[2] ?? 'm').toLowerCase()]!;
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

/** Commander parser for memory options (`--memory 512MiB`). */
export function memoryArg(name: string) {
  return (v: string): number => {
    const n = parseMemoryMiB(v);
    if (n === undefined)
      throw new InvalidArgumentError(`${name} takes a size like 512MiB, 1GiB or 1.5GiB (whole MiB).`);
    return n;
  };
}

/** Commander parser for disk sizes in GiB: `20`, `20G` or `20GiB`. */
export function diskGiBArg(name: string) {
  return (v: string): number => {
    const m = /^\s*(\d+)\s*(?:[gG](?:i?[bB])?)?\s*$/.exec(v);
    const n = m ? Number(m[1]) : Number.NaN;
    if (!Number.isSafeInteger(n) || n < 1)
      throw new InvalidArgumentError(`${name} takes whole GiB, like 20 or 20GiB.`);
    return n;
  };
}

/** Compact size for tables: `256MiB`, `1GiB`, `1.5GiB`, `23GiB`, `1TiB`. */
export function formatMiB(mib: number): string {
  const units = ['MiB', 'GiB', 'TiB', 'PiB'];
  let v = mib;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  const text = Number.isInteger(v) ? String(v) : v.toFixed(1).replace(/\.0$/, '');
  return `${text}${units[i]}`;
}

/** Compact size in GiB: `20GiB`, `4TiB`. */
export const formatGiB = (gib: number) => formatMiB(gib * 1024);
