import { randomBytes } from 'node:crypto';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadMasterKey } from './master-key.js';
import { createSealer } from './sealer.js';

describe('sealer', () => {
  const sealer = createSealer(randomBytes(32));

  it('round-trips a secret and never stores it in clear', () => {
    const sealed = sealer.seal('wJalrXUtnFEMI/K7MDENG', 'access-key:AKIA1');
    expect(sealed).not.toContain('wJalr');
    expect(sealer.open(sealed, 'access-key:AKIA1').toString()).toBe('wJalrXUtnFEMI/K7MDENG');
  });

  it('refuses to open a value under another context', () => {
    const sealed = sealer.seal('secret', 'access-key:AKIA1');
    expect(() => sealer.open(sealed, 'access-key:AKIA2')).toThrow(/failed authentication/);
  });

  it('refuses a tampered ciphertext', () => {
    const sealed = sealer.seal('secret', 'ctx');
    const parts = sealed.split('.');
    const ct = Buffer.from(parts[2]!, 'base64url');
    ct[0] = ct[0]! ^ 1;
    parts[2] = ct.toString('base64url');
    expect(() => sealer.open(parts.join('.'), 'ctx')).toThrow(/failed authentication/);
  });

  it('refuses to open under another master key', () => {
    const sealed = sealer.seal('secret', 'ctx');
    expect(() => createSealer(randomBytes(32)).open(sealed, 'ctx')).toThrow();
  });

  it('uses a fresh IV each time', () => {
    expect(sealer.seal('x', 'c')).not.toBe(sealer.seal('x', 'c'));
  });
});

describe('master key', () => {
  it('creates a 0600 key file once and reuses it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'yh-mk-'));
    const a = loadMasterKey(dir, {});
    const b = loadMasterKey(dir, {});
    expect(a.equals(b)).toBe(true);
    expect(statSync(join(dir, 'master.key')).mode & 0o777).toBe(0o600);
  });

  it('prefers the environment and rejects a key of the wrong size', () => {
    const dir = mkdtempSync(join(tmpdir(), 'yh-mk-'));
    const hex = randomBytes(32).toString('hex');
    expect(loadMasterKey(dir, { YUNHAI_MASTER_KEY: hex }).toString('hex')).toBe(hex);
    expect(() => loadMasterKey(dir, { YUNHAI_MASTER_KEY: 'c2hvcnQ=' })).toThrow(/32 bytes/);
  });
});
