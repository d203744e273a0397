import { S3Client } from '@aws-sdk/client-s3';
import { signRequest } from '../platform/auth/sigv4.js';
import type { TestControlPlane } from './control-plane.js';

export interface S3Keys {
  accessKeyId: string;
  secretAccessKey: string;
}

/** An SDK client for the s3 listener (path style, no retries). */
export const s3Client = (cp: TestControlPlane, credentials: S3Keys, extra: Record<string, unknown> = {}) =>
  new S3Client({
    endpoint: cp.endpoints.s3,
    region: 'us-east-1',
    credentials,
    forcePathStyle: true,
    maxAttempts: 1,
    ...extra,
  });

/**
 * Tenants `acme` (owner alice) and `globex` (owner gina), each with an access key, for object
 * storage tests. Names get a suffix so one control plane can seed several times.
 */
export async function seedS3Tenants(cp: TestControlPlane, suffix = '') {
  const admin = await cp.iam.systemContext('s3-fixture');
  const keysFor = async (tenant: string, owner: string, quotas?: Record<string, number>): Promise<S3Keys> => {
    const t = await cp.iam.createTenant(admin, {
      name: tenant + suffix,
      owner: { name: owner, password: `${owner}-password-1` },
      ...(quotas ? { quotas } : {}),
    });
    const k = await cp.iam.createAccessKey(admin, t.owner!.id);
    return { accessKeyId: k.accessKeyId, secretAccessKey: k.secretAccessKey };
  };
  return {
    root: { accessKeyId: cp.root.accessKeyId, secretAccessKey: cp.root.secretAccessKey },
    acme: await keysFor('acme', 'alice'),
    globex: await keysFor('globex', 'gina'),
    keysFor,
  };
}

/** A request signed with our own SigV4 signer, for inputs the SDK would not send. */
export async function rawS3(
  cp: TestControlPlane,
  keys: S3Keys | null,
  method: string,
  path: string,
  opts: { headers?: Record<string, string>; body?: Buffer | string; payloadHash?: string } = {},
) {
  const url = new URL(cp.endpoints.s3 + path);
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.payloadHash) headers['x-amz-content-sha256'] = opts.payloadHash;
  if (keys) {
    Object.assign(
      headers,
      signRequest({
        method,
        url,
        headers,
        ...(opts.body !== undefined ? { body: opts.body } : {}),
        accessKeyId: keys.accessKeyId,
        secretAccessKey: keys.secretAccessKey,
        region: 'us-east-1',
        service: 's3',
      }),
    );
  }
  const res = await fetch(url, {
    method,
    headers,
    ...(opts.body !== undefined ? { body: opts.body } : {}),
  });
  const text = await res.text();
  const code = /<Code>([^<]*)<\/Code>/.exec(text)?.[1];
  return { status: res.status, text, code, headers: res.headers };
}
