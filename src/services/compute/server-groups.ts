import { appendAudit } from '../../platform/audit/audit.js';
import { type Database, isUniqueViolation } from '../../platform/db/database.js';
import type { ServerGroupsTable } from '../../platform/db/schema.js';
import { notFound, YunhaiError } from '../../platform/errors.js';
import { newId } from '../../platform/ids.js';
import { auditFor, guard } from '../../platform/policy/guard.js';
import type { RequestContext } from '../../platform/policy/principal.js';
import type { GroupPolicy } from '../scheduler/placement.js';

/**
 * Server groups: a tenant's named set of instances with a placement policy the scheduler keeps —
 * `affinity` (same host), `anti-affinity` (different hosts), or their `soft-` variants (preferred,
 * never refused). An instance joins a group when it is created.
 */
export interface ServerGroupView {
  id: string;
  tenantId: string;
  name: string;
  policy: GroupPolicy;
  members: string[];
  createdAt: string;
}

export const GROUP_POLICIES: GroupPolicy[] = [
  'affinity',
  'anti-affinity',
  'soft-affinity',
  'soft-anti-affinity',
];

export function createServerGroupService(deps: { database: Database; now: () => number }) {
  const { database, now } = deps;

  async function view(g: ServerGroupsTable): Promise<ServerGroupView> {
    const members = await database.db
      .selectFrom('instances')
      .select('id')
      .where('server_group_id', '=', g.id)
      .where('deleted_at', 'is', null)
      .orderBy('id')
      .execute();
    return {
      id: g.id,
      tenantId: g.tenant_id,
      name: g.name,
      policy: g.policy,
      members: members.map((m) => m.id),
      createdAt: new Date(g.created_at).toISOString(),
    };
  }

  /** The caller's group by id or name (other tenants' groups are not found). */
  async function resolve(ctx: RequestContext, idOrName: string): Promise<ServerGroupsTable> {
    const g = await database.db
      .selectFrom('server_groups')
      .selectAll()
      .where('tenant_id', '=', ctx.principal.tenantId)
      .where((eb) => eb.or([eb('id', '=', idOrName), eb('name', '=', idOrName)]))
      .executeTakeFirst();
    if (!g) throw notFound('Server group', idOrName);
    return g;
  }

  return {
    resolve,

    async create(
      ctx: RequestContext,
      input: { name: string; policy: GroupPolicy },
    ): Promise<ServerGroupView> {
      const tenantId = ctx.principal.tenantId;
      await guard(database, ctx, 'compute:CreateServerGroup', { tenantId }, `server-group/${input.name}`);
      const row: ServerGroupsTable = {
        id: newId('sg'),
        tenant_id: tenantId,
        name: input.name,
        policy: input.policy,
        created_at: now(),
      };
      try {
        await database.tx(async (trx) => {
          await trx.insertInto('server_groups').values(row).execute();
          await appendAudit(
            trx,
            auditFor(ctx, 'compute:CreateServerGroup', `server-group/${row.id}`, {
              tenantId,
              details: { name: input.name, policy: input.policy },
            }),
          );
        });
      } catch (err) {
        if (isUniqueViolation(err))
          throw new YunhaiError('AlreadyExists', `Server group ${input.name} already exists.`);
        throw err;
      }
      return view(row);
    },

    async list(ctx: RequestContext): Promise<{ items: ServerGroupView[]; nextCursor: null }> {
      const tenantId = ctx.principal.tenantId;
      await guard(database, ctx, 'compute:ListServerGroups', { tenantId }, 'server-groups');
      const rows = await database.db
        .selectFrom('server_groups')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .orderBy('name')
        .execute();
      return { items: await Promise.all(rows.map(view)), nextCursor: null };
    },

    async get(ctx: RequestContext, idOrName: string): Promise<ServerGroupView> {
      const g = await resolve(ctx, idOrName);
      await guard(
        database,
        ctx,
        'compute:ListServerGroups',
        { tenantId: g.tenant_id },
        `server-group/${g.id}`,
      );
      return view(g);
    },

    /** Deletes an empty group; one with live members is refused (delete or move them first). */
    async delete(ctx: RequestContext, idOrName: string): Promise<void> {
      const g = await resolve(ctx, idOrName);
      await guard(
        database,
        ctx,
        'compute:DeleteServerGroup',
        { tenantId: g.tenant_id },
        `server-group/${g.id}`,
      );
      await database.tx(async (trx) => {
        const member = await trx
          .selectFrom('instances')
          .select('id')
          .where('server_group_id', '=', g.id)
          .where('deleted_at', 'is', null)
          .executeTakeFirst();
        if (member)
          throw new YunhaiError(
            'InvalidState',
            `Server group ${g.name} still has members (e.g. ${member.id}).`,
          );
        await trx.deleteFrom('server_groups').where('id', '=', g.id).execute();
        await appendAudit(
          trx,
          auditFor(ctx, 'compute:DeleteServerGroup', `server-group/${g.id}`, { tenantId: g.tenant_id }),
        );
      });
    },
  };
}

export type ServerGroupService = ReturnType<typeof createServerGroupService>;
