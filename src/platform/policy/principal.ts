import type { Role } from '../db/schema.js';

/** Who is calling: resolved by authentication (SigV4 access key, STS session or portal session token). */
export interface Principal {
  userId: string;
  userName: string;
  /** AWS-style unique id (`AIDA...`), what STS GetCallerIdentity reports as UserId. */
  uniqueId: string;
  tenantId: string;
  tenantName: string;
  tenantStatus: 'active' | 'suspended';
  accountId: string;
  role: Role;
  arn: string;
  /** How the caller proved who they are. */
  via: 'sigv4' | 'session' | 'sts';
  accessKeyId?: string;
}

/** Per-request facts every service needs for audit and errors. */
export interface RequestContext {
  requestId: string;
  sourceIp: string;
  principal: Principal;
}

export const userArn = (accountId: string, path: string, name: string) =>
  `arn:aws:iam::${accountId}:user${path}${name}`;

/** How a principal appears in audit rows: `<account>:<user>`. */
export const principalLabel = (p: Principal) => `${p.accountId}:${p.userName}`;
