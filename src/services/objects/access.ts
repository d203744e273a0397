/**
 * Who may do what to a bucket and its objects. One pure function, `evaluateBucketAccess`, decides
 * every S3 request; its inputs are the caller, the action, the bucket (with its stored policy and
 * ACL) and request facts for policy conditions. The bucket-policy and ACL evaluators plug in
 * through `AccessHooks` (see `createObjectService({ access })`), so this file holds the order of
 * evaluation and the defaults, not the policy language.
 *
 * Order, as AWS evaluates a request to a bucket:
 * 1. an explicit Deny in the bucket policy refuses, even the owner tenant's users; only the owner
 *    tenant's `owner` and platform admins may still read, replace or delete the policy itself,
 *    so a bad policy can always be removed (as the AWS account root can);
 * 2. callers of the bucket's own tenant are allowed by their role (`authorize()`), like an
 *    identity policy in the bucket owner's account, except for reading an object another tenant
 *    wrote, or its ACL (the writer owns it while ACLs are enabled);
 * 3. an Allow in the bucket policy admits anyone it names (other tenants, anonymous);
 * 4. an ACL grant admits (canned `public-read`, `public-read-write`, `authenticated-read`, or grants);
 * 5. otherwise AccessDenied.
 */
import { type Action, authorize } from '../../platform/policy/authorize.js';
import type { Principal } from '../../platform/policy/principal.js';

export type S3Action = Extract<Action, `s3:${string}`>;

export interface AccessBucket {
  name: string;
  tenantId: string;
  /** 12-digit account id of the owner tenant. */
  accountId: string;
  /** The bucket policy document as stored (JSON), or null. */
  policy: string | null;
  /** Canned ACL name or a JSON access-control policy. */
  acl: string;
  /** BucketOwnerEnforced ownership: ACLs grant nothing. */
  aclsDisabled?: boolean;
  /** The bucket's PublicAccessBlockConfiguration, when it has one. */
  publicAccessBlock?: PublicAccessBlock | undefined;
}

export interface PublicAccessBlock {
  blockPublicAcls: boolean;
  ignorePublicAcls: boolean;
  blockPublicPolicy: boolean;
  restrictPublicBuckets: boolean;
}

export interface AccessRequest {
  /** null for an anonymous (unsigned) request. */
  principal: Principal | null;
  action: S3Action;
  /** The action name bucket policies match, when it differs from `action` (no platform action of its own). */
  policyAction?: string;
  bucket: AccessBucket;
  /** Object key when the action is on an object. */
  key?: string;
  /** The object's own ACL (canned name or JSON), when the action is on an existing object. */
  objectAcl?: string | null;
  /** Account id of the object's owner (who wrote it), with `objectAcl`. */
  objectOwnerAccountId?: string;
  /** `arn:aws:s3:::bucket` or `arn:aws:s3:::bucket/key`. */
  resource: string;
  /**
   * Condition context for policies: aws:SourceIp, aws:SecureTransport, aws:CurrentTime,
   * aws:username, aws:userid, aws:PrincipalAccount, s3:prefix, s3:delimiter, s3:max-keys,
   * s3:x-amz-acl, s3:VersionId, s3:ExistingObjectTag/<k>, s3:RequestObjectTag/<k>, ... (string values).
   */
  conditions: Record<string, string | string[]>;
}

export type PolicyEffect = 'Allow' | 'Deny' | 'Implicit';

export interface AccessHooks {
  /** Evaluates the bucket policy: Deny when a Deny statement matches, Allow when an Allow does, else Implicit. */
  bucketPolicy?(req: AccessRequest): PolicyEffect;
  /** Whether the bucket or object ACL grants the action to the caller. */
  aclGrants?(req: AccessRequest): boolean;
}

export interface AccessDecision {
  allowed: boolean;
  reason: string;
}

const READ_ACTIONS: ReadonlySet<S3Action> = new Set<S3Action>([
  's3:GetObject',
  's3:GetObjectVersion',
  's3:ListBucket',
  's3:ListBucketVersions',
  's3:ListBucketMultipartUploads',
  's3:ListMultipartUploadParts',
]);
const WRITE_ACTIONS: ReadonlySet<S3Action> = new Set<S3Action>([
  's3:PutObject',
  's3:DeleteObject',
  's3:DeleteObjectVersion',
  's3:AbortMultipartUpload',
]);

/**
 * The default ACL evaluator until a full ACL module plugs in: canned ACLs only. `public-read`
 * lets anyone read (objects, listings); `public-read-write` also lets anyone write objects;
 * `authenticated-read` lets any signed-in caller read.
 */
export function cannedAclGrants(req: AccessRequest): boolean {
  const applies = (acl: string | null | undefined) => {
    if (!acl) return false;
    const isObjectRead = req.action === 's3:GetObject' || req.action === 's3:GetObjectVersion';
    switch (acl) {
      case 'public-read':
        return READ_ACTIONS.has(req.action);
      case 'public-read-write':
        return READ_ACTIONS.has(req.action) || WRITE_ACTIONS.has(req.action);
      case 'authenticated-read':
        return req.principal !== null && READ_ACTIONS.has(req.action);
      case 'bucket-owner-read':
      case 'bucket-owner-full-control':
        return isObjectRead && req.principal?.tenantId === req.bucket.tenantId;
      default:
        return false;
    }
  };
  // An object's ACL governs reads of that object; the bucket's ACL governs listings and writes.
  if (req.objectAcl !== undefined && (req.action === 's3:GetObject' || req.action === 's3:GetObjectVersion'))
    return applies(req.objectAcl) || applies(req.bucket.acl);
  return applies(req.bucket.acl);
}

export const DEFAULT_ACCESS_HOOKS: AccessHooks = { aclGrants: cannedAclGrants };

const POLICY_ACTIONS: ReadonlySet<S3Action> = new Set<S3Action>([
  's3:GetBucketPolicy',
  's3:PutBucketPolicy',
  's3:DeleteBucketPolicy',
]);

const OBJECT_OWNER_ACTIONS: ReadonlySet<S3Action> = new Set<S3Action>([
  's3:GetObject',
  's3:GetObjectVersion',
  's3:GetObjectAcl',
  's3:GetObjectVersionAcl',
  's3:PutObjectAcl',
  's3:PutObjectVersionAcl',
]);

/** Decides one request; pure. */
export function evaluateBucketAccess(
  req: AccessRequest,
  hooks: AccessHooks = DEFAULT_ACCESS_HOOKS,
): AccessDecision {
  const p = req.principal;
  const sameTenant = p !== null && p.tenantId === req.bucket.tenantId;
  const policy = req.bucket.policy && hooks.bucketPolicy ? hooks.bucketPolicy(req) : 'Implicit';
  const policyAdmin =
    sameTenant && (p.role === 'platform-admin' || p.role === 'owner') && POLICY_ACTIONS.has(req.action);
  if (policy === 'Deny' && !policyAdmin)
    return { allowed: false, reason: 'explicitly denied by the bucket policy' };
  // An object another tenant wrote (ACLs enabled) is that tenant's: the bucket owner's role does
  // not reach reading it or its ACL, only the object's ACL or the bucket policy does (as on AWS).
  const foreignObject =
    req.objectOwnerAccountId !== undefined &&
    req.objectOwnerAccountId !== req.bucket.accountId &&
    !req.bucket.aclsDisabled &&
    OBJECT_OWNER_ACTIONS.has(req.action);
  let denied: AccessDecision | undefined;
  if (p !== null && (sameTenant || p.role === 'platform-admin') && !foreignObject) {
    const d = authorize(p, req.action, { tenantId: req.bucket.tenantId });
    if (d.allowed || d.reason === 'the tenant is suspended') return d;
    denied = d;
  }
  if (p?.tenantStatus === 'suspended') return { allowed: false, reason: 'the tenant is suspended' };
  if (policy === 'Allow') return { allowed: true, reason: 'allowed by the bucket policy' };
  if ((hooks.aclGrants ?? cannedAclGrants)(req)) return { allowed: true, reason: 'granted by the ACL' };
  if (denied) return denied;
  return {
    allowed: false,
    reason: p ? 'the bucket belongs to another tenant' : 'anonymous access is not granted',
  };
}
