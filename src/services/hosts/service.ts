import { appendAudit } from '../../platform/audit/audit.js';
import type { Sealer } from '../../platform/crypto/sealer.js';
import type { Database } from '../../platform/db/database.js';
import type { HostsTable } from '../../platform/db/schema.js';
import { notFound, YunhaiError } from '../../platform/errors.js';
import { newId, newToken } from '../../platform/ids.js';
import { requireAllowed } from '../../platform/policy/authorize.js';
import { auditFor } from '../../platform/policy/guard.js';
import { principalLabel, type RequestContext } from '../../platform/policy/principal.js';
import type { ComputeService } from '../compute/service.js';
import type { Overcommit } from '../scheduler/placement.js';
import { createAggregateService } from './aggregates.js';
import type { HostNotifier } from './notifier.js';
import { listZones } from './zones.js';

export interface HostCapabilitiesInput {
  driver: string;
  accelerator: string;
  hypervisorVersion: string;
  vcpus: number;
  memoryMiB: number;
  diskGiB: number;
  firmware: string[];
}

export interface HostView {
  id: string;
  name: string;
  state: 'up' | 'down';
  enabled: boolean;
  /** Being drained: takes no new instances. */
  maintenance: boolean;
  zone: string;
  /** Per-host overcommit ratios (null: its aggregates' or the platform's). */
  overcommit: Partial<Overcommit> | null;
  aggregates: string[];
  driver: string;
  accelerator: string;
  hypervisorVersion: string;
  agentVersion: string;
  vcpus: number;
  memoryMiB: number;
  diskGiB: number;
  firmware: string[];
  allocated: { instances: number; vcpus: number; memoryMiB: number; diskGiB: number };
  /** Power draw idle and at full load (W), for consolidation's energy estimate. */
  power: { idleWatts: number; peakWatts: number; standby: boolean };
  lastHeartbeatAt: string | null;
}

const REGISTRATION_KEY = 'agent_registration_token';

/**
 * Compute hosts: agents register with a registration token and get a per-host token back; they
 * heartbeat, long-poll their desired state and report events. A host whose heartbeats stop for
 * `graceMs` is marked down and its in-flight work ends in error.
 */
export function createHostService(deps: {
  database: Database;
  sealer: Sealer;
  compute: ComputeService;
  notifier: HostNotifier;
  graceMs?: number;
  now?: () => number;
  /** Interactive console sessions the host's agent should serve (the console relay). */
  consoleSessions?: (hostId: string) => { generation: number; instanceIds: string[] };
}) {
  const { database, sealer, notifier } = deps;
  const now = deps.now ?? Date.now;
  const graceMs = deps.graceMs ?? 30_000;

  async function view(h: HostsTable): Promise<HostView> {
    const a = await database.db
      .selectFrom('instances')
      .select([
        (eb) => eb.fn.countAll<number | string>().as('n'),
        (eb) => eb.fn.sum<number | string>('vcpus').as('v'),
        (eb) => eb.fn.sum<number | string>('memory_mib').as('m'),
        (eb) => eb.fn.sum<number | string>('disk_gib').as('d'),
      ])
      .where('host_id', '=', h.id)
      .where('deleted_at', 'is', null)
      .executeTakeFirstOrThrow();
    const aggs = await database.db
      .selectFrom('aggregate_hosts')
      .innerJoin('aggregates', 'aggregates.id', 'aggregate_hosts.aggregate_id')
      .select('aggregates.name')
      .where('aggregate_hosts.host_id', '=', h.id)
      .orderBy('aggregates.name')
      .execute();
    return {
      id: h.id,
      name: h.name,
      state: h.state,
      enabled: h.enabled === 1,
      maintenance: h.maintenance === 1,
      zone: h.zone,
      overcommit: h.overcommit === null ? null : (JSON.parse(h.overcommit) as Partial<Overcommit>),
      aggregates: aggs.map((a) => a.name),
      power: { idleWatts: h.idle_watts, peakWatts: h.peak_watts, standby: h.standby === 1 },
      driver: h.driver,
      accelerator: h.accelerator,
      hypervisorVersion: h.hypervisor_version,
      agentVersion: h.agent_version,
      vcpus: h.vcpus,
      memoryMiB: h.memory_mib,
      diskGiB: h.disk_gib,
      firmware: JSON.parse(h.firmware),
      allocated: {
        instances: Number(a.n),
        vcpus: Number(a.v ?? 0),
        memoryMiB: Number(a.m ?? 0),
        diskGiB: Number(a.d ?? 0),
      },
      lastHeartbeatAt: h.last_heartbeat_at === null ? null : new Date(h.last_heartbeat_at).toISOString(),
    };
  }

  return {
    aggregates: createAggregateService({ database, now }),

    /** Creates (or replaces) the token agents use to register. Shown once. */
    async createRegistrationToken(ctx?: RequestContext): Promise<string> {
      if (ctx) requireAllowed(ctx.principal, 'hosts:CreateRegistrationToken', { tenantId: null });
      const token = newToken('yhr');
      await database.tx(async (trx) => {
        await trx
          .insertInto('settings')
          .values({ key: REGISTRATION_KEY, value: sealer.mac(token) })
          .onConflict((oc) => oc.column('key').doUpdateSet({ value: sealer.mac(token) }))
          .execute();
        await appendAudit(trx, {
          tenantId: ctx?.principal.tenantId ?? null,
          principal: ctx ? principalLabel(ctx.principal) : 'system',
          action: 'hosts:CreateRegistrationToken',
          resource: 'hosts',
          outcome: 'success',
          sourceIp: ctx?.sourceIp ?? 'local',
          requestId: ctx?.requestId ?? 'local',
        });
      });
      return token;
    },

    /** Registers (or re-registers) a host by name; returns its id and a fresh host token. */
    async register(input: {
      registrationToken: string;
      name: string;
      agentVersion: string;
      capabilities: HostCapabilitiesInput;
      sourceIp: string;
    }) {
      const stored = await database.db
        .selectFrom('settings')
        .select('value')
        .where('key', '=', REGISTRATION_KEY)
        .executeTakeFirst();
      if (!stored || stored.value !== sealer.mac(input.registrationToken)) {
        await database.tx((trx) =>
          appendAudit(trx, {
            tenantId: null,
            principal: `host:${input.name}`.slice(0, 200),
            action: 'hosts:Register',
            resource: 'hosts',
            outcome: 'failure',
            errorCode: 'Unauthenticated',
            sourceIp: input.sourceIp,
            requestId: 'register',
          }),
        );
        throw new YunhaiError('Unauthenticated', 'The registration token is not valid.');
      }
      const token = newToken('yhh');
      const c = input.capabilities;
      const ts = now();
      const fields = {
        token_hash: sealer.mac(token),
        state: 'up' as const,
        driver: c.driver,
        accelerator: c.accelerator,
        hypervisor_version: c.hypervisorVersion,
        agent_version: input.agentVersion,
        vcpus: c.vcpus,
        memory_mib: c.memoryMiB,
        disk_gib: c.diskGiB,
        firmware: JSON.stringify(c.firmware),
        last_heartbeat_at: ts,
        updated_at: ts,
      };
      const id = await database.tx(async (trx) => {
        const existing = await trx
          .selectFrom('hosts')
          .select('id')
          .where('name', '=', input.name)
          .executeTakeFirst();
        let hostId: string;
        if (existing) {
          hostId = existing.id;
          await trx.updateTable('hosts').set(fields).where('id', '=', hostId).execute();
        } else {
          hostId = newId('host');
          await trx
            .insertInto('hosts')
            .values({
              id: hostId,
              name: input.name,
              enabled: 1,
              zone: 'default',
              maintenance: 0,
              overcommit: null,
              idle_watts: 120,
              peak_watts: 350,
              standby: 0,
              generation: 1,
              created_at: ts,
              ...fields,
            })
            .execute();
        }
        await appendAudit(trx, {
          tenantId: null,
          principal: `host:${input.name}`,
          action: 'hosts:Register',
          resource: `host/${hostId}`,
          outcome: 'success',
          sourceIp: input.sourceIp,
          requestId: 'register',
          details: { ...c },
        });
        return hostId;
      });
      return { hostId: id, hostToken: token };
    },

    async hostForToken(token: string): Promise<HostsTable | undefined> {
      return database.db
        .selectFrom('hosts')
        .selectAll()
        .where('token_hash', '=', sealer.mac(token))
        .executeTakeFirst();
    },

    async heartbeat(hostId: string) {
      const ts = now();
      const h = await database.db
        .selectFrom('hosts')
        .select(['state', 'generation'])
        .where('id', '=', hostId)
        .executeTakeFirstOrThrow();
      await database.db
        .updateTable('hosts')
        .set({ last_heartbeat_at: ts, state: 'up', updated_at: ts })
        .where('id', '=', hostId)
        .execute();
      return { generation: h.generation };
    },

    /**
     * Long poll: answers when the host's generation passes `after`, when its console sessions
     * differ from generation `consoleAfter` (when given), or after `waitMs`.
     */
    async desired(
      hostId: string,
      after: number,
      waitMs: number,
      signal?: AbortSignal,
      consoleAfter?: number,
    ) {
      const read = () =>
        database.db
          .selectFrom('hosts')
          .select('generation')
          .where('id', '=', hostId)
          .executeTakeFirstOrThrow();
      const consoles = () => deps.consoleSessions?.(hostId) ?? { generation: 0, instanceIds: [] };
      let h = await read();
      // No await between the console check and the wait: a change in between would be missed.
      if (
        h.generation <= after &&
        waitMs > 0 &&
        (consoleAfter === undefined || consoles().generation === consoleAfter)
      ) {
        await notifier.wait(hostId, waitMs, signal);
        h = await read();
      }
      const instances = await deps.compute.desiredForHost(hostId);
      const c = consoles();
      return {
        generation: h.generation,
        instances,
        consoleGeneration: c.generation,
        consoleSessions: c.instanceIds,
      };
    },

    /** Marks hosts down whose heartbeats stopped; returns the ids newly marked. */
    async markLostHosts(): Promise<string[]> {
      const cutoff = now() - graceMs;
      const lost = await database.db
        .selectFrom('hosts')
        .select(['id', 'name'])
        .where('state', '=', 'up')
        .where('last_heartbeat_at', '<', cutoff)
        .execute();
      for (const h of lost) {
        await database.tx(async (trx) => {
          await trx
            .updateTable('hosts')
            .set({ state: 'down', updated_at: now() })
            .where('id', '=', h.id)
            .execute();
          await appendAudit(trx, {
            tenantId: null,
            principal: 'system',
            action: 'hosts:HostDown',
            resource: `host/${h.id}`,
            outcome: 'failure',
            errorCode: 'HeartbeatLost',
            sourceIp: 'local',
            requestId: 'monitor',
            details: { name: h.name, graceMs },
          });
        });
        await deps.compute.hostLost(h.id);
      }
      return lost.map((h) => h.id);
    },

    async list(ctx: RequestContext) {
      requireAllowed(ctx.principal, 'hosts:ListHosts', { tenantId: null });
      const rows = await database.db.selectFrom('hosts').selectAll().orderBy('name').execute();
      return { items: await Promise.all(rows.map(view)), nextCursor: null };
    },

    /** Availability zones with host counts, capacity and allocation (platform admins). */
    async zones(ctx: RequestContext, q: { zone?: string } = {}) {
      requireAllowed(ctx.principal, 'hosts:ListHosts', { tenantId: null });
      return listZones(database, q.zone);
    },

    async get(ctx: RequestContext, id: string) {
      requireAllowed(ctx.principal, 'hosts:ListHosts', { tenantId: null });
      const h = await database.db
        .selectFrom('hosts')
        .selectAll()
        .where((eb) => eb.or([eb('id', '=', id), eb('name', '=', id)]))
        .executeTakeFirst();
      if (!h) throw notFound('Host', id);
      return view(h);
    },

    async setEnabled(ctx: RequestContext, id: string, enabled: boolean) {
      return this.update(ctx, id, { enabled }, enabled ? 'hosts:EnableHost' : 'hosts:DisableHost');
    },

    /**
     * Changes what the admin decides about a host: enabled, maintenance (drained: no new
     * instances), availability zone, overcommit ratios (null clears them).
     */
    async update(
      ctx: RequestContext,
      id: string,
      patch: {
        enabled?: boolean;
        maintenance?: boolean;
        zone?: string;
        overcommit?: Partial<Overcommit> | null;
        idleWatts?: number;
        peakWatts?: number;
      },
      action = 'hosts:UpdateHost',
    ): Promise<HostView> {
      requireAllowed(ctx.principal, 'hosts:UpdateHost', { tenantId: null });
      const h = await this.get(ctx, id);
      await database.tx(async (trx) => {
        await trx
          .updateTable('hosts')
          .set({
            ...(patch.enabled !== undefined ? { enabled: patch.enabled ? 1 : 0 } : {}),
            ...(patch.maintenance !== undefined ? { maintenance: patch.maintenance ? 1 : 0 } : {}),
            // Back in service: no longer marked for power-off.
            ...(patch.enabled === true || patch.maintenance === false ? { standby: 0 } : {}),
            ...(patch.idleWatts !== undefined ? { idle_watts: patch.idleWatts } : {}),
            ...(patch.peakWatts !== undefined ? { peak_watts: patch.peakWatts } : {}),
            ...(patch.zone !== undefined ? { zone: patch.zone } : {}),
            ...(patch.overcommit !== undefined
              ? { overcommit: patch.overcommit === null ? null : JSON.stringify(patch.overcommit) }
              : {}),
            updated_at: now(),
          })
          .where('id', '=', h.id)
          .execute();
        await appendAudit(trx, auditFor(ctx, action, `host/${h.id}`, { details: { ...patch } }));
      });
      return this.get(ctx, h.id);
    },
  };
}

export type HostService = ReturnType<typeof createHostService>;
