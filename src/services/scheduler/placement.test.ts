import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  effectiveOvercommit,
  Fleet,
  freeOf,
  type GroupPolicy,
  type HostSnapshot,
  PACK,
  type PlacementRequest,
  parseOvercommit,
  parseWeighers,
  place,
} from './placement.js';

const host = (id: string, over: Partial<HostSnapshot> = {}): HostSnapshot => ({
  id,
  name: id,
  up: true,
  enabled: true,
  vcpus: 8,
  memoryMiB: 16384,
  diskGiB: 100,
  firmware: ['bios', 'uefi'],
  allocated: { vcpus: 0, memoryMiB: 0, diskGiB: 0 },
  ...over,
});
const req = { vcpus: 2, memoryMiB: 4096, diskGiB: 10, firmware: 'bios' as const };

describe('placement', () => {
  it('picks the host with the most free RAM', () => {
    const r = place([host('a', { allocated: { vcpus: 0, memoryMiB: 8192, diskGiB: 0 } }), host('b')], req);
    expect(r).toMatchObject({ ok: true, hostId: 'b' });
  });

  it.each([
    ['a down host', host('a', { up: false }), 'state: 1 host host is down'],
    ['a disabled host', host('a', { enabled: false }), 'state: 1 host host is disabled'],
    ['a host without UEFI', host('a', { firmware: ['bios'] }), 'firmware: 1 host no UEFI firmware'],
    [
      'a full host',
      host('a', { allocated: { vcpus: 0, memoryMiB: 14000, diskGiB: 0 } }),
      'capacity: 1 host lack 4 GiB RAM',
    ],
  ])('explains why %s cannot take it', (_n, h, msg) => {
    const r = place([h], { ...req, firmware: h.firmware.length === 1 ? 'uefi' : 'bios' });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.message).toContain(msg);
  });

  it('overcommits CPU 4:1 but not RAM', () => {
    expect(place([host('a', { allocated: { vcpus: 30, memoryMiB: 0, diskGiB: 0 } })], req).ok).toBe(true);
    expect(place([host('a', { allocated: { vcpus: 31, memoryMiB: 0, diskGiB: 0 } })], req).ok).toBe(false);
  });

  it('needs as many host cores as the flavor may hot-plug', () => {
    const r = place([host('a', { vcpus: 2 })], { ...req, vcpus: 1, maxVcpus: 4 });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.message).toContain("capacity: 1 host have fewer than the flavor's 4 maximum vCPUs");
  });

  it('says so when no host is registered', () => {
    expect(place([], req)).toMatchObject({ ok: false, message: 'No compute host is registered.' });
  });

  it('never places beyond a host’s capacity (property)', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            vcpus: fc.integer({ min: 0, max: 64 }),
            mem: fc.integer({ min: 0, max: 65536 }),
            disk: fc.integer({ min: 0, max: 500 }),
          }),
          { minLength: 1, maxLength: 20 },
        ),
        fc.record({
          vcpus: fc.integer({ min: 1, max: 16 }),
          memoryMiB: fc.integer({ min: 64, max: 32768 }),
          diskGiB: fc.integer({ min: 1, max: 200 }),
        }),
        (allocs, r) => {
          const hosts = allocs.map((a, i) =>
            host(`h${i}`, { allocated: { vcpus: a.vcpus, memoryMiB: a.mem, diskGiB: a.disk } }),
          );
          const p = place(hosts, { ...r, firmware: 'bios' });
          if (!p.ok) return true;
          const h = hosts.find((x) => x.id === p.hostId)!;
          return (
            h.allocated.memoryMiB + r.memoryMiB <= h.memoryMiB &&
            h.allocated.vcpus + r.vcpus <= h.vcpus * 4 &&
            h.allocated.diskGiB + r.diskGiB <= h.diskGiB
          );
        },
      ),
    );
  });

  const fail = (hosts: HostSnapshot[], r: Partial<PlacementRequest> = {}) => {
    const p = place(hosts, { ...req, ...r });
    if (p.ok) throw new Error(`expected no host, got ${p.hostId}`);
    return p.message;
  };

  it('keeps to the requested zone and accelerator', () => {
    const hosts = [
      host('a', { zone: 'az1', accelerator: 'tcg' }),
      host('b', { zone: 'az2', accelerator: 'kvm' }),
    ];
    expect(place(hosts, { ...req, zone: 'az2' })).toMatchObject({ ok: true, hostId: 'b' });
    expect(place(hosts, { ...req, accelerator: 'tcg' })).toMatchObject({ ok: true, hostId: 'a' });
    expect(fail(hosts, { zone: 'az3' })).toContain('zone: 2 hosts not in zone az3');
    expect(fail(hosts, { zone: 'az1', accelerator: 'kvm' })).toContain('accelerator: 1 host no KVM');
  });

  it('reserves isolation aggregates for their tenants and leaves other hosts open to all', () => {
    const gov = { name: 'gov', metadata: { filter_tenant_id: 't-gov,t-city' } };
    const hosts = [
      host('a', { aggregates: [gov] }),
      host('b', { allocated: { vcpus: 0, memoryMiB: 15000, diskGiB: 0 } }),
    ];
    expect(place(hosts, { ...req, tenantId: 't-gov' })).toMatchObject({ ok: true, hostId: 'a' });
    expect(place(hosts, { ...req, memoryMiB: 1024, tenantId: 't-other' })).toMatchObject({
      ok: true,
      hostId: 'b',
    });
    expect(fail(hosts, { tenantId: 't-other' })).toBe(
      'No host can take this instance (isolation: 1 host reserved for other tenants; capacity: 1 host lack 4 GiB RAM).',
    );
  });

  it('matches aggregate metadata the flavor requires', () => {
    const hosts = [
      host('a', { aggregates: [{ name: 'ssd', metadata: { ssd: 'true' } }] }),
      host('b', { aggregates: [{ name: 'hdd', metadata: { ssd: 'false' } }] }),
      host('c'),
    ];
    expect(place(hosts, { ...req, requiredMetadata: { ssd: 'true' } })).toMatchObject({
      ok: true,
      hostId: 'a',
    });
    expect(fail(hosts.slice(1), { requiredMetadata: { ssd: 'true' } })).toContain(
      'metadata: 1 host have ssd=false, not true, 1 host lack ssd=true',
    );
  });

  it('uses per-host ratios, else the lowest of its aggregates, else the default', () => {
    const agg = (cpu: number) => ({ name: `x${cpu}`, metadata: {}, overcommit: { cpu } });
    expect(effectiveOvercommit(host('a'))).toEqual({ cpu: 4, ram: 1, disk: 1 });
    expect(effectiveOvercommit(host('a', { aggregates: [agg(8), agg(2)] })).cpu).toBe(2);
    expect(effectiveOvercommit(host('a', { aggregates: [agg(2)], overcommit: { cpu: 16 } })).cpu).toBe(16);
    const busy = { vcpus: 16, memoryMiB: 0, diskGiB: 0 };
    expect(place([host('a', { allocated: busy, aggregates: [agg(2)] })], req).ok).toBe(false);
    expect(place([host('a', { allocated: busy, aggregates: [agg(3)] })], req).ok).toBe(true);
  });

  it('explains anti-affinity as the operator would want to read it', () => {
    const web = { id: 'sg-1', name: 'web', policy: 'anti-affinity' as const };
    const hosts = [
      ...Array.from({ length: 12 }, (_, i) =>
        host(`full${i}`, { allocated: { vcpus: 0, memoryMiB: 15000, diskGiB: 0 } }),
      ),
      ...Array.from({ length: 3 }, (_, i) => host(`web${i}`, { groupMembers: { 'sg-1': 1 } })),
    ];
    expect(fail(hosts, { memoryMiB: 8192, serverGroup: web })).toBe(
      'No host can take this instance (capacity: 12 hosts lack 8 GiB RAM; affinity: 3 hosts already run a member of group web).',
    );
  });

  it('keeps a hard-affinity group together once it has a member, and lets the first go anywhere', () => {
    const g = { id: 'sg-2', name: 'db', policy: 'affinity' as const };
    expect(place([host('a'), host('b')], { ...req, serverGroup: g }).ok).toBe(true);
    const hosts = [
      host('a'),
      host('b', { groupMembers: { 'sg-2': 1 }, allocated: { vcpus: 2, memoryMiB: 8192, diskGiB: 0 } }),
    ];
    expect(place(hosts, { ...req, serverGroup: g })).toMatchObject({ ok: true, hostId: 'b' });
    expect(fail(hosts, { memoryMiB: 12000, serverGroup: g })).toContain(
      'affinity: 1 host run no member of group db',
    );
  });

  it('prefers (soft affinity) or avoids (soft anti-affinity) hosts with group members, without refusing', () => {
    const hosts = [host('a'), host('b', { groupMembers: { g: 2 } })];
    const soft = (policy: 'soft-affinity' | 'soft-anti-affinity') => ({ id: 'g', name: 'g', policy });
    expect(place(hosts, { ...req, serverGroup: soft('soft-affinity') })).toMatchObject({ hostId: 'b' });
    expect(place(hosts, { ...req, serverGroup: soft('soft-anti-affinity') })).toMatchObject({ hostId: 'a' });
    expect(place([hosts[1]!], { ...req, serverGroup: soft('soft-anti-affinity') })).toMatchObject({
      hostId: 'b',
    });
  });

  it('packs onto the fullest host that fits when configured to', () => {
    const hosts = [host('a'), host('b', { allocated: { vcpus: 4, memoryMiB: 8192, diskGiB: 50 } })];
    expect(place(hosts, req)).toMatchObject({ hostId: 'a' });
    expect(place(hosts, req, { weighers: PACK })).toMatchObject({ hostId: 'b' });
  });

  it('skips excluded hosts and hosts in maintenance', () => {
    const hosts = [host('a'), host('b', { maintenance: true }), host('c')];
    expect(place(hosts, { ...req, excludeHosts: ['a'] })).toMatchObject({ hostId: 'c' });
    expect(fail(hosts, { excludeHosts: ['a', 'c'] })).toBe(
      'No host can take this instance (state: 1 host host is in maintenance; exclude: 2 hosts excluded by the request).',
    );
  });

  const arbHost = (i: number) =>
    fc
      .record({
        vcpus: fc.integer({ min: 1, max: 64 }),
        memoryMiB: fc.integer({ min: 512, max: 262144 }),
        diskGiB: fc.integer({ min: 10, max: 2000 }),
        up: fc.boolean(),
        zone: fc.constantFrom('az1', 'az2'),
        cpuRatio: fc.option(fc.constantFrom(1, 2, 4, 8), { nil: undefined }),
        ssd: fc.option(fc.constantFrom('true', 'false'), { nil: undefined }),
        members: fc.integer({ min: 0, max: 2 }),
      })
      .map((x) =>
        host(`h${i}`, {
          vcpus: x.vcpus,
          memoryMiB: x.memoryMiB,
          diskGiB: x.diskGiB,
          up: x.up,
          zone: x.zone,
          aggregates: [
            {
              name: 'agg',
              metadata: x.ssd ? { ssd: x.ssd } : {},
              overcommit: x.cpuRatio ? { cpu: x.cpuRatio } : undefined,
            },
          ],
          groupMembers: { g: x.members },
        }),
      );
  const arbFleet = fc
    .integer({ min: 0, max: 12 })
    .chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => arbHost(i))));
  const arbReq = fc.record({
    vcpus: fc.integer({ min: 1, max: 8 }),
    memoryMiB: fc.integer({ min: 128, max: 16384 }),
    diskGiB: fc.integer({ min: 1, max: 100 }),
    firmware: fc.constant('bios' as const),
    zone: fc.option(fc.constantFrom('az1', 'az2'), { nil: undefined }),
    requiredMetadata: fc.option(fc.constant({ ssd: 'true' }), { nil: undefined }),
    serverGroup: fc.option(
      fc.constantFrom('affinity', 'anti-affinity', 'soft-affinity', 'soft-anti-affinity').map((policy) => ({
        id: 'g',
        name: 'g',
        policy: policy as GroupPolicy,
      })),
      { nil: undefined },
    ),
  });

  it('keeps every host within capacity over a run of placements, and hard group rules hold (property)', () => {
    fc.assert(
      fc.property(arbFleet, fc.array(arbReq, { minLength: 1, maxLength: 30 }), (fleet, reqs) => {
        const hosts = fleet.map((h) => structuredClone(h));
        for (const r of reqs) {
          const p = place(hosts, r);
          if (!p.ok) continue;
          const h = hosts.find((x) => x.id === p.hostId)!;
          const hadMembers = hosts.some((x) => (x.groupMembers?.g ?? 0) > 0);
          if (r.serverGroup?.policy === 'anti-affinity' && (h.groupMembers?.g ?? 0) > 0) return false;
          if (r.serverGroup?.policy === 'affinity' && hadMembers && (h.groupMembers?.g ?? 0) === 0)
            return false;
          if (r.zone !== undefined && h.zone !== r.zone) return false;
          h.allocated = {
            vcpus: h.allocated.vcpus + r.vcpus,
            memoryMiB: h.allocated.memoryMiB + r.memoryMiB,
            diskGiB: h.allocated.diskGiB + r.diskGiB,
          };
          if (r.serverGroup) h.groupMembers = { g: (h.groupMembers?.g ?? 0) + 1 };
          const free = freeOf(h, effectiveOvercommit(h));
          if (free.vcpus < 0 || free.memoryMiB < 0 || free.diskGiB < 0 || !h.up) return false;
        }
        return true;
      }),
    );
  });

  it('accounts for every rejected host in the explanation (property)', () => {
    fc.assert(
      fc.property(arbFleet, arbReq, (hosts, r) => {
        const p = place(hosts, r);
        const removed = p.filters.reduce((n, f) => n + f.removed, 0);
        const listed = p.filters.reduce(
          (n, f) => n + f.reasons.reduce((m, why) => m + Number(/^(\d+) host/.exec(why)![1]), 0),
          0,
        );
        if (listed !== removed) return false;
        return p.ok ? removed < hosts.length : removed === hosts.length;
      }),
    );
  });

  it('decides over a kept fleet with claims exactly as over a fresh snapshot each time (property)', () => {
    fc.assert(
      fc.property(arbFleet, fc.array(arbReq, { minLength: 1, maxLength: 30 }), (fleet, reqs) => {
        const hosts = fleet.map((h) => structuredClone(h));
        const before = structuredClone(fleet);
        const kept = new Fleet(fleet);
        for (const r of reqs) {
          const fresh = place(hosts, r);
          const p = kept.place(r);
          expect(p).toEqual(fresh);
          if (!p.ok) continue;
          kept.claim(p.hostId, r);
          const h = hosts.find((x) => x.id === p.hostId)!;
          h.allocated = {
            vcpus: h.allocated.vcpus + r.vcpus,
            memoryMiB: h.allocated.memoryMiB + r.memoryMiB,
            diskGiB: h.allocated.diskGiB + r.diskGiB,
          };
          if (r.serverGroup) h.groupMembers = { g: (h.groupMembers?.g ?? 0) + 1 };
        }
        // The snapshot it was built from is left as it was.
        expect(fleet).toEqual(before);
      }),
    );
  });

  it('refuses a claim on a host outside the snapshot', () => {
    expect(() => new Fleet([host('a')]).claim('b', { vcpus: 1, memoryMiB: 1, diskGiB: 1 })).toThrow(
      /not in this snapshot/,
    );
  });

  it('reads the weighers and default ratios an operator configures, and refuses anything else', () => {
    expect(parseWeighers('spread')).toEqual({ ram: 1, cpu: 0.5, disk: 0.1, softAffinity: 1 });
    expect(parseWeighers(' PACK ')).toEqual(PACK);
    expect(parseWeighers('ram=-2, soft=3')).toEqual({ ram: -2, cpu: 0.5, disk: 0.1, softAffinity: 3 });
    expect(() => parseWeighers('ram=x')).toThrow(/expected spread, pack/);
    expect(() => parseWeighers('gpu=1')).toThrow(/expected spread, pack/);
    expect(parseOvercommit('')).toEqual({ cpu: 4, ram: 1, disk: 1 });
    expect(parseOvercommit('cpu=8,ram=1.5')).toEqual({ cpu: 8, ram: 1.5, disk: 1 });
    expect(() => parseOvercommit('cpu=0')).toThrow(/N > 0/);
    expect(() => parseOvercommit('net=2')).toThrow(/expected cpu=N/);
    // Configured ratios apply where a host and its aggregates set none.
    const h = [host('a', { vcpus: 2 })];
    const r = { vcpus: 12, memoryMiB: 512, diskGiB: 1, firmware: 'bios' as const };
    expect(place(h, r).ok).toBe(false);
    expect(place(h, r, { overcommit: parseOvercommit('cpu=8') }).ok).toBe(true);
  });
});
