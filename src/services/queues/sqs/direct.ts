/**
 * The SQS hot path straight on node:http. Fastify's request pipeline (routing, content-type
 * parsing, hooks, reply serialisation) was about a fifth of the listener's CPU per message in the
 * profiles of bench/sqs (docs/queue-throughput.md), for requests that all take the same route.
 *
 * The listener's http.Server stays Fastify's; its `request` listener is wrapped. A POST that is
 * well-formed at the HTTP level goes straight to the SQS pipeline:
 *
 *   POST, an SQS content type (JSON 1.0 or form), a Content-Length within the body limit, no
 *   Transfer-Encoding, and the listener still listening.
 *
 * Everything else (GETs, other methods, chunked or oversized bodies, unknown content types, a
 * listener that is closing) goes to Fastify unchanged, so those keep Fastify's exact answers
 * (404, 413, 415, 503 while closing). A direct request answers what the Fastify route would:
 * the same body and status, `x-request-id` and `x-amzn-RequestId`, `x-amzn-query-error` on JSON
 * errors, Content-Type as Fastify sends it; it is counted in the same metrics (listener, route
 * `/*`, method, status; latency; authentication failures by code) and logged the same way
 * (request line at info, 5xx at error, unexpected failures with their stack).
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { toYunhaiError, YunhaiError } from '../../../platform/errors.js';
import { AUTH_FAILURE_CODES } from '../../../platform/http/base-server.js';
import type { Metrics } from '../../../platform/http/metrics.js';
import type { SqsAnswer, SqsCore } from './sqs-api.js';
import { clientGoneOf, sqsErrorAnswer } from './sqs-api.js';

/** The route label Fastify's hook records for the SQS route. */
const ROUTE = '/*';

/**
 * The AWS JSON 1.0 media type. Defined here, not in sqs-api.ts: sqs-api.ts imports this module, so
 * this module's top level cannot use sqs-api.ts's constants, while sqs-api.ts uses this one only at
 * run time.
 */
export const JSON_TYPE = 'application/x-amz-json-1.0';

/** Content types the direct path takes; anything else is Fastify's to answer. */
function sqsContentType(v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  const semi = v.indexOf(';');
  const media = (semi < 0 ? v : v.slice(0, semi)).trim().toLowerCase();
  if (media === JSON_TYPE) return 'json';
  if (media === 'application/x-www-form-urlencoded') return 'form';
  return undefined;
}

/** Content-Type as Fastify sends it: JSON media types get `; charset=utf-8`. */
const JSON_WIRE_TYPE = `${JSON_TYPE}; charset=utf-8`;
const wireType = (type: string) =>
  type === JSON_TYPE ? JSON_WIRE_TYPE : type.includes('json') ? `${type}; charset=utf-8` : type;

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

export interface DirectSqsOptions {
  core: SqsCore;
  metrics: Metrics;
  bodyLimit: number;
  listener: string;
}

/** Wraps `app.server`'s request listener so well-formed SQS POSTs skip Fastify (see the header). */
export function attachDirectSqs(app: FastifyInstance, opts: DirectSqsOptions): void {
  const server = app.server;
  const fastify = server.listeners('request') as Handler[];
  if (fastify.length !== 1) throw new Error('expected exactly one request listener (Fastify)');
  const toFastify = fastify[0]!;
  const log = app.log as unknown as Logger;
  const { core, metrics, bodyLimit, listener } = opts;
  // Label children bound once (prom-client keeps the labels object of a series' first increment).
  const requestsByStatus = new Map<number, { inc(): void }>();
  const counted = (status: number) => {
    let c = requestsByStatus.get(status);
    if (!c) {
      c = metrics.requests.labels({ listener, route: ROUTE, method: 'POST', status: String(status) });
      requestsByStatus.set(status, c);
    }
    return c;
  };
  const duration = metrics.duration.labels({ listener, route: ROUTE });

  function eligible(req: IncomingMessage): boolean {
    if (req.method !== 'POST' || !server.listening) return false;
    const h = req.headers;
    if (h['transfer-encoding'] !== undefined || sqsContentType(h['content-type']) === undefined) return false;
    const length = h['content-length'];
    if (length === undefined) return false;
    const n = Number(length);
    return Number.isSafeInteger(n) && n >= 0 && n <= bodyLimit;
  }

  /** Counts and logs an answered request (what Fastify's onResponse hook does for its routes). */
  function account(req: IncomingMessage, id: string, started: number, status: number): void {
    const seconds = (performance.now() - started) / 1000;
    counted(status).inc();
    duration.observe(seconds);
    const level = status >= 500 ? 'error' : 'info';
    if (log.isLevelEnabled(level)) {
      const url = req.url ?? '/';
      const q = url.indexOf('?');
      log.child({ reqId: id })[level](
        {
          reqId: id,
          method: 'POST',
          url: q < 0 ? url : url.slice(0, q),
          status,
          ms: Math.round(seconds * 1000),
        },
        'request',
      );
    }
  }

  function send(
    req: IncomingMessage,
    res: ServerResponse,
    id: string,
    started: number,
    answer: SqsAnswer,
  ): void {
    const status = answer.status;
    // A flat name/value list: node writes it as given, without walking an object's keys.
    const headers = [
      'x-request-id',
      id,
      'x-amzn-requestid',
      id,
      'content-type',
      wireType(answer.type),
      'content-length',
      String(Buffer.byteLength(answer.body)),
    ];
    if (answer.queryError !== undefined) headers.push('x-amzn-query-error', answer.queryError);
    res.writeHead(status, headers);
    // Node writes the head and a string body in one write; the answer is on its way once end()
    // returns, so it is counted here rather than in a 'finish' listener added per request.
    res.end(answer.body);
    account(req, id, started, status);
  }

  function fail(req: IncomingMessage, res: ServerResponse, id: string, started: number, err: unknown) {
    const ye = err instanceof YunhaiError ? err : toYunhaiError(err);
    if (!ye.isUserError()) log.child({ reqId: id }).error({ err, reqId: id }, 'request failed');
    if (AUTH_FAILURE_CODES.has(ye.code)) metrics.authFailures.inc({ listener, code: ye.code });
    if (res.headersSent || res.destroyed) return;
    send(req, res, id, started, sqsErrorAnswer(ye, req.headers, id));
  }

  function serve(
    req: IncomingMessage,
    res: ServerResponse,
    body: Buffer | undefined,
    id: string,
    started: number,
  ) {
    core({
      method: 'POST',
      url: req.url ?? '/',
      headers: req.headers,
      body,
      sourceIp: req.socket.remoteAddress ?? '',
      requestId: id,
      clientGone: clientGoneOf(res),
    }).then(
      (answer) => {
        if (!res.destroyed) send(req, res, id, started, answer);
      },
      (err) => fail(req, res, id, started, err),
    );
  }

  function direct(req: IncomingMessage, res: ServerResponse): void {
    const started = performance.now();
    const id = randomUUID();
    const expected = Number(req.headers['content-length']);
    if (expected === 0) {
      // No body to wait for; 'end' still has to come for the connection to be reused.
      req.resume();
      serve(req, res, undefined, id, started);
      return;
    }
    const chunks: Buffer[] = [];
    let received = 0;
    req.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      received += chunk.length;
    });
    req.once('end', () => {
      // node's parser delivers exactly Content-Length bytes, or the request aborts (no 'end'); each
      // chunk is a fresh buffer, never one the socket reuses.
      const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, received);
      serve(req, res, body, id, started);
    });
  }

  server.removeListener('request', toFastify);
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (eligible(req)) direct(req, res);
    else toFastify.call(server, req, res);
  });
}
