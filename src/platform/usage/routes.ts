import { z } from 'zod';
import type { Database } from '../db/database.js';
import { YunhaiError } from '../errors.js';
import { decodeCursor, encodeCursor } from '../http/pagination.js';
import { type RestContext, type RouteDef, route } from '../http/rest.js';
import { requireAllowed } from '../policy/authorize.js';
import { listUsage, summariseUsage } from './ledger.js';

const record = z.object({
  id: z.string(),
  tenantId: z.string(),
  service: z.string(),
  resourceId: z.string(),
  meter: z.string(),
  quantity: z.number(),
  periodStart: z.string(),
  periodEnd: z.string(),
});
const isoTime = z.iso.datetime({ offset: true }).transform((s) => Date.parse(s));

function tenantScope(ctx: RestContext, tenantId: string | undefined): string | undefined {
  requireAllowed(ctx.principal, 'usage:ListRecords', { tenantId: tenantId ?? ctx.principal.tenantId });
  return ctx.principal.role === 'platform-admin' ? tenantId : ctx.principal.tenantId;
}

export function usageRoutes(database: Database): RouteDef[] {
  return [
    route({
      method: 'GET',
      path: '/usage',
      operationId: 'listUsage',
      summary: 'Usage ledger rows, oldest first.',
      tag: 'usage',
      query: z.strictObject({
        limit: z.coerce.number().int().min(1).max(1000).default(100),
        cursor: z.string().max(300).optional(),
        tenantId: z.string().max(64).optional(),
        meter: z.string().max(100).optional(),
        service: z.string().max(50).optional(),
        since: isoTime.optional(),
        until: isoTime.optional(),
      }),
      response: z.object({ items: z.array(record), nextCursor: z.string().nullable() }),
      handler: async (ctx, { query }) => {
        const tenantId = tenantScope(ctx, query.tenantId);
        const c = decodeCursor(query.cursor);
        if (c !== undefined && (typeof c[0] !== 'number' || typeof c[1] !== 'string')) {
          throw new YunhaiError('ValidationError', 'The pagination cursor is malformed.');
        }
        const rows = await listUsage(database.db, {
          tenantId,
          meter: query.meter,
          service: query.service,
          since: query.since,
          until: query.until,
          after: c ? { periodStart: c[0] as number, id: c[1] as string } : undefined,
          limit: query.limit + 1,
        });
        const shown = rows.slice(0, query.limit);
        const last = shown[shown.length - 1];
        return {
          items: shown.map((r) => ({
            id: r.id,
            tenantId: r.tenant_id,
            service: r.service,
            resourceId: r.resource_id,
            meter: r.meter,
            quantity: r.quantity,
            periodStart: new Date(r.period_start).toISOString(),
            periodEnd: new Date(r.period_end).toISOString(),
          })),
          nextCursor: rows.length > query.limit && last ? encodeCursor([last.period_start, last.id]) : null,
        };
      },
    }),
    route({
      method: 'GET',
      path: '/usage/summary',
      operationId: 'summariseUsage',
      summary: 'Totals per meter for a tenant over a period (default: this calendar month, UTC).',
      tag: 'usage',
      query: z.strictObject({
        tenantId: z.string().max(64).optional(),
        since: isoTime.optional(),
        until: isoTime.optional(),
      }),
      response: z.object({
        tenantId: z.string(),
        since: z.string(),
        until: z.string(),
        meters: z.array(z.object({ meter: z.string(), total: z.number() })),
      }),
      handler: async (ctx, { query }) => {
        const tenantId = tenantScope(ctx, query.tenantId) ?? ctx.principal.tenantId;
        const now = new Date();
        const since = query.since ?? Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1);
        const until = query.until ?? Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1);
        return {
          tenantId,
          since: new Date(since).toISOString(),
          until: new Date(until).toISOString(),
          meters: await summariseUsage(database.db, tenantId, since, until),
        };
      },
    }),
  ];
}
