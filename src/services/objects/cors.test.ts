import { describe, expect, it } from 'vitest';
import { parseXml } from '../../platform/xml/parser.js';
import { S3DocumentError } from './bucket-policy.js';
import {
  type CorsConfiguration,
  corsConfigurationXml,
  corsPreflight,
  corsResponseHeaders,
  matchCors,
  parseCorsConfiguration,
  parseRequestHeaderList,
} from './cors.js';

const doc = (rules: string) =>
  `<CORSConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${rules}</CORSConfiguration>`;
const rule = (inner: string) => `<CORSRule>${inner}</CORSRule>`;

const codeOf = (body: string): string => {
  try {
    parseCorsConfiguration(body);
  } catch (e) {
    expect(e).toBeInstanceOf(S3DocumentError);
    return (e as S3DocumentError).code;
  }
  throw new Error('expected an S3DocumentError');
};

describe('parseCorsConfiguration', () => {
  it('reads every field and writes the same configuration back', () => {
    const config = parseCorsConfiguration(
      doc(
        rule(
          '<ID>r1</ID><AllowedOrigin>https://*.example.com</AllowedOrigin><AllowedOrigin>http://a</AllowedOrigin>' +
            '<AllowedMethod>GET</AllowedMethod><AllowedMethod>PUT</AllowedMethod><AllowedHeader>x-amz-*</AllowedHeader>' +
            '<ExposeHeader>ETag</ExposeHeader><MaxAgeSeconds>3000</MaxAgeSeconds>',
        ) + rule('<AllowedOrigin>*</AllowedOrigin><AllowedMethod>HEAD</AllowedMethod>'),
      ),
    );
    expect(config).toEqual<CorsConfiguration>({
      rules: [
        {
          id: 'r1',
          allowedOrigins: ['https://*.example.com', 'http://a'],
          allowedMethods: ['GET', 'PUT'],
          allowedHeaders: ['x-amz-*'],
          exposeHeaders: ['ETag'],
          maxAgeSeconds: 3000,
        },
        { allowedOrigins: ['*'], allowedMethods: ['HEAD'], allowedHeaders: [], exposeHeaders: [] },
      ],
    });
    const xml = corsConfigurationXml(config);
    expect(xml).toMatch(/^<\?xml version="1.0" encoding="UTF-8"\?>\n<CORSConfiguration xmlns=/);
    expect(parseCorsConfiguration(xml)).toEqual(config);
    expect(parseCorsConfiguration(parseXml(xml))).toEqual(config);
  });

  it.each([
    ['broken XML', '<CORSConfiguration>', 'MalformedXML'],
    ['another root', '<LifecycleConfiguration/>', 'MalformedXML'],
    ['no rules', doc(''), 'MalformedXML'],
    ['a rule without an origin', doc(rule('<AllowedMethod>GET</AllowedMethod>')), 'MalformedXML'],
    ['a rule without a method', doc(rule('<AllowedOrigin>*</AllowedOrigin>')), 'MalformedXML'],
    [
      'an unknown element',
      doc(rule('<AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod><Color/>')),
      'MalformedXML',
    ],
    [
      'a bad MaxAgeSeconds',
      doc(
        rule(
          '<AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod><MaxAgeSeconds>-1</MaxAgeSeconds>',
        ),
      ),
      'MalformedXML',
    ],
    [
      'an unsupported method',
      doc(rule('<AllowedOrigin>*</AllowedOrigin><AllowedMethod>PATCH</AllowedMethod>')),
      'InvalidRequest',
    ],
    [
      'a lower-case method',
      doc(rule('<AllowedOrigin>*</AllowedOrigin><AllowedMethod>get</AllowedMethod>')),
      'InvalidRequest',
    ],
    [
      'two wildcards in an origin',
      doc(rule('<AllowedOrigin>*.*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>')),
      'InvalidRequest',
    ],
    [
      'two wildcards in a header',
      doc(
        rule(
          '<AllowedOrigin>a</AllowedOrigin><AllowedMethod>GET</AllowedMethod><AllowedHeader>**</AllowedHeader>',
        ),
      ),
      'InvalidRequest',
    ],
    [
      'an over-long ID',
      doc(
        rule(`<ID>${'a'.repeat(256)}</ID><AllowedOrigin>a</AllowedOrigin><AllowedMethod>GET</AllowedMethod>`),
      ),
      'InvalidArgument',
    ],
  ])('refuses %s', (_what, body, code) => {
    expect(codeOf(body)).toBe(code);
  });

  it('allows 100 rules and refuses 101', () => {
    const r = rule('<AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>');
    expect(parseCorsConfiguration(doc(r.repeat(100))).rules).toHaveLength(100);
    expect(codeOf(doc(r.repeat(101)))).toBe('MalformedXML');
  });
});

describe('CORS matching', () => {
  // The rules of s3-tests' test_cors_origin_response.
  const config = parseCorsConfiguration(
    doc(
      rule('<AllowedOrigin>*suffix</AllowedOrigin><AllowedMethod>GET</AllowedMethod>') +
        rule('<AllowedOrigin>start*end</AllowedOrigin><AllowedMethod>GET</AllowedMethod>') +
        rule('<AllowedOrigin>prefix*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>') +
        rule('<AllowedOrigin>*.put</AllowedOrigin><AllowedMethod>PUT</AllowedMethod>'),
    ),
  );
  const allowOrigin = (origin: string | undefined, method: string, acrm?: string) =>
    corsResponseHeaders(config, { origin, method, accessControlRequestMethod: acrm })[
      'access-control-allow-origin'
    ];

  it.each<[string | undefined, string, string | undefined, string | undefined]>([
    [undefined, 'GET', undefined, undefined],
    ['foo.suffix', 'GET', undefined, 'foo.suffix'],
    ['foo.bar', 'GET', undefined, undefined],
    ['foo.suffix.get', 'GET', undefined, undefined],
    ['startend', 'GET', undefined, 'startend'],
    ['start12end', 'GET', undefined, 'start12end'],
    ['0start12end', 'GET', undefined, undefined],
    ['prefix', 'GET', undefined, 'prefix'],
    ['prefix.suffix', 'GET', undefined, 'prefix.suffix'],
    ['bla.prefix', 'GET', undefined, undefined],
    ['foo.suffix', 'PUT', 'GET', 'foo.suffix'],
    ['foo.suffix', 'PUT', 'PUT', undefined],
    ['foo.suffix', 'PUT', undefined, undefined],
    ['foo.put', 'PUT', undefined, 'foo.put'],
  ])('an actual request from %s (%s, ACRM %s) gets Allow-Origin %s', (origin, method, acrm, want) => {
    expect(allowOrigin(origin, method, acrm)).toBe(want);
  });

  it('answers a matching actual request with the rule’s methods, credentials and Vary', () => {
    expect(corsResponseHeaders(config, { origin: 'foo.put', method: 'PUT' })).toEqual({
      'access-control-allow-origin': 'foo.put',
      'access-control-allow-methods': 'PUT',
      'access-control-allow-credentials': 'true',
      vary: 'Origin, Access-Control-Request-Headers, Access-Control-Request-Method',
    });
    expect(corsResponseHeaders(undefined, { origin: 'foo.put', method: 'PUT' })).toEqual({});
  });

  it.each<[string | undefined, string | undefined, number, string | undefined]>([
    [undefined, undefined, 400, undefined],
    ['foo.suffix', undefined, 400, undefined],
    ['foo.suffix', 'GET', 200, 'foo.suffix'],
    ['foo.bar', 'GET', 403, undefined],
    ['foo.suffix.get', 'GET', 403, undefined],
    ['start1end', 'GET', 200, 'start1end'],
    ['0start12end', 'GET', 403, undefined],
    ['bla.prefix', 'GET', 403, undefined],
    ['foo.put', 'GET', 403, undefined],
    ['foo.put', 'PUT', 200, 'foo.put'],
    ['foo.put', 'PATCH', 400, undefined],
  ])('a preflight from %s for %s answers %d', (origin, acrm, status, want) => {
    const out = corsPreflight(config, { origin, accessControlRequestMethod: acrm });
    expect(out.ok ? 200 : out.status).toBe(status);
    expect(out.ok ? out.headers['access-control-allow-origin'] : undefined).toBe(want);
  });

  it('refuses a preflight on a bucket without CORS with 403 AccessForbidden', () => {
    expect(corsPreflight(undefined, { origin: 'a', accessControlRequestMethod: 'GET' })).toMatchObject({
      ok: false,
      status: 403,
      code: 'AccessForbidden',
    });
  });

  describe('with a wildcard origin and headers', () => {
    const open = parseCorsConfiguration(
      doc(
        rule(
          '<AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod><AllowedMethod>HEAD</AllowedMethod>' +
            '<AllowedHeader>x-amz-*</AllowedHeader><AllowedHeader>Content-Type</AllowedHeader>' +
            '<ExposeHeader>x-amz-meta-header1</ExposeHeader><ExposeHeader>ETag</ExposeHeader><MaxAgeSeconds>60</MaxAgeSeconds>',
        ),
      ),
    );

    it('answers * without credentials and echoes the requested headers', () => {
      const out = corsPreflight(open, {
        origin: 'example.origin',
        accessControlRequestMethod: 'GET',
        accessControlRequestHeaders: 'X-Amz-Date, content-type',
      });
      expect(out).toEqual({
        ok: true,
        headers: {
          'access-control-allow-origin': '*',
          'access-control-allow-methods': 'GET, HEAD',
          'access-control-allow-headers': 'x-amz-date, content-type',
          'access-control-expose-headers': 'x-amz-meta-header1, ETag',
          'access-control-max-age': '60',
          vary: 'Origin, Access-Control-Request-Headers, Access-Control-Request-Method',
        },
      });
    });

    it('refuses a preflight asking for a header no rule allows', () => {
      expect(
        corsPreflight(open, {
          origin: 'example.origin',
          accessControlRequestMethod: 'GET',
          accessControlRequestHeaders: 'x-amz-date, authorization',
        }),
      ).toMatchObject({ ok: false, status: 403 });
    });

    it('refuses headers when the rule allows none (test_cors_header_option)', () => {
      const exposeOnly = parseCorsConfiguration(
        doc(
          rule(
            '<AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod><ExposeHeader>x-amz-meta-header1</ExposeHeader>',
          ),
        ),
      );
      expect(
        corsPreflight(exposeOnly, {
          origin: 'example.origin',
          accessControlRequestMethod: 'GET',
          accessControlRequestHeaders: 'x-amz-meta-header2',
        }),
      ).toMatchObject({ ok: false, status: 403 });
    });

    it('gives the same answers through matchCors', () => {
      expect(
        matchCors(open, { origin: 'o', method: 'OPTIONS', accessControlRequestMethod: 'HEAD' }),
      ).toMatchObject({
        'access-control-allow-origin': '*',
      });
      expect(
        matchCors(open, { origin: 'o', method: 'OPTIONS', accessControlRequestMethod: 'PUT' }),
      ).toBeUndefined();
      expect(matchCors(open, { origin: 'o', method: 'GET' })).toMatchObject({
        'access-control-allow-origin': '*',
      });
      expect(matchCors(open, { method: 'GET' })).toBeUndefined();
    });
  });

  it('splits Access-Control-Request-Headers', () => {
    expect(parseRequestHeaderList(' A, b ,,c ')).toEqual(['a', 'b', 'c']);
    expect(parseRequestHeaderList(undefined)).toEqual([]);
  });
});
