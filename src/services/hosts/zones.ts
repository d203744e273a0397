import type { Database } from '../../platform/db/database.js';

/** One availability zone: its hosts, their capacity and what instances have been given. */
export interface ZoneView {
  name: string;
  hosts: number;
  hostsUp: number;
  hostsEnabled: number;
  hostsInMaintenance: number;
  hostNames: string[];
  capacity: { vcpus: number; memoryMiB: number; diskGiB: number };
  allocated: { instances: number; vcpus: number; memoryMiB: number; diskGiB: number };
}

/**
 * Availability zones as the hosts define them (a zone exists while a host is in it), with host
 * counts, raw capacity (before overcommit) and the sum of live instances' sizes, by zone name.
 */
export async function listZones(database: Database, zone?: string): Promise<{ items: ZoneView[] }> {
  let hostsQ = database.db
    .selectFrom('hosts')
    .select(['id', 'name', 'zone', 'state', 'enabled', 'maintenance', 'vcpus', 'memory_mib', 'disk_gib'])
    .orderBy('name');
  if (zone !== undefined) hostsQ = hostsQ.where('zone', '=', zone);
  const hosts = await hostsQ.execute();
  const alloc = await database.db
    .selectFrom('instances')
    .select([
      'host_id',
      (eb) => eb.fn.countAll<number | string>().as('n'),
      (eb) => eb.fn.sum<number | string>('vcpus').as('v'),
      (eb) => eb.fn.sum<number | string>('memory_mib').as('m'),
      (eb) => eb.fn.sum<number | string>('disk_gib').as('d'),
    ])
    .where('deleted_at', 'is', null)
    .where('host_id', 'is not', null)
    .groupBy('host_id')
    .execute();
  const byHost = new Map(alloc.map((a) => [a.host_id, a]));
  const zones = new Map<string, ZoneView>();
  for (const h of hosts) {
    let z = zones.get(h.zone);
    if (!z) {
      z = {
        name: h.zone,
        hosts: 0,
        hostsUp: 0,
        hostsEnabled: 0,
        hostsInMaintenance: 0,
        hostNames: [],
        capacity: { vcpus: 0, memoryMiB: 0, diskGiB: 0 },
        allocated: { instances: 0, vcpus: 0, memoryMiB: 0, diskGiB: 0 },
      };
      zones.set(h.zone, z);
    }
    z.hosts++;
    if (h.state === 'up') z.hostsUp++;
    if (h.enabled === 1) z.hostsEnabled++;
    if (h.maintenance === 1) z.hostsInMaintenance++;
    z.hostNames.push(h.name);
    z.capacity.vcpus += h.vcpus;
    z.capacity.memoryMiB += h.memory_mib;
    z.capacity.diskGiB += h.disk_gib;
    const a = byHost.get(h.id);
    if (a) {
      z.allocated.instances += Number(a.n);
      z.allocated.vcpus += Number(a.v ?? 0);
      z.allocated.memoryMiB += Number(a.m ?? 0);
      z.allocated.diskGiB += Number(a.d ?? 0);
    }
  }
  return { items: [...zones.values()].sort((a, b) => a.name.localeCompare(b.name)) };
}
