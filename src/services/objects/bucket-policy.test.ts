import { describe, expect, it } from 'vitest';
import {
  type BucketPolicy,
  evaluateBucketPolicy,
  isPolicyPublic,
  type PolicyRequest,
  type PolicyRequestPrincipal,
  parseBucketPolicy,
  S3DocumentError,
  s3ResourceArn,
  wildcardCanMatchPrefix,
  wildcardMatch,
} from './bucket-policy.js';

/** `${name}` in policy syntax, kept out of string literals that look like templates. */
const v = (name: string) => '$' + '{' + name + '}';
const policy = (...statements: object[]) => JSON.stringify({ Version: '2012-10-17', Statement: statements });
const allowAll = { Effect: 'Allow', Principal: '*', Action: 's3:*', Resource: 'arn:aws:s3:::b/*' };

const alice: PolicyRequestPrincipal = {
  anonymous: false,
  accountId: '111111111111',
  userArn: 'arn:aws:iam::111111111111:user/alice',
  canonicalId: 'c-alice',
};
const bob: PolicyRequestPrincipal = {
  anonymous: false,
  accountId: '222222222222',
  userArn: 'arn:aws:iam::222222222222:user/team/bob',
};
const anonymous: PolicyRequestPrincipal = { anonymous: true };

const req = (over: Partial<PolicyRequest> = {}): PolicyRequest => ({
  principal: alice,
  action: 's3:GetObject',
  resource: 'arn:aws:s3:::b/photos/cat.jpg',
  conditions: {},
  ...over,
});

const malformedMessage = (doc: string, bucket?: string): string => {
  try {
    parseBucketPolicy(doc, { bucket });
  } catch (e) {
    expect(e).toBeInstanceOf(S3DocumentError);
    expect((e as S3DocumentError).code).toBe('MalformedPolicy');
    expect((e as S3DocumentError).status).toBe(400);
    return (e as Error).message;
  }
  throw new Error('expected MalformedPolicy');
};

describe('wildcards', () => {
  it.each([
    ['s3:Get*', 's3:GetObject', true],
    ['s3:Get*', 's3:PutObject', false],
    ['a?c', 'abc', true],
    ['a?c', 'ac', false],
    ['*', '', true],
    ['a*b*c', 'aXXbYYc', true],
    ['a*b*c', 'aXXbYY', false],
    ['arn:aws:s3:::b/*', 'arn:aws:s3:::b/x/y/z', true],
    ['arn:aws:s3:::b/*', 'arn:aws:s3:::bb/x', false],
  ])('%s against %s is %s', (p, t, want) => {
    expect(wildcardMatch(p, t)).toBe(want);
  });

  it('matches case-insensitively on request', () => {
    expect(wildcardMatch('S3:getobject', 's3:GetObject', true)).toBe(true);
    expect(wildcardMatch('S3:getobject', 's3:GetObject')).toBe(false);
  });

  it.each([
    ['arn:aws:s3:::*', 'arn:aws:s3:::b/', true],
    ['arn:aws:s3:::b*/k', 'arn:aws:s3:::b/', true],
    ['arn:aws:s3:::other/*', 'arn:aws:s3:::b/', false],
    ['arn:aws:s3:::b', 'arn:aws:s3:::b/', false],
  ])('%s can extend %s: %s', (p, prefix, want) => {
    expect(wildcardCanMatchPrefix(p, prefix)).toBe(want);
  });
});

describe('parseBucketPolicy', () => {
  it('normalises a typical policy', () => {
    const p = parseBucketPolicy(
      JSON.stringify({
        Version: '2012-10-17',
        Id: 'p1',
        Statement: {
          Sid: 'public-read',
          Effect: 'Allow',
          Principal: { AWS: 'arn:aws:iam::111111111111:root' },
          Action: ['s3:GetObject', 's3:List*'],
          Resource: 'arn:aws:s3:::b/*',
          Condition: {
            'ForAnyValue:StringLikeIfExists': { 's3:prefix': ['a/*', 'b/*'] },
            Bool: { 'aws:SecureTransport': true },
          },
        },
      }),
      { bucket: 'b' },
    );
    expect(p).toEqual<BucketPolicy>({
      version: '2012-10-17',
      id: 'p1',
      statements: [
        {
          sid: 'public-read',
          effect: 'Allow',
          principal: { AWS: ['arn:aws:iam::111111111111:root'] },
          action: ['s3:GetObject', 's3:List*'],
          resource: ['arn:aws:s3:::b/*'],
          conditions: [
            {
              operator: 'StringLike',
              ifExists: true,
              set: 'ForAnyValue',
              key: 's3:prefix',
              values: ['a/*', 'b/*'],
            },
            { operator: 'Bool', ifExists: false, key: 'aws:SecureTransport', values: ['true'] },
          ],
        },
      ],
    });
  });

  it('accepts what s3-tests sends: RGW-style account ids, ARNs for every bucket, Service principals', () => {
    expect(() =>
      parseBucketPolicy(
        policy({
          Effect: 'Allow',
          Principal: { AWS: 'arn:aws:iam::s3tenant1:root' },
          Action: 's3:ListBucket',
          Resource: ['arn:aws:s3:::*', 'arn:aws:s3:::*/*'],
        }),
        { bucket: 'b' },
      ),
    ).not.toThrow();
    expect(() =>
      parseBucketPolicy(
        policy({
          Effect: 'Allow',
          Principal: { Service: 'logging.s3.amazonaws.com' },
          Action: 's3:PutObject',
          Resource: 'arn:aws:s3:::b/logs/*',
        }),
      ),
    ).not.toThrow();
    // A PutObject on the bucket ARN itself is accepted (s3-tests test_bucket_policy_multipart).
    expect(() =>
      parseBucketPolicy(
        policy({ Effect: 'Allow', Principal: '*', Action: 's3:PutObject', Resource: 'arn:aws:s3:::b' }),
        {
          bucket: 'b',
        },
      ),
    ).not.toThrow();
    // No Version defaults to 2008-10-17.
    expect(parseBucketPolicy(JSON.stringify({ Statement: [allowAll] })).version).toBe('2008-10-17');
  });

  it.each([
    ['not JSON at all', 'hello', "Policies must be valid JSON and the first byte must be '{'"],
    ['broken JSON', '{"Version": ', 'This policy contains invalid Json'],
    ['an array', '[]', "Policies must be valid JSON and the first byte must be '{'"],
    ['no statements', JSON.stringify({ Version: '2012-10-17' }), 'Missing required field Statement'],
    [
      'empty statements',
      JSON.stringify({ Version: '2012-10-17', Statement: [] }),
      'Missing required field Statement',
    ],
    ['a bad version', JSON.stringify({ Version: '2020-01-01', Statement: [allowAll] }), 'valid version'],
    ['an unknown top-level field', JSON.stringify({ Statement: [allowAll], Foo: 1 }), 'Unknown field Foo'],
    ['an unknown statement field', policy({ ...allowAll, Bar: 1 }), 'Unknown field Bar'],
    ['no Effect', policy({ ...allowAll, Effect: undefined }), 'Missing required field Effect'],
    ['a bad Effect', policy({ ...allowAll, Effect: 'Maybe' }), 'Invalid effect: Maybe'],
    ['no Principal', policy({ ...allowAll, Principal: undefined }), 'Missing required field Principal'],
    ['an empty Principal', policy({ ...allowAll, Principal: {} }), 'Invalid principal in policy'],
    [
      'a junk AWS principal',
      policy({ ...allowAll, Principal: { AWS: 'bob' } }),
      'Invalid principal in policy',
    ],
    [
      'an unknown principal type',
      policy({ ...allowAll, Principal: { Alien: 'x' } }),
      'Invalid principal in policy',
    ],
    [
      'NotPrincipal with Allow',
      policy({ ...allowAll, Principal: undefined, NotPrincipal: { AWS: 'arn:aws:iam::s3tenant1:root' } }),
      'Invalid principal in policy',
    ],
    ['no Action', policy({ ...allowAll, Action: undefined }), 'Missing required field Action'],
    ['a non-S3 action', policy({ ...allowAll, Action: 'ec2:RunInstances' }), 'Policy has invalid action'],
    ['an unknown S3 action', policy({ ...allowAll, Action: 's3:FlyToTheMoon' }), 'Policy has invalid action'],
    ['an empty action list', policy({ ...allowAll, Action: [] }), 'Policy has invalid action'],
    ['no Resource', policy({ ...allowAll, Resource: undefined }), 'Missing required field Resource'],
    [
      'a non-S3 resource',
      policy({ ...allowAll, Resource: 'arn:aws:sqs:::q' }),
      'Policy has invalid resource',
    ],
    [
      'both Action and NotAction',
      policy({ ...allowAll, NotAction: 's3:GetObject' }),
      'both Action and NotAction',
    ],
    [
      'an unknown condition operator',
      policy({ ...allowAll, Condition: { StringEqualz: { 'aws:username': 'x' } } }),
      'Invalid Condition type : StringEqualz',
    ],
    [
      'NullIfExists',
      policy({ ...allowAll, Condition: { NullIfExists: { 'aws:username': 'true' } } }),
      'Invalid Condition type',
    ],
    [
      'an invalid condition key',
      policy({ ...allowAll, Condition: { StringEquals: { username: 'x' } } }),
      'invalid condition key',
    ],
    [
      'a bad IP',
      policy({ ...allowAll, Condition: { IpAddress: { 'aws:SourceIp': '10.0.0.300/8' } } }),
      'Invalid Condition value',
    ],
    [
      'a bad number',
      policy({ ...allowAll, Condition: { NumericLessThan: { 's3:max-keys': 'ten' } } }),
      'Invalid Condition value',
    ],
    [
      'a bad date',
      policy({ ...allowAll, Condition: { DateLessThan: { 'aws:CurrentTime': 'tomorrow' } } }),
      'Invalid Condition value',
    ],
    [
      'a bad Bool',
      policy({ ...allowAll, Condition: { Bool: { 'aws:SecureTransport': 'yes' } } }),
      'Invalid Condition value',
    ],
    ['duplicate Sids', policy({ ...allowAll, Sid: 'a' }, { ...allowAll, Sid: 'a' }), 'must be unique'],
  ])('refuses %s', (_what, doc, message) => {
    expect(malformedMessage(doc)).toContain(message);
  });

  it('refuses resources outside the bucket it is attached to', () => {
    expect(malformedMessage(policy({ ...allowAll, Resource: 'arn:aws:s3:::other/*' }), 'b')).toBe(
      'Policy has invalid resource',
    );
    expect(
      malformedMessage(policy({ ...allowAll, Resource: ['arn:aws:s3:::b/*', 'arn:aws:s3:::c'] }), 'b'),
    ).toBe('Policy has invalid resource');
  });

  it('refuses documents over 20 KB', () => {
    const big = policy({ ...allowAll, Sid: 'x'.repeat(21 * 1024) });
    expect(malformedMessage(big)).toContain('no larger than');
  });

  it('accepts a Uint8Array body', () => {
    expect(parseBucketPolicy(new TextEncoder().encode(policy(allowAll))).statements).toHaveLength(1);
  });
});

describe('evaluateBucketPolicy', () => {
  const evaluate = (doc: string, r: Partial<PolicyRequest> = {}) =>
    evaluateBucketPolicy(parseBucketPolicy(doc), req(r));

  it('allows what a statement allows and says nothing about the rest', () => {
    const doc = policy({
      Effect: 'Allow',
      Principal: '*',
      Action: 's3:Get*',
      Resource: 'arn:aws:s3:::b/photos/*',
    });
    expect(evaluate(doc)).toBe('Allow');
    expect(evaluate(doc, { principal: anonymous })).toBe('Allow');
    expect(evaluate(doc, { action: 's3:PutObject' })).toBe('NotApplicable');
    expect(evaluate(doc, { resource: 'arn:aws:s3:::b/docs/a' })).toBe('NotApplicable');
    expect(evaluate(doc, { resource: 'arn:aws:s3:::bb/photos/a' })).toBe('NotApplicable');
  });

  it('lets an explicit deny win over any allow', () => {
    const doc = policy(allowAll, {
      Effect: 'Deny',
      Principal: { AWS: 'arn:aws:iam::222222222222:user/team/bob' },
      Action: 's3:DeleteObject',
      Resource: 'arn:aws:s3:::b/*',
    });
    expect(evaluate(doc, { principal: bob, action: 's3:DeleteObject' })).toBe('Deny');
    expect(evaluate(doc, { principal: alice, action: 's3:DeleteObject' })).toBe('Allow');
    expect(evaluate(doc, { principal: bob, action: 's3:GetObject' })).toBe('Allow');
  });

  it('matches principals by account id, account root ARN, user ARN and canonical id, never anonymous callers', () => {
    const by = (Principal: object) => policy({ ...allowAll, Principal });
    expect(evaluate(by({ AWS: '111111111111' }))).toBe('Allow');
    expect(evaluate(by({ AWS: 'arn:aws:iam::111111111111:root' }))).toBe('Allow');
    expect(evaluate(by({ AWS: ['arn:aws:iam::111111111111:user/alice'] }))).toBe('Allow');
    expect(evaluate(by({ AWS: 'arn:aws:iam::111111111111:user/mallory' }))).toBe('NotApplicable');
    expect(evaluate(by({ AWS: '111111111111' }), { principal: bob })).toBe('NotApplicable');
    expect(evaluate(by({ CanonicalUser: 'c-alice' }))).toBe('Allow');
    expect(evaluate(by({ AWS: '111111111111' }), { principal: anonymous })).toBe('NotApplicable');
    expect(evaluate(by({ AWS: '*' }), { principal: anonymous })).toBe('Allow');
    expect(evaluate(by({ Service: 'logging.s3.amazonaws.com' }))).toBe('NotApplicable');
  });

  it('applies NotPrincipal, NotAction and NotResource as complements', () => {
    const doc = policy({
      Effect: 'Deny',
      NotPrincipal: { AWS: '111111111111' },
      NotAction: 's3:GetObject',
      NotResource: 'arn:aws:s3:::b/public/*',
    });
    expect(evaluate(doc, { principal: bob, action: 's3:PutObject' })).toBe('Deny');
    expect(evaluate(doc, { principal: anonymous, action: 's3:PutObject' })).toBe('Deny');
    expect(evaluate(doc, { principal: alice, action: 's3:PutObject' })).toBe('NotApplicable');
    expect(evaluate(doc, { principal: bob, action: 's3:GetObject' })).toBe('NotApplicable');
    expect(
      evaluate(doc, { principal: bob, action: 's3:PutObject', resource: 'arn:aws:s3:::b/public/x' }),
    ).toBe('NotApplicable');
  });

  it('matches actions case-insensitively and resources case-sensitively', () => {
    const doc = policy({
      Effect: 'Allow',
      Principal: '*',
      Action: 'S3:GETOBJECT',
      Resource: 'arn:aws:s3:::b/Photos/*',
    });
    expect(evaluate(doc, { resource: 'arn:aws:s3:::b/Photos/x' })).toBe('Allow');
    expect(evaluate(doc, { resource: 'arn:aws:s3:::b/photos/x' })).toBe('NotApplicable');
  });

  it('substitutes policy variables in 2012-10-17 policies only', () => {
    const stmt = {
      Effect: 'Allow',
      Principal: '*',
      Action: 's3:GetObject',
      Resource: `arn:aws:s3:::b/home/${v('aws:username')}/*`,
    };
    const doc = policy(stmt);
    const alicesFile = { resource: 'arn:aws:s3:::b/home/alice/x', conditions: { 'aws:username': 'alice' } };
    expect(evaluate(doc, alicesFile)).toBe('Allow');
    expect(evaluate(doc, { ...alicesFile, conditions: { 'aws:username': 'bob' } })).toBe('NotApplicable');
    expect(evaluate(doc, { ...alicesFile, conditions: {} })).toBe('NotApplicable');
    const literal = policy({ ...stmt, Resource: `arn:aws:s3:::b/${v('*')}/*` });
    expect(evaluate(literal, { resource: 'arn:aws:s3:::b/*/x' })).toBe('Allow');
    expect(evaluate(literal, { resource: 'arn:aws:s3:::b/a/x' })).toBe('NotApplicable');
    const old = JSON.stringify({ Version: '2008-10-17', Statement: [stmt] });
    expect(evaluate(old, { resource: `arn:aws:s3:::b/home/${v('aws:username')}/x` })).toBe('Allow');
  });

  describe('conditions', () => {
    const withCondition = (Condition: object, Effect = 'Allow') => policy({ ...allowAll, Effect, Condition });
    const check = (Condition: object, conditions: PolicyRequest['conditions']) =>
      evaluate(withCondition(Condition), { conditions });

    it.each<[string, object, PolicyRequest['conditions'], 'Allow' | 'NotApplicable']>([
      [
        'StringEquals hit',
        { StringEquals: { 's3:x-amz-acl': 'private' } },
        { 's3:x-amz-acl': 'private' },
        'Allow',
      ],
      [
        'StringEquals miss',
        { StringEquals: { 's3:x-amz-acl': 'private' } },
        { 's3:x-amz-acl': 'public-read' },
        'NotApplicable',
      ],
      [
        'StringEquals with the key absent',
        { StringEquals: { 's3:x-amz-acl': 'private' } },
        {},
        'NotApplicable',
      ],
      [
        'StringEquals any of several values',
        { StringEquals: { 's3:x-amz-acl': ['a', 'private'] } },
        { 's3:x-amz-acl': 'private' },
        'Allow',
      ],
      [
        'key names case-insensitively',
        { StringEquals: { 'S3:X-AMZ-ACL': 'private' } },
        { 's3:x-amz-acl': 'private' },
        'Allow',
      ],
      [
        'values case-sensitively',
        { StringEquals: { 's3:x-amz-acl': 'Private' } },
        { 's3:x-amz-acl': 'private' },
        'NotApplicable',
      ],
      [
        'StringEqualsIgnoreCase',
        { StringEqualsIgnoreCase: { 's3:x-amz-acl': 'PRIVATE' } },
        { 's3:x-amz-acl': 'private' },
        'Allow',
      ],
      [
        'StringNotEquals with another value',
        { StringNotEquals: { 's3:x-amz-acl': 'private' } },
        { 's3:x-amz-acl': 'public-read' },
        'Allow',
      ],
      [
        'StringNotEquals with the same value',
        { StringNotEquals: { 's3:x-amz-acl': 'private' } },
        { 's3:x-amz-acl': 'private' },
        'NotApplicable',
      ],
      [
        'StringNotEquals with the key absent',
        { StringNotEquals: { 's3:x-amz-acl': 'private' } },
        {},
        'Allow',
      ],
      [
        'StringNotEqualsIgnoreCase',
        { StringNotEqualsIgnoreCase: { 's3:x-amz-acl': 'PRIVATE' } },
        { 's3:x-amz-acl': 'private' },
        'NotApplicable',
      ],
      ['StringLike', { StringLike: { 's3:prefix': 'home/*' } }, { 's3:prefix': 'home/alice/' }, 'Allow'],
      [
        'StringLike miss',
        { StringLike: { 's3:prefix': 'home/*' } },
        { 's3:prefix': 'etc/' },
        'NotApplicable',
      ],
      ['StringNotLike', { StringNotLike: { 's3:prefix': 'home/*' } }, { 's3:prefix': 'etc/' }, 'Allow'],
      [
        'StringLikeIfExists with the key absent',
        { StringLikeIfExists: { 'aws:Referer': 'http://www.example.com/*' } },
        {},
        'Allow',
      ],
      [
        'StringLikeIfExists with a match',
        { StringLikeIfExists: { 'aws:Referer': 'http://www.example.com/*' } },
        { 'aws:Referer': 'http://www.example.com/index.html' },
        'Allow',
      ],
      [
        'StringLikeIfExists with a miss',
        { StringLikeIfExists: { 'aws:Referer': 'http://www.example.com/*' } },
        { 'aws:Referer': 'http://example.com' },
        'NotApplicable',
      ],
      ['NumericLessThan', { NumericLessThan: { 's3:max-keys': '10' } }, { 's3:max-keys': '9' }, 'Allow'],
      [
        'NumericLessThan at the bound',
        { NumericLessThan: { 's3:max-keys': '10' } },
        { 's3:max-keys': '10' },
        'NotApplicable',
      ],
      [
        'NumericLessThanEquals',
        { NumericLessThanEquals: { 's3:max-keys': 10 } },
        { 's3:max-keys': '10' },
        'Allow',
      ],
      [
        'NumericGreaterThan',
        { NumericGreaterThan: { 's3:max-keys': '10' } },
        { 's3:max-keys': '11' },
        'Allow',
      ],
      [
        'NumericGreaterThanEquals',
        { NumericGreaterThanEquals: { 's3:max-keys': '10' } },
        { 's3:max-keys': '9' },
        'NotApplicable',
      ],
      ['NumericEquals', { NumericEquals: { 's3:max-keys': '10' } }, { 's3:max-keys': '10.0' }, 'Allow'],
      [
        'NumericNotEquals',
        { NumericNotEquals: { 's3:max-keys': '10' } },
        { 's3:max-keys': '10' },
        'NotApplicable',
      ],
      [
        'a non-numeric request value',
        { NumericLessThan: { 's3:max-keys': '10' } },
        { 's3:max-keys': 'x' },
        'NotApplicable',
      ],
      [
        'DateLessThan',
        { DateLessThan: { 'aws:CurrentTime': '2030-01-01T00:00:00Z' } },
        { 'aws:CurrentTime': '2026-11-24T12:00:00Z' },
        'Allow',
      ],
      [
        'DateGreaterThan',
        { DateGreaterThan: { 'aws:CurrentTime': '2030-01-01T00:00:00Z' } },
        { 'aws:CurrentTime': '2026-11-24T12:00:00Z' },
        'NotApplicable',
      ],
      [
        'DateGreaterThan with epoch seconds',
        { DateGreaterThan: { 'aws:EpochTime': '1000' } },
        { 'aws:EpochTime': '1001' },
        'Allow',
      ],
      ['Bool true', { Bool: { 'aws:SecureTransport': 'true' } }, { 'aws:SecureTransport': 'true' }, 'Allow'],
      [
        'Bool false',
        { Bool: { 'aws:SecureTransport': 'true' } },
        { 'aws:SecureTransport': 'false' },
        'NotApplicable',
      ],
      [
        'IpAddress in the range',
        { IpAddress: { 'aws:SourceIp': '10.0.0.0/8' } },
        { 'aws:SourceIp': '10.1.2.3' },
        'Allow',
      ],
      [
        'IpAddress out of range',
        { IpAddress: { 'aws:SourceIp': '10.0.0.0/32' } },
        { 'aws:SourceIp': '10.0.0.1' },
        'NotApplicable',
      ],
      [
        'IpAddress of an IPv4-mapped IPv6 caller',
        { IpAddress: { 'aws:SourceIp': '127.0.0.0/8' } },
        { 'aws:SourceIp': '::ffff:127.0.0.1' },
        'Allow',
      ],
      [
        'IpAddress IPv6',
        { IpAddress: { 'aws:SourceIp': '2001:db8::/32' } },
        { 'aws:SourceIp': '2001:db8:1::5' },
        'Allow',
      ],
      [
        'IpAddress IPv6 miss',
        { IpAddress: { 'aws:SourceIp': '2001:db8::/32' } },
        { 'aws:SourceIp': '2001:db9::1' },
        'NotApplicable',
      ],
      [
        'IpAddress single host',
        { IpAddress: { 'aws:SourceIp': '192.168.1.5' } },
        { 'aws:SourceIp': '192.168.1.5' },
        'Allow',
      ],
      [
        'NotIpAddress',
        { NotIpAddress: { 'aws:SourceIp': '10.0.0.0/8' } },
        { 'aws:SourceIp': '192.168.1.1' },
        'Allow',
      ],
      [
        'ArnLike',
        { ArnLike: { 'aws:SourceArn': 'arn:aws:s3:::logs-*' } },
        { 'aws:SourceArn': 'arn:aws:s3:::logs-1' },
        'Allow',
      ],
      [
        'ArnNotLike',
        { ArnNotLike: { 'aws:SourceArn': 'arn:aws:s3:::logs-*' } },
        { 'aws:SourceArn': 'arn:aws:s3:::logs-1' },
        'NotApplicable',
      ],
      ['Null true with the key absent', { Null: { 's3:x-amz-server-side-encryption': 'true' } }, {}, 'Allow'],
      [
        'Null true with the key present',
        { Null: { 's3:x-amz-server-side-encryption': 'true' } },
        { 's3:x-amz-server-side-encryption': 'AES256' },
        'NotApplicable',
      ],
      [
        'Null false with the key present',
        { Null: { 's3:x-amz-server-side-encryption': false } },
        { 's3:x-amz-server-side-encryption': 'AES256' },
        'Allow',
      ],
      [
        'an empty multi-value counts as absent',
        { Null: { 's3:RequestObjectTagKeys': 'true' } },
        { 's3:RequestObjectTagKeys': [] },
        'Allow',
      ],
      [
        'ForAnyValue hit',
        { 'ForAnyValue:StringEquals': { 's3:RequestObjectTagKeys': ['a', 'b'] } },
        { 's3:RequestObjectTagKeys': ['z', 'b'] },
        'Allow',
      ],
      [
        'ForAnyValue miss',
        { 'ForAnyValue:StringEquals': { 's3:RequestObjectTagKeys': ['a', 'b'] } },
        { 's3:RequestObjectTagKeys': ['z'] },
        'NotApplicable',
      ],
      [
        'ForAnyValue with the key absent',
        { 'ForAnyValue:StringEquals': { 's3:RequestObjectTagKeys': 'a' } },
        {},
        'NotApplicable',
      ],
      [
        'ForAllValues hit',
        { 'ForAllValues:StringEquals': { 's3:RequestObjectTagKeys': ['a', 'b'] } },
        { 's3:RequestObjectTagKeys': ['a', 'b'] },
        'Allow',
      ],
      [
        'ForAllValues miss',
        { 'ForAllValues:StringEquals': { 's3:RequestObjectTagKeys': ['a', 'b'] } },
        { 's3:RequestObjectTagKeys': ['a', 'c'] },
        'NotApplicable',
      ],
      [
        'ForAllValues with the key absent',
        { 'ForAllValues:StringEquals': { 's3:RequestObjectTagKeys': 'a' } },
        {},
        'Allow',
      ],
      [
        'ExistingObjectTag',
        { StringEquals: { 's3:ExistingObjectTag/security': 'public' } },
        { 's3:ExistingObjectTag/security': 'public' },
        'Allow',
      ],
      [
        'ExistingObjectTag absent',
        { StringEquals: { 's3:ExistingObjectTag/security': 'public' } },
        { 's3:ExistingObjectTag/security1': 'public' },
        'NotApplicable',
      ],
      [
        'a variable in a condition value',
        { StringLike: { 's3:prefix': `home/${v('aws:username')}/*` } },
        { 's3:prefix': 'home/alice/x', 'aws:username': 'alice' },
        'Allow',
      ],
      [
        'several operators all holding',
        { StringEquals: { 's3:x-amz-acl': 'private' }, Bool: { 'aws:SecureTransport': 'true' } },
        { 's3:x-amz-acl': 'private', 'aws:SecureTransport': 'true' },
        'Allow',
      ],
      [
        'several operators, one failing',
        { StringEquals: { 's3:x-amz-acl': 'private' }, Bool: { 'aws:SecureTransport': 'true' } },
        { 's3:x-amz-acl': 'private', 'aws:SecureTransport': 'false' },
        'NotApplicable',
      ],
    ])('%s', (_what, condition, conditions, want) => {
      expect(check(condition, conditions)).toBe(want);
    });

    it('denies unencrypted uploads with a Null deny, as s3-tests does', () => {
      const doc = policy(allowAll, {
        Effect: 'Deny',
        Principal: '*',
        Action: 's3:PutObject',
        Resource: 'arn:aws:s3:::b/*',
        Condition: { Null: { 's3:x-amz-server-side-encryption': 'true' } },
      });
      expect(evaluate(doc, { action: 's3:PutObject' })).toBe('Deny');
      expect(
        evaluate(doc, {
          action: 's3:PutObject',
          conditions: { 's3:x-amz-server-side-encryption': 'AES256' },
        }),
      ).toBe('Allow');
    });

    it('denies an SSE-C algorithm other than AES256 with StringNotEquals', () => {
      const doc = policy(allowAll, {
        Effect: 'Deny',
        Principal: '*',
        Action: 's3:PutObject',
        Resource: 'arn:aws:s3:::b/*',
        Condition: { StringNotEquals: { 's3:x-amz-server-side-encryption-customer-algorithm': 'AES256' } },
      });
      const put = (alg?: string) =>
        evaluate(doc, {
          action: 's3:PutObject',
          conditions: { 's3:x-amz-server-side-encryption-customer-algorithm': alg },
        });
      expect(put('AES192')).toBe('Deny');
      expect(put(undefined)).toBe('Deny');
      expect(put('AES256')).toBe('Allow');
    });
  });
});

describe('isPolicyPublic', () => {
  const pub = (...statements: object[]) => isPolicyPublic(parseBucketPolicy(policy(...statements)));

  it('calls an unconditional Allow for everyone public', () => {
    expect(pub(allowAll)).toBe(true);
    expect(pub({ ...allowAll, Principal: { AWS: '*' } })).toBe(true);
  });

  it('does not call named principals, denies or source-pinned statements public', () => {
    expect(pub({ ...allowAll, Principal: { AWS: 'arn:aws:iam::s3tenant1:root' } })).toBe(false);
    expect(pub({ ...allowAll, Effect: 'Deny' })).toBe(false);
    expect(pub({ ...allowAll, Condition: { IpAddress: { 'aws:SourceIp': '10.0.0.0/32' } } })).toBe(false);
    expect(pub({ ...allowAll, Condition: { IpAddress: { 'aws:SourceIp': '0.0.0.0/0' } } })).toBe(true);
    expect(pub({ ...allowAll, Condition: { StringEquals: { 's3:prefix': 'x' } } })).toBe(true);
  });
});

describe('s3ResourceArn', () => {
  it('names buckets and objects', () => {
    expect(s3ResourceArn('b')).toBe('arn:aws:s3:::b');
    expect(s3ResourceArn('b', 'a/b c')).toBe('arn:aws:s3:::b/a/b c');
  });
});
