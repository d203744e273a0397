/**
 * Placement: a pure function from a snapshot of hosts (with what is already allocated on each)
 * and a request to the chosen host, or to an explanation of why nothing fits. Filters remove
 * hosts, weighers order the rest. No I/O, so it is tested as a table and by property tests, and
 * benchmarked on its own (bench/scheduler.js).
 *
 * Filters, in order (each names how many hosts it removed and why):
 *   state         down, disabled or in maintenance
 *   zone          not in the requested availability zone
 *   accelerator   lacks the accelerator the image or flavor needs (kvm/tcg)
 *   firmware      lacks BIOS or UEFI firmware
 *   isolation     belongs to an aggregate reserved for other tenants (`filter_tenant_id`)
 *   metadata      an aggregate property the flavor/image requires is missing or different
 *   capacity      too little free CPU/RAM/disk after overcommit (per host, else the lowest ratio
 *                 of its aggregates, else the default), or fewer cores than the flavor's maximum
 *   affinity      server group: `affinity` keeps only hosts that run a member (once one exists),
 *                 `anti-affinity` removes hosts that run one
 * Weighers (on what is left): free RAM, free vCPUs and free disk as fractions of the host, each
 * with a weight, positive to spread and negative to pack; soft (anti-)affinity adds or removes
 * `softAffinity` per group member already on the host. Ties go to the first host in the snapshot.
 */
export type HostState = 'enabled' | 'disabled' | 'maintenance' | 'down';

export interface Overcommit {
  cpu: number;
  ram: number;
  disk: number;
}

/** Nova's defaults. */
export const DEFAULT_OVERCOMMIT: Overcommit = { cpu: 4.0, ram: 1.0, disk: 1.0 };

export interface AggregateSnapshot {
  name: string;
  metadata: Record<string, string>;
  overcommit?: Partial<Overcommit>;
}

export interface HostSnapshot {
  id: string;
  name: string;
  up: boolean;
  enabled: boolean;
  /** Maintenance hosts take no new instances (they are being drained). */
  maintenance?: boolean;
  zone?: string;
  accelerator?: 'kvm' | 'tcg';
  vcpus: number;
  memoryMiB: number;
  diskGiB: number;
  firmware: string[];
  aggregates?: AggregateSnapshot[];
  /** Per-host ratios; win over the aggregates'. */
  overcommit?: Partial<Overcommit>;
  allocated: { vcpus: number; memoryMiB: number; diskGiB: number };
  /** Server group id → members of that group already on this host. */
  groupMembers?: Record<string, number>;
}

export type GroupPolicy = 'affinity' | 'anti-affinity' | 'soft-affinity' | 'soft-anti-affinity';

export interface PlacementRequest {
  vcpus: number;
  /** Live resize may raise vCPUs to this; a host needs at least this many cores. */
  maxVcpus?: number;
  memoryMiB: number;
  diskGiB: number;
  firmware: 'bios' | 'uefi';
  zone?: string;
  accelerator?: 'kvm' | 'tcg';
  /** Aggregate metadata the host must carry (flavor extra specs, image properties). */
  requiredMetadata?: Record<string, string>;
  tenantId?: string;
  serverGroup?: { id: string; name: string; policy: GroupPolicy };
  /** Hosts not to use (the source of a migration, hosts already tried). */
  excludeHosts?: string[];
}

export interface WeigherConfig {
  /** Positive spreads (prefer free room), negative packs (prefer full hosts). */
  ram: number;
  cpu: number;
  disk: number;
  /** Score per group member for soft (anti-)affinity. */
  softAffinity: number;
}

export const SPREAD: WeigherConfig = { ram: 1, cpu: 0.5, disk: 0.1, softAffinity: 1 };
export const PACK: WeigherConfig = { ram: -1, cpu: -0.5, disk: -0.1, softAffinity: 1 };

export interface SchedulerConfig {
  overcommit?: Overcommit;
  weighers?: WeigherConfig;
}

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
  /**
   * Prepares the filter for one request: null when it has nothing to say for this request
   * (skipped), else a check returning null when a host passes, or why not (phrased after "N hosts").
   * Reasons that depend only on the request are built here, once, not per host.
   */
  prepare(
    r: PlacementRequest,
    hosts: HostSnapshot[],
  ): ((h: HostSnapshot, oc: Overcommit) => string | null) | null;
}

const fmtGiB = (mib: number) => (mib >= 1024 ? `${+(mib / 1024).toFixed(1)} GiB` : `${mib} MiB`);

/** The ratios that apply to a host: its own, else the lowest of its aggregates', else the default. */
export function effectiveOvercommit(
  h: Pick<HostSnapshot, 'overcommit' | 'aggregates'>,
  dflt: Overcommit = DEFAULT_OVERCOMMIT,
): Overcommit {
  const pick = (k: keyof Overcommit): number => {
    const own = h.overcommit?.[k];
    if (own !== undefined) return own;
    let min: number | undefined;
    for (const a of h.aggregates ?? []) {
      const v = a.overcommit?.[k];
      if (v !== undefined && (min === undefined || v < min)) min = v;
    }
    return min ?? dflt[k];
  };
  return { cpu: pick('cpu'), ram: pick('ram'), disk: pick('disk') };
}

function hasOwnOvercommit(h: HostSnapshot): boolean {
  if (h.overcommit !== undefined) return true;
  const aggs = h.aggregates;
  if (aggs === undefined) return false;
  for (let i = 0; i < aggs.length; i++) if (aggs[i]!.overcommit !== undefined) return true;
  return false;
}

/** Free room after overcommit. */
export function freeOf(h: HostSnapshot, oc: Overcommit) {
  return {
    vcpus: h.vcpus * oc.cpu - h.allocated.vcpus,
    memoryMiB: h.memoryMiB * oc.ram - h.allocated.memoryMiB,
    diskGiB: h.diskGiB * oc.disk - h.allocated.diskGiB,
  };
}

/** `filter_tenant_id` of one aggregate, parsed once per aggregate object (snapshots reuse them). */
const aggregateTenants = new WeakMap<AggregateSnapshot, string[] | null>();
const tenantsOfAggregate = (a: AggregateSnapshot): string[] | null => {
  let t = aggregateTenants.get(a);
  if (t === undefined) {
    const v = a.metadata.filter_tenant_id;
    t = v === undefined ? null : v.split(',').map((x) => x.trim());
    aggregateTenants.set(a, t);
  }
  return t;
};

/** Whether `tenantId` may use the host: null when no aggregate of it is tenant-reserved. */
const isolationOf = (h: HostSnapshot, tenantId: string | undefined): boolean | null => {
  let reserved = false;
  const aggs = h.aggregates!;
  for (let i = 0; i < aggs.length; i++) {
    const t = tenantsOfAggregate(aggs[i]!);
    if (t === null) continue;
    reserved = true;
    if (tenantId !== undefined && t.includes(tenantId)) return true;
  }
  return reserved ? false : null;
};

export const FILTERS: Filter[] = [
  {
    name: 'state',
    prepare: () => (h) =>
      !h.up
        ? 'host is down'
        : !h.enabled
          ? 'host is disabled'
          : h.maintenance
            ? 'host is in maintenance'
            : null,
  },
  {
    name: 'exclude',
    prepare: (r) => {
      if (!r.excludeHosts?.length) return null;
      const ex = new Set(r.excludeHosts);
      return (h) => (ex.has(h.id) ? 'excluded by the request' : null);
    },
  },
  {
    name: 'zone',
    prepare: (r) => {
      if (r.zone === undefined) return null;
      const why = `not in zone ${r.zone}`;
      return (h) => (h.zone === r.zone ? null : why);
    },
  },
  {
    name: 'accelerator',
    prepare: (r) => {
      if (r.accelerator === undefined) return null;
      const why = `no ${r.accelerator.toUpperCase()}`;
      return (h) => (h.accelerator === r.accelerator ? null : why);
    },
  },
  {
    name: 'firmware',
    prepare: (r) => {
      const why = `no ${r.firmware.toUpperCase()} firmware`;
      return (h) => (h.firmware.includes(r.firmware) ? null : why);
    },
  },
  {
    name: 'isolation',
    prepare: (r) => (h) => {
      if (h.aggregates === undefined || h.aggregates.length === 0) return null;
      return isolationOf(h, r.tenantId) === false ? 'reserved for other tenants' : null;
    },
  },
  {
    name: 'metadata',
    prepare: (r) => {
      const wanted = Object.entries(r.requiredMetadata ?? {});
      if (wanted.length === 0) return null;
      return (h) => {
        for (const [k, want] of wanted) {
          const have = (h.aggregates ?? []).find((a) => a.metadata[k] !== undefined)?.metadata[k];
          if (have !== want)
            return have === undefined ? `lack ${k}=${want}` : `have ${k}=${have}, not ${want}`;
        }
        return null;
      };
    },
  },
  {
    name: 'capacity',
    prepare: (r) => {
      const ram = `lack ${fmtGiB(r.memoryMiB)} RAM`;
      const cpu = `lack ${r.vcpus} vCPU`;
      const disk = `lack ${r.diskGiB} GiB disk`;
      const cores = `have fewer than the flavor's ${r.maxVcpus} maximum vCPUs`;
      return (h, oc) => {
        if (h.memoryMiB * oc.ram - h.allocated.memoryMiB < r.memoryMiB) return ram;
        if (h.vcpus * oc.cpu - h.allocated.vcpus < r.vcpus) return cpu;
        if (h.diskGiB * oc.disk - h.allocated.diskGiB < r.diskGiB) return disk;
        if (r.maxVcpus !== undefined && h.vcpus < r.maxVcpus) return cores;
        return null;
      };
    },
  },
  {
    name: 'affinity',
    prepare: (r, hosts) => {
      const g = r.serverGroup;
      if (g?.policy !== 'affinity' && g?.policy !== 'anti-affinity') return null;
      if (g.policy === 'anti-affinity') {
        const why = `already run a member of group ${g.name}`;
        return (h) => ((h.groupMembers?.[g.id] ?? 0) > 0 ? why : null);
      }
      // Hard affinity binds once the group has a member somewhere; the first member goes anywhere.
      if (!hosts.some((h) => (h.groupMembers?.[g.id] ?? 0) > 0)) return null;
      const why = `run no member of group ${g.name}`;
      return (h) => ((h.groupMembers?.[g.id] ?? 0) === 0 ? why : null);
    },
  },
];

/**
 * Picks a host: filters, then weighers (spread by default). One pass over the hosts: each host goes
 * through the filters until one rejects it (counted under that filter's reason), and a host that
 * passes them all is scored at once.
 */
export function place(
  hosts: HostSnapshot[],
  r: PlacementRequest,
  config: Overcommit | SchedulerConfig = {},
): Placement {
  const cfg: SchedulerConfig = 'cpu' in config ? { overcommit: config } : config;
  const dflt = cfg.overcommit ?? DEFAULT_OVERCOMMIT;
  const w = cfg.weighers ?? SPREAD;
  // One check per filter in a fixed slot, so each call site sees one function (V8 inlines them).
  const checks = FILTERS.map((f) => f.prepare(r, hosts));
  // Rejections per filter, by reason. Reasons are the few strings each filter prepared, so a short
  // array compared by identity beats a Map keyed by string in this loop.
  const reasons: string[][] = FILTERS.map(() => []);
  const counts: number[][] = FILTERS.map(() => []);
  const [state, exclude, zone, accel, firmware, isolation, metadata, capacity, affinity] = checks;
  let best: HostSnapshot | undefined;
  let bestScore = Number.NEGATIVE_INFINITY;
  for (let k = 0; k < hosts.length; k++) {
    const h = hosts[k]!;
    const oc = hasOwnOvercommit(h) ? effectiveOvercommit(h, dflt) : dflt;
    let why: string | null = null;
    let at = 0;
    if (state && (why = state(h, oc)) !== null) at = 0;
    else if (exclude && (why = exclude(h, oc)) !== null) at = 1;
    else if (zone && (why = zone(h, oc)) !== null) at = 2;
    else if (accel && (why = accel(h, oc)) !== null) at = 3;
    else if (firmware && (why = firmware(h, oc)) !== null) at = 4;
    else if (isolation && (why = isolation(h, oc)) !== null) at = 5;
    else if (metadata && (why = metadata(h, oc)) !== null) at = 6;
    else if (capacity && (why = capacity(h, oc)) !== null) at = 7;
    else if (affinity && (why = affinity(h, oc)) !== null) at = 8;
    if (why !== null) {
      const rs = reasons[at]!;
      const cs = counts[at]!;
      let j = 0;
      while (j < rs.length && rs[j] !== why) j++;
      if (j === rs.length) {
        rs.push(why);
        cs.push(1);
      } else cs[j]!++;
      continue;
    }
    const sc = scoreWith(h, r, oc, w);
    if (sc > bestScore) {
      best = h;
      bestScore = sc;
    }
  }
  const active = FILTERS.flatMap((f, i) => (checks[i] ? [{ name: f.name, i }] : []));
  const filters: FilterOutcome[] = active.map((f) => {
    const rs = reasons[f.i]!;
    const cs = counts[f.i]!;
    return {
      filter: f.name,
      removed: cs.reduce((n, c) => n + c, 0),
      reasons: rs.map((why, j) => `${cs[j]} host${cs[j] === 1 ? '' : 's'} ${why}`),
    };
  });
  if (hosts.length === 0) return { ok: false, message: 'No compute host is registered.', filters };
  if (!best) {
    const parts = filters.filter((f) => f.removed > 0).map((f) => `${f.filter}: ${f.reasons.join(', ')}`);
    return { ok: false, message: `No host can take this instance (${parts.join('; ')}).`, filters };
  }
  return { ok: true, hostId: best.id, filters };
}

/** The weighers' score of a host that passed the filters (higher wins). */
export function score(h: HostSnapshot, r: PlacementRequest, oc: Overcommit, w: WeigherConfig): number {
  return scoreWith(h, r, hasOwnOvercommit(h) ? effectiveOvercommit(h, oc) : oc, w);
}

function scoreWith(h: HostSnapshot, r: PlacementRequest, o: Overcommit, w: WeigherConfig): number {
  const cpuCap = h.vcpus * o.cpu;
  const ramCap = h.memoryMiB * o.ram;
  const diskCap = h.diskGiB * o.disk;
  let s =
    (ramCap > 0 ? (w.ram * (ramCap - h.allocated.memoryMiB)) / ramCap : 0) +
    (cpuCap > 0 ? (w.cpu * (cpuCap - h.allocated.vcpus)) / cpuCap : 0) +
    (diskCap > 0 ? (w.disk * (diskCap - h.allocated.diskGiB)) / diskCap : 0);
  const g = r.serverGroup;
  if (g && (g.policy === 'soft-affinity' || g.policy === 'soft-anti-affinity')) {
    const here = h.groupMembers?.[g.id] ?? 0;
    s += (g.policy === 'soft-affinity' ? 1 : -1) * w.softAffinity * here;
  }
  return s;
}
