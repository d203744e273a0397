import { appendAudit } from '../../platform/audit/audit.js';
import type { Database, Tx } from '../../platform/db/database.js';
import type { InstanceMigrationsTable, InstancesTable } from '../../platform/db/schema.js';
import { notFound, YunhaiError } from '../../platform/errors.js';
import { newId } from '../../platform/ids.js';
import { requireAllowed } from '../../platform/policy/authorize.js';
import { auditFor } from '../../platform/policy/guard.js';
import type { RequestContext } from '../../platform/policy/principal.js';
import type { HostNotifier } from '../hosts/notifier.js';
import type { Placement } from '../scheduler/placement.js';
import { lockedInstance } from './instance-lock.js';

/**
 * Live (and cold) migration, as the control plane runs it. The agents do the work; this module moves a row
 * through its states and tells each agent, through its desired state, what to do next:
 *
 *   preparing    target: start the VM paused, waiting (QEMU `-incoming`, NBD disk export)
 *                → target reports `prepared` with its addresses
 *   transferring source: copy the disk, then the memory; reports `progress`, then `transferred`
 *                → the instance's host becomes the target (in the same transaction)
 *   switching    target: resume the guest → reports `completed`
 *   completed | failed
 *
 * While a row is active the target's capacity is held for the instance (hostSnapshot counts it),
 * so concurrent creates cannot take the room. A failure before the switch leaves the guest
 * running on the source; the target's half-made VM goes when it leaves the target's desired state.
 *
 * A stopped instance moves the same way (kind `cold`): the source starts it paused only to carry
 * its disk, and the target ends up with a stopped VM.
 */
export const ACTIVE_MIGRATION_STATES = ['preparing', 'transferring', 'switching'] as const;
export type MigrationState = InstanceMigrationsTable['state'];

export interface MigrationView {
  id: string;
  instanceId: string;
  tenantId: string;
  sourceHost: string;
  targetHost: string;
  kind: 'live' | 'cold';
  state: MigrationState;
  reason: string;
  requestedBy: string;
  phase: 'disk' | 'memory' | null;
  transferredBytes: number;
  totalBytes: number;
  remainingBytes: number;
  downtimeMs: number | null;
  totalTimeMs: number | null;
  error: string | null;
  createdAt: string;
  updatedAt: string;
  finishedAt: string | null;
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export const migrationView = (m: InstanceMigrationsTable): MigrationView => ({
  id: m.id,
  instanceId: m.instance_id,
  tenantId: m.tenant_id,
  sourceHost: m.source_host,
  targetHost: m.target_host,
  kind: m.kind,
  state: m.state,
  reason: m.reason,
  requestedBy: m.requested_by,
  phase: m.phase,
  transferredBytes: Number(m.transferred_bytes),
  totalBytes: Number(m.total_bytes),
  remainingBytes: Number(m.remaining_bytes),
  downtimeMs: m.downtime_ms,
  totalTimeMs: m.total_time_ms,
  error: m.error,
  createdAt: new Date(Number(m.created_at)).toISOString(),
  updatedAt: new Date(Number(m.updated_at)).toISOString(),
  finishedAt: iso(m.finished_at === null ? null : Number(m.finished_at)),
});

/** What an agent is told about a migration of one of its instances. */
export interface DesiredMigration {
  id: string;
  role: 'source' | 'target';
  kind: 'live' | 'cold';
  /** prepare: target gets ready; transfer: source copies; switch: target resumes. */
  phase: 'prepare' | 'transfer' | 'switch';
  target?: { migrateUri: string; diskUri: string };
}

export type MigrationEvent =
  | { type: 'prepared'; migrateUri: string; diskUri: string }
  | {
      type: 'progress';
      phase: 'disk' | 'memory';
      transferredBytes: number;
      totalBytes: number;
      remainingBytes: number;
    }
  | { type: 'transferred'; downtimeMs: number; transferredBytes: number; totalTimeMs: number }
  | { type: 'completed' }
  | { type: 'failed'; reason: string };

export function createLiveMigrations(deps: {
  database: Database;
  notifier: HostNotifier;
  now: () => number;
  /** Places the instance like a create would, never on `exclude`, only on `only` when given. */
  placementFor: (
    trx: Tx,
    i: InstancesTable,
    opts: { exclude: string[]; only?: string },
  ) => Promise<Placement>;
  touchHost: (trx: Tx, hostId: string) => Promise<unknown>;
}) {
  const { database, notifier, now, placementFor, touchHost } = deps;

  const active = (trx: Tx | Database['db'], instanceId: string) =>
    trx
      .selectFrom('instance_migrations')
      .selectAll()
      .where('instance_id', '=', instanceId)
      .where('state', 'in', [...ACTIVE_MIGRATION_STATES])
      .executeTakeFirst();

  const systemAudit = (
    i: { tenant_id: string },
    action: string,
    resource: string,
    details: Record<string, unknown>,
  ) => ({
    tenantId: i.tenant_id,
    principal: 'system',
    action,
    resource,
    outcome: 'success' as const,
    sourceIp: 'local',
    requestId: 'migration',
    details,
  });

  /** Ends a migration as failed (in `trx`); the guest stays where the instance's host says. */
  async function failIn(trx: Tx, m: InstanceMigrationsTable, reason: string) {
    const ts = now();
    await trx
      .updateTable('instance_migrations')
      .set({ state: 'failed', error: reason.slice(0, 2000), updated_at: ts, finished_at: ts })
      .where('id', '=', m.id)
      .execute();
    if (m.state === 'switching') {
      // The source copy is gone and the target could not resume: the instance is lost.
      await trx
        .updateTable('instances')
        .set({
          state: 'error',
          error_reason: `Live migration failed at switch-over: ${reason}`,
          updated_at: ts,
        })
        .where('id', '=', m.instance_id)
        .execute();
    }
    await touchHost(trx, m.source_host);
    await touchHost(trx, m.target_host);
    await appendAudit(
      trx,
      systemAudit(m, 'compute:MigrateInstance', `instance/${m.instance_id}`, {
        migration: m.id,
        outcome: 'failed',
        reason,
      }),
    );
  }

  return {
    /**
     * Starts a live migration of a running instance to `host` (id or name), or to where the
     * scheduler puts it (never its current host). Refusals name each filter that removed hosts.
     */
    async migrate(
      ctx: RequestContext,
      instanceId: string,
      opts: { host?: string; reason?: string } = {},
    ): Promise<MigrationView> {
      requireAllowed(ctx.principal, 'compute:MigrateInstance', { tenantId: null });
      return this.start(instanceId, opts, ctx);
    },

    /** Starts a migration for `ctx`'s admin, or for the platform itself (consolidation) without one. */
    async start(
      instanceId: string,
      opts: { host?: string; reason?: string },
      ctx?: RequestContext,
    ): Promise<MigrationView> {
      const row = await database.tx(async (trx) => {
        // The instance's row lock orders this against other actions on it.
        const i = await lockedInstance(trx, instanceId);
        if (!i || i.deleted_at !== null) throw notFound('Instance', instanceId);
        const kind =
          i.state === 'running' && i.desired_state === 'running'
            ? 'live'
            : i.state === 'stopped' && i.desired_state === 'stopped'
              ? 'cold'
              : undefined;
        if (!kind || !i.host_id)
          throw new YunhaiError(
            'InvalidState',
            `Only a running (live) or stopped (cold) instance can be migrated; ${i.id} is ${i.state}.`,
          );
        const busy = await active(trx, i.id);
        if (busy) throw new YunhaiError('Conflict', `Instance ${i.id} is already migrating (${busy.id}).`);
        let only: string | undefined;
        if (opts.host) {
          const h = await trx
            .selectFrom('hosts')
            .select(['id'])
            .where((eb) => eb.or([eb('id', '=', opts.host!), eb('name', '=', opts.host!)]))
            .executeTakeFirst();
          if (!h) throw notFound('Host', opts.host);
          if (h.id === i.host_id)
            throw new YunhaiError('ValidationError', `Instance ${i.id} already runs on host ${opts.host}.`);
          only = h.id;
        }
        const p = await placementFor(trx, i, { exclude: [i.host_id], only });
        if (!p.ok) throw new YunhaiError('InsufficientCapacity', p.message, { filters: p.filters });
        await touchHost(trx, p.hostId);
        await touchHost(trx, i.host_id);
        const ts = now();
        const m: InstanceMigrationsTable = {
          id: newId('mig'),
          instance_id: i.id,
          tenant_id: i.tenant_id,
          source_host: i.host_id,
          target_host: p.hostId,
          kind,
          state: 'preparing',
          reason: opts.reason ?? 'admin',
          requested_by: ctx?.principal.userId ?? 'system',
          migrate_uri: null,
          disk_uri: null,
          phase: null,
          transferred_bytes: 0,
          total_bytes: 0,
          remaining_bytes: 0,
          downtime_ms: null,
          total_time_ms: null,
          error: null,
          created_at: ts,
          updated_at: ts,
          finished_at: null,
        };
        await trx.insertInto('instance_migrations').values(m).execute();
        const details = { migration: m.id, kind, from: i.host_id, to: p.hostId, reason: m.reason };
        await appendAudit(
          trx,
          ctx
            ? auditFor(ctx, 'compute:MigrateInstance', `instance/${i.id}`, { tenantId: i.tenant_id, details })
            : systemAudit(i, 'compute:MigrateInstance', `instance/${i.id}`, details),
        );
        return m;
      });
      notifier.notify(row.target_host);
      notifier.notify(row.source_host);
      return migrationView(row);
    },

    async list(
      ctx: RequestContext,
      filter: { instanceId?: string; host?: string; state?: MigrationState; limit?: number } = {},
    ): Promise<MigrationView[]> {
      requireAllowed(ctx.principal, 'compute:ListMigrations', { tenantId: null });
      let q = database.db.selectFrom('instance_migrations').selectAll();
      if (filter.instanceId) q = q.where('instance_id', '=', filter.instanceId);
      if (filter.state) q = q.where('state', '=', filter.state);
      if (filter.host)
        q = q.where((eb) =>
          eb.or([eb('source_host', '=', filter.host!), eb('target_host', '=', filter.host!)]),
        );
      const rows = await q
        .orderBy('created_at', 'desc')
        .orderBy('id', 'desc')
        .limit(filter.limit ?? 100)
        .execute();
      return rows.map(migrationView);
    },

    async get(ctx: RequestContext, id: string): Promise<MigrationView> {
      requireAllowed(ctx.principal, 'compute:ListMigrations', { tenantId: null });
      const m = await database.db
        .selectFrom('instance_migrations')
        .selectAll()
        .where('id', '=', id)
        .executeTakeFirst();
      if (!m) throw notFound('Migration', id);
      return migrationView(m);
    },

    /** The active migrations touching a host, for its desired state. */
    async activeOnHost(hostId: string): Promise<InstanceMigrationsTable[]> {
      return database.db
        .selectFrom('instance_migrations')
        .selectAll()
        .where('state', 'in', [...ACTIVE_MIGRATION_STATES])
        .where((eb) => eb.or([eb('source_host', '=', hostId), eb('target_host', '=', hostId)]))
        .execute();
    },

    async isMigrating(instanceId: string): Promise<boolean> {
      return (await active(database.db, instanceId)) !== undefined;
    },

    /** What the agent on `hostId` is told about migration `m`. */
    desiredFor(m: InstanceMigrationsTable, hostId: string): DesiredMigration {
      return {
        id: m.id,
        role: m.target_host === hostId ? 'target' : 'source',
        kind: m.kind,
        phase: m.state === 'preparing' ? 'prepare' : m.state === 'transferring' ? 'transfer' : 'switch',
        ...(m.migrate_uri && m.disk_uri
          ? { target: { migrateUri: m.migrate_uri, diskUri: m.disk_uri } }
          : {}),
      };
    },

    /** Applies an agent's report; only the migration's source or target host may report. */
    async applyEvent(hostId: string, migrationId: string, e: MigrationEvent): Promise<void> {
      const touched = new Set<string>();
      await database.tx(async (trx) => {
        await trx
          .updateTable('instance_migrations')
          .set((eb) => ({ updated_at: eb.ref('updated_at') }))
          .where('id', '=', migrationId)
          .execute();
        const m = await trx
          .selectFrom('instance_migrations')
          .selectAll()
          .where('id', '=', migrationId)
          .executeTakeFirst();
        if (!m || (m.source_host !== hostId && m.target_host !== hostId))
          throw new YunhaiError('NotFound', `Migration ${migrationId} does not involve this host.`);
        if (!(ACTIVE_MIGRATION_STATES as readonly string[]).includes(m.state)) return; // late report
        const fromTarget = hostId === m.target_host;
        const ts = now();
        switch (e.type) {
          case 'prepared':
            if (!fromTarget || m.state !== 'preparing') return;
            await trx
              .updateTable('instance_migrations')
              .set({ state: 'transferring', migrate_uri: e.migrateUri, disk_uri: e.diskUri, updated_at: ts })
              .where('id', '=', m.id)
              .execute();
            await touchHost(trx, m.source_host);
            touched.add(m.source_host);
            return;
          case 'progress':
            if (fromTarget || m.state !== 'transferring') return;
            await trx
              .updateTable('instance_migrations')
              .set({
                phase: e.phase,
                transferred_bytes: e.transferredBytes,
                total_bytes: e.totalBytes,
                remaining_bytes: e.remainingBytes,
                updated_at: ts,
              })
              .where('id', '=', m.id)
              .execute();
            return;
          case 'transferred': {
            if (fromTarget || m.state !== 'transferring') return;
            await trx
              .updateTable('instance_migrations')
              .set({
                state: 'switching',
                transferred_bytes: e.transferredBytes,
                remaining_bytes: 0,
                downtime_ms: e.downtimeMs,
                total_time_ms: e.totalTimeMs,
                updated_at: ts,
              })
              .where('id', '=', m.id)
              .execute();
            // The instance lives on the target from now on; the source's stale copy goes.
            await trx
              .updateTable('instances')
              .set({ host_id: m.target_host, updated_at: ts })
              .where('id', '=', m.instance_id)
              .execute();
            await touchHost(trx, m.source_host);
            await touchHost(trx, m.target_host);
            touched.add(m.source_host).add(m.target_host);
            return;
          }
          case 'completed': {
            if (!fromTarget || m.state !== 'switching') return;
            await trx
              .updateTable('instance_migrations')
              .set({ state: 'completed', updated_at: ts, finished_at: ts })
              .where('id', '=', m.id)
              .execute();
            await touchHost(trx, m.target_host);
            touched.add(m.target_host);
            await appendAudit(
              trx,
              systemAudit(m, 'compute:MigrateInstance', `instance/${m.instance_id}`, {
                migration: m.id,
                outcome: 'completed',
                from: m.source_host,
                to: m.target_host,
                downtimeMs: m.downtime_ms,
                transferredBytes: Number(m.transferred_bytes),
              }),
            );
            return;
          }
          case 'failed':
            await failIn(trx, m, `${fromTarget ? 'target' : 'source'} host: ${e.reason}`);
            touched.add(m.source_host).add(m.target_host);
            return;
        }
      });
      for (const h of touched) notifier.notify(h);
    },

    /** A host went down: its migrations, in or out, fail (the HA rebuild handles its instances). */
    async failForHost(trx: Tx, hostId: string, why: string) {
      const rows = await trx
        .selectFrom('instance_migrations')
        .selectAll()
        .where('state', 'in', [...ACTIVE_MIGRATION_STATES])
        .where((eb) => eb.or([eb('source_host', '=', hostId), eb('target_host', '=', hostId)]))
        .execute();
      for (const m of rows) await failIn(trx, m, why);
      return rows;
    },
  };
}

export type LiveMigrations = ReturnType<typeof createLiveMigrations>;
