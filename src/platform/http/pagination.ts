import { z } from 'zod';
import { YunhaiError } from '../errors.js';

/** Every list in the platform pages with an opaque cursor: `?limit=&cursor=` in, `nextCursor` out. */
export const pageQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(1000).default(50),
  cursor: z.string().max(512).optional(),
});
export type PageQuery = z.infer<typeof pageQuery>;

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export function encodeCursor(key: unknown[]): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url');
}

export function decodeCursor(cursor: string | undefined): unknown[] | undefined {
  if (cursor === undefined) return undefined;
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(v)) return v;
  } catch {
    // fall through
  }
  throw new YunhaiError(
    'ValidationError',
    'The pagination cursor is malformed; pass back nextCursor unchanged.',
  );
}

/** Cursor holding one string key (ids, names). */
export function stringCursor(cursor: string | undefined): string | undefined {
  const key = decodeCursor(cursor);
  if (key === undefined) return undefined;
  if (typeof key[0] !== 'string')
    throw new YunhaiError('ValidationError', 'The pagination cursor is malformed.');
  return key[0];
}

/** Fetch limit+1 rows, return a page and the cursor taken from the last row shown. */
export function toPage<R, T>(rows: R[], limit: number, map: (r: R) => T, key: (r: R) => unknown[]): Page<T> {
  const more = rows.length > limit;
  const shown = more ? rows.slice(0, limit) : rows;
  const last = shown[shown.length - 1];
  return { items: shown.map(map), nextCursor: more && last !== undefined ? encodeCursor(key(last)) : null };
}
