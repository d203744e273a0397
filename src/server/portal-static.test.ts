import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBaseServer } from '../platform/http/base-server.js';
import { createMetrics } from '../platform/http/metrics.js';
import { registerPortal, registerSessionCookie } from './portal-static.js';

const server = (dir: string) => {
  const app = createBaseServer({
    name: 'api',
    logger: pino({ level: 'silent' }),
    metrics: createMetrics(),
    bodyLimit: 1024,
    renderError: (err, req, reply) =>
      reply.code(err.status).send({ error: { code: err.code, message: err.message, requestId: req.id } }),
  });
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.post('/api/v1/auth/login', async () => ({
    token: 'yhs_abc.DEF-123',
    expiresAt: new Date(Date.now() + 3600_000).toISOString(),
  }));
  app.post('/api/v1/auth/logout', async (_req, reply) => reply.code(204).send());
  registerSessionCookie(app, '/api/v1');
  registerPortal(app, { dir, apiPrefix: '/api/v1', info: { name: 'yunhai' } });
  return app;
};

describe('portal static files on the api listener', () => {
  let dir: string;
  let app: FastifyInstance;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'yunhai-portal-'));
    mkdirSync(join(dir, 'assets'));
    writeFileSync(join(dir, 'index.html'), '<!doctype html><div id="root"></div>');
    writeFileSync(join(dir, 'assets', 'index-abc123.js'), 'console.log(1)');
    writeFileSync(join(dir, 'favicon.svg'), '<svg/>');
    writeFileSync(join(tmpdir(), 'yunhai-portal-secret.txt'), 'secret');
    app = server(dir);
    await app.ready();
  });
  afterAll(async () => {
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves index.html at / uncached, with security headers', async () => {
    const r = await app.inject({ url: '/' });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(r.headers['cache-control']).toBe('no-cache');
    expect(r.headers['x-frame-options']).toBe('DENY');
    expect(r.headers['content-security-policy']).toContain("script-src 'self'");
    expect(r.body).toContain('id="root"');
  });

  it('caches hashed assets for a year and other files not at all', async () => {
    const js = await app.inject({ url: '/assets/index-abc123.js' });
    expect(js.statusCode).toBe(200);
    expect(js.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(js.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    const icon = await app.inject({ url: '/favicon.svg' });
    expect(icon.headers['content-type']).toBe('image/svg+xml');
    expect(icon.headers['cache-control']).toBe('no-cache');
  });

  it('answers client-side routes with index.html and missing files with 404', async () => {
    for (const url of ['/instances', '/buckets/photos?prefix=a%2F', '/admin/audit'])
      expect((await app.inject({ url })).body).toContain('id="root"');
    expect((await app.inject({ url: '/assets/gone-123.js' })).statusCode).toBe(404);
    expect((await app.inject({ url: '/robots.txt' })).statusCode).toBe(404);
  });

  it('never serves a file outside its directory', async () => {
    for (const url of [
      '/../yunhai-portal-secret.txt',
      '/%2e%2e/yunhai-portal-secret.txt',
      '/assets/..%2f..%2fyunhai-portal-secret.txt',
    ]) {
      const r = await app.inject({ url });
      expect(r.body).not.toContain('secret');
    }
  });

  it('leaves the API and health paths to their own routes (JSON 404 for unknown API paths)', async () => {
    expect((await app.inject({ url: '/healthz' })).json()).toEqual({ status: 'ok' });
    const r = await app.inject({ url: '/api/v1/no-such-thing' });
    expect(r.statusCode).toBe(404);
    expect(r.json().error.code).toBe('NotFound');
  });

  it('serves a rebuilt index.html without a restart (it names the new hashed assets)', async () => {
    writeFileSync(join(dir, 'index.html'), '<!doctype html><script src="/assets/index-new456.js"></script>');
    expect((await app.inject({ url: '/some/route' })).body).toContain('index-new456.js');
    writeFileSync(join(dir, 'index.html'), '<!doctype html><div id="root"></div>');
  });

  it('says how to build the portal when there is no build', async () => {
    const bare = server(join(dir, 'missing'));
    const r = await bare.inject({ url: '/' });
    expect(r.statusCode).toBe(200);
    expect(r.json()).toMatchObject({ name: 'yunhai', portal: expect.stringContaining('npm run build') });
    await bare.close();
  });

  it('sets the session cookie on sign-in and clears it on sign-out', async () => {
    const login = await app.inject({ method: 'POST', url: '/api/v1/auth/login' });
    const set = String(login.headers['set-cookie']);
    expect(set).toMatch(
      /^yunhai_session=yhs_abc\.DEF-123; Path=\/; HttpOnly; SameSite=Strict; Max-Age=(3599|3600)$/,
    );
    const logout = await app.inject({ method: 'POST', url: '/api/v1/auth/logout' });
    expect(String(logout.headers['set-cookie'])).toBe(
      'yunhai_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0',
    );
  });
});
