import { describe, expect, it } from 'vitest';
import type { CredentialSource } from '../../../platform/auth/authenticate.js';
import type { Principal } from '../../../platform/policy/principal.js';
import { authenticateSigV2, signV2, stringToSignV2 } from './sigv2.js';

const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
const DATE = 'Tue, 27 Mar 2007 21:15:45 +0000';
const NOW = Date.parse(DATE);
const principal = { tenantId: 't1', accountId: '123456789012' } as unknown as Principal;
const failures: string[] = [];
const credentials = {
  credentialForKey: async (id: string) =>
    id === 'AKIDEXAMPLE' ? { secretAccessKey: SECRET, principal } : null,
  principalForToken: async () => null,
  auditAuthFailure: async (m: { errorCode: string }) => {
    failures.push(m.errorCode);
  },
  mac: (v: string) => v,
} as CredentialSource;

// The request and signature below are botocore's (HmacV1Auth), the signer s3-tests' v2 client uses.
const request = {
  method: 'PUT',
  path: '/bucket/photos/a%20b.jpg',
  query: 'acl&foo=bar',
  headers: { 'content-type': 'image/jpeg', 'x-amz-meta-b': ' two ', 'x-amz-meta-a': 'one', date: DATE },
};

describe('SigV2', () => {
  it('builds the string to sign as botocore does and matches its signature', () => {
    const sts = stringToSignV2(request, DATE);
    expect(sts).toBe(
      'PUT\n\nimage/jpeg\nTue, 27 Mar 2007 21:15:45 +0000\nx-amz-meta-a:one\nx-amz-meta-b:two\n/bucket/photos/a%20b.jpg?acl',
    );
    expect(signV2(SECRET, sts)).toBe('zcBRyJoBZwKfQ1VzMdIgc9Ngi68=');
    expect(stringToSignV2({ ...request, path: '/photos/x', virtualHostBucket: 'bucket' }, DATE)).toContain(
      '\n/bucket/photos/x?acl',
    );
  });

  it('authenticates header and presigned requests, refusing bad signatures, unknown keys, skew and expiry', async () => {
    const signed = {
      ...request,
      headers: { ...request.headers, authorization: 'AWS AKIDEXAMPLE:zcBRyJoBZwKfQ1VzMdIgc9Ngi68=' },
    };
    const meta = { sourceIp: '127.0.0.1', requestId: 'r1' };
    expect(await authenticateSigV2(credentials, signed, meta, NOW)).toBe(principal);
    // botocore signs a bucket-level request as /bucket/ while sending /bucket.
    const bucketLevel = {
      method: 'PUT',
      path: '/yunhai-test-bucket',
      query: '',
      headers: { date: 'Wed, 25 Nov 2026 03:08:09 GMT' },
    };
    const at = Date.parse('Wed, 25 Nov 2026 03:08:09 GMT');
    const botocore = {
      ...bucketLevel,
      headers: { ...bucketLevel.headers, authorization: 'AWS AKIDEXAMPLE:BOTO' },
    };
    botocore.headers.authorization = `AWS AKIDEXAMPLE:${signV2(SECRET, 'PUT\n\n\nWed, 25 Nov 2026 03:08:09 GMT\n/yunhai-test-bucket/')}`;
    expect(await authenticateSigV2(credentials, botocore, meta, at)).toBe(principal);
    const code = (p: Promise<unknown>) =>
      p.then(
        () => 'ok',
        (e: { s3Code: string }) => e.s3Code,
      );
    expect(
      await code(
        authenticateSigV2(
          credentials,
          { ...signed, headers: { ...signed.headers, 'x-amz-meta-a': 'changed' } },
          meta,
          NOW,
        ),
      ),
    ).toBe('SignatureDoesNotMatch');
    expect(
      await code(
        authenticateSigV2(
          credentials,
          {
            ...signed,
            headers: { ...signed.headers, authorization: 'AWS NOPE:zcBRyJoBZwKfQ1VzMdIgc9Ngi68=' },
          },
          meta,
          NOW,
        ),
      ),
    ).toBe('InvalidAccessKeyId');
    expect(await code(authenticateSigV2(credentials, signed, meta, NOW + 20 * 60_000))).toBe(
      'RequestTimeTooSkewed',
    );
    expect(failures).toEqual(['SignatureDoesNotMatch', 'InvalidAccessKeyId']);

    const expires = String(Math.floor(NOW / 1000) + 60);
    const get = { method: 'GET', path: '/bucket/k', headers: {} };
    const sig = signV2(SECRET, stringToSignV2({ ...get, query: '' }, expires));
    const query = `AWSAccessKeyId=AKIDEXAMPLE&Expires=${expires}&Signature=${encodeURIComponent(sig)}`;
    expect(await authenticateSigV2(credentials, { ...get, query }, meta, NOW)).toBe(principal);
    expect(await code(authenticateSigV2(credentials, { ...get, query }, meta, NOW + 120_000))).toBe(
      'AccessDenied',
    );
  });
});
