/** SQL for object storage: buckets, object versions, multipart uploads. Both dialects. */
import type { Conn, Database, Tx } from '../../platform/db/database.js';
import { prepared } from '../../platform/db/prepared.js';
import type { BucketsTable, ObjectPartsTable, ObjectsTable } from '../../platform/db/schema.js';
import type { ListCursor } from './listing.js';
import { prefixSuccessor } from './listing.js';

export type BucketRow = BucketsTable & { account_id: string; tenant_name: string };
/**
 * A version row. `body` (an inline body) is loaded only where it is read: `undefined` means "not
 * selected", null means the version has none (its body is a blob or parts, or it is a marker).
 */
export type ObjectRow = Omit<ObjectsTable, 'body'> & { body?: Buffer | null };

/** Every column of `objects` but the inline body: listings and scans never need bodies. */
export const OBJECT_META_COLUMNS = [
  'id',
  'bucket',
  'key',
  'version_id',
  'seq',
  'is_latest',
  'delete_marker',
  'blob_id',
  'size',
  'etag',
  'parts_count',
  'content_type',
  'content_encoding',
  'content_disposition',
  'content_language',
  'cache_control',
  'expires',
  'metadata',
  'tags',
  'storage_class',
  'checksum_algorithm',
  'checksum_value',
  'checksum_type',
  'sse',
  'lock_mode',
  'lock_until',
  'legal_hold',
  'acl',
  'owner_tenant_id',
  'last_modified',
] as const satisfies readonly (keyof ObjectsTable)[];

/** True when the version's body is stored in its row (neither a blob nor parts). */
export const isInline = (row: Pick<ObjectRow, 'blob_id' | 'parts_count' | 'delete_marker'>) =>
  row.blob_id === null && row.parts_count === null && row.delete_marker === 0;

export async function findBucket(conn: Conn, name: string): Promise<BucketRow | undefined> {
  return conn
    .selectFrom('buckets')
    .innerJoin('tenants', 'tenants.id', 'buckets.tenant_id')
    .selectAll('buckets')
    .select(['tenants.account_id as account_id', 'tenants.name as tenant_name'])
    .where('buckets.name', '=', name)
    .executeTakeFirst();
}

/**
 * Reads the bucket row inside a transaction and locks it (PostgreSQL `FOR UPDATE`; SQLite has one
 * writer): every change to a bucket's objects takes this lock first, which serialises writers of
 * the same bucket so `is_latest` and the counters stay exact.
 */
export async function lockBucket(trx: Tx, dialect: Database['dialect'], name: string) {
  let q = trx.selectFrom('buckets').selectAll().where('name', '=', name);
  if (dialect === 'postgres') q = q.forUpdate();
  return q.executeTakeFirst();
}

/** The bucket's counters after accruing storage byte-seconds up to `now` and applying a change. */
export function bucketUsageColumns(
  b: Pick<BucketsTable, 'bytes_stored' | 'object_count' | 'accrued_byte_seconds' | 'accrued_at'>,
  now: number,
  change: { bytes: number; objects: number },
) {
  const accrued = Math.min(
    Number.MAX_SAFE_INTEGER,
    b.accrued_byte_seconds + Math.floor((b.bytes_stored * Math.max(0, now - b.accrued_at)) / 1000),
  );
  return {
    bytes_stored: Math.max(0, b.bytes_stored + change.bytes),
    object_count: Math.max(0, b.object_count + change.objects),
    accrued_byte_seconds: accrued,
    accrued_at: Math.max(now, b.accrued_at),
  };
}

/** Accrues storage byte-seconds up to `now` and applies changes to the counters. */
export async function updateBucketUsage(
  trx: Tx,
  b: BucketsTable,
  now: number,
  change: { bytes: number; objects: number },
) {
  await trx
    .updateTable('buckets')
    .set(bucketUsageColumns(b, now, change))
    .where('name', '=', b.name)
    .execute();
}

/** The latest version of a key (with its inline body when `withBody`, for a read). */
export async function latestVersion(
  conn: Conn,
  bucket: string,
  key: string,
  withBody = false,
): Promise<ObjectRow | undefined> {
  const q = conn
    .selectFrom('objects')
    .where('bucket', '=', bucket)
    .where('key', '=', key)
    .where('is_latest', '=', 1);
  return withBody ? q.selectAll().executeTakeFirst() : q.select(OBJECT_META_COLUMNS).executeTakeFirst();
}

/**
 * The version reads of every GET and HEAD (`latestVersion`, `findVersion` on the database handle,
 * outside any transaction). On SQLite they run as statements prepared once on the raw connection:
 * building and compiling the same Kysely query for every read cost about as much CPU as SQLite
 * answering it (docs/s3-performance.md). The rows are the same ones Kysely answers.
 */
export function versionReads(database: Database) {
  const sqlite = database.sqlite;
  if (!sqlite) {
    return {
      latest: (bucket: string, key: string, withBody = false) =>
        latestVersion(database.db, bucket, key, withBody),
      version: (bucket: string, key: string, versionId: string, withBody = false) =>
        findVersion(database.db, bucket, key, versionId, withBody),
    };
  }
  const columns = (withBody: boolean) => (withBody ? '*' : OBJECT_META_COLUMNS.join(', '));
  const text = {
    latest: [false, true].map(
      (b) => `SELECT ${columns(b)} FROM objects WHERE bucket = ? AND key = ? AND is_latest = 1`,
    ),
    version: [false, true].map(
      (b) => `SELECT ${columns(b)} FROM objects WHERE bucket = ? AND key = ? AND version_id = ?`,
    ),
  };
  const get = (sql: string, args: string[]) =>
    sqlite((raw) => prepared(raw, sql).get(...args) as ObjectRow | undefined);
  return {
    latest: (bucket: string, key: string, withBody = false) =>
      get(text.latest[withBody ? 1 : 0]!, [bucket, key]),
    version: (bucket: string, key: string, versionId: string, withBody = false) =>
      get(text.version[withBody ? 1 : 0]!, [bucket, key, versionId]),
  };
}

export async function findVersion(
  conn: Conn,
  bucket: string,
  key: string,
  versionId: string,
  withBody = false,
): Promise<ObjectRow | undefined> {
  const q = conn
    .selectFrom('objects')
    .where('bucket', '=', bucket)
    .where('key', '=', key)
    .where('version_id', '=', versionId);
  return withBody ? q.selectAll().executeTakeFirst() : q.select(OBJECT_META_COLUMNS).executeTakeFirst();
}

/** The stored inline body of a version row (undefined when the row is gone). */
export async function inlineBody(conn: Conn, objectId: string): Promise<Buffer | null | undefined> {
  const r = await conn.selectFrom('objects').select('body').where('id', '=', objectId).executeTakeFirst();
  return r ? r.body : undefined;
}

export async function objectParts(conn: Conn, objectId: string): Promise<ObjectPartsTable[]> {
  return conn
    .selectFrom('object_parts')
    .selectAll()
    .where('object_id', '=', objectId)
    .orderBy('part_number')
    .execute();
}

/** Removes a version row and its parts; answers the blob ids that no longer have a reference. */
export async function deleteVersionRow(trx: Tx, row: ObjectRow): Promise<string[]> {
  const blobs: string[] = row.blob_id ? [row.blob_id] : [];
  if (row.parts_count !== null) {
    const parts = await objectParts(trx, row.id);
    blobs.push(...parts.map((p) => p.blob_id));
    await trx.deleteFrom('object_parts').where('object_id', '=', row.id).execute();
  }
  await trx.deleteFrom('objects').where('id', '=', row.id).execute();
  return blobs;
}

/** Makes the newest remaining version of a key the latest one (after the latest was removed). */
export async function promoteNewest(trx: Tx, bucket: string, key: string) {
  const next = await trx
    .selectFrom('objects')
    .select('id')
    .where('bucket', '=', bucket)
    .where('key', '=', key)
    .orderBy('seq', 'desc')
    .limit(1)
    .executeTakeFirst();
  if (next) await trx.updateTable('objects').set({ is_latest: 1 }).where('id', '=', next.id).execute();
}

/** Latest, non-deleted versions in key order, within the prefix, from the cursor. */
export async function fetchLatest(
  conn: Conn,
  bucket: string,
  prefix: string,
  cursor: ListCursor | undefined,
  limit: number,
) {
  let q = conn
    .selectFrom('objects')
    .select(OBJECT_META_COLUMNS)
    .where('bucket', '=', bucket)
    .where('is_latest', '=', 1)
    .where('delete_marker', '=', 0);
  if (prefix !== '') {
    q = q.where('key', '>=', prefix);
    const upper = prefixSuccessor(prefix);
    if (upper !== undefined) q = q.where('key', '<', upper);
  }
  if (cursor) {
    if ('gt' in cursor) q = q.where('key', '>', cursor.gt);
    else if ('gte' in cursor) q = q.where('key', '>=', cursor.gte);
    else q = q.where('key', '>', cursor.key);
  }
  return q.orderBy('key').limit(limit).execute();
}

/** Every version (and delete marker) in key order, newest first within a key. */
export async function fetchVersions(
  conn: Conn,
  bucket: string,
  prefix: string,
  cursor: ListCursor | undefined,
  limit: number,
) {
  let q = conn.selectFrom('objects').select(OBJECT_META_COLUMNS).where('bucket', '=', bucket);
  if (prefix !== '') {
    q = q.where('key', '>=', prefix);
    const upper = prefixSuccessor(prefix);
    if (upper !== undefined) q = q.where('key', '<', upper);
  }
  if (cursor) {
    if ('gt' in cursor) q = q.where('key', '>', cursor.gt);
    else if ('gte' in cursor) q = q.where('key', '>=', cursor.gte);
    else {
      const c = cursor;
      q = q.where((eb) =>
        eb.or([eb('key', '>', c.key), eb.and([eb('key', '=', c.key), eb('seq', '<', c.after)])]),
      );
    }
  }
  return q.orderBy('key').orderBy('seq', 'desc').limit(limit).execute();
}

/** Multipart uploads in (key, created_at) order. The cursor's `after` is a created_at. */
export async function fetchUploads(
  conn: Conn,
  bucket: string,
  prefix: string,
  cursor: ListCursor | undefined,
  limit: number,
) {
  let q = conn.selectFrom('multipart_uploads').selectAll().where('bucket', '=', bucket);
  if (prefix !== '') {
    q = q.where('key', '>=', prefix);
    const upper = prefixSuccessor(prefix);
    if (upper !== undefined) q = q.where('key', '<', upper);
  }
  if (cursor) {
    if ('gt' in cursor) q = q.where('key', '>', cursor.gt);
    else if ('gte' in cursor) q = q.where('key', '>=', cursor.gte);
    else {
      const c = cursor;
      q = q.where((eb) =>
        eb.or([eb('key', '>', c.key), eb.and([eb('key', '=', c.key), eb('created_at', '>', c.after)])]),
      );
    }
  }
  return q.orderBy('key').orderBy('created_at').orderBy('upload_id').limit(limit).execute();
}

/** Which of `ids` some row still references (objects, completed parts, uploaded parts). */
export async function referencedBlobs(conn: Conn, ids: string[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const [a, b, c] = await Promise.all([
    conn.selectFrom('objects').select('blob_id as id').where('blob_id', 'in', ids).execute(),
    conn.selectFrom('object_parts').select('blob_id as id').where('blob_id', 'in', ids).execute(),
    conn.selectFrom('upload_parts').select('blob_id as id').where('blob_id', 'in', ids).execute(),
  ]);
  return new Set([...a, ...b, ...c].map((r) => r.id).filter((id): id is string => id !== null));
}
