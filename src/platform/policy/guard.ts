import { type AuditInput, appendAuditAlone } from '../audit/audit.js';
import type { Database } from '../db/database.js';
import { YunhaiError } from '../errors.js';
import { type Action, authorize, type ResourceRef } from './authorize.js';
import { principalLabel, type RequestContext } from './principal.js';

/** An audit row for something the caller of `ctx` did: success, in the caller's tenant, unless `extra` says otherwise. */
export function auditFor(
  ctx: RequestContext,
  action: string,
  resource: string,
  extra: Partial<AuditInput> = {},
): AuditInput {
  return {
    tenantId: ctx.principal.tenantId,
    principal: principalLabel(ctx.principal),
    action,
    resource,
    outcome: 'success',
    sourceIp: ctx.sourceIp,
    requestId: ctx.requestId,
    ...extra,
  };
}

/**
 * The policy check services run before they act: `authorize()`, and on a denial an audit row
 * (in its own transaction, since nothing else is written) and an AccessDenied or TenantSuspended.
 */
export async function guard(
  database: Database,
  ctx: RequestContext,
  action: Action,
  resource: ResourceRef,
  label: string,
): Promise<void> {
  const d = authorize(ctx.principal, action, resource);
  if (d.allowed) return;
  const code = d.reason === 'the tenant is suspended' ? 'TenantSuspended' : 'AccessDenied';
  await appendAuditAlone(
    database,
    // Recorded in the caller's tenant: another tenant's log never names this caller.
    auditFor(ctx, action, label, {
      outcome: 'denied',
      errorCode: code,
      details: { reason: d.reason },
    }),
  );
  throw new YunhaiError(
    code,
    `User ${ctx.principal.arn} is not authorized to perform ${action} on ${label}: ${d.reason}.`,
  );
}
