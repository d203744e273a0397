import { describe, expect, it } from 'vitest';
import type { Principal } from '../../platform/policy/principal.js';
import { type AccessRequest, evaluateBucketAccess, type S3Action } from './access.js';
import { aclGrantsAccess, POLICY_AND_ACL_HOOKS, storedAcl } from './access-hooks.js';

const principal = (tenantId: string, accountId: string, role: Principal['role'] = 'member'): Principal => ({
  userId: `u-${tenantId}`,
  userName: 'u',
  uniqueId: 'AIDA1',
  tenantId,
  tenantName: tenantId,
  tenantStatus: 'active',
  accountId,
  role,
  arn: `arn:aws:iam::${accountId}:user/u`,
  via: 'sigv4',
});
const OWNER = principal('t1', '111111111111', 'owner');
const OTHER = principal('t2', '222222222222', 'owner');

const req = (p: Principal | null, action: S3Action, extra: Partial<AccessRequest> = {}): AccessRequest => ({
  principal: p,
  action,
  bucket: { name: 'b', tenantId: 't1', accountId: '111111111111', policy: null, acl: 'private' },
  resource: 'arn:aws:s3:::b/k',
  key: 'k',
  conditions: {},
  ...extra,
});

const denyAll = JSON.stringify({
  Version: '2012-10-17',
  Statement: [
    { Effect: 'Deny', Principal: '*', Action: 's3:*', Resource: ['arn:aws:s3:::b', 'arn:aws:s3:::b/*'] },
  ],
});

describe('policy and ACL access hooks', () => {
  it('lets an explicit Deny bind the owner tenant, except for managing the policy itself', () => {
    const bucket = { name: 'b', tenantId: 't1', accountId: '111111111111', policy: denyAll, acl: 'private' };
    expect(evaluateBucketAccess(req(OWNER, 's3:GetObject', { bucket }), POLICY_AND_ACL_HOOKS).allowed).toBe(
      false,
    );
    expect(
      evaluateBucketAccess(
        req(OWNER, 's3:DeleteBucketPolicy', { bucket, resource: 'arn:aws:s3:::b' }),
        POLICY_AND_ACL_HOOKS,
      ).allowed,
    ).toBe(true);
    expect(
      evaluateBucketAccess(
        req(principal('t1', '111111111111', 'member'), 's3:DeleteBucketPolicy', {
          bucket,
          resource: 'arn:aws:s3:::b',
        }),
        POLICY_AND_ACL_HOOKS,
      ).allowed,
    ).toBe(false);
  });

  it('admits another tenant only through an explicit grant', () => {
    expect(
      evaluateBucketAccess(req(OTHER, 's3:GetObject', { objectAcl: null }), POLICY_AND_ACL_HOOKS).allowed,
    ).toBe(false);
    const acl = JSON.stringify({
      owner: { id: '111111111111' },
      grants: [{ grantee: { type: 'CanonicalUser', id: '222222222222' }, permission: 'READ' }],
    });
    expect(
      evaluateBucketAccess(req(OTHER, 's3:GetObject', { objectAcl: acl }), POLICY_AND_ACL_HOOKS).allowed,
    ).toBe(true);
    expect(
      evaluateBucketAccess(req(OTHER, 's3:PutObject', { objectAcl: acl }), POLICY_AND_ACL_HOOKS).allowed,
    ).toBe(false);
  });

  it('expands canned ACLs against the owner and honours BucketOwnerEnforced', () => {
    expect(storedAcl('public-read', { id: 'o' }).grants.map((g) => g.permission)).toEqual([
      'READ',
      'FULL_CONTROL',
    ]);
    const bucket = { name: 'b', tenantId: 't1', accountId: '111111111111', policy: null, acl: 'public-read' };
    expect(aclGrantsAccess(req(null, 's3:ListBucket', { bucket }))).toBe(true);
    expect(aclGrantsAccess(req(null, 's3:GetObject', { bucket, objectAcl: 'private' }))).toBe(false);
    expect(aclGrantsAccess(req(null, 's3:ListBucket', { bucket: { ...bucket, aclsDisabled: true } }))).toBe(
      false,
    );
    // The object's writer owns it even in someone else's bucket.
    expect(
      aclGrantsAccess(
        req(OTHER, 's3:GetObject', { objectAcl: 'private', objectOwnerAccountId: '222222222222' }),
      ),
    ).toBe(true);
  });
});
