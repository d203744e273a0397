import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase } from './database.js';
import { runStoreConformance } from './store.case.js';

runStoreConformance('sqlite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'yunhai-sqlite-'));
  const database = await openDatabase({ url: join(dir, 'test.db') });
  return { database, cleanup: async () => rmSync(dir, { recursive: true, force: true }) };
});
