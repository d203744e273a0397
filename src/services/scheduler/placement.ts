/**
 * Placement: a pure function from a snapshot of hosts (with what is already allocated on each)
 * and a request to the chosen host, or to an explanation of why nothing fits. Filters remove
 * hosts, weighers order the rest. No I/O, so it is tested as a table and by property tests.
 */
export interface HostSnapshot {
  id: string;
  name: string;
  up: boolean;
  enabled: boolean;
  vcpus: number;
  memoryMiB: number;
  diskGiB: number;
  firmware: string[];
  allocated: { vcpus: number; memoryMiB: number; diskGiB: number };
}

export interface PlacementRequest {
  vcpus: number;
  /** Live resize may raise vCPUs to this; a host needs at least this many cores. */
  maxVcpus?: number;
  memoryMiB: number;
  diskGiB: number;
  firmware: 'bios' | 'uefi';
}

export interface Overcommit {
  cpu: number;
  ram: number;
  disk: number;
}

/** Nova's defaults. */
export const DEFAULT_OVERCOMMIT: Overcommit = { cpu: 4.0, ram: 1.0, disk: 1.0 };

export interface FilterOutcome {
  filter: string;
  removed: number;
  reasons: string[];
}

export type Placement =
  | { ok: true; hostId: string; filters: FilterOutcome[] }
  | { ok: false; message: string; filters: FilterOutcome[] };

interface Filter {
  name: string;
  /** Returns null when the host passes, else why it does not. */
  check(h: HostSnapshot, r: PlacementRequest, oc: Overcommit): string | null;
}

const fmtGiB = (mib: number) => (mib >= 1024 ? `${+(mib / 1024).toFixed(1)} GiB` : `${mib} MiB`);

export const FILTERS: Filter[] = [
  { name: 'state', check: (h) => (!h.up ? 'host is down' : !h.enabled ? 'host is disabled' : null) },
  {
    name: 'firmware',
    check: (h, r) => (h.firmware.includes(r.firmware) ? null : `no ${r.firmware.toUpperCase()} firmware`),
  },
  {
    name: 'capacity',
    check: (h, r, oc) => {
      const freeCpu = h.vcpus * oc.cpu - h.allocated.vcpus;
      const freeRam = h.memoryMiB * oc.ram - h.allocated.memoryMiB;
      const freeDisk = h.diskGiB * oc.disk - h.allocated.diskGiB;
      if (freeRam < r.memoryMiB) return `lack ${fmtGiB(r.memoryMiB)} RAM`;
      if (freeCpu < r.vcpus) return `lack ${r.vcpus} vCPU`;
      if (freeDisk < r.diskGiB) return `lack ${r.diskGiB} GiB disk`;
      if (r.maxVcpus !== undefined && h.vcpus < r.maxVcpus)
        return `have fewer than the flavor's ${r.maxVcpus} maximum vCPUs`;
      return null;
    },
  },
];

/** Picks a host: filters, then the most free RAM (spread). */
export function place(
  hosts: HostSnapshot[],
  r: PlacementRequest,
  oc: Overcommit = DEFAULT_OVERCOMMIT,
): Placement {
  let candidates = hosts;
  const filters: FilterOutcome[] = [];
  for (const f of FILTERS) {
    const kept: HostSnapshot[] = [];
    const reasons = new Map<string, number>();
    for (const h of candidates) {
      const why = f.check(h, r, oc);
      if (why === null) kept.push(h);
      else reasons.set(why, (reasons.get(why) ?? 0) + 1);
    }
    filters.push({
      filter: f.name,
      removed: candidates.length - kept.length,
      reasons: [...reasons].map(([why, n]) => `${n} host${n === 1 ? '' : 's'} ${why}`),
    });
    candidates = kept;
  }
  if (hosts.length === 0) return { ok: false, message: 'No compute host is registered.', filters };
  if (candidates.length === 0) {
    const parts = filters.filter((f) => f.removed > 0).map((f) => `${f.filter}: ${f.reasons.join(', ')}`);
    return { ok: false, message: `No host can take this instance (${parts.join('; ')}).`, filters };
  }
  const free = (h: HostSnapshot) => h.memoryMiB * oc.ram - h.allocated.memoryMiB;
  const best = candidates.reduce((a, b) => (free(b) > free(a) ? b : a));
  return { ok: true, hostId: best.id, filters };
}
