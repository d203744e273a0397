import type { Principal } from '../../platform/policy/principal.js';
import { invalidParameter } from './errors.js';

/**
 * Queue policies (the `Policy` attribute, AddPermission/RemovePermission): what lets a principal of
 * another tenant use a queue. Statements match on Effect, Principal (`*`, an account id, an
 * account's root ARN or a user ARN), Action (`SQS:SendMessage`, `sqs:*`, `*`) and Resource; a
 * statement with a Condition is not understood and never allows. An explicit Deny wins.
 */
interface Statement {
  Sid?: string;
  Effect?: string;
  Principal?: unknown;
  Action?: unknown;
  Resource?: unknown;
  Condition?: unknown;
}

interface PolicyDocument {
  Version?: string;
  Id?: string;
  Statement?: Statement[] | Statement;
}

const list = (v: unknown): string[] =>
  Array.isArray(v) ? v.map(String) : v === undefined ? [] : [String(v)];

function parse(policy: string | undefined): PolicyDocument {
  if (!policy) return {};
  try {
    return JSON.parse(policy) as PolicyDocument;
  } catch {
    return {};
  }
}

const statements = (doc: PolicyDocument): Statement[] =>
  Array.isArray(doc.Statement) ? doc.Statement : doc.Statement ? [doc.Statement] : [];

function principalMatches(p: unknown, who: Principal): boolean {
  if (p === '*') return true;
  const aws = typeof p === 'object' && p !== null ? (p as { AWS?: unknown }).AWS : undefined;
  return list(aws).some(
    (a) => a === '*' || a === who.accountId || a === `arn:aws:iam::${who.accountId}:root` || a === who.arn,
  );
}

const glob = (pattern: string, value: string) =>
  new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
    'i',
  ).test(value);

/** Whether the queue policy lets `who` perform `action` (an SQS action name) on the queue `arn`. */
export function policyAllows(
  policy: string | undefined,
  who: Principal,
  action: string,
  arn: string,
): boolean {
  let allowed = false;
  for (const s of statements(parse(policy))) {
    if (!principalMatches(s.Principal, who)) continue;
    if (!list(s.Action).some((a) => a === '*' || glob(a, `sqs:${action}`))) continue;
    const resources = list(s.Resource);
    if (resources.length > 0 && !resources.some((r) => glob(r, arn))) continue;
    if (s.Effect === 'Deny') return false;
    if (s.Effect === 'Allow' && s.Condition === undefined) allowed = true;
  }
  return allowed;
}

const PERMISSION_ACTIONS = new Set([
  '*',
  'SendMessage',
  'ReceiveMessage',
  'DeleteMessage',
  'ChangeMessageVisibility',
  'GetQueueAttributes',
  'GetQueueUrl',
  'ListDeadLetterSourceQueues',
  'PurgeQueue',
  'ListQueueTags',
]);

/** The policy after AddPermission: a statement named `label` allowing the accounts the actions. */
export function addPermission(
  policy: string | undefined,
  arn: string,
  label: string,
  accounts: string[],
  actions: string[],
): string {
  if (!/^[\w-]{1,80}$/.test(label))
    throw invalidParameter(
      `Value ${label} for parameter Label is invalid. Reason: Must be 1 to 80 alphanumerics, - or _.`,
    );
  if (accounts.length === 0) throw invalidParameter('The request must contain the parameter AWSAccountIds.');
  if (actions.length === 0) throw invalidParameter('The request must contain the parameter Actions.');
  for (const a of accounts)
    if (!/^\d{12}$/.test(a)) throw invalidParameter(`Value ${a} for parameter AWSAccountId is invalid.`);
  for (const a of actions)
    if (!PERMISSION_ACTIONS.has(a))
      throw invalidParameter(`Value SQS:${a} for parameter ActionName is invalid.`);
  const doc = parse(policy);
  const existing = statements(doc);
  if (existing.some((s) => s.Sid === label))
    throw invalidParameter(`Value ${label} for parameter Label is invalid. Reason: Already exists.`);
  const statement: Statement = {
    Sid: label,
    Effect: 'Allow',
    Principal: { AWS: accounts.map((a) => `arn:aws:iam::${a}:root`) },
    Action: actions.map((a) => `SQS:${a}`),
    Resource: arn,
  };
  return JSON.stringify({
    Version: '2012-10-17',
    Id: doc.Id ?? `${arn}/SQSDefaultPolicy`,
    Statement: [...existing, statement],
  });
}

/** The policy after RemovePermission, or undefined when no statement is left. */
export function removePermission(policy: string | undefined, label: string): string | undefined {
  const doc = parse(policy);
  const existing = statements(doc);
  if (!existing.some((s) => s.Sid === label))
    throw invalidParameter(`Value ${label} for parameter Label is invalid. Reason: can't find label.`);
  const rest = existing.filter((s) => s.Sid !== label);
  return rest.length === 0 ? undefined : JSON.stringify({ ...doc, Statement: rest });
}
