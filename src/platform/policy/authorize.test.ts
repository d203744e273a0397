import { describe, expect, it } from 'vitest';
import type { Role } from '../db/schema.js';
import { type Action, authorize } from './authorize.js';
import type { Principal } from './principal.js';

const who = (
  role: Role,
  tenantId = 'ten-a',
  userId = 'usr-1',
  tenantStatus: 'active' | 'suspended' = 'active',
): Principal => ({
  userId,
  userName: 'u',
  uniqueId: 'AIDA',
  tenantId,
  tenantName: 't',
  tenantStatus,
  accountId: '111111111111',
  role,
  arn: 'arn:aws:iam::111111111111:user/u',
  via: 'session',
});

describe('authorize', () => {
  const table: Array<[Role, Action, { tenantId: string | null; ownerUserId?: string }, boolean]> = [
    ['platform-admin', 'iam:CreateTenant', { tenantId: null }, true],
    ['platform-admin', 'iam:DeleteUser', { tenantId: 'ten-b' }, true],
    ['owner', 'iam:CreateTenant', { tenantId: null }, false],
    ['owner', 'iam:CreateUser', { tenantId: 'ten-a' }, true],
    ['owner', 'iam:CreateUser', { tenantId: 'ten-b' }, false],
    ['owner', 'iam:GetUser', { tenantId: 'ten-b' }, false],
    ['member', 'iam:CreateUser', { tenantId: 'ten-a' }, false],
    ['member', 'iam:ListUsers', { tenantId: 'ten-a' }, true],
    ['member', 'iam:CreateAccessKey', { tenantId: 'ten-a', ownerUserId: 'usr-1' }, true],
    ['member', 'iam:CreateAccessKey', { tenantId: 'ten-a', ownerUserId: 'usr-2' }, false],
    ['readonly', 'iam:CreateAccessKey', { tenantId: 'ten-a', ownerUserId: 'usr-1' }, false],
    ['readonly', 'iam:ListAccessKeys', { tenantId: 'ten-a', ownerUserId: 'usr-1' }, true],
    ['readonly', 'iam:ChangePassword', { tenantId: 'ten-a', ownerUserId: 'usr-1' }, true],
    ['readonly', 'iam:ChangePassword', { tenantId: 'ten-a', ownerUserId: 'usr-2' }, false],
    ['readonly', 'iam:GetQuotas', { tenantId: 'ten-a' }, true],
    ['member', 'audit:ListEvents', { tenantId: 'ten-a' }, false],
    ['owner', 'audit:ListEvents', { tenantId: 'ten-a' }, true],
    ['owner', 'audit:VerifyChain', { tenantId: null }, false],
  ];
  it.each(table)('%s doing %s on %j is allowed=%s', (role, action, resource, expected) => {
    expect(authorize(who(role), action, resource).allowed).toBe(expected);
  });

  it('never lets a tenant user reach another tenant, whatever the role', () => {
    for (const role of ['owner', 'member', 'readonly'] as Role[]) {
      for (const action of [
        'iam:GetUser',
        'iam:ListUsers',
        'iam:GetQuotas',
        'usage:ListRecords',
      ] as Action[]) {
        expect(authorize(who(role, 'ten-a'), action, { tenantId: 'ten-b' }).allowed).toBe(false);
      }
    }
  });

  it('lets a suspended tenant read but not change anything', () => {
    const p = who('owner', 'ten-a', 'usr-1', 'suspended');
    expect(authorize(p, 'iam:ListUsers', { tenantId: 'ten-a' }).allowed).toBe(true);
    const d = authorize(p, 'iam:CreateUser', { tenantId: 'ten-a' });
    expect(d).toEqual({ allowed: false, reason: 'the tenant is suspended' });
  });
});
