import { z } from 'zod';
import type { Database } from '../../platform/db/database.js';
import { YunhaiError } from '../../platform/errors.js';
import { pageQuery, stringCursor, toPage } from '../../platform/http/pagination.js';
import { type RestContext, type RouteDef, route } from '../../platform/http/rest.js';
import { authorize, requireAllowed } from '../../platform/policy/authorize.js';

/**
 * Read-only REST view of buckets for the CLI, the portal and operators (the S3 listener is where
 * buckets are created and filled). A caller sees its own tenant's buckets; a platform admin sees
 * every tenant's, or one tenant's with `?tenant=` (id or name). Figures come from the bucket row's
 * counters, which every write transaction keeps exact.
 */
const bucketView = z.object({
  name: z.string(),
  tenantId: z.string(),
  tenantName: z.string(),
  accountId: z.string(),
  region: z.string(),
  /** `Disabled` for a bucket that never had versioning on (S3 answers an empty status there). */
  versioning: z.enum(['Disabled', 'Enabled', 'Suspended']),
  objectLockEnabled: z.boolean(),
  /** Stored object versions, delete markers included (what the bucket's counter holds). */
  objectCount: z.number(),
  /** Bytes of every stored version and every uploaded multipart part. */
  sizeBytes: z.number(),
  createdAt: z.string(),
});
const bucketDetail = bucketView.extend({
  /** Keys whose latest version is an object (not a delete marker). */
  currentObjects: z.number(),
  /** Multipart uploads started and neither completed nor aborted. */
  multipartUploads: z.number(),
});

interface Row {
  name: string;
  tenant_id: string;
  tenant_name: string;
  account_id: string;
  region: string;
  versioning: '' | 'Enabled' | 'Suspended';
  object_lock_enabled: number;
  object_count: number;
  bytes_stored: number;
  created_at: number;
}

const view = (r: Row): z.infer<typeof bucketView> => ({
  name: r.name,
  tenantId: r.tenant_id,
  tenantName: r.tenant_name,
  accountId: r.account_id,
  region: r.region,
  versioning: r.versioning === '' ? 'Disabled' : r.versioning,
  objectLockEnabled: r.object_lock_enabled === 1,
  objectCount: r.object_count,
  sizeBytes: r.bytes_stored,
  createdAt: new Date(r.created_at).toISOString(),
});

export function bucketRoutes(database: Database): RouteDef[] {
  const base = () =>
    database.db
      .selectFrom('buckets')
      .innerJoin('tenants', 'tenants.id', 'buckets.tenant_id')
      .select([
        'buckets.name as name',
        'buckets.tenant_id as tenant_id',
        'tenants.name as tenant_name',
        'tenants.account_id as account_id',
        'buckets.region as region',
        'buckets.versioning as versioning',
        'buckets.object_lock_enabled as object_lock_enabled',
        'buckets.object_count as object_count',
        'buckets.bytes_stored as bytes_stored',
        'buckets.created_at as created_at',
      ]);

  /** The tenant whose buckets a listing shows; undefined = every tenant (platform admins only). */
  async function scope(ctx: RestContext, tenant: string | undefined): Promise<string | undefined> {
    const p = ctx.principal;
    if (p.role !== 'platform-admin') {
      if (tenant !== undefined && tenant !== p.tenantId && tenant !== p.tenantName)
        requireAllowed(p, 's3:ListAllMyBuckets', { tenantId: null });
      requireAllowed(p, 's3:ListAllMyBuckets', { tenantId: p.tenantId });
      return p.tenantId;
    }
    if (tenant === undefined) return undefined;
    const t = await database.db
      .selectFrom('tenants')
      .select('id')
      .where((eb) => eb.or([eb('id', '=', tenant), eb('name', '=', tenant)]))
      .executeTakeFirst();
    if (!t) throw new YunhaiError('NotFound', `Tenant '${tenant}' does not exist.`);
    return t.id;
  }

  return [
    route({
      method: 'GET',
      path: '/buckets',
      operationId: 'listBuckets',
      summary:
        'Buckets of your tenant, by name, with their size and object count. A platform admin sees every tenant’s, or one tenant’s with ?tenant= (id or name).',
      tag: 'objects',
      query: pageQuery.extend({ tenant: z.string().min(1).max(64).optional() }),
      response: z.object({ items: z.array(bucketView), nextCursor: z.string().nullable() }),
      handler: async (ctx, { query }) => {
        const tenantId = await scope(ctx, query.tenant);
        const after = stringCursor(query.cursor);
        let q = base()
          .orderBy('buckets.name')
          .limit(query.limit + 1);
        if (tenantId !== undefined) q = q.where('buckets.tenant_id', '=', tenantId);
        if (after !== undefined) q = q.where('buckets.name', '>', after);
        const rows = (await q.execute()) as Row[];
        return toPage(rows, query.limit, view, (r) => [r.name]);
      },
    }),
    route({
      method: 'GET',
      path: '/buckets/{name}',
      operationId: 'getBucket',
      summary: 'One bucket: region, versioning, object lock, size, object counts and open multipart uploads.',
      tag: 'objects',
      params: z.strictObject({ name: z.string().min(1).max(255) }),
      response: bucketDetail,
      handler: async (ctx, { params }) => {
        const row = (await base().where('buckets.name', '=', params.name).executeTakeFirst()) as
          | Row
          | undefined;
        // Another tenant's bucket is as invisible here as a missing one.
        if (!row || !authorize(ctx.principal, 's3:ListBucket', { tenantId: row.tenant_id }).allowed)
          throw new YunhaiError('NotFound', `Bucket '${params.name}' does not exist.`);
        const [current, uploads] = await Promise.all([
          database.db
            .selectFrom('objects')
            .select((eb) => eb.fn.countAll<number>().as('n'))
            .where('bucket', '=', row.name)
            .where('is_latest', '=', 1)
            .where('delete_marker', '=', 0)
            .executeTakeFirst(),
          database.db
            .selectFrom('multipart_uploads')
            .select((eb) => eb.fn.countAll<number>().as('n'))
            .where('bucket', '=', row.name)
            .executeTakeFirst(),
        ]);
        return {
          ...view(row),
          currentObjects: Number(current?.n ?? 0),
          multipartUploads: Number(uploads?.n ?? 0),
        };
      },
    }),
  ];
}
