// SQS clients for bench/sqs. All three speak the real protocol the AWS SDK speaks: AWS JSON 1.0
// POSTs (`X-Amz-Target: AmazonSQS.<Action>`) over keep-alive HTTP/1.1, each SigV4-signed with the
// same signed headers (content-type, host, x-amz-content-sha256, x-amz-date, x-amz-target), and
// each checks every answer (status 200, the number of messages sent, received or deleted).
//
//   lean   (default) raw `net` connections read through `onread` into one buffer per connection
//          (no stream machinery), each request written as one Buffer; the canonical request and
//          body are built from templates and signed with our sigv4 primitives (cached signing
//          key, one-shot hashes); answers are checked by scanning the JSON text instead of
//          parsing it. The load generator shares two cores with the server; RabbitMQ's side is
//          amqplib, a lean pure-JS client on raw sockets, so this is the fair counterpart.
//   basic  the previous hand-written client: `net` 'data' events, `signRequest`, JSON.stringify
//          and JSON.parse of every request and answer.
//   node   node:http with a keep-alive Agent, `signRequest`, JSON both ways.
//
// Each client: { call(action, input) -> parsed answer, send(queueUrl, bodies), receive(queueUrl,
// max, waitSeconds) -> receipt handles, del(queueUrl, handles), close() }.
import { hash } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { root } from './common.js';

const sigv4 = await import(join(root, 'dist', 'platform', 'auth', 'sigv4.js'));
const { signRequest, deriveSigningKey, hmacSha256, toAmzDate } = sigv4;

const REGION = 'us-east-1';
const JSON_TYPE = 'application/x-amz-json-1.0';
const SIGNED_HEADERS = 'content-type;host;x-amz-content-sha256;x-amz-date;x-amz-target';

/** The three typed operations on top of a generic `call` that parses JSON (basic and node clients). */
function withJsonOps(call, close) {
  return {
    call,
    close,
    async send(QueueUrl, bodies) {
      const r = await call('SendMessageBatch', {
        QueueUrl,
        Entries: bodies.map((MessageBody, i) => ({ Id: `m${i}`, MessageBody })),
      });
      if (r.Failed?.length || r.Successful?.length !== bodies.length)
        throw new Error(`SendMessageBatch: ${JSON.stringify(r)}`);
    },
    async receive(QueueUrl, max, wait) {
      const r = await call('ReceiveMessage', { QueueUrl, MaxNumberOfMessages: max, WaitTimeSeconds: wait });
      const handles = (r.Messages ?? []).map((m) => m.ReceiptHandle);
      if (handles.length > max || handles.some((h) => typeof h !== 'string'))
        throw new Error(`ReceiveMessage: ${JSON.stringify(r)}`);
      return handles;
    },
    async del(QueueUrl, handles) {
      const r = await call('DeleteMessageBatch', {
        QueueUrl,
        Entries: handles.map((ReceiptHandle, i) => ({ Id: `d${i}`, ReceiptHandle })),
      });
      if (r.Failed?.length || r.Successful?.length !== handles.length)
        throw new Error(`DeleteMessageBatch: ${JSON.stringify(r)}`);
    },
  };
}

function signedHeaders(url, creds, action, payload) {
  const headers = { host: url.host, 'content-type': JSON_TYPE, 'x-amz-target': `AmazonSQS.${action}` };
  return Object.assign(
    headers,
    signRequest({
      method: 'POST',
      url,
      headers,
      body: payload,
      accessKeyId: creds.accessKeyId,
      secretAccessKey: creds.secretAccessKey,
      region: REGION,
      service: 'sqs',
    }),
  );
}

// ---- basic: the previous hand-written client --------------------------------------------------

export function basicClient(endpoint, creds) {
  const url = new URL(`${endpoint}/`);
  const idle = [];
  const all = [];
  const connect = () =>
    new Promise((resolve, reject) => {
      const sock = net.connect(Number(url.port), url.hostname, () => resolve(conn));
      sock.setNoDelay(true);
      const conn = { sock, buf: Buffer.alloc(0), pending: undefined };
      all.push(conn);
      sock.on('data', (d) => {
        conn.buf = conn.buf.length ? Buffer.concat([conn.buf, d]) : d;
        const p = conn.pending;
        if (!p) return;
        const head = conn.buf.indexOf('\r\n\r\n');
        if (head < 0) return;
        const h = conn.buf.subarray(0, head).toString('latin1');
        const m = /\r\ncontent-length: *(\d+)/i.exec(h);
        if (!m) return p.reject(new Error(`response without content-length: ${h}`));
        const end = head + 4 + Number(m[1]);
        if (conn.buf.length < end) return;
        const status = Number(h.slice(9, 12));
        const text = conn.buf.subarray(head + 4, end).toString('utf8');
        conn.buf = conn.buf.subarray(end);
        conn.pending = undefined;
        idle.push(conn);
        if (status !== 200) p.reject(new Error(`${p.action}: ${status} ${text}`));
        else p.resolve(JSON.parse(text));
      });
      sock.on('error', (e) => (conn.pending ? conn.pending.reject(e) : reject(e)));
    });
  const call = async (action, input) => {
    const payload = JSON.stringify(input);
    const headers = signedHeaders(url, creds, action, payload);
    let head = 'POST / HTTP/1.1\r\n';
    for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
    const bytes = Buffer.from(payload, 'utf8');
    head += `content-length: ${bytes.length}\r\nconnection: keep-alive\r\n\r\n`;
    const conn = idle.pop() ?? (await connect());
    return new Promise((resolve, reject) => {
      conn.pending = { resolve, reject, action };
      conn.sock.write(Buffer.concat([Buffer.from(head, 'latin1'), bytes]));
    });
  };
  return withJsonOps(call, () => {
    for (const c of all) c.sock.destroy();
  });
}

// ---- node: node:http with a keep-alive Agent --------------------------------------------------

export function nodeClient(endpoint, creds) {
  const url = new URL(`${endpoint}/`);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const call = (action, input) =>
    new Promise((resolve, reject) => {
      const payload = Buffer.from(JSON.stringify(input), 'utf8');
      const headers = signedHeaders(url, creds, action, payload);
      headers['content-length'] = payload.length;
      const req = http.request(
        { agent, method: 'POST', host: url.hostname, port: url.port, path: '/', headers },
        (res) => {
          const chunks = [];
          res.on('data', (d) => chunks.push(d));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            if (res.statusCode !== 200) reject(new Error(`${action}: ${res.statusCode} ${text}`));
            else resolve(JSON.parse(text));
          });
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  return withJsonOps(call, () => agent.destroy());
}

// ---- lean ---------------------------------------------------------------------------------------

const CRLF2 = Buffer.from('\r\n\r\n');
const RECEIPT = '"ReceiptHandle":"';
const READ_BUFFER = 256 * 1024;

/** Occurrences of `needle` in `text`. */
function count(text, needle) {
  let n = 0;
  for (let i = text.indexOf(needle); i >= 0; i = text.indexOf(needle, i + needle.length)) n++;
  return n;
}

export function leanClient(endpoint, creds) {
  const url = new URL(`${endpoint}/`);
  const host = url.host;
  const credential = `${creds.accessKeyId}/`;
  let second = -1;
  let amzDate = '';
  let scope = '';
  let key;
  /** X-Amz-Date, the credential scope and the signing key, recomputed when the second changes. */
  const clock = () => {
    const now = Date.now();
    const s = Math.floor(now / 1000);
    if (s !== second) {
      second = s;
      amzDate = toAmzDate(new Date(s * 1000));
      const day = amzDate.slice(0, 8);
      scope = `${day}/${REGION}/sqs/aws4_request`;
      key = deriveSigningKey(creds.secretAccessKey, day, REGION, 'sqs');
    }
  };

  /** The whole signed request as one Buffer. */
  function request(action, payload) {
    clock();
    const bodyHash = hash('sha256', payload, 'hex');
    const canonical =
      `POST\n/\n\ncontent-type:${JSON_TYPE}\nhost:${host}\nx-amz-content-sha256:${bodyHash}\n` +
      `x-amz-date:${amzDate}\nx-amz-target:AmazonSQS.${action}\n\n${SIGNED_HEADERS}\n${bodyHash}`;
    const toSign = `AWS4-HMAC-SHA256\n${amzDate}\n${scope}\n${hash('sha256', canonical, 'hex')}`;
    const signature = hmacSha256(key, toSign).toString('hex');
    return Buffer.from(
      `POST / HTTP/1.1\r\nhost: ${host}\r\ncontent-type: ${JSON_TYPE}\r\n` +
        `x-amz-target: AmazonSQS.${action}\r\nx-amz-date: ${amzDate}\r\n` +
        `x-amz-content-sha256: ${bodyHash}\r\n` +
        `authorization: AWS4-HMAC-SHA256 Credential=${credential}${scope}, ` +
        `SignedHeaders=${SIGNED_HEADERS}, Signature=${signature}\r\n` +
        `content-length: ${Buffer.byteLength(payload)}\r\n\r\n${payload}`,
      'utf8',
    );
  }

  const idle = [];
  const all = [];
  /** Completes the connection's pending request from `data` (one read); keeps a partial answer. */
  function onData(conn, data) {
    if (conn.partial) data = conn.partial = Buffer.concat([conn.partial, data]);
    const p = conn.pending;
    if (!p) throw new Error(`unexpected bytes from the server: ${data.toString('latin1', 0, 200)}`);
    const head = data.indexOf(CRLF2);
    if (head < 0) {
      if (!conn.partial) conn.partial = Buffer.from(data);
      return;
    }
    if (conn.length < 0) {
      const h = data.toString('latin1', 0, head).toLowerCase();
      const at = h.indexOf('\r\ncontent-length:');
      if (at < 0) {
        conn.pending = undefined;
        p.reject(new Error(`${p.action}: answer without content-length (not supported here):\n${h}`));
        conn.sock.destroy();
        return;
      }
      conn.length = Number.parseInt(h.slice(at + 17), 10);
      conn.status = Number(h.slice(9, 12));
    }
    const end = head + 4 + conn.length;
    if (data.length < end) {
      if (!conn.partial) conn.partial = Buffer.from(data);
      return;
    }
    if (data.length > end) throw new Error(`${p.action}: ${data.length - end} bytes after the answer`);
    const text = data.toString('utf8', head + 4, end);
    const status = conn.status;
    conn.partial = undefined;
    conn.length = -1;
    conn.pending = undefined;
    idle.push(conn);
    if (status !== 200) p.reject(new Error(`${p.action}: ${status} ${text}`));
    else p.resolve(text);
  }
  const connect = () =>
    new Promise((resolve, reject) => {
      const conn = { sock: undefined, pending: undefined, partial: undefined, length: -1, status: 0 };
      const buffer = Buffer.allocUnsafe(READ_BUFFER);
      conn.sock = net.connect({
        port: Number(url.port),
        host: url.hostname,
        noDelay: true,
        onread: {
          buffer,
          callback: (n) => {
            onData(conn, buffer.subarray(0, n));
          },
        },
      });
      conn.sock.once('connect', () => resolve(conn));
      conn.sock.on('error', (e) => (conn.pending ? conn.pending.reject(e) : reject(e)));
      conn.sock.on('close', () => {
        conn.pending?.reject(new Error(`${conn.pending.action}: connection closed`));
        const i = idle.indexOf(conn);
        if (i >= 0) idle.splice(i, 1);
      });
      all.push(conn);
    });
  /** Sends one request; resolves with the answer's text (status 200) or rejects. */
  async function exchange(action, payload) {
    const bytes = request(action, payload);
    const conn = idle.pop() ?? (await connect());
    return new Promise((resolve, reject) => {
      conn.pending = { resolve, reject, action };
      conn.sock.write(bytes);
    });
  }
  const queueJson = new Map();
  const q = (url) => {
    let s = queueJson.get(url);
    if (s === undefined) {
      s = JSON.stringify(url);
      queueJson.set(url, s);
    }
    return s;
  };
  return {
    async call(action, input) {
      return JSON.parse(await exchange(action, JSON.stringify(input)));
    },
    async send(queueUrl, bodies) {
      let payload = `{"QueueUrl":${q(queueUrl)},"Entries":[`;
      for (let i = 0; i < bodies.length; i++)
        payload += `${i ? ',' : ''}{"Id":"m${i}","MessageBody":${JSON.stringify(bodies[i])}}`;
      const text = await exchange('SendMessageBatch', `${payload}]}`);
      // {"Successful":[{"Id",...,"MessageId",...}, ...],"Failed":[]}: MessageId appears once per entry.
      if (!text.endsWith('"Failed":[]}') || count(text, '"MessageId":"') !== bodies.length)
        throw new Error(`SendMessageBatch: ${text}`);
    },
    async receive(queueUrl, max, wait) {
      const text = await exchange(
        'ReceiveMessage',
        `{"QueueUrl":${q(queueUrl)},"MaxNumberOfMessages":${max},"WaitTimeSeconds":${wait}}`,
      );
      // A quote inside a JSON string is always escaped, so the key can only match as a key.
      const handles = [];
      for (let i = text.indexOf(RECEIPT); i >= 0; i = text.indexOf(RECEIPT, i)) {
        i += RECEIPT.length;
        const end = text.indexOf('"', i);
        handles.push(text.slice(i, end));
        i = end;
      }
      if (
        !(text === '{}' || text.startsWith('{"Messages":[')) ||
        handles.length > max ||
        count(text, '"MessageId":"') !== handles.length
      )
        throw new Error(`ReceiveMessage: ${text}`);
      return handles;
    },
    async del(queueUrl, handles) {
      let payload = `{"QueueUrl":${q(queueUrl)},"Entries":[`;
      for (let i = 0; i < handles.length; i++)
        payload += `${i ? ',' : ''}{"Id":"d${i}","ReceiptHandle":"${handles[i]}"}`;
      const text = await exchange('DeleteMessageBatch', `${payload}]}`);
      // {"Successful":[{"Id":"d0"}, ...],"Failed":[]}
      if (!text.endsWith('"Failed":[]}') || count(text, '{"Id":"') !== handles.length)
        throw new Error(`DeleteMessageBatch: ${text}`);
    },
    close() {
      for (const c of all) c.sock.destroy();
    },
    /** The lean request's Authorization header, to compare with `signRequest`'s for the same request. */
    authorizationOf(action, payload) {
      const text = request(action, payload).toString('utf8');
      return /\r\nauthorization: ([^\r]*)/.exec(text)[1];
    },
  };
}

/**
 * Checks that the lean client signs exactly as `signRequest` does (same headers, same second), so
 * the two can only differ in cost, never in what the server verifies.
 */
export function checkLeanSigning(endpoint, creds) {
  const url = new URL(`${endpoint}/`);
  const payload = '{"QueueUrl":"http://x/1/q","MaxNumberOfMessages":10}';
  for (let attempt = 0; attempt < 3; attempt++) {
    const lean = leanClient(endpoint, creds).authorizationOf('ReceiveMessage', payload);
    const ref = signedHeaders(url, creds, 'ReceiveMessage', payload).authorization;
    if (lean === ref) return;
  }
  throw new Error('the lean client signs differently from signRequest');
}

export const SQS_CLIENTS = { lean: leanClient, basic: basicClient, node: nodeClient };
