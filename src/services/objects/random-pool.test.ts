import { describe, expect, it } from 'vitest';
import { isResourceId } from '../../platform/ids.js';
import { randomAlnum, randomBase64url, randomHex } from './random-pool.js';

describe('random ids from the pool', () => {
  it('answers ids of the requested shapes, all distinct across many pool refills', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 5000; i++) {
      const hex = randomHex(12);
      const b64 = randomBase64url(24);
      const evt = `evt-${randomAlnum(12)}`;
      expect(hex).toMatch(/^[0-9a-f]{24}$/);
      expect(b64).toMatch(/^[A-Za-z0-9_-]{32}$/);
      expect(isResourceId('evt', evt)).toBe(true);
      for (const id of [hex, b64, evt]) {
        expect(seen.has(id)).toBe(false);
        seen.add(id);
      }
    }
  });
});
