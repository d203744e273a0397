import type { Kysely, Migration } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations run before the typed schema exists
type AnyDb = Kysely<any>;

/**
 * Energy-saving consolidation (issue 7): each host's idle and peak power draw (set by the admin;
 * defaults are a typical 2-socket server), whether consolidation emptied it for power-off
 * (standby), and one report per consolidation run.
 */
export const consolidationMigration: Migration = {
  async up(db: AnyDb) {
    await db.schema
      .alterTable('hosts')
      .addColumn('idle_watts', 'integer', (c) => c.notNull().defaultTo(120))
      .execute();
    await db.schema
      .alterTable('hosts')
      .addColumn('peak_watts', 'integer', (c) => c.notNull().defaultTo(350))
      .execute();
    await db.schema
      .alterTable('hosts')
      .addColumn('standby', 'integer', (c) => c.notNull().defaultTo(0))
      .execute();
    await db.schema
      .createTable('consolidation_reports')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('dry_run', 'integer', (c) => c.notNull())
      .addColumn('requested_by', 'text', (c) => c.notNull())
      .addColumn('options', 'text', (c) => c.notNull())
      .addColumn('plan', 'text', (c) => c.notNull())
      .addColumn('migrations', 'text', (c) => c.notNull())
      .addColumn('migrations_completed', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('migrations_failed', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('hosts_freed', 'text', (c) => c.notNull())
      .addColumn('watts_before', 'real', (c) => c.notNull())
      .addColumn('watts_after', 'real', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('finished_at', 'bigint')
      .execute();
    await db.schema
      .createIndex('consolidation_reports_created')
      .on('consolidation_reports')
      .column('created_at')
      .execute();
  },
};
