#!/usr/bin/env node
// bench/consolidation: the energy-saving consolidation planner (src/services/scheduler/consolidation.ts)
// on simulated fleets left sparse by churn (instances spread, hosts 15-45 % full). For each fleet it
// prints what one plan achieves — hosts freed, live migrations, power before/after (W) and kWh/day
// saved — beside two baselines computed in the same run:
//   - "ideal": the fewest hosts that could hold every instance at all (total demand ÷ usable
//     capacity per host, rounded up) — no plan can power off more than hosts − ideal;
//   - "repack": first-fit-decreasing of all instances from scratch onto the fewest hosts (what a
//     fresh placement would reach, ignoring that every instance would have to move).
// Also the planner's own time per plan. Migration budgets: unlimited, then 50 per run.
// Usage: npm run build && node bench/consolidation.js [--hosts 100,1000] [--fill 0.3] [--seed 7]
import { join } from 'node:path';
import { opt, requireBuilt, root } from './common.js';

requireBuilt('bench/consolidation', 'services/scheduler/consolidation.js');
const { planConsolidation } = await import(join(root, 'dist/services/scheduler/consolidation.js'));
const HOST_COUNTS = opt('--hosts', '100,1000').split(',').map(Number);
const FILL = Number(opt('--fill', 0.3));
let seed = Number(opt('--seed', 7));
const rand = () => {
  seed = (seed * 1103515245 + 12345) % 2 ** 31;
  return seed / 2 ** 31;
};
const FLAVORS = [
  { vcpus: 1, memoryMiB: 1024 },
  { vcpus: 2, memoryMiB: 4096 },
  { vcpus: 4, memoryMiB: 8192 },
  { vcpus: 8, memoryMiB: 16384 },
];
const HOST = { vcpus: 32, memoryMiB: 131072, idleWatts: 120, peakWatts: 350 };
const HEADROOM = { cpu: 0.2, ram: 0.2 };

function fleet(n) {
  let k = 0;
  return Array.from({ length: n }, (_, i) => {
    const target = HOST.memoryMiB * (FILL - 0.15 + rand() * 0.3);
    const instances = [];
    let mem = 0;
    while (mem < target) {
      const f = FLAVORS[Math.floor(rand() * FLAVORS.length)];
      instances.push({ id: `i-${k++}`, vcpus: f.vcpus, memoryMiB: f.memoryMiB, movable: rand() > 0.02 });
      mem += f.memoryMiB;
    }
    return {
      id: `h-${i}`,
      name: `h-${String(i).padStart(5, '0')}`,
      eligible: true,
      overcommit: { cpu: 4, ram: 1 },
      ...HOST,
      instances,
    };
  });
}

function baselines(hosts) {
  const all = hosts.flatMap((h) => h.instances);
  const capMem = HOST.memoryMiB * (1 - HEADROOM.ram);
  const capCpu = HOST.vcpus * 4 * (1 - HEADROOM.cpu);
  const mem = all.reduce((s, i) => s + i.memoryMiB, 0);
  const cpu = all.reduce((s, i) => s + i.vcpus, 0);
  const ideal = Math.ceil(Math.max(mem / capMem, cpu / capCpu));
  const bins = [];
  for (const i of [...all].sort((a, b) => b.memoryMiB - a.memoryMiB)) {
    const b = bins.find((x) => x.m + i.memoryMiB <= capMem && x.c + i.vcpus <= capCpu);
    if (b) {
      b.m += i.memoryMiB;
      b.c += i.vcpus;
    } else bins.push({ m: i.memoryMiB, c: i.vcpus });
  }
  return { ideal, repack: bins.length, instances: all.length };
}

const fmt = (n) => n.toLocaleString('en-US');
console.log(
  `bench/consolidation: hosts of ${HOST.vcpus} cores / ${HOST.memoryMiB / 1024} GiB, ${HOST.idleWatts}-${HOST.peakWatts} W, fill ~${FILL * 100}%, headroom 20%`,
);
console.log('');
console.log(
  'hosts  instances  budget  | plan: freed  migrations  W before -> after   kWh/day saved  plan ms | ideal hosts  repack hosts',
);
for (const n of HOST_COUNTS) {
  const hosts = fleet(n);
  const base = baselines(hosts);
  for (const budget of [1_000_000, 50]) {
    const t0 = process.hrtime.bigint();
    const plan = planConsolidation(hosts, { maxMigrations: budget, headroom: HEADROOM });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    const saved = ((plan.wattsBefore - plan.wattsAfter) * 24) / 1000;
    console.log(
      `${String(n).padStart(5)}  ${String(base.instances).padStart(9)}  ${(budget >= 1_000_000 ? 'none' : String(budget)).padStart(6)}  | ` +
        `${String(plan.freedHosts.length).padStart(11)}  ${String(plan.moves.length).padStart(10)}  ` +
        `${fmt(Math.round(plan.wattsBefore)).padStart(8)} -> ${fmt(Math.round(plan.wattsAfter)).padStart(7)}  ${saved.toFixed(1).padStart(13)}  ${ms.toFixed(1).padStart(7)} | ` +
        `${String(base.ideal).padStart(11)}  ${String(base.repack).padStart(12)}`,
    );
  }
}
console.log('');
console.log(
  'hosts left on after the plan = hosts − freed; compare with "ideal" (a lower bound) and "repack" (moves everything).',
);
