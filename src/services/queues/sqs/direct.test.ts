import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signRequest } from '../../../platform/auth/sigv4.js';
import { startTestControlPlane, type TestControlPlane } from '../../../test-support/control-plane.js';

interface Response {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Reads HTTP/1.1 responses with Content-Length from one socket, in order. */
function connection(port: number) {
  const sock = net.connect(port, '127.0.0.1');
  let buf = Buffer.alloc(0);
  const waiting: ((r: Response) => void)[] = [];
  sock.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    for (;;) {
      const head = buf.indexOf('\r\n\r\n');
      if (head < 0 || waiting.length === 0) return;
      const lines = buf.subarray(0, head).toString('latin1').split('\r\n');
      const headers: Record<string, string> = {};
      for (const l of lines.slice(1)) {
        const c = l.indexOf(':');
        headers[l.slice(0, c).toLowerCase()] = l.slice(c + 1).trim();
      }
      const end = head + 4 + Number(headers['content-length'] ?? 0);
      if (buf.length < end) return;
      const r = {
        status: Number(lines[0]!.slice(9, 12)),
        headers,
        body: buf.subarray(head + 4, end).toString(),
      };
      buf = buf.subarray(end);
      waiting.shift()!(r);
    }
  });
  return {
    sock,
    /** Writes `bytes` and resolves with the next response. */
    exchange(bytes: string | Buffer): Promise<Response> {
      return new Promise((resolve) => {
        waiting.push(resolve);
        sock.write(bytes);
      });
    },
    closed: new Promise<void>((resolve) => sock.on('close', () => resolve())),
  };
}

describe('SQS listener on node:http directly', () => {
  let cp: TestControlPlane;
  let url: URL;

  beforeAll(async () => {
    cp = await startTestControlPlane();
    url = new URL(`${cp.endpoints.sqs}/`);
  });
  afterAll(async () => cp?.stop());

  function request(
    body: string,
    opts: { target?: string; type?: string; secret?: string; extra?: string; length?: number } = {},
  ) {
    const headers: Record<string, string> = {
      host: url.host,
      'content-type': opts.type ?? 'application/x-amz-json-1.0',
      ...(opts.target !== undefined ? { 'x-amz-target': `AmazonSQS.${opts.target}` } : {}),
    };
    Object.assign(
      headers,
      signRequest({
        method: 'POST',
        url,
        headers,
        body,
        accessKeyId: cp.root.accessKeyId,
        secretAccessKey: opts.secret ?? cp.root.secretAccessKey,
        region: 'us-east-1',
        service: 'sqs',
      }),
    );
    let head = 'POST / HTTP/1.1\r\n';
    for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
    head += `content-length: ${opts.length ?? Buffer.byteLength(body)}\r\n${opts.extra ?? ''}\r\n`;
    return head + body;
  }

  async function metric(pattern: RegExp): Promise<number> {
    const text = await (await fetch(`${cp.endpoints.api}/metrics`)).text();
    const line = text.split('\n').find((l) => pattern.test(l));
    return line ? Number(line.split(' ').pop()) : 0;
  }

  it('answers JSON and Query requests on one keep-alive connection with request ids and Fastify’s content types', async () => {
    const c = connection(Number(url.port));
    const created = await c.exchange(
      request(JSON.stringify({ QueueName: 'direct-1' }), { target: 'CreateQueue' }),
    );
    expect(created.status).toBe(200);
    expect(created.headers['content-type']).toBe('application/x-amz-json-1.0; charset=utf-8');
    expect(created.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(created.headers['x-amzn-requestid']).toBe(created.headers['x-request-id']);
    expect(created.headers.connection).toBe('keep-alive');
    const queueUrl = JSON.parse(created.body).QueueUrl as string;
    expect(queueUrl).toMatch(new RegExp(`^http://${url.host}/\\d{12}/direct-1$`));

    const listed = await c.exchange(
      request('Action=ListQueues&Version=2012-11-05', {
        type: 'application/x-www-form-urlencoded; charset=utf-8',
      }),
    );
    expect(listed.status).toBe(200);
    expect(listed.headers['content-type']).toBe('text/xml');
    expect(listed.body).toContain(`<QueueUrl>${queueUrl}</QueueUrl>`);
    expect(listed.body).toContain(`<RequestId>${listed.headers['x-request-id']}</RequestId>`);
    c.sock.destroy();
  });

  it('renders errors in the caller’s protocol and counts requests and authentication failures like the Fastify route', async () => {
    const before200 = await metric(
      /^yunhai_http_requests_total\{listener="sqs",route="\/\*",method="POST",status="200"\}/,
    );
    const before403 = await metric(
      /^yunhai_http_requests_total\{listener="sqs",route="\/\*",method="POST",status="403"\}/,
    );
    const beforeAuth = await metric(
      /^yunhai_auth_failures_total\{listener="sqs",code="SignatureDoesNotMatch"\}/,
    );
    const beforeCount = await metric(
      /^yunhai_http_request_duration_seconds_count\{listener="sqs",route="\/\*"\}/,
    );
    const c = connection(Number(url.port));
    const ok = await c.exchange(request('{}', { target: 'ListQueues' }));
    expect(ok.status).toBe(200);
    const forged = await c.exchange(request('{}', { target: 'ListQueues', secret: 'not-the-secret' }));
    expect(forged.status).toBe(403);
    expect(forged.headers['x-amzn-query-error']).toBe('SignatureDoesNotMatch;Sender');
    expect(JSON.parse(forged.body).__type).toBe('com.amazonaws.sqs#SignatureDoesNotMatch');
    const missing = await c.exchange(
      request(JSON.stringify({ QueueName: 'nope' }), { target: 'GetQueueUrl' }),
    );
    expect(missing.status).toBe(400);
    expect(missing.headers['x-amzn-query-error']).toBe('AWS.SimpleQueueService.NonExistentQueue;Sender');
    const badJson = await c.exchange(request('{not json', { target: 'ListQueues' }));
    expect(JSON.parse(badJson.body).__type).toBe('com.amazonaws.sqs#InvalidParameterValue');
    const noAction = await c.exchange(request('', { type: 'application/x-www-form-urlencoded' }));
    expect(noAction.status).toBe(400);
    expect(noAction.body).toContain('<Code>MissingParameter</Code>');
    c.sock.destroy();
    expect(
      await metric(/^yunhai_http_requests_total\{listener="sqs",route="\/\*",method="POST",status="200"\}/),
    ).toBe(before200 + 1);
    expect(
      await metric(/^yunhai_http_requests_total\{listener="sqs",route="\/\*",method="POST",status="403"\}/),
    ).toBe(before403 + 1);
    expect(await metric(/^yunhai_auth_failures_total\{listener="sqs",code="SignatureDoesNotMatch"\}/)).toBe(
      beforeAuth + 1,
    );
    expect(await metric(/^yunhai_http_request_duration_seconds_count\{listener="sqs",route="\/\*"\}/)).toBe(
      beforeCount + 5,
    );
  });

  it('leaves GETs, oversized, chunked and unknown-type requests to Fastify, which answers them as before', async () => {
    const c = connection(Number(url.port));
    const get = await c.exchange(`GET /?Action=ListQueues HTTP/1.1\r\nhost: ${url.host}\r\n\r\n`);
    expect(get.status).toBe(403);
    expect(get.body).toContain('<Code>MissingAuthenticationToken</Code>');
    expect(get.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    const other = await c.exchange(`DELETE / HTTP/1.1\r\nhost: ${url.host}\r\ncontent-length: 0\r\n\r\n`);
    expect(other.status).toBe(400);
    expect(other.body).toContain('No such endpoint: DELETE /');
    const chunked = await c.exchange(
      `POST / HTTP/1.1\r\nhost: ${url.host}\r\ncontent-type: application/x-amz-json-1.0\r\nx-amz-target: AmazonSQS.ListQueues\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n`,
    );
    expect(chunked.status).toBe(403);
    expect(JSON.parse(chunked.body).__type).toBe('com.amazonaws.sqs#MissingAuthenticationToken');
    c.sock.destroy();

    const big = connection(Number(url.port));
    const tooLarge = await big.exchange(
      `POST / HTTP/1.1\r\nhost: ${url.host}\r\ncontent-type: application/x-amz-json-1.0\r\nx-amz-target: AmazonSQS.ListQueues\r\ncontent-length: ${1024 * 1024 + 1}\r\n\r\n{}`,
    );
    expect(tooLarge.status).toBe(413);
    expect(JSON.parse(tooLarge.body).__type).toBe('com.amazonaws.sqs#RequestEntityTooLarge');
    big.sock.destroy();
  });

  it('survives a client that disconnects in the middle of a body or of a long poll', async () => {
    const c = connection(Number(url.port));
    const created = await c.exchange(
      request(JSON.stringify({ QueueName: 'direct-poll' }), { target: 'CreateQueue' }),
    );
    const QueueUrl = JSON.parse(created.body).QueueUrl as string;
    // Half a body, then gone.
    const half = connection(Number(url.port));
    half.sock.write(request('{"QueueName":"x"}', { target: 'CreateQueue', length: 1000 }));
    half.sock.destroy();
    await half.closed;
    // A 20 s long poll whose client leaves after 100 ms.
    const poll = connection(Number(url.port));
    poll.sock.write(request(JSON.stringify({ QueueUrl, WaitTimeSeconds: 20 }), { target: 'ReceiveMessage' }));
    await new Promise((r) => setTimeout(r, 100));
    poll.sock.destroy();
    await poll.closed;
    // The listener still answers, and the abandoned poll did not take the message.
    const sent = await c.exchange(
      request(JSON.stringify({ QueueUrl, MessageBody: 'after' }), { target: 'SendMessage' }),
    );
    expect(sent.status).toBe(200);
    const got = await c.exchange(
      request(JSON.stringify({ QueueUrl, WaitTimeSeconds: 1 }), { target: 'ReceiveMessage' }),
    );
    expect(JSON.parse(got.body).Messages[0].Body).toBe('after');
    c.sock.destroy();
  });
});
