import { sql } from 'kysely';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { createTestDatabase, PG_URL } from '../../test-support/pg.js';
import { openDatabase } from './database.js';
import { runStoreConformance } from './store.case.js';

if (PG_URL) {
  runStoreConformance('postgres', async () => {
    const pg = await createTestDatabase();
    const database = await openDatabase({ url: pg.url, poolSize: 20 });
    return { database, cleanup: () => pg.drop() };
  });

  describe('postgres connection pool', () => {
    it('survives the server closing its idle connections and reconnects on the next query', async () => {
      const testDb = await createTestDatabase();
      const database = await openDatabase({ url: testDb.url, poolSize: 4 });
      try {
        await Promise.all([1, 2, 3].map(() => database.ping()));
        const admin = new pg.Client({ connectionString: PG_URL });
        await admin.connect();
        const dbName = new URL(testDb.url).pathname.slice(1);
        const killed = await admin.query(
          'select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()',
          [dbName],
        );
        await admin.end();
        expect(killed.rowCount).toBeGreaterThan(0);
        await new Promise((r) => setTimeout(r, 100));
        const r = await sql<{ one: number }>`select 1 as one`.execute(database.db);
        expect(Number(r.rows[0]?.one)).toBe(1);
      } finally {
        await database.close();
        await testDb.drop();
      }
    });
  });
} else {
  it.skip('store conformance: postgres (YUNHAI_TEST_PG_URL not set; run via npm test)', () => {});
}
