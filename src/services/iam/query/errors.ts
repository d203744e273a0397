import { type ErrorCode, YunhaiError } from '../../../platform/errors.js';
import { el, elAttrs, xmlDocument } from '../../../platform/xml/writer.js';

export type QueryService = 'iam' | 'sts';

/**
 * A failure whose AWS code has no platform code of its own (MissingAction, MalformedQueryString, ...).
 * It is still a YunhaiError: `code` gives the HTTP status and what logs and metrics see.
 */
export class QueryError extends YunhaiError {
  readonly awsCode: string;

  constructor(code: ErrorCode, awsCode: string, message: string, details?: Record<string, unknown>) {
    super(code, message, details);
    this.awsCode = awsCode;
  }
}

export interface AwsError {
  status: number;
  type: 'Sender' | 'Receiver';
  code: string;
  message: string;
}

/** Platform codes whose AWS name differs; the rest (InvalidClientTokenId, AccessDenied, ...) keep theirs. */
const AWS_CODE: Partial<Record<ErrorCode, string>> = {
  NotFound: 'NoSuchEntity',
  AlreadyExists: 'EntityAlreadyExists',
  QuotaExceeded: 'LimitExceeded',
  UnknownField: 'ValidationError',
  MalformedJSON: 'ValidationError',
  MalformedXML: 'ValidationError',
  InvalidId: 'ValidationError',
  TenantSuspended: 'AccessDenied',
  Conflict: 'DeleteConflict',
  PayloadTooLarge: 'RequestEntityTooLarge',
  TooManyRequests: 'Throttling',
};

/** AWS's wording for a header-signed request outside the 15-minute window: SignatureDoesNotMatch. */
function signatureExpired(err: YunhaiError): string {
  const d = err.details ?? {};
  const requestTime = typeof d.requestTime === 'string' ? d.requestTime : undefined;
  const serverTime = typeof d.serverTime === 'string' ? d.serverTime : undefined;
  if (!requestTime || !serverTime) return `Signature expired: ${err.message}`;
  return requestTime < serverTime
    ? `Signature expired: ${requestTime} is now earlier than the allowed window (${serverTime} - 15 min.)`
    : `Signature not yet current: ${requestTime} is still later than the allowed window (${serverTime} + 15 min.)`;
}

/** Maps any platform error onto the code, type and message an AWS Query client expects. */
export function toAwsError(err: YunhaiError, service: QueryService): AwsError {
  const type = err.status >= 500 ? 'Receiver' : 'Sender';
  if (err instanceof QueryError) return { status: err.status, type, code: err.awsCode, message: err.message };
  switch (err.code) {
    case 'Unauthenticated':
      // No credentials at all: AWS answers 403, not 401.
      return { status: 403, type, code: 'MissingAuthenticationToken', message: err.message };
    case 'RequestTimeTooSkewed':
      return { status: 403, type, code: 'SignatureDoesNotMatch', message: signatureExpired(err) };
    case 'InternalError':
      return {
        status: err.status,
        type,
        code: service === 'iam' ? 'ServiceFailure' : 'InternalFailure',
        message: err.message,
      };
    default:
      return { status: err.status, type, code: AWS_CODE[err.code] ?? err.code, message: err.message };
  }
}

const XMLNS: Record<QueryService, string> = {
  iam: 'https://iam.amazonaws.com/doc/2010-05-08/',
  sts: 'https://sts.amazonaws.com/doc/2011-06-15/',
};
export const xmlnsOf = (service: QueryService) => XMLNS[service];

export function errorXml(e: AwsError, service: QueryService, requestId: string): string {
  return xmlDocument(
    elAttrs(
      'ErrorResponse',
      { xmlns: XMLNS[service] },
      el('Error', el('Type', e.type), el('Code', e.code), el('Message', e.message)),
      el('RequestId', requestId),
    ),
  );
}
