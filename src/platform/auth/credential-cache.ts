import type { CredentialSource } from './authenticate.js';

type Credential = Awaited<ReturnType<CredentialSource['credentialForKey']>>;

export interface CredentialCacheOptions {
  /** How long a resolved key is reused: the bound on how long a revoked key keeps working. */
  ttlMs?: number;
  /** Entries kept at most; the cache starts over past this. */
  maxEntries?: number;
  now?: () => number;
}

/** Default TTL: a deleted, deactivated or rotated access key stops working within 5 seconds. */
export const CREDENTIAL_CACHE_TTL_MS = 5000;

/**
 * `src` with access keys resolved in the last `ttlMs` reused, so a message stream does not look
 * up (and decrypt) its key on every request. Only found keys are cached: a key created a moment
 * ago works at once, an unknown one is looked up every time. A key that is revoked keeps working
 * for at most `ttlMs` on each control-plane replica; `forget()` drops one key at once (or all).
 */
export function cachedCredentials(
  src: CredentialSource,
  opts: CredentialCacheOptions = {},
): CredentialSource & { forget(accessKeyId?: string): void } {
  const ttlMs = opts.ttlMs ?? CREDENTIAL_CACHE_TTL_MS;
  const max = opts.maxEntries ?? 10_000;
  const now = opts.now ?? Date.now;
  const cache = new Map<string, { at: number; value: NonNullable<Credential> }>();
  return {
    principalForToken: (token) => src.principalForToken(token),
    auditAuthFailure: (meta) => src.auditAuthFailure(meta),
    mac: (value) => src.mac(value),
    async credentialForKey(id) {
      const hit = cache.get(id);
      const t = now();
      if (hit && t - hit.at < ttlMs) return hit.value;
      const value = await src.credentialForKey(id);
      if (!value) {
        cache.delete(id);
        return value;
      }
      if (cache.size >= max) cache.clear();
      cache.set(id, { at: t, value });
      return value;
    },
    forget(accessKeyId) {
      if (accessKeyId === undefined) cache.clear();
      else cache.delete(accessKeyId);
    },
  };
}
