import Fastify, {
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from 'fastify';
import type { Logger } from 'pino';
import { toYunhaiError, YunhaiError } from '../errors.js';
import { newRequestId } from '../ids.js';
import type { Metrics } from './metrics.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The exact bytes received (SigV4 hashes them); undefined when there was no body. */
    rawBody?: Buffer;
  }
}

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
 * A Fastify instance with what every listener shares: request ids (`x-request-id`, honouring
 * none from the client), raw-body capture for signature checks, metrics, structured logs and
 * one error path that renders in the listener's own protocol.
 */
export function createBaseServer(opts: BaseServerOptions): FastifyInstance {
  const app = Fastify({
    loggerInstance: opts.logger.child({ listener: opts.name }),
    bodyLimit: opts.bodyLimit,
    genReqId: () => newRequestId(),
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

  app.addHook('onRequest', async (req, reply) => {
    reply.header('x-request-id', req.id);
  });
  app.addHook('onResponse', async (req, reply) => {
    const routeLabel = req.routeOptions.url ?? 'unmatched';
    opts.metrics.requests.inc({
      listener: opts.name,
      route: routeLabel,
      method: req.method,
      status: String(reply.statusCode),
    });
    opts.metrics.duration.observe({ listener: opts.name, route: routeLabel }, reply.elapsedTime / 1000);
    const level = reply.statusCode >= 500 ? 'error' : 'info';
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
  });

  app.setErrorHandler((err: FastifyError | Error, req, reply) => {
    const ye = fromFastifyError(err);
    if (!ye.isUserError()) req.log.error({ err, reqId: req.id }, 'request failed');
    if (
      [
        'Unauthenticated',
        'InvalidClientTokenId',
        'SignatureDoesNotMatch',
        'RequestExpired',
        'RequestTimeTooSkewed',
        'IncompleteSignature',
      ].includes(ye.code)
    ) {
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
