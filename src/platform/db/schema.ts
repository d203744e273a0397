/**
 * Table shapes shared by both dialects. Times are epoch milliseconds (bigint columns, JS numbers);
 * booleans are 0/1 integers; JSON is text. Keeping to these types lets one migration list serve
 * SQLite and PostgreSQL unchanged.
 */
export interface TenantsTable {
  id: string;
  account_id: string;
  name: string;
  display_name: string;
  status: 'active' | 'suspended';
  created_at: number;
  updated_at: number;
}

export type Role = 'platform-admin' | 'owner' | 'member' | 'readonly';

export interface UsersTable {
  id: string;
  tenant_id: string;
  name: string;
  unique_id: string;
  path: string;
  role: Role;
  display_name: string;
  email: string | null;
  password_hash: string | null;
  created_at: number;
  updated_at: number;
  last_login_at: number | null;
}

export interface AccessKeysTable {
  id: string;
  user_id: string;
  tenant_id: string;
  secret_sealed: string;
  status: 'Active' | 'Inactive';
  created_at: number;
  last_used_at: number | null;
}

export interface SessionsTable {
  id: string;
  token_hash: string;
  user_id: string;
  tenant_id: string;
  kind: 'portal' | 'cli' | 'sts';
  access_key_id: string | null;
  secret_sealed: string | null;
  created_at: number;
  expires_at: number;
}

export interface QuotasTable {
  tenant_id: string;
  resource: string;
  limit_value: number;
  used: number;
  updated_at: number;
}

export interface AuditEventsTable {
  seq: number;
  id: string;
  time: number;
  tenant_id: string | null;
  principal: string;
  action: string;
  resource: string;
  outcome: 'success' | 'failure' | 'denied';
  error_code: string | null;
  source_ip: string;
  request_id: string;
  details: string;
  prev_hash: string;
  hash: string;
}

export interface AuditHeadTable {
  id: number;
  seq: number;
  hash: string;
}

export interface UsageRecordsTable {
  id: string;
  tenant_id: string;
  service: string;
  resource_id: string;
  meter: string;
  quantity: number;
  period_start: number;
  period_end: number;
  idempotency_key: string;
  created_at: number;
}

export interface SettingsTable {
  key: string;
  value: string;
}

export interface Schema {
  tenants: TenantsTable;
  users: UsersTable;
  access_keys: AccessKeysTable;
  sessions: SessionsTable;
  quotas: QuotasTable;
  audit_events: AuditEventsTable;
  audit_head: AuditHeadTable;
  usage_records: UsageRecordsTable;
  settings: SettingsTable;
}
