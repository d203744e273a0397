import type { Kysely, Migration } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations run before the typed schema exists
type AnyDb = Kysely<any>;

/**
 * User preferences (issue 6: the portal's language is remembered per user, on the server).
 * `users.locale` is null until the user picks a language; the portal then follows the browser.
 */
export const userPrefsMigration: Migration = {
  async up(db: AnyDb) {
    await db.schema.alterTable('users').addColumn('locale', 'text').execute();
  },
};
