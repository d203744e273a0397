import { describe, expect, it } from 'vitest';
import { type ListCursor, prefixSuccessor, walkListing } from './listing.js';

const KEYS = ['a', 'b/1', 'b/2', 'b/3/x', 'c', 'd/1', 'e'].map((key) => ({ key }));

function fetcher(prefix: string, calls: { n: number }) {
  return async (cursor: ListCursor | undefined, limit: number) => {
    calls.n++;
    return KEYS.filter((k) => k.key.startsWith(prefix))
      .filter((k) => {
        if (!cursor) return true;
        if ('gt' in cursor) return k.key > cursor.gt;
        if ('gte' in cursor) return k.key >= cursor.gte;
        return k.key > cursor.key;
      })
      .slice(0, limit);
  };
}

describe('listing walk', () => {
  it('rolls keys up into common prefixes and pages through them', async () => {
    const calls = { n: 0 };
    const list = (start?: ListCursor, marker?: string) =>
      walkListing({
        prefix: '',
        delimiter: '/',
        maxKeys: 2,
        start,
        marker,
        fetch: fetcher('', calls),
        after: (e) => ({ gt: e.key }),
      });
    const p1 = await list();
    expect(p1.entries.map((e) => e.key)).toEqual(['a']);
    expect(p1.commonPrefixes).toEqual(['b/']);
    expect(p1.truncated).toBe(true);
    const p2 = await list({ gt: p1.last!.key }, p1.last!.key);
    expect(p2.entries.map((e) => e.key)).toEqual(['c']);
    expect(p2.commonPrefixes).toEqual(['d/']);
    const p3 = await list({ gt: p2.last!.key }, p2.last!.key);
    expect(p3.entries.map((e) => e.key)).toEqual(['e']);
    expect(p3.truncated).toBe(false);
  });

  it('lists under a prefix with a nested delimiter and answers nothing for max-keys 0', async () => {
    const calls = { n: 0 };
    const p = await walkListing({
      prefix: 'b/',
      delimiter: '/',
      maxKeys: 10,
      fetch: fetcher('b/', calls),
      after: (e) => ({ gt: e.key }),
    });
    expect(p.entries.map((e) => e.key)).toEqual(['b/1', 'b/2']);
    expect(p.commonPrefixes).toEqual(['b/3/']);
    const none = await walkListing({
      prefix: '',
      maxKeys: 0,
      fetch: fetcher('', calls),
      after: (e) => ({ gt: e.key }),
    });
    expect(none).toEqual({ entries: [], commonPrefixes: [], truncated: false });
  });

  it('finds the successor of a prefix in byte order', () => {
    expect(prefixSuccessor('b/')).toBe('b0');
    expect(prefixSuccessor('a\u{10FFFF}')).toBe('b');
    expect(prefixSuccessor('\u{10FFFF}')).toBeUndefined();
    expect(prefixSuccessor('x\uD7FF')).toBe('x\uE000');
  });
});
