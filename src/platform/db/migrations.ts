import { type Kysely, type Migration, type MigrationProvider, PostgresAdapter, sql } from 'kysely';
import { billingMigration } from '../../services/billing/migration.js';
import {
  instanceMigrationsMigration,
  migrationKindMigration,
} from '../../services/compute/live-migration-schema.js';
import { userPrefsMigration } from '../../services/iam/prefs-migration.js';
import { objectsInlineMigration } from '../../services/objects/inline-migration.js';
import { objectsPerfMigration } from '../../services/objects/perf-migration.js';
import { objectsSseMigration } from '../../services/objects/sse-migration.js';
import { consolidationMigration } from '../../services/scheduler/consolidation-schema.js';
import { flavorSpecsMigration, fleetMigration } from '../../services/scheduler/fleet-migration.js';

/**
 * The one ordered migration list for both dialects. Append only: never edit a migration that
 * has shipped; add the next one. Names sort in order (`0001_...`).
 */
// biome-ignore lint/suspicious/noExplicitAny: migrations run before the typed schema exists
type AnyDb = Kysely<any>;

export const MIGRATIONS: Record<string, Migration> = {
  '0001_foundation': {
    async up(db: AnyDb) {
      await db.schema
        .createTable('tenants')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('account_id', 'text', (c) => c.notNull().unique())
        .addColumn('name', 'text', (c) => c.notNull().unique())
        .addColumn('display_name', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('users')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('unique_id', 'text', (c) => c.notNull().unique())
        .addColumn('path', 'text', (c) => c.notNull())
        .addColumn('role', 'text', (c) => c.notNull())
        .addColumn('display_name', 'text', (c) => c.notNull())
        .addColumn('email', 'text')
        .addColumn('password_hash', 'text')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addColumn('last_login_at', 'bigint')
        .addUniqueConstraint('users_tenant_name', ['tenant_id', 'name'])
        .execute();

      await db.schema
        .createTable('access_keys')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('user_id', 'text', (c) => c.notNull().references('users.id'))
        .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
        .addColumn('secret_sealed', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('last_used_at', 'bigint')
        .execute();
      await db.schema.createIndex('access_keys_user').on('access_keys').column('user_id').execute();

      await db.schema
        .createTable('sessions')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('token_hash', 'text', (c) => c.notNull().unique())
        .addColumn('user_id', 'text', (c) => c.notNull().references('users.id'))
        .addColumn('tenant_id', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('access_key_id', 'text', (c) => c.unique())
        .addColumn('secret_sealed', 'text')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('sessions_expiry').on('sessions').column('expires_at').execute();

      await db.schema
        .createTable('quotas')
        .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
        .addColumn('resource', 'text', (c) => c.notNull())
        .addColumn('limit_value', 'bigint', (c) => c.notNull())
        .addColumn('used', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('quotas_pk', ['tenant_id', 'resource'])
        .execute();

      await db.schema
        .createTable('audit_events')
        .addColumn('seq', 'bigint', (c) => c.primaryKey())
        .addColumn('id', 'text', (c) => c.notNull().unique())
        .addColumn('time', 'bigint', (c) => c.notNull())
        .addColumn('tenant_id', 'text')
        .addColumn('principal', 'text', (c) => c.notNull())
        .addColumn('action', 'text', (c) => c.notNull())
        .addColumn('resource', 'text', (c) => c.notNull())
        .addColumn('outcome', 'text', (c) => c.notNull())
        .addColumn('error_code', 'text')
        .addColumn('source_ip', 'text', (c) => c.notNull())
        .addColumn('request_id', 'text', (c) => c.notNull())
        .addColumn('details', 'text', (c) => c.notNull())
        .addColumn('prev_hash', 'text', (c) => c.notNull())
        .addColumn('hash', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('audit_events_tenant_time')
        .on('audit_events')
        .columns(['tenant_id', 'seq'])
        .execute();

      await db.schema
        .createTable('audit_head')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('seq', 'bigint', (c) => c.notNull())
        .addColumn('hash', 'text', (c) => c.notNull())
        .execute();
      await db.insertInto('audit_head').values({ id: 1, seq: 0, hash: GENESIS_HASH }).execute();

      await db.schema
        .createTable('usage_records')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('tenant_id', 'text', (c) => c.notNull())
        .addColumn('service', 'text', (c) => c.notNull())
        .addColumn('resource_id', 'text', (c) => c.notNull())
        .addColumn('meter', 'text', (c) => c.notNull())
        .addColumn('quantity', 'bigint', (c) => c.notNull())
        .addColumn('period_start', 'bigint', (c) => c.notNull())
        .addColumn('period_end', 'bigint', (c) => c.notNull())
        .addColumn('idempotency_key', 'text', (c) => c.notNull().unique())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('usage_records_tenant_period')
        .on('usage_records')
        .columns(['tenant_id', 'period_start'])
        .execute();

      await db.schema
        .createTable('settings')
        .addColumn('key', 'text', (c) => c.primaryKey())
        .addColumn('value', 'text', (c) => c.notNull())
        .execute();
    },
  },
  '0002_compute': {
    async up(db: AnyDb) {
      await db.schema
        .createTable('hosts')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull().unique())
        .addColumn('token_hash', 'text', (c) => c.notNull().unique())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('enabled', 'integer', (c) => c.notNull())
        .addColumn('driver', 'text', (c) => c.notNull())
        .addColumn('accelerator', 'text', (c) => c.notNull())
        .addColumn('hypervisor_version', 'text', (c) => c.notNull())
        .addColumn('agent_version', 'text', (c) => c.notNull())
        .addColumn('vcpus', 'integer', (c) => c.notNull())
        .addColumn('memory_mib', 'bigint', (c) => c.notNull())
        .addColumn('disk_gib', 'bigint', (c) => c.notNull())
        .addColumn('firmware', 'text', (c) => c.notNull())
        .addColumn('generation', 'bigint', (c) => c.notNull())
        .addColumn('last_heartbeat_at', 'bigint')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('images')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('tenant_id', 'text', (c) => c.references('tenants.id'))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('visibility', 'text', (c) => c.notNull())
        .addColumn('format', 'text', (c) => c.notNull())
        .addColumn('os_type', 'text', (c) => c.notNull())
        .addColumn('os_distro', 'text', (c) => c.notNull())
        .addColumn('firmware', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('error', 'text')
        .addColumn('files', 'text', (c) => c.notNull())
        .addColumn('cmdline', 'text')
        .addColumn('size_bytes', 'bigint', (c) => c.notNull())
        .addColumn('virtual_size_bytes', 'bigint', (c) => c.notNull())
        .addColumn('min_disk_gib', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('images_tenant_name').on('images').columns(['tenant_id', 'name']).execute();

      await db.schema
        .createTable('flavors')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('tenant_id', 'text', (c) => c.references('tenants.id'))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('vcpus', 'integer', (c) => c.notNull())
        .addColumn('memory_mib', 'bigint', (c) => c.notNull())
        .addColumn('disk_gib', 'integer', (c) => c.notNull())
        .addColumn('max_vcpus', 'integer', (c) => c.notNull())
        .addColumn('max_memory_mib', 'bigint', (c) => c.notNull())
        .addColumn('disabled', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('flavors_name').on('flavors').columns(['name', 'tenant_id']).execute();

      await db.schema
        .createTable('key_pairs')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('public_key', 'text', (c) => c.notNull())
        .addColumn('fingerprint', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addUniqueConstraint('key_pairs_tenant_name', ['tenant_id', 'name'])
        .execute();

      await db.schema
        .createTable('instances')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('image_id', 'text', (c) => c.notNull())
        .addColumn('flavor_id', 'text', (c) => c.notNull())
        .addColumn('host_id', 'text')
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('desired_state', 'text', (c) => c.notNull())
        .addColumn('vcpus', 'integer', (c) => c.notNull())
        .addColumn('memory_mib', 'bigint', (c) => c.notNull())
        .addColumn('disk_gib', 'integer', (c) => c.notNull())
        .addColumn('max_vcpus', 'integer', (c) => c.notNull())
        .addColumn('max_memory_mib', 'bigint', (c) => c.notNull())
        .addColumn('target_vcpus', 'integer')
        .addColumn('target_memory_mib', 'bigint')
        .addColumn('user_data', 'text')
        .addColumn('key_name', 'text')
        .addColumn('password_sealed', 'text')
        .addColumn('error_reason', 'text')
        .addColumn('reboot_seq', 'integer', (c) => c.notNull())
        .addColumn('power_seq', 'integer', (c) => c.notNull())
        .addColumn('guest_ready_at', 'bigint')
        .addColumn('launched_at', 'bigint')
        .addColumn('metered_to', 'bigint')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addColumn('deleted_at', 'bigint')
        .execute();
      await db.schema
        .createIndex('instances_tenant')
        .on('instances')
        .columns(['tenant_id', 'name'])
        .execute();
      await db.schema.createIndex('instances_host').on('instances').columns(['host_id']).execute();
    },
  },
  '0003_objects': {
    async up(db: AnyDb) {
      // S3 lists keys in UTF-8 byte order: SQLite's default BINARY collation is that; PostgreSQL
      // needs the "C" collation on the key columns whatever the database's locale.
      const keyType = db.getExecutor().adapter instanceof PostgresAdapter ? sql`text collate "C"` : 'text';

      await db.schema
        .createTable('buckets')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
        .addColumn('owner_user_id', 'text')
        .addColumn('region', 'text', (c) => c.notNull())
        .addColumn('versioning', 'text', (c) => c.notNull())
        .addColumn('object_lock_enabled', 'integer', (c) => c.notNull())
        .addColumn('acl', 'text', (c) => c.notNull())
        .addColumn('policy', 'text')
        .addColumn('cors', 'text')
        .addColumn('lifecycle', 'text')
        .addColumn('tagging', 'text')
        .addColumn('encryption', 'text')
        .addColumn('object_lock', 'text')
        .addColumn('ownership', 'text')
        .addColumn('object_count', 'bigint', (c) => c.notNull())
        .addColumn('bytes_stored', 'bigint', (c) => c.notNull())
        .addColumn('accrued_byte_seconds', 'bigint', (c) => c.notNull())
        .addColumn('accrued_at', 'bigint', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('buckets_tenant').on('buckets').columns(['tenant_id', 'name']).execute();

      await db.schema
        .createTable('objects')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('bucket', 'text', (c) => c.notNull())
        .addColumn('key', keyType, (c) => c.notNull())
        .addColumn('version_id', 'text', (c) => c.notNull())
        .addColumn('seq', 'bigint', (c) => c.notNull())
        .addColumn('is_latest', 'integer', (c) => c.notNull())
        .addColumn('delete_marker', 'integer', (c) => c.notNull())
        .addColumn('blob_id', 'text')
        .addColumn('size', 'bigint', (c) => c.notNull())
        .addColumn('etag', 'text', (c) => c.notNull())
        .addColumn('parts_count', 'integer')
        .addColumn('content_type', 'text')
        .addColumn('content_encoding', 'text')
        .addColumn('content_disposition', 'text')
        .addColumn('content_language', 'text')
        .addColumn('cache_control', 'text')
        .addColumn('expires', 'text')
        .addColumn('metadata', 'text', (c) => c.notNull())
        .addColumn('tags', 'text')
        .addColumn('storage_class', 'text', (c) => c.notNull())
        .addColumn('checksum_algorithm', 'text')
        .addColumn('checksum_value', 'text')
        .addColumn('checksum_type', 'text')
        .addColumn('sse', 'text')
        .addColumn('lock_mode', 'text')
        .addColumn('lock_until', 'bigint')
        .addColumn('legal_hold', 'integer', (c) => c.notNull())
        .addColumn('acl', 'text')
        .addColumn('owner_tenant_id', 'text', (c) => c.notNull())
        .addColumn('last_modified', 'bigint', (c) => c.notNull())
        .addUniqueConstraint('objects_version', ['bucket', 'key', 'version_id'])
        .execute();
      await db.schema
        .createIndex('objects_history')
        .on('objects')
        .columns(['bucket', 'key', 'seq'])
        .execute();
      await db.schema
        .createIndex('objects_latest')
        .on('objects')
        .columns(['bucket', 'is_latest', 'key'])
        .execute();
      await db.schema.createIndex('objects_blob').on('objects').column('blob_id').execute();

      // Parts of an object completed from a multipart upload, in order; their blobs are the body.
      await db.schema
        .createTable('object_parts')
        .addColumn('object_id', 'text', (c) => c.notNull())
        .addColumn('part_number', 'integer', (c) => c.notNull())
        .addColumn('blob_id', 'text', (c) => c.notNull())
        .addColumn('size', 'bigint', (c) => c.notNull())
        .addColumn('etag', 'text', (c) => c.notNull())
        .addColumn('checksum', 'text')
        .addPrimaryKeyConstraint('object_parts_pk', ['object_id', 'part_number'])
        .execute();
      await db.schema.createIndex('object_parts_blob').on('object_parts').column('blob_id').execute();

      await db.schema
        .createTable('multipart_uploads')
        .addColumn('upload_id', 'text', (c) => c.primaryKey())
        .addColumn('bucket', 'text', (c) => c.notNull())
        .addColumn('key', keyType, (c) => c.notNull())
        .addColumn('initiator_tenant_id', 'text', (c) => c.notNull())
        .addColumn('initiator', 'text', (c) => c.notNull())
        .addColumn('params', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('multipart_uploads_key')
        .on('multipart_uploads')
        .columns(['bucket', 'key', 'created_at'])
        .execute();

      await db.schema
        .createTable('upload_parts')
        .addColumn('upload_id', 'text', (c) => c.notNull())
        .addColumn('part_number', 'integer', (c) => c.notNull())
        .addColumn('blob_id', 'text', (c) => c.notNull())
        .addColumn('size', 'bigint', (c) => c.notNull())
        .addColumn('etag', 'text', (c) => c.notNull())
        .addColumn('checksums', 'text', (c) => c.notNull())
        .addColumn('last_modified', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('upload_parts_pk', ['upload_id', 'part_number'])
        .execute();
      await db.schema.createIndex('upload_parts_blob').on('upload_parts').column('blob_id').execute();
    },
  },
  '0004_queues': {
    async up(db: AnyDb) {
      const pg = db.getExecutor().adapter instanceof PostgresAdapter;
      const nameType = pg ? sql`text collate "C"` : 'text';
      await db.schema
        .createTable('queues')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
        .addColumn('name', nameType, (c) => c.notNull())
        .addColumn('fifo', 'integer', (c) => c.notNull())
        .addColumn('attributes', 'text', (c) => c.notNull())
        .addColumn('tags', 'text', (c) => c.notNull())
        .addColumn('purged_at', 'bigint')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addUniqueConstraint('queues_tenant_name', ['tenant_id', 'name'])
        .execute();
      await db.schema
        .createTable('queue_messages')
        .addColumn('seq', pg ? 'bigserial' : 'integer', (c) =>
          pg ? c.primaryKey() : c.primaryKey().autoIncrement(),
        )
        .addColumn('queue_id', 'text', (c) => c.notNull())
        .addColumn('message_id', 'text', (c) => c.notNull())
        .addColumn('body', 'text', (c) => c.notNull())
        .addColumn('md5_body', 'text', (c) => c.notNull())
        .addColumn('attributes', 'text')
        .addColumn('md5_attributes', 'text')
        .addColumn('system_attributes', 'text')
        .addColumn('md5_system', 'text')
        .addColumn('group_id', 'text')
        .addColumn('dedup_id', 'text')
        .addColumn('sender_id', 'text', (c) => c.notNull())
        .addColumn('size', 'integer', (c) => c.notNull())
        .addColumn('sent_at', 'bigint', (c) => c.notNull())
        .addColumn('visible_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addColumn('receive_count', 'integer', (c) => c.notNull())
        .addColumn('first_received_at', 'bigint')
        .addColumn('receipt', 'text')
        .addColumn('dlq_source_arn', 'text')
        .execute();
      await db.schema
        .createIndex('queue_messages_visible')
        .on('queue_messages')
        .columns(['queue_id', 'visible_at'])
        .execute();
      await db.schema
        .createIndex('queue_messages_order')
        .on('queue_messages')
        .columns(['queue_id', 'seq'])
        .execute();
      await db.schema
        .createIndex('queue_messages_expiry')
        .on('queue_messages')
        .column('expires_at')
        .execute();
      await db.schema
        .createTable('queue_dedup')
        .addColumn('queue_id', 'text', (c) => c.notNull())
        .addColumn('dedup_key', 'text', (c) => c.notNull())
        .addColumn('message_id', 'text', (c) => c.notNull())
        .addColumn('seq', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('queue_dedup_pk', ['queue_id', 'dedup_key'])
        .execute();
      await db.schema.createIndex('queue_dedup_expiry').on('queue_dedup').column('expires_at').execute();
      await db.schema
        .createTable('queue_move_tasks')
        .addColumn('handle', 'text', (c) => c.primaryKey())
        .addColumn('tenant_id', 'text', (c) => c.notNull())
        .addColumn('source_queue_id', 'text', (c) => c.notNull())
        .addColumn('source_arn', 'text', (c) => c.notNull())
        .addColumn('destination_arn', 'text')
        .addColumn('max_per_second', 'integer')
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('moved', 'bigint', (c) => c.notNull())
        .addColumn('to_move', 'bigint', (c) => c.notNull())
        .addColumn('failure_reason', 'text')
        .addColumn('started_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('queue_move_tasks_source')
        .on('queue_move_tasks')
        .columns(['source_queue_id', 'started_at'])
        .execute();
    },
  },
  '0007_fleet': fleetMigration,
  '0012_instance_migrations': instanceMigrationsMigration,
  '0013_consolidation': consolidationMigration,
  '0014_migration_kind': migrationKindMigration,
  '0015_flavor_specs': flavorSpecsMigration,
  '0008_objects_sse': objectsSseMigration,
  '0010_billing': billingMigration,
  '0017_user_prefs': userPrefsMigration,
  '0016_objects_inline': objectsInlineMigration,
  '0018_objects_perf': objectsPerfMigration,
};

/** The hash the audit chain starts from (sha256 of the empty string). */
export const GENESIS_HASH = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

export const migrationProvider: MigrationProvider = {
  getMigrations: async () => MIGRATIONS,
};
