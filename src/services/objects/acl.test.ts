import { describe, expect, it } from 'vitest';
import { parseXml } from '../../platform/xml/parser.js';
import {
  type AccessControlPolicy,
  type AclOwner,
  ALL_USERS,
  AUTHENTICATED_USERS,
  accessControlPolicyXml,
  aclAllows,
  aclFromHeaders,
  CANNED_ACLS,
  cannedAclGrants,
  type Grant,
  isAclPublic,
  isCannedAcl,
  LOG_DELIVERY,
  parseAccessControlPolicy,
  parseGrantHeader,
  resolveGrantees,
} from './acl.js';
import { S3DocumentError } from './bucket-policy.js';

const main: AclOwner = { id: 'c-main', displayName: 'M. Tester' };
const alt: AclOwner = { id: 'c-alt', displayName: 'john.doe' };
const full = (o: AclOwner): Grant => ({
  grantee: { type: 'CanonicalUser', id: o.id, displayName: o.displayName! },
  permission: 'FULL_CONTROL',
});

const codeOf = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(S3DocumentError);
    return (e as S3DocumentError).code;
  }
  throw new Error('expected an S3DocumentError');
};

describe('canned ACLs', () => {
  it('knows the canned names', () => {
    expect(CANNED_ACLS.every(isCannedAcl)).toBe(true);
    expect(isCannedAcl('public')).toBe(false);
  });

  it.each<[string, Grant[]]>([
    ['private', [full(main)]],
    ['public-read', [{ grantee: { type: 'Group', uri: ALL_USERS }, permission: 'READ' }, full(main)]],
    [
      'public-read-write',
      [
        { grantee: { type: 'Group', uri: ALL_USERS }, permission: 'READ' },
        { grantee: { type: 'Group', uri: ALL_USERS }, permission: 'WRITE' },
        full(main),
      ],
    ],
    [
      'authenticated-read',
      [{ grantee: { type: 'Group', uri: AUTHENTICATED_USERS }, permission: 'READ' }, full(main)],
    ],
    [
      'log-delivery-write',
      [
        { grantee: { type: 'Group', uri: LOG_DELIVERY }, permission: 'WRITE' },
        { grantee: { type: 'Group', uri: LOG_DELIVERY }, permission: 'READ_ACP' },
        full(main),
      ],
    ],
    ['bucket-owner-read', [full(main)]],
    ['bucket-owner-full-control', [full(main)]],
  ])('%s on a bucket lists group grants first and the owner last', (acl, grants) => {
    expect(cannedAclGrants(acl as 'private', { owner: main })).toEqual(grants);
  });

  it('names the bucket owner in bucket-owner-* ACLs on another account’s object', () => {
    expect(cannedAclGrants('bucket-owner-full-control', { owner: alt, bucketOwner: main })).toEqual([
      full(alt),
      full(main),
    ]);
    expect(cannedAclGrants('bucket-owner-read', { owner: alt, bucketOwner: main })).toEqual([
      full(alt),
      { grantee: { type: 'CanonicalUser', id: 'c-main', displayName: 'M. Tester' }, permission: 'READ' },
    ]);
    expect(cannedAclGrants('bucket-owner-full-control', { owner: main, bucketOwner: main })).toEqual([
      full(main),
    ]);
  });
});

describe('grant headers', () => {
  it('parses ids, group uris and e-mail addresses, quoted or not', () => {
    expect(
      parseGrantHeader(
        'x-amz-grant-read',
        `id="c-alt", uri="${ALL_USERS}",emailAddress=x@example.com , id=c-main`,
      ),
    ).toEqual([
      { grantee: { type: 'CanonicalUser', id: 'c-alt' }, permission: 'READ' },
      { grantee: { type: 'Group', uri: ALL_USERS }, permission: 'READ' },
      { grantee: { type: 'AmazonCustomerByEmail', emailAddress: 'x@example.com' }, permission: 'READ' },
      { grantee: { type: 'CanonicalUser', id: 'c-main' }, permission: 'READ' },
    ]);
  });

  it.each([['nonsense'], ['id='], [''], ['color="red"'], ['id="a" id']])('refuses %j', (value) => {
    expect(codeOf(() => parseGrantHeader('x-amz-grant-write', value))).toBe('InvalidArgument');
  });

  it('refuses unknown groups', () => {
    expect(codeOf(() => parseGrantHeader('x-amz-grant-read', 'uri="http://example.com/group"'))).toBe(
      'InvalidArgument',
    );
  });

  it('reads the ACL a request asks for from x-amz-acl or the grant headers', () => {
    expect(aclFromHeaders({}, { owner: main })).toBeUndefined();
    expect(aclFromHeaders({ 'x-amz-acl': 'public-read' }, { owner: main })).toEqual({
      canned: 'public-read',
      grants: cannedAclGrants('public-read', { owner: main }),
    });
    expect(
      aclFromHeaders(
        { 'x-amz-grant-full-control': 'id=c-main', 'x-amz-grant-read': 'id=c-alt' },
        { owner: main },
      ),
    ).toEqual({
      grants: [
        { grantee: { type: 'CanonicalUser', id: 'c-alt' }, permission: 'READ' },
        { grantee: { type: 'CanonicalUser', id: 'c-main' }, permission: 'FULL_CONTROL' },
      ],
    });
  });

  it('refuses a canned ACL together with grant headers, and unknown canned ACLs', () => {
    expect(
      codeOf(() => aclFromHeaders({ 'x-amz-acl': 'private', 'x-amz-grant-read': 'id=x' }, { owner: main })),
    ).toBe('InvalidRequest');
    expect(codeOf(() => aclFromHeaders({ 'x-amz-acl': 'public' }, { owner: main }))).toBe('InvalidArgument');
  });
});

describe('AccessControlPolicy documents', () => {
  const acp: AccessControlPolicy = {
    owner: main,
    grants: [
      { grantee: { type: 'Group', uri: ALL_USERS }, permission: 'READ' },
      { grantee: { type: 'CanonicalUser', id: 'c-alt', displayName: 'a & <b>' }, permission: 'WRITE_ACP' },
      { grantee: { type: 'AmazonCustomerByEmail', emailAddress: 'x@example.com' }, permission: 'READ_ACP' },
      full(main),
    ],
  };

  it('writes what it reads back', () => {
    const xml = accessControlPolicyXml(acp);
    expect(xml).toContain('<AccessControlPolicy xmlns="http://s3.amazonaws.com/doc/2006-03-01/">');
    expect(xml).toContain(
      '<Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="Group"><URI>http://acs.amazonaws.com/groups/global/AllUsers</URI></Grantee>',
    );
    expect(xml).toContain('<DisplayName>a &amp; &lt;b&gt;</DisplayName>');
    expect(parseAccessControlPolicy(xml)).toEqual(acp);
    expect(parseAccessControlPolicy(parseXml(xml))).toEqual(acp);
  });

  it('reads grantee types from any xsi prefix, or from the grantee’s children', () => {
    const body = `<AccessControlPolicy><AccessControlList>
      <Grant><Grantee xmlns:i="http://www.w3.org/2001/XMLSchema-instance" i:type="CanonicalUser"><ID>c-alt</ID></Grantee><Permission>READ</Permission></Grant>
      <Grant><Grantee><URI>${AUTHENTICATED_USERS}</URI></Grantee><Permission>WRITE</Permission></Grant>
    </AccessControlList></AccessControlPolicy>`;
    expect(parseAccessControlPolicy(body)).toEqual({
      grants: [
        { grantee: { type: 'CanonicalUser', id: 'c-alt' }, permission: 'READ' },
        { grantee: { type: 'Group', uri: AUTHENTICATED_USERS }, permission: 'WRITE' },
      ],
    });
  });

  it('accepts an empty grant list (revoke all)', () => {
    const body =
      '<AccessControlPolicy><Owner><ID>c-main</ID></Owner><AccessControlList/></AccessControlPolicy>';
    expect(parseAccessControlPolicy(body)).toEqual({ owner: { id: 'c-main' }, grants: [] });
  });

  it.each([
    ['broken XML', '<AccessControlPolicy>', 'MalformedXML'],
    ['another document', '<CORSConfiguration/>', 'MalformedACLError'],
    [
      'no AccessControlList',
      '<AccessControlPolicy><Owner><ID>x</ID></Owner></AccessControlPolicy>',
      'MalformedACLError',
    ],
    [
      'a bad permission',
      '<AccessControlPolicy><AccessControlList><Grant><Grantee><ID>x</ID></Grantee><Permission>ALL</Permission></Grant></AccessControlList></AccessControlPolicy>',
      'MalformedACLError',
    ],
    [
      'a grant without a grantee',
      '<AccessControlPolicy><AccessControlList><Grant><Permission>READ</Permission></Grant></AccessControlList></AccessControlPolicy>',
      'MalformedACLError',
    ],
    [
      'a canonical user without an id',
      '<AccessControlPolicy><AccessControlList><Grant><Grantee xmlns:xsi="x" xsi:type="CanonicalUser"><DisplayName>d</DisplayName></Grantee><Permission>READ</Permission></Grant></AccessControlList></AccessControlPolicy>',
      'MalformedACLError',
    ],
    [
      'an unknown group',
      '<AccessControlPolicy><AccessControlList><Grant><Grantee><URI>http://x/y</URI></Grantee><Permission>READ</Permission></Grant></AccessControlList></AccessControlPolicy>',
      'InvalidArgument',
    ],
  ])('refuses %s', (_what, body, code) => {
    expect(codeOf(() => parseAccessControlPolicy(body))).toBe(code);
  });

  it('refuses more than 100 grants', () => {
    const grant = '<Grant><Grantee><ID>x</ID></Grantee><Permission>READ</Permission></Grant>';
    const body = `<AccessControlPolicy><AccessControlList>${grant.repeat(101)}</AccessControlList></AccessControlPolicy>`;
    expect(codeOf(() => parseAccessControlPolicy(body))).toBe('MalformedACLError');
  });
});

describe('resolveGrantees', () => {
  const dir = {
    displayNameOf: (id: string) => ({ 'c-main': 'M. Tester', 'c-alt': 'john.doe' })[id],
    userByEmail: async (email: string) => (email === 'john.doe@example.com' ? alt : undefined),
  };

  it('fills in display names, resolves e-mail grantees and drops duplicates', async () => {
    const grants = await resolveGrantees(
      [
        { grantee: { type: 'CanonicalUser', id: 'c-main' }, permission: 'FULL_CONTROL' },
        {
          grantee: { type: 'AmazonCustomerByEmail', emailAddress: 'john.doe@example.com' },
          permission: 'READ',
        },
        { grantee: { type: 'CanonicalUser', id: 'c-alt', displayName: 'stale' }, permission: 'READ' },
        { grantee: { type: 'Group', uri: ALL_USERS }, permission: 'READ' },
      ],
      dir,
    );
    expect(grants).toEqual([
      full(main),
      { grantee: { type: 'CanonicalUser', id: 'c-alt', displayName: 'john.doe' }, permission: 'READ' },
      { grantee: { type: 'Group', uri: ALL_USERS }, permission: 'READ' },
    ]);
  });

  it('refuses unknown ids with InvalidArgument and unknown e-mail addresses with UnresolvableGrantByEmailAddress', async () => {
    await expect(
      resolveGrantees([{ grantee: { type: 'CanonicalUser', id: '_foo' }, permission: 'READ' }], dir),
    ).rejects.toMatchObject({ code: 'InvalidArgument', details: { ArgumentValue: '_foo' } });
    await expect(
      resolveGrantees(
        [
          {
            grantee: { type: 'AmazonCustomerByEmail', emailAddress: 'nobody@example.com' },
            permission: 'READ',
          },
        ],
        dir,
      ),
    ).rejects.toMatchObject({ code: 'UnresolvableGrantByEmailAddress' });
  });
});

describe('aclAllows', () => {
  const anon = { anonymous: true };
  const asMain = { anonymous: false, canonicalId: 'c-main' };
  const asAlt = { anonymous: false, canonicalId: 'c-alt', email: 'John.Doe@example.com' };
  const acl = (grants: Grant[]): AccessControlPolicy => ({ owner: main, grants });

  it('grants a permission through itself or FULL_CONTROL', () => {
    const a = acl([full(main), { grantee: { type: 'CanonicalUser', id: 'c-alt' }, permission: 'READ' }]);
    expect(aclAllows(a, asMain, 'WRITE')).toBe(true);
    expect(aclAllows(a, asAlt, 'READ')).toBe(true);
    expect(aclAllows(a, asAlt, 'WRITE')).toBe(false);
    expect(aclAllows(a, anon, 'READ')).toBe(false);
  });

  it('lets AllUsers include anonymous callers and AuthenticatedUsers exclude them', () => {
    const everyone = acl(cannedAclGrants('public-read', { owner: main }));
    expect(aclAllows(everyone, anon, 'READ')).toBe(true);
    expect(aclAllows(everyone, anon, 'WRITE')).toBe(false);
    const signedIn = acl(cannedAclGrants('authenticated-read', { owner: main }));
    expect(aclAllows(signedIn, anon, 'READ')).toBe(false);
    expect(aclAllows(signedIn, asAlt, 'READ')).toBe(true);
  });

  it('matches unresolved e-mail grants case-insensitively', () => {
    const a = acl([
      {
        grantee: { type: 'AmazonCustomerByEmail', emailAddress: 'john.doe@example.com' },
        permission: 'READ',
      },
    ]);
    expect(aclAllows(a, asAlt, 'READ')).toBe(true);
  });

  it('always lets the owner read and write the ACL, even after revoking everything', () => {
    const none = acl([]);
    expect(aclAllows(none, asMain, 'READ_ACP')).toBe(true);
    expect(aclAllows(none, asMain, 'WRITE_ACP')).toBe(true);
    expect(aclAllows(none, asMain, 'READ')).toBe(false);
    expect(aclAllows(none, asAlt, 'READ_ACP')).toBe(false);
  });

  it('calls AllUsers and AuthenticatedUsers grants public', () => {
    expect(isAclPublic(cannedAclGrants('public-read', { owner: main }))).toBe(true);
    expect(isAclPublic(cannedAclGrants('authenticated-read', { owner: main }))).toBe(true);
    expect(isAclPublic(cannedAclGrants('log-delivery-write', { owner: main }))).toBe(false);
    expect(isAclPublic(cannedAclGrants('private', { owner: main }))).toBe(false);
  });
});
