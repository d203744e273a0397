/**
 * The access hooks the object service runs by default: the bucket policy (bucket-policy.ts) and
 * ACLs (acl.ts) plugged into `evaluateBucketAccess` (access.ts).
 *
 * Canonical user ids are account ids (the 12 digits every `<Owner><ID>` carries), so an ACL grant
 * to an id names a tenant, as an AWS canonical id names an account.
 *
 * Stored ACLs (buckets.acl, objects.acl) are either a canned ACL name (expanded against the owner
 * when read) or JSON `{"owner":{...},"grants":[...]}` as acl.ts models them; the first version of
 * the service stored `{"xml": "..."}` documents, which are still read.
 */
import type { Principal } from '../../platform/policy/principal.js';
import type { AccessHooks, AccessRequest, PolicyEffect, PublicAccessBlock, S3Action } from './access.js';
import {
  type AccessControlPolicy,
  type AclOwner,
  type AclPermission,
  aclAllows,
  cannedAclGrants,
  type Grant,
  isAclPublic,
  isCannedAcl,
  parseAccessControlPolicy,
} from './acl.js';
import {
  type BucketPolicy,
  evaluateBucketPolicy,
  isPolicyPublic,
  parseBucketPolicy,
} from './bucket-policy.js';

const policyCache = new Map<string, BucketPolicy | null>();

/** A stored policy document, parsed once (a document stored before validation that fails to parse counts as absent). */
export function parsedPolicy(text: string): BucketPolicy | null {
  let p = policyCache.get(text);
  if (p === undefined) {
    try {
      p = parseBucketPolicy(text);
    } catch {
      p = null;
    }
    if (policyCache.size > 1000) policyCache.clear();
    policyCache.set(text, p);
  }
  return p;
}

export function policyPrincipal(p: Principal | null) {
  return p
    ? { anonymous: false, accountId: p.accountId, userArn: p.arn, canonicalId: p.accountId }
    : { anonymous: true };
}

export function bucketPolicyEffect(req: AccessRequest): PolicyEffect {
  if (!req.bucket.policy) return 'Implicit';
  const policy = parsedPolicy(req.bucket.policy);
  if (!policy) return 'Implicit';
  const d = evaluateBucketPolicy(policy, {
    principal: policyPrincipal(req.principal),
    action: req.policyAction ?? req.action,
    resource: req.resource,
    conditions: req.conditions,
  });
  // RestrictPublicBuckets: a public policy admits only the bucket owner's account (AWS).
  if (
    d === 'Allow' &&
    req.bucket.publicAccessBlock?.restrictPublicBuckets &&
    req.principal?.accountId !== req.bucket.accountId &&
    isPolicyPublic(policy)
  )
    return 'Implicit';
  return d === 'NotApplicable' ? 'Implicit' : d;
}

/** A stored ACL as an AccessControlPolicy; `owner` fills canned ACLs (and old documents without one). */
export function storedAcl(stored: string | null | undefined, owner: AclOwner, bucketOwner?: AclOwner) {
  const value = stored ?? 'private';
  if (value.startsWith('{')) {
    const doc = JSON.parse(value) as Partial<AccessControlPolicy> & { xml?: string };
    if (doc.xml !== undefined) {
      const parsed = parseAccessControlPolicy(doc.xml);
      return { owner: parsed.owner ?? owner, grants: parsed.grants };
    }
    return { owner: doc.owner ?? owner, grants: doc.grants ?? [] };
  }
  if (isCannedAcl(value))
    return { owner, grants: cannedAclGrants(value, { owner, ...(bucketOwner ? { bucketOwner } : {}) }) };
  return { owner, grants: cannedAclGrants('private', { owner }) };
}

/** Which ACL (bucket's or object's) and which permission an action needs. */
const ACL_NEEDS: Partial<Record<S3Action, [on: 'bucket' | 'object', AclPermission]>> = {
  's3:ListBucket': ['bucket', 'READ'],
  's3:ListBucketVersions': ['bucket', 'READ'],
  's3:ListBucketMultipartUploads': ['bucket', 'READ'],
  's3:PutObject': ['bucket', 'WRITE'],
  's3:DeleteObject': ['bucket', 'WRITE'],
  's3:DeleteObjectVersion': ['bucket', 'WRITE'],
  's3:AbortMultipartUpload': ['bucket', 'WRITE'],
  's3:ListMultipartUploadParts': ['bucket', 'WRITE'],
  's3:GetBucketAcl': ['bucket', 'READ_ACP'],
  's3:PutBucketAcl': ['bucket', 'WRITE_ACP'],
  's3:GetObject': ['object', 'READ'],
  's3:GetObjectVersion': ['object', 'READ'],
  's3:GetObjectAcl': ['object', 'READ_ACP'],
  's3:GetObjectVersionAcl': ['object', 'READ_ACP'],
  's3:PutObjectAcl': ['object', 'WRITE_ACP'],
  's3:PutObjectVersionAcl': ['object', 'WRITE_ACP'],
};

export function aclGrantsAccess(req: AccessRequest): boolean {
  if (req.bucket.aclsDisabled) return false;
  const need = ACL_NEEDS[req.action];
  if (!need) return false;
  const [on, permission] = need;
  const p = req.principal;
  const who = p ? { anonymous: false, canonicalId: p.accountId } : { anonymous: true };
  const bucketOwner: AclOwner = { id: req.bucket.accountId };
  // IgnorePublicAcls: grants to everyone or to every signed-in caller count for nothing.
  const ignorePublic = req.bucket.publicAccessBlock?.ignorePublicAcls === true;
  const effective = (acl: AccessControlPolicy) =>
    ignorePublic ? { ...acl, grants: acl.grants.filter((g) => !isPublicGrant(g)) } : acl;
  if (on === 'object') {
    if (req.objectAcl === undefined) return false;
    const owner: AclOwner = { id: req.objectOwnerAccountId ?? req.bucket.accountId };
    return aclAllows(effective(storedAcl(req.objectAcl, owner, bucketOwner)), who, permission);
  }
  return aclAllows(effective(storedAcl(req.bucket.acl, bucketOwner)), who, permission);
}

const isPublicGrant = (g: Grant) => isAclPublic([g]);

/** Whether a stored ACL (canned name or JSON) grants anything to everyone or to every signed-in caller. */
export function isPublicAcl(stored: string): boolean {
  return isAclPublic(storedAcl(stored, { id: '' }).grants);
}

/** A bucket's stored PublicAccessBlockConfiguration (undefined when none). */
export function publicAccessBlockOf(b: {
  public_access_block: string | null;
}): PublicAccessBlock | undefined {
  return b.public_access_block ? (JSON.parse(b.public_access_block) as PublicAccessBlock) : undefined;
}

export const POLICY_AND_ACL_HOOKS: AccessHooks = {
  bucketPolicy: bucketPolicyEffect,
  aclGrants: aclGrantsAccess,
};
