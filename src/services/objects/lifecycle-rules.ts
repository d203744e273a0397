/**
 * Bucket lifecycle rules: parse and validate a LifecycleConfiguration (PutBucketLifecycle-
 * Configuration), write it back in the shape it came in (GetBucketLifecycleConfiguration), and
 * the pure decisions the lifecycle loop and the object handlers need:
 *   - lifecycleActionFor(config, version, now): expire a current version, delete a noncurrent
 *     one, or remove an expired delete marker;
 *   - abortRuleFor / abortDateFor: when an incomplete multipart upload is to be aborted
 *     (x-amz-abort-date and x-amz-abort-rule-id on CreateMultipartUpload);
 *   - expirationHeader: the x-amz-expiration value for GET, HEAD and PUT responses.
 *
 * Due dates follow AWS: the rule's days are added to the object's creation time (or to the time a
 * version became noncurrent, or an upload was initiated) and the result is rounded up to the next
 * midnight UTC. https://docs.aws.amazon.com/AmazonS3/latest/userguide/intro-lifecycle-rules.html
 *
 * Transitions are validated and stored but never acted on (there is one storage class).
 * Known gaps: an Expiration with Days does not by itself remove expired delete markers (only
 * ExpiredObjectDeleteMarker does), and object-size filters are ignored for delete markers.
 */
import {
  childNamed,
  childrenNamed,
  parseXml,
  type XmlElement,
  XmlParseError,
} from '../../platform/xml/parser.js';
import { awsDate, el, elAttrs, optional, type Xml, xmlDocument } from '../../platform/xml/writer.js';
import { S3DocumentError } from './bucket-policy.js';

export interface LifecycleTag {
  key: string;
  value: string;
}

/** Which objects a rule applies to, and how the filter was written (kept for the round trip). */
export interface LifecycleFilter {
  /**
   * `legacy-prefix`: `<Prefix>` directly under `<Rule>` (the 2006 API);
   * `filter`: `<Filter>` with at most one predicate (or none: every object);
   * `and`: `<Filter><And>...</And></Filter>`.
   */
  form: 'legacy-prefix' | 'filter' | 'and';
  prefix?: string;
  tags: LifecycleTag[];
  objectSizeGreaterThan?: number;
  objectSizeLessThan?: number;
}

export interface LifecycleExpiration {
  days?: number;
  /** ISO 8601, midnight UTC. */
  date?: string;
  expiredObjectDeleteMarker?: boolean;
}

export interface LifecycleTransition {
  days?: number;
  date?: string;
  storageClass: string;
}

export interface LifecycleRule {
  id: string;
  status: 'Enabled' | 'Disabled';
  filter: LifecycleFilter;
  expiration?: LifecycleExpiration;
  noncurrentVersionExpiration?: { noncurrentDays: number; newerNoncurrentVersions?: number };
  abortIncompleteMultipartUpload?: { daysAfterInitiation: number };
  transitions: LifecycleTransition[];
  noncurrentVersionTransitions: {
    noncurrentDays: number;
    newerNoncurrentVersions?: number;
    storageClass: string;
  }[];
}

export interface LifecycleConfiguration {
  rules: LifecycleRule[];
}

export const MAX_LIFECYCLE_RULES = 1000;
export const TRANSITION_STORAGE_CLASSES = [
  'STANDARD_IA',
  'ONEZONE_IA',
  'INTELLIGENT_TIERING',
  'GLACIER',
  'GLACIER_IR',
  'DEEP_ARCHIVE',
] as const;
/** Classes AWS will not transition into before an object is 30 days old. */
const THIRTY_DAY_CLASSES = new Set(['STANDARD_IA', 'ONEZONE_IA']);

const DAY_MS = 86_400_000;

// ---- parsing -------------------------------------------------------------------------------

const malformedXml = (why?: string) =>
  new S3DocumentError(
    'MalformedXML',
    'The XML you provided was not well-formed or did not validate against our published schema' +
      (why ? ` (${why})` : ''),
  );
const invalidArgument = (message: string) => new S3DocumentError('InvalidArgument', message);
const invalidRequest = (message: string) => new S3DocumentError('InvalidRequest', message);

/** Elements that may repeat; every other child may appear at most once. */
const REPEATABLE = new Set(['Rule', 'Tag', 'Transition', 'NoncurrentVersionTransition']);

function only(parent: XmlElement, allowed: readonly string[], where: string): void {
  const seen = new Set<string>();
  for (const c of parent.children) {
    if (!allowed.includes(c.name)) throw malformedXml(`unexpected ${c.name} in ${where}`);
    if (seen.has(c.name) && !REPEATABLE.has(c.name))
      throw malformedXml(`more than one ${c.name} in ${where}`);
    seen.add(c.name);
  }
}

const textOf = (parent: XmlElement, name: string): string | undefined =>
  childNamed(parent, name)?.text.trim();

function integer(parent: XmlElement, name: string): number | undefined {
  const v = textOf(parent, name);
  if (v === undefined) return undefined;
  if (!/^-?\d{1,15}$/.test(v)) throw malformedXml(`${name} must be an integer`);
  return Number(v);
}

/** A lifecycle Date: ISO 8601, and it must be midnight UTC. */
function midnightDate(v: string, action: string): string {
  if (!/^\d{4}-\d{2}-\d{2}/.test(v)) throw malformedXml(`invalid Date ${v}`);
  const t = Date.parse(/^\d{4}-\d{2}-\d{2}$/.test(v) ? `${v}T00:00:00Z` : v);
  if (Number.isNaN(t)) throw malformedXml(`invalid Date ${v}`);
  if (t % DAY_MS !== 0) throw invalidArgument(`'Date' must be at midnight GMT (${action})`);
  return new Date(t).toISOString();
}

function parseTag(t: XmlElement): LifecycleTag {
  only(t, ['Key', 'Value'], 'Tag');
  const key = childNamed(t, 'Key')?.text;
  const value = childNamed(t, 'Value')?.text ?? '';
  if (key === undefined) throw malformedXml('Tag needs Key');
  if (key.length === 0 || key.length > 128) throw invalidArgument('The TagKey you have provided is invalid');
  if (value.length > 256) throw invalidArgument('The TagValue you have provided is invalid');
  return { key, value };
}

function sizes(parent: XmlElement, f: LifecycleFilter): void {
  const gt = integer(parent, 'ObjectSizeGreaterThan');
  const lt = integer(parent, 'ObjectSizeLessThan');
  if (gt !== undefined) {
    if (gt < 0) throw invalidArgument("'ObjectSizeGreaterThan' must be a non-negative integer");
    f.objectSizeGreaterThan = gt;
  }
  if (lt !== undefined) {
    if (lt <= 0) throw invalidArgument("'ObjectSizeLessThan' must be a positive integer");
    f.objectSizeLessThan = lt;
  }
  if (gt !== undefined && lt !== undefined && gt >= lt)
    throw invalidArgument("'ObjectSizeGreaterThan' must be less than 'ObjectSizeLessThan'");
}

const PREDICATES = ['Prefix', 'Tag', 'ObjectSizeGreaterThan', 'ObjectSizeLessThan'] as const;

function parseFilter(f: XmlElement): LifecycleFilter {
  only(f, [...PREDICATES, 'And'], 'Filter');
  if (f.children.length > 1) throw malformedXml('a Filter holds one predicate; use And to combine them');
  const and = childNamed(f, 'And');
  if (and) {
    only(and, PREDICATES, 'And');
    if (and.children.length === 0) throw malformedXml('And needs at least one predicate');
    const out: LifecycleFilter = { form: 'and', tags: childrenNamed(and, 'Tag').map(parseTag) };
    const prefix = childNamed(and, 'Prefix')?.text;
    if (prefix !== undefined) out.prefix = prefix;
    sizes(and, out);
    const keys = out.tags.map((t) => t.key);
    if (new Set(keys).size !== keys.length) throw invalidRequest('Duplicate Tag Keys are not allowed.');
    return out;
  }
  const out: LifecycleFilter = { form: 'filter', tags: childrenNamed(f, 'Tag').map(parseTag) };
  const prefix = childNamed(f, 'Prefix')?.text;
  if (prefix !== undefined) out.prefix = prefix;
  sizes(f, out);
  return out;
}

function parseExpiration(e: XmlElement): LifecycleExpiration {
  only(e, ['Days', 'Date', 'ExpiredObjectDeleteMarker'], 'Expiration');
  const days = integer(e, 'Days');
  const date = textOf(e, 'Date');
  const marker = textOf(e, 'ExpiredObjectDeleteMarker');
  const count = [days, date, marker].filter((v) => v !== undefined).length;
  if (count === 0) throw malformedXml('Expiration needs Days, Date or ExpiredObjectDeleteMarker');
  if (count > 1) throw malformedXml('Expiration takes only one of Days, Date and ExpiredObjectDeleteMarker');
  if (days !== undefined) {
    if (days <= 0) throw invalidArgument("'Days' for Expiration action must be a positive integer");
    return { days };
  }
  if (date !== undefined) return { date: midnightDate(date, 'Expiration') };
  if (marker !== 'true' && marker !== 'false')
    throw malformedXml('ExpiredObjectDeleteMarker must be true or false');
  return { expiredObjectDeleteMarker: marker === 'true' };
}

function storageClass(parent: XmlElement, allowed: ReadonlySet<string>): string {
  const sc = textOf(parent, 'StorageClass');
  if (sc === undefined) throw malformedXml('a transition needs StorageClass');
  if (!allowed.has(sc)) throw malformedXml(`unknown StorageClass ${sc}`);
  return sc;
}

function parseTransition(t: XmlElement, allowed: ReadonlySet<string>): LifecycleTransition {
  only(t, ['Days', 'Date', 'StorageClass'], 'Transition');
  const days = integer(t, 'Days');
  const date = textOf(t, 'Date');
  if ((days === undefined) === (date === undefined))
    throw malformedXml('Transition takes one of Days and Date');
  const sc = storageClass(t, allowed);
  if (days !== undefined) {
    if (days < 0) throw invalidArgument("'Days' for Transition action must be a non-negative integer");
    if (THIRTY_DAY_CLASSES.has(sc) && days < 30)
      throw invalidArgument(
        `'Days' in Transition action must be greater than or equal to 30 for storageClass '${sc}'`,
      );
    return { days, storageClass: sc };
  }
  return { date: midnightDate(date!, 'Transition'), storageClass: sc };
}

function newerNoncurrent(parent: XmlElement): number | undefined {
  const n = integer(parent, 'NewerNoncurrentVersions');
  if (n !== undefined && (n < 1 || n > 100))
    throw invalidArgument("'NewerNoncurrentVersions' must be an integer between 1 and 100");
  return n;
}

const RULE_CHILDREN = [
  'ID',
  'Prefix',
  'Filter',
  'Status',
  'Expiration',
  'NoncurrentVersionExpiration',
  'AbortIncompleteMultipartUpload',
  'Transition',
  'NoncurrentVersionTransition',
] as const;

function parseRule(r: XmlElement, newId: () => string, classes: ReadonlySet<string>): LifecycleRule {
  only(r, RULE_CHILDREN, 'Rule');
  const rawId = childNamed(r, 'ID')?.text;
  if (rawId !== undefined && rawId.length > 255)
    throw invalidArgument('ID length should not exceed allowed limit of 255');
  const status = textOf(r, 'Status');
  if (status !== 'Enabled' && status !== 'Disabled') throw malformedXml('Status must be Enabled or Disabled');

  const legacy = childNamed(r, 'Prefix');
  const filterEl = childNamed(r, 'Filter');
  if (legacy && filterEl) throw malformedXml('a Rule takes either Prefix or Filter, not both');
  if (!legacy && !filterEl) throw malformedXml('a Rule needs a Filter or a Prefix');
  const filter: LifecycleFilter = legacy
    ? { form: 'legacy-prefix', prefix: legacy.text, tags: [] }
    : parseFilter(filterEl!);

  const rule: LifecycleRule = {
    id: rawId !== undefined && rawId !== '' ? rawId : newId(),
    status,
    filter,
    transitions: childrenNamed(r, 'Transition').map((t) => parseTransition(t, classes)),
    noncurrentVersionTransitions: childrenNamed(r, 'NoncurrentVersionTransition').map((t) => {
      only(t, ['NoncurrentDays', 'NewerNoncurrentVersions', 'StorageClass'], 'NoncurrentVersionTransition');
      const days = integer(t, 'NoncurrentDays');
      if (days === undefined) throw malformedXml('NoncurrentVersionTransition needs NoncurrentDays');
      if (days < 0)
        throw invalidArgument("'NoncurrentDays' for NoncurrentVersionTransition must be non-negative");
      const n = newerNoncurrent(t);
      return {
        noncurrentDays: days,
        ...(n !== undefined ? { newerNoncurrentVersions: n } : {}),
        storageClass: storageClass(t, classes),
      };
    }),
  };
  const exp = childNamed(r, 'Expiration');
  if (exp) rule.expiration = parseExpiration(exp);
  const nve = childNamed(r, 'NoncurrentVersionExpiration');
  if (nve) {
    only(nve, ['NoncurrentDays', 'NewerNoncurrentVersions'], 'NoncurrentVersionExpiration');
    const days = integer(nve, 'NoncurrentDays');
    if (days === undefined) throw malformedXml('NoncurrentVersionExpiration needs NoncurrentDays');
    if (days <= 0)
      throw invalidArgument(
        "'NoncurrentDays' for NoncurrentVersionExpiration action must be a positive integer",
      );
    const n = newerNoncurrent(nve);
    rule.noncurrentVersionExpiration = {
      noncurrentDays: days,
      ...(n !== undefined ? { newerNoncurrentVersions: n } : {}),
    };
  }
  const abort = childNamed(r, 'AbortIncompleteMultipartUpload');
  if (abort) {
    only(abort, ['DaysAfterInitiation'], 'AbortIncompleteMultipartUpload');
    const days = integer(abort, 'DaysAfterInitiation');
    if (days === undefined) throw malformedXml('AbortIncompleteMultipartUpload needs DaysAfterInitiation');
    if (days <= 0)
      throw invalidArgument(
        "'DaysAfterInitiation' for AbortIncompleteMultipartUpload action must be a positive integer",
      );
    if (filter.tags.length > 0)
      throw invalidRequest('AbortIncompleteMultipartUpload cannot be specified with Tags.');
    rule.abortIncompleteMultipartUpload = { daysAfterInitiation: days };
  }
  if (rule.expiration?.expiredObjectDeleteMarker !== undefined && filter.tags.length > 0)
    throw invalidRequest('ExpiredObjectDeleteMarker cannot be specified with object tags.');

  const actions =
    (rule.expiration ? 1 : 0) +
    (rule.noncurrentVersionExpiration ? 1 : 0) +
    (rule.abortIncompleteMultipartUpload ? 1 : 0) +
    rule.transitions.length +
    rule.noncurrentVersionTransitions.length;
  if (actions === 0) throw invalidRequest('At least one action needs to be specified in a rule');
  return rule;
}

/** A random rule id like AWS assigns to rules sent without one. */
function randomRuleId(): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
  const bytes = crypto.getRandomValues(new Uint8Array(48));
  return Array.from(bytes, (b) => alphabet[b % alphabet.length]).join('');
}

/**
 * Parses a PutBucketLifecycleConfiguration body (raw XML or an element from the platform parser).
 * Rules without an ID get a random one. `storageClasses` adds transition targets beyond AWS's.
 * Throws S3DocumentError: MalformedXML for bad XML, shape, Status or storage class;
 * InvalidArgument for out-of-range numbers, non-midnight dates, over-long or duplicate IDs;
 * InvalidRequest for rules without actions and tag filters where AWS refuses them.
 */
export function parseLifecycleConfiguration(
  body: string | XmlElement,
  opts: { newId?: () => string; storageClasses?: readonly string[] } = {},
): LifecycleConfiguration {
  let root: XmlElement;
  if (typeof body === 'string') {
    try {
      root = parseXml(body);
    } catch (e) {
      if (e instanceof XmlParseError) throw malformedXml();
      throw e;
    }
  } else root = body;
  if (root.name !== 'LifecycleConfiguration') throw malformedXml(`root element ${root.name}`);
  only(root, ['Rule'], 'LifecycleConfiguration');
  const ruleEls = childrenNamed(root, 'Rule');
  if (ruleEls.length === 0) throw malformedXml('no Rule');
  if (ruleEls.length > MAX_LIFECYCLE_RULES)
    throw malformedXml(`a lifecycle configuration may hold at most ${MAX_LIFECYCLE_RULES} rules`);
  const classes = new Set<string>([...TRANSITION_STORAGE_CLASSES, ...(opts.storageClasses ?? [])]);
  const rules = ruleEls.map((r) => parseRule(r, opts.newId ?? randomRuleId, classes));
  const ids = new Set<string>();
  for (const r of rules) {
    if (ids.has(r.id)) throw invalidArgument('Rule ID must be unique. Found same ID for more than one rule');
    ids.add(r.id);
  }
  return { rules };
}

// ---- writing -------------------------------------------------------------------------------

const tagXml = (t: LifecycleTag) => el('Tag', el('Key', t.key), el('Value', t.value));

function filterXml(f: LifecycleFilter): Xml {
  if (f.form === 'legacy-prefix') return el('Prefix', f.prefix ?? '');
  const predicates = [
    optional('Prefix', f.prefix),
    f.tags.map(tagXml),
    optional('ObjectSizeGreaterThan', f.objectSizeGreaterThan),
    optional('ObjectSizeLessThan', f.objectSizeLessThan),
  ];
  return f.form === 'and' ? el('Filter', el('And', predicates)) : el('Filter', predicates);
}

/** The GetBucketLifecycleConfiguration response document. */
export function lifecycleConfigurationXml(config: LifecycleConfiguration): string {
  const dateXml = (d: string | undefined) => (d === undefined ? undefined : el('Date', awsDate(d)));
  return xmlDocument(
    elAttrs(
      'LifecycleConfiguration',
      { xmlns: 'http://s3.amazonaws.com/doc/2006-03-01/' },
      config.rules.map((r) =>
        el(
          'Rule',
          el('ID', r.id),
          filterXml(r.filter),
          el('Status', r.status),
          r.transitions.map((t) =>
            el('Transition', optional('Days', t.days), dateXml(t.date), el('StorageClass', t.storageClass)),
          ),
          r.expiration
            ? el(
                'Expiration',
                optional('Days', r.expiration.days),
                dateXml(r.expiration.date),
                optional('ExpiredObjectDeleteMarker', r.expiration.expiredObjectDeleteMarker),
              )
            : undefined,
          r.noncurrentVersionTransitions.map((t) =>
            el(
              'NoncurrentVersionTransition',
              el('NoncurrentDays', t.noncurrentDays),
              optional('NewerNoncurrentVersions', t.newerNoncurrentVersions),
              el('StorageClass', t.storageClass),
            ),
          ),
          r.noncurrentVersionExpiration
            ? el(
                'NoncurrentVersionExpiration',
                el('NoncurrentDays', r.noncurrentVersionExpiration.noncurrentDays),
                optional('NewerNoncurrentVersions', r.noncurrentVersionExpiration.newerNoncurrentVersions),
              )
            : undefined,
          r.abortIncompleteMultipartUpload
            ? el(
                'AbortIncompleteMultipartUpload',
                el('DaysAfterInitiation', r.abortIncompleteMultipartUpload.daysAfterInitiation),
              )
            : undefined,
        ),
      ),
    ),
  );
}

// ---- decisions -----------------------------------------------------------------------------

type Instant = Date | number;
const ms = (t: Instant) => (typeof t === 'number' ? t : t.getTime());

/** `from` plus `days`, rounded up to the next midnight UTC (AWS's lifecycle arithmetic). */
export function lifecycleDueDate(from: Instant, days: number): Date {
  const t = ms(from) + days * DAY_MS;
  const midnight = Math.floor(t / DAY_MS) * DAY_MS;
  return new Date(t === midnight ? t : midnight + DAY_MS);
}

/** What lifecycle matching looks at on an object. Tags as a record or a list. */
export interface LifecycleObject {
  key: string;
  size: number;
  tags?: Readonly<Record<string, string>> | readonly LifecycleTag[];
}

function tagMap(tags: LifecycleObject['tags']): ReadonlyMap<string, string> {
  if (!tags) return new Map();
  if (Array.isArray(tags)) return new Map((tags as readonly LifecycleTag[]).map((t) => [t.key, t.value]));
  return new Map(Object.entries(tags as Record<string, string>));
}

/** Whether a rule's filter selects the object (prefix, every tag, strict size bounds). */
export function filterMatches(
  f: LifecycleFilter,
  obj: LifecycleObject,
  opts: { ignoreSize?: boolean } = {},
): boolean {
  if (f.prefix !== undefined && !obj.key.startsWith(f.prefix)) return false;
  if (f.tags.length > 0) {
    const tags = tagMap(obj.tags);
    if (!f.tags.every((t) => tags.get(t.key) === t.value)) return false;
  }
  if (!opts.ignoreSize) {
    if (f.objectSizeGreaterThan !== undefined && !(obj.size > f.objectSizeGreaterThan)) return false;
    if (f.objectSizeLessThan !== undefined && !(obj.size < f.objectSizeLessThan)) return false;
  }
  return true;
}

const enabled = (config: LifecycleConfiguration) => config.rules.filter((r) => r.status === 'Enabled');

/** The earliest Expiration (Days or Date) that applies to a current object version, if any. */
export function expirationFor(
  config: LifecycleConfiguration,
  obj: LifecycleObject & { lastModified: Instant },
): { date: Date; ruleId: string } | undefined {
  let best: { date: Date; ruleId: string } | undefined;
  for (const r of enabled(config)) {
    const e = r.expiration;
    if (!e || (e.days === undefined && e.date === undefined) || !filterMatches(r.filter, obj)) continue;
    const date = e.days !== undefined ? lifecycleDueDate(obj.lastModified, e.days) : new Date(e.date!);
    if (!best || date.getTime() < best.date.getTime()) best = { date, ruleId: r.id };
  }
  return best;
}

/**
 * The `x-amz-expiration` header for a current object version, e.g.
 * `expiry-date="Fri, 23 Dec 2012 00:00:00 GMT", rule-id="picture-deletion-rule"`, or undefined
 * when no enabled rule expires it.
 */
export function expirationHeader(
  config: LifecycleConfiguration | undefined,
  obj: LifecycleObject & { lastModified: Instant },
): string | undefined {
  if (!config) return undefined;
  const e = expirationFor(config, obj);
  if (!e) return undefined;
  return `expiry-date="${e.date.toUTCString()}", rule-id="${e.ruleId.replace(/["\\]/g, '\\$&')}"`;
}

/** One object version as the lifecycle loop sees it. */
export interface LifecycleVersion extends LifecycleObject {
  lastModified: Instant;
  isLatest: boolean;
  isDeleteMarker: boolean;
  /** When this version stopped being current (its successor's creation); noncurrent versions only. */
  noncurrentSince?: Instant;
  /** How many noncurrent versions of the same key are newer than this one (0 = the newest). */
  newerNoncurrentVersions?: number;
  /** For a current delete marker: whether any other version of the key remains. */
  hasOtherVersions?: boolean;
}

export type LifecycleAction =
  /** Expire the current version: delete it (unversioned bucket) or add a delete marker (versioned). */
  | { type: 'ExpireCurrent'; ruleId: string; due: Date }
  /** Permanently delete this noncurrent version (or noncurrent delete marker). */
  | { type: 'DeleteNoncurrent'; ruleId: string; due: Date }
  /** Remove this current delete marker: no other versions of its key remain. */
  | { type: 'RemoveExpiredDeleteMarker'; ruleId: string };

/** What the lifecycle loop should do with one version at `now`, or undefined for nothing. */
export function lifecycleActionFor(
  config: LifecycleConfiguration,
  v: LifecycleVersion,
  now: Instant,
): LifecycleAction | undefined {
  const t = ms(now);
  if (v.isLatest && v.isDeleteMarker) {
    if (v.hasOtherVersions !== false) return undefined;
    const rule = enabled(config).find(
      (r) =>
        r.expiration?.expiredObjectDeleteMarker === true && filterMatches(r.filter, v, { ignoreSize: true }),
    );
    return rule ? { type: 'RemoveExpiredDeleteMarker', ruleId: rule.id } : undefined;
  }
  if (v.isLatest) {
    const e = expirationFor(config, v);
    return e && e.date.getTime() <= t ? { type: 'ExpireCurrent', ruleId: e.ruleId, due: e.date } : undefined;
  }
  if (v.noncurrentSince === undefined) return undefined;
  let best: { ruleId: string; due: Date } | undefined;
  for (const r of enabled(config)) {
    const n = r.noncurrentVersionExpiration;
    if (!n || !filterMatches(r.filter, v, { ignoreSize: v.isDeleteMarker })) continue;
    // NewerNoncurrentVersions keeps that many newer noncurrent versions regardless of age.
    if (
      n.newerNoncurrentVersions !== undefined &&
      (v.newerNoncurrentVersions ?? 0) < n.newerNoncurrentVersions
    )
      continue;
    const due = lifecycleDueDate(v.noncurrentSince, n.noncurrentDays);
    if (due.getTime() <= t && (!best || due.getTime() < best.due.getTime())) best = { ruleId: r.id, due };
  }
  return best ? { type: 'DeleteNoncurrent', ...best } : undefined;
}

/**
 * When an upload of `key` initiated at `initiated` is to be aborted, and by which rule: the
 * earliest AbortIncompleteMultipartUpload among enabled rules whose prefix matches (the
 * x-amz-abort-date and x-amz-abort-rule-id response headers of CreateMultipartUpload).
 */
export function abortDateFor(
  config: LifecycleConfiguration | undefined,
  upload: { key: string; initiated: Instant },
): { date: Date; ruleId: string } | undefined {
  if (!config) return undefined;
  let best: { date: Date; ruleId: string } | undefined;
  for (const r of enabled(config)) {
    const a = r.abortIncompleteMultipartUpload;
    if (!a || !filterMatches(r.filter, { key: upload.key, size: 0 }, { ignoreSize: true })) continue;
    const date = lifecycleDueDate(upload.initiated, a.daysAfterInitiation);
    if (!best || date.getTime() < best.date.getTime()) best = { date, ruleId: r.id };
  }
  return best;
}

/** The rule that makes an incomplete upload due for abort at `now`, or undefined. */
export function abortRuleFor(
  config: LifecycleConfiguration,
  upload: { key: string; initiated: Instant },
  now: Instant,
): string | undefined {
  const a = abortDateFor(config, upload);
  return a && a.date.getTime() <= ms(now) ? a.ruleId : undefined;
}
