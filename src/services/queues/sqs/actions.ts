/**
 * Every SQS action, keyed by its AWS name. Handlers take the request in the JSON protocol's shape
 * (the Query adapter builds the same shape from form parameters), call QueueService, and answer
 * the JSON protocol's output shape (the Query adapter renders it as XML).
 */

import { invalidParameter, missingParameter, QueueError } from '../errors.js';
import type { MessageAttribute } from '../md5.js';
import { md5OfAttributes } from '../md5.js';
import {
  type EntryResult,
  type QueueContext,
  type QueueInfo,
  type QueueRef,
  type QueueService,
  type ReceivedMessage,
  type SendEntry,
  type SqsAction,
  selectMessageAttributes,
  selectSystemAttributes,
} from '../service.js';
import type { AbortLike } from '../signal.js';

export type Input = Record<string, unknown>;
export type Output = Record<string, unknown>;

export interface ActionCall {
  queues: QueueService;
  ctx: QueueContext;
  input: Input;
  /** `http://host:port` the client reached; queue URLs are built on it. */
  baseUrl: string;
  /** Aborted when the client goes away (ends a long poll early). */
  abort: AbortLike;
}

// ---- typed access to the input ------------------------------------------------------------

function str(input: Input, name: string, required: true): string;
function str(input: Input, name: string, required?: false): string | undefined;
function str(input: Input, name: string, required = false): string | undefined {
  const v = input[name];
  if (v === undefined || v === null) {
    if (required) throw missingParameter(name);
    return undefined;
  }
  if (typeof v !== 'string')
    throw invalidParameter(`Value for parameter ${name} is invalid: expected a string.`);
  return v;
}

function int(input: Input, name: string): number | undefined {
  const v = input[name];
  if (v === undefined || v === null) return undefined;
  const n =
    typeof v === 'number' ? v : typeof v === 'string' && /^-?\d{1,15}$/.test(v) ? Number(v) : Number.NaN;
  if (!Number.isInteger(n))
    throw invalidParameter(
      `Value ${String(v).slice(0, 50)} for parameter ${name} is invalid. Reason: must be an integer.`,
    );
  return n;
}

function strList(input: Input, name: string): string[] | undefined {
  const v = input[name];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string'))
    throw invalidParameter(`Value for parameter ${name} is invalid: expected a list of strings.`);
  return v as string[];
}

function strMap(input: Input, name: string): Record<string, string> | undefined {
  const v = input[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v))
    throw invalidParameter(`Value for parameter ${name} is invalid: expected a map.`);
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (typeof x !== 'string' && typeof x !== 'number' && typeof x !== 'boolean')
      throw invalidParameter(`Value for ${name}.${k} is invalid: expected a string.`);
    out[k] = String(x);
  }
  return out;
}

function messageAttributes(v: unknown, what: string): Record<string, MessageAttribute> | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v))
    throw invalidParameter(`Value for parameter ${what} is invalid: expected a map.`);
  const out: Record<string, MessageAttribute> = {};
  for (const [name, raw] of Object.entries(v as Record<string, unknown>)) {
    const a = (raw ?? {}) as Record<string, unknown>;
    const dataType = a.DataType;
    if (typeof dataType !== 'string')
      throw invalidParameter(`The message attribute '${name}' must contain a non-empty attribute type.`);
    const attr: MessageAttribute = { DataType: dataType };
    if (a.StringValue !== undefined && a.StringValue !== null) {
      if (typeof a.StringValue !== 'string')
        throw invalidParameter(`StringValue of message attribute '${name}' must be a string.`);
      attr.StringValue = a.StringValue;
    }
    if (a.BinaryValue !== undefined && a.BinaryValue !== null) {
      if (typeof a.BinaryValue !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(a.BinaryValue))
        throw invalidParameter(`BinaryValue of message attribute '${name}' must be base64.`);
      attr.BinaryValue = Buffer.from(a.BinaryValue, 'base64');
    }
    if (a.StringListValues !== undefined || a.BinaryListValues !== undefined)
      throw invalidParameter(`Message attribute list values are not supported (attribute '${name}').`);
    out[name] = attr;
  }
  return out;
}

function entries(input: Input, name: string): Input[] {
  const v = input[name];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'object' && x !== null && !Array.isArray(x)))
    throw invalidParameter(`Value for parameter ${name} is invalid: expected a list of entries.`);
  return v as Input[];
}

/** `<base>/<account>/<name>`: the account and name; anything else is InvalidAddress. */
export function parseQueueUrl(url: string): QueueRef {
  let path = url;
  if (/^https?:\/\//i.test(url)) {
    try {
      path = new URL(url).pathname;
    } catch {
      path = '';
    }
  }
  const m = /^\/(\d{12})\/([\w-]{1,80}(?:\.fifo)?)\/?$/.exec(path);
  if (!m)
    throw new QueueError(
      'InvalidAddress',
      `The address ${url.slice(0, 200)} is not valid for this endpoint.`,
    );
  return { accountId: m[1]!, name: m[2]! };
}

const queueRef = (input: Input) => parseQueueUrl(str(input, 'QueueUrl', true));
const urlOf = (base: string, q: QueueInfo) => `${base}/${q.accountId}/${q.name}`;

// ---- message views ------------------------------------------------------------------------

const attrOut = (a: MessageAttribute) =>
  a.BinaryValue !== undefined
    ? { BinaryValue: a.BinaryValue.toString('base64'), DataType: a.DataType }
    : { StringValue: a.StringValue, DataType: a.DataType };

/**
 * The view of each received message a ReceiveMessage answers, with the requested attribute names
 * read from the input once per request (not once per message). Without any, a message is its four
 * plain fields.
 */
function messageView(input: Input): (m: ReceivedMessage) => Output {
  const systemNames = [
    ...(strList(input, 'AttributeNames') ?? []),
    ...(strList(input, 'MessageSystemAttributeNames') ?? []),
  ];
  const attributeNames = strList(input, 'MessageAttributeNames');
  if (systemNames.length === 0 && (attributeNames === undefined || attributeNames.length === 0))
    return (m) => ({
      MessageId: m.messageId,
      ReceiptHandle: m.receiptHandle,
      MD5OfBody: m.md5OfBody,
      Body: m.body,
    });
  return (m) => {
    const attrs = selectSystemAttributes(m.systemAttributes, systemNames);
    const msgAttrs = selectMessageAttributes(m.attributes, attributeNames);
    const md5 = md5OfAttributes(msgAttrs);
    return {
      MessageId: m.messageId,
      ReceiptHandle: m.receiptHandle,
      MD5OfBody: m.md5OfBody,
      Body: m.body,
      ...(Object.keys(attrs).length > 0 ? { Attributes: attrs } : {}),
      ...(md5
        ? {
            MD5OfMessageAttributes: md5,
            MessageAttributes: Object.fromEntries(Object.entries(msgAttrs).map(([k, v]) => [k, attrOut(v)])),
          }
        : {}),
    };
  };
}

function sendEntry(e: Input, id?: string): SendEntry {
  const delay = int(e, 'DelaySeconds');
  const attributes = messageAttributes(e.MessageAttributes, 'MessageAttributes');
  const systemAttributes = messageAttributes(e.MessageSystemAttributes, 'MessageSystemAttributes');
  const groupId = str(e, 'MessageGroupId');
  const dedupId = str(e, 'MessageDeduplicationId');
  const body = e.MessageBody;
  if (body !== undefined && typeof body !== 'string') throw invalidParameter('MessageBody must be a string.');
  // Assigned field by field: six conditional spreads per message showed in the send profile.
  const entry: SendEntry = { body: body as string };
  if (id !== undefined) entry.id = id;
  if (delay !== undefined) entry.delaySeconds = delay;
  if (attributes) entry.attributes = attributes;
  if (systemAttributes) entry.systemAttributes = systemAttributes;
  if (groupId !== undefined) entry.groupId = groupId;
  if (dedupId !== undefined) entry.dedupId = dedupId;
  return entry;
}

/** A batch's answer: Successful entries and Failed ones with SQS's code and fault side. */
function batchOut<T>(results: EntryResult<T>[], ok: (id: string, v: T) => Output): Output {
  const successful: Output[] = [];
  const failed: Output[] = [];
  for (const r of results) {
    if ('error' in r)
      failed.push({ Id: r.id, SenderFault: true, Code: r.error.sqsName, Message: r.error.message });
    else successful.push(ok(r.id, r.ok));
  }
  return { Successful: successful, Failed: failed };
}

const single = <T>(results: EntryResult<T>[]): T => {
  const r = results[0]!;
  if ('error' in r) throw r.error;
  return r.ok;
};

function entryIds(list: Input[]): (string | undefined)[] {
  return list.map((e) => (typeof e.Id === 'string' ? e.Id : undefined));
}

// ---- the table ----------------------------------------------------------------------------

type Handler = (call: ActionCall) => Promise<Output>;

/** Wire action names: the service's actions plus the batch forms. */
export type WireAction =
  | SqsAction
  | 'SendMessageBatch'
  | 'DeleteMessageBatch'
  | 'ChangeMessageVisibilityBatch';

export const ACTIONS: Record<WireAction, Handler> = {
  async CreateQueue({ queues, ctx, input, baseUrl }) {
    const q = await queues.createQueue(
      ctx,
      str(input, 'QueueName', true),
      strMap(input, 'Attributes'),
      strMap(input, 'tags') ?? strMap(input, 'Tags'),
    );
    return { QueueUrl: urlOf(baseUrl, q) };
  },
  async GetQueueUrl({ queues, ctx, input, baseUrl }) {
    const q = await queues.getQueueUrl(
      ctx,
      str(input, 'QueueName', true),
      str(input, 'QueueOwnerAWSAccountId'),
    );
    return { QueueUrl: urlOf(baseUrl, q) };
  },
  async ListQueues({ queues, ctx, input, baseUrl }) {
    const max = int(input, 'MaxResults');
    if (max !== undefined && (max < 1 || max > 1000))
      throw invalidParameter(
        'Value for parameter MaxResults is invalid. Reason: Must be between 1 and 1000.',
      );
    const prefix = str(input, 'QueueNamePrefix');
    const nextToken = str(input, 'NextToken');
    const r = await queues.listQueues(ctx, {
      ...(prefix !== undefined ? { prefix } : {}),
      ...(max !== undefined ? { maxResults: max } : {}),
      ...(nextToken !== undefined ? { nextToken } : {}),
    });
    return {
      ...(r.queues.length > 0 ? { QueueUrls: r.queues.map((q) => urlOf(baseUrl, q)) } : {}),
      ...(r.nextToken ? { NextToken: r.nextToken } : {}),
    };
  },
  async DeleteQueue({ queues, ctx, input }) {
    await queues.deleteQueue(ctx, queueRef(input));
    return {};
  },
  async GetQueueAttributes({ queues, ctx, input }) {
    const names = strList(input, 'AttributeNames');
    const attrs = await queues.getQueueAttributes(
      ctx,
      queueRef(input),
      names && names.length > 0 ? names : [],
    );
    return Object.keys(attrs).length > 0 ? { Attributes: attrs } : {};
  },
  async SetQueueAttributes({ queues, ctx, input }) {
    await queues.setQueueAttributes(ctx, queueRef(input), strMap(input, 'Attributes') ?? {});
    return {};
  },
  async PurgeQueue({ queues, ctx, input }) {
    await queues.purgeQueue(ctx, queueRef(input));
    return {};
  },
  async SendMessage({ queues, ctx, input }) {
    const r = single(await queues.sendMessages(ctx, queueRef(input), [sendEntry(input)], false));
    return {
      MD5OfMessageBody: r.md5OfBody,
      ...(r.md5OfAttributes ? { MD5OfMessageAttributes: r.md5OfAttributes } : {}),
      ...(r.md5OfSystemAttributes ? { MD5OfMessageSystemAttributes: r.md5OfSystemAttributes } : {}),
      MessageId: r.messageId,
      ...(r.sequenceNumber ? { SequenceNumber: r.sequenceNumber } : {}),
    };
  },
  async SendMessageBatch({ queues, ctx, input }) {
    const list = entries(input, 'Entries');
    const ids = entryIds(list);
    const results = await queues.sendMessages(
      ctx,
      queueRef(input),
      list.map((e, i) => sendEntry(e, ids[i] ?? '')),
      true,
    );
    return batchOut(results, (id, r) => ({
      Id: id,
      MessageId: r.messageId,
      MD5OfMessageBody: r.md5OfBody,
      ...(r.md5OfAttributes ? { MD5OfMessageAttributes: r.md5OfAttributes } : {}),
      ...(r.md5OfSystemAttributes ? { MD5OfMessageSystemAttributes: r.md5OfSystemAttributes } : {}),
      ...(r.sequenceNumber ? { SequenceNumber: r.sequenceNumber } : {}),
    }));
  },
  async ReceiveMessage({ queues, ctx, input, abort }) {
    const maxMessages = int(input, 'MaxNumberOfMessages');
    const visibilityTimeout = int(input, 'VisibilityTimeout');
    const waitTimeSeconds = int(input, 'WaitTimeSeconds');
    const attemptId = str(input, 'ReceiveRequestAttemptId');
    const msgs = await queues.receiveMessages(
      ctx,
      queueRef(input),
      {
        ...(maxMessages !== undefined ? { maxMessages } : {}),
        ...(visibilityTimeout !== undefined ? { visibilityTimeout } : {}),
        ...(waitTimeSeconds !== undefined ? { waitTimeSeconds } : {}),
        ...(attemptId !== undefined ? { attemptId } : {}),
      },
      abort,
    );
    return msgs.length > 0 ? { Messages: msgs.map(messageView(input)) } : {};
  },
  async DeleteMessage({ queues, ctx, input }) {
    single(
      await queues.deleteMessages(
        ctx,
        queueRef(input),
        [{ receiptHandle: str(input, 'ReceiptHandle', true) }],
        false,
      ),
    );
    return {};
  },
  async DeleteMessageBatch({ queues, ctx, input }) {
    const list = entries(input, 'Entries');
    const ids = entryIds(list);
    const results = await queues.deleteMessages(
      ctx,
      queueRef(input),
      list.map((e, i) => ({
        id: ids[i] ?? '',
        receiptHandle: typeof e.ReceiptHandle === 'string' ? e.ReceiptHandle : '',
      })),
      true,
    );
    return batchOut(results, (id) => ({ Id: id }));
  },
  async ChangeMessageVisibility({ queues, ctx, input }) {
    const v = int(input, 'VisibilityTimeout');
    if (v === undefined) throw missingParameter('VisibilityTimeout');
    single(
      await queues.changeVisibility(
        ctx,
        queueRef(input),
        [{ receiptHandle: str(input, 'ReceiptHandle', true), visibilityTimeout: v }],
        false,
      ),
    );
    return {};
  },
  async ChangeMessageVisibilityBatch({ queues, ctx, input }) {
    const list = entries(input, 'Entries');
    const ids = entryIds(list);
    const results = await queues.changeVisibility(
      ctx,
      queueRef(input),
      list.map((e, i) => ({
        id: ids[i] ?? '',
        receiptHandle: typeof e.ReceiptHandle === 'string' ? e.ReceiptHandle : '',
        visibilityTimeout: int(e, 'VisibilityTimeout') ?? 0,
      })),
      true,
    );
    return batchOut(results, (id) => ({ Id: id }));
  },
  async TagQueue({ queues, ctx, input }) {
    await queues.tagQueue(ctx, queueRef(input), strMap(input, 'Tags') ?? {});
    return {};
  },
  async UntagQueue({ queues, ctx, input }) {
    await queues.untagQueue(ctx, queueRef(input), strList(input, 'TagKeys') ?? []);
    return {};
  },
  async ListQueueTags({ queues, ctx, input }) {
    const tags = await queues.listQueueTags(ctx, queueRef(input));
    return Object.keys(tags).length > 0 ? { Tags: tags } : {};
  },
  async ListDeadLetterSourceQueues({ queues, ctx, input, baseUrl }) {
    const max = int(input, 'MaxResults');
    if (max !== undefined && (max < 1 || max > 1000))
      throw invalidParameter(
        'Value for parameter MaxResults is invalid. Reason: Must be between 1 and 1000.',
      );
    const nextToken = str(input, 'NextToken');
    const r = await queues.listDeadLetterSourceQueues(ctx, queueRef(input), {
      ...(max !== undefined ? { maxResults: max } : {}),
      ...(nextToken !== undefined ? { nextToken } : {}),
    });
    return {
      queueUrls: r.queues.map((q) => urlOf(baseUrl, q)),
      ...(r.nextToken ? { NextToken: r.nextToken } : {}),
    };
  },
  async AddPermission({ queues, ctx, input }) {
    await queues.addPermission(
      ctx,
      queueRef(input),
      str(input, 'Label', true),
      strList(input, 'AWSAccountIds') ?? [],
      strList(input, 'Actions') ?? [],
    );
    return {};
  },
  async RemovePermission({ queues, ctx, input }) {
    await queues.removePermission(ctx, queueRef(input), str(input, 'Label', true));
    return {};
  },
  async StartMessageMoveTask({ queues, ctx, input }) {
    const destinationArn = str(input, 'DestinationArn');
    const rate = int(input, 'MaxNumberOfMessagesPerSecond');
    const handle = await queues.startMessageMoveTask(ctx, {
      sourceArn: str(input, 'SourceArn', true),
      ...(destinationArn !== undefined ? { destinationArn } : {}),
      ...(rate !== undefined ? { maxNumberOfMessagesPerSecond: rate } : {}),
    });
    return { TaskHandle: handle };
  },
  async ListMessageMoveTasks({ queues, ctx, input }) {
    const tasks = await queues.listMessageMoveTasks(
      ctx,
      str(input, 'SourceArn', true),
      int(input, 'MaxResults') ?? 1,
    );
    return {
      Results: tasks.map((t) => ({
        ...(t.taskHandle ? { TaskHandle: t.taskHandle } : {}),
        Status: t.status,
        SourceArn: t.sourceArn,
        ...(t.destinationArn ? { DestinationArn: t.destinationArn } : {}),
        ...(t.maxNumberOfMessagesPerSecond !== undefined
          ? { MaxNumberOfMessagesPerSecond: t.maxNumberOfMessagesPerSecond }
          : {}),
        ApproximateNumberOfMessagesMoved: t.approximateNumberOfMessagesMoved,
        ApproximateNumberOfMessagesToMove: t.approximateNumberOfMessagesToMove,
        ...(t.failureReason ? { FailureReason: t.failureReason } : {}),
        StartedTimestamp: t.startedTimestamp,
      })),
    };
  },
  async CancelMessageMoveTask({ queues, ctx, input }) {
    const moved = await queues.cancelMessageMoveTask(ctx, str(input, 'TaskHandle', true));
    return { ApproximateNumberOfMessagesMoved: moved };
  },
};

export function findAction(name: string): Handler | undefined {
  return Object.hasOwn(ACTIONS, name) ? (ACTIONS as Record<string, Handler>)[name] : undefined;
}

export const ACTION_NAMES = Object.keys(ACTIONS);
