import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { type ZodType, z } from 'zod';
import { YunhaiError } from '../errors.js';
import type { Principal, RequestContext } from '../policy/principal.js';

/**
 * The REST API's route table. A route is data: method, path, zod schemas for params, query,
 * body and response, and a handler that receives validated input. The same table drives the
 * Fastify routes and the OpenAPI 3.1 document, so the two cannot drift apart.
 */
export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface RestContext extends RequestContext {
  /** The bearer token when the caller used one (sign-out needs it). */
  sessionToken?: string;
  reply: FastifyReply;
}

export interface RouteDef<
  P extends ZodType = ZodType,
  Q extends ZodType = ZodType,
  B extends ZodType = ZodType,
> {
  method: HttpMethod;
  /** OpenAPI-style path under the API prefix, e.g. `/users/{id}`. */
  path: string;
  operationId: string;
  summary: string;
  tag: string;
  params?: P;
  query?: Q;
  body?: B;
  response?: ZodType;
  /** Success status (default 200; 204 sends no body). */
  status?: number;
  /** No authentication (health, sign-in, the OpenAPI document). */
  public?: boolean;
  handler: (
    ctx: RestContext,
    input: { params: z.output<P>; query: z.output<Q>; body: z.output<B> },
  ) => Promise<unknown>;
}

/** Identity helper that keeps the schema types flowing into the handler. */
export function route<P extends ZodType = ZodType, Q extends ZodType = ZodType, B extends ZodType = ZodType>(
  def: RouteDef<P, Q, B>,
): RouteDef {
  return def as unknown as RouteDef;
}

export interface MountDeps {
  authenticate(req: FastifyRequest): Promise<{ principal: Principal; sessionToken?: string }>;
}

/** Turns zod failures into our error codes; unknown keys get their own code. */
export function validationError(err: z.ZodError, where: string): YunhaiError {
  const unknown = err.issues.find((i) => i.code === 'unrecognized_keys');
  if (unknown && unknown.code === 'unrecognized_keys') {
    return new YunhaiError(
      'UnknownField',
      `Unknown field${unknown.keys.length > 1 ? 's' : ''} in ${where}: ${unknown.keys.join(', ')}.`,
      {
        fields: unknown.keys,
      },
    );
  }
  const msg = err.issues
    .slice(0, 5)
    .map((i) => `${[where, ...i.path.map(String)].join('.')}: ${i.message}`)
    .join('; ');
  return new YunhaiError('ValidationError', msg, {
    issues: err.issues.map((i) => ({ path: i.path.map(String), message: i.message })),
  });
}

function parse<T extends ZodType>(schema: T | undefined, value: unknown, where: string): unknown {
  if (!schema) return value;
  const r = schema.safeParse(value ?? (where === 'body' ? undefined : {}));
  if (!r.success) throw validationError(r.error, where);
  return r.data;
}

const toFastifyPath = (p: string) => p.replace(/\{(\w+)\}/g, ':$1');

/** Name of the portal's session cookie (HttpOnly, SameSite=Strict; set on sign-in). */
export const SESSION_COOKIE = 'yunhai_session';

/** The session token the portal's cookie carries, if the request has one. */
export function sessionCookieOf(req: Pick<FastifyRequest, 'headers'>): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim() !== SESSION_COOKIE) continue;
    const value = part.slice(eq + 1).trim();
    return value === '' ? undefined : value;
  }
  return undefined;
}

/** True when the request's Origin header names this server itself (scheme, host and port). */
export function sameOrigin(req: Pick<FastifyRequest, 'headers' | 'protocol'>): boolean {
  const origin = req.headers.origin;
  return origin !== undefined && origin !== 'null' && origin === `${req.protocol}://${req.headers.host}`;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * CSRF defence for cookie-authenticated requests: a browser sends the cookie on a cross-site form
 * post but cannot add a custom header without a CORS preflight (which this API never grants), and
 * it always sends Origin on such a post. So a state-changing request that authenticates only by the
 * cookie must carry `X-Requested-With` or an Origin equal to the API's own. Requests with an
 * Authorization header (bearer token, SigV4) are not cookie-borne and pass.
 */
export function checkCsrf(req: Pick<FastifyRequest, 'headers' | 'method' | 'protocol'>): void {
  if (SAFE_METHODS.has(req.method)) return;
  if (req.headers.authorization !== undefined) return;
  if (sessionCookieOf(req) === undefined) return;
  if (req.headers['x-requested-with'] !== undefined) return;
  if (sameOrigin(req)) return;
  throw new YunhaiError(
    'AccessDenied',
    'Cross-site request refused: a request authenticated by the session cookie must send X-Requested-With or come from the same origin.',
  );
}

export function mountRoutes(app: FastifyInstance, prefix: string, routes: RouteDef[], deps: MountDeps) {
  for (const r of routes) {
    app.route({
      method: r.method,
      url: prefix + toFastifyPath(r.path),
      handler: async (req, reply) => {
        const params = parse(r.params, req.params, 'path');
        const query = parse(r.query, req.query, 'query');
        if (!r.body && req.body !== undefined && r.method !== 'GET' && r.method !== 'DELETE') {
          throw new YunhaiError('ValidationError', 'This operation takes no request body.');
        }
        const body = parse(r.body, req.body, 'body');
        let ctx: RestContext;
        if (r.public) {
          ctx = { requestId: req.id, sourceIp: req.ip, principal: undefined as unknown as Principal, reply };
        } else {
          checkCsrf(req);
          const who = await deps.authenticate(req);
          ctx = {
            requestId: req.id,
            sourceIp: req.ip,
            principal: who.principal,
            sessionToken: who.sessionToken,
            reply,
          };
        }
        const result = await r.handler(ctx, { params, query, body } as never);
        const status = r.status ?? 200;
        if (status === 204) return reply.code(204).send();
        return reply.code(status).send(result);
      },
    });
  }
}

/** OpenAPI 3.1 document generated from the route table. */
export function openApiDocument(
  routes: RouteDef[],
  info: { title: string; version: string; prefix: string },
) {
  const paths: Record<string, Record<string, unknown>> = {};
  const schemaOf = (s: ZodType, io: 'input' | 'output') => z.toJSONSchema(s, { io, unrepresentable: 'any' });
  const errorRef = { $ref: '#/components/responses/Error' };
  for (const r of routes) {
    const op: Record<string, unknown> = {
      operationId: r.operationId,
      summary: r.summary,
      tags: [r.tag],
      responses: {
        [String(r.status ?? 200)]:
          (r.status ?? 200) === 204
            ? { description: 'No content' }
            : {
                description: 'Success',
                content: { 'application/json': { schema: r.response ? schemaOf(r.response, 'output') : {} } },
              },
        '4XX': errorRef,
        '5XX': errorRef,
      },
    };
    if (!r.public) op.security = [{ sigv4: [] }, { bearer: [] }];
    const parameters: unknown[] = [];
    const addParams = (s: ZodType | undefined, where: 'path' | 'query') => {
      if (!s) return;
      const js = schemaOf(s, 'input') as { properties?: Record<string, unknown>; required?: string[] };
      for (const [name, schema] of Object.entries(js.properties ?? {})) {
        parameters.push({
          name,
          in: where,
          required: where === 'path' || (js.required ?? []).includes(name),
          schema,
        });
      }
    };
    addParams(r.params, 'path');
    addParams(r.query, 'query');
    if (parameters.length) op.parameters = parameters;
    if (r.body)
      op.requestBody = {
        required: true,
        content: { 'application/json': { schema: schemaOf(r.body, 'input') } },
      };
    const p = info.prefix + r.path;
    paths[p] ??= {};
    paths[p][r.method.toLowerCase()] = op;
  }
  return {
    openapi: '3.1.0',
    info: { title: info.title, version: info.version },
    paths,
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'Session token from POST /api/v1/auth/login' },
        sigv4: {
          type: 'apiKey',
          in: 'header',
          name: 'Authorization',
          description: 'AWS Signature Version 4 with a Yunhai access key (service name `yunhai`)',
        },
      },
      responses: {
        Error: {
          description: 'Error',
          content: {
            'application/json': {
              schema: {
                type: 'object',
                required: ['error'],
                properties: {
                  error: {
                    type: 'object',
                    required: ['code', 'message', 'requestId'],
                    properties: {
                      code: { type: 'string' },
                      message: { type: 'string' },
                      requestId: { type: 'string' },
                    },
                  },
                },
              },
            },
          },
        },
      },
    },
  };
}
