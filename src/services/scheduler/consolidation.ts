/**
 * Server consolidation for energy saving (the idea of OpenStack Watcher's "server consolidation"
 * strategy), as a pure function: given hosts with their running instances, which live migrations
 * empty the most hosts without crowding the rest, and how much power that saves.
 *
 * Rules:
 * - Only hosts that are up, enabled and not in maintenance take part (as sources or targets).
 * - A target never goes over its capacity (physical size × overcommit ratio) less the headroom
 *   kept free for growth (e.g. 20 % of CPU and RAM).
 * - Hosts are emptied least-loaded first; a host is emptied completely or not at all (a half-
 *   emptied host saves nothing), and a host that received instances is not emptied afterwards.
 * - Instances go best-fit (to the fullest target they fit on), biggest first.
 * - Hard anti-affinity holds: a target never gets a second member of an anti-affinity group.
 *   Members of affinity groups are not moved (they would have to move together).
 * - An instance goes only to hosts in its `targets` (when given): those whose scheduler filters
 *   accept it (zone, accelerator, firmware, tenant isolation, aggregate metadata).
 * - At most `maxMigrations` moves per plan, and a host is emptied only if that lowers the fleet's
 *   estimated power (packing onto smaller hosts can cost more at load than the idle draw saved).
 *
 * Power: a host draws `idle + (peak − idle) × u`, u = allocated vCPUs / physical cores (capped
 * at 1); an emptied host is powered off and draws nothing. The plan reports both sums.
 */

export interface ConsolidationInstance {
  id: string;
  vcpus: number;
  memoryMiB: number;
  /** Server group and its policy, if any. */
  group?: { id: string; policy: 'affinity' | 'anti-affinity' | 'soft-affinity' | 'soft-anti-affinity' };
  /** False for instances that cannot be live-migrated now (not running, already moving). */
  movable: boolean;
  /** The availability zone it asked for: it moves only within it. */
  zone?: string;
  /** Hosts the scheduler's filters accept for it; undefined: any host. */
  targets?: string[];
}

export interface ConsolidationHost {
  id: string;
  name: string;
  eligible: boolean;
  zone?: string;
  vcpus: number;
  memoryMiB: number;
  /** Effective overcommit ratios for this host. */
  overcommit: { cpu: number; ram: number };
  idleWatts: number;
  peakWatts: number;
  instances: ConsolidationInstance[];
}

export interface ConsolidationOptions {
  maxMigrations: number;
  /** Fraction of each target's capacity kept free, 0..0.9. */
  headroom: { cpu: number; ram: number };
}

export interface ConsolidationMove {
  instanceId: string;
  from: string;
  to: string;
}

export interface ConsolidationPlan {
  moves: ConsolidationMove[];
  /** Hosts emptied by the moves (and hosts that were empty already), to be powered off. */
  freedHosts: string[];
  /** Hosts left as they are, and why. */
  skipped: Array<{ host: string; reason: string }>;
  hostsOnBefore: number;
  hostsOnAfter: number;
  wattsBefore: number;
  wattsAfter: number;
}

interface Load {
  vcpus: number;
  memoryMiB: number;
  anti: Map<string, number>;
}

const watts = (h: ConsolidationHost, vcpus: number) =>
  h.idleWatts + (h.peakWatts - h.idleWatts) * Math.min(1, h.vcpus > 0 ? vcpus / h.vcpus : 1);

export function planConsolidation(hosts: ConsolidationHost[], opts: ConsolidationOptions): ConsolidationPlan {
  const eligible = hosts.filter((h) => h.eligible);
  const load = new Map<string, Load>();
  for (const h of eligible) {
    const anti = new Map<string, number>();
    for (const i of h.instances)
      if (i.group?.policy === 'anti-affinity') anti.set(i.group.id, (anti.get(i.group.id) ?? 0) + 1);
    load.set(h.id, {
      vcpus: h.instances.reduce((s, i) => s + i.vcpus, 0),
      memoryMiB: h.instances.reduce((s, i) => s + i.memoryMiB, 0),
      anti,
    });
  }
  const cap = (h: ConsolidationHost) => ({
    vcpus: h.vcpus * h.overcommit.cpu * (1 - opts.headroom.cpu),
    memoryMiB: h.memoryMiB * h.overcommit.ram * (1 - opts.headroom.ram),
  });
  const fill = (h: ConsolidationHost) => {
    const l = load.get(h.id)!;
    const c = cap(h);
    return Math.max(c.memoryMiB > 0 ? l.memoryMiB / c.memoryMiB : 1, c.vcpus > 0 ? l.vcpus / c.vcpus : 1);
  };

  const wattsBefore = eligible.reduce((s, h) => s + watts(h, load.get(h.id)!.vcpus), 0);
  const freed = new Set<string>();
  const receivers = new Set<string>();
  const moves: ConsolidationMove[] = [];
  const skipped: ConsolidationPlan['skipped'] = [];

  // Least loaded first; ties by name for a stable plan.
  const order = [...eligible].sort((a, b) => fill(a) - fill(b) || a.name.localeCompare(b.name));
  for (const src of order) {
    if (receivers.has(src.id)) continue;
    if (src.instances.length === 0) {
      freed.add(src.id);
      continue;
    }
    if (moves.length + src.instances.length > opts.maxMigrations) {
      skipped.push({ host: src.id, reason: `the migration budget (${opts.maxMigrations}) is spent` });
      continue;
    }
    const stuck = src.instances.find(
      (i) => !i.movable || i.group?.policy === 'affinity' || i.group?.policy === 'soft-affinity',
    );
    if (stuck) {
      skipped.push({
        host: src.id,
        reason: !stuck.movable
          ? `instance ${stuck.id} cannot move now`
          : `instance ${stuck.id} is in an affinity group`,
      });
      continue;
    }
    // Tentative placement of every instance; committed only if all fit.
    const trial = new Map<string, Load>();
    const loadOf = (id: string) => {
      let t = trial.get(id);
      if (!t) {
        const l = load.get(id)!;
        t = { vcpus: l.vcpus, memoryMiB: l.memoryMiB, anti: new Map(l.anti) };
        trial.set(id, t);
      }
      return t;
    };
    const planned: ConsolidationMove[] = [];
    const biggestFirst = [...src.instances].sort((a, b) => b.memoryMiB - a.memoryMiB || b.vcpus - a.vcpus);
    let ok = true;
    for (const inst of biggestFirst) {
      const allowed = inst.targets === undefined ? undefined : new Set(inst.targets);
      let best: ConsolidationHost | undefined;
      let bestLeft = Number.POSITIVE_INFINITY;
      for (const t of eligible) {
        if (t.id === src.id || freed.has(t.id)) continue;
        if (inst.zone && t.zone !== inst.zone) continue;
        if (allowed !== undefined && !allowed.has(t.id)) continue;
        // A host still waiting its turn to be emptied is not a target (it would have to move again).
        if (!receivers.has(t.id) && fill(t) < fill(src)) continue;
        const l = loadOf(t.id);
        const c = cap(t);
        if (l.vcpus + inst.vcpus > c.vcpus || l.memoryMiB + inst.memoryMiB > c.memoryMiB) continue;
        if (inst.group?.policy === 'anti-affinity' && (l.anti.get(inst.group.id) ?? 0) > 0) continue;
        const left = c.memoryMiB - l.memoryMiB - inst.memoryMiB;
        if (left < bestLeft) {
          best = t;
          bestLeft = left;
        }
      }
      if (!best) {
        ok = false;
        break;
      }
      const l = loadOf(best.id);
      l.vcpus += inst.vcpus;
      l.memoryMiB += inst.memoryMiB;
      if (inst.group?.policy === 'anti-affinity')
        l.anti.set(inst.group.id, (l.anti.get(inst.group.id) ?? 0) + 1);
      planned.push({ instanceId: inst.id, from: src.id, to: best.id });
    }
    if (!ok) {
      skipped.push({ host: src.id, reason: 'the other hosts have no room for all of its instances' });
      continue;
    }
    // Packing onto a smaller host can cost more at load than the emptied host's idle draw saves.
    let delta = -watts(src, load.get(src.id)!.vcpus);
    for (const [id, l] of trial) {
      const h = eligible.find((x) => x.id === id)!;
      delta += watts(h, l.vcpus) - watts(h, load.get(id)!.vcpus);
    }
    if (delta >= 0) {
      skipped.push({ host: src.id, reason: 'moving its instances would not save power' });
      continue;
    }
    for (const [id, l] of trial) load.set(id, l);
    load.set(src.id, { vcpus: 0, memoryMiB: 0, anti: new Map() });
    for (const m of planned) receivers.add(m.to);
    freed.add(src.id);
    moves.push(...planned);
  }

  const wattsAfter = eligible
    .filter((h) => !freed.has(h.id))
    .reduce((s, h) => s + watts(h, load.get(h.id)!.vcpus), 0);
  return {
    moves,
    freedHosts: [...freed],
    skipped,
    hostsOnBefore: eligible.length,
    hostsOnAfter: eligible.length - freed.size,
    wattsBefore: Math.round(wattsBefore * 10) / 10,
    wattsAfter: Math.round(wattsAfter * 10) / 10,
  };
}
