/**
 * One error type for the whole platform. Every failure a caller can see carries a typed `code`
 * (stable, documented, used by the CLI and portal), an HTTP status and a user-facing message.
 * `isUserError()` separates the caller's mistakes (4xx) from ours (5xx), which are logged.
 * Protocol adapters (REST, IAM/STS Query, later S3/SQS) map these codes onto their wire formats.
 */
export const ERROR_STATUS = {
  ValidationError: 400,
  MalformedJSON: 400,
  MalformedXML: 400,
  UnknownField: 400,
  InvalidId: 400,
  InvalidAction: 400,
  MissingParameter: 400,
  InvalidParameterValue: 400,
  Unauthenticated: 401,
  InvalidClientTokenId: 403,
  SignatureDoesNotMatch: 403,
  IncompleteSignature: 400,
  RequestExpired: 403,
  RequestTimeTooSkewed: 403,
  ExpiredToken: 403,
  AccessDenied: 403,
  TenantSuspended: 403,
  NotFound: 404,
  NoSuchEntity: 404,
  MethodNotAllowed: 405,
  AlreadyExists: 409,
  EntityAlreadyExists: 409,
  Conflict: 409,
  DeleteConflict: 409,
  QuotaExceeded: 409,
  InsufficientCapacity: 409,
  InvalidState: 409,
  LimitExceeded: 409,
  PayloadTooLarge: 413,
  UnsupportedMediaType: 415,
  TooManyRequests: 429,
  InternalError: 500,
  ServiceUnavailable: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export class YunhaiError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = 'YunhaiError';
    this.code = code;
    this.status = ERROR_STATUS[code];
    this.details = details;
  }

  isUserError(): boolean {
    return this.status < 500;
  }
}

export const isYunhaiError = (e: unknown): e is YunhaiError => e instanceof YunhaiError;

/** Wraps anything thrown into a YunhaiError; unknown failures become InternalError. */
export function toYunhaiError(e: unknown): YunhaiError {
  if (e instanceof YunhaiError) return e;
  return new YunhaiError(
    'InternalError',
    'An internal error occurred; see the server log for the request id.',
  );
}

export const notFound = (what: string, id: string) =>
  new YunhaiError('NotFound', `${what} '${id}' does not exist.`);
