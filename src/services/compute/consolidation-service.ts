import { appendAudit } from '../../platform/audit/audit.js';
import type { Database } from '../../platform/db/database.js';
import type { ConsolidationReportsTable } from '../../platform/db/schema.js';
import { notFound } from '../../platform/errors.js';
import { newId } from '../../platform/ids.js';
import { requireAllowed } from '../../platform/policy/authorize.js';
import { auditFor } from '../../platform/policy/guard.js';
import type { RequestContext } from '../../platform/policy/principal.js';
import {
  type ConsolidationHost,
  type ConsolidationOptions,
  type ConsolidationPlan,
  planConsolidation,
} from '../scheduler/consolidation.js';
import { DEFAULT_OVERCOMMIT, effectiveOvercommit, type Overcommit } from '../scheduler/placement.js';
import { ACTIVE_MIGRATION_STATES, type LiveMigrations } from './live-migration.js';

export const DEFAULT_CONSOLIDATION: ConsolidationOptions = {
  maxMigrations: 10,
  headroom: { cpu: 0.2, ram: 0.2 },
};

export interface ConsolidationReportView {
  id: string;
  status: ConsolidationReportsTable['status'];
  dryRun: boolean;
  requestedBy: string;
  options: ConsolidationOptions;
  plan: ConsolidationPlan;
  migrations: string[];
  migrationsCompleted: number;
  migrationsFailed: number;
  hostsFreed: string[];
  wattsBefore: number;
  wattsAfter: number;
  /** Estimated saving: watts, and kWh per day at that rate. */
  wattsSaved: number;
  kwhPerDaySaved: number;
  createdAt: string;
  finishedAt: string | null;
}

const view = (r: ConsolidationReportsTable): ConsolidationReportView => {
  const saved = Math.max(0, Number(r.watts_before) - Number(r.watts_after));
  return {
    id: r.id,
    status: r.status,
    dryRun: r.dry_run === 1,
    requestedBy: r.requested_by,
    options: JSON.parse(r.options),
    plan: JSON.parse(r.plan),
    migrations: JSON.parse(r.migrations),
    migrationsCompleted: r.migrations_completed,
    migrationsFailed: r.migrations_failed,
    hostsFreed: JSON.parse(r.hosts_freed),
    wattsBefore: Number(r.watts_before),
    wattsAfter: Number(r.watts_after),
    wattsSaved: Math.round(saved * 10) / 10,
    kwhPerDaySaved: Math.round(saved * 24) / 1000,
    createdAt: new Date(Number(r.created_at)).toISOString(),
    finishedAt: r.finished_at === null ? null : new Date(Number(r.finished_at)).toISOString(),
  };
};

/**
 * Consolidation runs: a snapshot of the fleet, `planConsolidation`, live migrations for its moves
 * (reason `consolidation`), and a report. When the run's migrations have ended, the hosts they
 * emptied go into maintenance with `standby` set — marked for power-off — and the report records
 * what was really freed and the power estimate for the fleet as it is then.
 */
export function createConsolidation(deps: {
  database: Database;
  migrations: LiveMigrations;
  now: () => number;
  /** Hosts the scheduler's static filters accept for each instance (see the compute service). */
  acceptingHosts: (instanceIds: string[]) => Promise<Map<string, string[]>>;
  /** The platform's default overcommit ratios (Nova's unless configured). */
  overcommit?: Overcommit;
}) {
  const { database, migrations, now, acceptingHosts } = deps;

  async function fleet(): Promise<ConsolidationHost[]> {
    const hosts = await database.db.selectFrom('hosts').selectAll().orderBy('name').execute();
    const instances = await database.db
      .selectFrom('instances')
      .leftJoin('server_groups', 'server_groups.id', 'instances.server_group_id')
      .select([
        'instances.id',
        'instances.host_id',
        'instances.state',
        'instances.desired_state',
        'instances.vcpus',
        'instances.memory_mib',
        'instances.target_vcpus',
        'instances.target_memory_mib',
        'instances.zone',
        'server_groups.id as group_id',
        'server_groups.policy as group_policy',
      ])
      .where('instances.deleted_at', 'is', null)
      .where('instances.host_id', 'is not', null)
      .execute();
    const moving = new Set(
      (
        await database.db
          .selectFrom('instance_migrations')
          .select('instance_id')
          .where('state', 'in', [...ACTIVE_MIGRATION_STATES])
          .execute()
      ).map((r) => r.instance_id),
    );
    const aggRows = await database.db
      .selectFrom('aggregate_hosts')
      .innerJoin('aggregates', 'aggregates.id', 'aggregate_hosts.aggregate_id')
      .select(['aggregate_hosts.host_id', 'aggregates.overcommit'])
      .execute();
    const targets = await acceptingHosts(instances.map((i) => i.id));
    return hosts.map((h) => {
      const oc: Overcommit = effectiveOvercommit(
        {
          overcommit: h.overcommit ? JSON.parse(h.overcommit) : undefined,
          aggregates: aggRows
            .filter((a) => a.host_id === h.id)
            .map((a) => ({
              name: '',
              metadata: {},
              overcommit: a.overcommit ? JSON.parse(a.overcommit) : undefined,
            })),
        },
        deps.overcommit ?? DEFAULT_OVERCOMMIT,
      );
      return {
        id: h.id,
        name: h.name,
        eligible: h.state === 'up' && h.enabled === 1 && h.maintenance === 0,
        zone: h.zone,
        vcpus: h.vcpus,
        memoryMiB: h.memory_mib,
        overcommit: { cpu: oc.cpu, ram: oc.ram },
        idleWatts: h.idle_watts,
        peakWatts: h.peak_watts,
        instances: instances
          .filter((i) => i.host_id === h.id)
          .map((i) => ({
            id: i.id,
            vcpus: i.target_vcpus ?? i.vcpus,
            memoryMiB: i.target_memory_mib ?? i.memory_mib,
            movable: i.state === 'running' && i.desired_state === 'running' && !moving.has(i.id),
            zone: i.zone ?? undefined,
            group: i.group_id && i.group_policy ? { id: i.group_id, policy: i.group_policy } : undefined,
            targets: targets.get(i.id),
          })),
      };
    });
  }

  return {
    /**
     * Plans (and unless `dryRun`, starts) a consolidation. `ctx` is the admin asking; the
     * background loop passes none.
     */
    async run(
      opts: { dryRun?: boolean; maxMigrations?: number; headroom?: { cpu?: number; ram?: number } },
      ctx?: RequestContext,
    ): Promise<ConsolidationReportView> {
      if (ctx) requireAllowed(ctx.principal, 'compute:MigrateInstance', { tenantId: null });
      const options: ConsolidationOptions = {
        maxMigrations: opts.maxMigrations ?? DEFAULT_CONSOLIDATION.maxMigrations,
        headroom: { ...DEFAULT_CONSOLIDATION.headroom, ...opts.headroom },
      };
      const plan = planConsolidation(await fleet(), options);
      const started: string[] = [];
      const failedToStart: string[] = [];
      if (!opts.dryRun) {
        for (const m of plan.moves) {
          try {
            started.push(
              (await migrations.start(m.instanceId, { host: m.to, reason: 'consolidation' }, ctx)).id,
            );
          } catch (err) {
            failedToStart.push(`${m.instanceId}: ${(err as Error).message}`);
          }
        }
      }
      const ts = now();
      const row: ConsolidationReportsTable = {
        id: newId('cons'),
        status: opts.dryRun ? 'planned' : 'running',
        dry_run: opts.dryRun ? 1 : 0,
        requested_by: ctx ? `${ctx.principal.accountId}:${ctx.principal.userName}` : 'system',
        options: JSON.stringify(options),
        plan: JSON.stringify({ ...plan, ...(failedToStart.length ? { notStarted: failedToStart } : {}) }),
        migrations: JSON.stringify(started),
        migrations_completed: 0,
        migrations_failed: failedToStart.length,
        hosts_freed: JSON.stringify([]),
        watts_before: plan.wattsBefore,
        watts_after: plan.wattsAfter,
        created_at: ts,
        finished_at: opts.dryRun ? ts : null,
      };
      await database.tx(async (trx) => {
        await trx.insertInto('consolidation_reports').values(row).execute();
        const details = {
          report: row.id,
          dryRun: !!opts.dryRun,
          moves: plan.moves.length,
          hostsToFree: plan.freedHosts.length,
        };
        await appendAudit(
          trx,
          ctx
            ? auditFor(ctx, 'compute:Consolidate', `consolidation/${row.id}`, { tenantId: null, details })
            : {
                tenantId: null,
                principal: 'system',
                action: 'compute:Consolidate',
                resource: `consolidation/${row.id}`,
                outcome: 'success',
                sourceIp: 'local',
                requestId: 'consolidation',
                details,
              },
        );
      });
      if (!opts.dryRun && started.length === 0) await this.progress();
      return this.get(row.id);
    },

    /**
     * Finishes running reports whose migrations have all ended: hosts left empty that the plan
     * meant to free go into maintenance + standby (marked for power-off).
     */
    async progress(): Promise<void> {
      const running = await database.db
        .selectFrom('consolidation_reports')
        .selectAll()
        .where('status', '=', 'running')
        .execute();
      for (const r of running) {
        const ids = JSON.parse(r.migrations) as string[];
        const rows = ids.length
          ? await database.db
              .selectFrom('instance_migrations')
              .select(['id', 'state'])
              .where('id', 'in', ids)
              .execute()
          : [];
        if (rows.some((m) => (ACTIVE_MIGRATION_STATES as readonly string[]).includes(m.state))) continue;
        const plan = JSON.parse(r.plan) as ConsolidationPlan;
        const ts = now();
        await database.tx(async (trx) => {
          const freed: string[] = [];
          for (const h of plan.freedHosts) {
            const left = await trx
              .selectFrom('instances')
              .select('id')
              .where('host_id', '=', h)
              .where('deleted_at', 'is', null)
              .executeTakeFirst();
            if (left) continue;
            await trx
              .updateTable('hosts')
              .set({ maintenance: 1, standby: 1, updated_at: ts })
              .where('id', '=', h)
              .execute();
            freed.push(h);
          }
          const done = rows.filter((m) => m.state === 'completed').length;
          await trx
            .updateTable('consolidation_reports')
            .set({
              status: 'completed',
              migrations_completed: done,
              migrations_failed: r.migrations_failed + rows.length - done,
              hosts_freed: JSON.stringify(freed),
              finished_at: ts,
            })
            .where('id', '=', r.id)
            .where('status', '=', 'running')
            .execute();
          await appendAudit(trx, {
            tenantId: null,
            principal: 'system',
            action: 'compute:Consolidate',
            resource: `consolidation/${r.id}`,
            outcome: 'success',
            sourceIp: 'local',
            requestId: 'consolidation',
            details: { finished: true, hostsFreed: freed, migrationsCompleted: done },
          });
        });
      }
    },

    async list(ctx: RequestContext, limit = 50): Promise<ConsolidationReportView[]> {
      requireAllowed(ctx.principal, 'compute:ListMigrations', { tenantId: null });
      const rows = await database.db
        .selectFrom('consolidation_reports')
        .selectAll()
        .orderBy('created_at', 'desc')
        .orderBy('id', 'desc')
        .limit(limit)
        .execute();
      return rows.map(view);
    },

    async get(id: string, ctx?: RequestContext): Promise<ConsolidationReportView> {
      if (ctx) requireAllowed(ctx.principal, 'compute:ListMigrations', { tenantId: null });
      const r = await database.db
        .selectFrom('consolidation_reports')
        .selectAll()
        .where('id', '=', id)
        .executeTakeFirst();
      if (!r) throw notFound('ConsolidationReport', id);
      return view(r);
    },

    /** The background loop's turn: finish what ended, then plan again if nothing is running. */
    async tick(opts: { maxMigrations?: number; headroom?: { cpu?: number; ram?: number } }) {
      await this.progress();
      const busy = await database.db
        .selectFrom('consolidation_reports')
        .select('id')
        .where('status', '=', 'running')
        .executeTakeFirst();
      if (busy) return;
      const plan = planConsolidation(await fleet(), {
        maxMigrations: opts.maxMigrations ?? DEFAULT_CONSOLIDATION.maxMigrations,
        headroom: { ...DEFAULT_CONSOLIDATION.headroom, ...opts.headroom },
      });
      if (plan.moves.length === 0) return; // nothing to gain; no report for an idle turn
      await this.run(opts);
    },
  };
}

export type Consolidation = ReturnType<typeof createConsolidation>;
