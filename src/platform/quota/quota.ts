import type { Conn, Tx } from '../db/database.js';
import { YunhaiError } from '../errors.js';

/**
 * Per-tenant limits. A create reserves its amount with one conditional UPDATE inside the same
 * transaction as the create, so concurrent creates can never push `used` past `limit_value`
 * (PostgreSQL re-checks the WHERE clause against the committed row; SQLite has one writer).
 * A limit of -1 means unlimited.
 */
export const QUOTA_DEFAULTS = {
  users: 100,
  accessKeys: 200,
  instances: 20,
  vcpus: 40,
  memoryMiB: 80 * 1024,
  volumes: 50,
  volumeGiB: 2000,
  snapshots: 100,
  storageBytes: 1024 ** 4,
  buckets: 100,
  queues: 1000,
  fileShares: 20,
} as const;

export type QuotaResource = keyof typeof QUOTA_DEFAULTS;
export const QUOTA_RESOURCES = Object.keys(QUOTA_DEFAULTS) as QuotaResource[];
export const isQuotaResource = (r: string): r is QuotaResource => r in QUOTA_DEFAULTS;

export interface QuotaRow {
  resource: QuotaResource;
  limit: number;
  used: number;
}

export async function initQuotas(
  trx: Tx,
  tenantId: string,
  overrides: Partial<Record<QuotaResource, number>> = {},
  now = Date.now(),
) {
  await trx
    .insertInto('quotas')
    .values(
      QUOTA_RESOURCES.map((resource) => ({
        tenant_id: tenantId,
        resource,
        limit_value: overrides[resource] ?? QUOTA_DEFAULTS[resource],
        used: 0,
        updated_at: now,
      })),
    )
    .execute();
}

/**
 * A check every reservation passes before its limit is looked at, in the create's transaction:
 * billing refuses the creates of a prepaid tenant out of balance here, so no service needs its own hook.
 * Throwing refuses the create.
 */
export type QuotaGate = (trx: Tx, tenantId: string, resource: QuotaResource, amount: number) => Promise<void>;
const QUOTA_GATES = new Set<QuotaGate>();

/** Adds a gate; answers the function that removes it again. */
export function addQuotaGate(gate: QuotaGate): () => void {
  QUOTA_GATES.add(gate);
  return () => {
    QUOTA_GATES.delete(gate);
  };
}

/** The gates alone, for a hot path that runs the reservation's UPDATE itself (object PUTs on SQLite). */
export async function runQuotaGates(trx: Tx, tenantId: string, resource: QuotaResource, amount: number) {
  for (const gate of QUOTA_GATES) await gate(trx, tenantId, resource, amount);
}

export async function reserveQuota(
  trx: Tx,
  tenantId: string,
  resource: QuotaResource,
  amount = 1,
): Promise<void> {
  if (amount <= 0) return;
  for (const gate of QUOTA_GATES) await gate(trx, tenantId, resource, amount);
  const res = await trx
    .updateTable('quotas')
    .set((eb) => ({ used: eb('used', '+', amount), updated_at: Date.now() }))
    .where('tenant_id', '=', tenantId)
    .where('resource', '=', resource)
    .where((eb) =>
      eb.or([eb('limit_value', '<', 0), eb(eb('used', '+', amount), '<=', eb.ref('limit_value'))]),
    )
    .executeTakeFirst();
  if (Number(res.numUpdatedRows) === 1) return;
  const row = await trx
    .selectFrom('quotas')
    .select(['limit_value', 'used'])
    .where('tenant_id', '=', tenantId)
    .where('resource', '=', resource)
    .executeTakeFirst();
  if (!row) throw new YunhaiError('InternalError', `tenant ${tenantId} has no quota row for ${resource}`);
  throw new YunhaiError(
    'QuotaExceeded',
    `Quota exceeded for ${resource}: limit ${row.limit_value}, in use ${row.used}, requested ${amount}.`,
    { resource, limit: row.limit_value, used: row.used, requested: amount },
  );
}

export async function releaseQuota(
  trx: Tx,
  tenantId: string,
  resource: QuotaResource,
  amount = 1,
): Promise<void> {
  if (amount <= 0) return;
  await trx
    .updateTable('quotas')
    .set((eb) => ({
      used: eb
        .case()
        .when('used', '>=', amount)
        .then(eb('used', '-', amount))
        .else(0)
        .end(),
      updated_at: Date.now(),
    }))
    .where('tenant_id', '=', tenantId)
    .where('resource', '=', resource)
    .execute();
}

export async function getQuotas(conn: Conn, tenantId: string): Promise<QuotaRow[]> {
  const rows = await conn
    .selectFrom('quotas')
    .select(['resource', 'limit_value', 'used'])
    .where('tenant_id', '=', tenantId)
    .orderBy('resource')
    .execute();
  return rows
    .filter((r) => isQuotaResource(r.resource))
    .map((r) => ({ resource: r.resource as QuotaResource, limit: r.limit_value, used: r.used }));
}

/** Sets a limit. Lowering it below current use is allowed (nothing new fits until use drops). */
export async function setQuotaLimit(
  trx: Tx,
  tenantId: string,
  resource: QuotaResource,
  limit: number,
): Promise<void> {
  const res = await trx
    .updateTable('quotas')
    .set({ limit_value: limit, updated_at: Date.now() })
    .where('tenant_id', '=', tenantId)
    .where('resource', '=', resource)
    .executeTakeFirst();
  if (Number(res.numUpdatedRows) === 0) {
    await trx
      .insertInto('quotas')
      .values({ tenant_id: tenantId, resource, limit_value: limit, used: 0, updated_at: Date.now() })
      .execute();
  }
}
