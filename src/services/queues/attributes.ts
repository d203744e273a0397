import { QueueError } from './errors.js';

/** Queue attributes a caller may set, with SQS's defaults (all values are strings on the wire). */
export const DEFAULT_ATTRIBUTES = {
  DelaySeconds: '0',
  MaximumMessageSize: '262144',
  MessageRetentionPeriod: '345600',
  ReceiveMessageWaitTimeSeconds: '0',
  VisibilityTimeout: '30',
  SqsManagedSseEnabled: 'true',
} as const;

const INT_RANGES: Record<string, [number, number]> = {
  DelaySeconds: [0, 900],
  MaximumMessageSize: [1024, 262_144],
  MessageRetentionPeriod: [60, 1_209_600],
  ReceiveMessageWaitTimeSeconds: [0, 20],
  VisibilityTimeout: [0, 43_200],
  KmsDataKeyReusePeriodSeconds: [60, 86_400],
};

const SETTABLE = new Set([
  ...Object.keys(INT_RANGES),
  'Policy',
  'RedrivePolicy',
  'RedriveAllowPolicy',
  'KmsMasterKeyId',
  'SqsManagedSseEnabled',
]);
const FIFO_SETTABLE = new Set(['ContentBasedDeduplication', 'DeduplicationScope', 'FifoThroughputLimit']);

/** Attributes GetQueueAttributes computes rather than stores. */
export const COMPUTED_ATTRIBUTES = [
  'ApproximateNumberOfMessages',
  'ApproximateNumberOfMessagesNotVisible',
  'ApproximateNumberOfMessagesDelayed',
  'CreatedTimestamp',
  'LastModifiedTimestamp',
  'QueueArn',
] as const;

export const MAX_RECEIVE_COUNT = 1000;

const badValue = (name: string, why?: string) =>
  new QueueError(
    'InvalidAttributeValue',
    `Invalid value for the parameter ${name}.${why ? ` Reason: ${why}` : ''}`,
  );

export interface RedrivePolicy {
  deadLetterTargetArn: string;
  maxReceiveCount: number;
}

export interface RedriveAllowPolicy {
  redrivePermission: 'allowAll' | 'denyAll' | 'byQueue';
  sourceQueueArns?: string[];
}

const ARN = /^arn:[\w-]+:sqs:[\w-]+:\d{12}:[\w-]{1,80}(\.fifo)?$/;

function parseJson(name: string, value: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(value);
  } catch {
    throw badValue(name, 'not valid JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw badValue(name, 'not a JSON object');
  return v as Record<string, unknown>;
}

export function parseRedrivePolicy(value: string): RedrivePolicy {
  const o = parseJson('RedrivePolicy', value);
  const arn = o.deadLetterTargetArn;
  const max = Number(o.maxReceiveCount);
  if (typeof arn !== 'string' || !ARN.test(arn))
    throw badValue('RedrivePolicy', 'Invalid value for deadLetterTargetArn.');
  if (!Number.isInteger(max) || max < 1 || max > MAX_RECEIVE_COUNT)
    throw badValue(
      'RedrivePolicy',
      `Invalid value for maxReceiveCount: ${String(o.maxReceiveCount)}, valid values are from 1 to ${MAX_RECEIVE_COUNT} both inclusive.`,
    );
  for (const k of Object.keys(o))
    if (k !== 'deadLetterTargetArn' && k !== 'maxReceiveCount')
      throw badValue('RedrivePolicy', `Unknown key ${k}.`);
  return { deadLetterTargetArn: arn, maxReceiveCount: max };
}

export function parseRedriveAllowPolicy(value: string): RedriveAllowPolicy {
  const o = parseJson('RedriveAllowPolicy', value);
  const p = o.redrivePermission;
  if (p !== 'allowAll' && p !== 'denyAll' && p !== 'byQueue')
    throw badValue('RedriveAllowPolicy', 'redrivePermission must be allowAll, denyAll or byQueue.');
  const arns = o.sourceQueueArns;
  if (p === 'byQueue') {
    if (
      !Array.isArray(arns) ||
      arns.length < 1 ||
      arns.length > 10 ||
      !arns.every((a) => typeof a === 'string' && ARN.test(a))
    )
      throw badValue('RedriveAllowPolicy', 'byQueue needs sourceQueueArns: 1 to 10 queue ARNs.');
    return { redrivePermission: p, sourceQueueArns: arns as string[] };
  }
  if (arns !== undefined)
    throw badValue('RedriveAllowPolicy', 'sourceQueueArns is allowed only with byQueue.');
  return { redrivePermission: p };
}

/** Whether a dead-letter queue with this RedriveAllowPolicy accepts `sourceArn` as a source. */
export function redriveAllowed(allowPolicy: string | undefined, sourceArn: string): boolean {
  if (!allowPolicy) return true;
  const p = parseRedriveAllowPolicy(allowPolicy);
  if (p.redrivePermission === 'allowAll') return true;
  if (p.redrivePermission === 'denyAll') return false;
  return p.sourceQueueArns?.includes(sourceArn) ?? false;
}

/**
 * Validates attributes a caller sets and returns the queue's attributes after the change: unknown
 * names are InvalidAttributeName, bad values InvalidAttributeValue; an empty Policy, RedrivePolicy or
 * RedriveAllowPolicy removes it. `FifoQueue` is only accepted on create (`creating`).
 */
export function applyAttributes(
  current: Record<string, string>,
  changes: Record<string, string>,
  opts: { fifo: boolean; creating: boolean },
): Record<string, string> {
  const next = { ...current };
  for (const [name, raw] of Object.entries(changes)) {
    const value = String(raw);
    if (name === 'FifoQueue') {
      if (!opts.creating) throw new QueueError('InvalidAttributeName', 'Unknown Attribute FifoQueue.');
      if (value !== String(opts.fifo))
        throw badValue(
          'FifoQueue',
          opts.fifo
            ? 'FifoQueue must be true for a .fifo queue name.'
            : 'A FIFO queue name must end with .fifo.',
        );
      continue;
    }
    if (!SETTABLE.has(name) && !(opts.fifo && FIFO_SETTABLE.has(name)))
      throw new QueueError('InvalidAttributeName', `Unknown Attribute ${name}.`);
    const range = INT_RANGES[name];
    if (range) {
      if (!/^\d{1,10}$/.test(value) || Number(value) < range[0] || Number(value) > range[1])
        throw badValue(name, `must be an integer from ${range[0]} to ${range[1]}.`);
      next[name] = String(Number(value));
      continue;
    }
    switch (name) {
      case 'Policy':
      case 'RedrivePolicy':
      case 'RedriveAllowPolicy':
        if (value === '') {
          delete next[name];
          continue;
        }
        if (name === 'Policy') parseJson(name, value);
        if (name === 'RedrivePolicy') parseRedrivePolicy(value);
        if (name === 'RedriveAllowPolicy') parseRedriveAllowPolicy(value);
        break;
      case 'SqsManagedSseEnabled':
      case 'ContentBasedDeduplication':
        if (value !== 'true' && value !== 'false') throw badValue(name, 'must be true or false.');
        break;
      case 'DeduplicationScope':
        if (value !== 'queue' && value !== 'messageGroup')
          throw badValue(name, 'must be queue or messageGroup.');
        break;
      case 'FifoThroughputLimit':
        if (value !== 'perQueue' && value !== 'perMessageGroupId')
          throw badValue(name, 'must be perQueue or perMessageGroupId.');
        break;
      case 'KmsMasterKeyId':
        if (value.length > 2048) throw badValue(name);
        break;
    }
    next[name] = value;
  }
  if (next.KmsMasterKeyId && next.KmsDataKeyReusePeriodSeconds === undefined)
    next.KmsDataKeyReusePeriodSeconds = '300';
  if (next.KmsMasterKeyId) next.SqsManagedSseEnabled = 'false';
  if (opts.fifo) {
    next.ContentBasedDeduplication ??= 'false';
    next.DeduplicationScope ??= 'queue';
    next.FifoThroughputLimit ??= 'perQueue';
    if (next.FifoThroughputLimit === 'perMessageGroupId' && next.DeduplicationScope !== 'messageGroup')
      throw badValue('FifoThroughputLimit', 'perMessageGroupId needs DeduplicationScope messageGroup.');
  }
  return next;
}

export const defaultAttributes = (fifo: boolean): Record<string, string> =>
  applyAttributes({ ...DEFAULT_ATTRIBUTES }, {}, { fifo, creating: true });

/** Every attribute name GetQueueAttributes knows for a queue of this kind. */
export function knownAttributeNames(fifo: boolean): string[] {
  return [
    ...COMPUTED_ATTRIBUTES,
    ...SETTABLE,
    'KmsDataKeyReusePeriodSeconds',
    ...(fifo ? ['FifoQueue', ...FIFO_SETTABLE] : []),
  ];
}
