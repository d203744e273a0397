import { z } from 'zod';
import type { Database } from '../db/database.js';
import { YunhaiError } from '../errors.js';
import { decodeCursor, encodeCursor } from '../http/pagination.js';
import { type RestContext, type RouteDef, route } from '../http/rest.js';
import { requireAllowed } from '../policy/authorize.js';
import { listAudit, verifyAudit } from './audit.js';

const event = z.object({
  seq: z.number(),
  id: z.string(),
  time: z.string(),
  tenantId: z.string().nullable(),
  principal: z.string(),
  action: z.string(),
  resource: z.string(),
  outcome: z.enum(['success', 'failure', 'denied']),
  errorCode: z.string().nullable(),
  sourceIp: z.string(),
  requestId: z.string(),
  details: z.record(z.string(), z.unknown()),
  hash: z.string(),
});

const isoTime = z.iso.datetime({ offset: true }).transform((s) => Date.parse(s));

/** Which tenant's events the caller may read: their own, or (platform admins) any or all. */
function scope(ctx: RestContext, tenantId: string | undefined): string | undefined {
  if (ctx.principal.role === 'platform-admin') return tenantId;
  if (tenantId !== undefined && tenantId !== ctx.principal.tenantId) {
    throw new YunhaiError('AccessDenied', 'You can read only your own tenant’s audit events.');
  }
  return ctx.principal.tenantId;
}

export function auditRoutes(database: Database): RouteDef[] {
  return [
    route({
      method: 'GET',
      path: '/audit',
      operationId: 'listAuditEvents',
      summary: 'Audit events, newest first, with filters.',
      tag: 'audit',
      query: z.strictObject({
        limit: z.coerce.number().int().min(1).max(1000).default(50),
        cursor: z.string().max(200).optional(),
        tenantId: z.string().max(64).optional(),
        principal: z.string().max(300).optional(),
        action: z.string().max(100).optional(),
        outcome: z.enum(['success', 'failure', 'denied']).optional(),
        since: isoTime.optional(),
        until: isoTime.optional(),
      }),
      response: z.object({ items: z.array(event), nextCursor: z.string().nullable() }),
      handler: async (ctx, { query }) => {
        requireAllowed(ctx.principal, 'audit:ListEvents', { tenantId: ctx.principal.tenantId });
        const before = decodeCursor(query.cursor)?.[0];
        if (before !== undefined && typeof before !== 'number')
          throw new YunhaiError('ValidationError', 'The pagination cursor is malformed.');
        const rows = await listAudit(database.db, {
          tenantId: scope(ctx, query.tenantId),
          principal: query.principal,
          action: query.action,
          outcome: query.outcome,
          since: query.since,
          until: query.until,
          beforeSeq: before,
          limit: query.limit + 1,
        });
        const shown = rows.slice(0, query.limit);
        return {
          items: shown.map((r) => ({
            seq: r.seq,
            id: r.id,
            time: new Date(r.time).toISOString(),
            tenantId: r.tenant_id,
            principal: r.principal,
            action: r.action,
            resource: r.resource,
            outcome: r.outcome,
            errorCode: r.error_code,
            sourceIp: r.source_ip,
            requestId: r.request_id,
            details: JSON.parse(r.details) as Record<string, unknown>,
            hash: r.hash,
          })),
          nextCursor: rows.length > query.limit ? encodeCursor([shown[shown.length - 1]!.seq]) : null,
        };
      },
    }),
    route({
      method: 'GET',
      path: '/audit/verify',
      operationId: 'verifyAuditChain',
      summary: 'Recompute the audit hash chain and report the first broken row, if any.',
      tag: 'audit',
      response: z.object({
        ok: z.boolean(),
        checked: z.number(),
        headSeq: z.number(),
        headHash: z.string(),
        problem: z.object({ seq: z.number(), reason: z.string() }).optional(),
      }),
      handler: async (ctx) => {
        requireAllowed(ctx.principal, 'audit:VerifyChain', { tenantId: null });
        return verifyAudit(database.db);
      },
    }),
  ];
}
