/**
 * IAM actions (API version 2010-05-08), written from the AWS IAM API reference. Users are addressed
 * by name within the caller's tenant (the tenant is the AWS account); an omitted UserName means the
 * caller, as in AWS.
 */
import type { Role } from '../../../platform/db/schema.js';
import { YunhaiError } from '../../../platform/errors.js';
import { stringCursor } from '../../../platform/http/pagination.js';
import { awsDate, el, optional, type Xml } from '../../../platform/xml/writer.js';
import type { AccessKeyView, UserView } from '../schema.js';
import type { ActionCall, ActionHandler } from './actions.js';
import {
  ACCESS_KEY_ID,
  KEY_STATUS,
  MARKER,
  PATH,
  PATH_PREFIX,
  type Params,
  POLICY_ARN,
  USER_NAME,
} from './params.js';

const DEFAULT_MAX_ITEMS = 100;

const userFields = (u: UserView): Xml[] =>
  [
    el('Path', u.path),
    el('UserName', u.name),
    el('UserId', u.uniqueId),
    el('Arn', u.arn),
    el('CreateDate', awsDate(u.createdAt)),
    optional('PasswordLastUsed', u.lastLoginAt === null ? null : awsDate(u.lastLoginAt)),
  ].filter((x): x is Xml => x !== undefined);

const keyMetadata = (k: AccessKeyView): Xml[] => [
  el('UserName', k.userName),
  el('AccessKeyId', k.accessKeyId),
  el('Status', k.status),
  el('CreateDate', awsDate(k.createdAt)),
];

/** MaxItems and Marker of a list call; our opaque cursor is the Marker. */
function paging(params: Params) {
  const maxItems = params.int('MaxItems', 1, 1000, DEFAULT_MAX_ITEMS);
  const marker = params.string('Marker', MARKER);
  if (marker !== undefined) {
    try {
      stringCursor(marker);
    } catch {
      throw new YunhaiError(
        'ValidationError',
        'Invalid Marker: pass back the Marker of the previous response unchanged.',
      );
    }
  }
  return { maxItems, marker };
}

/** The user named by `UserName` (the caller when it is omitted and `required` is false). */
async function targetUser({ iam, ctx, params }: ActionCall, required: boolean) {
  const name = required
    ? params.string('UserName', { ...USER_NAME, required: true })
    : params.string('UserName', USER_NAME);
  return iam.getUser(ctx, await iam.userIdByName(ctx, name));
}

/**
 * The access key `AccessKeyId` of the user `UserName` (or of the caller). As in AWS, a key of
 * another user is reported as missing.
 */
async function targetKey(
  call: ActionCall,
  action: 'iam:UpdateAccessKey' | 'iam:DeleteAccessKey' | 'iam:ListAccessKeys',
) {
  const { iam, ctx, params } = call;
  const accessKeyId = params.string('AccessKeyId', { ...ACCESS_KEY_ID, required: true });
  const name = params.string('UserName', USER_NAME);
  const userId = await iam.userIdByName(ctx, name);
  const { key, user } = await iam.accessKeyOwner(ctx, accessKeyId, action);
  if (user.id !== userId) {
    const whose =
      name === undefined ? 'the calling user; pass UserName for a key of another user' : `user ${name}`;
    throw new YunhaiError('NotFound', `The Access Key with id ${accessKeyId} cannot be found for ${whose}.`);
  }
  return { key, user };
}

// ---- users -----------------------------------------------------------------------------------

export const createUser: ActionHandler = async ({ iam, ctx, params }) => {
  const name = params.string('UserName', { ...USER_NAME, required: true });
  const path = params.string('Path', PATH) ?? '/';
  const u = await iam.createUser(ctx, { name, path, role: 'member' });
  return [el('User', userFields(u))];
};

export const getUser: ActionHandler = async (call) => [el('User', userFields(await targetUser(call, false)))];

export const listUsers: ActionHandler = async ({ iam, ctx, params }) => {
  const pathPrefix = params.string('PathPrefix', PATH_PREFIX);
  const { maxItems, marker } = paging(params);
  // iam.listUsers matches the prefix with LIKE after dropping % _ \ from it, and SQLite's LIKE
  // ignores case; so ask it for the part before any of those characters and keep exact matches
  // here. A page may then hold fewer than MaxItems users, which AWS allows too.
  const servicePrefix = pathPrefix?.split(/[%_\\]/)[0];
  const page = await iam.listUsers(ctx, { limit: maxItems, cursor: marker, pathPrefix: servicePrefix });
  const users =
    pathPrefix === undefined ? page.items : page.items.filter((u) => u.path.startsWith(pathPrefix));
  return [
    el(
      'Users',
      users.map((u) => el('member', userFields(u))),
    ),
    el('IsTruncated', page.nextCursor !== null),
    optional('Marker', page.nextCursor),
  ].filter((x): x is Xml => x !== undefined);
};

/** Renaming and moving users are not supported; an UpdateUser that would change nothing succeeds. */
export const updateUser: ActionHandler = async (call) => {
  const { iam, ctx, params } = call;
  const newName = params.string('NewUserName', USER_NAME);
  const newPath = params.string('NewPath', PATH);
  const u = await targetUser(call, true);
  if (newName !== undefined && newName !== u.name) {
    throw new YunhaiError(
      'InvalidParameterValue',
      'Yunhai cannot rename users (NewUserName): create a user with the new name, move the access keys to it, then delete the old one.',
    );
  }
  if (newPath !== undefined && newPath !== u.path) {
    throw new YunhaiError(
      'InvalidParameterValue',
      `Yunhai cannot change a user's path (NewPath); user ${u.name} keeps path ${u.path}.`,
    );
  }
  // Still a checked and audited call, so a caller who may not update users is refused as usual.
  await iam.updateUser(ctx, u.id, {});
  return undefined;
};

export const deleteUser: ActionHandler = async (call) => {
  const u = await targetUser(call, true);
  await call.iam.deleteUser(call.ctx, u.id);
  return undefined;
};

// ---- access keys -----------------------------------------------------------------------------

export const createAccessKey: ActionHandler = async (call) => {
  const u = await targetUser(call, false);
  const k = await call.iam.createAccessKey(call.ctx, u.id);
  return [
    el(
      'AccessKey',
      el('UserName', k.userName),
      el('AccessKeyId', k.accessKeyId),
      el('Status', k.status),
      el('SecretAccessKey', k.secretAccessKey),
      el('CreateDate', awsDate(k.createdAt)),
    ),
  ];
};

export const listAccessKeys: ActionHandler = async (call) => {
  paging(call.params); // validated; a user has at most two keys, so one page holds them all
  const u = await targetUser(call, false);
  const page = await call.iam.listAccessKeys(call.ctx, u.id);
  return [
    el(
      'AccessKeyMetadata',
      page.items.map((k) => el('member', keyMetadata(k))),
    ),
    el('IsTruncated', false),
  ];
};

export const updateAccessKey: ActionHandler = async (call) => {
  const status = call.params.string('Status', { ...KEY_STATUS, required: true }) as 'Active' | 'Inactive';
  const { key } = await targetKey(call, 'iam:UpdateAccessKey');
  await call.iam.updateAccessKey(call.ctx, key.id, status);
  return undefined;
};

export const deleteAccessKey: ActionHandler = async (call) => {
  const { key } = await targetKey(call, 'iam:DeleteAccessKey');
  await call.iam.deleteAccessKey(call.ctx, key.id);
  return undefined;
};

/**
 * When a key was last used. Yunhai records the time only, not the service or region, which AWS
 * then reports as "N/A".
 */
export const getAccessKeyLastUsed: ActionHandler = async ({ iam, ctx, params }) => {
  const accessKeyId = params.string('AccessKeyId', { ...ACCESS_KEY_ID, required: true });
  const { key, user } = await iam.accessKeyOwner(ctx, accessKeyId, 'iam:ListAccessKeys');
  return [
    el('UserName', user.name),
    el(
      'AccessKeyLastUsed',
      optional('LastUsedDate', key.last_used_at === null ? null : awsDate(key.last_used_at)),
      el('ServiceName', 'N/A'),
      el('Region', 'N/A'),
    ),
  ];
};

// ---- managed policies as roles ----------------------------------------------------------------

/**
 * Yunhai's roles expressed as the AWS managed policies tools attach: every user holds exactly one.
 * Attaching a policy sets the role; detaching the one held falls back to ReadOnlyAccess, the least a
 * Yunhai user has (so detaching ReadOnlyAccess itself changes nothing).
 */
const POLICIES = [
  { name: 'AdministratorAccess', role: 'owner' },
  { name: 'PowerUserAccess', role: 'member' },
  { name: 'ReadOnlyAccess', role: 'readonly' },
] as const satisfies readonly { name: string; role: Exclude<Role, 'platform-admin'> }[];
type Policy = (typeof POLICIES)[number];

const policyArn = (p: Policy) => `arn:aws:iam::aws:policy/${p.name}`;
const policyOfRole = (role: Role): Policy =>
  POLICIES.find((p) => p.role === (role === 'platform-admin' ? 'owner' : role))!;

function policyParam(params: Params): { arn: string; policy: Policy | undefined } {
  const arn = params.string('PolicyArn', { ...POLICY_ARN, required: true });
  return { arn, policy: POLICIES.find((p) => policyArn(p) === arn) };
}

const notAttachable = (arn: string) =>
  new YunhaiError(
    'NotFound',
    `Policy ${arn} does not exist or is not attachable. Yunhai supports the AWS managed policies ${POLICIES.map(policyArn).join(', ')}.`,
  );

export const attachUserPolicy: ActionHandler = async (call) => {
  const { arn, policy } = policyParam(call.params);
  const u = await targetUser(call, true);
  if (!policy) throw notAttachable(arn);
  // A platform administrator already holds everything AdministratorAccess grants.
  if (u.role === 'platform-admin' && policy.role === 'owner') return undefined;
  await call.iam.updateUser(call.ctx, u.id, { role: policy.role });
  return undefined;
};

export const detachUserPolicy: ActionHandler = async (call) => {
  const { arn, policy } = policyParam(call.params);
  const u = await targetUser(call, true);
  if (!policy) throw notAttachable(arn);
  if (policyOfRole(u.role) !== policy)
    throw new YunhaiError('NotFound', `Policy ${arn} is not attached to user ${u.name}.`);
  await call.iam.updateUser(call.ctx, u.id, { role: 'readonly' });
  return undefined;
};

export const listAttachedUserPolicies: ActionHandler = async (call) => {
  const pathPrefix = call.params.string('PathPrefix', PATH_PREFIX);
  paging(call.params);
  const u = await targetUser(call, true);
  const p = policyOfRole(u.role);
  // The three managed policies live at path '/'.
  const shown = pathPrefix === undefined || pathPrefix === '/';
  return [
    el(
      'AttachedPolicies',
      shown ? el('member', el('PolicyName', p.name), el('PolicyArn', policyArn(p))) : undefined,
    ),
    el('IsTruncated', false),
  ];
};
