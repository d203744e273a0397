import { hash as argonHash, verify as argonVerify } from '@node-rs/argon2';
import type { z } from 'zod';
import { appendAudit, appendAuditAlone } from '../../platform/audit/audit.js';
import type { Sealer } from '../../platform/crypto/sealer.js';
import { type Database, isUniqueViolation, type Tx } from '../../platform/db/database.js';
import type { Role, TenantsTable } from '../../platform/db/schema.js';
import { containsIgnoringCase, startsWith } from '../../platform/db/text-match.js';
import { notFound, YunhaiError } from '../../platform/errors.js';
import { type Page, type PageQuery, stringCursor, toPage } from '../../platform/http/pagination.js';
import {
  newAccessKeyId,
  newAccountId,
  newId,
  newPassword,
  newSecretAccessKey,
  newToken,
  newUserUniqueId,
} from '../../platform/ids.js';
import type { Action, ResourceRef } from '../../platform/policy/authorize.js';
import { auditFor, guard as guardAndAudit } from '../../platform/policy/guard.js';
import { type Principal, type RequestContext, userArn } from '../../platform/policy/principal.js';
import {
  getQuotas,
  initQuotas,
  type QuotaResource,
  releaseQuota,
  reserveQuota,
  setQuotaLimit,
} from '../../platform/quota/quota.js';
import type * as S from './schema.js';
import {
  findAccessKey,
  findTenant,
  findUserById,
  findUserByName,
  getSetting,
  keysOfUser,
  putSetting,
  type UserRow,
  usersWithTenant,
} from './store.js';

/** AWS allows two access keys per IAM user; so do we. */
export const MAX_KEYS_PER_USER = 2;
export const SYSTEM_TENANT = 'system';
export const ROOT_USER = 'admin';
const DEFAULT_SESSION_TTL_MS = 12 * 3600 * 1000;
// A real argon2id hash of a random string, so unknown users cost as much as known ones.
const DUMMY_HASH =
  '$argon2id$v=19$m=19456,t=2,p=1$VeT9U7KXJRl5BIJTjLjXNg$r64t0RwF/9U0Zcqn425ZomdgFkobhTaV6QKciiceKXk';

export interface IamServiceDeps {
  database: Database;
  sealer: Sealer;
  sessionTtlMs?: number;
  now?: () => number;
}

/** What a verified access key resolves to, for the SigV4 check. */
export interface KeyCredential {
  secretAccessKey: string;
  principal: Principal;
  /** Set for STS temporary credentials: the X-Amz-Security-Token must match. */
  sessionTokenHash?: string;
}

export interface RootCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  username: string;
  password: string;
}

const iso = (ms: number) => new Date(ms).toISOString();

export function tenantView(t: TenantsTable): S.TenantView {
  return {
    id: t.id,
    accountId: t.account_id,
    name: t.name,
    displayName: t.display_name,
    status: t.status,
    createdAt: iso(t.created_at),
    updatedAt: iso(t.updated_at),
  };
}

export function userView(u: UserRow): S.UserView {
  return {
    id: u.id,
    tenantId: u.tenant_id,
    accountId: u.account_id,
    name: u.name,
    uniqueId: u.unique_id,
    arn: userArn(u.account_id, u.path, u.name),
    path: u.path,
    role: u.role,
    displayName: u.display_name,
    email: u.email,
    hasPassword: u.password_hash !== null,
    createdAt: iso(u.created_at),
    lastLoginAt: u.last_login_at === null ? null : iso(u.last_login_at),
    locale: u.locale === 'en' || u.locale === 'zh-CN' ? u.locale : null,
  };
}

export function principalOf(u: UserRow, via: Principal['via'], accessKeyId?: string): Principal {
  return {
    userId: u.id,
    userName: u.name,
    uniqueId: u.unique_id,
    tenantId: u.tenant_id,
    tenantName: u.tenant_name,
    tenantStatus: u.tenant_status,
    accountId: u.account_id,
    role: u.role,
    arn: userArn(u.account_id, u.path, u.name),
    via,
    ...(accessKeyId ? { accessKeyId } : {}),
  };
}

const hashPassword = (pw: string) => argonHash(pw, { algorithm: 2 /* Argon2id */ });

export function createIamService(deps: IamServiceDeps) {
  const { database, sealer } = deps;
  const now = deps.now ?? Date.now;
  const sessionTtl = deps.sessionTtlMs ?? DEFAULT_SESSION_TTL_MS;
  const lastUsedWritten = new Map<string, number>();

  const auditOf = auditFor;
  const guard = (ctx: RequestContext, action: Action, resource: ResourceRef, label: string) =>
    guardAndAudit(database, ctx, action, resource, label);

  /** Loads a user the caller may see; another tenant's user is reported as missing, never as forbidden. */
  async function visibleUser(ctx: RequestContext, id: string, action: Action): Promise<UserRow> {
    const u = await findUserById(database.db, id);
    if (!u || (ctx.principal.role !== 'platform-admin' && u.tenant_id !== ctx.principal.tenantId))
      throw notFound('User', id);
    await guard(ctx, action, { tenantId: u.tenant_id, ownerUserId: u.id }, `user/${u.name}`);
    return u;
  }

  async function visibleTenant(ctx: RequestContext, idOrName: string, action: Action) {
    const t = await findTenant(database.db, idOrName);
    if (!t || (ctx.principal.role !== 'platform-admin' && t.id !== ctx.principal.tenantId))
      throw notFound('Tenant', idOrName);
    await guard(ctx, action, { tenantId: t.id }, `tenant/${t.name}`);
    return t;
  }

  /** The tenant a call acts in: the caller's own, or (platform admins only) the one named. */
  async function targetTenant(ctx: RequestContext, tenantId: string | undefined, action: Action) {
    return visibleTenant(ctx, tenantId ?? ctx.principal.tenantId, action);
  }

  async function insertUser(
    trx: Tx,
    t: { id: string },
    input: {
      name: string;
      role: Role;
      path: string;
      displayName?: string;
      email?: string | null;
      passwordHash: string | null;
    },
  ) {
    const id = newId('usr');
    const ts = now();
    await reserveQuota(trx, t.id, 'users');
    try {
      await trx
        .insertInto('users')
        .values({
          id,
          tenant_id: t.id,
          name: input.name,
          unique_id: newUserUniqueId(),
          path: input.path,
          role: input.role,
          display_name: input.displayName ?? input.name,
          email: input.email ?? null,
          password_hash: input.passwordHash,
          created_at: ts,
          updated_at: ts,
          last_login_at: null,
        })
        .execute();
    } catch (e) {
      if (isUniqueViolation(e))
        throw new YunhaiError('AlreadyExists', `User with name ${input.name} already exists.`);
      throw e;
    }
    return id;
  }

  async function insertAccessKey(
    trx: Tx,
    u: { id: string; tenant_id: string },
    secret?: { id: string; secret: string },
  ) {
    const count = await trx
      .selectFrom('access_keys')
      .select((eb) => eb.fn.countAll<number | string>().as('n'))
      .where('user_id', '=', u.id)
      .executeTakeFirstOrThrow();
    if (Number(count.n) >= MAX_KEYS_PER_USER) {
      throw new YunhaiError(
        'LimitExceeded',
        `Cannot exceed quota for AccessKeysPerUser: ${MAX_KEYS_PER_USER}.`,
      );
    }
    await reserveQuota(trx, u.tenant_id, 'accessKeys');
    const id = secret?.id ?? newAccessKeyId();
    const secretAccessKey = secret?.secret ?? newSecretAccessKey();
    const ts = now();
    await trx
      .insertInto('access_keys')
      .values({
        id,
        user_id: u.id,
        tenant_id: u.tenant_id,
        secret_sealed: sealer.seal(secretAccessKey, `access-key:${id}`),
        status: 'Active',
        created_at: ts,
        last_used_at: null,
      })
      .execute();
    return { id, secretAccessKey, createdAt: ts };
  }

  const keyView = (
    k: {
      id: string;
      user_id: string;
      status: 'Active' | 'Inactive';
      created_at: number;
      last_used_at: number | null;
    },
    userName: string,
  ): S.AccessKeyView => ({
    accessKeyId: k.id,
    userId: k.user_id,
    userName,
    status: k.status,
    createdAt: iso(k.created_at),
    lastUsedAt: k.last_used_at === null ? null : iso(k.last_used_at),
  });

  return {
    /**
     * First start: the `system` tenant, its platform-admin user and the root access key.
     * Returns the credentials only when they were created now (they are shown once).
     */
    async bootstrap(
      opts: { accessKeyId?: string; secretAccessKey?: string; password?: string } = {},
    ): Promise<RootCredentials | null> {
      if ((await getSetting(database.db, 'bootstrap')) === 'done') return null;
      const creds: RootCredentials = {
        accessKeyId: opts.accessKeyId ?? newAccessKeyId(),
        secretAccessKey: opts.secretAccessKey ?? newSecretAccessKey(),
        username: ROOT_USER,
        password: opts.password ?? newPassword(),
      };
      if (!/^[A-Z0-9]{16,128}$/.test(creds.accessKeyId)) {
        throw new YunhaiError(
          'ValidationError',
          'YUNHAI_ROOT_ACCESS_KEY must be 16-128 uppercase letters and digits.',
        );
      }
      if (creds.secretAccessKey.length < 16)
        throw new YunhaiError('ValidationError', 'YUNHAI_ROOT_SECRET_KEY must be at least 16 characters.');
      const passwordHash = await hashPassword(creds.password);
      await database.tx(async (trx) => {
        if ((await getSetting(trx, 'bootstrap')) === 'done') return;
        const ts = now();
        const tenant = {
          id: newId('ten'),
          account_id: newAccountId(),
          name: SYSTEM_TENANT,
          display_name: 'Platform',
          status: 'active' as const,
          created_at: ts,
          updated_at: ts,
        };
        await trx.insertInto('tenants').values(tenant).execute();
        await initQuotas(trx, tenant.id, { users: -1, accessKeys: -1 });
        const userId = await insertUser(trx, tenant, {
          name: ROOT_USER,
          role: 'platform-admin',
          path: '/',
          displayName: 'Platform administrator',
          passwordHash,
        });
        await insertAccessKey(
          trx,
          { id: userId, tenant_id: tenant.id },
          { id: creds.accessKeyId, secret: creds.secretAccessKey },
        );
        await putSetting(trx, 'bootstrap', 'done');
        await appendAudit(trx, {
          tenantId: tenant.id,
          principal: 'system',
          action: 'platform:Bootstrap',
          resource: `tenant/${SYSTEM_TENANT}`,
          outcome: 'success',
          sourceIp: 'local',
          requestId: 'bootstrap',
          details: { accessKeyId: creds.accessKeyId },
        });
      });
      return creds;
    },

    /** The root platform administrator, for work the platform does on its own behalf. */
    async systemContext(requestId = 'system'): Promise<RequestContext> {
      const t = await findTenant(database.db, SYSTEM_TENANT);
      const u = t ? await findUserByName(database.db, t.id, ROOT_USER) : undefined;
      if (!u) throw new YunhaiError('InternalError', 'The platform has not been bootstrapped.');
      return { requestId, sourceIp: 'local', principal: principalOf(u, 'session') };
    },

    // ---- tenants -------------------------------------------------------------------------

    async createTenant(ctx: RequestContext, input: z.infer<typeof S.createTenantBody>) {
      await guard(ctx, 'iam:CreateTenant', { tenantId: null }, `tenant/${input.name}`);
      const passwordHash = input.owner?.password ? await hashPassword(input.owner.password) : null;
      return database.tx(async (trx) => {
        const ts = now();
        const row = {
          id: newId('ten'),
          account_id: newAccountId(),
          name: input.name,
          display_name: input.displayName ?? input.name,
          status: 'active' as const,
          created_at: ts,
          updated_at: ts,
        };
        try {
          await trx.insertInto('tenants').values(row).execute();
        } catch (e) {
          if (isUniqueViolation(e))
            throw new YunhaiError('AlreadyExists', `Tenant ${input.name} already exists.`);
          throw e;
        }
        await initQuotas(trx, row.id, input.quotas as Partial<Record<QuotaResource, number>>);
        let owner: S.UserView | null = null;
        if (input.owner) {
          const id = await insertUser(trx, row, {
            name: input.owner.name,
            role: 'owner',
            path: '/',
            email: input.owner.email,
            passwordHash,
          });
          owner = userView((await findUserById(trx, id))!);
        }
        await appendAudit(
          trx,
          auditOf(ctx, 'iam:CreateTenant', `tenant/${row.name}`, {
            details: { tenantId: row.id, owner: owner?.name },
          }),
        );
        return { tenant: tenantView(row), owner };
      });
    },

    async listTenants(
      ctx: RequestContext,
      q: PageQuery & { status?: 'active' | 'suspended'; search?: string },
    ): Promise<Page<S.TenantView>> {
      await guard(ctx, 'iam:ListTenants', { tenantId: null }, 'tenants');
      let query = database.db
        .selectFrom('tenants')
        .selectAll()
        .orderBy('name')
        .limit(q.limit + 1);
      const after = stringCursor(q.cursor);
      if (after !== undefined) query = query.where('name', '>', after);
      if (q.status) query = query.where('status', '=', q.status);
      if (q.search) query = query.where(containsIgnoringCase('name', q.search));
      return toPage(await query.execute(), q.limit, tenantView, (t) => [t.name]);
    },

    async getTenant(ctx: RequestContext, idOrName: string) {
      return tenantView(await visibleTenant(ctx, idOrName, 'iam:GetTenant'));
    },

    async updateTenant(ctx: RequestContext, idOrName: string, input: z.infer<typeof S.updateTenantBody>) {
      const t = await visibleTenant(ctx, idOrName, 'iam:UpdateTenant');
      if (t.name === SYSTEM_TENANT && input.status === 'suspended') {
        throw new YunhaiError('Conflict', 'The system tenant cannot be suspended.');
      }
      return database.tx(async (trx) => {
        const patch = {
          ...(input.displayName ? { display_name: input.displayName } : {}),
          ...(input.status ? { status: input.status } : {}),
          updated_at: now(),
        };
        await trx.updateTable('tenants').set(patch).where('id', '=', t.id).execute();
        const action =
          input.status === 'suspended'
            ? 'iam:SuspendTenant'
            : input.status === 'active' && t.status === 'suspended'
              ? 'iam:ResumeTenant'
              : 'iam:UpdateTenant';
        await appendAudit(trx, auditOf(ctx, action, `tenant/${t.name}`, { details: input }));
        return tenantView({ ...t, ...patch });
      });
    },

    async deleteTenant(ctx: RequestContext, idOrName: string) {
      const t = await visibleTenant(ctx, idOrName, 'iam:DeleteTenant');
      if (t.name === SYSTEM_TENANT) throw new YunhaiError('Conflict', 'The system tenant cannot be deleted.');
      await database.tx(async (trx) => {
        const inUse = await trx
          .selectFrom('quotas')
          .select(['resource', 'used'])
          .where('tenant_id', '=', t.id)
          .where('used', '>', 0)
          .execute();
        if (inUse.length > 0) {
          throw new YunhaiError(
            'DeleteConflict',
            `Tenant ${t.name} still has resources: ${inUse.map((r) => `${r.resource}=${r.used}`).join(', ')}. Delete them first.`,
          );
        }
        await trx.deleteFrom('quotas').where('tenant_id', '=', t.id).execute();
        await trx.deleteFrom('tenants').where('id', '=', t.id).execute();
        await appendAudit(
          trx,
          auditOf(ctx, 'iam:DeleteTenant', `tenant/${t.name}`, { details: { tenantId: t.id } }),
        );
      });
    },

    async getQuotas(ctx: RequestContext, tenantIdOrName?: string) {
      const t = await targetTenant(ctx, tenantIdOrName, 'iam:GetQuotas');
      return getQuotas(database.db, t.id);
    },

    async setQuotas(ctx: RequestContext, tenantIdOrName: string, limits: Partial<Record<string, number>>) {
      const t = await visibleTenant(ctx, tenantIdOrName, 'iam:SetQuota');
      return database.tx(async (trx) => {
        for (const [resource, limit] of Object.entries(limits)) {
          if (limit !== undefined) await setQuotaLimit(trx, t.id, resource as QuotaResource, limit);
        }
        await appendAudit(trx, auditOf(ctx, 'iam:SetQuota', `tenant/${t.name}`, { details: { limits } }));
        return getQuotas(trx, t.id);
      });
    },

    // ---- users ---------------------------------------------------------------------------

    async createUser(ctx: RequestContext, input: z.input<typeof S.createUserBody>) {
      const t = await findTenant(database.db, input.tenantId ?? ctx.principal.tenantId);
      if (!t || (ctx.principal.role !== 'platform-admin' && t.id !== ctx.principal.tenantId))
        throw notFound('Tenant', input.tenantId ?? '');
      await guard(ctx, 'iam:CreateUser', { tenantId: t.id }, `user/${input.name}`);
      const passwordHash = input.password ? await hashPassword(input.password) : null;
      return database.tx(async (trx) => {
        const id = await insertUser(trx, t, {
          name: input.name,
          role: input.role ?? 'member',
          path: input.path ?? '/',
          displayName: input.displayName,
          email: input.email,
          passwordHash,
        });
        await appendAudit(
          trx,
          auditOf(ctx, 'iam:CreateUser', `user/${input.name}`, {
            tenantId: t.id,
            details: { userId: id, role: input.role ?? 'member' },
          }),
        );
        return userView((await findUserById(trx, id))!);
      });
    },

    async listUsers(
      ctx: RequestContext,
      q: PageQuery & { tenantId?: string; pathPrefix?: string; role?: Role; search?: string },
    ): Promise<Page<S.UserView>> {
      const t = await targetTenant(ctx, q.tenantId, 'iam:ListUsers');
      let query = usersWithTenant(database.db)
        .where('users.tenant_id', '=', t.id)
        .orderBy('users.name')
        .limit(q.limit + 1);
      const after = stringCursor(q.cursor);
      if (after !== undefined) query = query.where('users.name', '>', after);
      if (q.pathPrefix) query = query.where(startsWith('users.path', q.pathPrefix));
      if (q.role) query = query.where('users.role', '=', q.role);
      if (q.search) query = query.where(containsIgnoringCase('users.name', q.search));
      return toPage(await query.execute(), q.limit, userView, (u) => [u.name]);
    },

    async getUser(ctx: RequestContext, id: string) {
      return userView(await visibleUser(ctx, id, 'iam:GetUser'));
    },

    /** Resolves a user by name in the caller's tenant (IAM Query API addresses users by name). */
    async userIdByName(ctx: RequestContext, name: string | undefined): Promise<string> {
      if (name === undefined) return ctx.principal.userId;
      const u = await findUserByName(database.db, ctx.principal.tenantId, name);
      if (!u) throw new YunhaiError('NotFound', `The user with name ${name} cannot be found.`);
      return u.id;
    },

    async updateUser(ctx: RequestContext, id: string, input: z.infer<typeof S.updateUserBody>) {
      const u = await visibleUser(ctx, id, 'iam:UpdateUser');
      if (u.role === 'platform-admin' && input.role)
        throw new YunhaiError('Conflict', 'The platform administrator role cannot be changed.');
      return database.tx(async (trx) => {
        await trx
          .updateTable('users')
          .set({
            ...(input.role ? { role: input.role } : {}),
            ...(input.displayName !== undefined ? { display_name: input.displayName } : {}),
            ...(input.email !== undefined ? { email: input.email } : {}),
            updated_at: now(),
          })
          .where('id', '=', u.id)
          .execute();
        await appendAudit(
          trx,
          auditOf(ctx, 'iam:UpdateUser', `user/${u.name}`, { tenantId: u.tenant_id, details: input }),
        );
        return userView((await findUserById(trx, u.id))!);
      });
    },

    /** Deletes a user. Like AWS IAM, refuses while the user still has access keys unless `force`. */
    async deleteUser(ctx: RequestContext, id: string, opts: { force?: boolean } = {}) {
      const u = await visibleUser(ctx, id, 'iam:DeleteUser');
      if (u.id === ctx.principal.userId) throw new YunhaiError('Conflict', 'You cannot delete yourself.');
      if (u.role === 'platform-admin' && u.tenant_name === SYSTEM_TENANT && u.name === ROOT_USER) {
        throw new YunhaiError('Conflict', 'The root platform administrator cannot be deleted.');
      }
      await database.tx(async (trx) => {
        const keys = await keysOfUser(trx, u.id);
        if (keys.length > 0 && !opts.force) {
          throw new YunhaiError('DeleteConflict', 'Cannot delete entity, must delete access keys first.');
        }
        await trx.deleteFrom('access_keys').where('user_id', '=', u.id).execute();
        await releaseQuota(trx, u.tenant_id, 'accessKeys', keys.length);
        await trx.deleteFrom('sessions').where('user_id', '=', u.id).execute();
        await trx.deleteFrom('users').where('id', '=', u.id).execute();
        await releaseQuota(trx, u.tenant_id, 'users');
        await appendAudit(
          trx,
          auditOf(ctx, 'iam:DeleteUser', `user/${u.name}`, {
            tenantId: u.tenant_id,
            details: { userId: u.id, keysDeleted: keys.length },
          }),
        );
      });
    },

    /** An owner or admin sets another user's password; ends that user's sessions. */
    async setPassword(ctx: RequestContext, id: string, pw: string) {
      const u = await visibleUser(ctx, id, 'iam:SetPassword');
      const passwordHash = await hashPassword(pw);
      await database.tx(async (trx) => {
        await trx
          .updateTable('users')
          .set({ password_hash: passwordHash, updated_at: now() })
          .where('id', '=', u.id)
          .execute();
        await trx.deleteFrom('sessions').where('user_id', '=', u.id).where('kind', '!=', 'sts').execute();
        await appendAudit(trx, auditOf(ctx, 'iam:SetPassword', `user/${u.name}`, { tenantId: u.tenant_id }));
      });
    },

    /** A user changes their own password, proving the current one; other sessions end. */
    async changePassword(ctx: RequestContext, currentPassword: string, newPassword: string) {
      const u = await visibleUser(ctx, ctx.principal.userId, 'iam:ChangePassword');
      if (!u.password_hash || !(await argonVerify(u.password_hash, currentPassword))) {
        await appendAuditAlone(
          database,
          auditOf(ctx, 'iam:ChangePassword', `user/${u.name}`, {
            outcome: 'failure',
            errorCode: 'Unauthenticated',
          }),
        );
        throw new YunhaiError('Unauthenticated', 'The current password is incorrect.');
      }
      const passwordHash = await hashPassword(newPassword);
      await database.tx(async (trx) => {
        await trx
          .updateTable('users')
          .set({ password_hash: passwordHash, updated_at: now() })
          .where('id', '=', u.id)
          .execute();
        await appendAudit(trx, auditOf(ctx, 'iam:ChangePassword', `user/${u.name}`));
      });
    },

    /** The caller's own preferences (the portal language); null clears one. Audited. */
    async setPreferences(ctx: RequestContext, input: { locale?: S.Locale | null }) {
      const u = await visibleUser(ctx, ctx.principal.userId, 'iam:ChangePassword');
      await database.tx(async (trx) => {
        if (input.locale !== undefined)
          await trx
            .updateTable('users')
            .set({ locale: input.locale, updated_at: now() })
            .where('id', '=', u.id)
            .execute();
        await appendAudit(
          trx,
          auditOf(ctx, 'iam:SetPreferences', `user/${u.name}`, { tenantId: u.tenant_id, details: input }),
        );
      });
      const after = (await findUserById(database.db, u.id))!;
      return { locale: userView(after).locale };
    },

    // ---- access keys ---------------------------------------------------------------------

    async createAccessKey(ctx: RequestContext, userId: string) {
      const u = await visibleUser(ctx, userId, 'iam:CreateAccessKey');
      return database.tx(async (trx) => {
        const k = await insertAccessKey(trx, u);
        await appendAudit(
          trx,
          auditOf(ctx, 'iam:CreateAccessKey', `user/${u.name}/access-key/${k.id}`, { tenantId: u.tenant_id }),
        );
        return {
          ...keyView(
            { id: k.id, user_id: u.id, status: 'Active', created_at: k.createdAt, last_used_at: null },
            u.name,
          ),
          secretAccessKey: k.secretAccessKey,
        };
      });
    },

    async listAccessKeys(ctx: RequestContext, userId: string): Promise<Page<S.AccessKeyView>> {
      const u = await visibleUser(ctx, userId, 'iam:ListAccessKeys');
      const keys = await keysOfUser(database.db, u.id);
      return { items: keys.map((k) => keyView(k, u.name)), nextCursor: null };
    },

    /** Finds a key the caller may manage and returns it with its owner. */
    async accessKeyOwner(ctx: RequestContext, accessKeyId: string, action: Action) {
      const k = await findAccessKey(database.db, accessKeyId);
      if (!k || (ctx.principal.role !== 'platform-admin' && k.tenant_id !== ctx.principal.tenantId)) {
        throw new YunhaiError('NotFound', `The Access Key with id ${accessKeyId} cannot be found.`);
      }
      const u = await visibleUser(ctx, k.user_id, action);
      return { key: k, user: u };
    },

    async updateAccessKey(ctx: RequestContext, accessKeyId: string, status: 'Active' | 'Inactive') {
      const { key, user } = await this.accessKeyOwner(ctx, accessKeyId, 'iam:UpdateAccessKey');
      return database.tx(async (trx) => {
        await trx.updateTable('access_keys').set({ status }).where('id', '=', key.id).execute();
        await appendAudit(
          trx,
          auditOf(ctx, 'iam:UpdateAccessKey', `user/${user.name}/access-key/${key.id}`, {
            tenantId: key.tenant_id,
            details: { status },
          }),
        );
        return keyView({ ...key, status }, user.name);
      });
    },

    async deleteAccessKey(ctx: RequestContext, accessKeyId: string) {
      const { key, user } = await this.accessKeyOwner(ctx, accessKeyId, 'iam:DeleteAccessKey');
      if (key.id === ctx.principal.accessKeyId) {
        throw new YunhaiError('Conflict', 'You cannot delete the access key this request is signed with.');
      }
      await database.tx(async (trx) => {
        await trx.deleteFrom('access_keys').where('id', '=', key.id).execute();
        await releaseQuota(trx, key.tenant_id, 'accessKeys');
        await appendAudit(
          trx,
          auditOf(ctx, 'iam:DeleteAccessKey', `user/${user.name}/access-key/${key.id}`, {
            tenantId: key.tenant_id,
          }),
        );
      });
    },

    // ---- authentication ------------------------------------------------------------------

    /** Resolves an access key id (long-term `AKIA...` or STS `ASIA...`) to its secret and principal. */
    async credentialForKey(accessKeyId: string): Promise<KeyCredential | null> {
      const k = await database.db
        .selectFrom('access_keys')
        .select(['id', 'user_id', 'secret_sealed', 'status', 'last_used_at'])
        .where('id', '=', accessKeyId)
        .executeTakeFirst();
      if (k) {
        if (k.status !== 'Active') return null;
        const u = await findUserById(database.db, k.user_id);
        if (!u) return null;
        const ts = now();
        if ((lastUsedWritten.get(k.id) ?? k.last_used_at ?? 0) < ts - 60_000) {
          lastUsedWritten.set(k.id, ts);
          await database.db
            .updateTable('access_keys')
            .set({ last_used_at: ts })
            .where('id', '=', k.id)
            .execute();
        }
        return {
          secretAccessKey: sealer.open(k.secret_sealed, `access-key:${k.id}`).toString('utf8'),
          principal: principalOf(u, 'sigv4', k.id),
        };
      }
      const s = await database.db
        .selectFrom('sessions')
        .select(['user_id', 'secret_sealed', 'token_hash', 'expires_at'])
        .where('access_key_id', '=', accessKeyId)
        .where('kind', '=', 'sts')
        .executeTakeFirst();
      if (!s || s.expires_at <= now() || !s.secret_sealed) return null;
      const u = await findUserById(database.db, s.user_id);
      if (!u) return null;
      return {
        secretAccessKey: sealer.open(s.secret_sealed, `sts:${accessKeyId}`).toString('utf8'),
        principal: principalOf(u, 'sts', accessKeyId),
        sessionTokenHash: s.token_hash,
      };
    },

    /** Password sign-in. `username` may be `user@tenant`; without a tenant the system tenant is meant. */
    async login(
      input: z.infer<typeof S.loginBody>,
      meta: { sourceIp: string; requestId: string; kind?: 'portal' | 'cli' },
    ) {
      let { username, tenant } = input;
      if (tenant === undefined && username.includes('@')) {
        const at = username.lastIndexOf('@');
        tenant = username.slice(at + 1);
        username = username.slice(0, at);
      }
      const t = await findTenant(database.db, tenant ?? SYSTEM_TENANT);
      const u = t ? await findUserByName(database.db, t.id, username) : undefined;
      const ok = await argonVerify(u?.password_hash ?? DUMMY_HASH, input.password).catch(() => false);
      if (!u?.password_hash || !ok) {
        await appendAuditAlone(database, {
          tenantId: t?.id ?? null,
          principal: `${tenant ?? SYSTEM_TENANT}:${username}`.slice(0, 300),
          action: 'iam:Login',
          resource: `user/${username}`.slice(0, 300),
          outcome: 'failure',
          errorCode: 'Unauthenticated',
          sourceIp: meta.sourceIp,
          requestId: meta.requestId,
        });
        throw new YunhaiError('Unauthenticated', 'Incorrect username or password.');
      }
      const token = newToken('yhs');
      const ts = now();
      const expiresAt = ts + sessionTtl;
      await database.tx(async (trx) => {
        await trx
          .insertInto('sessions')
          .values({
            id: newId('ses'),
            token_hash: sealer.mac(token),
            user_id: u.id,
            tenant_id: u.tenant_id,
            kind: meta.kind ?? 'portal',
            access_key_id: null,
            secret_sealed: null,
            created_at: ts,
            expires_at: expiresAt,
          })
          .execute();
        await trx.updateTable('users').set({ last_login_at: ts }).where('id', '=', u.id).execute();
        await trx.deleteFrom('sessions').where('expires_at', '<', ts).execute();
        await appendAudit(trx, {
          tenantId: u.tenant_id,
          principal: `${u.account_id}:${u.name}`,
          action: 'iam:Login',
          resource: `user/${u.name}`,
          outcome: 'success',
          sourceIp: meta.sourceIp,
          requestId: meta.requestId,
        });
      });
      return { token, expiresAt: iso(expiresAt), user: userView({ ...u, last_login_at: ts }) };
    },

    /** Resolves a bearer session token; null when unknown or expired. */
    async principalForToken(token: string): Promise<Principal | null> {
      const s = await database.db
        .selectFrom('sessions')
        .select(['user_id', 'expires_at', 'kind'])
        .where('token_hash', '=', sealer.mac(token))
        .executeTakeFirst();
      if (!s || s.kind === 'sts' || s.expires_at <= now()) return null;
      const u = await findUserById(database.db, s.user_id);
      return u ? principalOf(u, 'session') : null;
    },

    async logout(ctx: RequestContext, token: string) {
      await database.tx(async (trx) => {
        await trx.deleteFrom('sessions').where('token_hash', '=', sealer.mac(token)).execute();
        await appendAudit(trx, auditOf(ctx, 'iam:Logout', `user/${ctx.principal.userName}`));
      });
    },

    /** STS GetSessionToken: temporary credentials for the caller, valid `durationSeconds`. */
    async createSessionCredentials(ctx: RequestContext, durationSeconds: number) {
      if (ctx.principal.via === 'sts') {
        throw new YunhaiError('AccessDenied', 'Cannot call GetSessionToken with session credentials.');
      }
      const accessKeyId = newAccessKeyId(true);
      const secretAccessKey = newSecretAccessKey();
      const sessionToken = newToken('yht');
      const ts = now();
      const expiresAt = ts + durationSeconds * 1000;
      await database.tx(async (trx) => {
        await trx
          .insertInto('sessions')
          .values({
            id: newId('ses'),
            token_hash: sealer.mac(sessionToken),
            user_id: ctx.principal.userId,
            tenant_id: ctx.principal.tenantId,
            kind: 'sts',
            access_key_id: accessKeyId,
            secret_sealed: sealer.seal(secretAccessKey, `sts:${accessKeyId}`),
            created_at: ts,
            expires_at: expiresAt,
          })
          .execute();
        await trx.deleteFrom('sessions').where('expires_at', '<', ts).execute();
        await appendAudit(
          trx,
          auditOf(ctx, 'sts:GetSessionToken', `user/${ctx.principal.userName}`, {
            details: { accessKeyId, durationSeconds },
          }),
        );
      });
      return { accessKeyId, secretAccessKey, sessionToken, expiration: iso(expiresAt) };
    },

    /** Writes a failed-authentication audit row (bad signature, unknown key, bad token). */
    async auditAuthFailure(meta: {
      sourceIp: string;
      requestId: string;
      principal: string;
      action: string;
      errorCode: string;
      tenantId?: string | null;
    }) {
      await appendAuditAlone(database, {
        tenantId: meta.tenantId ?? null,
        principal: meta.principal.slice(0, 300),
        action: meta.action,
        resource: 'authentication',
        outcome: 'failure',
        errorCode: meta.errorCode,
        sourceIp: meta.sourceIp,
        requestId: meta.requestId,
      });
    },
  };
}

export type IamService = ReturnType<typeof createIamService>;
