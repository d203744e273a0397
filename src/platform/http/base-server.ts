import { randomUUID } from 'node:crypto';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from 'fastify';
import type { Logger } from 'pino';
import { toYunhaiError, YunhaiError } from '../errors.js';
import type { Metrics } from './metrics.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The exact bytes received (SigV4 hashes them); undefined when there was no body. */
    rawBody?: Buffer;
  }
}

/** Error codes counted in `yunhai_auth_failures_total` (every listener, whichever path answered). */
export const AUTH_FAILURE_CODES: ReadonlySet<string> = new Set([
  'Unauthenticated',
  'InvalidClientTokenId',
  'SignatureDoesNotMatch',
  'RequestExpired',
  'RequestTimeTooSkewed',
  'IncompleteSignature',
]);

export interface BaseServerOptions {
  /** Listener name (`api`, `iam`, `sts`, ...) for logs and metrics. */
  name: string;
  logger: Logger;
  metrics: Metrics;
  bodyLimit: number;
  /** How this protocol renders an error. */
  renderError: (err: YunhaiError, req: FastifyRequest, reply: FastifyReply) => unknown;
}

/** Maps Fastify's own failures (body limits, bad content types, missing routes) onto our codes. */
export function fromFastifyError(err: FastifyError | YunhaiError | Error): YunhaiError {
  if (err instanceof YunhaiError) return err;
  const code = (err as FastifyError).code;
  switch (code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new YunhaiError('PayloadTooLarge', 'The request body is larger than this endpoint accepts.');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new YunhaiError('UnsupportedMediaType', 'Unsupported Content-Type.');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new YunhaiError('MalformedJSON', 'The request body is not valid JSON.');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new YunhaiError('ValidationError', 'Content-Length does not match the body.');
    default:
      if ((err as FastifyError).statusCode === 400) return new YunhaiError('ValidationError', err.message);
      return toYunhaiError(err);
  }
}

/**
 * The per-request logger (`req.log`), bound to the request id, created on first use: Fastify's
 * default builds a pino child for every request, which showed in profiles of busy listeners,
 * while most requests log nothing at the configured level (request lines are `info`; production
 * runs `warn`). A call at a disabled level is dropped without building the child; any other call
 * goes to the same child Fastify would have made (same bindings, serializers and destination).
 */
class RequestLogger {
  private real: Logger | undefined;
  private readonly parent: Logger;
  private readonly bindings: Record<string, unknown>;
  private readonly options: object;
  constructor(parent: Logger, bindings: Record<string, unknown>, options: object) {
    this.parent = parent;
    this.bindings = bindings;
    this.options = options;
  }
  private target(): Logger {
    if (!this.real) this.real = this.parent.child(this.bindings, this.options);
    return this.real;
  }
  private log(level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal', args: unknown[]): void {
    if (!(this.real ?? this.parent).isLevelEnabled(level)) return;
    const logger = this.target();
    (logger[level] as (...a: unknown[]) => void).apply(logger, args);
  }
  get level(): string {
    return (this.real ?? this.parent).level;
  }
  set level(level: string) {
    this.target().level = level;
  }
  isLevelEnabled(level: string): boolean {
    return (this.real ?? this.parent).isLevelEnabled(level);
  }
  child(bindings: Record<string, unknown>, options?: object): Logger {
    return this.target().child(bindings, options);
  }
  trace(...args: unknown[]) {
    this.log('trace', args);
  }
  debug(...args: unknown[]) {
    this.log('debug', args);
  }
  info(...args: unknown[]) {
    this.log('info', args);
  }
  warn(...args: unknown[]) {
    this.log('warn', args);
  }
  error(...args: unknown[]) {
    this.log('error', args);
  }
  fatal(...args: unknown[]) {
    this.log('fatal', args);
  }
  silent(): void {}
}

/**
 * A Fastify instance with what every listener shares: request ids (`x-request-id`, honouring
 * none from the client), raw-body capture for signature checks, metrics, structured logs and
 * one error path that renders in the listener's own protocol.
 */
export function createBaseServer(opts: BaseServerOptions): FastifyInstance {
  const app = Fastify({
    loggerInstance: opts.logger.child({ listener: opts.name }),
    bodyLimit: opts.bodyLimit,
    // Same shape as before (8-4-4-4-12 hex); randomUUID draws from a pooled entropy cache instead of
    // one OpenSSL call per request.
    genReqId: () => randomUUID(),
    // A route with its own log level gets its child at once (its level decides what is enabled).
    childLoggerFactory: (logger, bindings, options) =>
      (options as { level?: string }).level !== undefined
        ? logger.child(bindings, options)
        : (new RequestLogger(logger as unknown as Logger, bindings, options) as unknown as FastifyBaseLogger),
    logController: new LogController({ disableRequestLogging: true }),
    trustProxy: false,
    return503OnClosing: true,
    forceCloseConnections: true,
  }) as unknown as FastifyInstance;

  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (req, body, done) => {
    const buf = body as Buffer;
    req.rawBody = buf.length > 0 ? buf : undefined;
    done(null, undefined);
  });

  // Callback-style hooks: an async hook costs a promise and its resolution on every request.
  app.addHook('onRequest', (req, reply, done) => {
    reply.header('x-request-id', req.id);
    done();
  });
  app.addHook('onResponse', (req, reply, done) => {
    const routeLabel = req.routeOptions.url ?? 'unmatched';
    opts.metrics.requests.inc({
      listener: opts.name,
      route: routeLabel,
      method: req.method,
      status: String(reply.statusCode),
    });
    opts.metrics.duration.observe({ listener: opts.name, route: routeLabel }, reply.elapsedTime / 1000);
    const level = reply.statusCode >= 500 ? 'error' : 'info';
    if ((req.log as unknown as RequestLogger).isLevelEnabled(level))
      req.log[level](
        {
          reqId: req.id,
          method: req.method,
          url: req.url.split('?')[0],
          status: reply.statusCode,
          ms: Math.round(reply.elapsedTime),
        },
        'request',
      );
    done();
  });

  app.setErrorHandler((err: FastifyError | Error, req, reply) => {
    const ye = fromFastifyError(err);
    if (!ye.isUserError()) req.log.error({ err, reqId: req.id }, 'request failed');
    if (AUTH_FAILURE_CODES.has(ye.code)) {
      opts.metrics.authFailures.inc({ listener: opts.name, code: ye.code });
    }
    return opts.renderError(ye, req, reply);
  });
  app.setNotFoundHandler((req, reply) =>
    opts.renderError(
      new YunhaiError('NotFound', `No such endpoint: ${req.method} ${req.url.split('?')[0]}`),
      req,
      reply,
    ),
  );
  return app;
}

/**
 * Request id, source address and headers in the shape authentication needs. The body is always
 * given (empty when none arrived), so a signed body stripped in transit fails its declared hash.
 */
export function authRequestOf(req: FastifyRequest) {
  const q = req.url.indexOf('?');
  return {
    method: req.method,
    path: q < 0 ? req.url : req.url.slice(0, q),
    query: q < 0 ? '' : req.url.slice(q + 1),
    headers: req.headers,
    body: req.rawBody ?? Buffer.alloc(0),
    sourceIp: req.ip,
    requestId: req.id,
  };
}
