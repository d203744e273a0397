import { z } from 'zod';
import { QUOTA_RESOURCES } from '../../platform/quota/quota.js';

/** Wire shapes of the IAM REST API (validated in, documented in OpenAPI). */
export const tenantName = z
  .string()
  .regex(
    /^[a-z0-9][a-z0-9-]{1,62}$/,
    'lowercase letters, digits and hyphens, 2-63 characters, starting with a letter or digit',
  );
export const userName = z
  .string()
  .regex(/^[\w+=,.@-]{1,64}$/, 'letters, digits and + = , . @ _ -, at most 64 characters');
export const iamPath = z
  .string()
  .regex(/^\/([\x21-\x7e]{0,510}\/)?$/, 'a path starts and ends with / and has no spaces')
  .refine((p) => !p.includes('..') && !p.includes('//'), 'path segments may not be empty or ..');
export const password = z.string().min(8, 'at least 8 characters').max(128);
export const role = z.enum(['owner', 'member', 'readonly']);
export const anyRole = z.enum(['platform-admin', 'owner', 'member', 'readonly']);
export const quotaResource = z.enum(QUOTA_RESOURCES as [string, ...string[]]);
export const quotaLimits = z.partialRecord(quotaResource, z.number().int().min(-1));

export const tenant = z.object({
  id: z.string(),
  accountId: z.string(),
  name: z.string(),
  displayName: z.string(),
  status: z.enum(['active', 'suspended']),
  createdAt: z.string(),
  updatedAt: z.string(),
});
export type TenantView = z.infer<typeof tenant>;

export const createTenantBody = z.strictObject({
  name: tenantName,
  displayName: z.string().min(1).max(200).optional(),
  quotas: quotaLimits.optional(),
  owner: z
    .strictObject({ name: userName, password: password.optional(), email: z.email().optional() })
    .optional(),
});

export const updateTenantBody = z.strictObject({
  displayName: z.string().min(1).max(200).optional(),
  status: z.enum(['active', 'suspended']).optional(),
});

export const user = z.object({
  id: z.string(),
  tenantId: z.string(),
  accountId: z.string(),
  name: z.string(),
  uniqueId: z.string(),
  arn: z.string(),
  path: z.string(),
  role: anyRole,
  displayName: z.string(),
  email: z.string().nullable(),
  hasPassword: z.boolean(),
  createdAt: z.string(),
  lastLoginAt: z.string().nullable(),
  /** The portal language the user chose; null until they choose (the browser's then). */
  locale: z.enum(['en', 'zh-CN']).nullable(),
});
export type UserView = z.infer<typeof user>;

export const createUserBody = z.strictObject({
  tenantId: z.string().optional(),
  name: userName,
  role: role.default('member'),
  path: iamPath.default('/'),
  displayName: z.string().max(200).optional(),
  email: z.email().optional(),
  password: password.optional(),
});

export const updateUserBody = z.strictObject({
  role: role.optional(),
  displayName: z.string().max(200).optional(),
  email: z.email().nullable().optional(),
});

export const setPasswordBody = z.strictObject({ password });
export const changePasswordBody = z.strictObject({
  currentPassword: z.string().max(128),
  newPassword: password,
});

export const accessKey = z.object({
  accessKeyId: z.string(),
  userId: z.string(),
  userName: z.string(),
  status: z.enum(['Active', 'Inactive']),
  createdAt: z.string(),
  lastUsedAt: z.string().nullable(),
});
export type AccessKeyView = z.infer<typeof accessKey>;
export const accessKeyWithSecret = accessKey.extend({ secretAccessKey: z.string() });

export const updateAccessKeyBody = z.strictObject({ status: z.enum(['Active', 'Inactive']) });

export const loginBody = z.strictObject({
  username: z.string().min(1).max(200),
  password: z.string().min(1).max(128),
  tenant: z.string().max(64).optional(),
});
export const session = z.object({
  token: z.string(),
  expiresAt: z.string(),
  user: user,
});

export const quota = z.object({ resource: z.string(), limit: z.number(), used: z.number() });
export const setQuotasBody = quotaLimits;

export const LOCALES = ['en', 'zh-CN'] as const;
export type Locale = (typeof LOCALES)[number];
export const preferencesBody = z.strictObject({
  locale: z.enum(LOCALES).nullable().optional(),
});
export const preferences = z.object({ locale: z.enum(LOCALES).nullable() });
