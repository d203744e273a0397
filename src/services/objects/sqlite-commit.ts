/**
 * The commit of a new object version on SQLite's raw connection: the same rows, locks and counters
 * as `commitVersion` in service.ts (which PostgreSQL and the rarer writers use), as prepared
 * statements instead of query-builder calls. A 4 KiB PUT is a dozen statements; building and
 * compiling them through Kysely cost more CPU than SQLite running them.
 */

import type { Tx } from '../../platform/db/database.js';
import type { BucketsTable } from '../../platform/db/schema.js';
import { runQuotaGates } from '../../platform/quota/quota.js';
import { noSuchBucket } from './errors.js';
import { bucketUsageColumns, OBJECT_META_COLUMNS, type ObjectRow } from './store.js';
import type { FastWrite } from './write-commit.js';

/** Every column of `objects` a new version row sets. */
const INSERT_COLUMNS = [...OBJECT_META_COLUMNS, 'body'] as const;

/** The bucket columns a commit reads: its versioning, owner, and the counters it updates. */
const LOCKED_COLUMNS = [
  'name',
  'tenant_id',
  'versioning',
  'bytes_stored',
  'object_count',
  'accrued_byte_seconds',
  'accrued_at',
] as const satisfies readonly (keyof BucketsTable)[];
type LockedBucket = Pick<BucketsTable, (typeof LOCKED_COLUMNS)[number]>;

const SQL = {
  // Only what a commit uses: every column of the row (policy, lifecycle and CORS documents
  // included) costs twice as long to read (20 us against 9-13 here).
  lockBucket: `SELECT ${LOCKED_COLUMNS.join(', ')} FROM buckets WHERE name = ?`,
  latestAndNull: `SELECT ${OBJECT_META_COLUMNS.join(', ')} FROM objects WHERE bucket = ? AND key = ? AND (is_latest = 1 OR version_id = 'null')`,
  partBlobs: 'SELECT blob_id FROM object_parts WHERE object_id = ? ORDER BY part_number',
  deleteParts: 'DELETE FROM object_parts WHERE object_id = ?',
  deleteObject: 'DELETE FROM objects WHERE id = ?',
  unmark: 'UPDATE objects SET is_latest = 0 WHERE id = ?',
  insert: `INSERT INTO objects (${INSERT_COLUMNS.join(', ')}) VALUES (${INSERT_COLUMNS.map((c) => `@${c}`).join(', ')})`,
  usage:
    'UPDATE buckets SET bytes_stored = @bytes_stored, object_count = @object_count, ' +
    'accrued_byte_seconds = @accrued_byte_seconds, accrued_at = @accrued_at WHERE name = @name',
  reserve:
    "UPDATE quotas SET used = used + @n, updated_at = @t WHERE tenant_id = @tenant AND resource = 'storageBytes' " +
    'AND (limit_value < 0 OR used + @n <= limit_value)',
  release:
    'UPDATE quotas SET used = CASE WHEN used >= @n THEN used - @n ELSE 0 END, updated_at = @t ' +
    "WHERE tenant_id = @tenant AND resource = 'storageBytes'",
};

/** A new version's columns (what `commitVersion` takes). */
export type NewVersionRow = Omit<
  ObjectRow,
  'id' | 'bucket' | 'key' | 'version_id' | 'seq' | 'is_latest' | 'body'
> & {
  body: Buffer | null;
};

export interface SqliteCommitDeps {
  now: () => number;
  newVersionId: () => string;
  newObjectId: () => string;
  nextSeq: () => number;
  /** Throws when the write's preconditions fail against the current latest version. */
  check?: (current: ObjectRow | undefined) => void;
  /**
   * Reserves storage through the query builder; called only when the fast reservation was refused,
   * so the caller answers the same QuotaExceeded as the general path.
   */
  reserveSlow: (trx: Tx, tenantId: string, bytes: number) => Promise<void>;
  /** What a quota gate's refusal becomes (S3's QuotaExceeded). */
  quotaError: (e: unknown) => unknown;
}

/**
 * Inside the group transaction: writes a new latest version of `key` (replacing the 'null' version
 * unless versioning is Enabled), updates the bucket's counters and the tenant's storage quota.
 * Answers the version id and the blobs no longer referenced (delete them after commit).
 */
export async function commitVersionSqlite(
  w: FastWrite,
  bucket: string,
  key: string,
  row: NewVersionRow,
  deps: SqliteCommitDeps,
): Promise<{ versionId: string; freed: string[]; locked: LockedBucket }> {
  const locked = w.prepare(SQL.lockBucket).get(bucket) as LockedBucket | undefined;
  if (!locked) throw noSuchBucket(bucket);
  const both = w.prepare(SQL.latestAndNull).all(bucket, key) as ObjectRow[];
  const current = both.find((r) => r.is_latest === 1);
  deps.check?.(current);
  const versionId = locked.versioning === 'Enabled' ? deps.newVersionId() : 'null';
  let bytes = row.size;
  let objects = 1;
  const freed: string[] = [];
  const old = versionId === 'null' ? both.find((r) => r.version_id === 'null') : undefined;
  if (old) {
    if (old.blob_id) freed.push(old.blob_id);
    if (old.parts_count !== null) {
      for (const p of w.prepare(SQL.partBlobs).all(old.id) as { blob_id: string }[]) freed.push(p.blob_id);
      w.prepare(SQL.deleteParts).run(old.id);
    }
    w.prepare(SQL.deleteObject).run(old.id);
    bytes -= old.size;
    objects -= 1;
  }
  if (current && current.id !== old?.id) w.prepare(SQL.unmark).run(current.id);
  const full: Record<string, unknown> = {
    ...row,
    id: deps.newObjectId(),
    bucket,
    key,
    version_id: versionId,
    seq: deps.nextSeq(),
    is_latest: 1,
  };
  const values: Record<string, unknown> = {};
  for (const c of INSERT_COLUMNS) values[c] = full[c] ?? null;
  w.prepare(SQL.insert).run(values);
  const t = deps.now();
  w.prepare(SQL.usage).run({ ...bucketUsageColumns(locked, t, { bytes, objects }), name: bucket });
  if (bytes > 0) {
    // The gates (billing: a prepaid tenant out of balance) look at the tenant's state, which nothing
    // in this group changes: one pass per tenant and group is enough.
    const gated = `quota-gates:${locked.tenant_id}`;
    if (!w.group.has(gated)) {
      try {
        await runQuotaGates(w.trx, locked.tenant_id, 'storageBytes', bytes);
      } catch (e) {
        throw deps.quotaError(e);
      }
      w.group.set(gated, true);
    }
    const r = w.prepare(SQL.reserve).run({ n: bytes, t: Date.now(), tenant: locked.tenant_id });
    if (r.changes !== 1) await deps.reserveSlow(w.trx, locked.tenant_id, bytes);
  } else if (bytes < 0) {
    w.prepare(SQL.release).run({ n: -bytes, t: Date.now(), tenant: locked.tenant_id });
  }
  return { versionId, freed, locked };
}
