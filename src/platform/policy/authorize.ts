import { YunhaiError } from '../errors.js';
import type { Principal } from './principal.js';

/**
 * Access levels of actions. `read` lists and describes; `write` creates and changes tenant
 * resources; `admin` manages the tenant's identities and quotas; `platform` is for platform
 * admins only (tenants, hosts, rate cards); `self` is an action on the caller's own identity
 * (own password, own access keys), allowed to every role.
 */
export type AccessLevel = 'read' | 'write' | 'admin' | 'platform' | 'self';

/**
 * Every action any service checks, with its level. Names follow AWS (`service:Action`).
 * Services add their actions here so the catalogue stays one list.
 */
export const ACTIONS = {
  'iam:CreateTenant': 'platform',
  'iam:ListTenants': 'platform',
  'iam:GetTenant': 'read',
  'iam:UpdateTenant': 'platform',
  'iam:DeleteTenant': 'platform',
  'iam:SetQuota': 'platform',
  'iam:GetQuotas': 'read',
  'iam:CreateUser': 'admin',
  'iam:ListUsers': 'read',
  'iam:GetUser': 'read',
  'iam:UpdateUser': 'admin',
  'iam:DeleteUser': 'admin',
  'iam:SetPassword': 'admin',
  'iam:ChangePassword': 'self',
  'iam:CreateAccessKey': 'admin',
  'iam:ListAccessKeys': 'admin',
  'iam:UpdateAccessKey': 'admin',
  'iam:DeleteAccessKey': 'admin',
  'audit:ListEvents': 'admin',
  'audit:VerifyChain': 'platform',
  'usage:ListRecords': 'read',
  'compute:RunInstance': 'write',
  'compute:ListInstances': 'read',
  'compute:DescribeInstance': 'read',
  'compute:StartInstance': 'write',
  'compute:StopInstance': 'write',
  'compute:RebootInstance': 'write',
  'compute:ResizeInstance': 'write',
  'compute:TerminateInstance': 'write',
  'compute:GetConsoleOutput': 'read',
  'compute:ConnectConsole': 'write',
  'compute:ListFlavors': 'read',
  'compute:CreateFlavor': 'platform',
  'compute:DeleteFlavor': 'platform',
  'compute:ImportKeyPair': 'write',
  'compute:ListKeyPairs': 'read',
  'compute:DeleteKeyPair': 'write',
  'compute:CreateServerGroup': 'write',
  'compute:ListServerGroups': 'read',
  'compute:DeleteServerGroup': 'write',
  'compute:MigrateInstance': 'platform',
  'compute:ListMigrations': 'platform',
  'compute:EvacuateHost': 'platform',
  'hosts:ManageAggregates': 'platform',
  'images:ImportImage': 'write',
  'images:ImportPublicImage': 'platform',
  'images:ListImages': 'read',
  'images:DescribeImage': 'read',
  'images:DeleteImage': 'write',
  'hosts:ListHosts': 'platform',
  'hosts:UpdateHost': 'platform',
  'hosts:CreateRegistrationToken': 'platform',
  's3:ListAllMyBuckets': 'read',
  's3:CreateBucket': 'write',
  's3:DeleteBucket': 'write',
  's3:ListBucket': 'read',
  's3:ListBucketVersions': 'read',
  's3:ListBucketMultipartUploads': 'read',
  's3:GetBucketLocation': 'read',
  's3:GetBucketVersioning': 'read',
  's3:PutBucketVersioning': 'write',
  's3:GetBucketTagging': 'read',
  's3:PutBucketTagging': 'write',
  's3:GetBucketPolicy': 'read',
  's3:PutBucketPolicy': 'admin',
  's3:DeleteBucketPolicy': 'admin',
  's3:GetBucketAcl': 'read',
  's3:PutBucketAcl': 'admin',
  's3:GetBucketCORS': 'read',
  's3:PutBucketCORS': 'write',
  's3:GetLifecycleConfiguration': 'read',
  's3:PutLifecycleConfiguration': 'write',
  's3:GetEncryptionConfiguration': 'read',
  's3:PutEncryptionConfiguration': 'write',
  's3:GetBucketObjectLockConfiguration': 'read',
  's3:PutBucketObjectLockConfiguration': 'write',
  's3:GetBucketOwnershipControls': 'read',
  's3:PutBucketOwnershipControls': 'admin',
  's3:GetObject': 'read',
  's3:GetObjectVersion': 'read',
  's3:GetObjectAttributes': 'read',
  's3:PutObject': 'write',
  's3:DeleteObject': 'write',
  's3:DeleteObjectVersion': 'write',
  's3:GetObjectTagging': 'read',
  's3:GetObjectVersionTagging': 'read',
  's3:PutObjectTagging': 'write',
  's3:PutObjectVersionTagging': 'write',
  's3:DeleteObjectTagging': 'write',
  's3:DeleteObjectVersionTagging': 'write',
  's3:GetObjectAcl': 'read',
  's3:GetObjectVersionAcl': 'read',
  's3:PutObjectAcl': 'write',
  's3:PutObjectVersionAcl': 'write',
  's3:ListMultipartUploadParts': 'read',
  's3:AbortMultipartUpload': 'write',
  's3:GetObjectRetention': 'read',
  's3:PutObjectRetention': 'write',
  's3:BypassGovernanceRetention': 'write',
  's3:GetObjectLegalHold': 'read',
  's3:PutObjectLegalHold': 'write',
  'sqs:CreateQueue': 'write',
  'sqs:DeleteQueue': 'write',
  'sqs:GetQueueUrl': 'read',
  'sqs:ListQueues': 'read',
  'sqs:GetQueueAttributes': 'read',
  'sqs:SetQueueAttributes': 'write',
  'sqs:PurgeQueue': 'write',
  'sqs:SendMessage': 'write',
  'sqs:ReceiveMessage': 'write',
  'sqs:DeleteMessage': 'write',
  'sqs:ChangeMessageVisibility': 'write',
  'sqs:TagQueue': 'write',
  'sqs:UntagQueue': 'write',
  'sqs:ListQueueTags': 'read',
  'sqs:ListDeadLetterSourceQueues': 'read',
  'sqs:AddPermission': 'admin',
  'sqs:RemovePermission': 'admin',
  'sqs:StartMessageMoveTask': 'write',
  'sqs:ListMessageMoveTasks': 'read',
  'sqs:CancelMessageMoveTask': 'write',
} as const satisfies Record<string, AccessLevel>;

export type Action = keyof typeof ACTIONS;

/** What is being acted on. `tenantId: null` means a platform-level resource. */
export interface ResourceRef {
  tenantId: string | null;
  /** Set when the resource is the caller's own identity (their user, their keys). */
  ownerUserId?: string;
  arn?: string;
}

export interface Decision {
  allowed: boolean;
  reason: string;
}

const SUSPENDED_ALLOWED: ReadonlySet<AccessLevel> = new Set(['read', 'self']);

/**
 * The one policy check. Pure: the same principal, action and resource always give the same
 * answer. Tenants never reach another tenant's resources; within a tenant the role decides.
 */
export function authorize(principal: Principal, action: Action, resource: ResourceRef): Decision {
  const level = ACTIONS[action] as AccessLevel;
  if (principal.role === 'platform-admin') return { allowed: true, reason: 'platform admin' };
  if (resource.tenantId !== principal.tenantId) {
    return { allowed: false, reason: 'the resource belongs to another tenant' };
  }
  if (principal.tenantStatus === 'suspended' && !SUSPENDED_ALLOWED.has(level)) {
    return { allowed: false, reason: 'the tenant is suspended' };
  }
  const isSelf = resource.ownerUserId !== undefined && resource.ownerUserId === principal.userId;
  switch (level) {
    case 'platform':
      return { allowed: false, reason: `${action} needs a platform admin` };
    case 'self':
      return isSelf || principal.role === 'owner'
        ? { allowed: true, reason: 'own identity' }
        : { allowed: false, reason: `${action} applies only to your own identity` };
    case 'admin':
      if (principal.role === 'owner') return { allowed: true, reason: 'tenant owner' };
      // Members may manage their own access keys; read-only users may read their own.
      if (isSelf && principal.role === 'member' && action.includes('AccessKey'))
        return { allowed: true, reason: 'own keys' };
      if (isSelf && action === 'iam:ListAccessKeys') return { allowed: true, reason: 'own keys' };
      return { allowed: false, reason: `${action} needs the tenant owner role` };
    case 'write':
      return principal.role === 'owner' || principal.role === 'member'
        ? { allowed: true, reason: principal.role }
        : { allowed: false, reason: `${action} is not allowed for read-only users` };
    case 'read':
      return { allowed: true, reason: principal.role };
  }
}

/** authorize() that throws AccessDenied (or TenantSuspended) with the reason. */
export function requireAllowed(principal: Principal, action: Action, resource: ResourceRef): void {
  const d = authorize(principal, action, resource);
  if (d.allowed) return;
  const code = d.reason === 'the tenant is suspended' ? 'TenantSuspended' : 'AccessDenied';
  throw new YunhaiError(code, `User ${principal.arn} is not authorized to perform ${action}: ${d.reason}.`, {
    action,
  });
}
