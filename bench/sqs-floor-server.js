// The floor for bench/sqs: the least a Node server on this machine does for the bench's SQS traffic
// (JSON protocol: CreateQueue, DeleteQueue, SendMessageBatch, ReceiveMessage, DeleteMessageBatch),
// so the bench can show what part of the target is out of reach of any Node server here and what
// part is Yunhai's own cost. Not a product: no validation beyond SigV4, no attributes, no FIFO,
// no errors worth the name.
//
// What it keeps, because an SQS server owes it:
//   - node:http, SigV4 with Yunhai's own verifier (dist/platform/auth/sigv4.js) and the payload's
//     SHA-256 checked against x-amz-content-sha256; the MD5 of every body;
//   - messages as rows of Yunhai's own `queue_messages` table (a copy of a `yunhai up` database),
//     with the same SQL shapes: one INSERT per batch, pick visible seqs then stamp them, one DELETE
//     per batch; the operations of one event-loop turn in one transaction (better-sqlite3, prepared
//     statements); a send answered only after an fdatasync() of the WAL that started after its
//     commit; receives and deletes answered at their commit;
//   - long polls woken by a commit that made messages visible.
//
//   node bench/sqs-floor-server.js <sqlite file (a copy)> <port> <secret access key>
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { openSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { requireBuilt, root } from './common.js';
import { walSyncer } from './floor.js';

requireBuilt('bench/sqs-floor-server', 'platform/auth/sigv4.js');
const { parseSigV4, verifySigV4 } = await import(join(root, 'dist/platform/auth/sigv4.js'));
const { default: Sqlite } = await import('better-sqlite3');

const [file, port, secret] = process.argv.slice(2);
const db = new Sqlite(file);
db.pragma('journal_mode = WAL');
db.pragma('synchronous = NORMAL');
db.pragma('wal_autocheckpoint = 0');

const COLUMNS = [
  'queue_id',
  'message_id',
  'body',
  'md5_body',
  'sender_id',
  'size',
  'sent_at',
  'visible_at',
  'expires_at',
  'receive_count',
];
const bySize = (build) => Array.from({ length: 11 }, (_, n) => (n ? db.prepare(build(n)) : undefined));
const marks = (n) => Array(n).fill('?').join(', ');
const st = {
  begin: db.prepare('BEGIN'),
  commit: db.prepare('COMMIT'),
  insert: bySize(
    (n) =>
      `INSERT INTO queue_messages (${COLUMNS.join(', ')}) VALUES ${Array(n)
        .fill(`(${marks(COLUMNS.length)})`)
        .join(', ')}`,
  ),
  pick: db
    .prepare(
      'SELECT seq FROM queue_messages WHERE queue_id = ? AND visible_at <= ? AND expires_at > ? ORDER BY visible_at LIMIT ?',
    )
    .pluck(true),
  stamp: bySize(
    (n) =>
      'UPDATE queue_messages SET visible_at = ?, receive_count = receive_count + 1, receipt = ?, ' +
      `first_received_at = coalesce(first_received_at, ?) WHERE seq IN (${marks(n)}) ` +
      'RETURNING seq, message_id, body, md5_body',
  ),
  remove: bySize((n) => `DELETE FROM queue_messages WHERE queue_id = ? AND seq IN (${marks(n)})`),
};

// ---- group commit ------------------------------------------------------------------------------
const walFd = openSync(`${file}-wal`, 'r');
let pending = [];
let scheduled = false;
const log = walSyncer(walFd);

function commitGroup() {
  scheduled = false;
  const ops = pending;
  pending = [];
  st.begin.run();
  const results = ops.map((op) => op.fn());
  st.commit.run();
  for (const [i, op] of ops.entries()) {
    if (op.durable) log.after(() => op.done(results[i]));
    else op.done(results[i]);
  }
  wakeWaiters();
  log.kick();
}

const run = (fn, durable) =>
  new Promise((done) => {
    pending.push({ fn, durable, done });
    if (!scheduled) {
      scheduled = true;
      setImmediate(commitGroup);
    }
  });

// ---- long polls --------------------------------------------------------------------------------
let waiters = [];
let sentSinceWake = false;
function wakeWaiters() {
  if (!sentSinceWake) return;
  sentSinceWake = false;
  const woken = waiters;
  waiters = [];
  for (const w of woken) w();
}

// ---- actions -----------------------------------------------------------------------------------
const queues = new Map();
const md5 = (s) => createHash('md5').update(s, 'utf8').digest('hex');

async function sendBatch(input) {
  const q = input.QueueUrl;
  const t = Date.now();
  const values = [];
  const out = [];
  for (const e of input.Entries) {
    const id = randomUUID();
    const digest = md5(e.MessageBody);
    values.push(
      q,
      id,
      e.MessageBody,
      digest,
      'floor',
      Buffer.byteLength(e.MessageBody),
      t,
      t,
      t + 345_600_000,
      0,
    );
    out.push(`{"Id":${JSON.stringify(e.Id)},"MessageId":"${id}","MD5OfMessageBody":"${digest}"}`);
  }
  await run(() => {
    st.insert[input.Entries.length].run(values);
    sentSinceWake = true;
  }, true);
  return `{"Successful":[${out.join(',')}],"Failed":[]}`;
}

async function receive(input) {
  const q = input.QueueUrl;
  const max = input.MaxNumberOfMessages ?? 1;
  const until = Date.now() + (input.WaitTimeSeconds ?? 0) * 1000;
  for (;;) {
    const rows = await run(() => {
      const t = Date.now();
      const seqs = st.pick.all(q, t, t, max);
      if (seqs.length === 0) return [];
      const receipt = randomBytes(12).toString('hex');
      return st.stamp[seqs.length]
        .raw(true)
        .all(t + 300_000, receipt, t, ...seqs)
        .map((r) => [...r, receipt]);
    }, false);
    if (rows.length > 0 || Date.now() >= until) {
      if (rows.length === 0) return '{}';
      const msgs = rows.map(
        ([seq, id, body, digest, receipt]) =>
          `{"MessageId":"${id}","ReceiptHandle":"${seq}.${receipt}","MD5OfBody":"${digest}","Body":${JSON.stringify(body)}}`,
      );
      return `{"Messages":[${msgs.join(',')}]}`;
    }
    await new Promise((woken) => {
      const timer = setTimeout(woken, until - Date.now());
      waiters.push(() => {
        clearTimeout(timer);
        woken();
      });
    });
  }
}

async function deleteBatch(input) {
  const seqs = input.Entries.map((e) => Number(e.ReceiptHandle.slice(0, e.ReceiptHandle.indexOf('.'))));
  await run(() => st.remove[seqs.length].run(input.QueueUrl, ...seqs), false);
  return `{"Successful":[${input.Entries.map((e) => `{"Id":${JSON.stringify(e.Id)}}`).join(',')}],"Failed":[]}`;
}

const ACTIONS = {
  CreateQueue: async (input, host) => {
    const url = `http://${host}/000000000000/${input.QueueName}`;
    queues.set(url, true);
    return JSON.stringify({ QueueUrl: url });
  },
  DeleteQueue: async (input) => {
    await run(() => db.prepare('DELETE FROM queue_messages WHERE queue_id = ?').run(input.QueueUrl), false);
    return '{}';
  },
  SendMessageBatch: sendBatch,
  ReceiveMessage: receive,
  DeleteMessageBatch: deleteBatch,
};

// ---- HTTP --------------------------------------------------------------------------------------
http
  .createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const payload = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
      const answer = (status, text) => {
        res.writeHead(status, {
          'content-type': 'application/x-amz-json-1.0',
          'content-length': Buffer.byteLength(text),
        });
        res.end(text);
      };
      try {
        const signed = { method: req.method, path: '/', query: '', headers: req.headers };
        verifySigV4(signed, parseSigV4(signed), secret);
        if (createHash('sha256').update(payload).digest('hex') !== req.headers['x-amz-content-sha256'])
          throw new Error('payload hash');
        const action = ACTIONS[String(req.headers['x-amz-target']).replace('AmazonSQS.', '')];
        action(JSON.parse(payload.toString('utf8')), req.headers.host).then(
          (text) => answer(200, text),
          (e) => answer(500, JSON.stringify({ message: String(e?.message ?? e) })),
        );
      } catch (e) {
        answer(400, JSON.stringify({ message: String(e?.message ?? e) }));
      }
    });
  })
  .listen(Number(port), '127.0.0.1', () => process.stdout.write('ready\n'));
process.on('SIGTERM', () => process.exit(0));
