// Test helpers for PostgreSQL-backed tests.
//
// `scripts/test.js` (i.e. `npm test`) starts a throwaway PostgreSQL cluster and exports its
// superuser URL as YUNHAI_TEST_PG_URL. Suites that need PostgreSQL use `describeIfPg`, so
// they are skipped (not failed) when no server is available, and get an isolated database
// per test/suite from `createTestDatabase()`.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { describe } from 'vitest';

export const PG_URL: string | undefined = process.env.YUNHAI_TEST_PG_URL || undefined;

export const describeIfPg = PG_URL ? describe : describe.skip;

export interface TestDatabase {
  /** Connection URL for the new database (same server and credentials as PG_URL). */
  url: string;
  /** Terminates all connections to the database and drops it. Safe to call more than once. */
  drop(): Promise<void>;
}

async function withAdminClient<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  if (!PG_URL) throw new Error('YUNHAI_TEST_PG_URL is not set; run tests via `npm test`');
  const client = new pg.Client({ connectionString: PG_URL });
  // Without a listener, a server-side disconnect would surface as an unhandled 'error' event.
  client.on('error', () => {});
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/** Creates a fresh, empty database `yunhai_test_<random>` on the test server. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `yunhai_test_${randomBytes(8).toString('hex')}`;
  await withAdminClient((client) => client.query(`CREATE DATABASE "${name}"`));

  const url = new URL(PG_URL!);
  url.pathname = `/${name}`;

  let dropped = false;
  return {
    url: url.toString(),
    async drop() {
      if (dropped) return;
      await withAdminClient(async (client) => {
        await client.query(
          'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
          [name],
        );
        const { rows } = await client.query<{ v: string }>('SHOW server_version_num');
        // WITH (FORCE) (PostgreSQL 13+) also kills connections opened after the terminate above.
        const force = Number(rows[0]?.v ?? 0) >= 130000 ? ' WITH (FORCE)' : '';
        await client.query(`DROP DATABASE IF EXISTS "${name}"${force}`);
      });
      dropped = true;
    },
  };
}
