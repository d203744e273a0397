import type { Kysely, Migration } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations run before the typed schema exists
type AnyDb = Kysely<any>;

/**
 * Server-side encryption of object bodies (issue 4): one random key per tenant, sealed by the
 * platform master key; object versions keep their own data key wrapped by it (objects.sse).
 * Also two bucket documents: the public access block and the logging configuration.
 */
export const objectsSseMigration: Migration = {
  async up(db: AnyDb) {
    await db.schema
      .createTable('object_sse_keys')
      .addColumn('tenant_id', 'text', (c) => c.primaryKey())
      .addColumn('sealed_key', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .execute();
    // Bucket documents added with encryption: PublicAccessBlockConfiguration and BucketLoggingStatus.
    await db.schema.alterTable('buckets').addColumn('public_access_block', 'text').execute();
    await db.schema.alterTable('buckets').addColumn('logging', 'text').execute();
  },
  async down(db: AnyDb) {
    await db.schema.dropTable('object_sse_keys').execute();
    await db.schema.alterTable('buckets').dropColumn('public_access_block').execute();
    await db.schema.alterTable('buckets').dropColumn('logging').execute();
  },
};
