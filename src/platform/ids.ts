import { randomBytes, randomInt } from 'node:crypto';

const ALPHANUM = 'abcdefghijklmnopqrstuvwxyz0123456789';
const UPPER = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

function pick(alphabet: string, n: number): string {
  const bytes = randomBytes(n);
  let out = '';
  for (let i = 0; i < n; i++) out += alphabet[bytes[i]! % alphabet.length];
  return out;
}

/** Resource ids look like `ten-3k9x0c1q2w8e`: a type prefix, then 12 random lowercase characters. */
export const newId = (prefix: string) => `${prefix}-${pick(ALPHANUM, 12)}`;

export const isResourceId = (prefix: string, id: string) => new RegExp(`^${prefix}-[a-z0-9]{12}$`).test(id);

/** AWS-shaped access key id: 20 characters, `AKIA` + 16 base32 characters (temporary ones use `ASIA`). */
export const newAccessKeyId = (temporary = false) => (temporary ? 'ASIA' : 'AKIA') + pick(UPPER, 16);

/** AWS-shaped unique id for IAM users (`AIDA...`). */
export const newUserUniqueId = () => 'AIDA' + pick(UPPER, 17);

/** 40-character secret access key, base64-ish like AWS. */
export const newSecretAccessKey = () =>
  randomBytes(30).toString('base64').replace(/\+/g, 'a').replace(/\//g, 'b');

/** 12-digit account id, never starting with 0. */
export const newAccountId = () =>
  String(randomInt(1, 10)) + Array.from({ length: 11 }, () => randomInt(0, 10)).join('');

export const newRequestId = () =>
  randomBytes(16)
    .toString('hex')
    .replace(/^(.{8})(.{4})(.{4})(.{4})(.{12})$/, '$1-$2-$3-$4-$5');

/** A random password for generated accounts: 20 characters from an unambiguous alphabet. */
export const newPassword = () => pick('abcdefghjkmnpqrstuvwxyzABCDEFGHJKMNPQRSTUVWXYZ23456789', 20);

/** Opaque bearer token (256 bits). */
export const newToken = (prefix: string) => `${prefix}_${randomBytes(32).toString('base64url')}`;
