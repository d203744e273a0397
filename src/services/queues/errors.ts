import { type ErrorCode, YunhaiError } from '../../platform/errors.js';

/**
 * SQS errors by their JSON-protocol name (`__type` after `com.amazonaws.sqs#`), with the Query
 * protocol's code (also sent as `x-amzn-query-error` on JSON answers) and HTTP status, as the
 * SQS service model declares them.
 */
export const SQS_ERRORS = {
  QueueDoesNotExist: ['AWS.SimpleQueueService.NonExistentQueue', 400],
  QueueNameExists: ['QueueAlreadyExists', 400],
  QueueDeletedRecently: ['AWS.SimpleQueueService.QueueDeletedRecently', 400],
  ReceiptHandleIsInvalid: ['ReceiptHandleIsInvalid', 404],
  MessageNotInflight: ['AWS.SimpleQueueService.MessageNotInflight', 400],
  BatchEntryIdsNotDistinct: ['AWS.SimpleQueueService.BatchEntryIdsNotDistinct', 400],
  BatchRequestTooLong: ['AWS.SimpleQueueService.BatchRequestTooLong', 400],
  EmptyBatchRequest: ['AWS.SimpleQueueService.EmptyBatchRequest', 400],
  InvalidBatchEntryId: ['AWS.SimpleQueueService.InvalidBatchEntryId', 400],
  TooManyEntriesInBatchRequest: ['AWS.SimpleQueueService.TooManyEntriesInBatchRequest', 400],
  UnsupportedOperation: ['AWS.SimpleQueueService.UnsupportedOperation', 400],
  PurgeQueueInProgress: ['AWS.SimpleQueueService.PurgeQueueInProgress', 403],
  OverLimit: ['OverLimit', 403],
  InvalidAttributeName: ['InvalidAttributeName', 400],
  InvalidAttributeValue: ['InvalidAttributeValue', 400],
  InvalidMessageContents: ['InvalidMessageContents', 400],
  InvalidAddress: ['InvalidAddress', 404],
  InvalidSecurity: ['InvalidSecurity', 403],
  RequestThrottled: ['RequestThrottled', 403],
  ResourceNotFoundException: ['ResourceNotFoundException', 404],
  InvalidParameterValue: ['InvalidParameterValue', 400],
  MissingParameter: ['MissingParameter', 400],
  InvalidAction: ['InvalidAction', 400],
  MalformedQueryString: ['MalformedQueryString', 400],
  AccessDenied: ['AccessDenied', 403],
} as const satisfies Record<string, readonly [string, number]>;

export type SqsErrorName = keyof typeof SQS_ERRORS;

/** The platform code an SQS error is logged and counted under (its HTTP status comes from SQS_ERRORS). */
const PLATFORM_CODE: Partial<Record<SqsErrorName, ErrorCode>> = {
  QueueDoesNotExist: 'NotFound',
  QueueNameExists: 'AlreadyExists',
  OverLimit: 'QuotaExceeded',
  AccessDenied: 'AccessDenied',
  MissingParameter: 'MissingParameter',
  InvalidAction: 'InvalidAction',
  ResourceNotFoundException: 'NotFound',
  PurgeQueueInProgress: 'Conflict',
  RequestThrottled: 'TooManyRequests',
};

/** A failure in SQS terms; still a YunhaiError for logs, metrics and the other protocols. */
export class QueueError extends YunhaiError {
  readonly sqsName: SqsErrorName;

  constructor(name: SqsErrorName, message: string) {
    super(PLATFORM_CODE[name] ?? 'ValidationError', message);
    this.sqsName = name;
    Object.defineProperty(this, 'status', { value: SQS_ERRORS[name][1] });
  }
}

export const noSuchQueue = () =>
  new QueueError('QueueDoesNotExist', 'The specified queue does not exist for this wsdl version.');
export const invalidParameter = (message: string) => new QueueError('InvalidParameterValue', message);
export const missingParameter = (name: string) =>
  new QueueError('MissingParameter', `The request must contain the parameter ${name}.`);

/** How any platform error appears on the SQS wire: JSON type name, Query code, status, fault side. */
export function toSqsError(err: YunhaiError): {
  type: string;
  code: string;
  status: number;
  fault: 'Sender' | 'Receiver';
  message: string;
} {
  const fault: 'Sender' | 'Receiver' = err.status >= 500 ? 'Receiver' : 'Sender';
  if (err instanceof QueueError) {
    const [code, status] = SQS_ERRORS[err.sqsName];
    return { type: err.sqsName, code, status, fault, message: err.message };
  }
  const same = (c: string, status = err.status) => ({
    type: c,
    code: c,
    status,
    fault,
    message: err.message,
  });
  switch (err.code) {
    case 'Unauthenticated':
      return same('MissingAuthenticationToken', 403);
    case 'RequestTimeTooSkewed':
    case 'RequestExpired':
      return same('RequestExpired', 400);
    case 'NotFound':
    case 'NoSuchEntity':
      return {
        type: 'QueueDoesNotExist',
        code: SQS_ERRORS.QueueDoesNotExist[0],
        status: 400,
        fault,
        message: err.message,
      };
    case 'QuotaExceeded':
    case 'LimitExceeded':
      return { type: 'OverLimit', code: 'OverLimit', status: 403, fault, message: err.message };
    case 'TenantSuspended':
      return same('AccessDenied', 403);
    case 'TooManyRequests':
      return { type: 'RequestThrottled', code: 'RequestThrottled', status: 403, fault, message: err.message };
    case 'PayloadTooLarge':
      return same('RequestEntityTooLarge', 413);
    case 'ValidationError':
    case 'UnknownField':
    case 'MalformedJSON':
    case 'MalformedXML':
    case 'InvalidId':
      return same('InvalidParameterValue', 400);
    case 'InternalError':
      return same('InternalFailure', 500);
    case 'ServiceUnavailable':
      return same('ServiceUnavailable', 503);
    default:
      return same(err.code);
  }
}
