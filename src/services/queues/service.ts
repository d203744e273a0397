/**
 * Message queues with SQS semantics, protocol-neutral: the SQS JSON and Query adapters (./sqs),
 * the REST API and the CLI all call this service. Errors are QueueErrors with SQS's names.
 *
 * Messages live in SQL (queue_messages): a send commits before it is acknowledged, so it survives
 * kill -9. A receive is one transaction that picks visible messages (PostgreSQL: `FOR UPDATE SKIP
 * LOCKED`, so concurrent receivers never take the same message; SQLite: one writer) and stamps them
 * with a new visibility deadline and receipt token. FIFO queues pick whole group prefixes from
 * groups with nothing in flight, so each group has at most one in-flight batch.
 */
import { createHash, randomBytes, randomFillSync, randomUUID } from 'node:crypto';
import { type Selectable, sql } from 'kysely';
import type { Logger } from 'pino';
import { appendAudit } from '../../platform/audit/audit.js';
import type { Database, Tx } from '../../platform/db/database.js';
import { isUniqueViolation } from '../../platform/db/database.js';
import { prepared } from '../../platform/db/prepared.js';
import type { QueueMessagesTable, QueueMoveTasksTable, QueuesTable } from '../../platform/db/schema.js';
import { type Action, authorize } from '../../platform/policy/authorize.js';
import { auditFor, guard } from '../../platform/policy/guard.js';
import type { RequestContext } from '../../platform/policy/principal.js';
import { releaseQuota, reserveQuota } from '../../platform/quota/quota.js';
import {
  applyAttributes,
  type COMPUTED_ATTRIBUTES,
  defaultAttributes,
  knownAttributeNames,
  parseRedrivePolicy,
  redriveAllowed,
} from './attributes.js';
import { invalidParameter, missingParameter, noSuchQueue, QueueError } from './errors.js';
import { createGroupCommit } from './group-commit.js';
import { type MessageAttribute, md5OfAttributes, md5OfBody } from './md5.js';
import type { QueueMeter } from './meter.js';
import { addPermission, policyAllows, removePermission } from './policy.js';
import { type AbortLike, createQueueSignal, listenPostgres, NOTIFY_CHANNEL } from './signal.js';

export type SqsAction =
  | 'CreateQueue'
  | 'DeleteQueue'
  | 'GetQueueUrl'
  | 'ListQueues'
  | 'GetQueueAttributes'
  | 'SetQueueAttributes'
  | 'PurgeQueue'
  | 'SendMessage'
  | 'ReceiveMessage'
  | 'DeleteMessage'
  | 'ChangeMessageVisibility'
  | 'TagQueue'
  | 'UntagQueue'
  | 'ListQueueTags'
  | 'ListDeadLetterSourceQueues'
  | 'AddPermission'
  | 'RemovePermission'
  | 'StartMessageMoveTask'
  | 'ListMessageMoveTasks'
  | 'CancelMessageMoveTask';

/** A request's caller plus the size of what it sent (metering counts 64 KiB chunks). */
export interface QueueContext extends RequestContext {
  payloadBytes?: number;
}

/** A queue as a URL names it: `<base>/<accountId>/<name>`. */
export interface QueueRef {
  accountId: string;
  name: string;
}

export interface QueueInfo {
  id: string;
  tenantId: string;
  accountId: string;
  name: string;
  fifo: boolean;
  arn: string;
  attributes: Record<string, string>;
  tags: Record<string, string>;
  createdAt: number;
  updatedAt: number;
  purgedAt: number | null;
}

export interface SendEntry {
  id?: string;
  body: string;
  delaySeconds?: number;
  attributes?: Record<string, MessageAttribute>;
  systemAttributes?: Record<string, MessageAttribute>;
  groupId?: string;
  dedupId?: string;
}

export interface SendResult {
  messageId: string;
  md5OfBody: string;
  md5OfAttributes?: string;
  md5OfSystemAttributes?: string;
  sequenceNumber?: string;
}

export type EntryResult<T> = { id: string; ok: T } | { id: string; error: QueueError };

export interface ReceivedMessage {
  messageId: string;
  receiptHandle: string;
  body: string;
  md5OfBody: string;
  attributes: Record<string, MessageAttribute>;
  /** System attributes by SQS name (SenderId, SentTimestamp, ...), all of them. */
  systemAttributes: Record<string, string>;
}

export interface ReceiveOptions {
  maxMessages?: number;
  visibilityTimeout?: number;
  waitTimeSeconds?: number;
  attemptId?: string;
}

export interface MoveTaskInfo {
  taskHandle?: string;
  status: QueueMoveTasksTable['status'];
  sourceArn: string;
  destinationArn?: string;
  maxNumberOfMessagesPerSecond?: number;
  approximateNumberOfMessagesMoved: number;
  approximateNumberOfMessagesToMove: number;
  failureReason?: string;
  startedTimestamp: number;
}

export interface QueueServiceDeps {
  database: Database;
  meter: QueueMeter;
  region?: string;
  logger?: Logger;
  /** PostgreSQL URL to LISTEN on, so long polls wake for sends on other replicas. */
  listenUrl?: string;
  now?: () => number;
}

const FIFO_DEDUP_MS = 5 * 60_000;
const QUEUE_NAME = /^[A-Za-z0-9_-]{1,80}$/;
const BATCH_ID = /^[A-Za-z0-9_-]{1,80}$/;
const GROUP_OR_DEDUP_ID = /^[\x21-\x7e]{1,128}$/;
const ATTRIBUTE_NAME = /^[A-Za-z0-9_.-]{1,256}$/;
const DATA_TYPE = /^(String|Number|Binary)(\.[^\s]{1,246})?$/;
const NOT_MESSAGE_CHAR = /[^\t\n\r\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;
/** Bodies of printable ASCII (the common case) are valid without the slower Unicode-mode scan. */
const ASCII_TEXT = /^[\t\n\r\x20-\x7e]*$/;
const MAX_WAIT_SECONDS = 20;
const QUEUE_CACHE_MS = 1000;
/** A long poll re-checks at least this often: delays and visibility timeouts end without a signal. */
const RECHECK_MS = 1000;

/** FIFO sequence numbers: the message's seq, zero-padded to 20 digits (SQS's are 128-bit and grow per group). */
const sequenceNumber = (seq: number) => String(seq).padStart(20, '0');

type QueueRow = QueuesTable & { account_id: string };
type MessageRow = Selectable<QueueMessagesTable>;

const MESSAGE_COLUMNS = [
  'queue_id',
  'message_id',
  'body',
  'md5_body',
  'attributes',
  'md5_attributes',
  'system_attributes',
  'md5_system',
  'group_id',
  'dedup_id',
  'sender_id',
  'size',
  'sent_at',
  'visible_at',
  'expires_at',
  'receive_count',
  'first_received_at',
  'receipt',
  'dlq_source_arn',
] as const;
/**
 * SQL text per batch size 1 to 10, built once: the prepared-statement cache is keyed by the text,
 * and building (and hashing) a fresh 1.5 KB string per request showed in profiles.
 */
function bySize(build: (n: number) => string): (n: number) => string {
  const texts = Array.from({ length: 11 }, (_, n) => (n === 0 ? '' : build(n)));
  return (n) => texts[n] ?? build(n);
}
/** SQLite hot path: `n` message rows in one statement (one statement per batch size, 1 to 10). */
const insertSql = bySize(
  (n) =>
    `INSERT INTO queue_messages (${MESSAGE_COLUMNS.join(', ')}) VALUES ${Array(n)
      .fill(`(${MESSAGE_COLUMNS.map(() => '?').join(', ')})`)
      .join(', ')}`,
);
/**
 * SQLite hot path of a receive, two statements in one group-commit operation: pick up to n visible
 * seqs, then stamp exactly those received and read back only the columns a receive answers, as
 * arrays (`RECEIVE_COLUMNS` order). Measured cheaper than one `UPDATE ... WHERE seq IN (SELECT ...)
 * RETURNING *` (about 3x here): better-sqlite3 builds row objects key by key, and the subquery form
 * materialises the pick in an ephemeral table.
 */
const PICK_SQLITE = `SELECT seq FROM queue_messages
  WHERE queue_id = ? AND visible_at <= ? AND expires_at > ?
  ORDER BY visible_at LIMIT ?`;
const RECEIVE_COLUMNS = [
  'seq',
  'message_id',
  'body',
  'md5_body',
  'attributes',
  'system_attributes',
  'sender_id',
  'sent_at',
  'receive_count',
  'first_received_at',
  'group_id',
  'dlq_source_arn',
] as const;
const stampSql = bySize(
  (n) =>
    `UPDATE queue_messages
  SET visible_at = ?, receive_count = receive_count + 1, receipt = ?,
      first_received_at = coalesce(first_received_at, ?)
  WHERE seq IN (${Array(n).fill('?').join(', ')})
  RETURNING ${RECEIVE_COLUMNS.join(', ')}`,
);
/** A stamped row (array in `RECEIVE_COLUMNS` order) as the message row fields a receive reads. */
const rowOfReceived = (r: unknown[]) =>
  ({
    seq: r[0],
    message_id: r[1],
    body: r[2],
    md5_body: r[3],
    attributes: r[4],
    system_attributes: r[5],
    sender_id: r[6],
    sent_at: r[7],
    receive_count: r[8],
    first_received_at: r[9],
    group_id: r[10],
    dlq_source_arn: r[11],
    dedup_id: null,
  }) as MessageRow;
/** SQLite hot path: delete by receipt seqs (one statement per batch size). */
const deleteSql = bySize(
  (n) => `DELETE FROM queue_messages WHERE queue_id = ? AND seq IN (${Array(n).fill('?').join(', ')})`,
);

/** Random bytes drawn 4 KiB at a time: one receive token (8 bytes, hex) no longer costs a call into OpenSSL. */
const randomPool = Buffer.alloc(4096);
let randomAt = randomPool.length;
function randomHex8(): string {
  if (randomAt + 8 > randomPool.length) {
    randomFillSync(randomPool);
    randomAt = 0;
  }
  randomAt += 8;
  return randomPool.toString('hex', randomAt - 8, randomAt);
}

export function queueArn(region: string, accountId: string, name: string) {
  return `arn:aws:sqs:${region}:${accountId}:${name}`;
}

export function parseQueueArn(arn: string): QueueRef | undefined {
  const m = /^arn:[\w-]+:sqs:[\w-]+:(\d{12}):([\w-]{1,80}(?:\.fifo)?)$/.exec(arn);
  return m ? { accountId: m[1]!, name: m[2]! } : undefined;
}

/** Receipt handles name the queue, the message and the receive that returned it. */
export function encodeReceipt(queueId: string, seq: number, token: string) {
  return Buffer.from(`${queueId}:${seq}:${token}`).toString('base64url');
}

export function decodeReceipt(handle: string): { queueId: string; seq: number; token: string } | undefined {
  if (!/^[A-Za-z0-9_-]{10,1024}$/.test(handle)) return undefined;
  const m = /^([a-z0-9-]+):(\d{1,16}):([0-9a-f]{16,64})$/.exec(
    Buffer.from(handle, 'base64url').toString('latin1'),
  );
  return m ? { queueId: m[1]!, seq: Number(m[2]), token: m[3]! } : undefined;
}

/** Bytes a message counts against MaximumMessageSize: body plus attribute names, types and values. */
function messageSize(e: SendEntry): number {
  let n = Buffer.byteLength(e.body, 'utf8');
  if (e.attributes === undefined) return n;
  for (const [name, a] of Object.entries(e.attributes)) {
    n += Buffer.byteLength(name) + Buffer.byteLength(a.DataType);
    n += a.BinaryValue ? a.BinaryValue.length : Buffer.byteLength(a.StringValue ?? '');
  }
  return n;
}

function validateMessageAttributes(attrs: Record<string, MessageAttribute> | undefined, system: boolean) {
  if (attrs === undefined) return;
  const names = Object.keys(attrs);
  if (!system && names.length > 10)
    throw invalidParameter(
      `Number of message attributes [${names.length}] exceeds the allowed maximum [10].`,
    );
  for (const name of names) {
    const a = attrs![name]!;
    if (system) {
      if (name !== 'AWSTraceHeader')
        throw invalidParameter(`Message system attribute name '${name}' is invalid.`);
      if (a.DataType !== 'String' || a.StringValue === undefined)
        throw invalidParameter('The message system attribute AWSTraceHeader must be of type String.');
      continue;
    }
    if (
      !ATTRIBUTE_NAME.test(name) ||
      /^(aws\.|amazon\.)/i.test(name) ||
      name.startsWith('.') ||
      name.endsWith('.') ||
      name.includes('..')
    )
      throw invalidParameter(`Message attribute name '${name}' is invalid.`);
    if (!a.DataType)
      throw invalidParameter(`The message attribute '${name}' must contain a non-empty attribute type.`);
    if (!DATA_TYPE.test(a.DataType) || a.DataType.length > 256)
      throw invalidParameter(
        `The type of message attribute '${name}' is invalid. You must use only the following supported type prefixes: Binary, Number, String.`,
      );
    if (a.DataType.startsWith('Binary')) {
      if (a.BinaryValue === undefined || a.StringValue !== undefined)
        throw invalidParameter(`The message attribute '${name}' with type 'Binary' must use field 'Binary'.`);
    } else {
      if (a.StringValue === undefined || a.BinaryValue !== undefined)
        throw invalidParameter(
          `The message attribute '${name}' with type '${a.DataType.split('.')[0]}' must use field 'String'.`,
        );
      if (NOT_MESSAGE_CHAR.test(a.StringValue))
        throw new QueueError(
          'InvalidMessageContents',
          `The message attribute '${name}' contains invalid characters.`,
        );
      if (a.DataType.startsWith('Number') && !/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(a.StringValue))
        throw invalidParameter(`Can't cast the value of message (user) attribute '${name}' to a number.`);
    }
    if (a.StringValue === '' || a.BinaryValue?.length === 0)
      throw invalidParameter(
        `Message (user) attribute '${name}' must contain a non-empty value of type '${a.DataType}'.`,
      );
  }
}

const attrsToJson = (attrs: Record<string, MessageAttribute> | undefined) => {
  if (!attrs || Object.keys(attrs).length === 0) return null;
  const out: Record<string, { t: string; s?: string; b?: string }> = {};
  for (const [k, v] of Object.entries(attrs))
    out[k] = {
      t: v.DataType,
      ...(v.BinaryValue ? { b: v.BinaryValue.toString('base64') } : { s: v.StringValue ?? '' }),
    };
  return JSON.stringify(out);
};

const attrsFromJson = (text: string | null): Record<string, MessageAttribute> => {
  if (!text) return {};
  const parsed = JSON.parse(text) as Record<string, { t: string; s?: string; b?: string }>;
  const out: Record<string, MessageAttribute> = {};
  for (const [k, v] of Object.entries(parsed))
    out[k] =
      v.b !== undefined
        ? { DataType: v.t, BinaryValue: Buffer.from(v.b, 'base64') }
        : { DataType: v.t, StringValue: v.s ?? '' };
  return out;
};

function toInfo(row: QueueRow, region: string): QueueInfo {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    accountId: row.account_id,
    name: row.name,
    fifo: row.fifo === 1,
    arn: queueArn(region, row.account_id, row.name),
    attributes: JSON.parse(row.attributes) as Record<string, string>,
    tags: JSON.parse(row.tags) as Record<string, string>,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    purgedAt: row.purged_at,
  };
}

export function createQueueService(deps: QueueServiceDeps) {
  const { database, meter } = deps;
  const region = deps.region ?? 'us-east-1';
  const now = deps.now ?? Date.now;
  const pg = database.dialect === 'postgres';
  const signal = createQueueSignal();
  /** SQLite: message sends, receives and deletes go through one group commit (see group-commit.ts). */
  const hot = database.sqlite ? createGroupCommit(database) : undefined;
  const listener = pg && deps.listenUrl ? listenPostgres(deps.listenUrl, signal, deps.logger) : undefined;
  let closing = false;
  /** FIFO ReceiveRequestAttemptId: the messages a receive returned, for a retry within 5 minutes. */
  const attempts = new Map<string, { seqs: number[]; token: string; expires: number }>();

  // ---- lookups and access ------------------------------------------------------------------

  const queueQuery = (conn: Database['db'] | Tx) =>
    conn
      .selectFrom('queues')
      .innerJoin('tenants', 'tenants.id', 'queues.tenant_id')
      .selectAll('queues')
      .select('tenants.account_id as account_id');

  async function findQueue(conn: Database['db'] | Tx, ref: QueueRef): Promise<QueueInfo | undefined> {
    const row = await queueQuery(conn)
      .where('tenants.account_id', '=', ref.accountId)
      .where('queues.name', '=', ref.name)
      .executeTakeFirst();
    return row ? toInfo(row, region) : undefined;
  }

  /**
   * The queue, if the caller may perform `action` on it: in its own tenant by role, in another
   * tenant only when the queue policy allows. A queue the caller may not see does not exist.
   */
  /**
   * Queues by URL for a second, so a message stream does not look its queue up on every request.
   * Changes made here drop the entry at once; another replica's change shows within QUEUE_CACHE_MS
   * (AWS documents up to 60 s for attribute changes and deletions to propagate).
   */
  const queueCache = new Map<string, { at: number; q: QueueInfo }>();
  const cacheKey = (ref: QueueRef) => `${ref.accountId}/${ref.name}`;
  const forget = (ref: QueueRef) => queueCache.delete(cacheKey(ref));
  /** The cached queue if it is fresh, without a promise (every message request asks). */
  function freshCachedQueue(ref: QueueRef): QueueInfo | undefined {
    const hit = queueCache.get(cacheKey(ref));
    return hit && Date.now() - hit.at < QUEUE_CACHE_MS ? hit.q : undefined;
  }

  /** Reads the queue (no fresh cache entry: see freshCachedQueue) and caches the answer. */
  async function loadQueue(ref: QueueRef): Promise<QueueInfo | undefined> {
    const key = cacheKey(ref);
    const t = Date.now();
    const q = await findQueue(database.db, ref);
    if (queueCache.size > 10_000) queueCache.clear();
    if (q) queueCache.set(key, { at: t, q });
    else queueCache.delete(key);
    return q;
  }

  async function access(ctx: QueueContext, ref: QueueRef, action: SqsAction): Promise<QueueInfo> {
    const q = freshCachedQueue(ref) ?? (await loadQueue(ref));
    const p = ctx.principal;
    if (!q) throw noSuchQueue();
    const own = q.tenantId === p.tenantId || p.role === 'platform-admin';
    if (!own && !policyAllows(q.attributes.Policy, p, action, q.arn)) throw noSuchQueue();
    const act = `sqs:${action}` as Action;
    const resource = { tenantId: own ? q.tenantId : p.tenantId };
    // guard() audits and throws a denial; an allowed request (the rule) needs no promise for it.
    if (!authorize(p, act, resource).allowed) await guard(database, ctx, act, resource, q.arn);
    meter.request(q.tenantId, q.id, ctx.payloadBytes ?? 0);
    return q;
  }

  async function ownQueueByArn(conn: Database['db'] | Tx, tenantId: string, arn: string) {
    const ref = parseQueueArn(arn);
    const q = ref ? await findQueue(conn, ref) : undefined;
    return q && q.tenantId === tenantId ? q : undefined;
  }

  const audit = (
    trx: Tx,
    ctx: QueueContext,
    action: SqsAction,
    q: { arn: string; tenantId: string },
    details?: Record<string, unknown>,
  ) =>
    appendAudit(
      trx,
      auditFor(ctx, `sqs:${action}`, q.arn, { tenantId: q.tenantId, ...(details ? { details } : {}) }),
    );

  async function checkRedrive(
    conn: Database['db'] | Tx,
    tenantId: string,
    fifo: boolean,
    arn: string,
    attrs: Record<string, string>,
  ) {
    if (!attrs.RedrivePolicy) return;
    const rp = parseRedrivePolicy(attrs.RedrivePolicy);
    const dlq = await ownQueueByArn(conn, tenantId, rp.deadLetterTargetArn);
    if (!dlq)
      throw new QueueError(
        'InvalidAttributeValue',
        'Invalid value for the parameter RedrivePolicy. Reason: Dead letter target does not exist.',
      );
    if (dlq.fifo !== fifo)
      throw new QueueError(
        'InvalidAttributeValue',
        'Invalid value for the parameter RedrivePolicy. Reason: Dead-letter queue must be same type of queue as the source.',
      );
    if (!redriveAllowed(dlq.attributes.RedriveAllowPolicy, arn))
      throw new QueueError(
        'InvalidAttributeValue',
        'Invalid value for the parameter RedrivePolicy. Reason: Dead-letter queue does not allow this queue as a source (RedriveAllowPolicy).',
      );
  }

  // ---- queues ------------------------------------------------------------------------------

  async function createQueue(
    ctx: QueueContext,
    name: string,
    attributes: Record<string, string> = {},
    tags: Record<string, string> = {},
  ): Promise<QueueInfo> {
    const fifo = name.endsWith('.fifo');
    const base = fifo ? name.slice(0, -5) : name;
    if (!QUEUE_NAME.test(base) || name.length > 80)
      throw invalidParameter(
        `Value ${name.slice(0, 100)} for parameter QueueName is invalid. Reason: Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length.`,
      );
    if (attributes.FifoQueue === 'true' && !fifo)
      throw invalidParameter(
        'The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, must end with .fifo suffix and be 1 to 80 in length.',
      );
    const p = ctx.principal;
    const attrs = applyAttributes(defaultAttributes(fifo), attributes, { fifo, creating: true });
    validateTags(tags);
    await guard(
      database,
      ctx,
      'sqs:CreateQueue',
      { tenantId: p.tenantId },
      queueArn(region, p.accountId, name),
    );
    meter.request(p.tenantId, '-', ctx.payloadBytes ?? 0);
    const arn = queueArn(region, p.accountId, name);
    await checkRedrive(database.db, p.tenantId, fifo, arn, attrs);
    const existing = await findQueue(database.db, { accountId: p.accountId, name });
    const matches = (q: QueueInfo) => {
      for (const [k, v] of Object.entries(attributes)) {
        if (k === 'FifoQueue') continue;
        if ((q.attributes[k] ?? '') !== attrs[k] && !(attrs[k] === undefined && v === '')) return false;
      }
      return true;
    };
    const alreadyExists = () =>
      new QueueError(
        'QueueNameExists',
        `A queue already exists with the same name and a different value for attribute(s) ${Object.keys(attributes).join(', ')}`,
      );
    if (existing) {
      if (!matches(existing)) throw alreadyExists();
      return existing;
    }
    const t = now();
    const id = `sqs-${randomBytes(8).toString('hex')}`;
    try {
      await database.tx(async (trx) => {
        await reserveQuota(trx, p.tenantId, 'queues');
        await trx
          .insertInto('queues')
          .values({
            id,
            tenant_id: p.tenantId,
            name,
            fifo: fifo ? 1 : 0,
            attributes: JSON.stringify(attrs),
            tags: JSON.stringify(tags),
            purged_at: null,
            created_at: t,
            updated_at: t,
          })
          .execute();
        await audit(
          trx,
          ctx,
          'CreateQueue',
          { arn, tenantId: p.tenantId },
          { attributes: Object.keys(attributes) },
        );
      });
    } catch (e) {
      if (!isUniqueViolation(e)) throw e;
      const raced = await findQueue(database.db, { accountId: p.accountId, name });
      if (raced && matches(raced)) return raced;
      throw alreadyExists();
    }
    return (await findQueue(database.db, { accountId: p.accountId, name }))!;
  }

  function validateTags(tags: Record<string, string>) {
    const keys = Object.keys(tags);
    if (keys.length > 50) throw invalidParameter('Too many tags: a queue has at most 50.');
    for (const k of keys) {
      if (k.length < 1 || k.length > 128 || /^aws:/i.test(k))
        throw invalidParameter(`Tag key '${k.slice(0, 128)}' is invalid.`);
      if ((tags[k] ?? '').length > 256)
        throw invalidParameter(`The value of tag '${k}' is longer than 256 characters.`);
    }
  }

  async function getQueueUrl(ctx: QueueContext, name: string, ownerAccountId?: string): Promise<QueueInfo> {
    return access(ctx, { accountId: ownerAccountId ?? ctx.principal.accountId, name }, 'GetQueueUrl');
  }

  async function listQueues(
    ctx: QueueContext,
    opts: { prefix?: string; maxResults?: number; nextToken?: string } = {},
  ): Promise<{ queues: QueueInfo[]; nextToken?: string }> {
    const p = ctx.principal;
    await guard(
      database,
      ctx,
      'sqs:ListQueues',
      { tenantId: p.tenantId },
      `arn:aws:sqs:${region}:${p.accountId}:*`,
    );
    meter.request(p.tenantId, '-', ctx.payloadBytes ?? 0);
    let after: string | undefined;
    if (opts.nextToken !== undefined) {
      after = Buffer.from(opts.nextToken, 'base64url').toString('utf8');
      if (!after.startsWith('q:')) throw invalidParameter('Invalid NextToken value.');
      after = after.slice(2);
    }
    const limit = opts.maxResults ?? 1000;
    let q = queueQuery(database.db)
      .where('queues.tenant_id', '=', p.tenantId)
      .orderBy('queues.name')
      .limit(limit + 1);
    if (opts.prefix)
      q = q.where('queues.name', '>=', opts.prefix).where('queues.name', '<', `${opts.prefix}\u{10FFFF}`);
    if (after !== undefined) q = q.where('queues.name', '>', after);
    const rows = (await q.execute()).filter((r) => !opts.prefix || r.name.startsWith(opts.prefix));
    const page = rows.slice(0, limit).map((r) => toInfo(r, region));
    const more = rows.length > limit && opts.maxResults !== undefined;
    return {
      queues: page,
      ...(more ? { nextToken: Buffer.from(`q:${page[page.length - 1]!.name}`).toString('base64url') } : {}),
    };
  }

  async function deleteQueue(ctx: QueueContext, ref: QueueRef): Promise<void> {
    const q = await access(ctx, ref, 'DeleteQueue');
    await database.tx(async (trx) => {
      const res = await trx.deleteFrom('queues').where('id', '=', q.id).executeTakeFirst();
      if (Number(res.numDeletedRows) === 0) throw noSuchQueue();
      await trx.deleteFrom('queue_messages').where('queue_id', '=', q.id).execute();
      await trx.deleteFrom('queue_dedup').where('queue_id', '=', q.id).execute();
      await trx
        .updateTable('queue_move_tasks')
        .set({ status: 'CANCELLED', updated_at: now() })
        .where('source_queue_id', '=', q.id)
        .where('status', '=', 'RUNNING')
        .execute();
      await releaseQuota(trx, q.tenantId, 'queues');
      await audit(trx, ctx, 'DeleteQueue', q);
    });
    forget(q);
    signal.notify(q.id);
  }

  async function counts(conn: Database['db'] | Tx, queueId: string) {
    const t = now();
    const row = await conn
      .selectFrom('queue_messages')
      .select([
        sql<number>`coalesce(sum(case when visible_at <= ${t} then 1 else 0 end), 0)`.as('visible'),
        sql<number>`coalesce(sum(case when visible_at > ${t} and receive_count > 0 then 1 else 0 end), 0)`.as(
          'inflight',
        ),
        sql<number>`coalesce(sum(case when visible_at > ${t} and receive_count = 0 then 1 else 0 end), 0)`.as(
          'delayed',
        ),
      ])
      .where('queue_id', '=', queueId)
      .where('expires_at', '>', t)
      .executeTakeFirstOrThrow();
    return { visible: Number(row.visible), inflight: Number(row.inflight), delayed: Number(row.delayed) };
  }

  async function getQueueAttributes(
    ctx: QueueContext,
    ref: QueueRef,
    names: string[] = ['All'],
  ): Promise<Record<string, string>> {
    const q = await access(ctx, ref, 'GetQueueAttributes');
    const known = knownAttributeNames(q.fifo);
    for (const n of names)
      if (n !== 'All' && !known.includes(n))
        throw new QueueError('InvalidAttributeName', `Unknown Attribute ${n}.`);
    const wanted = names.includes('All') ? known : names;
    const out: Record<string, string> = {};
    const needCounts = wanted.some((n) => n.startsWith('Approximate'));
    const c = needCounts ? await counts(database.db, q.id) : undefined;
    for (const n of wanted) {
      switch (n as (typeof COMPUTED_ATTRIBUTES)[number] | 'FifoQueue') {
        case 'ApproximateNumberOfMessages':
          out[n] = String(c!.visible);
          break;
        case 'ApproximateNumberOfMessagesNotVisible':
          out[n] = String(c!.inflight);
          break;
        case 'ApproximateNumberOfMessagesDelayed':
          out[n] = String(c!.delayed);
          break;
        case 'CreatedTimestamp':
          out[n] = String(Math.floor(q.createdAt / 1000));
          break;
        case 'LastModifiedTimestamp':
          out[n] = String(Math.floor(q.updatedAt / 1000));
          break;
        case 'QueueArn':
          out[n] = q.arn;
          break;
        case 'FifoQueue':
          out[n] = 'true';
          break;
        default:
          if (q.attributes[n] !== undefined) out[n] = q.attributes[n]!;
      }
    }
    return out;
  }

  async function setQueueAttributes(
    ctx: QueueContext,
    ref: QueueRef,
    changes: Record<string, string>,
  ): Promise<void> {
    if (Object.keys(changes).length === 0) throw missingParameter('Attribute.1.Name');
    const q = await access(ctx, ref, 'SetQueueAttributes');
    const attrs = applyAttributes(q.attributes, changes, { fifo: q.fifo, creating: false });
    await checkRedrive(database.db, q.tenantId, q.fifo, q.arn, attrs);
    await database.tx(async (trx) => {
      await trx
        .updateTable('queues')
        .set({ attributes: JSON.stringify(attrs), updated_at: now() })
        .where('id', '=', q.id)
        .execute();
      await audit(trx, ctx, 'SetQueueAttributes', q, { attributes: Object.keys(changes) });
    });
    forget(q);
  }

  async function purgeQueue(ctx: QueueContext, ref: QueueRef): Promise<void> {
    const q = await access(ctx, ref, 'PurgeQueue');
    const t = now();
    await database.tx(async (trx) => {
      const res = await trx
        .updateTable('queues')
        .set({ purged_at: t })
        .where('id', '=', q.id)
        .where((eb) => eb.or([eb('purged_at', 'is', null), eb('purged_at', '<=', t - 60_000)]))
        .executeTakeFirst();
      if (Number(res.numUpdatedRows) === 0)
        throw new QueueError(
          'PurgeQueueInProgress',
          `Only one PurgeQueue operation on ${q.name} is allowed every 60 seconds.`,
        );
      await trx.deleteFrom('queue_messages').where('queue_id', '=', q.id).where('sent_at', '<=', t).execute();
      await audit(trx, ctx, 'PurgeQueue', q);
    });
  }

  async function tagQueue(ctx: QueueContext, ref: QueueRef, tags: Record<string, string>) {
    const q = await access(ctx, ref, 'TagQueue');
    const next = { ...q.tags, ...tags };
    validateTags(next);
    await database.tx(async (trx) => {
      await trx
        .updateTable('queues')
        .set({ tags: JSON.stringify(next) })
        .where('id', '=', q.id)
        .execute();
      await audit(trx, ctx, 'TagQueue', q, { keys: Object.keys(tags) });
    });
    forget(q);
  }

  async function untagQueue(ctx: QueueContext, ref: QueueRef, keys: string[]) {
    const q = await access(ctx, ref, 'UntagQueue');
    const next = { ...q.tags };
    for (const k of keys) delete next[k];
    await database.tx(async (trx) => {
      await trx
        .updateTable('queues')
        .set({ tags: JSON.stringify(next) })
        .where('id', '=', q.id)
        .execute();
      await audit(trx, ctx, 'UntagQueue', q, { keys });
    });
    forget(q);
  }

  async function listQueueTags(ctx: QueueContext, ref: QueueRef) {
    return (await access(ctx, ref, 'ListQueueTags')).tags;
  }

  async function listDeadLetterSourceQueues(
    ctx: QueueContext,
    ref: QueueRef,
    opts: { maxResults?: number; nextToken?: string } = {},
  ): Promise<{ queues: QueueInfo[]; nextToken?: string }> {
    const q = await access(ctx, ref, 'ListDeadLetterSourceQueues');
    const rows = await queueQuery(database.db)
      .where('queues.tenant_id', '=', q.tenantId)
      .orderBy('queues.name')
      .execute();
    const after = opts.nextToken ? Buffer.from(opts.nextToken, 'base64url').toString('utf8') : undefined;
    const sources = rows
      .map((r) => toInfo(r, region))
      .filter((s) => {
        const rp = s.attributes.RedrivePolicy;
        return (
          rp !== undefined &&
          parseRedrivePolicy(rp).deadLetterTargetArn === q.arn &&
          (after === undefined || s.name > after)
        );
      });
    const limit = opts.maxResults ?? 1000;
    const page = sources.slice(0, limit);
    const more = sources.length > limit && opts.maxResults !== undefined;
    return {
      queues: page,
      ...(more ? { nextToken: Buffer.from(page[page.length - 1]!.name).toString('base64url') } : {}),
    };
  }

  async function changePolicy(
    ctx: QueueContext,
    ref: QueueRef,
    action: 'AddPermission' | 'RemovePermission',
    change: (q: QueueInfo) => string | undefined,
  ) {
    const q = await access(ctx, ref, action);
    const policy = change(q);
    const attrs = { ...q.attributes };
    if (policy === undefined) delete attrs.Policy;
    else attrs.Policy = policy;
    await database.tx(async (trx) => {
      await trx
        .updateTable('queues')
        .set({ attributes: JSON.stringify(attrs), updated_at: now() })
        .where('id', '=', q.id)
        .execute();
      await audit(trx, ctx, action, q);
    });
    forget(q);
  }

  // ---- messages ----------------------------------------------------------------------------

  function checkEntry(q: QueueInfo, e: SendEntry) {
    if (e.body === undefined || e.body === null) throw missingParameter('MessageBody');
    if (e.body.length === 0) throw invalidParameter('The request must contain a non-empty message body.');
    if (!ASCII_TEXT.test(e.body) && NOT_MESSAGE_CHAR.test(e.body))
      throw new QueueError(
        'InvalidMessageContents',
        'Invalid characters found. Valid unicode characters are #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF',
      );
    validateMessageAttributes(e.attributes, false);
    validateMessageAttributes(e.systemAttributes, true);
    const max = Number(q.attributes.MaximumMessageSize);
    if (messageSize(e) > max)
      throw invalidParameter(
        `One or more parameters are invalid. Reason: Message must be shorter than ${max} bytes.`,
      );
    if (e.delaySeconds !== undefined) {
      if (!Number.isInteger(e.delaySeconds) || e.delaySeconds < 0 || e.delaySeconds > 900)
        throw invalidParameter(
          `Value ${e.delaySeconds} for parameter DelaySeconds is invalid. Reason: must be between 0 and 900, if provided.`,
        );
      if (q.fifo && e.delaySeconds > 0)
        throw invalidParameter(
          `Value ${e.delaySeconds} for parameter DelaySeconds is invalid. Reason: The request include parameter that is not valid for this queue type.`,
        );
    }
    if (q.fifo) {
      if (e.groupId === undefined) throw missingParameter('MessageGroupId');
      if (e.dedupId === undefined && q.attributes.ContentBasedDeduplication !== 'true')
        throw invalidParameter(
          'The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly',
        );
    } else if (e.dedupId !== undefined) {
      throw invalidParameter(
        `Value ${e.dedupId} for parameter MessageDeduplicationId is invalid. Reason: The request include parameter that is not valid for this queue type.`,
      );
    }
    if (e.groupId !== undefined && !GROUP_OR_DEDUP_ID.test(e.groupId))
      throw invalidParameter(
        `Value ${e.groupId.slice(0, 128)} for parameter MessageGroupId is invalid. Reason: 1 to 128 printable ASCII characters.`,
      );
    if (e.dedupId !== undefined && !GROUP_OR_DEDUP_ID.test(e.dedupId))
      throw invalidParameter(
        `Value ${e.dedupId.slice(0, 128)} for parameter MessageDeduplicationId is invalid. Reason: 1 to 128 printable ASCII characters.`,
      );
  }

  function checkBatch<T extends { id?: string }>(entries: T[], what: string) {
    if (entries.length === 0)
      throw new QueueError('EmptyBatchRequest', `There should be at least one ${what} in the request.`);
    if (entries.length > 10)
      throw new QueueError(
        'TooManyEntriesInBatchRequest',
        `Maximum number of entries per request are 10. You have sent ${entries.length}.`,
      );
    const seen = new Set<string>();
    for (const e of entries) {
      if (e.id === undefined || !BATCH_ID.test(e.id))
        throw new QueueError(
          'InvalidBatchEntryId',
          'A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long.',
        );
      if (seen.has(e.id)) throw new QueueError('BatchEntryIdsNotDistinct', `Id ${e.id} repeated.`);
      seen.add(e.id);
    }
  }

  /**
   * Sends messages (one for SendMessage, up to 10 for SendMessageBatch): each entry is checked on
   * its own and fails alone; the valid ones commit in one transaction before this returns.
   */
  async function sendMessages(
    ctx: QueueContext,
    ref: QueueRef,
    entries: SendEntry[],
    batch: boolean,
  ): Promise<EntryResult<SendResult>[]> {
    if (batch) {
      checkBatch(entries, 'entry');
      const total = entries.reduce((n, e) => n + messageSize(e), 0);
      if (total > 262_144)
        throw new QueueError(
          'BatchRequestTooLong',
          `Batch requests cannot be longer than 262144 bytes. You have sent ${total} bytes.`,
        );
    }
    const q = await access(ctx, ref, 'SendMessage');
    const results: EntryResult<SendResult>[] = [];
    const valid: { e: SendEntry; index: number }[] = [];
    for (const [index, e] of entries.entries()) {
      try {
        checkEntry(q, e);
        valid.push({ e, index });
        results.push({ id: e.id ?? '', ok: undefined as unknown as SendResult });
      } catch (err) {
        if (!batch || !(err instanceof QueueError)) throw err;
        results.push({ id: e.id ?? '', error: err });
      }
    }
    if (valid.length === 0) return results;
    const t = now();
    const queueDelay = Number(q.attributes.DelaySeconds);
    const retention = Number(q.attributes.MessageRetentionPeriod) * 1000;
    const sender = ctx.principal.uniqueId;
    const rows = valid.map(({ e }) => {
      const attributes = attrsToJson(e.attributes);
      const system = attrsToJson(e.systemAttributes);
      const row: Omit<QueueMessagesTable, 'seq'> = {
        queue_id: q.id,
        message_id: randomUUID(),
        body: e.body,
        md5_body: md5OfBody(e.body),
        attributes,
        md5_attributes: md5OfAttributes(e.attributes) ?? null,
        system_attributes: system,
        md5_system: md5OfAttributes(e.systemAttributes) ?? null,
        group_id: e.groupId ?? null,
        dedup_id: q.fifo ? (e.dedupId ?? createHash('sha256').update(e.body, 'utf8').digest('hex')) : null,
        sender_id: sender,
        size: messageSize(e),
        sent_at: t,
        visible_at: t + (e.delaySeconds ?? queueDelay) * 1000,
        expires_at: t + retention,
        receive_count: 0,
        first_received_at: null,
        receipt: null,
        dlq_source_arn: null,
      };
      return row;
    });
    const seqs: (number | undefined)[] = [];
    const ids = rows.map((r) => r.message_id);
    let visibleNow = false;
    if (hot && !q.fifo) {
      // Acknowledged only once committed and the log synced (durable: true). Waiting long polls
      // are woken at the commit, not after the sync: from the commit on, any receive sees the rows.
      const values: unknown[] = [];
      for (const row of rows) for (const c of MESSAGE_COLUMNS) values.push(row[c]);
      const visible = rows.some((r) => r.visible_at <= t);
      await hot.run((db) => prepared(db, insertSql(rows.length)).run(values), {
        durable: true,
        oneStatement: true,
        ...(visible ? { onCommit: () => signal.notify(q.id, rows.length) } : {}),
      });
    } else if (!q.fifo && pg) {
      // PostgreSQL: one statement, so one round trip; the NOTIFY goes out when it commits.
      visibleNow = rows.some((r) => r.visible_at <= t);
      const insert = database.db.insertInto('queue_messages').values(rows).returning('seq');
      if (visibleNow)
        await database.db
          .with('inserted', () => insert)
          .selectNoFrom(
            // A data-modifying WITH runs to completion whether or not the query reads it.
            sql<string>`pg_notify(${NOTIFY_CHANNEL}, ${`${q.id}:${rows.length}`})`.as('n'),
          )
          .execute();
      else await insert.execute();
    } else
      await database.tx(async (trx) => {
        if (!q.fifo) {
          await trx.insertInto('queue_messages').values(rows).execute();
          visibleNow = rows.some((r) => r.visible_at <= t);
        } else {
          const byGroup = q.attributes.DeduplicationScope === 'messageGroup';
          for (const [i, row] of rows.entries()) {
            const key = byGroup ? `${row.group_id}\0${row.dedup_id}` : row.dedup_id!;
            const dup = await trx
              .selectFrom('queue_dedup')
              .select(['message_id', 'seq', 'expires_at'])
              .where('queue_id', '=', q.id)
              .where('dedup_key', '=', key)
              .executeTakeFirst();
            if (dup && dup.expires_at > t) {
              ids[i] = dup.message_id;
              seqs[i] = dup.seq;
              continue;
            }
            const inserted = await trx
              .insertInto('queue_messages')
              .values(row)
              .returning('seq')
              .executeTakeFirstOrThrow();
            seqs[i] = Number(inserted.seq);
            visibleNow = true;
            const dedup = { message_id: row.message_id, seq: seqs[i]!, expires_at: t + FIFO_DEDUP_MS };
            if (dup)
              await trx
                .updateTable('queue_dedup')
                .set(dedup)
                .where('queue_id', '=', q.id)
                .where('dedup_key', '=', key)
                .execute();
            else
              await trx
                .insertInto('queue_dedup')
                .values({ queue_id: q.id, dedup_key: key, ...dedup })
                .execute();
          }
        }
        if (pg && visibleNow)
          await sql`select pg_notify(${NOTIFY_CHANNEL}, ${`${q.id}:${rows.length}`})`.execute(trx);
      });
    // FIFO sends on SQLite committed through Kysely: make the log durable before acknowledging.
    if (hot && q.fifo) await hot.durable();
    if (visibleNow) signal.notify(q.id, rows.length);
    for (const [i, { e, index }] of valid.entries()) {
      const r = rows[i]!;
      results[index] = {
        id: e.id ?? '',
        ok: {
          messageId: ids[i]!,
          md5OfBody: r.md5_body,
          ...(r.md5_attributes ? { md5OfAttributes: r.md5_attributes } : {}),
          ...(r.md5_system ? { md5OfSystemAttributes: r.md5_system } : {}),
          ...(seqs[i] !== undefined ? { sequenceNumber: sequenceNumber(seqs[i]!) } : {}),
        },
      };
    }
    return results;
  }

  function toReceived(q: QueueInfo, m: MessageRow, token: string): ReceivedMessage {
    const system: Record<string, string> = {
      SenderId: m.sender_id,
      SentTimestamp: String(m.sent_at),
      ApproximateReceiveCount: String(m.receive_count),
      ApproximateFirstReceiveTimestamp: String(m.first_received_at ?? m.sent_at),
    };
    if (q.fifo) {
      system.MessageDeduplicationId = m.dedup_id ?? '';
      system.MessageGroupId = m.group_id ?? '';
      system.SequenceNumber = sequenceNumber(m.seq);
    } else if (m.group_id) {
      system.MessageGroupId = m.group_id;
    }
    const sys = attrsFromJson(m.system_attributes);
    if (sys.AWSTraceHeader?.StringValue) system.AWSTraceHeader = sys.AWSTraceHeader.StringValue;
    if (m.dlq_source_arn) system.DeadLetterQueueSourceArn = m.dlq_source_arn;
    return {
      messageId: m.message_id,
      receiptHandle: encodeReceipt(q.id, m.seq, token),
      body: m.body,
      md5OfBody: m.md5_body,
      attributes: attrsFromJson(m.attributes),
      systemAttributes: system,
    };
  }

  /** Moves messages received too often to the queue's dead-letter queue; answers the seqs moved. */
  async function redrive(trx: Tx, q: QueueInfo, candidates: MessageRow[], t: number): Promise<Set<number>> {
    const moved = new Set<number>();
    if (!q.attributes.RedrivePolicy) return moved;
    const rp = parseRedrivePolicy(q.attributes.RedrivePolicy);
    const over = candidates.filter((m) => m.receive_count >= rp.maxReceiveCount);
    if (over.length === 0) return moved;
    const dlq = await ownQueueByArn(trx, q.tenantId, rp.deadLetterTargetArn);
    if (!dlq) return moved;
    const retention = Number(dlq.attributes.MessageRetentionPeriod) * 1000;
    for (const m of over) {
      const { seq: _seq, ...rest } = m;
      await trx
        .insertInto('queue_messages')
        .values({
          ...rest,
          queue_id: dlq.id,
          visible_at: t,
          expires_at: (dlq.fifo ? t : m.sent_at) + retention,
          receive_count: 0,
          first_received_at: null,
          receipt: null,
          dlq_source_arn: q.arn,
        })
        .execute();
      await trx.deleteFrom('queue_messages').where('seq', '=', m.seq).execute();
      moved.add(m.seq);
    }
    if (pg) await sql`select pg_notify(${NOTIFY_CHANNEL}, ${dlq.id})`.execute(trx);
    queueMicrotask(() => signal.notify(dlq.id));
    return moved;
  }

  /** Visible messages of a standard queue, oldest-visible first, locked against other receivers. */
  async function pickStandard(trx: Tx, q: QueueInfo, n: number, t: number) {
    let sel = trx
      .selectFrom('queue_messages')
      .selectAll()
      .where('queue_id', '=', q.id)
      .where('visible_at', '<=', t)
      .where('expires_at', '>', t)
      .orderBy('visible_at')
      .limit(n);
    if (pg) sel = sel.forUpdate().skipLocked();
    return sel.execute();
  }

  /**
   * FIFO: messages in queue order from groups whose oldest message is visible (nothing of the group
   * in flight or delayed), whole prefixes of one group before the next. The queue row is locked
   * first so two receivers cannot both take a group.
   */
  async function pickFifo(trx: Tx, q: QueueInfo, n: number, t: number) {
    if (pg) await trx.selectFrom('queues').select('id').where('id', '=', q.id).forUpdate().execute();
    const scan = await trx
      .selectFrom('queue_messages')
      .selectAll()
      .where('queue_id', '=', q.id)
      .where('expires_at', '>', t)
      .orderBy('seq')
      .limit(2000)
      .execute();
    const blocked = new Set<string>();
    const byGroup = new Map<string, MessageRow[]>();
    for (const m of scan) {
      const g = m.group_id ?? '';
      if (blocked.has(g)) continue;
      if (m.visible_at > t) {
        blocked.add(g);
        continue;
      }
      let list = byGroup.get(g);
      if (!list) {
        list = [];
        byGroup.set(g, list);
      }
      list.push(m);
    }
    const picked: MessageRow[] = [];
    for (const list of byGroup.values()) {
      for (const m of list) {
        if (picked.length >= n) break;
        picked.push(m);
      }
      if (picked.length >= n) break;
    }
    return picked;
  }

  /**
   * A standard queue without a redrive policy: pick and stamp in one statement (PostgreSQL: `FOR
   * UPDATE SKIP LOCKED` in a CTE, one round trip without an explicit transaction; SQLite: through
   * the group commit).
   */
  async function receiveSimple(q: QueueInfo, n: number, visibilityMs: number): Promise<ReceivedMessage[]> {
    const t = now();
    const token = randomHex8();
    let rows: MessageRow[];
    if (hot) {
      // One writing statement (the SELECT before it writes nothing); rows are built after the commit.
      const raw = await hot.run(
        (db) => {
          const seqs = prepared(db, PICK_SQLITE).pluck(true).all(q.id, t, t, n) as number[];
          if (seqs.length === 0) return [];
          return prepared(db, stampSql(seqs.length))
            .raw(true)
            .all(t + visibilityMs, token, t, ...seqs) as unknown[][];
        },
        { durable: false, oneStatement: true },
      );
      rows = raw.map(rowOfReceived);
    } else {
      const r = await sql<MessageRow>`
        with picked as (
          select seq from queue_messages
          where queue_id = ${q.id} and visible_at <= ${t} and expires_at > ${t}
          order by visible_at limit ${n}
          for update skip locked)
        update queue_messages m
        set visible_at = ${t + visibilityMs}, receive_count = m.receive_count + 1, receipt = ${token},
            first_received_at = coalesce(m.first_received_at, ${t})
        from picked where m.seq = picked.seq
        returning m.*`.execute(database.db);
      rows = r.rows;
    }
    rows.sort((a, b) => a.seq - b.seq);
    return rows.map((m) => toReceived(q, m, token));
  }

  async function receiveOnce(q: QueueInfo, n: number, visibilityMs: number): Promise<ReceivedMessage[]> {
    if (!q.fifo && !q.attributes.RedrivePolicy) return receiveSimple(q, n, visibilityMs);
    const t = now();
    const token = randomHex8();
    return database.tx(async (trx) => {
      let picked = q.fifo ? await pickFifo(trx, q, n, t) : await pickStandard(trx, q, n, t);
      if (picked.length === 0) return [];
      const moved = await redrive(trx, q, picked, t);
      if (moved.size > 0) {
        picked = picked.filter((m) => !moved.has(m.seq));
        // FIFO: a group whose head went to the dead-letter queue keeps its order from the next one.
        if (picked.length === 0) return [];
      }
      const seqs = picked.map((m) => m.seq);
      await trx
        .updateTable('queue_messages')
        .set((eb) => ({
          visible_at: t + visibilityMs,
          receive_count: eb('receive_count', '+', 1),
          receipt: token,
          first_received_at: eb.fn.coalesce('first_received_at', sql<number>`${t}`),
        }))
        .where('seq', 'in', seqs)
        .execute();
      return picked.map((m) =>
        toReceived(
          q,
          { ...m, receive_count: m.receive_count + 1, first_received_at: m.first_received_at ?? t },
          token,
        ),
      );
    });
  }

  async function retryAttempt(q: QueueInfo, attemptId: string): Promise<ReceivedMessage[] | undefined> {
    const key = `${q.id}\0${attemptId}`;
    const a = attempts.get(key);
    if (!a || a.expires <= now()) return undefined;
    const rows = await database.db
      .selectFrom('queue_messages')
      .selectAll()
      .where('seq', 'in', a.seqs)
      .where('receipt', '=', a.token)
      .where('visible_at', '>', now())
      .orderBy('seq')
      .execute();
    if (rows.length !== a.seqs.length) return undefined;
    return rows.map((m) => toReceived(q, m, a.token));
  }

  async function receiveMessages(
    ctx: QueueContext,
    ref: QueueRef,
    opts: ReceiveOptions = {},
    abort?: AbortLike,
  ): Promise<ReceivedMessage[]> {
    const n = opts.maxMessages ?? 1;
    if (!Number.isInteger(n) || n < 1 || n > 10)
      throw invalidParameter(
        `Value ${n} for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10, if provided.`,
      );
    if (
      opts.visibilityTimeout !== undefined &&
      (!Number.isInteger(opts.visibilityTimeout) ||
        opts.visibilityTimeout < 0 ||
        opts.visibilityTimeout > 43_200)
    )
      throw invalidParameter(
        `Value ${opts.visibilityTimeout} for parameter VisibilityTimeout is invalid. Reason: Must be between 0 and 43200, if provided.`,
      );
    if (
      opts.waitTimeSeconds !== undefined &&
      (!Number.isInteger(opts.waitTimeSeconds) ||
        opts.waitTimeSeconds < 0 ||
        opts.waitTimeSeconds > MAX_WAIT_SECONDS)
    )
      throw invalidParameter(
        `Value ${opts.waitTimeSeconds} for parameter WaitTimeSeconds is invalid. Reason: Must be >= 0 and <= 20, if provided.`,
      );
    if (opts.attemptId !== undefined && !/^[\x21-\x7e]{1,128}$/.test(opts.attemptId))
      throw invalidParameter(
        'Value for parameter ReceiveRequestAttemptId is invalid. Reason: 1 to 128 printable ASCII characters.',
      );
    const q = await access(ctx, ref, 'ReceiveMessage');
    const visibilityMs = (opts.visibilityTimeout ?? Number(q.attributes.VisibilityTimeout)) * 1000;
    const wait = opts.waitTimeSeconds ?? Number(q.attributes.ReceiveMessageWaitTimeSeconds);
    const deadline = now() + wait * 1000;
    if (q.fifo && opts.attemptId !== undefined) {
      const again = await retryAttempt(q, opts.attemptId);
      if (again) return again;
    }
    for (;;) {
      const got = await receiveOnce(q, n, visibilityMs);
      if (got.length > 0) {
        if (q.fifo && opts.attemptId !== undefined) {
          const t = now();
          for (const [k, v] of attempts) if (v.expires <= t) attempts.delete(k);
          attempts.set(`${q.id}\0${opts.attemptId}`, {
            seqs: got.map((m) => decodeReceipt(m.receiptHandle)!.seq),
            token: decodeReceipt(got[0]!.receiptHandle)!.token,
            expires: t + FIFO_DEDUP_MS,
          });
        }
        return got;
      }
      const left = deadline - now();
      if (left <= 0 || closing || abort?.aborted) return [];
      await signal.wait(q.id, Math.min(left, RECHECK_MS), abort, n);
    }
  }

  function receiptFor(q: QueueInfo, handle: string | undefined) {
    if (handle === undefined || handle === '') throw missingParameter('ReceiptHandle');
    const r = decodeReceipt(handle);
    if (!r || r.queueId !== q.id)
      throw new QueueError(
        'ReceiptHandleIsInvalid',
        `The input receipt handle "${handle.slice(0, 200)}" is not a valid receipt handle.`,
      );
    return r;
  }

  /**
   * Deletes received messages. A handle from an earlier receive of the same message still deletes
   * it (at-least-once: a deleted message must never come back); one of a message already gone is a no-op.
   */
  async function deleteMessages(
    ctx: QueueContext,
    ref: QueueRef,
    entries: { id?: string; receiptHandle: string }[],
    batch: boolean,
  ): Promise<EntryResult<true>[]> {
    if (batch) checkBatch(entries, 'entry');
    const q = await access(ctx, ref, 'DeleteMessage');
    const results: EntryResult<true>[] = [];
    const seqs: number[] = [];
    for (const e of entries) {
      try {
        seqs.push(receiptFor(q, e.receiptHandle).seq);
        results.push({ id: e.id ?? '', ok: true });
      } catch (err) {
        if (!batch || !(err instanceof QueueError)) throw err;
        results.push({ id: e.id ?? '', error: err });
      }
    }
    if (seqs.length > 0) {
      if (hot)
        await hot.run((db) => prepared(db, deleteSql(seqs.length)).run(q.id, ...seqs), {
          durable: false,
          oneStatement: true,
        });
      // One statement: atomic without an explicit transaction (one round trip on PostgreSQL).
      else
        await database.db
          .deleteFrom('queue_messages')
          .where('queue_id', '=', q.id)
          .where('seq', 'in', seqs)
          .execute();
      // FIFO: deleting a group's in-flight head may unblock the group for a waiting receive.
      if (q.fifo) signal.notify(q.id);
    }
    return results;
  }

  async function changeVisibility(
    ctx: QueueContext,
    ref: QueueRef,
    entries: { id?: string; receiptHandle: string; visibilityTimeout: number }[],
    batch: boolean,
  ): Promise<EntryResult<true>[]> {
    if (batch) checkBatch(entries, 'entry');
    const q = await access(ctx, ref, 'ChangeMessageVisibility');
    const results: EntryResult<true>[] = [];
    const t = now();
    let madeVisible = false;
    await database.tx(async (trx) => {
      for (const e of entries) {
        try {
          const r = receiptFor(q, e.receiptHandle);
          const v = e.visibilityTimeout;
          if (!Number.isInteger(v) || v < 0 || v > 43_200)
            throw invalidParameter(
              `Value ${v} for parameter VisibilityTimeout is invalid. Reason: Must be between 0 and 43200.`,
            );
          const res = await trx
            .updateTable('queue_messages')
            .set({ visible_at: t + v * 1000 })
            .where('queue_id', '=', q.id)
            .where('seq', '=', r.seq)
            .where('receipt', '=', r.token)
            .where('visible_at', '>', t)
            .executeTakeFirst();
          if (Number(res.numUpdatedRows) === 0)
            throw new QueueError(
              'MessageNotInflight',
              'Message is not in flight: its visibility timeout has expired or it was received again or deleted.',
            );
          if (v === 0) madeVisible = true;
          results.push({ id: e.id ?? '', ok: true });
        } catch (err) {
          if (!batch || !(err instanceof QueueError)) throw err;
          results.push({ id: e.id ?? '', error: err });
        }
      }
    });
    if (madeVisible) signal.notify(q.id);
    return results;
  }

  // ---- message move tasks ------------------------------------------------------------------

  const taskInfo = (r: QueueMoveTasksTable): MoveTaskInfo => ({
    ...(r.status === 'RUNNING' ? { taskHandle: r.handle } : {}),
    status: r.status,
    sourceArn: r.source_arn,
    ...(r.destination_arn ? { destinationArn: r.destination_arn } : {}),
    ...(r.max_per_second !== null ? { maxNumberOfMessagesPerSecond: r.max_per_second } : {}),
    approximateNumberOfMessagesMoved: r.moved,
    approximateNumberOfMessagesToMove: r.to_move,
    ...(r.failure_reason ? { failureReason: r.failure_reason } : {}),
    startedTimestamp: r.started_at,
  });

  async function queueForArn(ctx: QueueContext, arn: string, action: SqsAction, param: string) {
    const ref = parseQueueArn(arn);
    if (!ref)
      throw invalidParameter(
        `Value ${arn.slice(0, 200)} for parameter ${param} is invalid. Reason: not a queue ARN.`,
      );
    try {
      return await access(ctx, ref, action);
    } catch (e) {
      if (e instanceof QueueError && e.sqsName === 'QueueDoesNotExist')
        throw new QueueError(
          'ResourceNotFoundException',
          `The resource that you specified for the ${param} parameter doesn't exist.`,
        );
      throw e;
    }
  }

  async function startMessageMoveTask(
    ctx: QueueContext,
    input: { sourceArn: string; destinationArn?: string; maxNumberOfMessagesPerSecond?: number },
  ): Promise<string> {
    const src = await queueForArn(ctx, input.sourceArn, 'StartMessageMoveTask', 'SourceArn');
    const rate = input.maxNumberOfMessagesPerSecond;
    if (rate !== undefined && (!Number.isInteger(rate) || rate < 1 || rate > 500))
      throw invalidParameter(
        'Value for parameter MaxNumberOfMessagesPerSecond is invalid. Reason: Must be between 1 and 500.',
      );
    const all = await queueQuery(database.db).where('queues.tenant_id', '=', src.tenantId).execute();
    const isDlq = all.some((r) => {
      const rp = toInfo(r, region).attributes.RedrivePolicy;
      return rp !== undefined && parseRedrivePolicy(rp).deadLetterTargetArn === src.arn;
    });
    if (!isDlq) throw invalidParameter('Source queue must be configured as a Dead Letter Queue.');
    if (input.destinationArn !== undefined) {
      const dst = await queueForArn(ctx, input.destinationArn, 'SendMessage', 'DestinationArn');
      if (dst.id === src.id) throw invalidParameter('The source and destination queues must differ.');
      if (dst.fifo !== src.fifo)
        throw invalidParameter('The destination queue must be of the same type as the source.');
    }
    const t = now();
    const handle = Buffer.from(JSON.stringify({ taskId: randomUUID(), sourceArn: src.arn })).toString(
      'base64url',
    );
    await database.tx(async (trx) => {
      const running = await trx
        .selectFrom('queue_move_tasks')
        .select('handle')
        .where('source_queue_id', '=', src.id)
        .where('status', 'in', ['RUNNING', 'CANCELLING'])
        .executeTakeFirst();
      if (running)
        throw new QueueError(
          'UnsupportedOperation',
          'There is already a task running. Only one active task is allowed for a source queue arn at a given time.',
        );
      const c = await counts(trx, src.id);
      await trx
        .insertInto('queue_move_tasks')
        .values({
          handle,
          tenant_id: src.tenantId,
          source_queue_id: src.id,
          source_arn: src.arn,
          destination_arn: input.destinationArn ?? null,
          max_per_second: rate ?? null,
          status: 'RUNNING',
          moved: 0,
          to_move: c.visible + c.inflight + c.delayed,
          failure_reason: null,
          started_at: t,
          updated_at: t,
        })
        .execute();
      await audit(trx, ctx, 'StartMessageMoveTask', src, {
        destination: input.destinationArn ?? 'original sources',
      });
    });
    kickMoves();
    return handle;
  }

  async function listMessageMoveTasks(
    ctx: QueueContext,
    sourceArn: string,
    maxResults = 1,
  ): Promise<MoveTaskInfo[]> {
    if (!Number.isInteger(maxResults) || maxResults < 1 || maxResults > 10)
      throw invalidParameter('Value for parameter MaxResults is invalid. Reason: Must be between 1 and 10.');
    const src = await queueForArn(ctx, sourceArn, 'ListMessageMoveTasks', 'SourceArn');
    const rows = await database.db
      .selectFrom('queue_move_tasks')
      .selectAll()
      .where('source_queue_id', '=', src.id)
      .orderBy('started_at', 'desc')
      .limit(maxResults)
      .execute();
    return rows.map(taskInfo);
  }

  async function cancelMessageMoveTask(ctx: QueueContext, taskHandle: string): Promise<number> {
    let sourceArn: string | undefined;
    try {
      sourceArn = (
        JSON.parse(Buffer.from(taskHandle, 'base64url').toString('utf8')) as { sourceArn?: string }
      ).sourceArn;
    } catch {
      sourceArn = undefined;
    }
    if (!sourceArn)
      throw new QueueError('ResourceNotFoundException', 'The task handle does not name a task.');
    const src = await queueForArn(ctx, sourceArn, 'CancelMessageMoveTask', 'TaskHandle');
    return database.tx(async (trx) => {
      const row = await trx
        .selectFrom('queue_move_tasks')
        .selectAll()
        .where('handle', '=', taskHandle)
        .executeTakeFirst();
      if (!row || row.source_queue_id !== src.id)
        throw new QueueError('ResourceNotFoundException', 'The task handle does not name a task.');
      if (row.status !== 'RUNNING')
        throw new QueueError(
          'UnsupportedOperation',
          `Only active tasks can be cancelled; this one is ${row.status}.`,
        );
      await trx
        .updateTable('queue_move_tasks')
        .set({ status: 'CANCELLED', updated_at: now() })
        .where('handle', '=', taskHandle)
        .execute();
      await audit(trx, ctx, 'CancelMessageMoveTask', src);
      return row.moved;
    });
  }

  let movesRunning: Promise<void> | undefined;
  const kickMoves = () => {
    movesRunning ??= runMoveTasks()
      .catch((err) => deps.logger?.error({ err: String(err) }, 'message move tasks failed'))
      .finally(() => {
        movesRunning = undefined;
      });
  };

  /**
   * Advances running move tasks: each step moves up to the task's rate (or 500) of the source's
   * visible messages to the destination, or back to the queue each came from, in one transaction.
   */
  async function runMoveTasks(): Promise<void> {
    for (;;) {
      const tasks = await database.db
        .selectFrom('queue_move_tasks')
        .selectAll()
        .where('status', '=', 'RUNNING')
        .execute();
      if (tasks.length === 0 || closing) return;
      const started = now();
      for (const task of tasks) await moveStep(task);
      const elapsed = now() - started;
      if (elapsed < 1000)
        await new Promise((r) =>
          setTimeout(r, tasks.some((x) => x.max_per_second !== null) ? 1000 - elapsed : 50),
        );
    }
  }

  async function moveStep(task: QueueMoveTasksTable) {
    const t = now();
    const touched = new Set<string>();
    await database.tx(async (trx) => {
      const cur = await trx
        .selectFrom('queue_move_tasks')
        .selectAll()
        .where('handle', '=', task.handle)
        .executeTakeFirst();
      if (cur?.status !== 'RUNNING') return;
      const src = await queueQuery(trx).where('queues.id', '=', task.source_queue_id).executeTakeFirst();
      const finish = (status: QueueMoveTasksTable['status'], reason?: string) =>
        trx
          .updateTable('queue_move_tasks')
          .set({ status, failure_reason: reason ?? null, updated_at: t })
          .where('handle', '=', task.handle)
          .execute();
      if (!src) return finish('FAILED', 'The source queue was deleted.');
      const budget = Math.min(cur.max_per_second ?? 500, Math.max(0, cur.to_move - cur.moved));
      if (budget === 0) return finish('COMPLETED');
      let sel = trx
        .selectFrom('queue_messages')
        .selectAll()
        .where('queue_id', '=', src.id)
        .where('visible_at', '<=', t)
        .where('expires_at', '>', t)
        .orderBy('seq')
        .limit(budget);
      if (pg) sel = sel.forUpdate().skipLocked();
      const msgs = await sel.execute();
      if (msgs.length === 0) return finish('COMPLETED');
      const destinations = new Map<string, QueueInfo | undefined>();
      for (const m of msgs) {
        const arn = cur.destination_arn ?? m.dlq_source_arn;
        if (!arn) return finish('FAILED', 'A message has no original source queue; give a DestinationArn.');
        if (!destinations.has(arn)) destinations.set(arn, await ownQueueByArn(trx, cur.tenant_id, arn));
        const dst = destinations.get(arn);
        if (!dst) return finish('FAILED', `The destination queue ${arn} does not exist.`);
        const { seq: _seq, ...rest } = m;
        await trx
          .insertInto('queue_messages')
          .values({
            ...rest,
            queue_id: dst.id,
            visible_at: t,
            expires_at: t + Number(dst.attributes.MessageRetentionPeriod) * 1000,
            receive_count: 0,
            first_received_at: null,
            receipt: null,
            dlq_source_arn: null,
          })
          .execute();
        touched.add(dst.id);
      }
      await trx
        .deleteFrom('queue_messages')
        .where(
          'seq',
          'in',
          msgs.map((m) => m.seq),
        )
        .execute();
      const moved = cur.moved + msgs.length;
      await trx
        .updateTable('queue_move_tasks')
        .set({ moved, updated_at: t, ...(moved >= cur.to_move ? { status: 'COMPLETED' as const } : {}) })
        .where('handle', '=', task.handle)
        .execute();
      if (pg) for (const id of touched) await sql`select pg_notify(${NOTIFY_CHANNEL}, ${id})`.execute(trx);
    });
    for (const id of touched) signal.notify(id);
  }

  // ---- housekeeping ------------------------------------------------------------------------

  /** Deletes messages past their retention and FIFO deduplication ids past 5 minutes. */
  async function sweep(): Promise<number> {
    const t = now();
    let total = 0;
    for (;;) {
      const batch = await database.db
        .selectFrom('queue_messages')
        .select('seq')
        .where('expires_at', '<=', t)
        .limit(1000)
        .execute();
      if (batch.length === 0) break;
      await database.tx((trx) =>
        trx
          .deleteFrom('queue_messages')
          .where(
            'seq',
            'in',
            batch.map((b) => b.seq),
          )
          .execute(),
      );
      total += batch.length;
      if (batch.length < 1000) break;
    }
    await database.tx((trx) => trx.deleteFrom('queue_dedup').where('expires_at', '<=', t).execute());
    // Messages a replica accepted for a queue another replica had just deleted (its cached lookup).
    const orphans = await database.tx((trx) =>
      trx
        .deleteFrom('queue_messages')
        .where(({ not, exists, selectFrom }) =>
          not(
            exists(
              selectFrom('queues').select('queues.id').whereRef('queues.id', '=', 'queue_messages.queue_id'),
            ),
          ),
        )
        .executeTakeFirst(),
    );
    total += Number(orphans.numDeletedRows);
    await database.tx((trx) =>
      trx
        .deleteFrom('queue_move_tasks')
        .where('status', '!=', 'RUNNING')
        .where('updated_at', '<', t - 14 * 86_400_000)
        .execute(),
    );
    return total;
  }

  return {
    region,
    createQueue,
    getQueueUrl,
    listQueues,
    deleteQueue,
    getQueueAttributes,
    setQueueAttributes,
    purgeQueue,
    tagQueue,
    untagQueue,
    listQueueTags,
    listDeadLetterSourceQueues,
    addPermission: (ctx: QueueContext, ref: QueueRef, label: string, accounts: string[], actions: string[]) =>
      changePolicy(ctx, ref, 'AddPermission', (q) =>
        addPermission(q.attributes.Policy, q.arn, label, accounts, actions),
      ),
    removePermission: (ctx: QueueContext, ref: QueueRef, label: string) =>
      changePolicy(ctx, ref, 'RemovePermission', (q) => removePermission(q.attributes.Policy, label)),
    sendMessages,
    receiveMessages,
    deleteMessages,
    changeVisibility,
    startMessageMoveTask,
    listMessageMoveTasks,
    cancelMessageMoveTask,
    sweep,
    /** Resumes move tasks left running by a previous process. */
    resumeMoveTasks: kickMoves,
    async close() {
      closing = true;
      signal.wakeAll();
      await movesRunning;
      await listener?.close();
      await hot?.close();
    },
  };
}

export type QueueService = ReturnType<typeof createQueueService>;

/** Selected system attribute names, as ReceiveMessage's AttributeNames/MessageSystemAttributeNames ask. */
export function selectSystemAttributes(
  all: Record<string, string>,
  names: string[] | undefined,
): Record<string, string> {
  if (!names || names.length === 0) return {};
  if (names.includes('All')) return { ...all };
  const out: Record<string, string> = {};
  for (const n of names) if (all[n] !== undefined) out[n] = all[n]!;
  return out;
}

/** Selected message attributes: `All`, `.*`, exact names, or `prefix.*`. */
export function selectMessageAttributes(
  all: Record<string, MessageAttribute>,
  names: string[] | undefined,
): Record<string, MessageAttribute> {
  if (!names || names.length === 0) return {};
  const out: Record<string, MessageAttribute> = {};
  for (const [k, v] of Object.entries(all)) {
    if (
      names.some(
        (n) => n === 'All' || n === '.*' || n === k || (n.endsWith('.*') && k.startsWith(n.slice(0, -1))),
      )
    )
      out[k] = v;
  }
  return out;
}
