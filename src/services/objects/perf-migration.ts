import { type Kysely, type Migration, sql } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations run before the typed schema exists
type AnyDb = Kysely<any>;

/**
 * Object storage performance (issue 4): the blob index covers only versions that have a blob. Small
 * bodies are stored inline (0016_objects_inline) with a null `blob_id`, and every one of them used
 * to add an entry under NULL to `objects_blob` (one more B-tree insert per small PUT, and one more
 * page in its group commit) that no query reads: the orphan sweep asks `blob_id IN (...)`, which a
 * partial index `WHERE blob_id IS NOT NULL` serves on both databases.
 */
export const objectsPerfMigration: Migration = {
  async up(db: AnyDb) {
    await db.schema.dropIndex('objects_blob').execute();
    await sql`CREATE INDEX objects_blob ON objects (blob_id) WHERE blob_id IS NOT NULL`.execute(db);
  },
  async down(db: AnyDb) {
    await db.schema.dropIndex('objects_blob').execute();
    await db.schema.createIndex('objects_blob').on('objects').column('blob_id').execute();
  },
};
