#!/usr/bin/env node
// bench/scheduler: the pure placement function (src/services/scheduler/placement.ts) on a simulated
// fleet: 100,000 instances placed one by one onto 1,000 and 10,000 hosts, each decision timed.
// Prints decisions/s and p50/p99 per decision beside the floor measured in the same run: one plain
// loop over the same hosts checking free RAM only (what any scheduler must at least do).
// Two ways of deciding are timed: a Fleet compiled once from the snapshot that records each
// decision with claim() (how a scheduler keeps its host states between decisions), and place() on
// the plain snapshot, which compiles it for every decision (what one API create does after reading
// its snapshot from the database; fewer instances, --fresh-instances).
// Targets (issue 7), at 10,000 hosts: p99 <= 5 ms per decision, >= 2,000 decisions/s.
// Usage: npm run build && node bench/scheduler.js [--instances 100000] [--hosts 1000,10000]
import { join } from 'node:path';
import { opt, pct, requireBuilt, root } from './common.js';

requireBuilt('bench/scheduler', 'services/scheduler/placement.js');
const { place, Fleet } = await import(join(root, 'dist/services/scheduler/placement.js'));
const INSTANCES = Number(opt('--instances', 100_000));
const FRESH_INSTANCES = Number(opt('--fresh-instances', 5_000));
const HOST_COUNTS = opt('--hosts', '1000,10000').split(',').map(Number);
const FLAVORS = [
  { vcpus: 1, memoryMiB: 512, diskGiB: 1 },
  { vcpus: 1, memoryMiB: 2048, diskGiB: 20 },
  { vcpus: 2, memoryMiB: 4096, diskGiB: 40 },
  { vcpus: 4, memoryMiB: 8192, diskGiB: 80 },
];

function fleet(n) {
  return Array.from({ length: n }, (_, i) => ({
    id: `host-${i}`,
    name: `host-${i}`,
    up: i % 97 !== 0, // ~1% down
    enabled: true,
    zone: `az${i % 3}`,
    accelerator: 'kvm',
    vcpus: 64,
    memoryMiB: 512 * 1024,
    diskGiB: 4000,
    firmware: ['bios', 'uefi'],
    aggregates: i % 10 === 0 ? [{ name: 'ssd', metadata: { ssd: 'true' } }] : [],
    allocated: { vcpus: 0, memoryMiB: 0, diskGiB: 0 },
    groupMembers: {},
  }));
}

function run(n, decide, instances = INSTANCES) {
  const hosts = fleet(n);
  const kept = new Fleet(hosts);
  const byId = new Map(hosts.map((h) => [h.id, h]));
  const times = new Float64Array(instances);
  let placed = 0;
  const t0 = performance.now();
  for (let i = 0; i < instances; i++) {
    const f = FLAVORS[i % FLAVORS.length];
    const r = {
      ...f,
      firmware: 'bios',
      zone: i % 5 === 0 ? `az${i % 3}` : undefined,
      serverGroup:
        i % 20 === 0 ? { id: `g${i % 400}`, name: `g${i % 400}`, policy: 'anti-affinity' } : undefined,
    };
    const s = performance.now();
    const hostId = decide(hosts, r, kept);
    times[i] = performance.now() - s;
    if (hostId) {
      const h = byId.get(hostId);
      h.allocated.vcpus += r.vcpus;
      h.allocated.memoryMiB += r.memoryMiB;
      h.allocated.diskGiB += r.diskGiB;
      if (r.serverGroup) h.groupMembers[r.serverGroup.id] = (h.groupMembers[r.serverGroup.id] ?? 0) + 1;
      kept.claim(hostId, r);
      placed++;
    }
  }
  const total = performance.now() - t0;
  return { perSec: instances / (total / 1000), p50: pct(times, 50), p99: pct(times, 99), placed };
}

const floor = (hosts, r) => {
  let best;
  let bestFree = -1;
  for (const h of hosts) {
    const free = h.memoryMiB - h.allocated.memoryMiB;
    if (free >= r.memoryMiB && free > bestFree) {
      best = h;
      bestFree = free;
    }
  }
  return best?.id;
};
const yunhai = (_hosts, r, kept) => {
  const p = kept.place(r);
  return p.ok ? p.hostId : undefined;
};
const fresh = (hosts, r) => {
  const p = place(hosts, r);
  return p.ok ? p.hostId : undefined;
};

console.log(
  `bench/scheduler: ${INSTANCES} instances placed one by one (4 flavors, 20% zoned, 5% anti-affinity groups)`,
);
const fmt = (x) =>
  `${x.perSec.toFixed(0).padStart(7)} decisions/s   p50 ${x.p50.toFixed(3)} ms   p99 ${x.p99.toFixed(3)} ms`;
let verdict = '';
for (const n of HOST_COUNTS) {
  const base = run(n, floor);
  const ours = run(n, yunhai);
  const once = run(n, fresh, FRESH_INSTANCES);
  console.log(`${String(n).padStart(6)} hosts  floor (free-RAM loop)      ${fmt(base)}`);
  console.log(
    `${String(n).padStart(6)} hosts  yunhai Fleet.place+claim   ${fmt(ours)}   placed ${ours.placed}`,
  );
  console.log(
    `${String(n).padStart(6)} hosts  yunhai place() fresh snap  ${fmt(once)}   (${FRESH_INSTANCES} instances)`,
  );
  if (n === 10_000)
    verdict = `targets at 10,000 hosts: p99 ${ours.p99.toFixed(2)} ms (<= 5 ms ${ours.p99 <= 5 ? 'OK' : 'MISSED'}), ${ours.perSec.toFixed(0)} decisions/s (>= 2,000 ${ours.perSec >= 2000 ? 'OK' : 'MISSED'})`;
}
if (verdict) console.log(verdict);
