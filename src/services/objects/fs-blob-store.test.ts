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
    // Every file of the store: a failed put must leave neither a temp file nor a partial blob.
    tempCount: async () =>
      readdirSync(dir, { recursive: true }).filter((f) => /[0-9a-f]{32}/.test(String(f))).length,
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

  it('does not list a blob while its put is still writing it, however old its file is', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'yunhai-blobs-'));
    const store = createFsBlobStore({ dir });
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    async function* slow() {
      yield Buffer.from('first half ');
      await gate;
      yield Buffer.from('second half');
    }
    const put = store.put(slow());
    // Wait until the file exists under its final name.
    const files = () => readdirSync(dir, { recursive: true }).filter((f) => /[0-9a-f]{32}$/.test(String(f)));
    for (let i = 0; i < 100 && files().length === 0; i++) await new Promise((r) => setTimeout(r, 5));
    expect(files()).toHaveLength(1);
    const listed: string[] = [];
    for await (const id of store.list({ writtenBefore: Date.now() + 60_000 })) listed.push(id);
    expect(listed).toEqual([]);
    release();
    const { id, size } = await put;
    expect(size).toBe(22);
    for await (const l of store.list({ writtenBefore: Date.now() + 60_000 })) listed.push(l);
    expect(listed).toEqual([id]);
    rmSync(dir, { recursive: true, force: true });
  });
});
