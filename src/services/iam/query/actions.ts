import type { RequestContext } from '../../../platform/policy/principal.js';
import type { Xml } from '../../../platform/xml/writer.js';
import type { IamService } from '../service.js';
import type { QueryService } from './errors.js';
import * as iamActions from './iam-actions.js';
import type { Params } from './params.js';
import * as stsActions from './sts-actions.js';

export interface ActionCall {
  iam: IamService;
  ctx: RequestContext;
  params: Params;
}

/**
 * Runs one action. Returns the members of `<ActionResult>`, or undefined for actions AWS answers
 * without a result element (DeleteUser, UpdateAccessKey, ...).
 */
export type ActionHandler = (call: ActionCall) => Promise<Xml[] | undefined>;

export interface ActionDef {
  service: QueryService;
  handler: ActionHandler;
}

export type ActionName =
  | 'CreateUser'
  | 'GetUser'
  | 'ListUsers'
  | 'UpdateUser'
  | 'DeleteUser'
  | 'CreateAccessKey'
  | 'ListAccessKeys'
  | 'UpdateAccessKey'
  | 'DeleteAccessKey'
  | 'GetAccessKeyLastUsed'
  | 'AttachUserPolicy'
  | 'DetachUserPolicy'
  | 'ListAttachedUserPolicies'
  | 'GetCallerIdentity'
  | 'GetSessionToken';

const iam = (handler: ActionHandler): ActionDef => ({ service: 'iam', handler });
const sts = (handler: ActionHandler): ActionDef => ({ service: 'sts', handler });

/** Every action the Query listeners answer, by AWS action name. */
export const ACTIONS: Record<ActionName, ActionDef> = {
  CreateUser: iam(iamActions.createUser),
  GetUser: iam(iamActions.getUser),
  ListUsers: iam(iamActions.listUsers),
  UpdateUser: iam(iamActions.updateUser),
  DeleteUser: iam(iamActions.deleteUser),
  CreateAccessKey: iam(iamActions.createAccessKey),
  ListAccessKeys: iam(iamActions.listAccessKeys),
  UpdateAccessKey: iam(iamActions.updateAccessKey),
  DeleteAccessKey: iam(iamActions.deleteAccessKey),
  GetAccessKeyLastUsed: iam(iamActions.getAccessKeyLastUsed),
  AttachUserPolicy: iam(iamActions.attachUserPolicy),
  DetachUserPolicy: iam(iamActions.detachUserPolicy),
  ListAttachedUserPolicies: iam(iamActions.listAttachedUserPolicies),
  GetCallerIdentity: sts(stsActions.getCallerIdentity),
  GetSessionToken: sts(stsActions.getSessionToken),
};

/** The action a listener serves under that name, if any (an STS action is unknown to IAM and vice versa). */
export function findAction(name: string, service: QueryService): ActionDef | undefined {
  if (!Object.hasOwn(ACTIONS, name)) return undefined;
  const def = ACTIONS[name as ActionName];
  return def.service === service ? def : undefined;
}
