import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { localeKeys, readLocale } from './portal-harness.js';

const webSrc = join(import.meta.dirname, '..', '..', 'web', 'src');
const sources = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : /\.tsx?$/.test(e.name) ? [join(dir, e.name)] : [],
  );

describe('portal translations', () => {
  const en = localeKeys(readLocale('en')).sort();
  const zh = localeKeys(readLocale('zh-CN')).sort();

  it('zh-CN.json and en.json have exactly the same keys', () => {
    expect(zh).toEqual(en);
  });

  it('every literal key the portal asks for exists', () => {
    const used = new Set<string>();
    for (const f of sources(webSrc))
      for (const m of readFileSync(f, 'utf8').matchAll(/\bt\(\s*'([^']+)'/g)) used.add(m[1]!);
    expect(used.size).toBeGreaterThan(100);
    expect([...used].filter((k) => !en.includes(k))).toEqual([]);
  });

  it('has no empty or untranslated Chinese strings', () => {
    const flat = (o: Record<string, unknown>, p = ''): [string, string][] =>
      Object.entries(o).flatMap(([k, v]) =>
        typeof v === 'object' && v !== null
          ? flat(v as Record<string, unknown>, `${p}${k}.`)
          : [[`${p}${k}`, String(v)]],
      );
    const zhMap = new Map(flat(readLocale('zh-CN')));
    const enMap = new Map(flat(readLocale('en')));
    expect([...zhMap].filter(([, v]) => v.trim() === '')).toEqual([]);
    // Identical to English only where the text is a name or unit (ID, ARN, GiB...).
    const same = [...zhMap].filter(([k, v]) => v === enMap.get(k) && !/^[A-Z][A-Za-z]*$|GiB|ID|ARN/.test(v));
    expect(same).toEqual([]);
  });
});
