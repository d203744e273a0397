/**
 * The listing walk shared by ListObjects (v1, v2), ListObjectVersions and ListMultipartUploads:
 * rows come from the store in key order, already limited to the prefix; keys that contain the
 * delimiter after the prefix roll up into common prefixes, and the walk jumps past each rolled-up
 * prefix with one query instead of reading every key under it.
 */

/** Where the next store query starts: after a key, at a key, or after one version of a key. */
export type ListCursor = { gt: string } | { gte: string } | { key: string; after: number };

export interface ListPage<T> {
  entries: T[];
  commonPrefixes: string[];
  truncated: boolean;
  /** The last key or common prefix returned (NextMarker, NextContinuationToken's content). */
  last?: { key: string; entry?: T };
}

/** The smallest string greater than every string that starts with `s` (UTF-8 byte order), or undefined. */
export function prefixSuccessor(s: string): string | undefined {
  const cps = [...s];
  while (cps.length > 0) {
    const last = cps.pop()!.codePointAt(0)!;
    if (last < 0x10ffff) {
      const next = last + 1 === 0xd800 ? 0xe000 : last + 1;
      return cps.join('') + String.fromCodePoint(next);
    }
  }
  return undefined;
}

export async function walkListing<T extends { key: string }>(opts: {
  prefix: string;
  delimiter?: string;
  maxKeys: number;
  start?: ListCursor;
  /** A common prefix equal to this was returned on an earlier page and is not repeated. */
  marker?: string;
  fetch(cursor: ListCursor | undefined, limit: number): Promise<T[]>;
  /** Cursor just after `entry` (for versions: after its seq within its key). */
  after(entry: T): ListCursor;
}): Promise<ListPage<T>> {
  const { prefix, delimiter, maxKeys } = opts;
  const page: ListPage<T> = { entries: [], commonPrefixes: [], truncated: false };
  if (maxKeys <= 0) return page;
  let cursor = opts.start;
  let count = 0;
  outer: for (;;) {
    const batch = Math.min(1000, maxKeys - count + 1);
    const rows = await opts.fetch(cursor, batch);
    for (const row of rows) {
      if (delimiter) {
        const at = row.key.indexOf(delimiter, prefix.length);
        if (at >= 0) {
          const cp = row.key.slice(0, at + delimiter.length);
          const next = prefixSuccessor(cp);
          if (cp !== opts.marker) {
            if (count === maxKeys) {
              page.truncated = true;
              break outer;
            }
            page.commonPrefixes.push(cp);
            page.last = { key: cp };
            count++;
          }
          if (next === undefined) break outer;
          cursor = { gte: next };
          continue outer;
        }
      }
      if (count === maxKeys) {
        page.truncated = true;
        break outer;
      }
      page.entries.push(row);
      page.last = { key: row.key, entry: row };
      count++;
      cursor = opts.after(row);
    }
    if (rows.length < batch) break;
  }
  return page;
}
