import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type ConsolidationHost, type ConsolidationInstance, planConsolidation } from './consolidation.js';

const host = (id: string, instances: ConsolidationInstance[], over: Partial<ConsolidationHost> = {}) => ({
  id,
  name: id,
  eligible: true,
  vcpus: 8,
  memoryMiB: 8192,
  overcommit: { cpu: 1, ram: 1 },
  idleWatts: 100,
  peakWatts: 300,
  instances,
  ...over,
});
const vm = (id: string, memoryMiB = 1024, vcpus = 1, over: Partial<ConsolidationInstance> = {}) => ({
  id,
  vcpus,
  memoryMiB,
  movable: true,
  ...over,
});
const OPTS = { maxMigrations: 100, headroom: { cpu: 0, ram: 0 } };

describe('planConsolidation', () => {
  it('empties the least loaded hosts onto the fullest ones and counts the power saved', () => {
    const plan = planConsolidation(
      [host('a', [vm('a1'), vm('a2')]), host('b', [vm('b1')]), host('c', [vm('c1', 4096), vm('c2', 2048)])],
      OPTS,
    );
    // b (1 GiB) goes first, to c (the fullest that fits); then a's two instances to c as well? c
    // has 1 GiB left after b1, so a1 goes to c and a2 nowhere: a stays.
    expect(plan.moves).toEqual([{ instanceId: 'b1', from: 'b', to: 'c' }]);
    expect(plan.freedHosts).toEqual(['b']);
    expect(plan.skipped).toEqual([
      { host: 'a', reason: 'the other hosts have no room for all of its instances' },
    ]);
    expect(plan.hostsOnBefore).toBe(3);
    expect(plan.hostsOnAfter).toBe(2);
    // Before: a 100+200*2/8, b 100+200/8, c 100+200*2/8 = 150+125+150; after: a 150, c 175.
    expect(plan.wattsBefore).toBe(425);
    expect(plan.wattsAfter).toBe(325);
  });

  it('keeps the headroom, the budget, anti-affinity and affinity groups', () => {
    const anti = { id: 'g', policy: 'anti-affinity' as const };
    const hosts = [
      host('a', [vm('a1', 1024, 1, { group: anti })]),
      host('b', [vm('b1', 6144, 1, { group: anti })]),
      host('c', [vm('c1', 5000)]),
    ];
    // a1 cannot join b1 (same anti-affinity group); c has room.
    expect(planConsolidation(hosts, OPTS).moves).toEqual([{ instanceId: 'a1', from: 'a', to: 'c' }]);
    // With 40 % headroom c's 8 GiB holds at most 4.8 GiB: nothing fits anywhere.
    expect(planConsolidation(hosts, { ...OPTS, headroom: { cpu: 0, ram: 0.4 } }).moves).toEqual([]);
    expect(planConsolidation(hosts, { ...OPTS, maxMigrations: 0 }).skipped[0]).toEqual({
      host: 'a',
      reason: 'the migration budget (0) is spent',
    });
    const together = [
      host('a', [vm('a1', 512, 1, { group: { id: 'h', policy: 'affinity' } })]),
      host('b', [vm('b1')]),
    ];
    expect(planConsolidation(together, OPTS).skipped).toContainEqual({
      host: 'a',
      reason: 'instance a1 is in an affinity group',
    });
    const frozen = [host('a', [vm('a1', 512, 1, { movable: false })]), host('b', [vm('b1')])];
    expect(planConsolidation(frozen, OPTS).moves).toEqual([{ instanceId: 'b1', from: 'b', to: 'a' }]);
  });

  it('leaves hosts that are down, disabled or in maintenance alone and frees empty ones without moves', () => {
    const plan = planConsolidation(
      [host('a', [vm('a1')], { eligible: false }), host('b', []), host('c', [vm('c1')])],
      OPTS,
    );
    expect(plan.moves).toEqual([]);
    expect(plan.freedHosts).toEqual(['b']);
    expect(plan.hostsOnBefore).toBe(2);
  });

  const fleet = fc
    .array(
      fc.record({
        vcpus: fc.integer({ min: 2, max: 16 }),
        memoryMiB: fc.integer({ min: 2048, max: 16384 }),
        cpu: fc.constantFrom(1, 2, 4),
        vms: fc.array(
          fc.record({
            vcpus: fc.integer({ min: 1, max: 4 }),
            memoryMiB: fc.integer({ min: 256, max: 4096 }),
            group: fc.option(fc.constantFrom('g1', 'g2'), { nil: undefined }),
            movable: fc.constantFrom(true, true, true, false),
            // Hosts the scheduler accepts for it, as indexes mod the fleet size; none: any host.
            targets: fc.option(fc.array(fc.nat(11), { maxLength: 4 }), { nil: undefined }),
          }),
          { maxLength: 6 },
        ),
      }),
      { minLength: 1, maxLength: 12 },
    )
    .map((hs) => {
      const seen = new Set<string>();
      return hs.map((h, k) => {
        const ids = (t: number[] | undefined) => t?.map((n) => `h${n % hs.length}`);
        // Each host starts within its capacity, with at most one member of each group.
        let v = 0;
        let m = 0;
        const instances: ConsolidationInstance[] = [];
        h.vms.forEach((x, n) => {
          if (v + x.vcpus > h.vcpus * h.cpu || m + x.memoryMiB > h.memoryMiB) return;
          const key = `${k}/${x.group}`;
          if (x.group && seen.has(key)) return;
          if (x.group) seen.add(key);
          v += x.vcpus;
          m += x.memoryMiB;
          instances.push({
            id: `h${k}-i${n}`,
            vcpus: x.vcpus,
            memoryMiB: x.memoryMiB,
            movable: x.movable !== false,
            group: x.group ? { id: x.group, policy: 'anti-affinity' } : undefined,
            targets: ids(x.targets),
          });
        });
        return host(`h${k}`, instances, {
          vcpus: h.vcpus,
          memoryMiB: h.memoryMiB,
          overcommit: { cpu: h.cpu, ram: 1 },
        });
      });
    });

  it('moves an instance only to a host the scheduler accepts for it', () => {
    const pinned = { ...vm('a', 256, 1), targets: ['c'] };
    const plan = planConsolidation(
      [
        host('a-host', [pinned]),
        host('b', [vm('b', 2048, 2)], { memoryMiB: 4096 }),
        host('c', [vm('c', 1024, 1)], { memoryMiB: 4096 }),
      ],
      { maxMigrations: 1, headroom: { cpu: 0, ram: 0 } },
    );
    // 'b' is the fuller host (best fit), but only 'c' may take the instance.
    expect(plan.moves).toEqual([{ instanceId: 'a', from: 'a-host', to: 'c' }]);
  });

  it('does not empty a host when packing its load elsewhere costs more power than it saves', () => {
    // Moving 3 vCPUs from a 13-core host onto a 4-core one: +150 W at load there, −146 W freed.
    const plan = planConsolidation(
      [
        host('big', [vm('a', 256, 3)], { vcpus: 13, memoryMiB: 2048 }),
        host('small', [vm('b', 256, 1)], { vcpus: 4, memoryMiB: 2048 }),
        host('tiny', [vm('c', 256, 1)], { vcpus: 2, memoryMiB: 2048 }),
      ],
      { maxMigrations: 1, headroom: { cpu: 0, ram: 0 } },
    );
    expect(plan.skipped).toContainEqual({ host: 'big', reason: 'moving its instances would not save power' });
    expect(plan.freedHosts).not.toContain('big');
    // Emptying 'small' onto 'tiny' does save (−150 W idle and load, +100 W there).
    expect(plan.moves).toEqual([{ instanceId: 'b', from: 'small', to: 'tiny' }]);
    expect(plan.wattsAfter).toBeLessThan(plan.wattsBefore);
  });

  it('never overfills a target, breaks anti-affinity, exceeds the budget or leaves a freed host occupied (property)', () => {
    fc.assert(
      fc.property(
        fleet,
        fc.integer({ min: 0, max: 20 }),
        fc.double({ min: 0, max: 0.5, noNaN: true }),
        (hosts, budget, headroom) => {
          const plan = planConsolidation(hosts, {
            maxMigrations: budget,
            headroom: { cpu: headroom, ram: headroom },
          });
          expect(plan.moves.length).toBeLessThanOrEqual(budget);
          const where = new Map<string, string>();
          const byId = new Map<string, ConsolidationInstance>();
          for (const h of hosts)
            for (const i of h.instances) {
              where.set(i.id, h.id);
              byId.set(i.id, i);
            }
          const movedOnce = new Set<string>();
          for (const m of plan.moves) {
            expect(movedOnce.has(m.instanceId)).toBe(false);
            movedOnce.add(m.instanceId);
            expect(where.get(m.instanceId)).toBe(m.from);
            expect(m.to).not.toBe(m.from);
            expect(byId.get(m.instanceId)!.movable).toBe(true);
            const targets = byId.get(m.instanceId)!.targets;
            if (targets) expect(targets).toContain(m.to);
            where.set(m.instanceId, m.to);
          }
          const receivers = new Set(plan.moves.map((m) => m.to));
          for (const h of hosts) {
            const here = [...where].filter(([, hid]) => hid === h.id).map(([id]) => byId.get(id)!);
            if (plan.freedHosts.includes(h.id)) expect(here).toEqual([]);
            if (receivers.has(h.id)) {
              expect(plan.freedHosts).not.toContain(h.id);
              expect(here.reduce((s, i) => s + i.vcpus, 0)).toBeLessThanOrEqual(
                h.vcpus * h.overcommit.cpu * (1 - headroom) + 1e-9,
              );
              expect(here.reduce((s, i) => s + i.memoryMiB, 0)).toBeLessThanOrEqual(
                h.memoryMiB * (1 - headroom) + 1e-9,
              );
            }
            for (const g of ['g1', 'g2'])
              expect(here.filter((i) => i.group?.id === g).length).toBeLessThanOrEqual(1);
          }
          expect(plan.wattsAfter).toBeLessThanOrEqual(plan.wattsBefore + 1e-6);
          expect(plan.hostsOnAfter).toBe(plan.hostsOnBefore - plan.freedHosts.length);
        },
      ),
      { numRuns: 300 },
    );
  });
});
