import { type Kysely, type Migration, PostgresAdapter } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations run before the typed schema exists
type AnyDb = Kysely<any>;

/**
 * Small object bodies inline (issue 4, performance): a body up to INLINE_MAX_BYTES (service.ts) is
 * stored in its version row (`objects.body`, SQLite BLOB / PostgreSQL bytea; encrypted when the
 * version is), so a small PUT writes no blob file and syncs no file or directory. `blob_id` is null
 * for such a version; delete markers and multipart objects keep `body` null too.
 */
export const objectsInlineMigration: Migration = {
  async up(db: AnyDb) {
    const pg = db.getExecutor().adapter instanceof PostgresAdapter;
    await db.schema
      .alterTable('objects')
      .addColumn('body', pg ? 'bytea' : 'blob')
      .execute();
  },
  async down(db: AnyDb) {
    await db.schema.alterTable('objects').dropColumn('body').execute();
  },
};
