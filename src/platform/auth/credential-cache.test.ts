import { describe, expect, it } from 'vitest';
import type { Principal } from '../policy/principal.js';
import type { CredentialSource } from './authenticate.js';
import { cachedCredentials } from './credential-cache.js';
import { deriveSigningKey } from './sigv4.js';

const principal = { userId: 'u1', tenantId: 't1', accountId: '000000000001' } as Principal;

/** An IAM stand-in: keys that exist now, and how often it was asked. */
function source() {
  const keys = new Map<string, string>([['AKIA1', 'secret-1']]);
  let lookups = 0;
  const src: CredentialSource = {
    async credentialForKey(id) {
      lookups++;
      const secretAccessKey = keys.get(id);
      return secretAccessKey ? { secretAccessKey, principal } : null;
    },
    principalForToken: async () => null,
    auditAuthFailure: async () => {},
    mac: (v) => v,
  };
  return { keys, src, lookups: () => lookups };
}

describe('credential cache', () => {
  it('reuses a resolved key within the TTL and asks again after it', async () => {
    const s = source();
    let t = 0;
    const c = cachedCredentials(s.src, { ttlMs: 5000, now: () => t });
    expect((await c.credentialForKey('AKIA1'))?.secretAccessKey).toBe('secret-1');
    t = 4999;
    await c.credentialForKey('AKIA1');
    expect(s.lookups()).toBe(1);
    t = 5000;
    await c.credentialForKey('AKIA1');
    expect(s.lookups()).toBe(2);
  });

  it('stops accepting a revoked key once the TTL has passed, at the latest', async () => {
    const s = source();
    let t = 0;
    const c = cachedCredentials(s.src, { ttlMs: 5000, now: () => t });
    expect(await c.credentialForKey('AKIA1')).not.toBeNull();
    s.keys.delete('AKIA1'); // revoked in IAM
    t = 2000;
    expect(await c.credentialForKey('AKIA1')).not.toBeNull(); // within the documented bound
    t = 5001;
    expect(await c.credentialForKey('AKIA1')).toBeNull();
    t = 5002;
    expect(await c.credentialForKey('AKIA1')).toBeNull(); // and a miss is never cached as a hit
  });

  it('serves a rotated secret after the TTL, and forget() drops a key at once', async () => {
    const s = source();
    let t = 0;
    const c = cachedCredentials(s.src, { ttlMs: 5000, now: () => t });
    await c.credentialForKey('AKIA1');
    s.keys.set('AKIA1', 'secret-2');
    c.forget('AKIA1');
    expect((await c.credentialForKey('AKIA1'))?.secretAccessKey).toBe('secret-2');
    s.keys.set('AKIA1', 'secret-3');
    t = 6000;
    expect((await c.credentialForKey('AKIA1'))?.secretAccessKey).toBe('secret-3');
  });

  it('does not cache unknown keys: a key created a moment ago works at once', async () => {
    const s = source();
    const c = cachedCredentials(s.src, { now: () => 0 });
    expect(await c.credentialForKey('AKIA2')).toBeNull();
    s.keys.set('AKIA2', 'new');
    expect((await c.credentialForKey('AKIA2'))?.secretAccessKey).toBe('new');
  });
});

describe('signing key cache', () => {
  it('derives the same key from cache and a different key for a different secret or scope', () => {
    const a = deriveSigningKey('secret-a', '20260101', 'us-east-1', 'sqs');
    expect(deriveSigningKey('secret-a', '20260101', 'us-east-1', 'sqs').equals(a)).toBe(true);
    expect(deriveSigningKey('secret-b', '20260101', 'us-east-1', 'sqs').equals(a)).toBe(false);
    expect(deriveSigningKey('secret-a', '20260102', 'us-east-1', 'sqs').equals(a)).toBe(false);
    expect(deriveSigningKey('secret-a', '20260101', 'us-east-1', 's3').equals(a)).toBe(false);
  });
});
