/**
 * Table shapes shared by both dialects. Times are epoch milliseconds (bigint columns, JS numbers);
 * booleans are 0/1 integers; JSON is text. Keeping to these types lets one migration list serve
 * SQLite and PostgreSQL unchanged.
 */
import type { Generated } from 'kysely';

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
  /** Preferred portal language ('en' | 'zh-CN'); null: the browser's (0017_user_prefs). */
  locale: string | null;
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
  hosts: HostsTable;
  images: ImagesTable;
  flavors: FlavorsTable;
  key_pairs: KeyPairsTable;
  instances: InstancesTable;
  aggregates: AggregatesTable;
  aggregate_hosts: AggregateHostsTable;
  server_groups: ServerGroupsTable;
  instance_migrations: InstanceMigrationsTable;
  consolidation_reports: ConsolidationReportsTable;
  buckets: BucketsTable;
  objects: ObjectsTable;
  object_parts: ObjectPartsTable;
  multipart_uploads: MultipartUploadsTable;
  upload_parts: UploadPartsTable;
  object_sse_keys: ObjectSseKeysTable;
  queues: QueuesTable;
  queue_messages: QueueMessagesTable;
  queue_dedup: QueueDedupTable;
  queue_move_tasks: QueueMoveTasksTable;
  billing_rate_cards: BillingRateCardsTable;
  billing_charges: BillingChargesTable;
  billing_accumulators: BillingAccumulatorsTable;
  billing_invoices: BillingInvoicesTable;
  billing_invoice_lines: BillingInvoiceLinesTable;
  billing_accounts: BillingAccountsTable;
  billing_transactions: BillingTransactionsTable;
  billing_budgets: BillingBudgetsTable;
  billing_budget_alerts: BillingBudgetAlertsTable;
  billing_notifications: BillingNotificationsTable;
}

export interface HostsTable {
  id: string;
  name: string;
  token_hash: string;
  state: 'up' | 'down';
  /** Admin's intent: an enabled host takes new instances. */
  enabled: number;
  /** Availability zone ('default' unless the admin sets one). */
  zone: string;
  /** 1 while the host is being drained: no new instances. */
  maintenance: number;
  /** JSON Partial<Overcommit> for this host, or null (aggregates' or the default ratios). */
  overcommit: string | null;
  /** Power draw idle and at full load (W), for consolidation's energy estimate. */
  idle_watts: number;
  peak_watts: number;
  /** 1 when consolidation emptied the host for power-off (cleared when it is enabled again). */
  standby: number;
  driver: string;
  accelerator: string;
  hypervisor_version: string;
  agent_version: string;
  vcpus: number;
  memory_mib: number;
  disk_gib: number;
  firmware: string;
  /** Bumped whenever the desired state of anything on the host changes; agents long-poll on it. */
  generation: number;
  last_heartbeat_at: number | null;
  created_at: number;
  updated_at: number;
}

export interface ImagesTable {
  id: string;
  tenant_id: string | null;
  name: string;
  visibility: 'public' | 'private';
  /** qcow2 | raw | iso: a disk image; kernel: a kernel + initrd pair. */
  format: 'qcow2' | 'raw' | 'iso' | 'kernel';
  os_type: string;
  os_distro: string;
  firmware: 'bios' | 'uefi';
  status: 'importing' | 'available' | 'error';
  error: string | null;
  /** JSON: { disk?: FileRef, kernel?: FileRef, initrd?: FileRef } with name, size, sha256. */
  files: string;
  cmdline: string | null;
  size_bytes: number;
  virtual_size_bytes: number;
  min_disk_gib: number;
  created_at: number;
  updated_at: number;
}

export interface FlavorsTable {
  id: string;
  tenant_id: string | null;
  name: string;
  vcpus: number;
  memory_mib: number;
  disk_gib: number;
  max_vcpus: number;
  max_memory_mib: number;
  /** JSON object: aggregate metadata the flavor requires of its hosts (e.g. {"ssd":"true"}). */
  extra_specs: string;
  disabled: number;
  created_at: number;
}

export interface KeyPairsTable {
  id: string;
  tenant_id: string;
  name: string;
  public_key: string;
  fingerprint: string;
  created_at: number;
}

export type InstanceState =
  | 'building'
  | 'starting'
  | 'running'
  | 'stopping'
  | 'stopped'
  | 'rebooting'
  | 'resizing'
  | 'deleting'
  | 'deleted'
  | 'error';

export interface InstancesTable {
  id: string;
  tenant_id: string;
  name: string;
  image_id: string;
  flavor_id: string;
  host_id: string | null;
  state: InstanceState;
  desired_state: 'running' | 'stopped' | 'deleted';
  /** Current size (may differ from the flavor after a live resize). */
  vcpus: number;
  memory_mib: number;
  disk_gib: number;
  max_vcpus: number;
  max_memory_mib: number;
  /** Live-resize target while one is in progress. */
  target_vcpus: number | null;
  target_memory_mib: number | null;
  user_data: string | null;
  key_name: string | null;
  /** Sealed guest password, when one was set. */
  password_sealed: string | null;
  error_reason: string | null;
  reboot_seq: number;
  power_seq: number;
  guest_ready_at: number | null;
  launched_at: number | null;
  /** Usage is written up to this time (ms); null when not running. */
  metered_to: number | null;
  created_at: number;
  updated_at: number;
  deleted_at: number | null;
  server_group_id: string | null;
  /** The availability zone the instance was asked for, if any. */
  zone: string | null;
  /** 1: rebuilt on another host when its host goes down. */
  ha: number;
}

export interface AggregatesTable {
  id: string;
  name: string;
  /** JSON Record<string, string>. */
  metadata: string;
  /** JSON Partial<Overcommit>, or null. */
  overcommit: string | null;
  created_at: number;
  updated_at: number;
}

export interface AggregateHostsTable {
  aggregate_id: string;
  host_id: string;
}

export interface ConsolidationReportsTable {
  id: string;
  /** planned (dry run), running (migrations under way), completed. */
  status: 'planned' | 'running' | 'completed';
  dry_run: number;
  requested_by: string;
  /** JSON ConsolidationOptions. */
  options: string;
  /** JSON ConsolidationPlan. */
  plan: string;
  /** JSON string[]: the migrations started. */
  migrations: string;
  migrations_completed: number;
  migrations_failed: number;
  /** JSON string[]: hosts emptied and marked for power-off. */
  hosts_freed: string;
  watts_before: number;
  watts_after: number;
  created_at: number;
  finished_at: number | null;
}

export interface InstanceMigrationsTable {
  id: string;
  instance_id: string;
  tenant_id: string;
  source_host: string;
  target_host: string;
  state: 'preparing' | 'transferring' | 'switching' | 'completed' | 'failed';
  /** live: a running guest moves; cold: a stopped instance moves with its disk. */
  kind: 'live' | 'cold';
  /** Why it was started: 'admin', 'drain', 'consolidation'. */
  reason: string;
  requested_by: string;
  migrate_uri: string | null;
  disk_uri: string | null;
  phase: 'disk' | 'memory' | null;
  transferred_bytes: number;
  total_bytes: number;
  remaining_bytes: number;
  downtime_ms: number | null;
  total_time_ms: number | null;
  error: string | null;
  created_at: number;
  updated_at: number;
  finished_at: number | null;
}

export interface ServerGroupsTable {
  id: string;
  tenant_id: string;
  name: string;
  policy: 'affinity' | 'anti-affinity' | 'soft-affinity' | 'soft-anti-affinity';
  created_at: number;
}

export interface BucketsTable {
  /** Globally unique, like AWS. */
  name: string;
  tenant_id: string;
  owner_user_id: string | null;
  region: string;
  /** '' (never enabled), 'Enabled' or 'Suspended'. */
  versioning: '' | 'Enabled' | 'Suspended';
  object_lock_enabled: number;
  /** Canned ACL name, or a JSON access-control policy. */
  acl: string;
  /** JSON bucket policy document as the client sent it. */
  policy: string | null;
  cors: string | null;
  lifecycle: string | null;
  /** JSON array of {Key, Value}. */
  tagging: string | null;
  encryption: string | null;
  object_lock: string | null;
  ownership: string | null;
  /** JSON PublicAccessBlockConfiguration (four booleans), or null. */
  public_access_block: string | null;
  /** BucketLoggingStatus XML as stored, or null (logging off). */
  logging: string | null;
  object_count: number;
  /** Bytes of every stored version and every uploaded part. */
  bytes_stored: number;
  /** Storage byte-seconds accrued since the last metering flush, up to `accrued_at`. */
  accrued_byte_seconds: number;
  accrued_at: number;
  created_at: number;
}

/** One version of an object (or a delete marker). */
export interface ObjectsTable {
  id: string;
  bucket: string;
  key: string;
  /** 'null' for the version written while versioning was never enabled or suspended. */
  version_id: string;
  /** Orders versions of a key (newest highest). */
  seq: number;
  is_latest: number;
  delete_marker: number;
  /** The body; null for delete markers and for multipart objects (their parts are in object_parts). */
  blob_id: string | null;
  /** The body itself when it is small (stored form: encrypted when `sse` says so); else null. */
  body: Buffer | null;
  size: number;
  /** Without quotes. */
  etag: string;
  parts_count: number | null;
  content_type: string | null;
  content_encoding: string | null;
  content_disposition: string | null;
  content_language: string | null;
  cache_control: string | null;
  expires: string | null;
  /** JSON object of user metadata (names lowercase, without `x-amz-meta-`). */
  metadata: string;
  /** JSON array of {Key, Value}. */
  tags: string | null;
  storage_class: string;
  checksum_algorithm: string | null;
  checksum_value: string | null;
  checksum_type: string | null;
  /** JSON: how the body is encrypted at rest. */
  sse: string | null;
  lock_mode: string | null;
  lock_until: number | null;
  legal_hold: number;
  acl: string | null;
  owner_tenant_id: string;
  last_modified: number;
}

export interface ObjectPartsTable {
  object_id: string;
  part_number: number;
  blob_id: string;
  size: number;
  etag: string;
  checksum: string | null;
}

export interface MultipartUploadsTable {
  upload_id: string;
  bucket: string;
  key: string;
  initiator_tenant_id: string;
  /** Principal label of who started it. */
  initiator: string;
  /** JSON: the headers of CreateMultipartUpload that the completed object keeps. */
  params: string;
  created_at: number;
}

/** A tenant's object-encryption key, sealed by the platform master key (context names the tenant). */
export interface ObjectSseKeysTable {
  tenant_id: string;
  sealed_key: string;
  created_at: number;
}

export interface UploadPartsTable {
  upload_id: string;
  part_number: number;
  blob_id: string;
  size: number;
  etag: string;
  /** JSON object of checksums by algorithm (base64). */
  checksums: string;
  last_modified: number;
}

/** A message queue (SQS); `attributes` is JSON of every settable attribute, as SQS strings. */
export interface QueuesTable {
  id: string;
  tenant_id: string;
  name: string;
  fifo: number;
  attributes: string;
  /** JSON object of tags. */
  tags: string;
  /** Last PurgeQueue; messages sent before it are gone, another purge waits 60 s. */
  purged_at: number | null;
  created_at: number;
  updated_at: number;
}

/** One message; `seq` orders a queue (FIFO order, sequence numbers). */
export interface QueueMessagesTable {
  seq: Generated<number>;
  queue_id: string;
  message_id: string;
  body: string;
  md5_body: string;
  /** JSON object of message attributes (binary values base64). */
  attributes: string | null;
  md5_attributes: string | null;
  /** JSON object of message system attributes (AWSTraceHeader). */
  system_attributes: string | null;
  md5_system: string | null;
  group_id: string | null;
  dedup_id: string | null;
  sender_id: string;
  size: number;
  sent_at: number;
  /** Delivered by a receive only from this time (delay, visibility timeout). */
  visible_at: number;
  expires_at: number;
  receive_count: number;
  first_received_at: number | null;
  /** Token of the latest receive; part of the receipt handle. */
  receipt: string | null;
  /** Set on messages a redrive moved to a dead-letter queue. */
  dlq_source_arn: string | null;
}

/** FIFO deduplication ids seen in the last 5 minutes. */
export interface QueueDedupTable {
  queue_id: string;
  dedup_key: string;
  message_id: string;
  seq: number;
  expires_at: number;
}

export interface QueueMoveTasksTable {
  handle: string;
  tenant_id: string;
  source_queue_id: string;
  source_arn: string;
  /** null: back to each message's original source queue. */
  destination_arn: string | null;
  max_per_second: number | null;
  status: 'RUNNING' | 'COMPLETED' | 'CANCELLING' | 'CANCELLED' | 'FAILED';
  moved: number;
  to_move: number;
  failure_reason: string | null;
  started_at: number;
  updated_at: number;
}

// ---- billing (issue 8; src/services/billing/migration.ts) ----------------------------------

export interface BillingRateCardsTable {
  id: string;
  /** 'default' or the tenant id of an override card; versions count up per scope. */
  scope: string;
  tenant_id: string | null;
  name: string;
  version: number;
  effective_from: number;
  currency: string;
  /** JSON PriceDef[] (see services/billing/rating.ts). */
  prices: string;
  created_by: string;
  created_at: number;
}

export interface BillingChargesTable {
  usage_record_id: string;
  seg: number;
  tenant_id: string;
  service: string;
  resource_id: string;
  meter: string;
  billing_period: number;
  start_at: number;
  end_at: number;
  quantity: number;
  amount_micros: number;
  card_id: string | null;
  host_id: string | null;
  rated_at: number;
}

/** Exact cost so far per tenant, meter and billing period (BigInt values as decimal text). */
export interface BillingAccumulatorsTable {
  tenant_id: string;
  meter: string;
  billing_period: number;
  qty: string;
  num: string;
  den: string;
  charged: string;
}

export interface BillingInvoicesTable {
  id: string;
  number: string;
  tenant_id: string;
  period_start: number;
  period_end: number;
  currency: string;
  state: 'draft' | 'finalised' | 'paid' | 'void';
  subtotal_micros: number;
  tax_rate_ppm: number;
  tax_micros: number;
  credits_micros: number;
  total_micros: number;
  payment_method: string | null;
  created_at: number;
  updated_at: number;
  finalised_at: number | null;
  paid_at: number | null;
  voided_at: number | null;
}

export interface BillingInvoiceLinesTable {
  invoice_id: string;
  seq: number;
  service: string;
  resource_id: string;
  meter: string;
  /** Ledger units, decimal text (byte-seconds of a month pass 2^53). */
  quantity: string;
  amount_micros: number;
}

export interface BillingAccountsTable {
  tenant_id: string;
  mode: 'postpaid' | 'prepaid';
  balance_micros: number;
  credit_micros: number;
  status: 'ok' | 'notified' | 'restricted' | 'suspended';
  status_since: number;
  updated_at: number;
}

export interface BillingTransactionsTable {
  id: string;
  tenant_id: string;
  kind: 'top-up' | 'credit' | 'invoice-payment' | 'credit-applied';
  amount_micros: number;
  reference: string | null;
  idempotency_key: string | null;
  created_by: string;
  created_at: number;
}

export interface BillingBudgetsTable {
  id: string;
  tenant_id: string;
  name: string;
  amount_micros: number;
  /** JSON number[] of percentages, e.g. [50, 80, 100]. */
  thresholds: string;
  queue_name: string | null;
  webhook_url: string | null;
  created_at: number;
  updated_at: number;
}

export interface BillingBudgetAlertsTable {
  budget_id: string;
  billing_period: number;
  threshold: number;
  created_at: number;
}

export interface BillingNotificationsTable {
  id: string;
  tenant_id: string;
  kind: string;
  message: string;
  details: string;
  target_kind: 'none' | 'queue' | 'webhook';
  target: string | null;
  delivery_state: 'none' | 'pending' | 'delivered' | 'failed';
  attempts: number;
  next_attempt_at: number;
  last_error: string | null;
  created_at: number;
}
