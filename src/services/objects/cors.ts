/**
 * Bucket CORS: parse and validate a CORSConfiguration (PutBucketCors), write it back
 * (GetBucketCors), and decide the CORS response headers for preflight (OPTIONS) and actual
 * requests. Pure: the S3 adapter reads the headers and the stored configuration and applies the
 * outcome. https://docs.aws.amazon.com/AmazonS3/latest/userguide/cors.html
 *
 * Matching, as S3 does it: the first rule whose AllowedOrigin matches the Origin (one `*` wildcard
 * allowed, otherwise exact), whose AllowedMethod includes the method and, for a preflight, whose
 * AllowedHeader patterns (case-insensitive, one `*`) cover every Access-Control-Request-Headers
 * entry. On an actual request an Access-Control-Request-Method header, if sent, takes the place of
 * the request's own method (s3-tests relies on this). A rule whose origin is exactly `*` answers
 * `Access-Control-Allow-Origin: *`; any other rule echoes the Origin and allows credentials.
 */
import { childrenNamed, parseXml, type XmlElement, XmlParseError } from '../../platform/xml/parser.js';
import { el, elAttrs, optional, xmlDocument } from '../../platform/xml/writer.js';
import { S3DocumentError } from './bucket-policy.js';

export const CORS_METHODS = ['GET', 'PUT', 'POST', 'DELETE', 'HEAD'] as const;
export type CorsMethod = (typeof CORS_METHODS)[number];

export interface CorsRule {
  id?: string;
  allowedOrigins: string[];
  allowedMethods: CorsMethod[];
  allowedHeaders: string[];
  exposeHeaders: string[];
  maxAgeSeconds?: number;
}

export interface CorsConfiguration {
  rules: CorsRule[];
}

/** AWS allows at most 100 rules in a CORS configuration. */
export const MAX_CORS_RULES = 100;

const malformedXml = (why?: string) =>
  new S3DocumentError(
    'MalformedXML',
    'The XML you provided was not well-formed or did not validate against our published schema' +
      (why ? ` (${why})` : ''),
  );

const RULE_CHILDREN = new Set([
  'ID',
  'AllowedOrigin',
  'AllowedMethod',
  'AllowedHeader',
  'ExposeHeader',
  'MaxAgeSeconds',
]);

function parseRule(r: XmlElement): CorsRule {
  for (const c of r.children)
    if (!RULE_CHILDREN.has(c.name)) throw malformedXml(`unexpected ${c.name} in CORSRule`);
  const texts = (name: string) => childrenNamed(r, name).map((c) => c.text.trim());
  const allowedOrigins = texts('AllowedOrigin');
  const methods = texts('AllowedMethod');
  if (allowedOrigins.length === 0) throw malformedXml('a CORSRule needs an AllowedOrigin');
  if (methods.length === 0) throw malformedXml('a CORSRule needs an AllowedMethod');
  for (const m of methods) {
    if (!(CORS_METHODS as readonly string[]).includes(m))
      throw new S3DocumentError(
        'InvalidRequest',
        `Found unsupported HTTP method in CORS config. Unsupported method is ${m}`,
      );
  }
  for (const o of allowedOrigins) {
    if (o === '') throw malformedXml('empty AllowedOrigin');
    if (o.split('*').length > 2)
      throw new S3DocumentError(
        'InvalidRequest',
        `AllowedOrigin "${o}" can not have more than one wildcard.`,
      );
  }
  const allowedHeaders = texts('AllowedHeader');
  for (const h of allowedHeaders) {
    if (h.split('*').length > 2)
      throw new S3DocumentError(
        'InvalidRequest',
        `AllowedHeader "${h}" can not have more than one wildcard.`,
      );
  }
  const rule: CorsRule = {
    allowedOrigins,
    allowedMethods: [...new Set(methods)] as CorsMethod[],
    allowedHeaders,
    exposeHeaders: texts('ExposeHeader'),
  };
  const ids = texts('ID');
  if (ids.length > 1) throw malformedXml('more than one ID');
  if (ids[0] !== undefined) {
    if (ids[0].length > 255)
      throw new S3DocumentError('InvalidArgument', 'ID length should not exceed allowed limit of 255');
    rule.id = ids[0];
  }
  const maxAge = texts('MaxAgeSeconds');
  if (maxAge.length > 1) throw malformedXml('more than one MaxAgeSeconds');
  if (maxAge[0] !== undefined) {
    if (!/^\d{1,10}$/.test(maxAge[0]) || Number(maxAge[0]) > 2 ** 31 - 1) throw malformedXml('MaxAgeSeconds');
    rule.maxAgeSeconds = Number(maxAge[0]);
  }
  return rule;
}

/**
 * Parses a PutBucketCors body (raw XML or an element from the platform parser). Throws
 * S3DocumentError: MalformedXML for bad XML or shape, InvalidRequest for an unsupported method or
 * a second wildcard in an origin or header, as AWS does.
 */
export function parseCorsConfiguration(body: string | XmlElement): CorsConfiguration {
  let root: XmlElement;
  if (typeof body === 'string') {
    try {
      root = parseXml(body);
    } catch (e) {
      if (e instanceof XmlParseError) throw malformedXml();
      throw e;
    }
  } else root = body;
  if (root.name !== 'CORSConfiguration') throw malformedXml(`root element ${root.name}`);
  for (const c of root.children) if (c.name !== 'CORSRule') throw malformedXml(`unexpected ${c.name}`);
  const rules = childrenNamed(root, 'CORSRule');
  if (rules.length === 0) throw malformedXml('no CORSRule');
  if (rules.length > MAX_CORS_RULES)
    throw malformedXml(`a CORS configuration may hold at most ${MAX_CORS_RULES} rules`);
  return { rules: rules.map(parseRule) };
}

/** The GetBucketCors response document. */
export function corsConfigurationXml(config: CorsConfiguration): string {
  return xmlDocument(
    elAttrs(
      'CORSConfiguration',
      { xmlns: 'http://s3.amazonaws.com/doc/2006-03-01/' },
      config.rules.map((r) =>
        el(
          'CORSRule',
          optional('ID', r.id),
          r.allowedHeaders.map((h) => el('AllowedHeader', h)),
          r.allowedMethods.map((m) => el('AllowedMethod', m)),
          r.allowedOrigins.map((o) => el('AllowedOrigin', o)),
          r.exposeHeaders.map((h) => el('ExposeHeader', h)),
          optional('MaxAgeSeconds', r.maxAgeSeconds),
        ),
      ),
    ),
  );
}

/** `pattern` with at most one `*`; no other wildcard characters. */
function oneStarMatch(pattern: string, value: string, ignoreCase: boolean): boolean {
  const p = ignoreCase ? pattern.toLowerCase() : pattern;
  const v = ignoreCase ? value.toLowerCase() : value;
  const star = p.indexOf('*');
  if (star < 0) return p === v;
  const head = p.slice(0, star);
  const tail = p.slice(star + 1);
  return v.length >= head.length + tail.length && v.startsWith(head) && v.endsWith(tail);
}

/** Splits an Access-Control-Request-Headers value into lower-case header names. */
export function parseRequestHeaderList(value: string | undefined): string[] {
  if (!value) return [];
  return value
    .split(',')
    .map((h) => h.trim().toLowerCase())
    .filter((h) => h !== '');
}

/** The request facts CORS matching needs. */
export interface CorsRequest {
  origin: string;
  /** The method to allow: Access-Control-Request-Method on a preflight. */
  method: string;
  /** Access-Control-Request-Headers (preflight only), lower-case. */
  requestHeaders?: readonly string[];
}

/** The first rule that allows the request, or undefined. */
export function findCorsRule(config: CorsConfiguration, req: CorsRequest): CorsRule | undefined {
  const wanted = req.requestHeaders ?? [];
  return config.rules.find(
    (r) =>
      r.allowedOrigins.some((o) => oneStarMatch(o, req.origin, false)) &&
      (r.allowedMethods as readonly string[]).includes(req.method) &&
      wanted.every((h) => r.allowedHeaders.some((a) => oneStarMatch(a, h, true))),
  );
}

const VARY = 'Origin, Access-Control-Request-Headers, Access-Control-Request-Method';

function responseHeaders(rule: CorsRule, req: CorsRequest, preflight: boolean): Record<string, string> {
  const wildcard = rule.allowedOrigins.includes('*');
  const h: Record<string, string> = {
    'access-control-allow-origin': wildcard ? '*' : req.origin,
    'access-control-allow-methods': rule.allowedMethods.join(', '),
    vary: VARY,
  };
  if (!wildcard) h['access-control-allow-credentials'] = 'true';
  if (preflight && req.requestHeaders && req.requestHeaders.length > 0)
    h['access-control-allow-headers'] = req.requestHeaders.join(', ');
  if (rule.exposeHeaders.length > 0) h['access-control-expose-headers'] = rule.exposeHeaders.join(', ');
  if (rule.maxAgeSeconds !== undefined) h['access-control-max-age'] = String(rule.maxAgeSeconds);
  return h;
}

/**
 * CORS headers to add to an actual (non-OPTIONS) response; empty when the request carries no
 * Origin, the bucket has no configuration or no rule matches (the request itself still proceeds).
 * `accessControlRequestMethod`, when the client sent one, is matched instead of `method`.
 */
export function corsResponseHeaders(
  config: CorsConfiguration | undefined,
  req: { origin?: string; method: string; accessControlRequestMethod?: string },
): Record<string, string> {
  if (!config || !req.origin) return {};
  const r: CorsRequest = { origin: req.origin, method: req.accessControlRequestMethod ?? req.method };
  const rule = findCorsRule(config, r);
  return rule ? responseHeaders(rule, r, false) : {};
}

export type PreflightOutcome =
  | { ok: true; headers: Record<string, string> }
  | { ok: false; status: 400 | 403; code: 'BadRequest' | 'AccessForbidden'; message: string };

/**
 * The answer to a preflight `OPTIONS` on a bucket or object: 200 with the CORS headers, 400 when
 * Origin or Access-Control-Request-Method is missing, 403 when the bucket has no CORS
 * configuration or no rule allows the request (AWS's codes and messages).
 */
export function corsPreflight(
  config: CorsConfiguration | undefined,
  req: { origin?: string; accessControlRequestMethod?: string; accessControlRequestHeaders?: string },
): PreflightOutcome {
  if (!req.origin)
    return {
      ok: false,
      status: 400,
      code: 'BadRequest',
      message: 'Insufficient information. Origin request header needed.',
    };
  if (!req.accessControlRequestMethod)
    return {
      ok: false,
      status: 400,
      code: 'BadRequest',
      message: 'Invalid Access-Control-Request-Method: null',
    };
  if (!(CORS_METHODS as readonly string[]).includes(req.accessControlRequestMethod))
    return {
      ok: false,
      status: 400,
      code: 'BadRequest',
      message: `Invalid Access-Control-Request-Method: ${req.accessControlRequestMethod}`,
    };
  if (!config)
    return {
      ok: false,
      status: 403,
      code: 'AccessForbidden',
      message: 'CORSResponse: CORS is not enabled for this bucket.',
    };
  const r: CorsRequest = {
    origin: req.origin,
    method: req.accessControlRequestMethod,
    requestHeaders: parseRequestHeaderList(req.accessControlRequestHeaders),
  };
  const rule = findCorsRule(config, r);
  if (!rule)
    return {
      ok: false,
      status: 403,
      code: 'AccessForbidden',
      message:
        "CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.",
    };
  return { ok: true, headers: responseHeaders(rule, r, true) };
}

/** Shorthand used in docs and tests: the headers for a request, preflight or not. */
export function matchCors(
  config: CorsConfiguration | undefined,
  req: { origin?: string; method: string; requestHeaders?: string; accessControlRequestMethod?: string },
): Record<string, string> | undefined {
  if (req.method === 'OPTIONS') {
    const out = corsPreflight(config, {
      origin: req.origin,
      accessControlRequestMethod: req.accessControlRequestMethod,
      accessControlRequestHeaders: req.requestHeaders,
    });
    return out.ok ? out.headers : undefined;
  }
  const h = corsResponseHeaders(config, req);
  return Object.keys(h).length > 0 ? h : undefined;
}
