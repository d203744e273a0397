import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, ensureBuilt, waitFor } from '../src/test-support/up-process.js';

const ROOT = {
  accessKeyId: 'AKIAEXAMPLECRASH0001',
  secretAccessKey: 'crash-test-secret-key-000000000000000000',
};
const md5 = (b: Uint8Array) => createHash('md5').update(b).digest('hex');

// A third of the writers and half the uploads encrypt: SSE-S3 or SSE-C, chosen by the key's number.
const CUSTOMER_KEY = randomBytes(32);
const SSE_C = {
  SSECustomerAlgorithm: 'AES256',
  SSECustomerKey: CUSTOMER_KEY.toString('base64'),
  SSECustomerKeyMD5: createHash('md5').update(CUSTOMER_KEY).digest('base64'),
};
function sseFor(key: string): { write: Record<string, string>; read: Record<string, string> } {
  const n = Number(/^(?:w|s|mpu\/)(\d+)/.exec(key)?.[1] ?? 0);
  if (n % 3 === 1) return { write: { ServerSideEncryption: 'AES256' }, read: {} };
  if (n % 3 === 2) return { write: SSE_C, read: SSE_C };
  return { write: {}, read: {} };
}

function startServer(dataDir: string) {
  let out = '';
  const child: ChildProcess = spawn(
    process.execPath,
    [CLI, 'up', '--data-dir', dataDir, '--port', '0', '--driver', 'none', '--log-level', 'warn'],
    {
      env: {
        ...process.env,
        YUNHAI_ROOT_ACCESS_KEY: ROOT.accessKeyId,
        YUNHAI_ROOT_SECRET_KEY: ROOT.secretAccessKey,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  child.stdout!.on('data', (d) => {
    out += d;
  });
  child.stderr!.on('data', (d) => {
    out += d;
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return { child, exited, output: () => out };
}

const clientFor = (endpoint: string) =>
  new S3Client({ endpoint, region: 'us-east-1', credentials: ROOT, forcePathStyle: true, maxAttempts: 1 });

async function readAll(c: S3Client, Key: string) {
  const r = await c.send(new GetObjectCommand({ Bucket: 'crash', Key, ...sseFor(Key).read }));
  return Buffer.from(await r.Body!.transformToByteArray());
}

/** Blob files on disk, and the blob ids the database references. */
function blobState(dataDir: string) {
  const dir = join(dataDir, 'blobs');
  const files = new Set<string>();
  for (const sub of readdirSync(dir)) {
    if (sub === 'tmp') continue;
    for (const f of readdirSync(join(dir, sub))) files.add(f);
  }
  const db = new Database(join(dataDir, 'yunhai.db'), { readonly: true, fileMustExist: true });
  const referenced = new Set(
    (
      db
        .prepare(
          'select blob_id as id from objects where blob_id is not null union select blob_id from object_parts union select blob_id from upload_parts',
        )
        .all() as { id: string }[]
    ).map((r) => r.id),
  );
  db.close();
  return { files, referenced, temps: readdirSync(join(dir, 'tmp')).length };
}

describe('object storage under SIGKILL', () => {
  let dir: string;
  // ensureBuilt() may run tsc, which takes minutes on a busy shared machine.
  beforeAll(() => {
    ensureBuilt();
    dir = mkdtempSync(join(tmpdir(), 'yunhai-s3-crash-'));
  }, 300_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('keeps every acknowledged object byte-identical, shows nothing partial and sweeps orphans after a kill during PUTs and completes', async () => {
    const dataDir = join(dir, 'data');
    const first = startServer(dataDir);
    await waitFor(() => first.output().includes('Ready in'), 30_000);
    const endpoint = JSON.parse(readFileSync(join(dataDir, 'endpoints.json'), 'utf8')).s3 as string;
    const c = clientFor(endpoint);
    await c.send(new CreateBucketCommand({ Bucket: 'crash' }));

    // Every body we ever tried per key (an unacknowledged write may or may not have landed), and the acknowledged one.
    const attempted = new Map<string, Set<string>>();
    const acked = new Map<string, string>();
    // Writes to a key after its acknowledged one: committed but killed before the answer, they may win.
    const later = new Map<string, Set<string>>();
    const attempt = (key: string, body: Buffer) => {
      const set = attempted.get(key) ?? new Set<string>();
      set.add(md5(body));
      attempted.set(key, set);
      later.set(key, (later.get(key) ?? new Set<string>()).add(md5(body)));
    };
    const ack = (key: string, sum: string) => {
      acked.set(key, sum);
      later.set(key, new Set());
    };

    // Multipart uploads with their parts in place, to be completed all at once right before the kill.
    const pending: {
      key: string;
      uploadId: string;
      parts: { PartNumber: number; ETag: string }[];
      body: Buffer;
    }[] = [];
    for (let i = 0; i < 6; i++) {
      const key = `mpu/${i}`;
      const p1 = randomBytes(5 * 1024 * 1024);
      const p2 = randomBytes(1000 + i);
      const sse = sseFor(key);
      const { UploadId } = await c.send(
        new CreateMultipartUploadCommand({ Bucket: 'crash', Key: key, ...sse.write }),
      );
      const e1 = await c.send(
        new UploadPartCommand({ Bucket: 'crash', Key: key, UploadId, PartNumber: 1, Body: p1, ...sse.read }),
      );
      const e2 = await c.send(
        new UploadPartCommand({ Bucket: 'crash', Key: key, UploadId, PartNumber: 2, Body: p2, ...sse.read }),
      );
      pending.push({
        key,
        uploadId: UploadId!,
        parts: [
          { PartNumber: 1, ETag: e1.ETag! },
          { PartNumber: 2, ETag: e2.ETag! },
        ],
        body: Buffer.concat([p1, p2]),
      });
    }

    let stop = false;
    const worker = async (w: number) => {
      for (let n = 0; !stop; n++) {
        // Fresh keys, plus one key each worker keeps overwriting.
        const key = n % 3 === 2 ? `w${w}/same` : `w${w}/${n}`;
        const body = randomBytes(1024 + Math.floor(Math.random() * 3 * 1024 * 1024));
        attempt(key, body);
        try {
          const r = await c.send(
            new PutObjectCommand({ Bucket: 'crash', Key: key, Body: body, ...sseFor(key).write }),
          );
          if (r.ETag !== `"${md5(body)}"`) throw new Error(`wrong etag for ${key}`);
          ack(key, md5(body));
        } catch {
          return;
        }
      }
    };
    // Small bodies (up to 64 KiB, stored inline in their row), 16 writers at once so their
    // transactions share group commits and log syncs: an acknowledged one must survive too.
    const smallAcked: string[] = [];
    const smallWorker = async (w: number) => {
      for (let n = 0; !stop; n++) {
        const key = n % 4 === 3 ? `s${w}/same` : `s${w}/${n}`;
        const body = randomBytes(n % 2 === 0 ? 4096 : 1 + Math.floor(Math.random() * 64 * 1024));
        attempt(key, body);
        try {
          const r = await c.send(
            new PutObjectCommand({ Bucket: 'crash', Key: key, Body: body, ...sseFor(key).write }),
          );
          if (r.ETag !== `"${md5(body)}"`) throw new Error(`wrong etag for ${key}`);
          ack(key, md5(body));
          smallAcked.push(key);
        } catch {
          return;
        }
      }
    };
    const workers = [
      ...Array.from({ length: 8 }, (_, w) => worker(w)),
      ...Array.from({ length: 16 }, (_, w) => smallWorker(w)),
    ];
    await new Promise((r) => setTimeout(r, 1500));
    const completes = pending.map(async (u) => {
      attempt(u.key, u.body);
      try {
        await c.send(
          new CompleteMultipartUploadCommand({
            Bucket: 'crash',
            Key: u.key,
            UploadId: u.uploadId,
            MultipartUpload: { Parts: u.parts },
            ...sseFor(u.key).read,
          }),
        );
        ack(u.key, md5(u.body));
      } catch {
        // killed before it answered
      }
    });
    await new Promise((r) => setTimeout(r, 5));
    first.child.kill('SIGKILL');
    await first.exited;
    stop = true;
    await Promise.all([...workers, ...completes]);
    expect(acked.size).toBeGreaterThan(5);
    expect(smallAcked.length).toBeGreaterThan(20);

    // What a kill between a blob's rename and its commit leaves, planted so the sweep always has work
    // (the kill above leaves real ones most of the time, but not every time).
    mkdirSync(join(dataDir, 'blobs', 'fe'), { recursive: true });
    writeFileSync(join(dataDir, 'blobs', 'fe', 'fe'.padEnd(32, '1')), 'renamed, never committed');
    writeFileSync(join(dataDir, 'blobs', 'tmp', `${'0'.repeat(32)}.tmp`), 'half written');
    const before = blobState(dataDir);
    expect(
      [...before.files].filter((f) => !before.referenced.has(f)).length + before.temps,
    ).toBeGreaterThanOrEqual(2);

    const second = startServer(dataDir);
    try {
      await waitFor(() => second.output().includes('Ready in'), 30_000);
      const c2 = clientFor(JSON.parse(readFileSync(join(dataDir, 'endpoints.json'), 'utf8')).s3 as string);
      for (const [key, sum] of acked) {
        const got = md5(await readAll(c2, key));
        expect(got === sum || later.get(key)?.has(got), key).toBe(true);
      }
      // Whatever is listed is complete: one of the bodies written to that key, whole.
      const listed = await c2.send(new ListObjectsV2Command({ Bucket: 'crash' }));
      for (const o of listed.Contents ?? []) {
        expect(attempted.get(o.Key!)?.has(md5(await readAll(c2, o.Key!))), o.Key).toBe(true);
      }
      // The start-up sweep removes blobs and temp files the crash left behind.
      await waitFor(() => {
        const s = blobState(dataDir);
        return s.temps === 0 && [...s.files].every((f) => s.referenced.has(f));
      }, 15_000);
      const after = blobState(dataDir);
      expect([...after.referenced].every((id) => after.files.has(id))).toBe(true);
    } finally {
      second.child.kill('SIGTERM');
      await second.exited;
    }
    expect(existsSync(join(dataDir, 'blobs', 'tmp'))).toBe(true);
  }, 120_000);
});
