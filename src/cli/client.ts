import { signRequest } from '../platform/auth/sigv4.js';
import { VERSION } from '../server/version.js';
import type { Credentials } from './config.js';
import { CliError } from './errors.js';

export const API_PREFIX = '/api/v1';
export const SIGV4_SERVICE = 'yunhai';
export const SIGV4_REGION = 'us-east-1';
const DEFAULT_TIMEOUT_MS = 60_000;
/** The API's largest page. */
export const MAX_PAGE = 1000;

export type Query = Record<string, string | number | boolean | undefined>;

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export interface ListOptions {
  /** Stop after this many items in total (pages are requested as large as needed, up to 1000). */
  limit?: number;
  /** Follow nextCursor to the end. */
  all?: boolean;
  /** Called after each page with the number of items so far (progress display). */
  onPage?: (count: number) => void;
}

/** One line, whatever the server put in a message. */
const oneLine = (s: string) => s.replace(/\s*[\r\n]+\s*/g, ' ').trim();

/** The errno-style code of a network failure, looking through fetch's `cause` chain and AggregateErrors. */
function networkCode(e: unknown, depth = 0): string | undefined {
  if (!e || typeof e !== 'object' || depth > 5) return undefined;
  const err = e as { code?: unknown; cause?: unknown; errors?: unknown };
  if (typeof err.code === 'string' && /^E[A-Z_]+$/.test(err.code)) return err.code;
  if (Array.isArray(err.errors)) {
    for (const inner of err.errors) {
      const c = networkCode(inner, depth + 1);
      if (c) return c;
    }
  }
  return networkCode(err.cause, depth + 1);
}

/** Parses and checks an endpoint URL (http or https, no query). */
export function parseEndpoint(endpoint: string): URL {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new CliError(`invalid endpoint '${endpoint}': expected a URL like http://127.0.0.1:9600`, 2);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new CliError(`invalid endpoint '${endpoint}': only http:// and https:// are supported`, 2);
  }
  url.search = '';
  url.hash = '';
  return url;
}

/**
 * The REST API client: JSON in and out, requests signed with SigV4 (service `yunhai`) or carrying a
 * session bearer token. API errors become one-line CliErrors (exit 1); network failures exit 3.
 */
export class ApiClient {
  readonly endpoint: string;
  readonly credentials: Credentials;
  private readonly base: URL;
  private readonly fetchImpl: typeof fetch;
  private readonly timeoutMs: number;

  constructor(opts: {
    endpoint: string;
    credentials: Credentials;
    fetch?: typeof fetch;
    timeoutMs?: number;
  }) {
    this.base = parseEndpoint(opts.endpoint);
    this.endpoint = this.base.href.replace(/\/+$/, '');
    this.credentials = opts.credentials;
    this.fetchImpl = opts.fetch ?? fetch;
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  /** Same endpoint, other credentials. */
  withCredentials(credentials: Credentials): ApiClient {
    return new ApiClient({
      endpoint: this.endpoint,
      credentials,
      fetch: this.fetchImpl,
      timeoutMs: this.timeoutMs,
    });
  }

  url(path: string, query: Query = {}): URL {
    const url = new URL(this.base.href);
    url.pathname = `${url.pathname.replace(/\/+$/, '')}${API_PREFIX}${path}`;
    const parts: string[] = [];
    for (const [k, v] of Object.entries(query)) {
      if (v === undefined) continue;
      parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`);
    }
    url.search = parts.join('&');
    return url;
  }

  async request<T = unknown>(
    method: string,
    path: string,
    opts: { query?: Query; body?: unknown } = {},
  ): Promise<T> {
    const url = this.url(path, opts.query);
    const headers: Record<string, string> = { accept: 'application/json' };
    let body: string | undefined;
    if (opts.body !== undefined) {
      body = JSON.stringify(opts.body);
      headers['content-type'] = 'application/json';
    }
    const c = this.credentials;
    if (c.kind === 'sigv4') {
      Object.assign(
        headers,
        signRequest({
          method,
          url,
          headers,
          body,
          accessKeyId: c.accessKeyId,
          secretAccessKey: c.secretAccessKey,
          region: SIGV4_REGION,
          service: SIGV4_SERVICE,
        }),
      );
    } else if (c.kind === 'bearer') {
      headers.authorization = `Bearer ${c.token}`;
    }
    headers['user-agent'] = `yunhai-cli/${VERSION}`;

    let res: Response;
    try {
      res = await this.fetchImpl(url, { method, headers, body, signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (e) {
      throw this.networkError(e);
    }
    const text = await res.text().catch(() => '');
    if (!res.ok) throw this.apiError(res, text);
    if (res.status === 204 || text === '') return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new CliError(
        `${method} ${url.pathname}: the server answered ${res.status} with a body that is not JSON`,
        1,
      );
    }
  }

  get<T>(path: string, query?: Query) {
    return this.request<T>('GET', path, { query });
  }
  post<T>(path: string, body?: unknown) {
    return this.request<T>('POST', path, { body });
  }
  put<T>(path: string, body?: unknown) {
    return this.request<T>('PUT', path, { body });
  }
  patch<T>(path: string, body?: unknown) {
    return this.request<T>('PATCH', path, { body });
  }
  delete<T>(path: string, query?: Query) {
    return this.request<T>('DELETE', path, { query });
  }

  /**
   * Lists with cursor pagination. Without `limit`/`all`, one page of the server's default size;
   * with `limit`, follows `nextCursor` until that many items; with `all`, to the end. The result's
   * nextCursor is where the listing stopped (null when everything was fetched).
   */
  async list<T>(path: string, query: Query = {}, opts: ListOptions = {}): Promise<Page<T>> {
    const items: T[] = [];
    let cursor: string | undefined;
    for (;;) {
      const remaining = opts.limit !== undefined ? opts.limit - items.length : undefined;
      const pageSize =
        remaining !== undefined ? Math.min(remaining, MAX_PAGE) : opts.all ? MAX_PAGE : undefined;
      const page = await this.get<Page<T>>(path, { ...query, limit: pageSize, cursor });
      items.push(...page.items);
      opts.onPage?.(items.length);
      const next = page.nextCursor ?? null;
      const want = opts.all || (opts.limit !== undefined && items.length < opts.limit);
      if (!next || !want || page.items.length === 0) {
        return { items: opts.limit !== undefined ? items.slice(0, opts.limit) : items, nextCursor: next };
      }
      cursor = next;
    }
  }

  private apiError(res: Response, text: string): CliError {
    let parsed: { error?: { code?: unknown; message?: unknown; requestId?: unknown } } | undefined;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    const e = parsed?.error;
    if (e && typeof e.code === 'string') {
      const msg = typeof e.message === 'string' ? oneLine(e.message) : '';
      const req = typeof e.requestId === 'string' ? ` (request ${e.requestId})` : '';
      return new CliError(`${e.code}: ${msg}${req}`, 1, { code: e.code, status: res.status });
    }
    const requestId = res.headers.get('x-request-id');
    const snippet = oneLine(text).slice(0, 200);
    return new CliError(
      `HTTP ${res.status} ${res.statusText}${snippet ? `: ${snippet}` : ''}${requestId ? ` (request ${requestId})` : ''}`,
      1,
      { status: res.status },
    );
  }

  private networkError(e: unknown): CliError {
    if (e instanceof DOMException && (e.name === 'TimeoutError' || e.name === 'AbortError')) {
      return new CliError(`no answer from ${this.endpoint} within ${Math.round(this.timeoutMs / 1000)} s`, 3);
    }
    const code = networkCode(e);
    if (code === 'ECONNREFUSED') {
      return new CliError(
        `cannot connect to ${this.endpoint}: connection refused; is the control plane running? try \`yunhai up\``,
        3,
      );
    }
    if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
      return new CliError(
        `cannot connect to ${this.endpoint}: unknown host ${this.base.hostname}; check --endpoint`,
        3,
      );
    }
    const detail = code ?? (e instanceof Error ? oneLine(e.message) : String(e));
    return new CliError(
      `cannot connect to ${this.endpoint}: ${detail}; is the control plane running? try \`yunhai up\``,
      3,
    );
  }
}
