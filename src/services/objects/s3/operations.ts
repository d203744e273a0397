/**
 * S3 operations by AWS action name, and how a request maps onto one (method, bucket/key present,
 * sub-resource query parameters). Everything not in the table answers NotImplemented.
 */
import { ObjectError } from '../errors.js';
import * as blockOps from './access-block-handlers.js';
import * as bucketOps from './bucket-handlers.js';
import * as multipartOps from './multipart-handlers.js';
import * as objectOps from './object-handlers.js';
import { postObject } from './post-object.js';
import type { S3Call } from './request.js';

export type OperationName =
  | 'ListBuckets'
  | 'GetObjectAttributes'
  | 'GetPublicAccessBlock'
  | 'PutPublicAccessBlock'
  | 'DeletePublicAccessBlock'
  | 'GetBucketLogging'
  | 'PutBucketLogging'
  | 'PostObject'
  | 'CreateBucket'
  | 'HeadBucket'
  | 'DeleteBucket'
  | 'GetBucketLocation'
  | 'GetBucketVersioning'
  | 'PutBucketVersioning'
  | 'GetBucketTagging'
  | 'PutBucketTagging'
  | 'DeleteBucketTagging'
  | 'GetBucketPolicy'
  | 'GetBucketPolicyStatus'
  | 'PutBucketPolicy'
  | 'DeleteBucketPolicy'
  | 'GetBucketCors'
  | 'PutBucketCors'
  | 'DeleteBucketCors'
  | 'GetBucketLifecycleConfiguration'
  | 'PutBucketLifecycleConfiguration'
  | 'DeleteBucketLifecycle'
  | 'GetBucketEncryption'
  | 'PutBucketEncryption'
  | 'DeleteBucketEncryption'
  | 'GetObjectLockConfiguration'
  | 'PutObjectLockConfiguration'
  | 'GetBucketOwnershipControls'
  | 'PutBucketOwnershipControls'
  | 'DeleteBucketOwnershipControls'
  | 'GetBucketAcl'
  | 'PutBucketAcl'
  | 'ListObjects'
  | 'ListObjectsV2'
  | 'ListObjectVersions'
  | 'ListMultipartUploads'
  | 'DeleteObjects'
  | 'GetObject'
  | 'HeadObject'
  | 'PutObject'
  | 'CopyObject'
  | 'DeleteObject'
  | 'GetObjectTagging'
  | 'GetObjectRetention'
  | 'PutObjectRetention'
  | 'GetObjectLegalHold'
  | 'PutObjectLegalHold'
  | 'PutObjectTagging'
  | 'DeleteObjectTagging'
  | 'GetObjectAcl'
  | 'PutObjectAcl'
  | 'CreateMultipartUpload'
  | 'UploadPart'
  | 'UploadPartCopy'
  | 'CompleteMultipartUpload'
  | 'AbortMultipartUpload'
  | 'ListParts';

export type Handler = (call: S3Call) => Promise<unknown>;

export const OPERATIONS: Record<OperationName, Handler> = {
  ListBuckets: bucketOps.listBuckets,
  CreateBucket: bucketOps.createBucket,
  HeadBucket: bucketOps.headBucket,
  DeleteBucket: bucketOps.deleteBucket,
  GetBucketLocation: bucketOps.getBucketLocation,
  GetBucketVersioning: bucketOps.getBucketVersioning,
  PutBucketVersioning: bucketOps.putBucketVersioning,
  GetBucketTagging: bucketOps.getBucketTagging,
  PutBucketTagging: bucketOps.putBucketTagging,
  DeleteBucketTagging: bucketOps.deleteBucketTagging,
  GetBucketPolicy: bucketOps.getRawConfig('policy'),
  GetBucketPolicyStatus: bucketOps.getBucketPolicyStatus,
  PutBucketPolicy: bucketOps.putRawConfig('policy'),
  DeleteBucketPolicy: bucketOps.deleteRawConfig('policy'),
  GetBucketCors: bucketOps.getRawConfig('cors'),
  PutBucketCors: bucketOps.putRawConfig('cors'),
  DeleteBucketCors: bucketOps.deleteRawConfig('cors'),
  GetBucketLifecycleConfiguration: bucketOps.getRawConfig('lifecycle'),
  PutBucketLifecycleConfiguration: bucketOps.putRawConfig('lifecycle'),
  DeleteBucketLifecycle: bucketOps.deleteRawConfig('lifecycle'),
  GetBucketEncryption: bucketOps.getRawConfig('encryption'),
  PutBucketEncryption: bucketOps.putRawConfig('encryption'),
  DeleteBucketEncryption: bucketOps.deleteRawConfig('encryption'),
  GetObjectLockConfiguration: bucketOps.getRawConfig('object_lock'),
  PutObjectLockConfiguration: bucketOps.putRawConfig('object_lock'),
  GetBucketOwnershipControls: bucketOps.getRawConfig('ownership'),
  PutBucketOwnershipControls: bucketOps.putRawConfig('ownership'),
  DeleteBucketOwnershipControls: bucketOps.deleteRawConfig('ownership'),
  GetBucketAcl: bucketOps.getBucketAcl,
  PutBucketAcl: bucketOps.putBucketAcl,
  ListObjects: bucketOps.listObjects,
  ListObjectsV2: bucketOps.listObjectsV2,
  ListObjectVersions: bucketOps.listObjectVersions,
  ListMultipartUploads: multipartOps.listMultipartUploads,
  DeleteObjects: objectOps.deleteObjects,
  GetPublicAccessBlock: blockOps.getPublicAccessBlock,
  PutPublicAccessBlock: blockOps.putPublicAccessBlock,
  DeletePublicAccessBlock: blockOps.deletePublicAccessBlock,
  GetBucketLogging: blockOps.getBucketLogging,
  PutBucketLogging: blockOps.putBucketLogging,
  PostObject: (call) => {
    if (!call.credentials) throw notImplemented('browser-based POST uploads');
    return postObject(call, call.credentials);
  },
  GetObject: objectOps.getObject,
  GetObjectAttributes: objectOps.getObjectAttributes,
  HeadObject: objectOps.headObject,
  PutObject: objectOps.putObject,
  CopyObject: objectOps.copyObject,
  DeleteObject: objectOps.deleteObject,
  GetObjectTagging: objectOps.getObjectTagging,
  GetObjectRetention: objectOps.getObjectRetention,
  PutObjectRetention: objectOps.putObjectRetention,
  GetObjectLegalHold: objectOps.getObjectLegalHold,
  PutObjectLegalHold: objectOps.putObjectLegalHold,
  PutObjectTagging: objectOps.putObjectTagging,
  DeleteObjectTagging: objectOps.deleteObjectTagging,
  GetObjectAcl: objectOps.getObjectAcl,
  PutObjectAcl: objectOps.putObjectAcl,
  CreateMultipartUpload: multipartOps.createMultipartUpload,
  UploadPart: multipartOps.uploadPart,
  UploadPartCopy: multipartOps.uploadPartCopy,
  CompleteMultipartUpload: multipartOps.completeMultipartUpload,
  AbortMultipartUpload: multipartOps.abortMultipartUpload,
  ListParts: multipartOps.listParts,
};

/** Bucket sub-resources: [GET, PUT, DELETE] operation for each query parameter. */
const BUCKET_SUBRESOURCES: Record<string, [OperationName?, OperationName?, OperationName?]> = {
  location: ['GetBucketLocation'],
  versioning: ['GetBucketVersioning', 'PutBucketVersioning'],
  tagging: ['GetBucketTagging', 'PutBucketTagging', 'DeleteBucketTagging'],
  policy: ['GetBucketPolicy', 'PutBucketPolicy', 'DeleteBucketPolicy'],
  policyStatus: ['GetBucketPolicyStatus'],
  cors: ['GetBucketCors', 'PutBucketCors', 'DeleteBucketCors'],
  lifecycle: ['GetBucketLifecycleConfiguration', 'PutBucketLifecycleConfiguration', 'DeleteBucketLifecycle'],
  encryption: ['GetBucketEncryption', 'PutBucketEncryption', 'DeleteBucketEncryption'],
  'object-lock': ['GetObjectLockConfiguration', 'PutObjectLockConfiguration'],
  ownershipControls: [
    'GetBucketOwnershipControls',
    'PutBucketOwnershipControls',
    'DeleteBucketOwnershipControls',
  ],
  acl: ['GetBucketAcl', 'PutBucketAcl'],
  publicAccessBlock: ['GetPublicAccessBlock', 'PutPublicAccessBlock', 'DeletePublicAccessBlock'],
  logging: ['GetBucketLogging', 'PutBucketLogging'],
  uploads: ['ListMultipartUploads'],
  versions: ['ListObjectVersions'],
};

/** Sub-resources S3 has and we do not serve yet. */
const UNSUPPORTED = [
  'website',
  'notification',
  'replication',
  'accelerate',
  'requestPayment',
  'analytics',
  'metrics',
  'inventory',
  'intelligent-tiering',
  'restore',
  'select',
  'torrent',
  'session',
];

const notImplemented = (what: string) =>
  new ObjectError(
    'NotImplemented',
    `A header or query you provided implies functionality that is not implemented: ${what}.`,
  );

export function detectOperation(
  method: string,
  bucket: string | undefined,
  key: string | undefined,
  query: Map<string, string>,
  hasCopySource: boolean,
): OperationName {
  const bad = () =>
    new ObjectError('MethodNotAllowed', 'The specified method is not allowed against this resource.', {
      extra: { Method: method, ResourceType: key !== undefined ? 'OBJECT' : bucket ? 'BUCKET' : 'SERVICE' },
    });
  if (bucket === undefined) {
    if (method === 'GET') return 'ListBuckets';
    throw bad();
  }
  for (const u of UNSUPPORTED) if (query.has(u)) throw notImplemented(`?${u}`);
  if (key === undefined) {
    for (const [param, ops] of Object.entries(BUCKET_SUBRESOURCES)) {
      if (!query.has(param)) continue;
      const op =
        method === 'GET' ? ops[0] : method === 'PUT' ? ops[1] : method === 'DELETE' ? ops[2] : undefined;
      if (!op) throw bad();
      return op;
    }
    switch (method) {
      case 'GET':
        return query.get('list-type') === '2' ? 'ListObjectsV2' : 'ListObjects';
      case 'HEAD':
        return 'HeadBucket';
      case 'PUT':
        return 'CreateBucket';
      case 'DELETE':
        return 'DeleteBucket';
      case 'POST':
        if (query.has('delete')) return 'DeleteObjects';
        return 'PostObject';
      default:
        throw bad();
    }
  }
  switch (method) {
    case 'GET':
      if (query.has('uploadId')) return 'ListParts';
      if (query.has('tagging')) return 'GetObjectTagging';
      if (query.has('retention')) return 'GetObjectRetention';
      if (query.has('legal-hold')) return 'GetObjectLegalHold';
      if (query.has('acl')) return 'GetObjectAcl';
      if (query.has('attributes')) return 'GetObjectAttributes';
      return 'GetObject';
    case 'HEAD':
      return 'HeadObject';
    case 'PUT':
      if (query.has('partNumber') && query.has('uploadId'))
        return hasCopySource ? 'UploadPartCopy' : 'UploadPart';
      if (query.has('tagging')) return 'PutObjectTagging';
      if (query.has('retention')) return 'PutObjectRetention';
      if (query.has('legal-hold')) return 'PutObjectLegalHold';
      if (query.has('acl')) return 'PutObjectAcl';
      return hasCopySource ? 'CopyObject' : 'PutObject';
    case 'DELETE':
      if (query.has('uploadId')) return 'AbortMultipartUpload';
      if (query.has('tagging')) return 'DeleteObjectTagging';
      return 'DeleteObject';
    case 'POST':
      if (query.has('uploads')) return 'CreateMultipartUpload';
      if (query.has('uploadId')) return 'CompleteMultipartUpload';
      throw bad();
    default:
      throw bad();
  }
}
