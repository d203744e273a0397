import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type HostSnapshot, place } from './placement.js';

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
});
