import type { Kysely, Migration } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations run before the typed schema exists
type AnyDb = Kysely<any>;

/**
 * Live migrations (issue 7): one row per move of a running instance from a source host to a
 * target host, with its state, the target's addresses and the figures the agents report
 * (bytes moved, downtime). While a row is active the target's capacity is held for the instance.
 */
export const instanceMigrationsMigration: Migration = {
  async up(db: AnyDb) {
    await db.schema
      .createTable('instance_migrations')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('instance_id', 'text', (c) => c.notNull())
      .addColumn('tenant_id', 'text', (c) => c.notNull())
      .addColumn('source_host', 'text', (c) => c.notNull())
      .addColumn('target_host', 'text', (c) => c.notNull())
      .addColumn('state', 'text', (c) => c.notNull())
      .addColumn('reason', 'text', (c) => c.notNull())
      .addColumn('requested_by', 'text', (c) => c.notNull())
      .addColumn('migrate_uri', 'text')
      .addColumn('disk_uri', 'text')
      .addColumn('phase', 'text')
      .addColumn('transferred_bytes', 'bigint', (c) => c.notNull().defaultTo(0))
      .addColumn('total_bytes', 'bigint', (c) => c.notNull().defaultTo(0))
      .addColumn('remaining_bytes', 'bigint', (c) => c.notNull().defaultTo(0))
      .addColumn('downtime_ms', 'integer')
      .addColumn('total_time_ms', 'integer')
      .addColumn('error', 'text')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .addColumn('finished_at', 'bigint')
      .execute();
    await db.schema
      .createIndex('instance_migrations_instance')
      .on('instance_migrations')
      .columns(['instance_id', 'created_at'])
      .execute();
    await db.schema
      .createIndex('instance_migrations_state')
      .on('instance_migrations')
      .column('state')
      .execute();
  },
};

/** Cold migration (a stopped instance moves with its disk): each migration says which kind it is. */
export const migrationKindMigration: Migration = {
  async up(db: AnyDb) {
    await db.schema
      .alterTable('instance_migrations')
      .addColumn('kind', 'text', (c) => c.notNull().defaultTo('live'))
      .execute();
  },
};
