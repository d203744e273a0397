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
 * Known gaps against AWS: message attribute list values, SSE-KMS (attributes are stored, nothing
 * is encrypted by KMS), QueueDeletedRecently, FIFO high-throughput partitions (accepted, not needed),
 * ReceiveRequestAttemptId replays kept per process.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { authenticate, type CredentialSource, headerValue } from '../../../platform/auth/authenticate.js';
import { cachedCredentials } from '../../../platform/auth/credential-cache.js';
import { YunhaiError } from '../../../platform/errors.js';
import { authRequestOf } from '../../../platform/http/base-server.js';
import { decodeBody, parseForm } from '../../iam/query/params.js';
import { QueueError, toSqsError } from '../errors.js';
import type { QueueService } from '../service.js';
import { ACTION_NAMES, findAction, type Input, parseQueueUrl, type WireAction } from './actions.js';
import { queryErrorXml, queryInput, queryResponseXml, SQS_API_VERSION } from './query.js';

const JSON_TYPE = 'application/x-amz-json-1.0';
const TARGET_PREFIX = 'AmazonSQS.';

const NEVER_ABORTED = new AbortController().signal;

const isJsonRequest = (req: FastifyRequest) => headerValue(req.headers['x-amz-target']) !== undefined;

/** Renders any error in the protocol of the request; the listener's base server uses it for every error. */
export function sqsErrorRenderer(err: YunhaiError, req: FastifyRequest, reply: FastifyReply) {
  const e = toSqsError(err);
  reply.code(e.status).header('x-amzn-RequestId', req.id);
  if (isJsonRequest(req)) {
    return reply
      .header('x-amzn-query-error', `${e.code};${e.fault}`)
      .type(JSON_TYPE)
      .send(JSON.stringify({ __type: `com.amazonaws.sqs#${e.type}`, message: e.message }));
  }
  return reply.type('text/xml').send(queryErrorXml(e, req.id));
}

export function registerSqsApi(
  app: FastifyInstance,
  deps: { queues: QueueService; credentials: CredentialSource },
) {
  const { queues } = deps;
  const credentials = cachedCredentials(deps.credentials);

  function readRequest(req: FastifyRequest): { action: WireAction; input: Input } {
    const target = headerValue(req.headers['x-amz-target']);
    const body = req.rawBody;
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
    const q = req.url.indexOf('?');
    if (q >= 0) parseForm(req.url.slice(q + 1), params, 'query string', true);
    if (req.method === 'POST' && body !== undefined) parseForm(decodeBody(body), params, 'request body');
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

  app.route({
    method: ['GET', 'POST'],
    url: '/*',
    handler: async (req, reply) => {
      const { action, input } = readRequest(req);
      // Query clients may post to the queue's URL instead of naming it.
      const path = req.url.split('?')[0]!;
      if (input.QueueUrl === undefined && path !== '/' && path !== '')
        input.QueueUrl = parseQueueUrl(path) && path;
      const principal = await authenticate(credentials, authRequestOf(req), {
        allowBearer: false,
        service: 'sqs',
        auditAction: 'sqs:Authenticate',
      });
      // Only a long poll needs to notice a client that went away (an abort builds a DOMException);
      // other actions share one signal that never fires (a controller per request showed in profiles).
      let signal = NEVER_ABORTED;
      if (action === 'ReceiveMessage') {
        const abort = new AbortController();
        signal = abort.signal;
        reply.raw.once('close', () => {
          if (!reply.sent) abort.abort();
        });
      }
      const host = headerValue(req.headers.host) ?? `${req.hostname}`;
      const output = await findAction(action)!({
        queues,
        ctx: { principal, requestId: req.id, sourceIp: req.ip, payloadBytes: req.rawBody?.length ?? 0 },
        input,
        baseUrl: `http://${host}`,
        abort: signal,
      });
      reply.header('x-amzn-RequestId', req.id);
      if (isJsonRequest(req)) return reply.type(JSON_TYPE).send(JSON.stringify(output));
      return reply.type('text/xml').send(queryResponseXml(action, output, req.id));
    },
  });
}
