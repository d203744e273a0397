/**
 * Placement: a pure function from a snapshot of hosts (with what is already allocated on each)
 * and a request to the chosen host, or to an explanation of why nothing fits. Filters remove
 * hosts, weighers order the rest. No I/O, so it is tested as a table and by property tests, and
 * benchmarked on its own (bench/scheduler.js).
 *
 * Filters, in order (each names how many hosts it removed and why):
 *   state         down, disabled or in maintenance
 *   exclude       named by the request (a migration's source, hosts already tried)
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
 *
 * The snapshot is compiled into a {@link Fleet} (flat arrays) to decide; see docs/scheduling.md.
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

/**
 * Reads the weighers an operator configured: `spread` (the default), `pack`, or weights as
 * `ram=1,cpu=0.5,disk=0.1,soft=1` (omitted ones keep spread's). Throws on anything else.
 */
export function parseWeighers(text: string): WeigherConfig {
  const t = text.trim().toLowerCase();
  if (t === 'spread' || t === '') return { ...SPREAD };
  if (t === 'pack') return { ...PACK };
  const w = { ...SPREAD };
  const keys: Record<string, keyof WeigherConfig> = {
    ram: 'ram',
    cpu: 'cpu',
    disk: 'disk',
    soft: 'softAffinity',
  };
  for (const part of t.split(',')) {
    const m = /^\s*(ram|cpu|disk|soft)\s*=\s*(-?\d+(?:\.\d+)?)\s*$/.exec(part);
    if (!m)
      throw new Error(
        `scheduler weighers: expected spread, pack or ram=N,cpu=N,disk=N,soft=N; got "${text}"`,
      );
    w[keys[m[1]!]!] = Number(m[2]);
  }
  return w;
}

/** Reads default overcommit ratios as `cpu=4,ram=1,disk=1` (omitted ones keep Nova's defaults). */
export function parseOvercommit(text: string): Overcommit {
  const oc = { ...DEFAULT_OVERCOMMIT };
  for (const part of text.split(',').filter((x) => x.trim())) {
    const m = /^\s*(cpu|ram|disk)\s*=\s*(\d+(?:\.\d+)?)\s*$/.exec(part.toLowerCase());
    if (!m || Number(m[2]) <= 0)
      throw new Error(`scheduler overcommit: expected cpu=N,ram=N,disk=N with N > 0; got "${text}"`);
    oc[m[1] as keyof Overcommit] = Number(m[2]);
  }
  return oc;
}

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

/** The tenants an aggregate is reserved for (`filter_tenant_id`, comma-separated), or null. */
const tenantsOf = (a: AggregateSnapshot): string[] | null => {
  const v = a.metadata.filter_tenant_id;
  return v === undefined ? null : v.split(',').map((x) => x.trim());
};

/** Why a host's aggregates do not carry the wanted metadata, or null when they do. */
function metadataMismatch(aggs: AggregateSnapshot[] | undefined, wanted: [string, string][]): string | null {
  for (const [k, want] of wanted) {
    const have = (aggs ?? []).find((a) => a.metadata[k] !== undefined)?.metadata[k];
    if (have !== want) return have === undefined ? `lack ${k}=${want}` : `have ${k}=${have}, not ${want}`;
  }
  return null;
}

/** The filters in the order they run; a rejected host is counted under the first that removes it. */
export const FILTER_NAMES = [
  'state',
  'exclude',
  'zone',
  'accelerator',
  'firmware',
  'isolation',
  'metadata',
  'capacity',
  'affinity',
] as const;
const [STATE, EXCLUDE, ZONE, ACCELERATOR, FIRMWARE, ISOLATION, METADATA, CAPACITY, AFFINITY] = [
  0, 1, 2, 3, 4, 5, 6, 7, 8,
] as const;

/** Counts of rejected hosts per filter and reason. Reasons are the few strings built per request. */
class Rejections {
  readonly reasons: string[][] = FILTER_NAMES.map(() => []);
  readonly counts: number[][] = FILTER_NAMES.map(() => []);
  add(filter: number, why: string): void {
    const rs = this.reasons[filter]!;
    const cs = this.counts[filter]!;
    let j = 0;
    while (j < rs.length && rs[j] !== why) j++; // identity compare: a short array beats a Map here
    if (j === rs.length) {
      rs.push(why);
      cs.push(1);
    } else cs[j]!++;
  }
  outcome(filter: number): FilterOutcome {
    const rs = this.reasons[filter]!;
    const cs = this.counts[filter]!;
    return {
      filter: FILTER_NAMES[filter]!,
      removed: cs.reduce((n, c) => n + c, 0),
      reasons: rs.map((why, j) => `${cs[j]} host${cs[j] === 1 ? '' : 's'} ${why}`),
    };
  }
}

/**
 * Picks a host: filters, then weighers (spread by default). The snapshot is compiled into a
 * {@link Fleet} and asked once; callers that decide many times over one snapshot keep the Fleet
 * and record each decision with `claim` (as Nova's host manager consumes from its host states).
 */
export function place(
  hosts: HostSnapshot[],
  r: PlacementRequest,
  config: Overcommit | SchedulerConfig = {},
): Placement {
  return new Fleet(hosts, config).place(r);
}

const [STRIDE, USED, CORES] = [10, 6, 9] as const;
/** A tenant may use a host no aggregate of which is reserved, or one reserved for it among others. */
const mayUse = (reserved: string[] | null, tenantId: string | undefined): boolean =>
  reserved === null || (tenantId !== undefined && reserved.includes(tenantId));
const STATE_WHY = [null, 'host is down', 'host is disabled', 'host is in maintenance'] as const;
const ACCELERATORS = ['kvm', 'tcg'] as const;
const firmwareBit = (f: string) => (f === 'bios' ? 1 : f === 'uefi' ? 2 : 4);

/**
 * A snapshot compiled for deciding: what filters and weighers read, per host, in typed arrays
 * (capacities after overcommit, their reciprocals for the weighers, state, zone, accelerator and
 * firmware as small codes), so one decision at 10,000 hosts is one tight pass over flat memory.
 * Aggregate filters (isolation, metadata) read the host snapshot itself, only for hosts that
 * belong to an aggregate. `claim` records an instance on a host, so a caller can place many
 * instances over one snapshot; the input snapshot is never changed.
 */
export class Fleet {
  readonly size: number;
  private readonly hosts: HostSnapshot[];
  private readonly w: WeigherConfig;
  /** Host id → index, built on first use (claims, excluded hosts). */
  private ids: Map<string, number> | undefined;
  private readonly state: Uint8Array;
  private readonly accel: Uint8Array;
  private readonly firmware: Uint8Array;
  private readonly grouped: Uint8Array;
  private readonly zone: Int32Array;
  private readonly zones = new Map<string, number>();
  /** Tenants an aggregate of the host is reserved for (`filter_tenant_id`), or null. */
  private readonly reservedFor: (string[] | null)[];
  /**
   * Per host, STRIDE numbers side by side: capacity after overcommit of RAM,
   * vCPUs and disk, their reciprocals (0 for no capacity), what is used of each, and the cores.
   */
  private readonly room: Float64Array;
  /** Server group id → host index → members there. */
  private readonly members = new Map<string, Map<number, number>>();

  constructor(hosts: HostSnapshot[], config: Overcommit | SchedulerConfig = {}) {
    const cfg: SchedulerConfig = 'cpu' in config ? { overcommit: config } : config;
    const dflt = cfg.overcommit ?? DEFAULT_OVERCOMMIT;
    this.w = cfg.weighers ?? SPREAD;
    const n = hosts.length;
    this.size = n;
    this.hosts = hosts;
    this.state = new Uint8Array(n);
    this.accel = new Uint8Array(n);
    this.firmware = new Uint8Array(n);
    this.grouped = new Uint8Array(n);
    this.zone = new Int32Array(n);
    this.reservedFor = new Array(n).fill(null);
    this.room = new Float64Array(n * STRIDE);
    for (let i = 0; i < n; i++) {
      const h = hosts[i]!;
      this.state[i] = !h.up ? 1 : !h.enabled ? 2 : h.maintenance ? 3 : 0;
      this.accel[i] = h.accelerator === undefined ? 0 : ACCELERATORS.indexOf(h.accelerator) + 1;
      for (const f of h.firmware) this.firmware[i]! |= firmwareBit(f);
      const aggs = h.aggregates;
      this.grouped[i] = aggs !== undefined && aggs.length > 0 ? 1 : 0;
      for (const a of aggs ?? []) {
        const t = tenantsOf(a);
        if (t !== null) this.reservedFor[i] = [...(this.reservedFor[i] ?? []), ...t];
      }
      this.zone[i] = h.zone === undefined ? -1 : this.zoneId(h.zone, true);
      const oc = hasOwnOvercommit(h) ? effectiveOvercommit(h, dflt) : dflt;
      const o = i * STRIDE;
      this.room[o] = h.memoryMiB * oc.ram;
      this.room[o + 1] = h.vcpus * oc.cpu;
      this.room[o + 2] = h.diskGiB * oc.disk;
      for (let k = 0; k < 3; k++) this.room[o + 3 + k] = this.room[o + k]! > 0 ? 1 / this.room[o + k]! : 0;
      this.room[o + USED] = h.allocated.memoryMiB;
      this.room[o + USED + 1] = h.allocated.vcpus;
      this.room[o + USED + 2] = h.allocated.diskGiB;
      this.room[o + CORES] = h.vcpus;
      const gm = h.groupMembers;
      if (gm !== undefined) for (const g in gm) if (gm[g]! > 0) this.groupOf(g).set(i, gm[g]!);
    }
  }

  private zoneId(name: string, add: boolean): number {
    let id = this.zones.get(name);
    if (id === undefined) {
      if (!add) return -2; // a zone no host is in: matches none
      id = this.zones.size;
      this.zones.set(name, id);
    }
    return id;
  }

  private groupOf(id: string): Map<number, number> {
    let m = this.members.get(id);
    if (m === undefined) {
      m = new Map();
      this.members.set(id, m);
    }
    return m;
  }

  private indexOf(hostId: string): number | undefined {
    if (this.ids === undefined) this.ids = new Map(this.hosts.map((h, i) => [h.id, i]));
    return this.ids.get(hostId);
  }

  /** Records an instance placed on a host (its resources and its server group membership). */
  claim(hostId: string, r: Pick<PlacementRequest, 'vcpus' | 'memoryMiB' | 'diskGiB' | 'serverGroup'>): void {
    const i = this.indexOf(hostId);
    if (i === undefined) throw new Error(`host ${hostId} is not in this snapshot`);
    const o = i * STRIDE + USED;
    this.room[o]! += r.memoryMiB;
    this.room[o + 1]! += r.vcpus;
    this.room[o + 2]! += r.diskGiB;
    if (r.serverGroup) {
      const m = this.groupOf(r.serverGroup.id);
      m.set(i, (m.get(i) ?? 0) + 1);
    }
  }

  /**
   * One pass over the hosts: each goes through the filters until one rejects it (counted under
   * that filter's reason), and a host that passes them all is scored at once from the free room
   * the capacity filter computed. Reasons and sets that depend only on the request are prepared
   * before the pass. Ties go to the first host in the snapshot.
   */
  place(r: PlacementRequest): Placement {
    return this.decide(r, undefined);
  }

  /** Every host that passes the filters for `r` (in snapshot order), as the scheduler judges them. */
  accepting(r: PlacementRequest): string[] {
    const passing: number[] = [];
    this.decide(r, passing);
    return passing.map((i) => this.hosts[i]!.id);
  }

  private decide(r: PlacementRequest, passing: number[] | undefined): Placement {
    const n = this.size;
    const w = this.w;
    const { state, accel, firmware, grouped, zone, room, reservedFor } = this;
    const tenantId = r.tenantId;
    const [wRam, wCpu, wDisk] = [w.ram, w.cpu, w.disk];
    const [ram, cpu, disk] = [r.memoryMiB, r.vcpus, r.diskGiB];
    const exclude = new Set<number>();
    for (const id of r.excludeHosts ?? []) {
      const i = this.indexOf(id);
      if (i !== undefined) exclude.add(i);
    }
    const excluding = (r.excludeHosts?.length ?? 0) > 0;
    const wantZone = r.zone === undefined ? -1 : this.zoneId(r.zone, false);
    const notInZone = `not in zone ${r.zone}`;
    const wantAccel = r.accelerator === undefined ? 0 : ACCELERATORS.indexOf(r.accelerator) + 1;
    const noAccel = `no ${r.accelerator?.toUpperCase()}`;
    const fwBit = firmwareBit(r.firmware);
    const noFirmware = `no ${r.firmware.toUpperCase()} firmware`;
    const wanted = Object.entries(r.requiredMetadata ?? {});
    const lackRam = `lack ${fmtGiB(r.memoryMiB)} RAM`;
    const lackCpu = `lack ${r.vcpus} vCPU`;
    const lackDisk = `lack ${r.diskGiB} GiB disk`;
    const lackCores = `have fewer than the flavor's ${r.maxVcpus} maximum vCPUs`;
    const maxVcpus = r.maxVcpus ?? 0;
    const g = r.serverGroup;
    const members = g === undefined ? undefined : this.members.get(g.id);
    const antiAffinity = g?.policy === 'anti-affinity';
    // Hard affinity binds once the group has a member somewhere; the first member goes anywhere.
    const affinity = g?.policy === 'affinity' && members !== undefined && members.size > 0;
    const memberHere = `already run a member of group ${g?.name}`;
    const noMemberHere = `run no member of group ${g?.name}`;
    const soft = g?.policy === 'soft-affinity' ? 1 : g?.policy === 'soft-anti-affinity' ? -1 : 0;
    const softWeight = soft * w.softAffinity;
    const out = new Rejections();
    let best = -1;
    let bestScore = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < n; i++) {
      const st = state[i]!;
      if (st !== 0) out.add(STATE, STATE_WHY[st]!);
      else if (excluding && exclude.has(i)) out.add(EXCLUDE, 'excluded by the request');
      else if (wantZone !== -1 && zone[i] !== wantZone) out.add(ZONE, notInZone);
      else if (wantAccel !== 0 && accel[i] !== wantAccel) out.add(ACCELERATOR, noAccel);
      else if ((firmware[i]! & fwBit) === 0) out.add(FIRMWARE, noFirmware);
      else if (grouped[i] === 1 && !mayUse(reservedFor[i]!, tenantId))
        out.add(ISOLATION, 'reserved for other tenants');
      else {
        const mismatch = wanted.length > 0 ? metadataMismatch(this.hosts[i]!.aggregates, wanted) : null;
        if (mismatch !== null) {
          out.add(METADATA, mismatch);
          continue;
        }
        const o = i * STRIDE;
        const freeRam = room[o]! - room[o + USED]!;
        const freeCpu = room[o + 1]! - room[o + USED + 1]!;
        const freeDisk = room[o + 2]! - room[o + USED + 2]!;
        if (freeRam < ram) out.add(CAPACITY, lackRam);
        else if (freeCpu < cpu) out.add(CAPACITY, lackCpu);
        else if (freeDisk < disk) out.add(CAPACITY, lackDisk);
        else if (room[o + CORES]! < maxVcpus) out.add(CAPACITY, lackCores);
        else {
          const here = members === undefined ? 0 : (members.get(i) ?? 0);
          if (antiAffinity && here > 0) out.add(AFFINITY, memberHere);
          else if (affinity && here === 0) out.add(AFFINITY, noMemberHere);
          else {
            if (passing !== undefined) passing.push(i);
            const sc =
              wRam * freeRam * room[o + 3]! +
              wCpu * freeCpu * room[o + 4]! +
              wDisk * freeDisk * room[o + 5]! +
              softWeight * here;
            if (sc > bestScore) {
              best = i;
              bestScore = sc;
            }
          }
        }
      }
    }
    // A filter that had nothing to say for this request is left out of the explanation.
    const active = [true, excluding, r.zone !== undefined, wantAccel !== 0, true, true];
    active.push(wanted.length > 0, true, antiAffinity || affinity);
    const filters: FilterOutcome[] = [];
    for (let i = 0; i < FILTER_NAMES.length; i++) if (active[i]) filters.push(out.outcome(i));
    if (n === 0) return { ok: false, message: 'No compute host is registered.', filters };
    if (best < 0) {
      const parts = filters.filter((f) => f.removed > 0).map((f) => `${f.filter}: ${f.reasons.join(', ')}`);
      return { ok: false, message: `No host can take this instance (${parts.join('; ')}).`, filters };
    }
    return { ok: true, hostId: this.hosts[best]!.id, filters };
  }
}
