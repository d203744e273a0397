import { z } from 'zod';
import { pageQuery } from '../../platform/http/pagination.js';
import { type RestContext, type RouteDef, route } from '../../platform/http/rest.js';
import { QUOTA_RESOURCES } from '../../platform/quota/quota.js';
import * as S from './schema.js';
import type { IamService } from './service.js';

const userIdParam = z.strictObject({
  id: z.string().regex(/^(usr-[a-z0-9]{12}|me)$/, 'a user id looks like usr-xxxxxxxxxxxx (or "me")'),
});
const tenantParam = z.strictObject({
  id: z.string().regex(/^[a-z0-9][a-z0-9-]{1,62}$/, 'a tenant id, name or account id'),
});
const keyParam = z.strictObject({
  id: z.string().regex(/^A[KS]IA[A-Z0-9]{12,124}$/, 'an access key id looks like AKIA...'),
});
const page = <T extends z.ZodType>(item: T) =>
  z.object({ items: z.array(item), nextCursor: z.string().nullable() });
const quotaList = z.object({ items: z.array(S.quota) });
const selfOr = (ctx: RestContext, id: string) => (id === 'me' ? ctx.principal.userId : id);

export function iamRoutes(iam: IamService): RouteDef[] {
  return [
    route({
      method: 'POST',
      path: '/auth/login',
      operationId: 'login',
      summary: 'Sign in with a username and password; returns a session token (also set as a cookie).',
      tag: 'auth',
      public: true,
      body: S.loginBody,
      response: S.session,
      handler: async (ctx, { body }) => {
        const s = await iam.login(body, { sourceIp: ctx.sourceIp, requestId: ctx.requestId, kind: 'cli' });
        return s;
      },
    }),
    route({
      method: 'POST',
      path: '/auth/logout',
      operationId: 'logout',
      summary: 'End the current session.',
      tag: 'auth',
      status: 204,
      handler: async (ctx) => {
        if (ctx.sessionToken) await iam.logout(ctx, ctx.sessionToken);
      },
    }),
    route({
      method: 'GET',
      path: '/auth/whoami',
      operationId: 'whoami',
      summary: 'Who the caller is: user, tenant and role.',
      tag: 'auth',
      response: z.object({ user: S.user, tenant: S.tenant, via: z.string() }),
      handler: async (ctx) => ({
        user: await iam.getUser(ctx, ctx.principal.userId),
        tenant: await iam.getTenant(ctx, ctx.principal.tenantId),
        via: ctx.principal.via,
      }),
    }),
    route({
      method: 'PUT',
      path: '/users/me/preferences',
      operationId: 'setPreferences',
      summary: 'Set your own preferences: the portal language (en or zh-CN; null returns to the browser’s).',
      tag: 'auth',
      body: S.preferencesBody,
      response: S.preferences,
      handler: (ctx, { body }) => iam.setPreferences(ctx, body),
    }),
    route({
      method: 'POST',
      path: '/auth/password',
      operationId: 'changePassword',
      summary: 'Change your own password.',
      tag: 'auth',
      body: S.changePasswordBody,
      status: 204,
      handler: async (ctx, { body }) => iam.changePassword(ctx, body.currentPassword, body.newPassword),
    }),

    route({
      method: 'GET',
      path: '/tenants',
      operationId: 'listTenants',
      summary: 'List tenants (platform admins).',
      tag: 'tenants',
      query: pageQuery.extend({
        status: z.enum(['active', 'suspended']).optional(),
        search: z.string().max(64).optional(),
      }),
      response: page(S.tenant),
      handler: (ctx, { query }) => iam.listTenants(ctx, query),
    }),
    route({
      method: 'POST',
      path: '/tenants',
      operationId: 'createTenant',
      summary: 'Create a tenant with its quotas and, optionally, an owner user.',
      tag: 'tenants',
      body: S.createTenantBody,
      status: 201,
      response: z.object({ tenant: S.tenant, owner: S.user.nullable() }),
      handler: (ctx, { body }) => iam.createTenant(ctx, body),
    }),
    route({
      method: 'GET',
      path: '/tenants/{id}',
      operationId: 'getTenant',
      summary: 'Show a tenant by id, name or account id.',
      tag: 'tenants',
      params: tenantParam,
      response: S.tenant,
      handler: (ctx, { params }) => iam.getTenant(ctx, params.id),
    }),
    route({
      method: 'PATCH',
      path: '/tenants/{id}',
      operationId: 'updateTenant',
      summary: 'Rename, suspend or resume a tenant.',
      tag: 'tenants',
      params: tenantParam,
      body: S.updateTenantBody,
      response: S.tenant,
      handler: (ctx, { params, body }) => iam.updateTenant(ctx, params.id, body),
    }),
    route({
      method: 'DELETE',
      path: '/tenants/{id}',
      operationId: 'deleteTenant',
      summary: 'Delete an empty tenant.',
      tag: 'tenants',
      params: tenantParam,
      status: 204,
      handler: (ctx, { params }) => iam.deleteTenant(ctx, params.id),
    }),
    route({
      method: 'GET',
      path: '/tenants/{id}/quotas',
      operationId: 'getTenantQuotas',
      summary: "A tenant's quota limits and current use.",
      tag: 'quotas',
      params: tenantParam,
      response: quotaList,
      handler: async (ctx, { params }) => ({ items: await iam.getQuotas(ctx, params.id) }),
    }),
    route({
      method: 'PUT',
      path: '/tenants/{id}/quotas',
      operationId: 'setTenantQuotas',
      summary: `Set quota limits (-1 = unlimited). Resources: ${QUOTA_RESOURCES.join(', ')}.`,
      tag: 'quotas',
      params: tenantParam,
      body: S.setQuotasBody,
      response: quotaList,
      handler: async (ctx, { params, body }) => ({ items: await iam.setQuotas(ctx, params.id, body) }),
    }),
    route({
      method: 'GET',
      path: '/quotas',
      operationId: 'getQuotas',
      summary: "The caller's tenant quotas and current use.",
      tag: 'quotas',
      response: quotaList,
      handler: async (ctx) => ({ items: await iam.getQuotas(ctx) }),
    }),

    route({
      method: 'GET',
      path: '/users',
      operationId: 'listUsers',
      summary: "List users in the caller's tenant (platform admins may name another tenant).",
      tag: 'users',
      query: pageQuery.extend({
        tenantId: z.string().max(64).optional(),
        role: S.anyRole.optional(),
        pathPrefix: z.string().max(512).optional(),
        search: z.string().max(64).optional(),
      }),
      response: page(S.user),
      handler: (ctx, { query }) => iam.listUsers(ctx, query),
    }),
    route({
      method: 'POST',
      path: '/users',
      operationId: 'createUser',
      summary: 'Create a user.',
      tag: 'users',
      body: S.createUserBody,
      status: 201,
      response: S.user,
      handler: (ctx, { body }) => iam.createUser(ctx, body),
    }),
    route({
      method: 'GET',
      path: '/users/{id}',
      operationId: 'getUser',
      summary: 'Show a user.',
      tag: 'users',
      params: userIdParam,
      response: S.user,
      handler: (ctx, { params }) => iam.getUser(ctx, selfOr(ctx, params.id)),
    }),
    route({
      method: 'PATCH',
      path: '/users/{id}',
      operationId: 'updateUser',
      summary: "Change a user's role, display name or email.",
      tag: 'users',
      params: userIdParam,
      body: S.updateUserBody,
      response: S.user,
      handler: (ctx, { params, body }) => iam.updateUser(ctx, selfOr(ctx, params.id), body),
    }),
    route({
      method: 'DELETE',
      path: '/users/{id}',
      operationId: 'deleteUser',
      summary: 'Delete a user (with force=true, also their access keys).',
      tag: 'users',
      params: userIdParam,
      query: z.strictObject({ force: z.enum(['true', 'false']).optional() }),
      status: 204,
      handler: (ctx, { params, query }) =>
        iam.deleteUser(ctx, selfOr(ctx, params.id), { force: query.force === 'true' }),
    }),
    route({
      method: 'PUT',
      path: '/users/{id}/password',
      operationId: 'setUserPassword',
      summary: "Set a user's portal password (ends their sessions).",
      tag: 'users',
      params: userIdParam,
      body: S.setPasswordBody,
      status: 204,
      handler: (ctx, { params, body }) => iam.setPassword(ctx, selfOr(ctx, params.id), body.password),
    }),
    route({
      method: 'GET',
      path: '/users/{id}/access-keys',
      operationId: 'listAccessKeys',
      summary: "List a user's access keys (never the secrets).",
      tag: 'access-keys',
      params: userIdParam,
      response: page(S.accessKey),
      handler: (ctx, { params }) => iam.listAccessKeys(ctx, selfOr(ctx, params.id)),
    }),
    route({
      method: 'POST',
      path: '/users/{id}/access-keys',
      operationId: 'createAccessKey',
      summary: 'Create an access key; the secret is returned this once.',
      tag: 'access-keys',
      params: userIdParam,
      status: 201,
      response: S.accessKeyWithSecret,
      handler: (ctx, { params }) => iam.createAccessKey(ctx, selfOr(ctx, params.id)),
    }),
    route({
      method: 'PATCH',
      path: '/access-keys/{id}',
      operationId: 'updateAccessKey',
      summary: 'Activate or deactivate an access key.',
      tag: 'access-keys',
      params: keyParam,
      body: S.updateAccessKeyBody,
      response: S.accessKey,
      handler: (ctx, { params, body }) => iam.updateAccessKey(ctx, params.id, body.status),
    }),
    route({
      method: 'DELETE',
      path: '/access-keys/{id}',
      operationId: 'deleteAccessKey',
      summary: 'Delete an access key.',
      tag: 'access-keys',
      params: keyParam,
      status: 204,
      handler: (ctx, { params }) => iam.deleteAccessKey(ctx, params.id),
    }),
  ];
}
