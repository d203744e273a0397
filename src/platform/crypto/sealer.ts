import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes } from 'node:crypto';
import { YunhaiError } from '../errors.js';

/**
 * Authenticated encryption of small secrets (access-key secrets, session secrets, later data
 * keys) with AES-256-GCM under the master key. The `context` string is bound as additional
 * authenticated data, so a sealed value copied onto another row fails to open.
 * Format: `v1.<iv b64url>.<ciphertext b64url>.<tag b64url>`.
 */
export interface Sealer {
  seal(plaintext: string | Buffer, context: string): string;
  open(sealed: string, context: string): Buffer;
  /** Keyed hash for lookups of secrets we never need back (session tokens). */
  mac(value: string): string;
}

export function createSealer(masterKey: Buffer): Sealer {
  if (masterKey.length !== 32) throw new Error('master key must be 32 bytes');
  const macKey = createHash('sha256').update('yunhai-mac\0').update(masterKey).digest();
  return {
    seal(plaintext, context) {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', masterKey, iv);
      cipher.setAAD(Buffer.from(context, 'utf8'));
      const ct = Buffer.concat([cipher.update(plaintext), cipher.final()]);
      return [
        'v1',
        iv.toString('base64url'),
        ct.toString('base64url'),
        cipher.getAuthTag().toString('base64url'),
      ].join('.');
    },
    open(sealed, context) {
      const [v, iv, ct, tag] = sealed.split('.');
      if (v !== 'v1' || iv === undefined || ct === undefined || tag === undefined) {
        throw new YunhaiError('InternalError', 'sealed value has an unknown format');
      }
      try {
        const decipher = createDecipheriv('aes-256-gcm', masterKey, Buffer.from(iv, 'base64url'));
        decipher.setAAD(Buffer.from(context, 'utf8'));
        decipher.setAuthTag(Buffer.from(tag, 'base64url'));
        return Buffer.concat([decipher.update(Buffer.from(ct, 'base64url')), decipher.final()]);
      } catch {
        throw new YunhaiError(
          'InternalError',
          'sealed value failed authentication (wrong master key or tampered row)',
        );
      }
    },
    mac(value) {
      return createHmac('sha256', macKey).update(value).digest('hex');
    },
  };
}
