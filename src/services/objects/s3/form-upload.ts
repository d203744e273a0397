/**
 * Browser-form uploads (POST Object): a streaming multipart/form-data reader and the POST policy
 * check (Amazon S3 "Browser-based uploads using POST", signature versions 2 and 4).
 *
 * Fields before the `file` part are read into memory (bounded); the file part streams to the
 * caller without being buffered; whatever follows the file part is ignored, as S3 does.
 */
import { ObjectError } from '../errors.js';

export interface FormField {
  /** As sent (field names are compared case-insensitively). */
  name: string;
  value: string;
}

export interface FormUpload {
  /** By lowercase name. */
  fields: Map<string, FormField>;
  file: { filename?: string; contentType?: string; stream: AsyncIterable<Uint8Array> };
}

const MAX_FIELDS_BYTES = 64 * 1024;

const badForm = (message = 'The body of your POST request is not well-formed multipart/form-data.') =>
  new ObjectError('MalformedPOSTRequest', message);

/** The boundary of a `multipart/form-data; boundary=...` content type, or undefined. */
export function formBoundary(contentType: string | undefined): string | undefined {
  if (!contentType || !/^multipart\/form-data\b/i.test(contentType.trim())) return undefined;
  const m = /;\s*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  return m ? (m[1] ?? m[2]) : undefined;
}

function parsePartHeaders(text: string): { name?: string; filename?: string; contentType?: string } {
  const out: { name?: string; filename?: string; contentType?: string } = {};
  for (const line of text.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const h = line.slice(0, colon).trim().toLowerCase();
    const v = line.slice(colon + 1).trim();
    if (h === 'content-disposition') {
      const name = /\bname="([^"]*)"/i.exec(v) ?? /\bname=([^;\s]+)/i.exec(v);
      const filename = /\bfilename="([^"]*)"/i.exec(v) ?? /\bfilename=([^;\s]+)/i.exec(v);
      if (name) out.name = name[1]!;
      if (filename) out.filename = filename[1]!;
    } else if (h === 'content-type') out.contentType = v;
  }
  return out;
}

/**
 * Reads fields up to the `file` part and answers them with the file's body as a stream. The
 * stream ends at the part's closing boundary; a body that ends before it fails the stream.
 */
export async function readFormUpload(
  source: AsyncIterable<Uint8Array>,
  boundary: string,
): Promise<FormUpload> {
  const it = source[Symbol.asyncIterator]();
  let buf = Buffer.alloc(0);
  let ended = false;
  const more = async () => {
    if (ended) return false;
    const r = await it.next();
    if (r.done) {
      ended = true;
      return false;
    }
    buf = buf.length === 0 ? Buffer.from(r.value) : Buffer.concat([buf, r.value]);
    return true;
  };
  const delimiter = Buffer.from(`\r\n--${boundary}`);
  // The body starts with `--boundary` (no CRLF before the first one): match it as if it had one.
  buf = Buffer.from('\r\n');
  const fields = new Map<string, FormField>();
  let total = 0;
  for (;;) {
    // At a delimiter: find it, then the part headers.
    let at = buf.indexOf(delimiter);
    while (at < 0) {
      if (buf.length > MAX_FIELDS_BYTES) throw badForm();
      if (!(await more())) throw badForm();
      at = buf.indexOf(delimiter);
    }
    buf = buf.subarray(at + delimiter.length);
    while (buf.length < 2 && (await more()));
    if (buf.subarray(0, 2).toString() === '--')
      throw new ObjectError('InvalidArgument', 'POST requires exactly one file upload per request.', {
        extra: { ArgumentName: 'file', ArgumentValue: '0' },
      });
    let headEnd = buf.indexOf('\r\n\r\n');
    while (headEnd < 0) {
      if (buf.length > MAX_FIELDS_BYTES) throw badForm();
      if (!(await more())) throw badForm();
      headEnd = buf.indexOf('\r\n\r\n');
    }
    const head = parsePartHeaders(buf.subarray(0, headEnd).toString('utf8'));
    buf = buf.subarray(headEnd + 4);
    if (head.name === undefined) throw badForm();
    if (head.name.toLowerCase() === 'file') {
      const rest = buf;
      return {
        fields,
        file: {
          ...(head.filename !== undefined ? { filename: head.filename } : {}),
          ...(head.contentType !== undefined ? { contentType: head.contentType } : {}),
          stream: fileStream(rest, it, delimiter),
        },
      };
    }
    let end = buf.indexOf(delimiter);
    while (end < 0) {
      if (buf.length > MAX_FIELDS_BYTES) throw badForm();
      if (!(await more())) throw badForm();
      end = buf.indexOf(delimiter);
    }
    const value = buf.subarray(0, end).toString('utf8');
    total += value.length + head.name.length;
    if (total > MAX_FIELDS_BYTES) throw badForm('The form fields of your POST request are too large.');
    fields.set(head.name.toLowerCase(), { name: head.name, value });
    buf = buf.subarray(end);
  }
}

/** The file part's bytes: everything up to the next delimiter, holding back a delimiter's length. */
async function* fileStream(
  start: Buffer,
  it: AsyncIterator<Uint8Array>,
  delimiter: Buffer,
): AsyncGenerator<Buffer> {
  let buf = start;
  for (;;) {
    const at = buf.indexOf(delimiter);
    if (at >= 0) {
      if (at > 0) yield buf.subarray(0, at);
      // Drain the rest of the body (fields after the file are ignored).
      for (;;) {
        const r = await it.next();
        if (r.done) return;
      }
    }
    const keep = Math.min(buf.length, delimiter.length - 1);
    if (buf.length > keep) {
      yield buf.subarray(0, buf.length - keep);
      buf = buf.subarray(buf.length - keep);
    }
    const r = await it.next();
    if (r.done) throw new ObjectError('IncompleteBody', 'The POST request body ended inside the file.');
    buf = buf.length === 0 ? Buffer.from(r.value) : Buffer.concat([buf, r.value]);
  }
}

// ---- the policy ---------------------------------------------------------------------------------

export type PolicyCondition =
  | { op: 'eq' | 'starts-with'; field: string; value: string }
  | { op: 'content-length-range'; min: number; max: number };

export interface PostPolicy {
  expiration: number;
  conditions: PolicyCondition[];
}

const invalidPolicy = (message: string) => new ObjectError('InvalidPolicyDocument', message);
const denied = (message: string) => new ObjectError('AccessDenied', message);

/** Decodes and validates a base64 POST policy document (InvalidPolicyDocument, 400, when malformed). */
export function parsePostPolicy(base64: string): PostPolicy {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(base64, 'base64').toString('utf8'));
  } catch {
    throw invalidPolicy('Invalid Policy: Invalid JSON.');
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    throw invalidPolicy('Invalid Policy: Invalid JSON.');
  const d = doc as Record<string, unknown>;
  if (typeof d.expiration !== 'string') throw invalidPolicy('Invalid Policy: Policy missing expiration.');
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/.test(d.expiration))
    throw invalidPolicy("Invalid Policy: Invalid 'expiration' value.");
  const expiration = Date.parse(d.expiration);
  if (Number.isNaN(expiration)) throw invalidPolicy("Invalid Policy: Invalid 'expiration' value.");
  if (!Array.isArray(d.conditions)) throw invalidPolicy('Invalid Policy: Policy missing conditions.');
  const conditions: PolicyCondition[] = [];
  for (const c of d.conditions as unknown[]) {
    if (Array.isArray(c)) {
      const op = String(c[0] ?? '').toLowerCase();
      if (op === 'content-length-range') {
        if (c.length !== 3) throw invalidPolicy('Invalid Policy: Invalid content-length-range condition.');
        const min = Number(c[1]);
        const max = Number(c[2]);
        if (!Number.isInteger(min) || !Number.isInteger(max) || min < 0 || max < min)
          throw invalidPolicy('Invalid Policy: Invalid content-length-range condition.');
        conditions.push({ op: 'content-length-range', min, max });
      } else if (op === 'eq' || op === 'starts-with') {
        if (c.length !== 3 || typeof c[1] !== 'string' || typeof c[2] !== 'string' || !c[1].startsWith('$'))
          throw invalidPolicy(`Invalid Policy: Invalid '${op}' condition.`);
        conditions.push({ op, field: c[1].slice(1).toLowerCase(), value: c[2] });
      } else throw invalidPolicy(`Invalid Policy: Invalid condition operator '${String(c[0])}'.`);
    } else if (typeof c === 'object' && c !== null) {
      const entries = Object.entries(c as Record<string, unknown>);
      if (entries.length !== 1 || typeof entries[0]![1] !== 'string')
        throw invalidPolicy('Invalid Policy: Invalid simple condition.');
      const [field, value] = entries[0] as [string, string];
      conditions.push({ op: 'eq', field: field.replace(/^\$/, '').toLowerCase(), value });
    } else throw invalidPolicy('Invalid Policy: Invalid condition.');
  }
  return { expiration, conditions };
}

/** Fields a policy need not name. */
const EXEMPT = new Set([
  'awsaccesskeyid',
  'signature',
  'policy',
  'file',
  'x-amz-signature',
  'x-amz-credential',
  'x-amz-algorithm',
  'x-amz-date',
  'x-amz-security-token',
]);
const exempt = (name: string) =>
  EXEMPT.has(name) || name.startsWith('x-ignore-') || name.startsWith('x-amz-checksum-');

/**
 * Checks the form against the policy: not expired; every condition holds (the bucket is a field);
 * every form field is named by a condition. Answers the allowed body size range. Failures are
 * AccessDenied (403), as S3 answers.
 */
export function checkPostPolicy(
  policy: PostPolicy,
  values: Map<string, string>,
  now: number,
): { min: number; max: number } | undefined {
  if (policy.expiration < now) throw denied('Invalid according to Policy: Policy expired.');
  let range: { min: number; max: number } | undefined;
  const named = new Set<string>();
  for (const c of policy.conditions) {
    if (c.op === 'content-length-range') {
      range = { min: c.min, max: c.max };
      continue;
    }
    named.add(c.field);
    // An absent field counts as empty (so `["starts-with", "$x", ""]` allows leaving it out).
    const v = values.get(c.field) ?? '';
    const ok = c.op === 'eq' ? v === c.value : v.startsWith(c.value);
    if (!ok)
      throw denied(
        `Invalid according to Policy: Policy Condition failed: ["${c.op}", "$${c.field}", "${c.op === 'eq' || c.op === 'starts-with' ? c.value : ''}"]`,
      );
  }
  for (const name of values.keys()) {
    if (exempt(name) || named.has(name)) continue;
    throw denied(`Invalid according to Policy: Extra input fields: ${name}`);
  }
  return range;
}
