/** STS actions (API version 2011-06-15), written from the AWS STS API reference. */
import { YunhaiError } from '../../../platform/errors.js';
import { awsDate, el } from '../../../platform/xml/writer.js';
import type { ActionHandler } from './actions.js';

/** GetSessionToken limits for IAM users: 15 minutes to 36 hours, 12 hours by default. */
export const MIN_SESSION_SECONDS = 900;
export const MAX_SESSION_SECONDS = 129_600;
export const DEFAULT_SESSION_SECONDS = 43_200;

/** Who signed the request. Needs no permission, as in AWS. */
export const getCallerIdentity: ActionHandler = async ({ ctx }) => [
  el('Arn', ctx.principal.arn),
  el('UserId', ctx.principal.uniqueId),
  el('Account', ctx.principal.accountId),
];

export const getSessionToken: ActionHandler = async ({ iam, ctx, params }) => {
  const duration = params.int(
    'DurationSeconds',
    MIN_SESSION_SECONDS,
    MAX_SESSION_SECONDS,
    DEFAULT_SESSION_SECONDS,
  );
  if (params.has('SerialNumber') || params.has('TokenCode')) {
    throw new YunhaiError(
      'InvalidParameterValue',
      'Yunhai does not support MFA devices: leave out SerialNumber and TokenCode.',
    );
  }
  const c = await iam.createSessionCredentials(ctx, duration);
  return [
    el(
      'Credentials',
      el('AccessKeyId', c.accessKeyId),
      el('SecretAccessKey', c.secretAccessKey),
      el('SessionToken', c.sessionToken),
      el('Expiration', awsDate(c.expiration)),
    ),
  ];
};
