/**
 * The AWS Query protocol for IAM (API 2010-05-08) and STS (2011-06-15), each on its own listener,
 * so the AWS SDKs, the AWS CLI and Terraform can manage Yunhai users and keys. Written from the AWS
 * IAM and STS API references. Every request goes through one pipeline:
 *
 *   form parameters (POST body or GET query) -> SigV4 authentication -> ACTIONS[Action]
 *   -> IAM service call as the caller -> `<ActionResponse>` XML
 *
 * and every failure leaves as an AWS `<ErrorResponse>` with the matching HTTP status.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  type AuthOptions,
  authenticate,
  type CredentialSource,
  headerValue,
} from '../../../platform/auth/authenticate.js';
import { parseSigV4 } from '../../../platform/auth/sigv4.js';
import { isYunhaiError, YunhaiError } from '../../../platform/errors.js';
import { authRequestOf } from '../../../platform/http/base-server.js';
import type { Principal, RequestContext } from '../../../platform/policy/principal.js';
import { el, elAttrs, type Xml, xmlDocument } from '../../../platform/xml/writer.js';
import type { IamService } from '../service.js';
import { ACTIONS, type ActionDef, findAction } from './actions.js';
import { errorXml, QueryError, type QueryService, toAwsError, xmlnsOf } from './errors.js';
import { decodeBody, Params, parseForm } from './params.js';

export const API_VERSION: Record<QueryService, string> = { iam: '2010-05-08', sts: '2011-06-15' };

const FORM = 'application/x-www-form-urlencoded';
const HEX_SHA256 = /^[0-9a-fA-F]{64}$/;

const sendXml = (req: FastifyRequest, reply: FastifyReply, status: number, body: string) =>
  reply.code(status).header('x-amzn-RequestId', req.id).type('text/xml').send(body);

/** Renders any error as an AWS Query `<ErrorResponse>`; the listener's base server uses it for every error. */
export const queryErrorRenderer =
  (service: QueryService) => (err: YunhaiError, req: FastifyRequest, reply: FastifyReply) => {
    const e = toAwsError(err, service);
    return sendXml(req, reply, e.status, errorXml(e, service, req.id));
  };

/** AWS Query protocol (IAM 2010-05-08, STS 2011-06-15) on its own listener. */
export function registerQueryApi(
  app: FastifyInstance,
  deps: { service: 'iam' | 'sts'; iam: IamService; credentials: CredentialSource },
) {
  const { service, iam, credentials } = deps;
  const version = API_VERSION[service];
  const authOptions: AuthOptions = { allowBearer: false, service, auditAction: `${service}:Authenticate` };
  const actionNames = Object.entries(ACTIONS)
    .filter(([, def]) => def.service === service)
    .map(([name]) => name);

  const sendError = queryErrorRenderer(service);

  // ---- 1. parameters --------------------------------------------------------------------------

  function readParams(req: FastifyRequest): Params {
    const values = new Map<string, string>();
    const q = req.url.indexOf('?');
    if (q >= 0) parseForm(req.url.slice(q + 1), values, 'query string', true);
    if (req.method === 'POST' && req.rawBody !== undefined) {
      const type = (headerValue(req.headers['content-type']) ?? '').split(';')[0]!.trim().toLowerCase();
      if (type !== '' && type !== FORM) {
        throw new YunhaiError(
          'UnsupportedMediaType',
          `The ${service.toUpperCase()} Query API accepts only ${FORM} bodies, not '${type.slice(0, 100)}'.`,
        );
      }
      parseForm(decodeBody(req.rawBody), values, 'request body');
    }
    return new Params(values);
  }

  // ---- 2. authentication ----------------------------------------------------------------------

  async function authenticateCaller(req: FastifyRequest): Promise<Principal> {
    const authReq = authRequestOf(req);
    const principal = await authenticate(credentials, authReq, authOptions);
    // What authenticate() leaves to the listener: the body must be covered by the signature
    // (no UNSIGNED-PAYLOAD, no body on a presigned URL).
    const refuse = async (code: 'SignatureDoesNotMatch' | 'IncompleteSignature', message: string) => {
      await credentials.auditAuthFailure({
        sourceIp: req.ip,
        requestId: req.id,
        principal: `${principal.accountId}:${principal.userName}`,
        action: authOptions.auditAction,
        errorCode: code,
        tenantId: principal.tenantId,
      });
      return new YunhaiError(code, message);
    };
    const auth = parseSigV4(authReq);
    const declared = headerValue(req.headers['x-amz-content-sha256'])?.trim();
    if (declared !== undefined && !HEX_SHA256.test(declared)) {
      throw await refuse(
        'IncompleteSignature',
        `x-amz-content-sha256 must be the hex SHA-256 of the request body; the ${service.toUpperCase()} endpoint does not accept '${declared.slice(0, 64)}'.`,
      );
    }
    if (auth?.kind === 'query' && req.rawBody !== undefined) {
      throw await refuse(
        'IncompleteSignature',
        'A presigned (query-string signed) request cannot carry a body: its signature does not cover one.',
      );
    }
    return principal;
  }

  // ---- 3. action ------------------------------------------------------------------------------

  function resolveAction(params: Params): { name: string; def: ActionDef } {
    const name = params.raw('Action');
    if (name === undefined || name === '') {
      throw new QueryError(
        'MissingParameter',
        'MissingAction',
        'The request must contain the parameter Action.',
      );
    }
    const requested = params.raw('Version');
    if (requested !== undefined && requested !== version) {
      throw new QueryError(
        'InvalidAction',
        'InvalidAction',
        `Could not find operation ${name.slice(0, 100)} for version ${requested.slice(0, 40)}: this endpoint serves the ${service.toUpperCase()} API version ${version}.`,
      );
    }
    const def = findAction(name, service);
    if (!def) {
      throw new QueryError(
        'InvalidAction',
        'InvalidAction',
        `Could not find operation ${name.slice(0, 100)} for version ${version}. Yunhai's ${service.toUpperCase()} endpoint supports: ${actionNames.join(', ')}.`,
      );
    }
    return { name, def };
  }

  // ---- 4. response ----------------------------------------------------------------------------

  const responseXml = (action: string, requestId: string, result: Xml[] | undefined) =>
    xmlDocument(
      elAttrs(
        `${action}Response`,
        { xmlns: xmlnsOf(service) },
        result === undefined ? undefined : el(`${action}Result`, result),
        el('ResponseMetadata', el('RequestId', requestId)),
      ),
    );

  /** A platform Conflict is AWS's DeleteConflict on deletes, UnmodifiableEntity elsewhere. */
  const inAwsTerms = (e: unknown, action: string) =>
    isYunhaiError(e) && e.code === 'Conflict' && !action.startsWith('Delete')
      ? new QueryError('Conflict', 'UnmodifiableEntity', e.message)
      : e;

  app.register(
    async (scope) => {
      // Errors go through the base server's handler (logging, metrics) and queryErrorRenderer.
      scope.setNotFoundHandler((req, reply) => {
        const path = req.url.split('?')[0];
        const err =
          path === '/'
            ? new YunhaiError('MethodNotAllowed', `The Query API accepts GET and POST, not ${req.method}.`)
            : new QueryError(
                'NotFound',
                'NotFound',
                `No such endpoint: ${req.method} ${path}. The Query API is served at /.`,
              );
        return sendError(err, req, reply);
      });

      scope.route({
        method: ['GET', 'POST'],
        url: '/',
        handler: async (req, reply) => {
          const params = readParams(req);
          const principal = await authenticateCaller(req);
          const { name, def } = resolveAction(params);
          const ctx: RequestContext = { requestId: req.id, sourceIp: req.ip, principal };
          let result: Xml[] | undefined;
          try {
            result = await def.handler({ iam, ctx, params });
          } catch (e) {
            throw inAwsTerms(e, name);
          }
          return sendXml(req, reply, 200, responseXml(name, req.id, result));
        },
      });
    },
    { prefix: '/' },
  );
}
