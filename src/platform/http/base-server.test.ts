import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { YunhaiError } from '../errors.js';
import { createBaseServer } from './base-server.js';
import { createMetrics } from './metrics.js';

const REQUEST_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function serverAt(level: string) {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l));
      done();
    },
  });
  const metrics = createMetrics();
  const app = createBaseServer({
    name: 'test',
    logger: pino({ level }, sink),
    metrics,
    bodyLimit: 1024,
    renderError: (err, req, reply) => reply.code(err.status).send({ code: err.code, requestId: req.id }),
  });
  app.post('/echo', async (req) => {
    req.log.info({ what: 'info line' }, 'from handler');
    req.log.warn({ what: 'warn line' }, 'from handler');
    return { id: req.id, bytes: req.rawBody?.length ?? 0 };
  });
  app.get('/fail', async () => {
    throw new YunhaiError('ValidationError', 'bad input');
  });
  return { app, lines, metrics };
}

describe('base server', () => {
  let app: FastifyInstance | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it('answers a fresh request id in x-request-id and binds it to request logs at enabled levels only', async () => {
    const s = serverAt('warn');
    app = s.app;
    const ids = new Set<string>();
    for (let i = 0; i < 3; i++) {
      const r = await app.inject({
        method: 'POST',
        url: '/echo',
        payload: 'hello',
        headers: { 'content-type': 'text/plain' },
      });
      expect(r.statusCode).toBe(200);
      const id = r.headers['x-request-id'] as string;
      expect(id).toMatch(REQUEST_ID);
      expect(r.json()).toEqual({ id, bytes: 5 });
      ids.add(id);
    }
    expect(ids.size).toBe(3);
    // warn level: the handler's info line and the per-request 'request' line are not written.
    expect(s.lines.map((l) => l.what ?? l.msg)).toEqual(['warn line', 'warn line', 'warn line']);
    for (const l of s.lines) {
      expect(ids.has(l.reqId as string)).toBe(true);
      expect(l.listener).toBe('test');
    }
  });

  it('writes the handler lines and one request line per request at info', async () => {
    const s = serverAt('info');
    app = s.app;
    const r = await app.inject({
      method: 'POST',
      url: '/echo',
      payload: 'x',
      headers: { 'content-type': 'text/plain' },
    });
    const id = r.headers['x-request-id'];
    const mine = s.lines.filter((l) => l.reqId === id);
    expect(mine.map((l) => l.what ?? l.msg)).toEqual(['info line', 'warn line', 'request']);
    expect(mine[2]).toMatchObject({ method: 'POST', url: '/echo', status: 200, level: 30 });
  });

  it('renders errors through the listener and counts requests by route, method and status', async () => {
    const s = serverAt('silent');
    app = s.app;
    const r = await app.inject({ method: 'GET', url: '/fail' });
    expect(r.statusCode).toBe(400);
    expect(r.json()).toEqual({ code: 'ValidationError', requestId: r.headers['x-request-id'] });
    const missing = await app.inject({ method: 'GET', url: '/nowhere?x=1' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json().code).toBe('NotFound');
    await app.inject({
      method: 'POST',
      url: '/echo',
      payload: 'x',
      headers: { 'content-type': 'text/plain' },
    });
    const counted = (await s.metrics.requests.get()).values.map((v) => [
      v.labels.route,
      v.labels.method,
      v.labels.status,
      v.value,
    ]);
    expect(counted).toEqual(
      expect.arrayContaining([
        ['/fail', 'GET', '400', 1],
        ['unmatched', 'GET', '404', 1],
        ['/echo', 'POST', '200', 1],
      ]),
    );
    const durations = (await s.metrics.duration.get()).values.filter(
      (v) => v.metricName === 'yunhai_http_request_duration_seconds_count' && v.labels.route === '/echo',
    );
    expect(durations.map((v) => v.value)).toEqual([1]);
  });
});
