import { appendAuditAlone } from '../../platform/audit/audit.js';
import type { Database } from '../../platform/db/database.js';
import { YunhaiError } from '../../platform/errors.js';
import type { AccessLevel } from '../../platform/policy/authorize.js';
import { auditFor } from '../../platform/policy/guard.js';
import type { Principal, RequestContext } from '../../platform/policy/principal.js';

/**
 * Billing's actions and their access levels. They follow the rules of the platform's one policy
 * check (platform/policy/authorize.ts): platform admins may do everything; a tenant reaches only
 * its own billing; `read` for every role, `admin` for the owner, `platform` for platform admins
 * (rate cards, top-ups, invoice state changes, showback). They are listed here rather than in the
 * shared ACTIONS catalogue, which belongs to another work area; moving them there is one edit.
 */
export const BILLING_ACTIONS = {
  'billing:ListMeters': 'read',
  'billing:ListRateCards': 'read',
  'billing:CreateRateCard': 'platform',
  'billing:RateUsage': 'platform',
  'billing:GetSpend': 'read',
  'billing:ListInvoices': 'read',
  'billing:GetInvoice': 'read',
  'billing:GenerateInvoices': 'platform',
  'billing:FinaliseInvoice': 'platform',
  'billing:PayInvoice': 'platform',
  'billing:VoidInvoice': 'platform',
  'billing:GetAccount': 'read',
  'billing:UpdateAccount': 'platform',
  'billing:TopUp': 'platform',
  'billing:GrantCredit': 'platform',
  'billing:ListBudgets': 'read',
  'billing:CreateBudget': 'admin',
  'billing:DeleteBudget': 'admin',
  'billing:ListNotifications': 'read',
  'billing:Showback': 'platform',
  'billing:GetSettings': 'read',
  'billing:UpdateSettings': 'platform',
} as const satisfies Record<string, AccessLevel>;

export type BillingAction = keyof typeof BILLING_ACTIONS;

export function decideBilling(
  p: Principal,
  action: BillingAction,
  tenantId: string | null,
): { allowed: boolean; reason: string } {
  const level = BILLING_ACTIONS[action] as AccessLevel;
  if (p.role === 'platform-admin') return { allowed: true, reason: 'platform admin' };
  if (level === 'platform') return { allowed: false, reason: `${action} needs a platform admin` };
  if (tenantId !== p.tenantId) return { allowed: false, reason: 'the resource belongs to another tenant' };
  // A suspended tenant still reads its bills.
  if (p.tenantStatus === 'suspended' && level !== 'read')
    return { allowed: false, reason: 'the tenant is suspended' };
  if (level === 'admin' && p.role !== 'owner')
    return { allowed: false, reason: `${action} needs the tenant owner role` };
  if (level === 'write' && p.role === 'readonly')
    return { allowed: false, reason: `${action} is not allowed for read-only users` };
  return { allowed: true, reason: p.role };
}

/** The check before billing acts: a denial is audited (in its own transaction) and thrown. */
export async function guardBilling(
  database: Database,
  ctx: RequestContext,
  action: BillingAction,
  tenantId: string | null,
  label: string,
): Promise<void> {
  const d = decideBilling(ctx.principal, action, tenantId);
  if (d.allowed) return;
  const code = d.reason === 'the tenant is suspended' ? 'TenantSuspended' : 'AccessDenied';
  await appendAuditAlone(
    database,
    auditFor(ctx, action, label, { outcome: 'denied', errorCode: code, details: { reason: d.reason } }),
  );
  throw new YunhaiError(
    code,
    `User ${ctx.principal.arn} is not authorized to perform ${action} on ${label}: ${d.reason}.`,
  );
}

/** Which tenant a request is about (default the caller's); guardBilling refuses another tenant's to non-admins. */
export const tenantOf = (ctx: RequestContext, asked: string | undefined) => asked ?? ctx.principal.tenantId;
