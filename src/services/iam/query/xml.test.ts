import { describe, expect, it } from 'vitest';
import { YunhaiError } from '../../../platform/errors.js';
import { awsDate, el, elAttrs, escapeXml, optional, xmlDocument } from '../../../platform/xml/writer.js';
import { errorXml, QueryError, toAwsError } from './errors.js';

describe('the XML writer', () => {
  it('escapes markup characters in text and attributes', () => {
    expect(el('M', `a<b>&"c"'d`).toString()).toBe(`<M>a&lt;b&gt;&amp;&quot;c&quot;'d</M>`);
    expect(elAttrs('R', { xmlns: 'x"y<' }).toString()).toBe('<R xmlns="x&quot;y&lt;"/>');
  });

  it('replaces characters XML cannot carry and keeps CR as a reference', () => {
    expect(escapeXml('a\u0000b\u0008c\uFFFEd\uD800e')).toBe('a\uFFFDb\uFFFDc\uFFFDd\uFFFDe');
    expect(escapeXml('tab\tnl\ncr\r')).toBe('tab\tnl\ncr&#13;');
    expect(escapeXml('emoji 😀 and 云海')).toBe('emoji 😀 and 云海');
  });

  it('nests elements, flattens arrays and skips absent content', () => {
    const doc = el(
      'Users',
      [el('member', el('UserName', 'a')), el('member', el('UserName', 'b'))],
      undefined,
      null,
      optional('Marker', undefined),
    );
    expect(doc.toString()).toBe(
      '<Users><member><UserName>a</UserName></member><member><UserName>b</UserName></member></Users>',
    );
    expect(el('IsTruncated', false).toString()).toBe('<IsTruncated>false</IsTruncated>');
    expect(el('Empty').toString()).toBe('<Empty/>');
    expect(xmlDocument(el('R', 1))).toBe('<?xml version="1.0" encoding="UTF-8"?>\n<R>1</R>');
  });

  it('refuses element names that are not XML names', () => {
    expect(() => el('a b', 'x')).toThrow(/invalid XML element name/);
    expect(() => el('<x>', 'x')).toThrow(/invalid XML element name/);
    expect(() => elAttrs('a', { 'x="1"': 'v' })).toThrow(/invalid XML attribute name/);
  });

  it('writes dates as ISO 8601 UTC without fractions', () => {
    expect(awsDate('2024-05-01T12:00:00.123Z')).toBe('2024-05-01T12:00:00Z');
    expect(awsDate(0)).toBe('1970-01-01T00:00:00Z');
  });
});

describe('AWS error mapping', () => {
  it("names platform codes the way AWS's IAM does", () => {
    const cases: [YunhaiError, string, number][] = [
      [new YunhaiError('NotFound', 'x'), 'NoSuchEntity', 404],
      [new YunhaiError('AlreadyExists', 'x'), 'EntityAlreadyExists', 409],
      [new YunhaiError('DeleteConflict', 'x'), 'DeleteConflict', 409],
      [new YunhaiError('QuotaExceeded', 'x'), 'LimitExceeded', 409],
      [new YunhaiError('LimitExceeded', 'x'), 'LimitExceeded', 409],
      [new YunhaiError('UnknownField', 'x'), 'ValidationError', 400],
      [new YunhaiError('Unauthenticated', 'x'), 'MissingAuthenticationToken', 403],
      [new YunhaiError('TenantSuspended', 'x'), 'AccessDenied', 403],
      [new YunhaiError('PayloadTooLarge', 'x'), 'RequestEntityTooLarge', 413],
      [new YunhaiError('IncompleteSignature', 'x'), 'IncompleteSignature', 400],
      [new QueryError('ValidationError', 'MalformedQueryString', 'x'), 'MalformedQueryString', 400],
    ];
    for (const [err, code, status] of cases) {
      expect(toAwsError(err, 'iam'), err.code).toMatchObject({ code, status, type: 'Sender' });
    }
  });

  it('reports internal errors as ServiceFailure on IAM and InternalFailure on STS', () => {
    const err = new YunhaiError('InternalError', 'boom');
    expect(toAwsError(err, 'iam')).toEqual({
      code: 'ServiceFailure',
      status: 500,
      type: 'Receiver',
      message: 'boom',
    });
    expect(toAwsError(err, 'sts')).toMatchObject({ code: 'InternalFailure', type: 'Receiver' });
  });

  it('words a skewed request time as AWS does: SignatureDoesNotMatch, Signature expired', () => {
    const past = new YunhaiError('RequestTimeTooSkewed', 'too skewed', {
      requestTime: '20240101T000000Z',
      serverTime: '20240101T002000Z',
    });
    expect(toAwsError(past, 'iam')).toMatchObject({ code: 'SignatureDoesNotMatch', status: 403 });
    expect(toAwsError(past, 'iam').message).toMatch(
      /^Signature expired: 20240101T000000Z is now earlier than/,
    );
    const future = new YunhaiError('RequestTimeTooSkewed', 'too skewed', {
      requestTime: '20240101T004000Z',
      serverTime: '20240101T002000Z',
    });
    expect(toAwsError(future, 'sts').message).toMatch(/^Signature not yet current/);
  });

  it('renders the ErrorResponse document of the service', () => {
    const xml = errorXml(
      {
        status: 404,
        type: 'Sender',
        code: 'NoSuchEntity',
        message: 'The user with name <x> cannot be found.',
      },
      'sts',
      'req-1',
    );
    expect(xml).toBe(
      '<?xml version="1.0" encoding="UTF-8"?>\n' +
        '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>NoSuchEntity</Code>' +
        '<Message>The user with name &lt;x&gt; cannot be found.</Message></Error><RequestId>req-1</RequestId></ErrorResponse>',
    );
  });
});
