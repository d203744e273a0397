import { createHash } from 'node:crypto';
import { type AuditInput, appendAudit } from '../../platform/audit/audit.js';
import type { Sealer } from '../../platform/crypto/sealer.js';
import { type Database, isUniqueViolation, type Tx } from '../../platform/db/database.js';
import type { FlavorsTable, InstanceState, InstancesTable } from '../../platform/db/schema.js';
import { notFound, YunhaiError } from '../../platform/errors.js';
import { type Page, type PageQuery, stringCursor, toPage } from '../../platform/http/pagination.js';
import { newId } from '../../platform/ids.js';
import { type Action, requireAllowed } from '../../platform/policy/authorize.js';
import { auditFor, guard as guardAndAudit } from '../../platform/policy/guard.js';
import { principalLabel, type RequestContext } from '../../platform/policy/principal.js';
import { releaseQuota, reserveQuota } from '../../platform/quota/quota.js';
import { recordUsage, type UsageInput } from '../../platform/usage/ledger.js';
import type { HostNotifier } from '../hosts/notifier.js';
import type { ImageService } from '../images/service.js';
import {
  type AggregateSnapshot,
  Fleet,
  type HostSnapshot,
  type Overcommit,
  type Placement,
  type PlacementRequest,
  place,
  type SchedulerConfig,
} from '../scheduler/placement.js';
import { createConsolidation } from './consolidation-service.js';
import { lockedInstance } from './instance-lock.js';
import { ACTIVE_MIGRATION_STATES, createLiveMigrations, type DesiredMigration } from './live-migration.js';
import { createServerGroupService } from './server-groups.js';

/** Compute meters written to the usage ledger (see the billing catalogue). */
export const COMPUTE_METERS = {
  instanceSeconds: 'compute.instance-seconds',
  vcpuSeconds: 'compute.vcpu-seconds',
  memoryMiBSeconds: 'compute.memory-mib-seconds',
} as const;

export interface FlavorView {
  id: string;
  name: string;
  tenantId: string | null;
  vcpus: number;
  memoryMiB: number;
  diskGiB: number;
  maxVcpus: number;
  maxMemoryMiB: number;
  /** Aggregate metadata its hosts must carry. */
  extraSpecs: Record<string, string>;
  public: boolean;
}

export interface InstanceView {
  id: string;
  tenantId: string;
  name: string;
  imageId: string;
  flavorId: string;
  hostId: string | null;
  state: InstanceState;
  desiredState: InstancesTable['desired_state'];
  vcpus: number;
  memoryMiB: number;
  diskGiB: number;
  maxVcpus: number;
  maxMemoryMiB: number;
  keyName: string | null;
  errorReason: string | null;
  guestReady: boolean;
  zone: string | null;
  serverGroupId: string | null;
  /** Rebuilt on another host when its host goes down. */
  ha: boolean;
  createdAt: string;
  launchedAt: string | null;
}

export const flavorView = (f: FlavorsTable): FlavorView => ({
  id: f.id,
  name: f.name,
  tenantId: f.tenant_id,
  vcpus: f.vcpus,
  memoryMiB: f.memory_mib,
  diskGiB: f.disk_gib,
  maxVcpus: f.max_vcpus,
  maxMemoryMiB: f.max_memory_mib,
  extraSpecs: JSON.parse(f.extra_specs ?? '{}') as Record<string, string>,
  public: f.tenant_id === null,
});

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export const instanceView = (i: InstancesTable): InstanceView => ({
  id: i.id,
  tenantId: i.tenant_id,
  name: i.name,
  imageId: i.image_id,
  flavorId: i.flavor_id,
  hostId: i.host_id,
  state: i.state,
  desiredState: i.desired_state,
  vcpus: i.vcpus,
  memoryMiB: i.memory_mib,
  diskGiB: i.disk_gib,
  maxVcpus: i.max_vcpus,
  maxMemoryMiB: i.max_memory_mib,
  keyName: i.key_name,
  errorReason: i.error_reason,
  guestReady: i.guest_ready_at !== null,
  zone: i.zone,
  serverGroupId: i.server_group_id,
  ha: i.ha === 1,
  createdAt: iso(i.created_at)!,
  launchedAt: iso(i.launched_at),
});

/** Flavors every fresh install has. `tiny.*` suits the built-in tiny guest. */
/** A flavor's extra specs: aggregate metadata its hosts must carry (empty: any host). */
const specsOf = (f: Pick<FlavorsTable, 'extra_specs'>): Record<string, string> | undefined => {
  const specs = JSON.parse(f.extra_specs || '{}') as Record<string, string>;
  return Object.keys(specs).length ? specs : undefined;
};

export const DEFAULT_FLAVORS: Array<
  Omit<FlavorsTable, 'id' | 'created_at' | 'tenant_id' | 'disabled' | 'extra_specs'>
> = [
  { name: 'tiny.small', vcpus: 1, memory_mib: 256, disk_gib: 1, max_vcpus: 2, max_memory_mib: 512 },
  { name: 'tiny.medium', vcpus: 1, memory_mib: 512, disk_gib: 2, max_vcpus: 2, max_memory_mib: 1024 },
  { name: 'm1.small', vcpus: 1, memory_mib: 2048, disk_gib: 20, max_vcpus: 2, max_memory_mib: 4096 },
  { name: 'm1.medium', vcpus: 2, memory_mib: 4096, disk_gib: 40, max_vcpus: 4, max_memory_mib: 8192 },
  { name: 'm1.large', vcpus: 4, memory_mib: 8192, disk_gib: 80, max_vcpus: 8, max_memory_mib: 16384 },
];

/** What an agent receives for each instance on its host. */
export interface DesiredInstance {
  id: string;
  name: string;
  desiredState: InstancesTable['desired_state'];
  rebootSeq: number;
  powerSeq: number;
  vcpus: number;
  memoryMiB: number;
  maxVcpus: number;
  maxMemoryMiB: number;
  diskGiB: number;
  image: {
    id: string;
    format: string;
    firmware: 'bios' | 'uefi';
    cmdline: string | null;
    files: Record<string, { size: number; sha256: string }>;
  };
  cloudInit: { userData?: string; metaData: Record<string, string> };
  /** Set while the instance is being live-migrated to or from this host. */
  migration?: DesiredMigration;
}

export type AgentEvent =
  | { type: 'running' }
  | { type: 'guest-ready' }
  /** `powerSeq`: the power cycle the report is about; a report about an older cycle changes nothing. */
  | { type: 'stopped'; reason?: string; powerSeq?: number }
  | { type: 'crashed' | 'error'; reason: string; consoleTail?: string; powerSeq?: number }
  | { type: 'resized'; vcpus: number; memoryMiB: number }
  | { type: 'deleted' };

const ACTIVE_STATES: InstanceState[] = [
  'building',
  'starting',
  'running',
  'rebooting',
  'resizing',
  'stopping',
];

export function sshFingerprint(publicKey: string): string {
  const parts = publicKey.trim().split(/\s+/);
  const blob = Buffer.from(parts[1] ?? '', 'base64');
  if (!/^(ssh-(rsa|ed25519|dss)|ecdsa-sha2-nistp(256|384|521))$/.test(parts[0] ?? '') || blob.length < 32) {
    throw new YunhaiError(
      'ValidationError',
      'The public key is not an OpenSSH public key (ssh-ed25519, ssh-rsa or ecdsa-sha2-*).',
    );
  }
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

export function createComputeService(deps: {
  database: Database;
  sealer: Sealer;
  images: ImageService;
  notifier: HostNotifier;
  now?: () => number;
  /** How long creates may reuse a compiled fleet snapshot (see chooseHost); 0 reads it each time. */
  placementCacheMs?: number;
  /** Default overcommit ratios and weighers (spread unless configured). */
  scheduler?: SchedulerConfig;
}) {
  const { database, images, notifier } = deps;
  const now = deps.now ?? Date.now;
  const keepMs = deps.placementCacheMs ?? 1000;
  const scheduler: SchedulerConfig = deps.scheduler ?? {};

  const auditOf = (
    ctx: RequestContext,
    action: string,
    resource: string,
    tenantId: string,
    extra: Partial<AuditInput> = {},
  ) => auditFor(ctx, action, resource, { tenantId, ...extra });
  const guard = (ctx: RequestContext, action: Action, tenantId: string | null, label: string) =>
    guardAndAudit(database, ctx, action, { tenantId }, label);

  async function visibleInstance(ctx: RequestContext, id: string, action: Action) {
    const i = await database.db
      .selectFrom('instances')
      .selectAll()
      .where('id', '=', id)
      .where('deleted_at', 'is', null)
      .executeTakeFirst();
    if (!i || (ctx.principal.role !== 'platform-admin' && i.tenant_id !== ctx.principal.tenantId))
      throw notFound('Instance', id);
    await guard(ctx, action, i.tenant_id, `instance/${i.id}`);
    return i;
  }

  async function resolveFlavor(ctx: RequestContext, idOrName: string) {
    const rows = await database.db
      .selectFrom('flavors')
      .selectAll()
      .where((eb) => eb.or([eb('id', '=', idOrName), eb('name', '=', idOrName)]))
      .where((eb) => eb.or([eb('tenant_id', 'is', null), eb('tenant_id', '=', ctx.principal.tenantId)]))
      .where('disabled', '=', 0)
      .execute();
    const f = rows.find((r) => r.tenant_id !== null) ?? rows[0];
    if (!f) throw notFound('Flavor', idOrName);
    return f;
  }

  /** Writes usage for the instance's running time since `metered_to`, in whole seconds. */
  async function meter(trx: Tx, i: InstancesTable, until: number, stop: boolean): Promise<number | null> {
    if (i.metered_to === null) return null;
    // Never backwards: a pass that read the clock before another pass committed meters nothing.
    const secs = Math.max(0, Math.floor((until - i.metered_to) / 1000));
    const to = i.metered_to + secs * 1000;
    if (secs > 0) {
      const flavor = await trx
        .selectFrom('flavors')
        .select('name')
        .where('id', '=', i.flavor_id)
        .executeTakeFirst();
      const base = {
        tenantId: i.tenant_id,
        service: 'compute',
        resourceId: i.id,
        periodStart: i.metered_to,
        periodEnd: to,
      };
      const rows: UsageInput[] = [
        {
          ...base,
          meter: `${COMPUTE_METERS.instanceSeconds}:${flavor?.name ?? i.flavor_id}`,
          quantity: secs,
          idempotencyKey: `${i.id}:inst:${i.metered_to}`,
        },
        {
          ...base,
          meter: COMPUTE_METERS.vcpuSeconds,
          quantity: secs * i.vcpus,
          idempotencyKey: `${i.id}:vcpu:${i.metered_to}`,
        },
        {
          ...base,
          meter: COMPUTE_METERS.memoryMiBSeconds,
          quantity: secs * i.memory_mib,
          idempotencyKey: `${i.id}:mem:${i.metered_to}`,
        },
      ];
      await recordUsage(trx, rows);
    }
    const next = stop ? null : to;
    await trx.updateTable('instances').set({ metered_to: next }).where('id', '=', i.id).execute();
    return next;
  }

  /** Hosts with their allocations, for placement; `onlyHost` narrows it to one (a re-check). */
  async function hostSnapshot(trx: Tx, groupId?: string, onlyHost?: string): Promise<HostSnapshot[]> {
    // Only what placement reads: this runs for every create over every host.
    let hq = trx
      .selectFrom('hosts')
      .select([
        'id',
        'name',
        'state',
        'enabled',
        'maintenance',
        'zone',
        'accelerator',
        'vcpus',
        'memory_mib',
        'disk_gib',
        'firmware',
        'overcommit',
      ]);
    if (onlyHost) hq = hq.where('id', '=', onlyHost);
    const hosts = await hq.execute();
    let aq = trx
      .selectFrom('instances')
      .select([
        'host_id',
        (eb) => eb.fn.sum<number | string>('vcpus').as('v'),
        (eb) => eb.fn.sum<number | string>('memory_mib').as('m'),
        (eb) => eb.fn.sum<number | string>('disk_gib').as('d'),
      ])
      .where('deleted_at', 'is', null);
    aq = onlyHost ? aq.where('host_id', '=', onlyHost) : aq.where('host_id', 'is not', null);
    const alloc = await aq.groupBy('host_id').execute();
    const by = new Map(alloc.map((a) => [a.host_id, { v: Number(a.v), m: Number(a.m), d: Number(a.d) }]));
    // An instance migrating in holds its room on the target until the move ends.
    const incoming = await trx
      .selectFrom('instance_migrations')
      .innerJoin('instances', 'instances.id', 'instance_migrations.instance_id')
      .select([
        'instance_migrations.target_host',
        'instances.vcpus',
        'instances.memory_mib',
        'instances.disk_gib',
      ])
      .where('instance_migrations.state', 'in', [...ACTIVE_MIGRATION_STATES])
      .whereRef('instances.host_id', '!=', 'instance_migrations.target_host')
      .execute();
    for (const r of incoming) {
      const a = by.get(r.target_host) ?? { v: 0, m: 0, d: 0 };
      by.set(r.target_host, { v: a.v + r.vcpus, m: a.m + r.memory_mib, d: a.d + r.disk_gib });
    }
    const aggRows = await trx
      .selectFrom('aggregate_hosts')
      .innerJoin('aggregates', 'aggregates.id', 'aggregate_hosts.aggregate_id')
      .select(['aggregate_hosts.host_id', 'aggregates.name', 'aggregates.metadata', 'aggregates.overcommit'])
      .execute();
    const aggs = new Map<string, AggregateSnapshot[]>();
    for (const a of aggRows) {
      const list = aggs.get(a.host_id) ?? [];
      list.push({
        name: a.name,
        metadata: JSON.parse(a.metadata) as Record<string, string>,
        overcommit: a.overcommit === null ? undefined : (JSON.parse(a.overcommit) as Partial<Overcommit>),
      });
      aggs.set(a.host_id, list);
    }
    const members = new Map<string, number>();
    if (groupId) {
      const rows = await trx
        .selectFrom('instances')
        .select(['host_id', (eb) => eb.fn.countAll<number | string>().as('n')])
        .where('server_group_id', '=', groupId)
        .where('deleted_at', 'is', null)
        .where('host_id', 'is not', null)
        .groupBy('host_id')
        .execute();
      for (const r of rows) members.set(r.host_id!, Number(r.n));
    }
    return hosts.map((h) => {
      const a = by.get(h.id);
      return {
        id: h.id,
        name: h.name,
        up: h.state === 'up',
        enabled: h.enabled === 1,
        maintenance: h.maintenance === 1,
        zone: h.zone,
        accelerator: h.accelerator === 'kvm' ? 'kvm' : 'tcg',
        vcpus: h.vcpus,
        memoryMiB: h.memory_mib,
        diskGiB: h.disk_gib,
        firmware: JSON.parse(h.firmware) as string[],
        aggregates: aggs.get(h.id),
        overcommit: h.overcommit === null ? undefined : (JSON.parse(h.overcommit) as Partial<Overcommit>),
        allocated: { vcpus: Number(a?.v ?? 0), memoryMiB: Number(a?.m ?? 0), diskGiB: Number(a?.d ?? 0) },
        groupMembers: groupId ? { [groupId]: members.get(h.id) ?? 0 } : undefined,
      };
    });
  }

  /**
   * Where an existing instance may go (HA rebuild, evacuation, migration): placed like a create,
   * never on `exclude`, and only on `only` when the admin names a host.
   */
  async function placementFor(trx: Tx, i: InstancesTable, opts: { exclude: string[]; only?: string }) {
    const image = await trx
      .selectFrom('images')
      .select('firmware')
      .where('id', '=', i.image_id)
      .executeTakeFirst();
    const flavor = await trx
      .selectFrom('flavors')
      .select('extra_specs')
      .where('id', '=', i.flavor_id)
      .executeTakeFirst();
    const group = i.server_group_id
      ? await trx
          .selectFrom('server_groups')
          .selectAll()
          .where('id', '=', i.server_group_id)
          .executeTakeFirst()
      : undefined;
    const hosts = await hostSnapshot(trx, group?.id);
    return place(
      opts.only ? hosts.filter((h) => h.id === opts.only) : hosts,
      {
        vcpus: i.vcpus,
        memoryMiB: i.memory_mib,
        diskGiB: i.disk_gib,
        firmware: image?.firmware === 'uefi' ? 'uefi' : 'bios',
        zone: i.zone ?? undefined,
        requiredMetadata: flavor ? specsOf(flavor) : undefined,
        tenantId: i.tenant_id,
        serverGroup: group ? { id: group.id, name: group.name, policy: group.policy } : undefined,
        excludeHosts: opts.exclude,
      },
      scheduler,
    );
  }

  /** A compiled fleet snapshot kept between creates, with this process's own creates claimed on it. */
  let kept: { fleet: Fleet; at: number } | undefined;

  /**
   * Where a create goes. Reading and compiling every host's row and allocations is what a create
   * costs on a large fleet, so without a server group a snapshot compiled at most `keepMs` ago
   * (real time) decides; the caller re-checks the pick against that host's fresh row under its
   * lock, and when the kept snapshot was stale (the pick fails there, or nothing fits in it) a
   * fresh snapshot decides. So staleness can only make a pick less than best, never wrong.
   */
  async function chooseHost(
    trx: Tx,
    req: PlacementRequest,
    groupId: string | undefined,
    fresh: boolean,
  ): Promise<{ p: Placement; kept: boolean }> {
    if (groupId || keepMs <= 0 || fresh)
      return { p: place(await hostSnapshot(trx, groupId), req, scheduler), kept: false };
    const t = Date.now();
    if (!kept || t - kept.at > keepMs) kept = { fleet: new Fleet(await hostSnapshot(trx), scheduler), at: t };
    const p = kept.fleet.place(req);
    if (p.ok) return { p, kept: true };
    kept = undefined;
    return chooseHost(trx, req, groupId, true);
  }

  /**
   * For each placed instance, the hosts whose static filters accept it (zone, accelerator,
   * firmware, tenant isolation, aggregate metadata), as the scheduler judges them: consolidation
   * moves an instance only there. Instances asking the same are judged once.
   */
  async function acceptingHosts(instanceIds: string[]): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    if (instanceIds.length === 0) return out;
    return database.tx(async (trx) => {
      const rows = await trx
        .selectFrom('instances')
        .leftJoin('images', 'images.id', 'instances.image_id')
        .leftJoin('flavors', 'flavors.id', 'instances.flavor_id')
        .select([
          'instances.id',
          'instances.tenant_id',
          'instances.zone',
          'images.firmware',
          'flavors.extra_specs',
        ])
        .where('instances.id', 'in', instanceIds)
        .execute();
      // Resources and groups are the planner's business: judge each host as if it were empty.
      const snapshot = (await hostSnapshot(trx)).map((h) => ({
        ...h,
        allocated: { vcpus: 0, memoryMiB: 0, diskGiB: 0 },
      }));
      const fleet = new Fleet(snapshot, scheduler);
      const judged = new Map<string, string[]>();
      for (const r of rows) {
        const req: PlacementRequest = {
          vcpus: 0,
          memoryMiB: 0,
          diskGiB: 0,
          firmware: r.firmware === 'uefi' ? 'uefi' : 'bios',
          zone: r.zone ?? undefined,
          requiredMetadata: r.extra_specs ? specsOf({ extra_specs: r.extra_specs }) : undefined,
          tenantId: r.tenant_id,
        };
        const key = JSON.stringify(req);
        let hosts = judged.get(key);
        if (!hosts) {
          hosts = fleet.accepting(req);
          judged.set(key, hosts);
        }
        out.set(r.id, hosts);
      }
      return out;
    });
  }

  /** Bumps the host's generation (also takes its row lock on PostgreSQL) so its agent re-reads. */
  const touchHost = (trx: Tx, hostId: string) =>
    trx
      .updateTable('hosts')
      .set((eb) => ({ generation: eb('generation', '+', 1) }))
      .where('id', '=', hostId)
      .execute();

  async function releaseInstanceQuota(trx: Tx, i: InstancesTable) {
    await releaseQuota(trx, i.tenant_id, 'instances', 1);
    await releaseQuota(trx, i.tenant_id, 'vcpus', i.vcpus);
    await releaseQuota(trx, i.tenant_id, 'memoryMiB', i.memory_mib);
  }

  async function finishDelete(trx: Tx, i: InstancesTable, ts: number) {
    await meter(trx, i, ts, true);
    await trx
      .updateTable('instances')
      .set({ state: 'deleted', deleted_at: ts, updated_at: ts, metered_to: null })
      .where('id', '=', i.id)
      .execute();
    await releaseInstanceQuota(trx, i);
  }

  /** Changes desired state and moves to a transitional state; the agent does the rest. */
  async function transition(
    ctx: RequestContext,
    id: string,
    action: Action,
    change: (i: InstancesTable) => Partial<InstancesTable>,
  ) {
    const i = await visibleInstance(ctx, id, action);
    await notMigrating(i.id);
    const patch = change(i);
    const updated = await database.tx(async (trx) => {
      await trx
        .updateTable('instances')
        .set({ ...patch, updated_at: now() })
        .where('id', '=', i.id)
        .execute();
      if (i.host_id) await touchHost(trx, i.host_id);
      await appendAudit(trx, auditOf(ctx, action, `instance/${i.id}`, i.tenant_id, { details: patch }));
      return { ...i, ...patch };
    });
    if (i.host_id) notifier.notify(i.host_id);
    return instanceView(updated);
  }

  /** Rebuilds an instance of a lost host on another host (same image, a fresh disk), fenced by power_seq. */
  async function rebuildElsewhere(
    trx: Tx,
    i: InstancesTable,
    hostId: string,
    why: string,
    principal: string,
  ) {
    const ts = now();
    const target = await placementFor(trx, i, { exclude: [hostId] });
    await meter(trx, i, ts, true);
    if (!target.ok) return target;
    await touchHost(trx, target.hostId);
    await trx
      .updateTable('instances')
      .set({
        host_id: target.hostId,
        // A stopped instance moves stopped (its agent defines it there at its next start).
        state: i.desired_state === 'stopped' ? 'stopped' : 'building',
        error_reason: null,
        guest_ready_at: null,
        target_vcpus: null,
        target_memory_mib: null,
        power_seq: i.power_seq + 1,
        updated_at: ts,
      })
      .where('id', '=', i.id)
      .execute();
    await appendAudit(trx, {
      tenantId: i.tenant_id,
      principal,
      action: 'compute:EvacuateInstance',
      resource: `instance/${i.id}`,
      outcome: 'success',
      sourceIp: 'local',
      requestId: 'monitor',
      details: { from: hostId, to: target.hostId, reason: why },
    });
    return target;
  }

  const hostByIdOrName = async (host: string) => {
    const h = await database.db
      .selectFrom('hosts')
      .selectAll()
      .where((eb) => eb.or([eb('id', '=', host), eb('name', '=', host)]))
      .executeTakeFirst();
    if (!h) throw notFound('Host', host);
    return h;
  };

  const serverGroups = createServerGroupService({ database, now });
  const migrations = createLiveMigrations({ database, notifier, now, placementFor, touchHost });
  const consolidation = createConsolidation({
    database,
    migrations,
    now,
    acceptingHosts,
    overcommit: scheduler.overcommit,
  });

  /** Power and size changes wait until a live migration has ended. */
  async function notMigrating(id: string) {
    if (await migrations.isMigrating(id))
      throw new YunhaiError(
        'Conflict',
        `Instance ${id} is being live-migrated; try again when it has moved.`,
      );
  }

  return {
    serverGroups,
    migrations,
    consolidation,

    async seedDefaultFlavors() {
      const any = await database.db.selectFrom('flavors').select('id').limit(1).execute();
      if (any.length) return;
      await database.db
        .insertInto('flavors')
        .values(
          DEFAULT_FLAVORS.map((f) => ({
            ...f,
            id: newId('flv'),
            tenant_id: null,
            extra_specs: '{}',
            disabled: 0,
            created_at: now(),
          })),
        )
        .execute();
    },

    // ---- flavors -------------------------------------------------------------------------
    async listFlavors(ctx: RequestContext): Promise<Page<FlavorView>> {
      await guard(ctx, 'compute:ListFlavors', ctx.principal.tenantId, 'flavors');
      let q = database.db
        .selectFrom('flavors')
        .selectAll()
        .where('disabled', '=', 0)
        .orderBy('vcpus')
        .orderBy('memory_mib')
        .orderBy('name');
      if (ctx.principal.role !== 'platform-admin')
        q = q.where((eb) =>
          eb.or([eb('tenant_id', 'is', null), eb('tenant_id', '=', ctx.principal.tenantId)]),
        );
      return { items: (await q.execute()).map(flavorView), nextCursor: null };
    },

    async createFlavor(
      ctx: RequestContext,
      input: {
        name: string;
        vcpus: number;
        memoryMiB: number;
        diskGiB: number;
        maxVcpus?: number;
        maxMemoryMiB?: number;
        tenantId?: string;
        extraSpecs?: Record<string, string>;
      },
    ) {
      await guard(ctx, 'compute:CreateFlavor', null, `flavor/${input.name}`);
      const maxVcpus = input.maxVcpus ?? input.vcpus;
      const maxMem = input.maxMemoryMiB ?? input.memoryMiB;
      if (maxVcpus < input.vcpus || maxMem < input.memoryMiB)
        throw new YunhaiError(
          'ValidationError',
          'maxVcpus and maxMemoryMiB must be at least vcpus and memoryMiB.',
        );
      const row: FlavorsTable = {
        id: newId('flv'),
        tenant_id: input.tenantId ?? null,
        name: input.name,
        vcpus: input.vcpus,
        memory_mib: input.memoryMiB,
        disk_gib: input.diskGiB,
        max_vcpus: maxVcpus,
        max_memory_mib: maxMem,
        extra_specs: JSON.stringify(input.extraSpecs ?? {}),
        disabled: 0,
        created_at: now(),
      };
      await database.tx(async (trx) => {
        const dup = await trx
          .selectFrom('flavors')
          .select('id')
          .where('name', '=', input.name)
          .where('disabled', '=', 0)
          .execute();
        if (dup.length) throw new YunhaiError('AlreadyExists', `Flavor ${input.name} already exists.`);
        await trx.insertInto('flavors').values(row).execute();
        await appendAudit(
          trx,
          auditOf(ctx, 'compute:CreateFlavor', `flavor/${row.name}`, ctx.principal.tenantId, {
            details: { id: row.id },
          }),
        );
      });
      return flavorView(row);
    },

    async deleteFlavor(ctx: RequestContext, idOrName: string) {
      await guard(ctx, 'compute:DeleteFlavor', null, `flavor/${idOrName}`);
      const f = await resolveFlavor(ctx, idOrName);
      // Instances keep referring to it, so a flavor is disabled rather than removed.
      await database.tx(async (trx) => {
        await trx.updateTable('flavors').set({ disabled: 1 }).where('id', '=', f.id).execute();
        await appendAudit(
          trx,
          auditOf(ctx, 'compute:DeleteFlavor', `flavor/${f.name}`, ctx.principal.tenantId),
        );
      });
    },

    // ---- key pairs -----------------------------------------------------------------------
    async importKeyPair(ctx: RequestContext, input: { name: string; publicKey: string }) {
      await guard(ctx, 'compute:ImportKeyPair', ctx.principal.tenantId, `key-pair/${input.name}`);
      const fingerprint = sshFingerprint(input.publicKey);
      const row = {
        id: newId('key'),
        tenant_id: ctx.principal.tenantId,
        name: input.name,
        public_key: input.publicKey.trim(),
        fingerprint,
        created_at: now(),
      };
      await database.tx(async (trx) => {
        try {
          await trx.insertInto('key_pairs').values(row).execute();
        } catch (e) {
          if (isUniqueViolation(e))
            throw new YunhaiError('AlreadyExists', `Key pair ${input.name} already exists.`);
          throw e;
        }
        await appendAudit(trx, auditOf(ctx, 'compute:ImportKeyPair', `key-pair/${row.name}`, row.tenant_id));
      });
      return { id: row.id, name: row.name, fingerprint, createdAt: iso(row.created_at)! };
    },

    async listKeyPairs(ctx: RequestContext) {
      await guard(ctx, 'compute:ListKeyPairs', ctx.principal.tenantId, 'key-pairs');
      const rows = await database.db
        .selectFrom('key_pairs')
        .selectAll()
        .where('tenant_id', '=', ctx.principal.tenantId)
        .orderBy('name')
        .execute();
      return {
        items: rows.map((r) => ({
          id: r.id,
          name: r.name,
          fingerprint: r.fingerprint,
          createdAt: iso(r.created_at)!,
        })),
        nextCursor: null,
      };
    },

    async deleteKeyPair(ctx: RequestContext, name: string) {
      await guard(ctx, 'compute:DeleteKeyPair', ctx.principal.tenantId, `key-pair/${name}`);
      await database.tx(async (trx) => {
        const r = await trx
          .deleteFrom('key_pairs')
          .where('tenant_id', '=', ctx.principal.tenantId)
          .where('name', '=', name)
          .executeTakeFirst();
        if (Number(r.numDeletedRows) === 0) throw notFound('Key pair', name);
        await appendAudit(
          trx,
          auditOf(ctx, 'compute:DeleteKeyPair', `key-pair/${name}`, ctx.principal.tenantId),
        );
      });
    },

    // ---- instances -----------------------------------------------------------------------
    async createInstance(
      ctx: RequestContext,
      input: {
        name: string;
        image: string;
        flavor: string;
        userData?: string;
        keyName?: string;
        password?: string;
        /** Availability zone to place in. */
        zone?: string;
        /** Server group (id or name) to join; its policy constrains placement. */
        serverGroup?: string;
        /** Rebuild it on another host when its host goes down. */
        ha?: boolean;
      },
    ) {
      await guard(ctx, 'compute:RunInstance', ctx.principal.tenantId, `instance/${input.name}`);
      const group = input.serverGroup ? await serverGroups.resolve(ctx, input.serverGroup) : undefined;
      const image = await images.resolve(ctx, input.image);
      if (image.status !== 'available')
        throw new YunhaiError(
          'InvalidState',
          `Image ${image.id} is ${image.status}${image.error ? `: ${image.error}` : ''}.`,
        );
      const flavor = await resolveFlavor(ctx, input.flavor);
      if (image.min_disk_gib > flavor.disk_gib) {
        throw new YunhaiError(
          'ValidationError',
          `Image ${image.name} needs a ${image.min_disk_gib} GiB disk; flavor ${flavor.name} has ${flavor.disk_gib} GiB.`,
        );
      }
      if (input.keyName) {
        const k = await database.db
          .selectFrom('key_pairs')
          .select('id')
          .where('tenant_id', '=', ctx.principal.tenantId)
          .where('name', '=', input.keyName)
          .executeTakeFirst();
        if (!k) throw notFound('Key pair', input.keyName);
      }
      const tenantId = ctx.principal.tenantId;
      const id = newId('i');
      const req: PlacementRequest = {
        vcpus: flavor.vcpus,
        memoryMiB: flavor.memory_mib,
        diskGiB: flavor.disk_gib,
        firmware: image.firmware,
        zone: input.zone,
        requiredMetadata: specsOf(flavor),
        tenantId,
        serverGroup: group ? { id: group.id, name: group.name, policy: group.policy } : undefined,
      };
      const created = await database
        .tx(async (trx) => {
          await reserveQuota(trx, tenantId, 'instances', 1);
          await reserveQuota(trx, tenantId, 'vcpus', flavor.vcpus);
          await reserveQuota(trx, tenantId, 'memoryMiB', flavor.memory_mib);
          // Creates in one server group take its row lock first, so their policy is judged one at a time.
          if (group)
            await trx
              .updateTable('server_groups')
              .set({ policy: group.policy })
              .where('id', '=', group.id)
              .execute();
          let choice = await chooseHost(trx, req, group?.id, false);
          let p = choice.p;
          if (!p.ok) throw new YunhaiError('InsufficientCapacity', p.message, { filters: p.filters });
          await touchHost(trx, p.hostId);
          // Re-check under the host's row lock: a concurrent create may have taken the room (or the
          // kept snapshot was stale: then a fresh one decides).
          let again = place(await hostSnapshot(trx, group?.id, p.hostId), req, scheduler);
          if (!again.ok && choice.kept) {
            kept = undefined;
            choice = await chooseHost(trx, req, group?.id, true);
            p = choice.p;
            if (!p.ok) throw new YunhaiError('InsufficientCapacity', p.message, { filters: p.filters });
            await touchHost(trx, p.hostId);
            again = place(await hostSnapshot(trx, group?.id, p.hostId), req, scheduler);
          }
          if (!again.ok)
            throw new YunhaiError('InsufficientCapacity', again.message, { filters: again.filters });
          if (choice.kept) kept?.fleet.claim(p.hostId, req);
          const ts = now();
          const row: InstancesTable = {
            id,
            tenant_id: tenantId,
            name: input.name,
            image_id: image.id,
            flavor_id: flavor.id,
            host_id: p.hostId,
            state: 'building',
            desired_state: 'running',
            vcpus: flavor.vcpus,
            memory_mib: flavor.memory_mib,
            disk_gib: flavor.disk_gib,
            max_vcpus: flavor.max_vcpus,
            max_memory_mib: flavor.max_memory_mib,
            user_data: input.userData ?? null,
            key_name: input.keyName ?? null,
            password_sealed: input.password
              ? deps.sealer.seal(input.password, `instance-password:${id}`)
              : null,
            error_reason: null,
            target_vcpus: null,
            target_memory_mib: null,
            reboot_seq: 0,
            power_seq: 0,
            guest_ready_at: null,
            launched_at: null,
            metered_to: null,
            created_at: ts,
            updated_at: ts,
            deleted_at: null,
            server_group_id: group?.id ?? null,
            zone: input.zone ?? null,
            ha: input.ha ? 1 : 0,
          };
          await trx.insertInto('instances').values(row).execute();
          await appendAudit(
            trx,
            auditOf(ctx, 'compute:RunInstance', `instance/${id}`, tenantId, {
              details: { name: input.name, image: image.id, flavor: flavor.name, host: p.hostId },
            }),
          );
          return row;
        })
        .catch(async (err: unknown) => {
          kept = undefined; // it may hold this create's claim, rolled back
          // Nothing was placed; the audit log keeps why (the transaction's own audit rolled back).
          if (err instanceof YunhaiError && err.code === 'InsufficientCapacity') {
            await database.tx((trx) =>
              appendAudit(
                trx,
                auditOf(ctx, 'compute:RunInstance', `instance/${input.name}`, tenantId, {
                  outcome: 'failure',
                  errorCode: 'InsufficientCapacity',
                  details: {
                    reason: err.message,
                    flavor: flavor.name,
                    zone: input.zone,
                    serverGroup: group?.name,
                  },
                }),
              ),
            );
          }
          throw err;
        });
      notifier.notify(created.host_id!);
      return instanceView(created);
    },

    async listInstances(
      ctx: RequestContext,
      q: PageQuery & { state?: InstanceState; tenantId?: string; hostId?: string },
    ): Promise<Page<InstanceView>> {
      await guard(ctx, 'compute:ListInstances', q.tenantId ?? ctx.principal.tenantId, 'instances');
      let query = database.db
        .selectFrom('instances')
        .selectAll()
        .where('deleted_at', 'is', null)
        .orderBy('id')
        .limit(q.limit + 1);
      const tenantId = ctx.principal.role === 'platform-admin' ? q.tenantId : ctx.principal.tenantId;
      if (tenantId) query = query.where('tenant_id', '=', tenantId);
      if (q.state) query = query.where('state', '=', q.state);
      if (q.hostId) query = query.where('host_id', '=', q.hostId);
      const after = stringCursor(q.cursor);
      if (after !== undefined) query = query.where('id', '>', after);
      return toPage(await query.execute(), q.limit, instanceView, (r) => [r.id]);
    },

    async getInstance(ctx: RequestContext, id: string) {
      return instanceView(await visibleInstance(ctx, id, 'compute:DescribeInstance'));
    },

    async startInstance(ctx: RequestContext, id: string) {
      return transition(ctx, id, 'compute:StartInstance', (i) => {
        if (i.state !== 'stopped' && i.state !== 'error')
          throw new YunhaiError(
            'InvalidState',
            `Instance ${id} is ${i.state}; only a stopped instance can be started.`,
          );
        return {
          desired_state: 'running',
          state: 'starting',
          error_reason: null,
          power_seq: i.power_seq + 1,
        };
      });
    },

    async stopInstance(ctx: RequestContext, id: string, opts: { force?: boolean } = {}) {
      return transition(ctx, id, 'compute:StopInstance', (i) => {
        if (
          !['running', 'starting', 'building', 'rebooting', 'resizing'].includes(i.state) &&
          !(opts.force && i.state === 'stopping')
        ) {
          throw new YunhaiError('InvalidState', `Instance ${id} is ${i.state}; it cannot be stopped.`);
        }
        return {
          desired_state: 'stopped',
          state: 'stopping',
          power_seq: i.power_seq + (opts.force ? 1000 : 1),
        };
      });
    },

    async rebootInstance(ctx: RequestContext, id: string) {
      return transition(ctx, id, 'compute:RebootInstance', (i) => {
        if (i.state !== 'running')
          throw new YunhaiError(
            'InvalidState',
            `Instance ${id} is ${i.state}; only a running instance can be rebooted.`,
          );
        return { state: 'rebooting', reboot_seq: i.reboot_seq + 1, guest_ready_at: null };
      });
    },

    /** Live resize within the flavor's maxima (quota reserved for the growth). */
    /**
     * Cold resize: a stopped instance moves to another flavor (sizes, maxima, a bigger disk) on its
     * host; quota and host capacity are checked for the difference. It boots with the new size.
     */
    async coldResizeInstance(ctx: RequestContext, id: string, flavorName: string) {
      const i = await visibleInstance(ctx, id, 'compute:ResizeInstance');
      if (i.state !== 'stopped') {
        throw new YunhaiError(
          'InvalidState',
          `Instance ${id} is ${i.state}; stop it before resizing it to another flavor.`,
        );
      }
      const f = await resolveFlavor(ctx, flavorName);
      if (f.disk_gib < i.disk_gib) {
        throw new YunhaiError(
          'ValidationError',
          `Flavor ${f.name} has a ${f.disk_gib} GiB disk; the instance's disk (${i.disk_gib} GiB) cannot shrink.`,
        );
      }
      // Read outside the transaction: SQLite has one connection, which the transaction holds.
      const image = await images.getRow(i.image_id);
      const updated = await database.tx(async (trx) => {
        const dv = f.vcpus - i.vcpus;
        const dm = f.memory_mib - i.memory_mib;
        if (dv > 0) await reserveQuota(trx, i.tenant_id, 'vcpus', dv);
        if (dv < 0) await releaseQuota(trx, i.tenant_id, 'vcpus', -dv);
        if (dm > 0) await reserveQuota(trx, i.tenant_id, 'memoryMiB', dm);
        if (dm < 0) await releaseQuota(trx, i.tenant_id, 'memoryMiB', -dm);
        if (i.host_id) {
          await touchHost(trx, i.host_id);
          // The host must hold the new size next to everything else on it.
          const snap = (await hostSnapshot(trx, undefined, i.host_id)).map((h) => ({
            ...h,
            up: true,
            enabled: true,
            allocated: {
              vcpus: h.allocated.vcpus - i.vcpus,
              memoryMiB: h.allocated.memoryMiB - i.memory_mib,
              diskGiB: h.allocated.diskGiB - i.disk_gib,
            },
          }));
          const p = place(
            snap,
            {
              vcpus: f.vcpus,
              maxVcpus: f.max_vcpus,
              memoryMiB: f.memory_mib,
              diskGiB: f.disk_gib,
              firmware: image?.firmware ?? 'bios',
            },
            scheduler,
          );
          if (!p.ok)
            throw new YunhaiError(
              'InsufficientCapacity',
              `The instance's host cannot take flavor ${f.name}: ${p.message}`,
            );
        }
        const patch = {
          flavor_id: f.id,
          vcpus: f.vcpus,
          memory_mib: f.memory_mib,
          disk_gib: f.disk_gib,
          max_vcpus: f.max_vcpus,
          max_memory_mib: f.max_memory_mib,
          target_vcpus: null,
          target_memory_mib: null,
          updated_at: now(),
        };
        await trx.updateTable('instances').set(patch).where('id', '=', i.id).execute();
        await appendAudit(
          trx,
          auditOf(ctx, 'compute:ResizeInstance', `instance/${i.id}`, i.tenant_id, {
            details: { cold: true, fromFlavor: i.flavor_id, toFlavor: f.name },
          }),
        );
        return { ...i, ...patch };
      });
      if (i.host_id) notifier.notify(i.host_id);
      return instanceView(updated);
    },

    async resizeInstance(ctx: RequestContext, id: string, target: { vcpus?: number; memoryMiB?: number }) {
      const i = await visibleInstance(ctx, id, 'compute:ResizeInstance');
      await notMigrating(i.id);
      if (i.state !== 'running')
        throw new YunhaiError(
          'InvalidState',
          `Instance ${id} is ${i.state}; live resize needs a running instance.`,
        );
      const vcpus = target.vcpus ?? i.vcpus;
      const mem = target.memoryMiB ?? i.memory_mib;
      if (vcpus < 1 || vcpus > i.max_vcpus)
        throw new YunhaiError('ValidationError', `vcpus must be 1..${i.max_vcpus} for this flavor.`);
      if (mem < 128 || mem > i.max_memory_mib)
        throw new YunhaiError(
          'ValidationError',
          `memoryMiB must be 128..${i.max_memory_mib} for this flavor.`,
        );
      await database.tx(async (trx) => {
        // Reserve growth now; shrinking is released when the agent confirms.
        if (vcpus > i.vcpus) await reserveQuota(trx, i.tenant_id, 'vcpus', vcpus - i.vcpus);
        if (mem > i.memory_mib) await reserveQuota(trx, i.tenant_id, 'memoryMiB', mem - i.memory_mib);
        await trx
          .updateTable('instances')
          .set({ state: 'resizing', target_vcpus: vcpus, target_memory_mib: mem, updated_at: now() })
          .where('id', '=', i.id)
          .execute();
        if (i.host_id) await touchHost(trx, i.host_id);
        await appendAudit(
          trx,
          auditOf(ctx, 'compute:ResizeInstance', `instance/${i.id}`, i.tenant_id, {
            details: { from: { vcpus: i.vcpus, memoryMiB: i.memory_mib }, to: { vcpus, memoryMiB: mem } },
          }),
        );
      });
      if (i.host_id) notifier.notify(i.host_id);
      return instanceView({ ...i, state: 'resizing' });
    },

    async deleteInstance(ctx: RequestContext, id: string) {
      const i = await visibleInstance(ctx, id, 'compute:TerminateInstance');
      await notMigrating(i.id);
      const host = i.host_id
        ? await database.db.selectFrom('hosts').select('state').where('id', '=', i.host_id).executeTakeFirst()
        : undefined;
      const ts = now();
      await database.tx(async (trx) => {
        if (!i.host_id || host?.state !== 'up') {
          // No live agent to ask: finish now; a returning agent destroys what it no longer should run.
          await finishDelete(trx, i, ts);
        } else {
          await trx
            .updateTable('instances')
            .set({ desired_state: 'deleted', state: 'deleting', updated_at: ts })
            .where('id', '=', i.id)
            .execute();
          await touchHost(trx, i.host_id);
        }
        await appendAudit(trx, auditOf(ctx, 'compute:TerminateInstance', `instance/${i.id}`, i.tenant_id));
      });
      if (i.host_id) notifier.notify(i.host_id);
    },

    visibleInstance,

    // ---- agent side ----------------------------------------------------------------------

    /** The desired state of every instance placed on a host. */
    async desiredForHost(hostId: string): Promise<DesiredInstance[]> {
      const moving = new Map((await migrations.activeOnHost(hostId)).map((m) => [m.instance_id, m]));
      const incoming = [...moving.values()].filter((m) => m.target_host === hostId).map((m) => m.instance_id);
      const rows = await database.db
        .selectFrom('instances')
        .innerJoin('images', 'images.id', 'instances.image_id')
        .selectAll('instances')
        .select(['images.format', 'images.firmware', 'images.cmdline', 'images.files'])
        .where((eb) =>
          incoming.length
            ? eb.or([eb('instances.host_id', '=', hostId), eb('instances.id', 'in', incoming)])
            : eb('instances.host_id', '=', hostId),
        )
        .where('instances.deleted_at', 'is', null)
        .execute();
      return rows.map((r) => {
        const m = moving.get(r.id);
        const keys = r.key_name ? r.key_name : undefined;
        const meta: Record<string, string> = { 'instance-id': r.id, 'local-hostname': r.name };
        if (keys) meta['public-keys-name'] = keys;
        return {
          id: r.id,
          name: r.name,
          desiredState: r.desired_state,
          rebootSeq: r.reboot_seq,
          powerSeq: r.power_seq,
          vcpus: r.target_vcpus ?? r.vcpus,
          memoryMiB: r.target_memory_mib ?? r.memory_mib,
          maxVcpus: r.max_vcpus,
          maxMemoryMiB: r.max_memory_mib,
          diskGiB: r.disk_gib,
          image: {
            id: r.image_id,
            format: r.format,
            firmware: r.firmware,
            cmdline: r.cmdline,
            files: JSON.parse(r.files),
          },
          cloudInit: { userData: r.user_data ?? undefined, metaData: meta },
          ...(m ? { migration: migrations.desiredFor(m, hostId) } : {}),
        };
      });
    },

    /** Whether a live instance is placed on the host (agents may touch only their own). */
    async isPlacedOn(hostId: string, instanceId: string): Promise<boolean> {
      const r = await database.db
        .selectFrom('instances')
        .select('id')
        .where('id', '=', instanceId)
        .where('host_id', '=', hostId)
        .where('deleted_at', 'is', null)
        .executeTakeFirst();
      if (r) return true;
      // The target of a live migration prepares the VM (secrets, image files) before it moves.
      const m = await database.db
        .selectFrom('instance_migrations')
        .select('id')
        .where('instance_id', '=', instanceId)
        .where('target_host', '=', hostId)
        .where('state', 'in', [...ACTIVE_MIGRATION_STATES])
        .executeTakeFirst();
      return m !== undefined;
    },

    /** Public keys for the instance's key pair (cloud-init `public-keys`), and the guest password. */
    async guestSecrets(instanceId: string) {
      const i = await database.db
        .selectFrom('instances')
        .select(['tenant_id', 'key_name', 'password_sealed'])
        .where('id', '=', instanceId)
        .executeTakeFirst();
      if (!i) return {};
      const key = i.key_name
        ? await database.db
            .selectFrom('key_pairs')
            .select('public_key')
            .where('tenant_id', '=', i.tenant_id)
            .where('name', '=', i.key_name)
            .executeTakeFirst()
        : undefined;
      return {
        publicKey: key?.public_key,
        password: i.password_sealed
          ? deps.sealer.open(i.password_sealed, `instance-password:${instanceId}`).toString('utf8')
          : undefined,
      };
    },

    /** Applies what an agent reports about one of its instances. */
    async applyAgentEvent(hostId: string, instanceId: string, e: AgentEvent) {
      const ts = now();
      await database.tx(async (trx) => {
        // Under the row lock: an agent's events arrive concurrently ('running' and 'guest-ready' of
        // one start), and each writes fields computed from what it read — without the lock, the
        // later one could write back a stale state (an instance stuck in 'starting', guest ready).
        const i = await lockedInstance(trx, instanceId);
        if (!i || i.host_id !== hostId || i.deleted_at !== null) return;
        const audit = (
          action: string,
          details: Record<string, unknown> = {},
          outcome: AuditInput['outcome'] = 'success',
        ) =>
          appendAudit(trx, {
            tenantId: i.tenant_id,
            principal: `host:${hostId}`,
            action,
            resource: `instance/${i.id}`,
            outcome,
            sourceIp: 'agent',
            requestId: `agent-${ts}`,
            details,
          });
        switch (e.type) {
          case 'running': {
            if (i.desired_state !== 'running') return;
            const fresh = i.metered_to === null;
            await trx
              .updateTable('instances')
              .set({
                state: 'running',
                error_reason: null,
                launched_at: i.launched_at ?? ts,
                metered_to: fresh ? ts : i.metered_to,
                updated_at: ts,
              })
              .where('id', '=', i.id)
              .execute();
            if (i.state !== 'running') await audit('compute:InstanceRunning');
            return;
          }
          case 'guest-ready':
            // Repeats (an agent that restarted mid-boot watches the console again) change nothing.
            if (i.guest_ready_at !== null && i.state !== 'rebooting') return;
            await trx
              .updateTable('instances')
              .set({ guest_ready_at: ts, state: i.state === 'rebooting' ? 'running' : i.state })
              .where('id', '=', i.id)
              .execute();
            return;
          case 'stopped': {
            if (e.powerSeq !== undefined && e.powerSeq < i.power_seq) return; // about an earlier power cycle
            await meter(trx, i, ts, true);
            // A guest that powered itself off stays off, as on AWS.
            const desired = i.desired_state === 'deleted' ? 'deleted' : 'stopped';
            await trx
              .updateTable('instances')
              .set({
                // An instance put in error (e.g. boot timeout) keeps its error once its VM is stopped.
                state: desired === 'deleted' ? 'deleting' : i.state === 'error' ? 'error' : 'stopped',
                desired_state: desired,
                guest_ready_at: null,
                updated_at: ts,
              })
              .where('id', '=', i.id)
              .execute();
            await audit('compute:InstanceStopped', { reason: e.reason ?? 'stopped' });
            return;
          }
          case 'crashed':
          case 'error': {
            if (e.powerSeq !== undefined && e.powerSeq < i.power_seq) return;
            await meter(trx, i, ts, true);
            const reason = e.consoleTail ? `${e.reason}\n--- console tail ---\n${e.consoleTail}` : e.reason;
            await trx
              .updateTable('instances')
              .set({
                state: 'error',
                desired_state: i.desired_state === 'deleted' ? 'deleted' : 'stopped',
                error_reason: reason.slice(0, 8000),
                guest_ready_at: null,
                updated_at: ts,
              })
              .where('id', '=', i.id)
              .execute();
            await audit('compute:InstanceError', { reason: e.reason }, 'failure');
            return;
          }
          case 'resized': {
            // Metered at the old size up to now; the new size counts from this moment.
            const next = await meter(trx, i, ts, false);
            if (e.vcpus < i.vcpus) await releaseQuota(trx, i.tenant_id, 'vcpus', i.vcpus - e.vcpus);
            if (e.memoryMiB < i.memory_mib)
              await releaseQuota(trx, i.tenant_id, 'memoryMiB', i.memory_mib - e.memoryMiB);
            await trx
              .updateTable('instances')
              .set({
                vcpus: e.vcpus,
                memory_mib: e.memoryMiB,
                target_vcpus: null,
                target_memory_mib: null,
                state: 'running',
                metered_to: next,
                updated_at: ts,
              })
              .where('id', '=', i.id)
              .execute();
            await audit('compute:InstanceResized', { vcpus: e.vcpus, memoryMiB: e.memoryMiB });
            return;
          }
          case 'deleted':
            await finishDelete(trx, i, ts);
            await audit('compute:InstanceDeleted');
            return;
        }
      });
    },

    /** Marks instances of a lost host: in-flight work ends in error; deletions complete. */
    /**
     * A host stopped heartbeating. Deletes in flight complete; HA instances that should run are
     * rebuilt on another host (placed like a create, their disk rebuilt from the image: local disks
     * die with their host); other in-flight work ends in error. Fencing: the lost host no longer has
     * those instances in its desired state, so if its agent comes back it destroys its copies.
     */
    async hostLost(hostId: string) {
      const ts = now();
      const moved: string[] = [];
      await database.tx(async (trx) => {
        for (const m of await migrations.failForHost(trx, hostId, `host ${hostId} went down`))
          moved.push(m.source_host === hostId ? m.target_host : m.source_host);
        const rows = await trx
          .selectFrom('instances')
          .selectAll()
          .where('host_id', '=', hostId)
          .where('deleted_at', 'is', null)
          .execute();
        for (const i of rows) {
          if (i.desired_state === 'deleted') {
            await finishDelete(trx, i, ts);
            continue;
          }
          if (i.ha === 1 && i.desired_state === 'running') {
            const target = await rebuildElsewhere(trx, i, hostId, 'host down (HA)', 'system');
            if (target.ok) {
              moved.push(target.hostId);
              continue;
            }
            await trx
              .updateTable('instances')
              .set({
                state: 'error',
                error_reason: `The host agent stopped responding (host ${hostId}), and no other host can take this HA instance: ${target.message}`,
                updated_at: ts,
              })
              .where('id', '=', i.id)
              .execute();
            continue;
          }
          if (ACTIVE_STATES.includes(i.state)) {
            await meter(trx, i, ts, true);
            await trx
              .updateTable('instances')
              .set({
                state: 'error',
                error_reason: `The host agent stopped responding (host ${hostId}).`,
                updated_at: ts,
              })
              .where('id', '=', i.id)
              .execute();
          }
        }
      });
      for (const h of new Set(moved)) notifier.notify(h);
    },

    /**
     * Evacuation (admin): every instance of a host that is down is rebuilt on other hosts from its
     * image (a fresh disk: there is no shared storage), HA flag or not. The old host's agent, should
     * it come back, destroys its copies (they are no longer its desired state).
     */
    async evacuateHost(ctx: RequestContext, host: string) {
      requireAllowed(ctx.principal, 'compute:EvacuateHost', { tenantId: null });
      const h = await hostByIdOrName(host);
      if (h.state !== 'down')
        throw new YunhaiError(
          'InvalidState',
          `Host ${h.name} is up; evacuation is for a host that is down. Drain it (live migration) instead.`,
        );
      const results: Array<{ instanceId: string; host?: string; error?: string }> = [];
      const moved = new Set<string>();
      await database.tx(async (trx) => {
        const rows = await trx
          .selectFrom('instances')
          .selectAll()
          .where('host_id', '=', h.id)
          .where('deleted_at', 'is', null)
          .execute();
        for (const i of rows) {
          if (i.desired_state === 'deleted') {
            await finishDelete(trx, i, now());
            continue;
          }
          const t = await rebuildElsewhere(trx, i, h.id, 'evacuation', principalLabel(ctx.principal));
          if (t.ok) {
            moved.add(t.hostId);
            results.push({ instanceId: i.id, host: t.hostId });
          } else results.push({ instanceId: i.id, error: t.message });
        }
        await appendAudit(
          trx,
          auditFor(ctx, 'compute:EvacuateHost', `host/${h.id}`, { tenantId: null, details: { results } }),
        );
      });
      for (const t of moved) notifier.notify(t);
      return { host: h.id, results };
    },

    /**
     * Drain (admin): the host goes into maintenance (no new instances) and every instance on it
     * moves wherever the scheduler finds room: live if running, cold (with its disk) if stopped.
     * Instances that cannot move (e.g. mid-boot) are listed with the reason.
     */
    async drainHost(ctx: RequestContext, host: string) {
      requireAllowed(ctx.principal, 'compute:MigrateInstance', { tenantId: null });
      const h = await hostByIdOrName(host);
      await database.tx(async (trx) => {
        await trx
          .updateTable('hosts')
          .set({ maintenance: 1, updated_at: now() })
          .where('id', '=', h.id)
          .execute();
        await appendAudit(
          trx,
          auditFor(ctx, 'hosts:DrainHost', `host/${h.id}`, {
            tenantId: null,
            details: { maintenance: true },
          }),
        );
      });
      const rows = await database.db
        .selectFrom('instances')
        .select(['id', 'state'])
        .where('host_id', '=', h.id)
        .where('deleted_at', 'is', null)
        .orderBy('id')
        .execute();
      const results: Array<{
        instanceId: string;
        migrationId?: string;
        targetHost?: string;
        error?: string;
      }> = [];
      for (const r of rows) {
        try {
          const m = await migrations.migrate(ctx, r.id, { reason: 'drain' });
          results.push({ instanceId: r.id, migrationId: m.id, targetHost: m.targetHost });
        } catch (err) {
          results.push({ instanceId: r.id, error: (err as Error).message });
        }
      }
      return { host: h.id, results };
    },

    /**
     * A guest that never reports ready (no YUNHAI-READY or cloud-init "finished" line) within
     * `timeoutMs` of starting ends in error with its console tail, and is stopped.
     */
    async checkBootDeadlines(timeoutMs: number, consoleTail: (id: string) => Promise<string>) {
      const ts = now();
      const late = await database.db
        .selectFrom('instances')
        .selectAll()
        .where('state', '=', 'running')
        .where('guest_ready_at', 'is', null)
        .where('deleted_at', 'is', null)
        .where('updated_at', '<', ts - timeoutMs)
        .execute();
      for (const i of late) {
        const tail = await consoleTail(i.id).catch(() => '');
        const reason = `The guest did not report ready within ${Math.round(timeoutMs / 1000)} s (no YUNHAI-READY or cloud-init "finished" line on its serial console), so it was stopped.${tail ? `\n--- console tail ---\n${tail}` : ''}`;
        await database.tx(async (trx) => {
          await meter(trx, i, ts, true);
          await trx
            .updateTable('instances')
            .set({
              state: 'error',
              desired_state: 'stopped',
              error_reason: reason.slice(0, 8000),
              updated_at: ts,
            })
            .where('id', '=', i.id)
            .execute();
          if (i.host_id) await touchHost(trx, i.host_id);
          await appendAudit(trx, {
            tenantId: i.tenant_id,
            principal: 'system',
            action: 'compute:BootTimeout',
            resource: `instance/${i.id}`,
            outcome: 'failure',
            errorCode: 'BootTimeout',
            sourceIp: 'local',
            requestId: `boot-deadline-${ts}`,
            details: { timeoutMs },
          });
        });
        if (i.host_id) notifier.notify(i.host_id);
      }
      return late.length;
    },

    /** Writes usage for every running instance up to now (a background loop calls this). */
    async meterRunning() {
      const ts = now();
      const rows = await database.db
        .selectFrom('instances')
        .select('id')
        .where('metered_to', 'is not', null)
        .where('deleted_at', 'is', null)
        .execute();
      // Each instance is re-read under its row lock: a stop that committed since the list was
      // read has already metered it and cleared metered_to, which a stale row would set back.
      for (const { id } of rows)
        await database.tx(async (trx) => {
          const i = await lockedInstance(trx, id);
          if (i && i.deleted_at === null && i.metered_to !== null) await meter(trx, i, ts, false);
        });
      return rows.length;
    },
  };
}

export type ComputeService = ReturnType<typeof createComputeService>;
