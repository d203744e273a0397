import { it } from 'vitest';
import { createTestDatabase, PG_URL } from '../../test-support/pg.js';
import { openDatabase } from './database.js';
import { runStoreConformance } from './store.case.js';

if (PG_URL) {
  runStoreConformance('postgres', async () => {
    const pg = await createTestDatabase();
    const database = await openDatabase({ url: pg.url, poolSize: 20 });
    return { database, cleanup: () => pg.drop() };
  });
} else {
  it.skip('store conformance: postgres (YUNHAI_TEST_PG_URL not set; run via npm test)', () => {});
}
