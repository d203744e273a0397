/**
 * S3 bucket policies: parse and validate a policy document as PutBucketPolicy does, and evaluate
 * it for one request. Pure: no I/O, no clock (callers put `aws:CurrentTime` into the conditions).
 *
 * Evaluation follows the IAM rules for a resource policy: an applicable explicit Deny wins, then
 * an applicable Allow; otherwise the policy says nothing ('NotApplicable') and the caller falls
 * back to ownership and ACLs. Condition semantics follow
 * https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html:
 * a key missing from the request fails a condition, except for negated operators (StringNotEquals,
 * NotIpAddress, ...), `...IfExists` operators and `ForAllValues:` sets, which it satisfies; `Null`
 * tests presence. Condition key names are case-insensitive, values are case-sensitive unless the
 * operator says IgnoreCase. Action names are case-insensitive, resource ARNs are not.
 *
 * Known gaps against AWS: no check that an action applies to the statement's resources (AWS
 * refuses `s3:GetObject` on a bucket ARN; s3-tests expects that to be accepted), principal
 * account ids are not required to be 12 digits (RGW-style tenants appear in s3-tests), and
 * policy variables cover `${aws:...}`/`${s3:...}` keys from the request plus `${*}`, `${?}`, `${$}`.
 */

/** The S3 error codes the configuration-document modules (policy, ACL, CORS, lifecycle) raise. */
export type S3DocumentErrorCode =
  | 'MalformedPolicy'
  | 'MalformedXML'
  | 'MalformedACLError'
  | 'InvalidArgument'
  | 'InvalidRequest'
  | 'UnresolvableGrantByEmailAddress';

/**
 * A caller's mistake in an S3 configuration document (bucket policy, ACL, CORS, lifecycle).
 * Always HTTP 400; `code` is the AWS error code to put in the S3 `<Error><Code>`.
 * Shared by bucket-policy.ts, acl.ts, cors.ts and lifecycle-rules.ts.
 */
export class S3DocumentError extends Error {
  readonly code: S3DocumentErrorCode;
  readonly status = 400;
  /** Extra `<Error>` members AWS sends with some codes (ArgumentName, ArgumentValue). */
  readonly details: Record<string, string> | undefined;

  constructor(code: S3DocumentErrorCode, message: string, details?: Record<string, string>) {
    super(message);
    this.name = 'S3DocumentError';
    this.code = code;
    this.details = details;
  }
}

// ---- wildcard matching ---------------------------------------------------------------------

/** `*` matches any run of characters (also `/` and `:`), `?` exactly one. */
export function wildcardMatch(pattern: string, text: string, ignoreCase = false): boolean {
  const p = ignoreCase ? pattern.toLowerCase() : pattern;
  const t = ignoreCase ? text.toLowerCase() : text;
  let pi = 0;
  let ti = 0;
  let star = -1;
  let mark = 0;
  while (ti < t.length) {
    if (pi < p.length && (p[pi] === '?' || p[pi] === t[ti])) {
      pi++;
      ti++;
    } else if (pi < p.length && p[pi] === '*') {
      star = pi++;
      mark = ti;
    } else if (star >= 0) {
      pi = star + 1;
      ti = ++mark;
    } else {
      return false;
    }
  }
  while (pi < p.length && p[pi] === '*') pi++;
  return pi === p.length;
}

/** Whether some string that starts with `prefix` matches the wildcard pattern. */
export function wildcardCanMatchPrefix(pattern: string, prefix: string): boolean {
  // Simulate the pattern as an NFA over the prefix; any state still alive can be completed.
  const closure = (states: Set<number>) => {
    for (const s of states) if (pattern[s] === '*') states.add(s + 1);
    return states;
  };
  let states = closure(new Set([0]));
  for (const ch of prefix) {
    const next = new Set<number>();
    for (const s of states) {
      if (s >= pattern.length) continue;
      const pc = pattern[s];
      if (pc === '*') next.add(s);
      else if (pc === '?' || pc === ch) next.add(s + 1);
    }
    states = closure(next);
    if (states.size === 0) return false;
  }
  return states.size > 0;
}

// ---- the policy model ----------------------------------------------------------------------

export type PolicyEffect = 'Allow' | 'Deny';

/** `'*'` (everyone, also anonymous callers) or principals by type. */
export type PolicyPrincipal =
  | '*'
  | {
      AWS?: string[];
      CanonicalUser?: string[];
      Service?: string[];
      Federated?: string[];
    };

export const CONDITION_OPERATORS = [
  'StringEquals',
  'StringNotEquals',
  'StringEqualsIgnoreCase',
  'StringNotEqualsIgnoreCase',
  'StringLike',
  'StringNotLike',
  'NumericEquals',
  'NumericNotEquals',
  'NumericLessThan',
  'NumericLessThanEquals',
  'NumericGreaterThan',
  'NumericGreaterThanEquals',
  'DateEquals',
  'DateNotEquals',
  'DateLessThan',
  'DateLessThanEquals',
  'DateGreaterThan',
  'DateGreaterThanEquals',
  'Bool',
  'BinaryEquals',
  'IpAddress',
  'NotIpAddress',
  'ArnEquals',
  'ArnLike',
  'ArnNotEquals',
  'ArnNotLike',
  'Null',
] as const;
export type ConditionOperator = (typeof CONDITION_OPERATORS)[number];

const NEGATED: ReadonlySet<ConditionOperator> = new Set([
  'StringNotEquals',
  'StringNotEqualsIgnoreCase',
  'StringNotLike',
  'NumericNotEquals',
  'DateNotEquals',
  'NotIpAddress',
  'ArnNotEquals',
  'ArnNotLike',
]);

/** One operator applied to one key, e.g. `ForAnyValue:StringLikeIfExists { "s3:prefix": [...] }`. */
export interface PolicyCondition {
  operator: ConditionOperator;
  ifExists: boolean;
  set?: 'ForAnyValue' | 'ForAllValues';
  /** The key as written (matched case-insensitively). */
  key: string;
  /** Policy values, as strings (numbers and booleans in the JSON are converted). */
  values: string[];
}

export interface PolicyStatement {
  sid?: string;
  effect: PolicyEffect;
  principal?: PolicyPrincipal;
  notPrincipal?: PolicyPrincipal;
  action?: string[];
  notAction?: string[];
  resource?: string[];
  notResource?: string[];
  /** All must hold (AND across operators and keys; OR across one key's values). */
  conditions: PolicyCondition[];
}

export interface BucketPolicy {
  version: '2012-10-17' | '2008-10-17';
  id?: string;
  statements: PolicyStatement[];
}

/** AWS limits a bucket policy to 20 KB. */
export const MAX_POLICY_BYTES = 20 * 1024;

/**
 * The S3 actions a bucket policy may name (IAM action names). Patterns like `s3:Get*` must
 * match at least one of them.
 */
export const S3_POLICY_ACTIONS = [
  'AbortMultipartUpload',
  'BypassGovernanceRetention',
  'CreateBucket',
  'DeleteBucket',
  'DeleteBucketOwnershipControls',
  'DeleteBucketPolicy',
  'DeleteBucketWebsite',
  'DeleteObject',
  'DeleteObjectTagging',
  'DeleteObjectVersion',
  'DeleteObjectVersionTagging',
  'GetAccelerateConfiguration',
  'GetAnalyticsConfiguration',
  'GetBucketAcl',
  'GetBucketCORS',
  'GetBucketLocation',
  'GetBucketLogging',
  'GetBucketNotification',
  'GetBucketObjectLockConfiguration',
  'GetBucketOwnershipControls',
  'GetBucketPolicy',
  'GetBucketPolicyStatus',
  'GetBucketPublicAccessBlock',
  'GetBucketRequestPayment',
  'GetBucketTagging',
  'GetBucketVersioning',
  'GetBucketWebsite',
  'GetEncryptionConfiguration',
  'GetIntelligentTieringConfiguration',
  'GetInventoryConfiguration',
  'GetLifecycleConfiguration',
  'GetMetricsConfiguration',
  'GetObject',
  'GetObjectAcl',
  'GetObjectAttributes',
  'GetObjectLegalHold',
  'GetObjectRetention',
  'GetObjectTagging',
  'GetObjectTorrent',
  'GetObjectVersion',
  'GetObjectVersionAcl',
  'GetObjectVersionAttributes',
  'GetObjectVersionForReplication',
  'GetObjectVersionTagging',
  'GetObjectVersionTorrent',
  'GetReplicationConfiguration',
  'ListAllMyBuckets',
  'ListBucket',
  'ListBucketMultipartUploads',
  'ListBucketVersions',
  'ListMultipartUploadParts',
  'ObjectOwnerOverrideToBucketOwner',
  'PutAccelerateConfiguration',
  'PutAnalyticsConfiguration',
  'PutBucketAcl',
  'PutBucketCORS',
  'PutBucketLogging',
  'PutBucketNotification',
  'PutBucketObjectLockConfiguration',
  'PutBucketOwnershipControls',
  'PutBucketPolicy',
  'PutBucketPublicAccessBlock',
  'PutBucketRequestPayment',
  'PutBucketTagging',
  'PutBucketVersioning',
  'PutBucketWebsite',
  'PutEncryptionConfiguration',
  'PutIntelligentTieringConfiguration',
  'PutInventoryConfiguration',
  'PutLifecycleConfiguration',
  'PutMetricsConfiguration',
  'PutObject',
  'PutObjectAcl',
  'PutObjectLegalHold',
  'PutObjectRetention',
  'PutObjectTagging',
  'PutObjectVersionAcl',
  'PutObjectVersionTagging',
  'PutReplicationConfiguration',
  'ReplicateDelete',
  'ReplicateObject',
  'ReplicateTags',
  'RestoreObject',
] as const;

const S3_ARN_PREFIX = 'arn:aws:s3:::';

/** `arn:aws:s3:::bucket` or `arn:aws:s3:::bucket/key` — the resource a request acts on. */
export const s3ResourceArn = (bucket: string, key?: string): string =>
  key === undefined ? `${S3_ARN_PREFIX}${bucket}` : `${S3_ARN_PREFIX}${bucket}/${key}`;

// ---- parsing -------------------------------------------------------------------------------

const malformed = (message: string) => new S3DocumentError('MalformedPolicy', message);

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
const isObject = (v: unknown): v is Record<string, Json> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** A string or a non-empty array of strings, as an array; throws `message` otherwise. */
function stringList(v: Json | undefined, message: string): string[] {
  if (typeof v === 'string') return [v];
  if (Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'string')) return v as string[];
  throw malformed(message);
}

const ACCOUNT_PRINCIPAL = /^arn:aws:iam::([^:/\s]+):root$/;
const ENTITY_PRINCIPAL = /^arn:aws:(iam|sts)::([^:/\s]+):[A-Za-z-]+\/\S+$/;

function parsePrincipal(v: Json | undefined, field: string): PolicyPrincipal {
  if (v === '*') return '*';
  if (!isObject(v) || Object.keys(v).length === 0) throw malformed(`Invalid principal in policy`);
  const out: Exclude<PolicyPrincipal, '*'> = {};
  for (const [type, value] of Object.entries(v)) {
    if (type !== 'AWS' && type !== 'CanonicalUser' && type !== 'Service' && type !== 'Federated')
      throw malformed(`Invalid principal in policy: unknown principal type ${type} in ${field}`);
    const ids = stringList(value, 'Invalid principal in policy');
    for (const id of ids) {
      const ok =
        type !== 'AWS' ||
        id === '*' ||
        /^\d{12}$/.test(id) ||
        ACCOUNT_PRINCIPAL.test(id) ||
        ENTITY_PRINCIPAL.test(id);
      if (!ok || id.trim() === '') throw malformed('Invalid principal in policy');
    }
    out[type] = ids;
  }
  return out;
}

function parseActions(v: Json | undefined): string[] {
  const actions = stringList(v, 'Policy has invalid action');
  for (const a of actions) {
    if (a === '*') continue;
    const colon = a.indexOf(':');
    const service = a.slice(0, colon);
    const name = a.slice(colon + 1);
    const known =
      colon > 0 &&
      service.toLowerCase() === 's3' &&
      name.length > 0 &&
      S3_POLICY_ACTIONS.some((known) => wildcardMatch(name, known, true));
    if (!known) throw malformed('Policy has invalid action');
  }
  return actions;
}

function parseResources(v: Json | undefined, bucket: string | undefined): string[] {
  const resources = stringList(v, 'Policy has invalid resource');
  for (const r of resources) {
    if (r === '*') continue;
    if (!r.startsWith(S3_ARN_PREFIX) || r.length === S3_ARN_PREFIX.length)
      throw malformed('Policy has invalid resource');
    if (bucket !== undefined) {
      // Every resource must be able to name this bucket or something in it.
      const inBucket =
        wildcardMatch(r, s3ResourceArn(bucket)) || wildcardCanMatchPrefix(r, s3ResourceArn(bucket, ''));
      if (!inBucket) throw malformed('Policy has invalid resource');
    }
  }
  return resources;
}

function parseOperator(name: string): Omit<PolicyCondition, 'key' | 'values'> {
  let rest = name;
  let set: PolicyCondition['set'];
  if (rest.startsWith('ForAnyValue:')) {
    set = 'ForAnyValue';
    rest = rest.slice('ForAnyValue:'.length);
  } else if (rest.startsWith('ForAllValues:')) {
    set = 'ForAllValues';
    rest = rest.slice('ForAllValues:'.length);
  }
  let ifExists = false;
  if (rest.endsWith('IfExists') && rest !== 'IfExists') {
    ifExists = true;
    rest = rest.slice(0, -'IfExists'.length);
  }
  const operator = CONDITION_OPERATORS.find((o) => o === rest);
  if (!operator || (operator === 'Null' && ifExists)) throw malformed(`Invalid Condition type : ${name}`);
  return { operator, ifExists, ...(set ? { set } : {}) };
}

const CONDITION_KEY = /^(aws|s3):[A-Za-z0-9_./@+=,:$*?-]+$/i;

function checkConditionValue(operator: ConditionOperator, key: string, value: string): void {
  const bad = () => malformed(`Invalid Condition value for ${operator} ${key}: ${value}`);
  if (operator.startsWith('Numeric') && parseNumber(value) === undefined) throw bad();
  if (operator.startsWith('Date') && parseDate(value) === undefined) throw bad();
  if ((operator === 'Bool' || operator === 'Null') && value !== 'true' && value !== 'false') throw bad();
  if ((operator === 'IpAddress' || operator === 'NotIpAddress') && parseCidr(value) === undefined)
    throw bad();
}

function parseConditions(v: Json | undefined): PolicyCondition[] {
  if (v === undefined) return [];
  if (!isObject(v)) throw malformed('Condition must be an object');
  const out: PolicyCondition[] = [];
  for (const [opName, block] of Object.entries(v)) {
    const op = parseOperator(opName);
    if (!isObject(block) || Object.keys(block).length === 0)
      throw malformed(`Invalid Condition block for ${opName}`);
    for (const [key, raw] of Object.entries(block)) {
      if (!CONDITION_KEY.test(key)) throw malformed(`Policy has an invalid condition key: ${key}`);
      const list = Array.isArray(raw) ? raw : [raw];
      if (list.length === 0) throw malformed(`Condition ${opName} ${key} has no values`);
      const values = list.map((x) => {
        if (typeof x === 'string') return x;
        if (typeof x === 'number' || typeof x === 'boolean') return String(x);
        throw malformed(`Invalid Condition value for ${opName} ${key}`);
      });
      for (const value of values) checkConditionValue(op.operator, key, value);
      out.push({ ...op, key, values });
    }
  }
  return out;
}

const STATEMENT_FIELDS = new Set([
  'Sid',
  'Effect',
  'Principal',
  'NotPrincipal',
  'Action',
  'NotAction',
  'Resource',
  'NotResource',
  'Condition',
]);

function parseStatement(s: Json, bucket: string | undefined): PolicyStatement {
  if (!isObject(s)) throw malformed('Statement must be an object');
  for (const field of Object.keys(s))
    if (!STATEMENT_FIELDS.has(field)) throw malformed(`Unknown field ${field}`);
  if (s.Sid !== undefined && typeof s.Sid !== 'string') throw malformed('Sid must be a string');
  if (s.Effect === undefined) throw malformed('Missing required field Effect');
  if (s.Effect !== 'Allow' && s.Effect !== 'Deny') throw malformed(`Invalid effect: ${String(s.Effect)}`);
  const effect: PolicyEffect = s.Effect;
  const has = (k: string) => s[k] !== undefined;

  if (has('Principal') && has('NotPrincipal'))
    throw malformed('Statement has both Principal and NotPrincipal');
  if (!has('Principal') && !has('NotPrincipal')) throw malformed('Missing required field Principal');
  if (has('NotPrincipal') && effect === 'Allow')
    throw malformed('Invalid principal in policy: NotPrincipal may only be used with Effect Deny');
  if (has('Action') && has('NotAction')) throw malformed('Statement has both Action and NotAction');
  if (!has('Action') && !has('NotAction')) throw malformed('Missing required field Action');
  if (has('Resource') && has('NotResource')) throw malformed('Statement has both Resource and NotResource');
  if (!has('Resource') && !has('NotResource')) throw malformed('Missing required field Resource');

  const st: PolicyStatement = { effect, conditions: parseConditions(s.Condition) };
  if (typeof s.Sid === 'string') st.sid = s.Sid;
  if (has('Principal')) st.principal = parsePrincipal(s.Principal, 'Principal');
  if (has('NotPrincipal')) st.notPrincipal = parsePrincipal(s.NotPrincipal, 'NotPrincipal');
  if (has('Action')) st.action = parseActions(s.Action);
  if (has('NotAction')) st.notAction = parseActions(s.NotAction);
  if (has('Resource')) st.resource = parseResources(s.Resource, bucket);
  if (has('NotResource')) st.notResource = parseResources(s.NotResource, undefined);
  return st;
}

/**
 * Parses and validates a bucket policy document (the PutBucketPolicy body). With `bucket`, every
 * Resource must be able to name that bucket or objects in it, as AWS requires. Throws
 * S3DocumentError('MalformedPolicy') with AWS-like messages.
 */
export function parseBucketPolicy(
  document: string | Uint8Array,
  opts: { bucket?: string } = {},
): BucketPolicy {
  const text = typeof document === 'string' ? document : new TextDecoder().decode(document);
  if (Buffer.byteLength(text, 'utf8') > MAX_POLICY_BYTES)
    throw malformed(`Policies must be no larger than ${MAX_POLICY_BYTES} bytes`);
  if (!text.trimStart().startsWith('{'))
    throw malformed("Policies must be valid JSON and the first byte must be '{'");
  let doc: Json;
  try {
    doc = JSON.parse(text) as Json;
  } catch {
    throw malformed('This policy contains invalid Json');
  }
  if (!isObject(doc)) throw malformed("Policies must be valid JSON and the first byte must be '{'");
  for (const field of Object.keys(doc))
    if (field !== 'Version' && field !== 'Id' && field !== 'Statement')
      throw malformed(`Unknown field ${field}`);
  let version: BucketPolicy['version'] = '2008-10-17';
  if (doc.Version !== undefined) {
    if (doc.Version !== '2012-10-17' && doc.Version !== '2008-10-17')
      throw malformed(`The policy must contain a valid version string`);
    version = doc.Version;
  }
  if (doc.Id !== undefined && typeof doc.Id !== 'string') throw malformed('Id must be a string');
  const raw = doc.Statement;
  if (raw === undefined || (Array.isArray(raw) && raw.length === 0))
    throw malformed('Missing required field Statement');
  const statements = (Array.isArray(raw) ? raw : [raw]).map((s) => parseStatement(s, opts.bucket));
  const sids = statements.flatMap((s) => (s.sid ? [s.sid] : []));
  if (new Set(sids).size !== sids.length) throw malformed('Statement IDs (SID) must be unique');
  return { version, ...(typeof doc.Id === 'string' ? { id: doc.Id } : {}), statements };
}

// ---- evaluation ----------------------------------------------------------------------------

/** Who is asking: a signed-in identity, or anonymous (`anonymous: true`, other fields unset). */
export interface PolicyRequestPrincipal {
  anonymous: boolean;
  /** The caller's account (tenant) id. */
  accountId?: string;
  /** `arn:aws:iam::<account>:user/<path><name>` (or an STS assumed-role ARN). */
  userArn?: string;
  /** The S3 canonical user id, matched by `{"CanonicalUser": ...}` principals. */
  canonicalId?: string;
}

/**
 * One request to evaluate. `conditions` holds the request context: `aws:SourceIp`,
 * `aws:SecureTransport` ('true'/'false'), `aws:CurrentTime` (ISO 8601), `aws:EpochTime`,
 * `aws:Referer`, `aws:UserAgent`, `aws:username`, `aws:userid`, `aws:PrincipalAccount`,
 * `s3:prefix`, `s3:delimiter`, `s3:max-keys`, `s3:x-amz-acl`, `s3:x-amz-grant-*`,
 * `s3:x-amz-copy-source`, `s3:x-amz-metadata-directive`, `s3:x-amz-server-side-encryption`,
 * `s3:x-amz-server-side-encryption-customer-algorithm`, `s3:ExistingObjectTag/<key>`,
 * `s3:RequestObjectTag/<key>`, `s3:RequestObjectTagKeys` (multi-valued), `s3:VersionId`,
 * `s3:object-lock-*`, ... Absent keys are simply left out (or undefined).
 */
export interface PolicyRequest {
  principal: PolicyRequestPrincipal;
  /** e.g. `s3:GetObject` */
  action: string;
  /** e.g. `arn:aws:s3:::bucket/key` (see s3ResourceArn) */
  resource: string;
  conditions?: Record<string, string | readonly string[] | undefined>;
}

export type PolicyDecision = 'Allow' | 'Deny' | 'NotApplicable';

function principalMatches(spec: PolicyPrincipal, who: PolicyRequestPrincipal): boolean {
  if (spec === '*') return true;
  if (spec.AWS?.includes('*')) return true;
  if (who.anonymous) return false;
  for (const id of spec.AWS ?? []) {
    const account = /^\d{12}$/.test(id) ? id : ACCOUNT_PRINCIPAL.exec(id)?.[1];
    if (account !== undefined) {
      if (account === who.accountId) return true;
    } else if (who.userArn !== undefined && id === who.userArn) {
      return true;
    }
  }
  if (who.canonicalId !== undefined && spec.CanonicalUser?.includes(who.canonicalId)) return true;
  return false;
}

type Context = NonNullable<PolicyRequest['conditions']>;

/** Case-insensitive lookup of a condition key; an empty array counts as absent. */
function lookup(ctx: Context, key: string): readonly string[] | undefined {
  let v = ctx[key];
  if (v === undefined) {
    const lower = key.toLowerCase();
    for (const [k, val] of Object.entries(ctx)) {
      if (k.toLowerCase() === lower && val !== undefined) {
        v = val;
        break;
      }
    }
  }
  if (v === undefined) return undefined;
  return typeof v === 'string' ? [v] : v.length > 0 ? v : undefined;
}

/** Policy variables (2012-10-17 only): `${aws:username}` etc. from the request; undefined if one is unset. */
function substitute(text: string, ctx: Context, version: BucketPolicy['version']): string | undefined {
  if (version !== '2012-10-17' || !text.includes('${')) return text;
  let missing = false;
  const out = text.replace(/\$\{([^}]*)\}/g, (_m, name: string) => {
    if (name === '*' || name === '?' || name === '$') return `\uE000${name}`;
    const v = lookup(ctx, name);
    if (v === undefined || v.length !== 1) {
      missing = true;
      return '';
    }
    return v[0]!;
  });
  if (missing) return undefined;
  return out;
}

/** Wildcard match where `${*}`/`${?}` (marked by substitute) are literal characters. */
function patternMatch(pattern: string, text: string, ignoreCase: boolean): boolean {
  if (!pattern.includes('\uE000')) return wildcardMatch(pattern, text, ignoreCase);
  // Escape the literal markers by matching segment-wise: split on markers into a regex.
  const re = pattern
    .split(/(\uE000[*?$])/)
    .map((part) =>
      part.startsWith('\uE000')
        ? escapeRegex(part.slice(1))
        : part
            .split('')
            .map((c) => (c === '*' ? '.*' : c === '?' ? '.' : escapeRegex(c)))
            .join(''),
    )
    .join('');
  return new RegExp(`^${re}$`, ignoreCase ? 'is' : 's').test(text);
}

const escapeRegex = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function parseNumber(v: string): number | undefined {
  if (!/^\s*-?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$/.test(v)) return undefined;
  return Number(v);
}

function parseDate(v: string): number | undefined {
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  if (!/^\d{4}-\d{2}-\d{2}/.test(v)) return undefined;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : t;
}

interface Cidr {
  v6: boolean;
  net: bigint;
  bits: number;
}

function parseIp(s: string): { v6: boolean; n: bigint } | undefined {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(s);
  if (mapped) return parseIp(mapped[1]!);
  if (/^\d+\.\d+\.\d+\.\d+$/.test(s)) {
    const parts = s.split('.').map(Number);
    if (parts.some((p) => p > 255)) return undefined;
    return { v6: false, n: parts.reduce((acc, p) => (acc << 8n) | BigInt(p), 0n) };
  }
  if (!s.includes(':') || !/^[0-9a-f:]+$/i.test(s)) return undefined;
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const head = halves[0] ? halves[0].split(':') : [];
  const tail = halves.length === 2 && halves[1] ? halves[1].split(':') : [];
  const fill = 8 - head.length - tail.length;
  if ((halves.length === 1 && fill !== 0) || (halves.length === 2 && fill < 1)) return undefined;
  const groups = [...head, ...Array<string>(halves.length === 2 ? fill : 0).fill('0'), ...tail];
  if (groups.some((g) => !/^[0-9a-f]{1,4}$/i.test(g))) return undefined;
  return { v6: true, n: groups.reduce((acc, g) => (acc << 16n) | BigInt(Number.parseInt(g, 16)), 0n) };
}

function parseCidr(s: string): Cidr | undefined {
  const [addr, len, extra] = s.trim().split('/');
  if (extra !== undefined || !addr) return undefined;
  const ip = parseIp(addr);
  if (!ip) return undefined;
  const max = ip.v6 ? 128 : 32;
  const bits = len === undefined ? max : /^\d{1,3}$/.test(len) ? Number(len) : Number.NaN;
  if (!(bits >= 0 && bits <= max)) return undefined;
  const shift = BigInt(max - bits);
  return { v6: ip.v6, net: (ip.n >> shift) << shift, bits };
}

function inCidr(ip: string, cidr: string): boolean {
  const a = parseIp(ip.trim());
  const c = parseCidr(cidr);
  if (!a || !c || a.v6 !== c.v6) return false;
  const shift = BigInt((c.v6 ? 128 : 32) - c.bits);
  return (a.n >> shift) << shift === c.net;
}

/** The positive form of an operator applied to one request value against the policy values. */
function positiveMatch(op: ConditionOperator, value: string, policyValues: readonly string[]): boolean {
  const isPattern = op.startsWith('StringLike') || op.startsWith('StringNotLike') || op.startsWith('Arn');
  // `${*}`-style literals only mean something to wildcard operators; elsewhere they are plain text.
  const values = isPattern ? policyValues : policyValues.map((v) => v.replaceAll('\uE000', ''));
  const any = (f: (p: string) => boolean) => values.some(f);
  switch (op) {
    case 'StringEquals':
    case 'StringNotEquals':
      return any((p) => p === value);
    case 'StringEqualsIgnoreCase':
    case 'StringNotEqualsIgnoreCase':
      return any((p) => p.toLowerCase() === value.toLowerCase());
    case 'StringLike':
    case 'StringNotLike':
    case 'ArnEquals':
    case 'ArnLike':
    case 'ArnNotEquals':
    case 'ArnNotLike':
      return any((p) => patternMatch(p, value, false));
    case 'NumericEquals':
    case 'NumericNotEquals':
    case 'NumericLessThan':
    case 'NumericLessThanEquals':
    case 'NumericGreaterThan':
    case 'NumericGreaterThanEquals': {
      const v = parseNumber(value);
      if (v === undefined) return false;
      return any((p) => compare(op.slice('Numeric'.length), v, parseNumber(p)));
    }
    case 'DateEquals':
    case 'DateNotEquals':
    case 'DateLessThan':
    case 'DateLessThanEquals':
    case 'DateGreaterThan':
    case 'DateGreaterThanEquals': {
      const v = parseDate(value);
      if (v === undefined) return false;
      return any((p) => compare(op.slice('Date'.length), v, parseDate(p)));
    }
    case 'Bool':
      return any((p) => p.toLowerCase() === value.toLowerCase());
    case 'BinaryEquals':
      return any((p) => p === value);
    case 'IpAddress':
    case 'NotIpAddress':
      return any((p) => inCidr(value, p));
    case 'Null':
      return false; // handled by the caller
  }
}

function compare(kind: string, v: number, p: number | undefined): boolean {
  if (p === undefined) return false;
  switch (kind) {
    case 'Equals':
    case 'NotEquals':
      return v === p;
    case 'LessThan':
      return v < p;
    case 'LessThanEquals':
      return v <= p;
    case 'GreaterThan':
      return v > p;
    case 'GreaterThanEquals':
      return v >= p;
    default:
      return false;
  }
}

function conditionHolds(c: PolicyCondition, ctx: Context, version: BucketPolicy['version']): boolean {
  const present = lookup(ctx, c.key);
  if (c.operator === 'Null') {
    // "Null": "true" means the key must be absent; "false" that it must be present.
    return c.values.some((v) => (v === 'true') === (present === undefined));
  }
  if (present === undefined) {
    if (c.ifExists) return true;
    if (c.set === 'ForAllValues') return true;
    if (c.set === 'ForAnyValue') return false;
    return NEGATED.has(c.operator);
  }
  const values: string[] = [];
  for (const v of c.values) {
    const s = substitute(v, ctx, version);
    if (s !== undefined) values.push(s);
  }
  const negated = NEGATED.has(c.operator);
  const one = (v: string) =>
    negated ? !positiveMatch(c.operator, v, values) : positiveMatch(c.operator, v, values);
  if (c.set === 'ForAllValues') return present.every(one);
  if (c.set === 'ForAnyValue') return present.some(one);
  // A single-valued key; should the request carry several values, each must pass a negated
  // operator and any one may pass a positive one.
  return negated ? present.every(one) : present.some(one);
}

function actionMatches(patterns: readonly string[], action: string): boolean {
  return patterns.some((p) => p === '*' || wildcardMatch(p, action, true));
}

function resourceMatches(
  patterns: readonly string[],
  resource: string,
  ctx: Context,
  version: BucketPolicy['version'],
): boolean {
  return patterns.some((p) => {
    if (p === '*') return true;
    const s = substitute(p, ctx, version);
    return s !== undefined && patternMatch(s, resource, false);
  });
}

function statementApplies(
  st: PolicyStatement,
  req: PolicyRequest,
  version: BucketPolicy['version'],
): boolean {
  const ctx = req.conditions ?? {};
  if (st.principal && !principalMatches(st.principal, req.principal)) return false;
  if (st.notPrincipal && principalMatches(st.notPrincipal, req.principal)) return false;
  if (st.action && !actionMatches(st.action, req.action)) return false;
  if (st.notAction && actionMatches(st.notAction, req.action)) return false;
  if (st.resource && !resourceMatches(st.resource, req.resource, ctx, version)) return false;
  if (st.notResource && resourceMatches(st.notResource, req.resource, ctx, version)) return false;
  return st.conditions.every((c) => conditionHolds(c, ctx, version));
}

/**
 * What the policy says about one request: 'Deny' when any applicable statement denies (explicit
 * deny wins), else 'Allow' when any applicable statement allows, else 'NotApplicable'.
 */
export function evaluateBucketPolicy(policy: BucketPolicy, request: PolicyRequest): PolicyDecision {
  let allowed = false;
  for (const st of policy.statements) {
    if (!statementApplies(st, request, policy.version)) continue;
    if (st.effect === 'Deny') return 'Deny';
    allowed = true;
  }
  return allowed ? 'Allow' : 'NotApplicable';
}

/**
 * Condition keys that pin a statement to fixed callers or networks; an Allow for everyone that
 * carries one of them is not public (GetBucketPolicyStatus, BlockPublicPolicy).
 */
const RESTRICTING_KEYS = new Set([
  'aws:sourceip',
  'aws:sourcearn',
  'aws:sourcevpc',
  'aws:sourcevpce',
  'aws:sourceaccount',
  'aws:sourceowner',
  'aws:principalaccount',
  'aws:principalarn',
  'aws:principalorgid',
  'aws:userid',
  's3:dataaccesspointarn',
  's3:dataaccesspointaccount',
]);

/**
 * Whether the policy is public in AWS's sense: some Allow statement grants to everyone (`*`, or
 * NotPrincipal) without a condition that pins it to fixed source IPs, VPCs, accounts or ARNs.
 */
export function isPolicyPublic(policy: BucketPolicy): boolean {
  return policy.statements.some((st) => {
    if (st.effect !== 'Allow') return false;
    const everyone =
      st.notPrincipal !== undefined ||
      st.principal === '*' ||
      (st.principal !== undefined && st.principal.AWS?.includes('*') === true);
    if (!everyone) return false;
    const pinned = st.conditions.some(
      (c) =>
        RESTRICTING_KEYS.has(c.key.toLowerCase()) &&
        !NEGATED.has(c.operator) &&
        c.operator !== 'Null' &&
        c.values.every((v) => !v.includes('*') && v !== '0.0.0.0/0' && v !== '::/0'),
    );
    return !pinned;
  });
}
