import { YunhaiError } from '../../../platform/errors.js';
import { iamPath } from '../schema.js';
import { QueryError } from './errors.js';

/**
 * Request parameters of the AWS Query protocol: `application/x-www-form-urlencoded` pairs from the
 * POST body and the query string. Decoding is strict (a bad %-escape or invalid UTF-8 is refused
 * rather than guessed at) and a parameter may appear only once.
 */

const utf8 = new TextDecoder('utf-8', { fatal: true });

const malformed = (message: string) => new QueryError('ValidationError', 'MalformedQueryString', message);

function decodeComponent(raw: string, where: string): string {
  try {
    return decodeURIComponent(raw.replace(/\+/g, ' '));
  } catch {
    throw malformed(`The ${where} has an invalid percent-encoding or is not UTF-8: '${raw.slice(0, 100)}'.`);
  }
}

/**
 * Adds the pairs of a form-encoded string to `into`. `skipAuth` leaves out the X-Amz-* parameters of a
 * presigned URL, which authenticate the request and are not action parameters.
 */
export function parseForm(
  text: string,
  into: Map<string, string>,
  where: 'request body' | 'query string',
  skipAuth = false,
) {
  for (const part of text.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const name = decodeComponent(eq < 0 ? part : part.slice(0, eq), where);
    const value = decodeComponent(eq < 0 ? '' : part.slice(eq + 1), where);
    if (name === '') throw malformed(`The ${where} has a parameter without a name.`);
    if (skipAuth && /^x-amz-/i.test(name)) continue;
    if (into.has(name)) throw malformed(`The parameter '${name.slice(0, 100)}' appears more than once.`);
    into.set(name, value);
  }
}

/** The form body as text; bytes that are not UTF-8 are refused. */
export function decodeBody(body: Buffer): string {
  try {
    return utf8.decode(body);
  } catch {
    throw malformed('The request body is not valid UTF-8.');
  }
}

// ---- typed, validated access -----------------------------------------------------------------

/** AWS names members in validation messages in lowerCamelCase: UserName -> userName. */
const member = (name: string) => name.charAt(0).toLowerCase() + name.slice(1);
const shown = (v: string) => (v.length > 100 ? `${v.slice(0, 100)}...` : v);

const invalid = (name: string, value: string, constraint: string) =>
  new YunhaiError(
    'ValidationError',
    `Value '${shown(value)}' at '${member(name)}' failed to satisfy constraint: Member must ${constraint}`,
  );

export interface StringRule {
  min?: number;
  max?: number;
  pattern?: RegExp;
  /** How the pattern reads in the message, e.g. AWS's `[\w+=,.@-]+`. */
  patternText?: string;
  /** Plain-words explanation appended to the pattern. */
  hint?: string;
  oneOf?: readonly string[];
  /** Further check; returns what the value must be ("be a path ...") when it fails. */
  check?: (value: string) => string | null;
}

export class Params {
  readonly #values: ReadonlyMap<string, string>;

  constructor(values: ReadonlyMap<string, string>) {
    this.#values = values;
  }

  has(name: string): boolean {
    return this.#values.has(name);
  }

  /** The raw value, unchecked. */
  raw(name: string): string | undefined {
    return this.#values.get(name);
  }

  string(name: string, rule: StringRule & { required: true }): string;
  string(name: string, rule?: StringRule & { required?: false }): string | undefined;
  string(name: string, rule: StringRule & { required?: boolean } = {}): string | undefined {
    const v = this.#values.get(name);
    if (v === undefined) {
      if (rule.required)
        throw new YunhaiError('MissingParameter', `The request must contain the parameter ${name}.`);
      return undefined;
    }
    const min = rule.min ?? 1;
    if (v.length < min) throw invalid(name, v, `have length greater than or equal to ${min}`);
    if (rule.max !== undefined && v.length > rule.max)
      throw invalid(name, v, `have length less than or equal to ${rule.max}`);
    if (rule.oneOf && !rule.oneOf.includes(v))
      throw invalid(name, v, `satisfy enum value set: [${rule.oneOf.join(', ')}]`);
    if (rule.pattern && !rule.pattern.test(v)) {
      const hint = rule.hint ? ` (${rule.hint})` : '';
      throw invalid(
        name,
        v,
        `satisfy regular expression pattern: ${rule.patternText ?? rule.pattern.source}${hint}`,
      );
    }
    const failed = rule.check?.(v);
    if (failed) throw invalid(name, v, failed);
    return v;
  }

  /** An integer in [min, max]; `fallback` when absent. */
  int(name: string, min: number, max: number, fallback: number): number;
  int(name: string, min: number, max: number): number | undefined;
  int(name: string, min: number, max: number, fallback?: number): number | undefined {
    const v = this.#values.get(name);
    if (v === undefined) return fallback;
    if (!/^-?\d{1,15}$/.test(v)) throw invalid(name, v, 'be an integer');
    const n = Number(v);
    if (n < min) throw invalid(name, v, `have value greater than or equal to ${min}`);
    if (n > max) throw invalid(name, v, `have value less than or equal to ${max}`);
    return n;
  }
}

// ---- the rules of the IAM and STS references ------------------------------------------------

export const USER_NAME: StringRule = {
  max: 64,
  pattern: /^[\w+=,.@-]+$/,
  patternText: '[\\w+=,.@-]+',
  hint: 'letters, digits and + = , . @ _ -, at most 64 characters',
};
export const PATH: StringRule = {
  max: 512,
  check: (v) =>
    iamPath.safeParse(v).success
      ? null
      : 'be a path that starts and ends with /, e.g. /engineering/, with printable ASCII and no empty or .. segments',
};
export const PATH_PREFIX: StringRule = {
  max: 512,
  pattern: /^\/[\x21-\x7e]*$/,
  patternText: '\\u002F[\\u0021-\\u007F]*',
  hint: 'starts with / and has no spaces',
};
export const MARKER: StringRule = { max: 320, pattern: /^[\x20-\xff]+$/, patternText: '[\\u0020-\\u00FF]+' };
export const ACCESS_KEY_ID: StringRule = {
  min: 16,
  max: 128,
  pattern: /^\w+$/,
  patternText: '[\\w]+',
  hint: 'an access key id looks like AKIA...',
};
export const KEY_STATUS: StringRule = { oneOf: ['Active', 'Inactive'] };
export const POLICY_ARN: StringRule = { min: 20, max: 2048 };
