import { type Expression, type SqlBool, sql } from 'kysely';

/**
 * Text filters that behave the same on SQLite and PostgreSQL. LIKE differs between them (SQLite
 * ignores ASCII case, PostgreSQL does not) and treats % and _ as wildcards, so prefix matches
 * compare a substring exactly and searches lower-case both sides with the wildcards escaped.
 */
export function startsWith(column: string, prefix: string): Expression<SqlBool> {
  return sql<SqlBool>`substr(${sql.ref(column)}, 1, ${prefix.length}) = ${prefix}`;
}

export function containsIgnoringCase(column: string, needle: string): Expression<SqlBool> {
  const escaped = needle.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`);
  return sql<SqlBool>`lower(${sql.ref(column)}) like ${`%${escaped}%`} escape '\\'`;
}
