/**
 * S3 access control lists: canned ACLs, `x-amz-grant-*` headers, AccessControlPolicy XML bodies
 * (in and out), and the permission check. Pure: looking up users by id or e-mail is the caller's,
 * passed in as callbacks to resolveGrantees.
 *
 * Grant order follows what clients compare against (s3-tests checks it): canned ACLs list group
 * grants first and the owner's FULL_CONTROL last. The owner of a bucket or object may always read
 * and write its ACL, whatever the grants say (AWS does the same, so an owner can repair an ACL
 * that revoked everything).
 * https://docs.aws.amazon.com/AmazonS3/latest/userguide/acl-overview.html
 */
import {
  childNamed,
  childrenNamed,
  childText,
  parseXml,
  type XmlElement,
  XmlParseError,
} from '../../platform/xml/parser.js';
import { escapeXml } from '../../platform/xml/writer.js';
import { S3DocumentError } from './bucket-policy.js';

export const S3_XMLNS = 'http://s3.amazonaws.com/doc/2006-03-01/';
const XSI_NS = 'http://www.w3.org/2001/XMLSchema-instance';

export const ALL_USERS = 'http://acs.amazonaws.com/groups/global/AllUsers';
export const AUTHENTICATED_USERS = 'http://acs.amazonaws.com/groups/global/AuthenticatedUsers';
export const LOG_DELIVERY = 'http://acs.amazonaws.com/groups/s3/LogDelivery';
const GROUPS: ReadonlySet<string> = new Set([ALL_USERS, AUTHENTICATED_USERS, LOG_DELIVERY]);

export const ACL_PERMISSIONS = ['FULL_CONTROL', 'WRITE', 'WRITE_ACP', 'READ', 'READ_ACP'] as const;
export type AclPermission = (typeof ACL_PERMISSIONS)[number];

export type Grantee =
  | { type: 'CanonicalUser'; id: string; displayName?: string }
  | { type: 'Group'; uri: string }
  | { type: 'AmazonCustomerByEmail'; emailAddress: string };

export interface Grant {
  grantee: Grantee;
  permission: AclPermission;
}

export interface AclOwner {
  id: string;
  displayName?: string;
}

export interface AccessControlPolicy {
  owner: AclOwner;
  grants: Grant[];
}

/** AWS allows at most 100 grants in one ACL. */
export const MAX_GRANTS = 100;

export const CANNED_ACLS = [
  'private',
  'public-read',
  'public-read-write',
  'aws-exec-read',
  'authenticated-read',
  'bucket-owner-read',
  'bucket-owner-full-control',
  'log-delivery-write',
] as const;
export type CannedAcl = (typeof CANNED_ACLS)[number];

export const isCannedAcl = (v: string): v is CannedAcl => (CANNED_ACLS as readonly string[]).includes(v);

/** The EC2 principal AWS names in `aws-exec-read`. */
const EC2_BUNDLE_READER: AclOwner = {
  id: '6aa5a366c34c1cbe25dc49211496e913e0351eb0e8c37aa3477e40942ec6b97c',
  displayName: 'za-team',
};

const user = (o: AclOwner): Grantee => ({
  type: 'CanonicalUser',
  id: o.id,
  ...(o.displayName !== undefined ? { displayName: o.displayName } : {}),
});
const group = (uri: string): Grantee => ({ type: 'Group', uri });

/**
 * The grants a canned ACL stands for. `owner` owns the bucket or object the ACL is set on;
 * `bucketOwner` (objects only) is the bucket's owner, named by the bucket-owner-* ACLs, which on a
 * bucket, or when the two owners are the same, reduce to the owner's FULL_CONTROL.
 */
export function cannedAclGrants(acl: CannedAcl, opts: { owner: AclOwner; bucketOwner?: AclOwner }): Grant[] {
  const ownerFull: Grant = { grantee: user(opts.owner), permission: 'FULL_CONTROL' };
  const other = opts.bucketOwner && opts.bucketOwner.id !== opts.owner.id ? opts.bucketOwner : undefined;
  switch (acl) {
    case 'private':
      return [ownerFull];
    case 'public-read':
      return [{ grantee: group(ALL_USERS), permission: 'READ' }, ownerFull];
    case 'public-read-write':
      return [
        { grantee: group(ALL_USERS), permission: 'READ' },
        { grantee: group(ALL_USERS), permission: 'WRITE' },
        ownerFull,
      ];
    case 'aws-exec-read':
      return [{ grantee: user(EC2_BUNDLE_READER), permission: 'READ' }, ownerFull];
    case 'authenticated-read':
      return [{ grantee: group(AUTHENTICATED_USERS), permission: 'READ' }, ownerFull];
    case 'bucket-owner-read':
      return other ? [ownerFull, { grantee: user(other), permission: 'READ' }] : [ownerFull];
    case 'bucket-owner-full-control':
      return other ? [ownerFull, { grantee: user(other), permission: 'FULL_CONTROL' }] : [ownerFull];
    case 'log-delivery-write':
      return [
        { grantee: group(LOG_DELIVERY), permission: 'WRITE' },
        { grantee: group(LOG_DELIVERY), permission: 'READ_ACP' },
        ownerFull,
      ];
  }
}

/** The request headers that grant one permission each. */
export const GRANT_HEADERS = {
  'x-amz-grant-read': 'READ',
  'x-amz-grant-write': 'WRITE',
  'x-amz-grant-read-acp': 'READ_ACP',
  'x-amz-grant-write-acp': 'WRITE_ACP',
  'x-amz-grant-full-control': 'FULL_CONTROL',
} as const satisfies Record<string, AclPermission>;

const badGrantHeader = (header: string, value: string) =>
  new S3DocumentError('InvalidArgument', 'Argument format not recognized', {
    ArgumentName: header,
    ArgumentValue: value,
  });

/**
 * Parses one `x-amz-grant-*` header value: comma-separated `id="..."`, `uri="..."` or
 * `emailAddress="..."` (quotes optional). E-mail grantees come back unresolved (resolveGrantees).
 */
export function parseGrantHeader(header: keyof typeof GRANT_HEADERS, value: string): Grant[] {
  const permission = GRANT_HEADERS[header];
  const grants: Grant[] = [];
  // Split on commas outside quotes.
  const parts = value.match(/(?:[^,"]|"[^"]*")+/g) ?? [];
  for (const raw of parts) {
    const part = raw.trim();
    if (part === '') continue;
    const m = /^([A-Za-z]+)\s*=\s*(?:"([^"]*)"|([^"\s]*))$/.exec(part);
    if (!m) throw badGrantHeader(header, value);
    const kind = m[1]!.toLowerCase();
    const v = m[2] ?? m[3] ?? '';
    if (v === '') throw badGrantHeader(header, value);
    if (kind === 'id') grants.push({ grantee: { type: 'CanonicalUser', id: v }, permission });
    else if (kind === 'uri') {
      if (!GROUPS.has(v))
        throw new S3DocumentError('InvalidArgument', 'Invalid group uri', {
          ArgumentName: header,
          ArgumentValue: v,
        });
      grants.push({ grantee: group(v), permission });
    } else if (kind === 'emailaddress')
      grants.push({ grantee: { type: 'AmazonCustomerByEmail', emailAddress: v }, permission });
    else throw badGrantHeader(header, value);
  }
  if (grants.length === 0) throw badGrantHeader(header, value);
  return grants;
}

type Headers = Readonly<Record<string, string | readonly string[] | undefined>>;
const header = (h: Headers, name: string): string | undefined => {
  const v = h[name];
  return Array.isArray(v) ? v.join(',') : (v as string | undefined);
};

/**
 * The ACL a request asks for through `x-amz-acl` or `x-amz-grant-*` headers (lower-case header
 * names, as Node gives them), or undefined when it names none (the caller then keeps the current
 * ACL, or uses `private` on create). Both at once is InvalidRequest, as on AWS.
 */
export function aclFromHeaders(
  headers: Headers,
  opts: { owner: AclOwner; bucketOwner?: AclOwner },
): { canned?: CannedAcl; grants: Grant[] } | undefined {
  const canned = header(headers, 'x-amz-acl');
  const grantNames = (Object.keys(GRANT_HEADERS) as (keyof typeof GRANT_HEADERS)[]).filter(
    (name) => header(headers, name) !== undefined,
  );
  if (canned !== undefined && grantNames.length > 0)
    throw new S3DocumentError(
      'InvalidRequest',
      'Specifying both Canned ACLs and Header Grants is not allowed',
    );
  if (canned !== undefined) {
    const acl = canned.trim();
    if (!isCannedAcl(acl))
      throw new S3DocumentError('InvalidArgument', `Invalid canned ACL: ${canned}`, {
        ArgumentName: 'x-amz-acl',
        ArgumentValue: canned,
      });
    return { canned: acl, grants: cannedAclGrants(acl, opts) };
  }
  if (grantNames.length === 0) return undefined;
  const grants = grantNames.flatMap((name) => parseGrantHeader(name, header(headers, name)!));
  if (grants.length > MAX_GRANTS)
    throw new S3DocumentError('MalformedACLError', `An ACL may hold at most ${MAX_GRANTS} grants`);
  return { grants };
}

const malformedAcl = (why: string) =>
  new S3DocumentError(
    'MalformedACLError',
    `The XML you provided was not well-formed or did not validate against our published schema (${why})`,
  );

/** The `xsi:type` of a Grantee, whatever prefix the document bound the XSI namespace to. */
function granteeType(el: XmlElement): string | undefined {
  for (const [name, value] of Object.entries(el.attrs)) {
    const colon = name.indexOf(':');
    if (colon > 0 && name.slice(colon + 1) === 'type') return value.trim();
  }
  if (childNamed(el, 'ID')) return 'CanonicalUser';
  if (childNamed(el, 'URI')) return 'Group';
  if (childNamed(el, 'EmailAddress')) return 'AmazonCustomerByEmail';
  return undefined;
}

function parseGrantee(el: XmlElement): Grantee {
  const type = granteeType(el);
  const text = (name: string) => {
    const v = childText(el, name)?.trim();
    if (!v) throw malformedAcl(`Grantee of type ${type} needs ${name}`);
    return v;
  };
  switch (type) {
    case 'CanonicalUser': {
      const displayName = childText(el, 'DisplayName');
      return { type, id: text('ID'), ...(displayName !== undefined ? { displayName } : {}) };
    }
    case 'Group': {
      const uri = text('URI');
      if (!GROUPS.has(uri))
        throw new S3DocumentError('InvalidArgument', 'Invalid group uri', {
          ArgumentName: 'Group/URI',
          ArgumentValue: uri,
        });
      return { type, uri };
    }
    case 'AmazonCustomerByEmail':
      return { type, emailAddress: text('EmailAddress') };
    default:
      throw malformedAcl(`unknown Grantee type ${type ?? '(none)'}`);
  }
}

/**
 * Parses a PutBucketAcl/PutObjectAcl body. Owner is optional here (the caller compares it with the
 * resource's owner when present). Malformed XML is MalformedXML; XML that is not an ACL is
 * MalformedACLError; an unknown group is InvalidArgument.
 */
export function parseAccessControlPolicy(body: string | XmlElement): { owner?: AclOwner; grants: Grant[] } {
  let root: XmlElement;
  if (typeof body === 'string') {
    try {
      root = parseXml(body);
    } catch (e) {
      if (e instanceof XmlParseError)
        throw new S3DocumentError(
          'MalformedXML',
          'The XML you provided was not well-formed or did not validate against our published schema',
        );
      throw e;
    }
  } else root = body;
  if (root.name !== 'AccessControlPolicy') throw malformedAcl(`root element ${root.name}`);
  let owner: AclOwner | undefined;
  const ownerEl = childNamed(root, 'Owner');
  if (ownerEl) {
    const id = childText(ownerEl, 'ID')?.trim();
    if (!id) throw malformedAcl('Owner needs ID');
    const displayName = childText(ownerEl, 'DisplayName');
    owner = { id, ...(displayName !== undefined ? { displayName } : {}) };
  }
  const list = childNamed(root, 'AccessControlList');
  if (!list) throw malformedAcl('AccessControlList is missing');
  const grantEls = childrenNamed(list, 'Grant');
  if (grantEls.length > MAX_GRANTS) throw malformedAcl(`more than ${MAX_GRANTS} grants`);
  const grants = grantEls.map((g) => {
    const granteeEl = childNamed(g, 'Grantee');
    if (!granteeEl) throw malformedAcl('Grant needs Grantee');
    const permission = childText(g, 'Permission')?.trim();
    if (!permission || !(ACL_PERMISSIONS as readonly string[]).includes(permission))
      throw malformedAcl(`invalid Permission ${permission ?? '(none)'}`);
    return { grantee: parseGrantee(granteeEl), permission: permission as AclPermission };
  });
  return { ...(owner ? { owner } : {}), grants };
}

/** Callbacks resolveGrantees uses to look users up (sync or async). */
export interface GranteeDirectory {
  /** The display name of the user with this canonical id, or undefined if there is none. */
  displayNameOf(id: string): Promise<string | undefined> | string | undefined;
  /** The user with this e-mail address, or undefined. */
  userByEmail(email: string): Promise<AclOwner | undefined> | AclOwner | undefined;
}

/**
 * Checks every user grantee exists and turns e-mail grantees into canonical users, filling in
 * display names. Unknown ids are InvalidArgument, unknown e-mail addresses
 * UnresolvableGrantByEmailAddress, as on AWS. Duplicate grants are dropped.
 */
export async function resolveGrantees(grants: readonly Grant[], dir: GranteeDirectory): Promise<Grant[]> {
  const out: Grant[] = [];
  const seen = new Set<string>();
  for (const g of grants) {
    let grantee = g.grantee;
    if (grantee.type === 'CanonicalUser') {
      const displayName = await dir.displayNameOf(grantee.id);
      if (displayName === undefined)
        throw new S3DocumentError('InvalidArgument', 'Invalid id', {
          ArgumentName: 'CanonicalUser/ID',
          ArgumentValue: grantee.id,
        });
      grantee = { type: 'CanonicalUser', id: grantee.id, displayName };
    } else if (grantee.type === 'AmazonCustomerByEmail') {
      const found = await dir.userByEmail(grantee.emailAddress);
      if (!found)
        throw new S3DocumentError(
          'UnresolvableGrantByEmailAddress',
          'The e-mail address you provided does not match any account on record.',
        );
      grantee = user(found);
    }
    const key = `${grantee.type}|${grantee.type === 'Group' ? grantee.uri : grantee.type === 'CanonicalUser' ? grantee.id : grantee.emailAddress}|${g.permission}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ grantee, permission: g.permission });
  }
  return out;
}

function granteeXml(g: Grantee): string {
  const open = (type: string) => `<Grantee xmlns:xsi="${XSI_NS}" xsi:type="${type}">`;
  switch (g.type) {
    case 'CanonicalUser':
      return (
        open('CanonicalUser') +
        `<ID>${escapeXml(g.id)}</ID>` +
        (g.displayName !== undefined ? `<DisplayName>${escapeXml(g.displayName)}</DisplayName>` : '') +
        '</Grantee>'
      );
    case 'Group':
      return `${open('Group')}<URI>${escapeXml(g.uri)}</URI></Grantee>`;
    case 'AmazonCustomerByEmail':
      return `${open('AmazonCustomerByEmail')}<EmailAddress>${escapeXml(g.emailAddress)}</EmailAddress></Grantee>`;
  }
}

/**
 * The GetBucketAcl/GetObjectAcl response document. Written by hand rather than with the platform
 * XML writer because Grantee needs the namespaced `xsi:type` attribute; every value is escaped.
 */
export function accessControlPolicyXml(acp: AccessControlPolicy): string {
  const owner =
    `<Owner><ID>${escapeXml(acp.owner.id)}</ID>` +
    (acp.owner.displayName !== undefined
      ? `<DisplayName>${escapeXml(acp.owner.displayName)}</DisplayName>`
      : '') +
    '</Owner>';
  const grants = acp.grants
    .map((g) => `<Grant>${granteeXml(g.grantee)}<Permission>${g.permission}</Permission></Grant>`)
    .join('');
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<AccessControlPolicy xmlns="${S3_XMLNS}">${owner}<AccessControlList>${grants}</AccessControlList></AccessControlPolicy>`
  );
}

/** Who asks, for an ACL check. `email` lets e-mail grants stored unresolved match. */
export interface AclPrincipal {
  anonymous: boolean;
  canonicalId?: string;
  email?: string;
}

function granteeMatches(g: Grantee, who: AclPrincipal): boolean {
  switch (g.type) {
    case 'Group':
      return g.uri === ALL_USERS || (g.uri === AUTHENTICATED_USERS && !who.anonymous);
    case 'CanonicalUser':
      return !who.anonymous && who.canonicalId !== undefined && g.id === who.canonicalId;
    case 'AmazonCustomerByEmail':
      return (
        !who.anonymous && who.email !== undefined && g.emailAddress.toLowerCase() === who.email.toLowerCase()
      );
  }
}

/**
 * Whether the ACL grants `permission` to the caller: a matching grant of that permission or of
 * FULL_CONTROL. The owner may always READ_ACP and WRITE_ACP. LogDelivery grants match nobody here
 * (only the platform's own log delivery would use them).
 */
export function aclAllows(acp: AccessControlPolicy, who: AclPrincipal, permission: AclPermission): boolean {
  if (
    (permission === 'READ_ACP' || permission === 'WRITE_ACP') &&
    !who.anonymous &&
    who.canonicalId !== undefined &&
    who.canonicalId === acp.owner.id
  )
    return true;
  return acp.grants.some(
    (g) => (g.permission === permission || g.permission === 'FULL_CONTROL') && granteeMatches(g.grantee, who),
  );
}

/** Whether any grant goes to AllUsers or AuthenticatedUsers (public in AWS's sense). */
export const isAclPublic = (grants: readonly Grant[]): boolean =>
  grants.some(
    (g) =>
      g.grantee.type === 'Group' && (g.grantee.uri === ALL_USERS || g.grantee.uri === AUTHENTICATED_USERS),
  );
