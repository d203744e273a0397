import { appendAudit } from '../../platform/audit/audit.js';
import type { Database, Tx } from '../../platform/db/database.js';
import type { AggregatesTable } from '../../platform/db/schema.js';
import { notFound, YunhaiError } from '../../platform/errors.js';
import { newId } from '../../platform/ids.js';
import { requireAllowed } from '../../platform/policy/authorize.js';
import { auditFor } from '../../platform/policy/guard.js';
import type { RequestContext } from '../../platform/policy/principal.js';
import type { Overcommit } from '../scheduler/placement.js';

/**
 * Host aggregates: named sets of hosts with metadata the scheduler matches against (`ssd=true`;
 * `filter_tenant_id=t1,t2` reserves the hosts for those tenants) and optional overcommit ratios
 * for their hosts. A host may be in several aggregates. Platform admins only.
 */
export interface AggregateView {
  id: string;
  name: string;
  metadata: Record<string, string>;
  overcommit: Partial<Overcommit> | null;
  hosts: string[];
  createdAt: string;
}

export function createAggregateService(deps: { database: Database; now: () => number }) {
  const { database, now } = deps;

  async function view(a: AggregatesTable): Promise<AggregateView> {
    const hosts = await database.db
      .selectFrom('aggregate_hosts')
      .innerJoin('hosts', 'hosts.id', 'aggregate_hosts.host_id')
      .select('hosts.name')
      .where('aggregate_hosts.aggregate_id', '=', a.id)
      .orderBy('hosts.name')
      .execute();
    return {
      id: a.id,
      name: a.name,
      metadata: JSON.parse(a.metadata) as Record<string, string>,
      overcommit: a.overcommit === null ? null : (JSON.parse(a.overcommit) as Partial<Overcommit>),
      hosts: hosts.map((h) => h.name),
      createdAt: new Date(a.created_at).toISOString(),
    };
  }

  async function row(idOrName: string): Promise<AggregatesTable> {
    const a = await database.db
      .selectFrom('aggregates')
      .selectAll()
      .where((eb) => eb.or([eb('id', '=', idOrName), eb('name', '=', idOrName)]))
      .executeTakeFirst();
    if (!a) throw notFound('Aggregate', idOrName);
    return a;
  }

  async function hostId(idOrName: string): Promise<string> {
    const h = await database.db
      .selectFrom('hosts')
      .select('id')
      .where((eb) => eb.or([eb('id', '=', idOrName), eb('name', '=', idOrName)]))
      .executeTakeFirst();
    if (!h) throw notFound('Host', idOrName);
    return h.id;
  }

  const audit = (trx: Tx, ctx: RequestContext, action: string, resource: string, details?: object) =>
    appendAudit(trx, auditFor(ctx, action, resource, { details: details as Record<string, unknown> }));

  const allow = (ctx: RequestContext) =>
    requireAllowed(ctx.principal, 'hosts:ManageAggregates', { tenantId: null });

  return {
    async create(
      ctx: RequestContext,
      input: { name: string; metadata?: Record<string, string>; overcommit?: Partial<Overcommit> },
    ): Promise<AggregateView> {
      allow(ctx);
      const exists = await database.db
        .selectFrom('aggregates')
        .select('id')
        .where('name', '=', input.name)
        .executeTakeFirst();
      if (exists) throw new YunhaiError('AlreadyExists', `Aggregate ${input.name} already exists.`);
      const id = newId('agg');
      const ts = now();
      await database.tx(async (trx) => {
        await trx
          .insertInto('aggregates')
          .values({
            id,
            name: input.name,
            metadata: JSON.stringify(input.metadata ?? {}),
            overcommit: input.overcommit ? JSON.stringify(input.overcommit) : null,
            created_at: ts,
            updated_at: ts,
          })
          .execute();
        await audit(trx, ctx, 'hosts:CreateAggregate', `aggregate/${id}`, input);
      });
      return this.get(ctx, id);
    },

    async list(ctx: RequestContext): Promise<{ items: AggregateView[]; nextCursor: null }> {
      allow(ctx);
      const rows = await database.db.selectFrom('aggregates').selectAll().orderBy('name').execute();
      return { items: await Promise.all(rows.map(view)), nextCursor: null };
    },

    async get(ctx: RequestContext, idOrName: string): Promise<AggregateView> {
      allow(ctx);
      return view(await row(idOrName));
    },

    /** Replaces metadata and/or overcommit (null clears the ratios). */
    async update(
      ctx: RequestContext,
      idOrName: string,
      patch: { metadata?: Record<string, string>; overcommit?: Partial<Overcommit> | null },
    ): Promise<AggregateView> {
      allow(ctx);
      const a = await row(idOrName);
      await database.tx(async (trx) => {
        await trx
          .updateTable('aggregates')
          .set({
            ...(patch.metadata !== undefined ? { metadata: JSON.stringify(patch.metadata) } : {}),
            ...(patch.overcommit !== undefined
              ? { overcommit: patch.overcommit === null ? null : JSON.stringify(patch.overcommit) }
              : {}),
            updated_at: now(),
          })
          .where('id', '=', a.id)
          .execute();
        await audit(trx, ctx, 'hosts:UpdateAggregate', `aggregate/${a.id}`, patch);
      });
      return this.get(ctx, a.id);
    },

    async delete(ctx: RequestContext, idOrName: string): Promise<void> {
      allow(ctx);
      const a = await row(idOrName);
      await database.tx(async (trx) => {
        await trx.deleteFrom('aggregate_hosts').where('aggregate_id', '=', a.id).execute();
        await trx.deleteFrom('aggregates').where('id', '=', a.id).execute();
        await audit(trx, ctx, 'hosts:DeleteAggregate', `aggregate/${a.id}`);
      });
    },

    async addHost(ctx: RequestContext, idOrName: string, host: string): Promise<AggregateView> {
      allow(ctx);
      const a = await row(idOrName);
      const h = await hostId(host);
      await database.tx(async (trx) => {
        const there = await trx
          .selectFrom('aggregate_hosts')
          .select('host_id')
          .where('aggregate_id', '=', a.id)
          .where('host_id', '=', h)
          .executeTakeFirst();
        if (!there)
          await trx.insertInto('aggregate_hosts').values({ aggregate_id: a.id, host_id: h }).execute();
        await audit(trx, ctx, 'hosts:AddHostToAggregate', `aggregate/${a.id}`, { hostId: h });
      });
      return this.get(ctx, a.id);
    },

    async removeHost(ctx: RequestContext, idOrName: string, host: string): Promise<AggregateView> {
      allow(ctx);
      const a = await row(idOrName);
      const h = await hostId(host);
      await database.tx(async (trx) => {
        await trx
          .deleteFrom('aggregate_hosts')
          .where('aggregate_id', '=', a.id)
          .where('host_id', '=', h)
          .execute();
        await audit(trx, ctx, 'hosts:RemoveHostFromAggregate', `aggregate/${a.id}`, { hostId: h });
      });
      return this.get(ctx, a.id);
    },
  };
}

export type AggregateService = ReturnType<typeof createAggregateService>;
