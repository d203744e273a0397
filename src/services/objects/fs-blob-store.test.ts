import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runBlobStoreConformance } from './blob-store.case.js';
import { createFsBlobStore } from './fs-blob-store.js';

runBlobStoreConformance('fs', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'yunhai-blobs-'));
  return {
    store: createFsBlobStore({ dir }),
    tempCount: async () => readdirSync(join(dir, 'tmp')).length,
    cleanup: async () => rmSync(dir, { recursive: true, force: true }),
  };
});

describe('fs blob store', () => {
  it('removes temp files of puts a crash interrupted', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'yunhai-blobs-'));
    const store = createFsBlobStore({ dir });
    writeFileSync(join(dir, 'tmp', 'deadbeef.tmp'), 'half');
    expect(await store.removeStaleTemps(Date.now() + 1000)).toBe(1);
    expect(readdirSync(join(dir, 'tmp'))).toEqual([]);
    rmSync(dir, { recursive: true, force: true });
  });
});
