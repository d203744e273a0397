// The floor for bench/s3: the least a Node server on this machine does for the same PUTs and GETs,
// so the bench can show what part of a target is out of reach of any Node S3 server here and what
// part is Yunhai's own cost. Not a product: one bucket, no validation beyond SigV4, no errors.
//
// PUT /floor/<key> does what an acknowledged, crash-safe PUT must do and nothing else:
//   - node:http, SigV4 header auth with Yunhai's own verifier (dist/platform/auth/sigv4.js), MD5;
//   - bodies up to 64 KiB inline in SQLite; larger ones streamed into Yunhai's own file blob store
//     (dist/services/objects/fs-blob-store.js: a new file under an unguessable name, fdatasync()ed
//     with its directory fsynced alongside) before the commit;
//   - the rows of a PutObject commit on Yunhai's own schema (a copy of a `yunhai up` database):
//     bucket row, latest version, insert, bucket counters, storage quota, one audit event with its
//     SHA-256 chain; PUTs of one event-loop turn in one transaction on better-sqlite3 with prepared
//     statements; the answer only after an fdatasync() of the WAL that started after the commit.
// GET /floor/<size>/... answers <size> bytes from memory: no auth, no SQL, no file read. That is below what any object store can do, so a GET target it misses is out of
// reach of node:http itself here.
//
//   node bench/s3-floor-server.js <sqlite file (a copy)> <blob dir> <port> <secret access key>
import { createHash, randomBytes } from 'node:crypto';
import { openSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { requireBuilt, root } from './common.js';
import { walSyncer } from './floor.js';

requireBuilt('bench/s3-floor-server', 'platform/auth/sigv4.js');
const { parseSigV4, verifySigV4 } = await import(join(root, 'dist/platform/auth/sigv4.js'));
const { createFsBlobStore } = await import(join(root, 'dist/services/objects/fs-blob-store.js'));
const { default: Sqlite } = await import('better-sqlite3');

const [file, blobDir, port, secret] = process.argv.slice(2);
const INLINE_MAX = 64 * 1024;

const db = new Sqlite(file);
db.pragma('journal_mode = WAL');
db.pragma('synchronous = NORMAL');
db.pragma('wal_autocheckpoint = 0');
const tenant = db.prepare('SELECT id FROM tenants ORDER BY id LIMIT 1').get().id;
db.prepare(
  'INSERT OR IGNORE INTO buckets (name, tenant_id, region, versioning, object_lock_enabled, acl, ' +
    "object_count, bytes_stored, accrued_byte_seconds, accrued_at, created_at) VALUES ('floor', ?, " +
    "'us-east-1', 'Unversioned', 0, 'private', 0, 0, 0, 0, 0)",
).run(tenant);
const sql = {
  bucket:
    'SELECT name, tenant_id, versioning, bytes_stored, object_count, accrued_byte_seconds, accrued_at ' +
    'FROM buckets WHERE name = ?',
  latest:
    "SELECT id, size, blob_id FROM objects WHERE bucket = ? AND key = ? AND (is_latest = 1 OR version_id = 'null')",
  remove: 'DELETE FROM objects WHERE id = ?',
  insert:
    'INSERT INTO objects (id, bucket, key, version_id, seq, is_latest, delete_marker, blob_id, size, etag, ' +
    'content_type, metadata, storage_class, legal_hold, owner_tenant_id, last_modified, body) VALUES ' +
    "(@id, 'floor', @key, 'null', @seq, 1, 0, @blob, @size, @etag, 'application/octet-stream', '{}', " +
    "'STANDARD', 0, @tenant, @t, @body)",
  usage:
    'UPDATE buckets SET bytes_stored = bytes_stored + ?, object_count = object_count + ?, accrued_at = ? ' +
    'WHERE name = ?',
  reserve:
    "UPDATE quotas SET used = used + @n, updated_at = @t WHERE tenant_id = @tenant AND resource = 'storageBytes' " +
    'AND (limit_value < 0 OR used + @n <= limit_value)',
  head: 'SELECT seq, hash FROM audit_head WHERE id = 1',
  audit:
    'INSERT INTO audit_events (seq, id, time, tenant_id, principal, action, resource, outcome, error_code, ' +
    'source_ip, request_id, details, prev_hash, hash) VALUES (@seq, @id, @time, @tenant_id, @principal, ' +
    "@action, @resource, @outcome, NULL, '127.0.0.1', @request_id, '{}', @prev_hash, @hash)",
  storeHead: 'UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1',
  begin: 'BEGIN',
  commit: 'COMMIT',
};
const st = Object.fromEntries(Object.entries(sql).map(([k, v]) => [k, db.prepare(v)]));

// ---- group commit: one transaction per event-loop turn, acknowledged after the next WAL sync ----
const walFd = openSync(`${file}-wal`, 'r');
let seq = Date.now();
let pending = [];
let scheduled = false;
const log = walSyncer(walFd);

function commitGroup() {
  scheduled = false;
  const group = pending;
  pending = [];
  st.begin.run();
  let head = st.head.get();
  for (const w of group) {
    const b = st.bucket.get('floor');
    let bytes = w.size;
    let count = 1;
    for (const old of st.latest.all('floor', w.key)) {
      st.remove.run(old.id);
      bytes -= old.size;
      count -= 1;
    }
    const t = Date.now();
    st.insert.run({
      id: randomBytes(16).toString('hex'),
      key: w.key,
      seq: seq++,
      blob: w.blob ?? null,
      size: w.size,
      etag: w.etag,
      tenant: b.tenant_id,
      t,
      body: w.body ?? null,
    });
    st.usage.run(bytes, count, t, 'floor');
    if (bytes > 0) st.reserve.run({ n: bytes, t, tenant: b.tenant_id });
    const event = {
      seq: head.seq + 1,
      id: `evt-${randomBytes(6).toString('hex')}`,
      time: t,
      tenant_id: b.tenant_id,
      principal: 'bench',
      action: 's3:PutObject',
      resource: `floor/${w.key}`,
      outcome: 'success',
      request_id: w.requestId,
      prev_hash: head.hash,
    };
    event.hash = createHash('sha256').update(JSON.stringify(event)).digest('hex');
    st.audit.run(event);
    head = event;
  }
  st.storeHead.run(head.seq, head.hash);
  st.commit.run();
  for (const w of group) log.after(w.done);
  log.kick();
}

function submit(w) {
  pending.push(w);
  if (!scheduled) {
    scheduled = true;
    setImmediate(commitGroup);
  }
}

// ---- blobs: Yunhai's own file blob store (a new file under its final name, synced before commit) --
const blobs = createFsBlobStore({ dir: blobDir });
/** The request body as it streams into the store, hashed on the way. */
async function* hashed(req, md5) {
  for await (const chunk of req) {
    md5.update(chunk);
    yield chunk;
  }
}

// ---- HTTP ------------------------------------------------------------------------------------
let requests = 0;

async function put(req, res, key) {
  const url = new URL(req.url, 'http://floor');
  const signed = { method: req.method, path: url.pathname, query: url.search.slice(1), headers: req.headers };
  verifySigV4(signed, parseSigV4(signed), secret, { s3PathEncoding: true });
  const md5 = createHash('md5');
  let body;
  let blob;
  let size;
  if (Number(req.headers['content-length']) <= INLINE_MAX) {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
    md5.update(body);
    size = body.length;
  } else {
    ({ id: blob, size } = await blobs.put(hashed(req, md5)));
  }
  const etag = `"${md5.digest('hex')}"`;
  const requestId = String(++requests);
  await new Promise((done) => submit({ key, body, blob, size, etag, requestId, done }));
  res.writeHead(200, { etag, 'x-amz-request-id': requestId });
  res.end();
}

const payloads = new Map();
http
  .createServer((req, res) => {
    const key = decodeURIComponent(new URL(req.url, 'http://floor').pathname.replace(/^\/floor\//, ''));
    if (req.method === 'PUT') {
      put(req, res, key).catch((e) => {
        res.writeHead(500);
        res.end(String(e?.message ?? e));
      });
      return;
    }
    // GET: `<size>/...` keys answer that many bytes, the same buffer every time.
    const bytes = Number(key.split('/')[0]);
    let data = payloads.get(bytes);
    if (!data) {
      data = randomBytes(bytes);
      payloads.set(bytes, data);
    }
    res.writeHead(200, { 'content-length': data.length, 'content-type': 'application/octet-stream' });
    res.end(data);
  })
  .listen(Number(port), '127.0.0.1', () => process.stdout.write('ready\n'));
process.on('SIGTERM', () => process.exit(0));
