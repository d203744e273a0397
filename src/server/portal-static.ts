import { readFile, stat } from 'node:fs/promises';
import { extname, join, normalize, resolve, sep } from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { YunhaiError } from '../platform/errors.js';
import { SESSION_COOKIE } from '../platform/http/rest.js';

/**
 * The web portal on the `api` listener: the production build of `web/` (`dist/web`, made by
 * `npm run build`) served at `/` with an SPA fallback, and the session cookie the portal signs in
 * with. Hashed assets (`/assets/*`) are cached for a year; `index.html` is never cached, so a new
 * build is picked up on the next load. Without a build the API still works and `/` says how to
 * make one.
 */

/** Where `npm run build` puts the portal (vite's outDir in web/vite.config.ts). */
export const DEFAULT_PORTAL_DIR = resolve(import.meta.dirname, '..', '..', 'dist', 'web');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.woff': 'font/woff',
  '.ttf': 'font/ttf',
  '.map': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
};

/** Paths the portal must never shadow: they are the API's or the listener's own. */
const RESERVED = ['/api/', '/healthz', '/readyz', '/metrics'];

const SECURITY_HEADERS: Record<string, string> = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'same-origin',
  // antd writes its styles at run time (CSS-in-JS), hence 'unsafe-inline' for styles only.
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; " +
    "font-src 'self' data:; connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'self'; form-action 'self'",
};

export interface PortalOptions {
  /** Directory with index.html and assets/ (default dist/web). */
  dir?: string;
  apiPrefix: string;
  /** What `/` answers when there is no build, besides the hint (name, version, API prefix). */
  info: Record<string, string>;
}

/** Registers `/` and the SPA fallback route. Call after every other GET route is known. */
export function registerPortal(app: FastifyInstance, opts: PortalOptions): void {
  const dir = resolve(opts.dir ?? DEFAULT_PORTAL_DIR);
  const indexFile = join(dir, 'index.html');
  // Read on every request (it is under a kilobyte): a rebuild while the server runs changes the
  // hashed asset names it points at, and a cached copy would point at deleted files.
  const loadIndex = async (): Promise<Buffer | null> => readFile(indexFile).catch(() => null);

  const sendIndex = async (reply: FastifyReply) => {
    const html = await loadIndex();
    if (!html) {
      return reply
        .code(200)
        .header('cache-control', 'no-cache')
        .type('application/json')
        .send({
          ...opts.info,
          portal:
            'The web portal is not built. Run `npm run build` (it builds the server and web/ into dist/web), then reload.',
        });
    }
    return reply
      .code(200)
      .headers(SECURITY_HEADERS)
      .header('cache-control', 'no-cache')
      .type(TYPES['.html']!)
      .send(html);
  };

  const serve = async (req: FastifyRequest, reply: FastifyReply) => {
    const path = decodePath(req.url);
    if (path === undefined) throw new YunhaiError('NotFound', 'No such page.');
    if (RESERVED.some((r) => path === r.replace(/\/$/, '') || path.startsWith(r)))
      throw new YunhaiError('NotFound', `No such endpoint: ${req.method} ${path}`);
    if (path === '/' || path === '/index.html') return sendIndex(reply);
    const file = normalize(join(dir, path));
    if (file.startsWith(dir + sep)) {
      const st = await stat(file).catch(() => null);
      if (st?.isFile()) {
        const type = TYPES[extname(file)] ?? 'application/octet-stream';
        const hashed = path.startsWith('/assets/');
        return reply
          .code(200)
          .header('x-content-type-options', 'nosniff')
          .header('cache-control', hashed ? 'public, max-age=31536000, immutable' : 'no-cache')
          .type(type)
          .send(await readFile(file));
      }
    }
    // A missing asset is a 404; any other path is a client-side route of the single-page app.
    if (path.startsWith('/assets/') || extname(path) !== '')
      return reply.code(404).type('text/plain; charset=utf-8').send('Not found');
    return sendIndex(reply);
  };
  app.get('/', serve);
  app.get('/*', serve);
}

/** The URL path without its query, percent-decoded; undefined when it cannot be decoded safely. */
function decodePath(url: string): string | undefined {
  const q = url.indexOf('?');
  const raw = q < 0 ? url : url.slice(0, q);
  try {
    const p = decodeURIComponent(raw);
    if (p.includes('\0') || p.includes('\\')) return undefined;
    return p;
  } catch {
    return undefined;
  }
}

/**
 * The portal's session cookie: set from the token a successful sign-in returns, cleared by
 * sign-out. HttpOnly (scripts never see it) and SameSite=Strict (no cross-site request carries
 * it); `Secure` when the request came over TLS. The REST API's CSRF check (rest.ts) covers the
 * rest.
 */
export function registerSessionCookie(app: FastifyInstance, apiPrefix: string): void {
  const login = `${apiPrefix}/auth/login`;
  const logout = `${apiPrefix}/auth/logout`;
  app.addHook('onSend', async (req, reply, payload) => {
    if (req.method !== 'POST') return payload;
    const url = req.routeOptions.url;
    const secure = req.protocol === 'https' ? '; Secure' : '';
    if (url === login && reply.statusCode === 200 && typeof payload === 'string') {
      let token: unknown;
      let expiresAt: unknown;
      try {
        ({ token, expiresAt } = JSON.parse(payload) as { token?: unknown; expiresAt?: unknown });
      } catch {
        return payload;
      }
      if (typeof token !== 'string' || !/^[A-Za-z0-9._-]+$/.test(token)) return payload;
      const maxAge =
        typeof expiresAt === 'string'
          ? Math.max(0, Math.floor((Date.parse(expiresAt) - Date.now()) / 1000))
          : undefined;
      reply.header(
        'set-cookie',
        `${SESSION_COOKIE}=${token}; Path=/; HttpOnly; SameSite=Strict${maxAge !== undefined && Number.isFinite(maxAge) ? `; Max-Age=${maxAge}` : ''}${secure}`,
      );
    } else if (url === logout) {
      // Cleared whatever the outcome: a stale cookie (expired session) must not outlive sign-out.
      reply.header('set-cookie', `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0${secure}`);
    }
    return payload;
  });
}
