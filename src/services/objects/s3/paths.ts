/** Where an S3 request points: bucket from the Host (virtual-hosted style) or the path, then the key. */

const hexVal = (c: number) =>
  c >= 0x30 && c <= 0x39
    ? c - 0x30
    : c >= 0x41 && c <= 0x46
      ? c - 0x37
      : c >= 0x61 && c <= 0x66
        ? c - 0x57
        : -1;

/** Percent-decodes UTF-8 leniently: a '%' without two hex digits stays literal; '+' stays '+'. */
export function percentDecodeUtf8(s: string): string {
  if (!s.includes('%')) return s;
  const src = Buffer.from(s, 'utf8');
  const out = Buffer.allocUnsafe(src.length);
  let n = 0;
  for (let i = 0; i < src.length; i++) {
    const b = src[i]!;
    if (b === 0x25) {
      const hi = hexVal(src[i + 1] ?? -1);
      const lo = hexVal(src[i + 2] ?? -1);
      if (hi >= 0 && lo >= 0) {
        out[n++] = (hi << 4) | lo;
        i += 2;
        continue;
      }
    }
    out[n++] = b;
  }
  return out.subarray(0, n).toString('utf8');
}

/** Decoded query parameters (form rules: '+' is a space); the first value of a repeated name wins. */
export function parseQuery(raw: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of raw.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const name = percentDecodeUtf8((eq < 0 ? part : part.slice(0, eq)).replace(/\+/g, ' '));
    const value = eq < 0 ? '' : percentDecodeUtf8(part.slice(eq + 1).replace(/\+/g, ' '));
    if (!out.has(name)) out.set(name, value);
  }
  return out;
}

export interface S3Target {
  bucket?: string;
  key?: string;
  /** The bucket came from the Host header. */
  virtualHost: boolean;
}

/**
 * Resolves the bucket and key. A Host of `<bucket>.<domain>` for one of `domains` (the S3 host
 * names, e.g. `localhost`, `127.0.0.1`, `s3.example.com`) is virtual-hosted style and the whole
 * path is the key; otherwise the first path segment is the bucket.
 */
export function resolveTarget(
  rawPath: string,
  host: string | undefined,
  domains: readonly string[],
): S3Target {
  const hostname = (host ?? '').replace(/:\d+$/, '').toLowerCase().replace(/\.$/, '');
  for (const d of domains) {
    if (hostname.length > d.length + 1 && hostname.endsWith(`.${d}`)) {
      const bucket = hostname.slice(0, -(d.length + 1));
      const key = rawPath.length > 1 ? percentDecodeUtf8(rawPath.slice(1)) : undefined;
      return { bucket, ...(key !== undefined ? { key } : {}), virtualHost: true };
    }
  }
  const path = rawPath.startsWith('/') ? rawPath.slice(1) : rawPath;
  if (path === '') return { virtualHost: false };
  const slash = path.indexOf('/');
  if (slash < 0) return { bucket: percentDecodeUtf8(path), virtualHost: false };
  const bucket = percentDecodeUtf8(path.slice(0, slash));
  const rest = path.slice(slash + 1);
  return { bucket, ...(rest !== '' ? { key: percentDecodeUtf8(rest) } : {}), virtualHost: false };
}
