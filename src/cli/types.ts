/** Wire shapes the CLI reads (the server's zod schemas are the source of truth; these are type-only). */
import type { FlavorView, InstanceView } from '../services/compute/service.js';
import type { HostView } from '../services/hosts/service.js';
import type { AccessKeyView, TenantView, UserView } from '../services/iam/schema.js';
import type { ImageView } from '../services/images/service.js';

export type { AccessKeyView, FlavorView, HostView, ImageView, InstanceView, TenantView, UserView };

export interface KeyPairView {
  id: string;
  name: string;
  fingerprint: string;
  createdAt: string;
}

export interface ConsoleChunk {
  /** Console bytes from the requested offset, decoded as UTF-8. */
  data: string;
  /** The offset to ask for next. */
  next: number;
  /** Bytes stored so far. */
  size: number;
}

export interface WhoAmI {
  user: UserView;
  tenant: TenantView;
  via: string;
}

export interface SessionView {
  token: string;
  expiresAt: string;
  user: UserView;
}

export interface AccessKeyWithSecret extends AccessKeyView {
  secretAccessKey: string;
}

export interface QuotaView {
  resource: string;
  limit: number;
  used: number;
}

export interface AuditEventView {
  seq: number;
  id: string;
  time: string;
  tenantId: string | null;
  principal: string;
  action: string;
  resource: string;
  outcome: 'success' | 'failure' | 'denied';
  errorCode: string | null;
  sourceIp: string;
  requestId: string;
  details: Record<string, unknown>;
  hash: string;
}

export interface AuditVerification {
  ok: boolean;
  checked: number;
  headSeq: number;
  headHash: string;
  problem?: { seq: number; reason: string };
}

export interface UsageRecordView {
  id: string;
  tenantId: string;
  service: string;
  resourceId: string;
  meter: string;
  quantity: number;
  periodStart: string;
  periodEnd: string;
}

export interface UsageSummaryView {
  tenantId: string;
  since: string;
  until: string;
  meters: { meter: string; total: number }[];
}
