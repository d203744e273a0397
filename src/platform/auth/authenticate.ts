import { timingSafeEqual } from 'node:crypto';
import { YunhaiError } from '../errors.js';
import type { Principal } from '../policy/principal.js';
import {
  type IncomingSignedRequest,
  parseSigV4,
  type SigV4Auth,
  sha256Hex,
  UNSIGNED_PAYLOAD,
  verifySigV4,
} from './sigv4.js';

/** What authentication needs from IAM; kept narrow so protocol adapters don't depend on the whole service. */
export interface CredentialSource {
  credentialForKey(
    accessKeyId: string,
  ): Promise<{ secretAccessKey: string; principal: Principal; sessionTokenHash?: string } | null>;
  principalForToken(token: string): Promise<Principal | null>;
  auditAuthFailure(meta: {
    sourceIp: string;
    requestId: string;
    principal: string;
    action: string;
    errorCode: string;
    tenantId?: string | null;
  }): Promise<void>;
  mac(value: string): string;
}

export interface AuthRequest extends IncomingSignedRequest {
  sourceIp: string;
  requestId: string;
  /** Bearer token from a cookie (portal), when the listener accepts one. */
  sessionCookie?: string;
}

export interface AuthOptions {
  /** Accept `Authorization: Bearer` session tokens (REST API) in addition to SigV4. */
  allowBearer: boolean;
  /** S3 canonicalises paths differently from other AWS services. */
  s3PathEncoding?: boolean;
  /** The SigV4 credential scope's service must be this (e.g. `yunhai`, `iam`, `sts`, `s3`). */
  service: string;
  /** Audit action name for failures, e.g. `api:Authenticate`, `iam:Authenticate`. */
  auditAction: string;
  now?: Date;
}

const HEX_SHA256 = /^[0-9a-fA-F]{64}$/;

const same = (a: string, b: string) =>
  a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));

/**
 * Resolves the caller of a request: SigV4 (header or presigned query, long-term or STS keys) or a
 * session bearer token. Every failure is audited and thrown as a YunhaiError with AWS's code.
 */
export async function authenticate(
  src: CredentialSource,
  req: AuthRequest,
  opts: AuthOptions,
): Promise<Principal> {
  return (await authenticateRequest(src, req, opts)).principal;
}

/** What a verified request proved: its principal and, for SigV4, the parsed auth and the secret that verified it. */
export interface Authenticated {
  principal: Principal;
  /** Set for SigV4 requests; S3 needs it to check the signatures of aws-chunked streaming bodies. */
  sigv4?: { auth: SigV4Auth; secretAccessKey: string };
}

/** `authenticate()`, also answering the SigV4 details (see Authenticated). */
export async function authenticateRequest(
  src: CredentialSource,
  req: AuthRequest,
  opts: AuthOptions,
): Promise<Authenticated> {
  const fail = async (
    code: 'Unauthenticated' | 'InvalidClientTokenId' | 'SignatureDoesNotMatch' | 'ExpiredToken',
    message: string,
    who: string,
    tenantId?: string,
  ) => {
    await src.auditAuthFailure({
      sourceIp: req.sourceIp,
      requestId: req.requestId,
      principal: who,
      action: opts.auditAction,
      errorCode: code,
      tenantId,
    });
    return new YunhaiError(code, message);
  };
  const authz = headerValue(req.headers.authorization);
  const bearer = authz?.startsWith('Bearer ') ? authz.slice(7).trim() : undefined;
  const token = opts.allowBearer ? (bearer ?? req.sessionCookie) : undefined;
  if (token !== undefined) {
    const p = await src.principalForToken(token);
    if (!p)
      throw await fail(
        'Unauthenticated',
        'The session token is invalid or has expired; sign in again.',
        'session',
      );
    return { principal: p };
  }
  const auth = parseSigV4(req);
  if (!auth) {
    throw new YunhaiError(
      'Unauthenticated',
      opts.allowBearer
        ? 'Authentication required: sign the request with SigV4 or send a session token.'
        : 'Request is missing Authentication Token',
    );
  }
  if (auth.service !== opts.service) {
    throw await fail(
      'SignatureDoesNotMatch',
      `Credential should be scoped to correct service: '${opts.service}'.`,
      `key:${auth.accessKeyId}`,
    );
  }
  const cred = await src.credentialForKey(auth.accessKeyId);
  if (!cred)
    throw await fail(
      'InvalidClientTokenId',
      'The security token included in the request is invalid.',
      `key:${auth.accessKeyId}`,
    );
  if (cred.sessionTokenHash !== undefined) {
    if (!auth.sessionToken || !same(src.mac(auth.sessionToken), cred.sessionTokenHash)) {
      throw await fail(
        'InvalidClientTokenId',
        'The security token included in the request is invalid.',
        `key:${auth.accessKeyId}`,
        cred.principal.tenantId,
      );
    }
  }
  try {
    verifySigV4(req, auth, cred.secretAccessKey, { s3PathEncoding: opts.s3PathEncoding, now: opts.now });
  } catch (e) {
    if (e instanceof YunhaiError) {
      await src.auditAuthFailure({
        sourceIp: req.sourceIp,
        requestId: req.requestId,
        principal: `${cred.principal.accountId}:${cred.principal.userName}`,
        action: opts.auditAction,
        errorCode: e.code,
        tenantId: cred.principal.tenantId,
      });
    }
    throw e;
  }
  // A declared payload hash must match the body we actually received. verifySigV4 already compared
  // a well-formed (64 hex digits) one while verifying, so only other values are hashed again here.
  const declared = headerValue(req.headers['x-amz-content-sha256']);
  if (
    declared &&
    declared !== UNSIGNED_PAYLOAD &&
    !declared.startsWith('STREAMING-') &&
    !HEX_SHA256.test(declared.trim()) &&
    req.body !== undefined
  ) {
    if (declared.toLowerCase() !== sha256Hex(req.body)) {
      throw await fail(
        'SignatureDoesNotMatch',
        'The provided x-amz-content-sha256 header does not match what was computed.',
        `${cred.principal.accountId}:${cred.principal.userName}`,
        cred.principal.tenantId,
      );
    }
  }
  return { principal: cred.principal, sigv4: { auth, secretAccessKey: cred.secretAccessKey } };
}

export function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}
