import { type ErrorCode, YunhaiError } from '../../platform/errors.js';

/**
 * S3's error vocabulary with the HTTP status AWS answers for each
 * (https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html). Object storage speaks in
 * these codes in every layer; the S3 adapter writes them as `<Error>` documents, other callers
 * (REST, CLI) see them as YunhaiErrors whose platform code follows from the status.
 */
export const S3_ERROR_STATUS = {
  AccessControlListNotSupported: 400,
  AccessDenied: 403,
  AccessForbidden: 403,
  AuthorizationHeaderMalformed: 400,
  AuthorizationQueryParametersError: 400,
  BadDigest: 400,
  BadRequest: 400,
  BucketAlreadyExists: 409,
  BucketAlreadyOwnedByYou: 409,
  BucketNotEmpty: 409,
  ConditionalRequestConflict: 409,
  EntityTooLarge: 400,
  EntityTooSmall: 400,
  ExpiredToken: 400,
  IllegalVersioningConfigurationException: 400,
  IncompleteBody: 400,
  InternalError: 500,
  InvalidAccessKeyId: 403,
  InvalidArgument: 400,
  InvalidBucketAclWithObjectOwnership: 400,
  InvalidBucketName: 400,
  InvalidBucketState: 409,
  InvalidDigest: 400,
  InvalidEncryptionAlgorithmError: 400,
  InvalidObjectState: 403,
  InvalidPart: 400,
  InvalidPartNumber: 416,
  InvalidPartOrder: 400,
  InvalidPolicyDocument: 400,
  InvalidRange: 416,
  InvalidRequest: 400,
  InvalidRetentionPeriod: 400,
  InvalidStorageClass: 400,
  InvalidTag: 400,
  InvalidTargetBucketForLogging: 400,
  InvalidToken: 400,
  KeyTooLongError: 400,
  MalformedXML: 400,
  MalformedPolicy: 400,
  MalformedPOSTRequest: 400,
  MalformedACLError: 400,
  MetadataTooLarge: 400,
  MethodNotAllowed: 405,
  MissingContentLength: 411,
  MissingRequestBodyError: 400,
  NoSuchBucket: 404,
  NoSuchBucketPolicy: 404,
  NoSuchCORSConfiguration: 404,
  NoSuchKey: 404,
  NoSuchLifecycleConfiguration: 404,
  NoSuchObjectLockConfiguration: 404,
  NoSuchPublicAccessBlockConfiguration: 404,
  NoSuchTagSet: 404,
  NoSuchUpload: 404,
  NoSuchVersion: 404,
  NotImplemented: 501,
  NotModified: 304,
  ObjectLockConfigurationNotFoundError: 404,
  OwnershipControlsNotFoundError: 404,
  PreconditionFailed: 412,
  QuotaExceeded: 403,
  RequestTimeTooSkewed: 403,
  RequestTimeout: 400,
  ServerSideEncryptionConfigurationNotFoundError: 404,
  ServiceUnavailable: 503,
  SignatureDoesNotMatch: 403,
  SlowDown: 503,
  TooManyBuckets: 400,
  UnresolvableGrantByEmailAddress: 400,
  XAmzContentSHA256Mismatch: 400,
} as const;

export type S3ErrorCode = keyof typeof S3_ERROR_STATUS;

function platformCode(status: number): ErrorCode {
  if (status >= 500) return status === 503 ? 'ServiceUnavailable' : 'InternalError';
  switch (status) {
    case 403:
      return 'AccessDenied';
    case 404:
      return 'NotFound';
    case 405:
      return 'MethodNotAllowed';
    case 409:
      return 'Conflict';
    default:
      return 'ValidationError';
  }
}

/** An object-storage failure with its S3 code; `extra` becomes additional elements of the `<Error>` document. */
export class ObjectError extends YunhaiError {
  readonly s3Code: S3ErrorCode;
  override readonly status: number;
  /** Extra fields AWS puts in the error (Key, BucketName, VersionId, ...) and response headers. */
  readonly extra: Record<string, string>;
  readonly headers: Record<string, string>;

  constructor(
    s3Code: S3ErrorCode,
    message: string,
    opts: { extra?: Record<string, string>; headers?: Record<string, string> } = {},
  ) {
    super(platformCode(S3_ERROR_STATUS[s3Code]), message);
    this.s3Code = s3Code;
    this.status = S3_ERROR_STATUS[s3Code];
    this.extra = opts.extra ?? {};
    this.headers = opts.headers ?? {};
  }
}

export const noSuchBucket = (bucket: string) =>
  new ObjectError('NoSuchBucket', 'The specified bucket does not exist', { extra: { BucketName: bucket } });

export const noSuchKey = (key: string, headers?: Record<string, string>) =>
  new ObjectError('NoSuchKey', 'The specified key does not exist.', { extra: { Key: key }, headers });
