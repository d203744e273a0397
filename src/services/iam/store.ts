import type { Conn } from '../../platform/db/database.js';

/** Queries of the IAM service. Only iam/service.ts calls these. */
export const userColumns = [
  'users.id',
  'users.tenant_id',
  'users.name',
  'users.unique_id',
  'users.path',
  'users.role',
  'users.display_name',
  'users.email',
  'users.password_hash',
  'users.created_at',
  'users.last_login_at',
  'users.locale',
  'tenants.account_id',
  'tenants.name as tenant_name',
  'tenants.status as tenant_status',
] as const;

export const usersWithTenant = (conn: Conn) =>
  conn.selectFrom('users').innerJoin('tenants', 'tenants.id', 'users.tenant_id').select(userColumns);

export type UserRow = Awaited<ReturnType<ReturnType<typeof usersWithTenant>['executeTakeFirstOrThrow']>>;

export const findUserById = (conn: Conn, id: string) =>
  usersWithTenant(conn).where('users.id', '=', id).executeTakeFirst();

export const findUserByName = (conn: Conn, tenantId: string, name: string) =>
  usersWithTenant(conn)
    .where('users.tenant_id', '=', tenantId)
    .where('users.name', '=', name)
    .executeTakeFirst();

export const findTenant = (conn: Conn, idOrNameOrAccount: string) =>
  conn
    .selectFrom('tenants')
    .selectAll()
    .where((eb) =>
      eb.or([
        eb('id', '=', idOrNameOrAccount),
        eb('name', '=', idOrNameOrAccount),
        eb('account_id', '=', idOrNameOrAccount),
      ]),
    )
    .executeTakeFirst();

export const keysOfUser = (conn: Conn, userId: string) =>
  conn
    .selectFrom('access_keys')
    .selectAll()
    .where('user_id', '=', userId)
    .orderBy('created_at')
    .orderBy('id')
    .execute();

export const findAccessKey = (conn: Conn, id: string) =>
  conn.selectFrom('access_keys').selectAll().where('id', '=', id).executeTakeFirst();

export const getSetting = async (conn: Conn, key: string) =>
  (await conn.selectFrom('settings').select('value').where('key', '=', key).executeTakeFirst())?.value;

export const putSetting = (conn: Conn, key: string, value: string) =>
  conn
    .insertInto('settings')
    .values({ key, value })
    .onConflict((oc) => oc.column('key').doUpdateSet({ value }))
    .execute();
