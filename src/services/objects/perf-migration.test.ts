import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Database, openDatabase } from '../../platform/db/database.js';

describe('migration 0018_objects_perf on SQLite', () => {
  let database: Database;
  beforeAll(async () => {
    database = await openDatabase({ url: ':memory:' });
  });
  afterAll(async () => database.close());

  it('indexes only versions that have a blob, and the orphan sweep query still uses that index', async () => {
    const def = await sql<{ sql: string }>`SELECT sql FROM sqlite_master WHERE name = 'objects_blob'`.execute(
      database.db,
    );
    expect(def.rows[0]?.sql).toMatch(/WHERE blob_id IS NOT NULL/i);
    const plan = await sql<{
      detail: string;
    }>`EXPLAIN QUERY PLAN SELECT blob_id FROM objects WHERE blob_id IN ('a', 'b')`.execute(database.db);
    expect(plan.rows.map((r) => r.detail).join('\n')).toMatch(/objects_blob/);
  });
});
