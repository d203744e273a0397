import type { FastifyReply, FastifyRequest } from 'fastify';
import type { YunhaiError } from '../../../platform/errors.js';
import { el, xmlDocument } from '../../../platform/xml/writer.js';
import { ObjectError, S3_ERROR_STATUS, type S3ErrorCode } from '../errors.js';

/** Maps any platform failure onto S3's code and status (authentication errors keep AWS's S3 names). */
export function toS3Error(err: YunhaiError, isPresigned = false): ObjectError {
  if (err instanceof ObjectError) return err;
  const as = (code: S3ErrorCode, message = err.message, extra?: Record<string, string>) =>
    new ObjectError(code, message, extra ? { extra } : {});
  switch (err.code) {
    case 'Unauthenticated':
    case 'AccessDenied':
    case 'TenantSuspended':
      return as('AccessDenied', 'Access Denied');
    case 'InvalidClientTokenId':
      return as('InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.');
    case 'SignatureDoesNotMatch': {
      const d = err.details ?? {};
      const extra: Record<string, string> = {};
      if (typeof d.stringToSign === 'string') extra.StringToSign = d.stringToSign;
      if (typeof d.canonicalRequest === 'string') extra.CanonicalRequest = d.canonicalRequest;
      return as('SignatureDoesNotMatch', err.message, extra);
    }
    case 'RequestTimeTooSkewed':
      return as(
        'RequestTimeTooSkewed',
        'The difference between the request time and the current time is too large.',
      );
    case 'RequestExpired':
      return as('AccessDenied', 'Request has expired');
    case 'ExpiredToken':
      return as('ExpiredToken', 'The provided token has expired.');
    case 'IncompleteSignature':
      return as(isPresigned ? 'AuthorizationQueryParametersError' : 'AuthorizationHeaderMalformed');
    case 'InvalidParameterValue':
      return as(isPresigned ? 'AuthorizationQueryParametersError' : 'InvalidArgument');
    case 'MalformedXML':
      return as('MalformedXML');
    case 'PayloadTooLarge':
      return as('EntityTooLarge');
    case 'MethodNotAllowed':
      return as('MethodNotAllowed');
    case 'ServiceUnavailable':
      return as('ServiceUnavailable', 'Please reduce your request rate.');
    case 'QuotaExceeded':
      return as('QuotaExceeded');
    case 'NotFound':
      return as('InvalidRequest', err.message);
    case 'InternalError':
      return as('InternalError', 'We encountered an internal error. Please try again.');
    default:
      return err.status < 500
        ? as('InvalidRequest', err.message)
        : as('InternalError', 'We encountered an internal error. Please try again.');
  }
}

/** The `<Error>` document of https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html */
export function errorXml(e: ObjectError, resource: string, requestId: string): string {
  return xmlDocument(
    el(
      'Error',
      el('Code', e.s3Code),
      el('Message', e.message),
      Object.entries(e.extra).map(([k, v]) => el(k, v)),
      el('Resource', resource),
      el('RequestId', requestId),
      el('HostId', requestId),
    ),
  );
}

/** Renders every error of the s3 listener: XML with the S3 code, no body for HEAD and 304. */
export function s3ErrorRenderer(err: YunhaiError, req: FastifyRequest, reply: FastifyReply) {
  const presigned = /[?&]X-Amz-Signature=/i.test(req.url);
  const e = toS3Error(err, presigned);
  reply.code(e.status ?? S3_ERROR_STATUS.InternalError);
  for (const [k, v] of Object.entries(e.headers)) reply.header(k, v);
  reply.header('x-amz-request-id', req.id).header('x-amz-id-2', req.id);
  if (req.method === 'HEAD' || e.status === 304) return reply.send();
  const path = req.url.split('?')[0] ?? '/';
  let resource = path;
  try {
    resource = decodeURIComponent(path);
  } catch {
    // keep the raw path
  }
  return reply.type('application/xml').send(errorXml(e, resource, req.id));
}
