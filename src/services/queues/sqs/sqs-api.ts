/**
 * The SQS listener, written from the Amazon SQS API reference. One pipeline for both wire
 * protocols:
 *
 *   detect protocol (`X-Amz-Target: AmazonSQS.<Action>` → JSON 1.0, else Query `Action=`)
 *   → parse input into the JSON shape → SigV4 (scope `sqs`) → ACTIONS[action] → QueueService
 *   → JSON body, or Query XML
 *
 * Errors leave in the caller's protocol: JSON `{"__type":"com.amazonaws.sqs#<Name>","message"}`
 * with `x-amzn-query-error: <QueryCode>;Sender` (what the SDKs' query-compatible mode reads), or
 * a Query `<ErrorResponse>`.
 *
 * The pipeline (`createSqsCore`) knows nothing of the HTTP server: well-formed POSTs are served by
 * the direct node:http handler (`direct.ts`), everything else by the listener's Fastify route below.
 *
 * Known gaps against AWS: message attribute list values, SSE-KMS (attributes are stored, nothing
 * is encrypted by KMS), QueueDeletedRecently, FIFO high-throughput partitions (accepted, not needed),
 * ReceiveRequestAttemptId replays kept per process.
 */
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { authenticate, type CredentialSource, headerValue } from '../../../platform/auth/authenticate.js';
import { cachedCredentials } from '../../../platform/auth/credential-cache.js';
import { YunhaiError } from '../../../platform/errors.js';
import type { Metrics } from '../../../platform/http/metrics.js';
import { decodeBody, parseForm } from '../../iam/query/params.js';
import { QueueError, toSqsError } from '../errors.js';
import type { QueueService } from '../service.js';
import type { AbortLike } from '../signal.js';
import { ACTION_NAMES, findAction, type Input, parseQueueUrl, type WireAction } from './actions.js';
import { attachDirectSqs, JSON_TYPE } from './direct.js';
import { queryErrorXml, queryInput, queryResponseXml, SQS_API_VERSION } from './query.js';

const TARGET_PREFIX = 'AmazonSQS.';
const EMPTY = Buffer.alloc(0);

const NEVER_ABORTED: AbortLike = new AbortController().signal;

/**
 * `clientGone` for a request answered on `res`: aborted once the connection closed before the
 * answer; the close listener is added only when a long poll starts waiting. A class, so a request
 * that never waits (all but long polls) costs one small object, not three closures.
 */
class ClientGone implements AbortLike {
  private listeners: Map<() => void, () => void> | undefined;
  private readonly res: ServerResponse;
  constructor(res: ServerResponse) {
    this.res = res;
  }
  get aborted() {
    return this.res.destroyed && !this.res.writableEnded;
  }
  addEventListener(_type: 'abort', listener: () => void) {
    const res = this.res;
    const onClose = () => {
      if (!res.writableEnded) listener();
    };
    this.listeners ??= new Map();
    this.listeners.set(listener, onClose);
    res.once('close', onClose);
  }
  removeEventListener(_type: 'abort', listener: () => void) {
    const onClose = this.listeners?.get(listener);
    if (!onClose) return;
    this.res.removeListener('close', onClose);
    this.listeners!.delete(listener);
  }
}

export function clientGoneOf(res: ServerResponse): AbortLike {
  return new ClientGone(res);
}

/** One SQS request, whichever HTTP server received it. */
export interface SqsCall {
  method: string;
  /** Path and query as received. */
  url: string;
  headers: IncomingHttpHeaders;
  /** The exact bytes received; undefined when there was no body. */
  body: Buffer | undefined;
  sourceIp: string;
  requestId: string;
  /** Fires when the client goes away before its answer; a receive listens only while it waits. */
  clientGone: AbortLike;
}

/** What goes on the wire: status, Content-Type, body and, for JSON errors, `x-amzn-query-error`. */
export interface SqsAnswer {
  status: number;
  type: string;
  body: string;
  queryError?: string;
}

const isJsonCall = (headers: IncomingHttpHeaders) => headers['x-amz-target'] !== undefined;

/** Any error as the request's protocol shows it. */
export function sqsErrorAnswer(err: YunhaiError, headers: IncomingHttpHeaders, requestId: string): SqsAnswer {
  const e = toSqsError(err);
  if (isJsonCall(headers))
    return {
      status: e.status,
      type: JSON_TYPE,
      body: JSON.stringify({ __type: `com.amazonaws.sqs#${e.type}`, message: e.message }),
      queryError: `${e.code};${e.fault}`,
    };
  return { status: e.status, type: 'text/xml', body: queryErrorXml(e, requestId) };
}

/** Renders any error in the protocol of the request; the listener's base server uses it for every error. */
export function sqsErrorRenderer(err: YunhaiError, req: FastifyRequest, reply: FastifyReply) {
  const a = sqsErrorAnswer(err, req.headers, req.id);
  reply.code(a.status).header('x-amzn-RequestId', req.id);
  if (a.queryError !== undefined) reply.header('x-amzn-query-error', a.queryError);
  return reply.type(a.type).send(a.body);
}

/** The protocol pipeline: a request in, its successful answer out (failures are thrown). */
export type SqsCore = (call: SqsCall) => Promise<SqsAnswer>;

export function createSqsCore(deps: { queues: QueueService; credentials: CredentialSource }): SqsCore {
  const { queues } = deps;
  const credentials = cachedCredentials(deps.credentials);

  function readRequest(call: SqsCall, query: string | undefined): { action: WireAction; input: Input } {
    const target = headerValue(call.headers['x-amz-target']);
    const body = call.body;
    if (target !== undefined) {
      if (!target.startsWith(TARGET_PREFIX))
        throw new QueueError('InvalidAction', `The target ${target.slice(0, 100)} is not an SQS operation.`);
      const action = target.slice(TARGET_PREFIX.length);
      if (!findAction(action))
        throw new QueueError(
          'InvalidAction',
          `The action ${action.slice(0, 100)} is not valid for this endpoint.`,
        );
      let input: unknown = {};
      if (body !== undefined) {
        try {
          input = JSON.parse(body.toString('utf8'));
        } catch {
          throw new YunhaiError('MalformedJSON', 'The request body is not valid JSON.');
        }
      }
      if (typeof input !== 'object' || input === null || Array.isArray(input))
        throw new YunhaiError('MalformedJSON', 'The request body must be a JSON object.');
      return { action: action as WireAction, input: input as Input };
    }
    const params = new Map<string, string>();
    if (query !== undefined) parseForm(query, params, 'query string', true);
    if (call.method === 'POST' && body !== undefined) parseForm(decodeBody(body), params, 'request body');
    const action = params.get('Action');
    if (!action) throw new QueueError('MissingParameter', 'The request must contain the parameter Action.');
    const version = params.get('Version');
    if (version !== undefined && version !== SQS_API_VERSION)
      throw new QueueError(
        'InvalidAction',
        `Version ${version.slice(0, 40)} is not supported; this endpoint serves ${SQS_API_VERSION}.`,
      );
    if (!findAction(action))
      throw new QueueError(
        'InvalidAction',
        `The action ${action.slice(0, 100)} is not valid for this endpoint. Supported: ${ACTION_NAMES.join(', ')}.`,
      );
    return { action: action as WireAction, input: queryInput(action as WireAction, params) };
  }

  return async (call) => {
    const q = call.url.indexOf('?');
    const path = q < 0 ? call.url : call.url.slice(0, q);
    const query = q < 0 ? undefined : call.url.slice(q + 1);
    const { action, input } = readRequest(call, query);
    // Query clients may post to the queue's URL instead of naming it.
    if (input.QueueUrl === undefined && path !== '/' && path !== '')
      input.QueueUrl = parseQueueUrl(path) && path;
    const principal = await authenticate(
      credentials,
      {
        method: call.method,
        path,
        query: query ?? '',
        headers: call.headers,
        // Always given (empty when none arrived), so a signed body stripped in transit fails its hash.
        body: call.body ?? EMPTY,
        sourceIp: call.sourceIp,
        requestId: call.requestId,
      },
      { allowBearer: false, service: 'sqs', auditAction: 'sqs:Authenticate' },
    );
    // Only a long poll needs to notice a client that went away; other actions get a signal that never fires.
    const signal = action === 'ReceiveMessage' ? call.clientGone : NEVER_ABORTED;
    const output = await findAction(action)!({
      queues,
      ctx: {
        principal,
        requestId: call.requestId,
        sourceIp: call.sourceIp,
        payloadBytes: call.body?.length ?? 0,
      },
      input,
      baseUrl: `http://${headerValue(call.headers.host) ?? 'localhost'}`,
      abort: signal,
    });
    if (isJsonCall(call.headers)) return { status: 200, type: JSON_TYPE, body: JSON.stringify(output) };
    return { status: 200, type: 'text/xml', body: queryResponseXml(action, output, call.requestId) };
  };
}

/**
 * Serves SQS on `app` (a base server): the Fastify route takes GETs and any POST the direct
 * handler leaves to it (see `direct.ts`); both run the same pipeline.
 */
export function registerSqsApi(
  app: FastifyInstance,
  deps: {
    queues: QueueService;
    credentials: CredentialSource;
    /** The listener's metrics: given, well-formed POSTs bypass Fastify (same answers, metrics, logs). */
    metrics?: Metrics;
  },
) {
  const core = createSqsCore(deps);
  app.route({
    method: ['GET', 'POST'],
    url: '/*',
    handler: async (req, reply) => {
      const answer = await core({
        method: req.method,
        url: req.url,
        headers: req.headers,
        body: req.rawBody,
        sourceIp: req.ip,
        requestId: req.id,
        clientGone: clientGoneOf(reply.raw),
      });
      reply.header('x-amzn-RequestId', req.id);
      return reply.type(answer.type).send(answer.body);
    },
  });
  if (deps.metrics)
    attachDirectSqs(app, {
      core,
      metrics: deps.metrics,
      bodyLimit: app.initialConfig.bodyLimit ?? 1024 * 1024,
      listener: 'sqs',
    });
}
