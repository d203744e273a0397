import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signRequest } from '../../platform/auth/sigv4.js';
import { startTestControlPlane, type TestControlPlane } from '../../test-support/control-plane.js';

/**
 * The REST API end to end over HTTP, run once per SQL dialect (rest-api.sqlite.test.ts,
 * rest-api.postgres.test.ts).
 */
export function runRestApiSuite(dialect: 'sqlite' | 'postgres') {
  describe(`REST API on ${dialect}`, () => {
    let cp: TestControlPlane;
    let api: string;
    let adminToken: string;

    const call = async (
      method: string,
      path: string,
      opts: { token?: string; body?: unknown; raw?: string | Buffer; headers?: Record<string, string> } = {},
    ) => {
      const headers: Record<string, string> = { ...opts.headers };
      if (opts.token) headers.authorization = `Bearer ${opts.token}`;
      let body: string | Buffer | undefined = opts.raw;
      if (opts.body !== undefined) {
        body = JSON.stringify(opts.body);
        headers['content-type'] ??= 'application/json';
      }
      const res = await fetch(api + path, { method, headers, body });
      const text = await res.text();
      const json = text && res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text;
      return { status: res.status, json, headers: res.headers };
    };
    const login = async (username: string, password: string) => {
      const r = await call('POST', '/api/v1/auth/login', { body: { username, password } });
      expect(r.status).toBe(200);
      return r.json.token as string;
    };
    const auditCount = async () =>
      Number(
        (
          await cp.database.db
            .selectFrom('audit_events')
            .select((eb) => eb.fn.countAll().as('n'))
            .executeTakeFirstOrThrow()
        ).n,
      );
    const userCount = async () =>
      Number(
        (
          await cp.database.db
            .selectFrom('users')
            .select((eb) => eb.fn.countAll().as('n'))
            .executeTakeFirstOrThrow()
        ).n,
      );

    beforeAll(async () => {
      cp = await startTestControlPlane({ dialect });
      api = cp.endpoints.api;
      adminToken = await login('admin', 'root-password-1');
    });
    afterAll(async () => cp?.stop());

    it('serves health, readiness, metrics and an OpenAPI 3.1 document', async () => {
      expect((await call('GET', '/healthz')).json).toEqual({ status: 'ok' });
      expect((await call('GET', '/readyz')).json).toEqual({ status: 'ready', database: dialect });
      const metrics = await call('GET', '/metrics');
      expect(metrics.json).toContain('yunhai_http_requests_total');
      const doc = await call('GET', '/api/v1/openapi.json');
      expect(doc.json.openapi).toBe('3.1.0');
      expect(
        doc.json.paths['/api/v1/users'].post.requestBody.content['application/json'].schema.properties.name,
      ).toBeDefined();
      expect(doc.json.paths['/api/v1/users'].get.parameters.map((p: { name: string }) => p.name)).toContain(
        'cursor',
      );
    });

    it('answers every error with one body shape and a request id', async () => {
      const r = await call('GET', '/api/v1/users');
      expect(r.status).toBe(401);
      expect(r.json).toEqual({
        error: { code: 'Unauthenticated', message: expect.any(String), requestId: expect.any(String) },
      });
      expect(r.headers.get('x-request-id')).toBe(r.json.error.requestId);
      const nf = await call('GET', '/api/v1/nope', { token: adminToken });
      expect(nf.status).toBe(404);
      expect(nf.json.error.code).toBe('NotFound');
    });

    it('signs in with the root password and rejects a wrong one (audited)', async () => {
      const before = await auditCount();
      const bad = await call('POST', '/api/v1/auth/login', {
        body: { username: 'admin', password: 'wrong-password' },
      });
      expect(bad.status).toBe(401);
      expect(bad.json.error.code).toBe('Unauthenticated');
      const ev = await cp.database.db
        .selectFrom('audit_events')
        .selectAll()
        .orderBy('seq', 'desc')
        .limit(1)
        .executeTakeFirstOrThrow();
      expect(ev).toMatchObject({ action: 'iam:Login', outcome: 'failure', error_code: 'Unauthenticated' });
      expect(await auditCount()).toBe(before + 1);
      const who = await call('GET', '/api/v1/auth/whoami', { token: adminToken });
      expect(who.json.user.role).toBe('platform-admin');
      expect(who.json.tenant.name).toBe('system');
      expect(who.json.tenant.accountId).toMatch(/^[1-9]\d{11}$/);
    });

    it('accepts SigV4-signed API requests and rejects a bad signature', async () => {
      const url = new URL(api + '/api/v1/auth/whoami');
      const sign = (secret: string, now?: Date) =>
        signRequest({
          method: 'GET',
          url,
          headers: { host: url.host },
          accessKeyId: cp.root.accessKeyId,
          secretAccessKey: secret,
          region: 'us-east-1',
          service: 'yunhai',
          now,
        });
      const ok = await fetch(url, { headers: sign(cp.root.secretAccessKey) });
      expect(ok.status).toBe(200);
      expect(((await ok.json()) as { via: string }).via).toBe('sigv4');
      const bad = await fetch(url, { headers: sign('x'.repeat(40)) });
      expect(bad.status).toBe(403);
      expect(((await bad.json()) as { error: { code: string } }).error.code).toBe('SignatureDoesNotMatch');
      // A captured request replayed after the skew window is refused.
      const old = await fetch(url, {
        headers: sign(cp.root.secretAccessKey, new Date(Date.now() - 20 * 60_000)),
      });
      expect(old.status).toBe(403);
      expect(((await old.json()) as { error: { code: string } }).error.code).toBe('RequestTimeTooSkewed');
    });

    it('refuses a signed body that was swapped in transit', async () => {
      const url = new URL(api + '/api/v1/users');
      const body = JSON.stringify({ name: 'signed-user' });
      const headers = signRequest({
        method: 'POST',
        url,
        headers: { host: url.host, 'content-type': 'application/json' },
        body,
        accessKeyId: cp.root.accessKeyId,
        secretAccessKey: cp.root.secretAccessKey,
        region: 'us-east-1',
        service: 'yunhai',
      });
      const swapped = await fetch(url, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'evil-user' }),
      });
      expect(swapped.status).toBe(403);
      const real = await fetch(url, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json' },
        body,
      });
      expect(real.status).toBe(201);
    });

    describe('bad input changes nothing', () => {
      const cases: Array<
        [
          string,
          { method: string; path: string; raw?: string; body?: unknown; headers?: Record<string, string> },
          number,
          string,
        ]
      > = [
        [
          'malformed JSON',
          {
            method: 'POST',
            path: '/api/v1/users',
            raw: '{"name": "x",',
            headers: { 'content-type': 'application/json' },
          },
          400,
          'MalformedJSON',
        ],
        [
          'an unknown field',
          { method: 'POST', path: '/api/v1/users', body: { name: 'x1', isAdmin: true } },
          400,
          'UnknownField',
        ],
        [
          'a wrong type',
          { method: 'POST', path: '/api/v1/users', body: { name: 42 } },
          400,
          'ValidationError',
        ],
        [
          'a role that does not exist',
          { method: 'POST', path: '/api/v1/users', body: { name: 'x2', role: 'god' } },
          400,
          'ValidationError',
        ],
        [
          'a path trick in a name',
          { method: 'POST', path: '/api/v1/users', body: { name: '../../etc/passwd' } },
          400,
          'ValidationError',
        ],
        [
          'a path trick in an IAM path',
          { method: 'POST', path: '/api/v1/users', body: { name: 'x3', path: '/a/../b/' } },
          400,
          'ValidationError',
        ],
        ['a bad id', { method: 'GET', path: '/api/v1/users/..%2F..%2Fetc' }, 400, 'ValidationError'],
        [
          'a non-JSON content type',
          {
            method: 'POST',
            path: '/api/v1/users',
            raw: 'name=x',
            headers: { 'content-type': 'application/x-www-form-urlencoded' },
          },
          415,
          'UnsupportedMediaType',
        ],
        [
          'an oversized body',
          {
            method: 'POST',
            path: '/api/v1/users',
            raw: JSON.stringify({ name: 'x', displayName: 'y'.repeat(2 * 1024 * 1024) }),
            headers: { 'content-type': 'application/json' },
          },
          413,
          'PayloadTooLarge',
        ],
        [
          'an unknown query parameter',
          { method: 'DELETE', path: '/api/v1/users/usr-aaaaaaaaaaaa?recursive=1' },
          400,
          'UnknownField',
        ],
        [
          'a limit out of range',
          { method: 'GET', path: '/api/v1/users?limit=100000' },
          400,
          'ValidationError',
        ],
        [
          'a forged cursor',
          { method: 'GET', path: '/api/v1/users?cursor=not-base64-json' },
          400,
          'ValidationError',
        ],
        [
          'a bad tenant name',
          { method: 'POST', path: '/api/v1/tenants', body: { name: 'Bad Name!' } },
          400,
          'ValidationError',
        ],
        [
          'a negative quota below -1',
          { method: 'PUT', path: '/api/v1/tenants/system/quotas', body: { users: -5 } },
          400,
          'ValidationError',
        ],
        [
          'an unknown quota resource',
          { method: 'PUT', path: '/api/v1/tenants/system/quotas', body: { gpus: 5 } },
          400,
          'UnknownField',
        ],
      ];
      it.each(cases)('rejects %s', async (_name, req, status, code) => {
        const users = await userCount();
        const r = await call(req.method, req.path, {
          token: adminToken,
          raw: req.raw,
          body: req.body,
          headers: req.headers,
        });
        expect(r.status).toBe(status);
        expect(r.json.error.code).toBe(code);
        expect(r.json.error.requestId).toEqual(expect.any(String));
        expect(await userCount()).toBe(users);
      });
    });

    describe('tenants', () => {
      let tenantId: string;
      let ownerToken: string;
      let memberId: string;
      let memberToken: string;

      it('creates a tenant with an owner, who can sign in as user@tenant', async () => {
        const r = await call('POST', '/api/v1/tenants', {
          token: adminToken,
          body: {
            name: 'acme',
            displayName: 'Acme Ltd',
            owner: { name: 'alice', password: 'alice-password' },
            quotas: { users: 3 },
          },
        });
        expect(r.status).toBe(201);
        expect(r.json.tenant).toMatchObject({
          name: 'acme',
          status: 'active',
          accountId: expect.stringMatching(/^\d{12}$/),
        });
        expect(r.json.owner).toMatchObject({
          name: 'alice',
          role: 'owner',
          arn: `arn:aws:iam::${r.json.tenant.accountId}:user/alice`,
        });
        tenantId = r.json.tenant.id;
        ownerToken = await login('alice@acme', 'alice-password');
        const dup = await call('POST', '/api/v1/tenants', { token: adminToken, body: { name: 'acme' } });
        expect(dup.status).toBe(409);
        expect(dup.json.error.code).toBe('AlreadyExists');
      });

      it('lets the owner create users up to the quota and no further', async () => {
        const m = await call('POST', '/api/v1/users', {
          token: ownerToken,
          body: { name: 'bob', role: 'member', password: 'bob-password' },
        });
        expect(m.status).toBe(201);
        memberId = m.json.id;
        memberToken = await login('bob@acme', 'bob-password');
        expect(
          (
            await call('POST', '/api/v1/users', {
              token: ownerToken,
              body: { name: 'carol', role: 'readonly' },
            })
          ).status,
        ).toBe(201);
        const over = await call('POST', '/api/v1/users', { token: ownerToken, body: { name: 'dave' } });
        expect(over.status).toBe(409);
        expect(over.json.error.code).toBe('QuotaExceeded');
        const q = await call('GET', '/api/v1/quotas', { token: ownerToken });
        expect(q.json.items.find((i: { resource: string }) => i.resource === 'users')).toEqual({
          resource: 'users',
          limit: 3,
          used: 3,
        });
      });

      it('pages through users with a cursor', async () => {
        const seen: string[] = [];
        let cursor: string | null = null;
        do {
          const qs: string = cursor ? `&cursor=${cursor}` : '';
          const r = await call('GET', `/api/v1/users?limit=1${qs}`, { token: ownerToken });
          seen.push(...r.json.items.map((u: { name: string }) => u.name));
          cursor = r.json.nextCursor;
        } while (cursor);
        expect(seen).toEqual(['alice', 'bob', 'carol']);
      });

      it('keeps tenants apart: another tenant sees none of these users', async () => {
        await call('POST', '/api/v1/tenants', {
          token: adminToken,
          body: { name: 'globex', owner: { name: 'gina', password: 'gina-password' } },
        });
        const gina = await login('gina@globex', 'gina-password');
        const list = await call('GET', '/api/v1/users', { token: gina });
        expect(list.json.items.map((u: { name: string }) => u.name)).toEqual(['gina']);
        const peek = await call('GET', `/api/v1/users/${memberId}`, { token: gina });
        expect(peek.status).toBe(404);
        const other = await call('GET', `/api/v1/users?tenantId=${tenantId}`, { token: gina });
        expect(other.status).toBe(404);
        const del = await call('DELETE', `/api/v1/users/${memberId}`, { token: gina });
        expect(del.status).toBe(404);
        expect((await call('GET', `/api/v1/tenants/${tenantId}`, { token: gina })).status).toBe(404);
        expect((await call('GET', '/api/v1/tenants', { token: gina })).status).toBe(403);
      });

      it('lets a member manage only their own keys, and audits the denial', async () => {
        const own = await call('POST', '/api/v1/users/me/access-keys', { token: memberToken });
        expect(own.status).toBe(201);
        expect(own.json.secretAccessKey).toHaveLength(40);
        const listed = await call('GET', '/api/v1/users/me/access-keys', { token: memberToken });
        expect(listed.json.items).toHaveLength(1);
        expect(JSON.stringify(listed.json)).not.toContain(own.json.secretAccessKey);
        const ownerId = (await call('GET', '/api/v1/auth/whoami', { token: ownerToken })).json.user.id;
        const denied = await call('POST', `/api/v1/users/${ownerId}/access-keys`, { token: memberToken });
        expect(denied.status).toBe(403);
        expect(denied.json.error.code).toBe('AccessDenied');
        const ev = await cp.database.db
          .selectFrom('audit_events')
          .selectAll()
          .where('outcome', '=', 'denied')
          .orderBy('seq', 'desc')
          .limit(1)
          .executeTakeFirstOrThrow();
        expect(ev.action).toBe('iam:CreateAccessKey');
        const promote = await call('PATCH', `/api/v1/users/${memberId}`, {
          token: memberToken,
          body: { role: 'owner' },
        });
        expect(promote.status).toBe(403);
      });

      it('stores access-key secrets only sealed', async () => {
        const rows = await cp.database.db.selectFrom('access_keys').select(['id', 'secret_sealed']).execute();
        for (const r of rows) {
          expect(r.secret_sealed).toMatch(/^v1\./);
          expect(r.secret_sealed).not.toContain(cp.root.secretAccessKey);
        }
      });

      it('suspends a tenant: reads still work, changes are refused, resume restores', async () => {
        expect(
          (
            await call('PATCH', `/api/v1/tenants/${tenantId}`, {
              token: adminToken,
              body: { status: 'suspended' },
            })
          ).json.status,
        ).toBe('suspended');
        expect((await call('GET', '/api/v1/users', { token: ownerToken })).status).toBe(200);
        const refused = await call('PATCH', `/api/v1/users/${memberId}`, {
          token: ownerToken,
          body: { displayName: 'Bob' },
        });
        expect(refused.status).toBe(403);
        expect(refused.json.error.code).toBe('TenantSuspended');
        await call('PATCH', `/api/v1/tenants/${tenantId}`, { token: adminToken, body: { status: 'active' } });
        expect(
          (
            await call('PATCH', `/api/v1/users/${memberId}`, {
              token: ownerToken,
              body: { displayName: 'Bob' },
            })
          ).status,
        ).toBe(200);
      });

      it('remembers a user’s portal language on the server (validated, audited, per user)', async () => {
        const who = async (token: string) => (await call('GET', '/api/v1/auth/whoami', { token })).json.user;
        expect((await who(memberToken)).locale).toBeNull();
        const set = await call('PUT', '/api/v1/users/me/preferences', {
          token: memberToken,
          body: { locale: 'zh-CN' },
        });
        expect(set.status).toBe(200);
        expect(set.json).toEqual({ locale: 'zh-CN' });
        // A new session (another browser) sees the choice; other users keep theirs.
        expect((await who(await login('bob@acme', 'bob-password'))).locale).toBe('zh-CN');
        expect((await who(ownerToken)).locale).toBeNull();
        const ev = await cp.database.db
          .selectFrom('audit_events')
          .selectAll()
          .where('action', '=', 'iam:SetPreferences')
          .orderBy('seq', 'desc')
          .limit(1)
          .executeTakeFirstOrThrow();
        expect(ev).toMatchObject({ action: 'iam:SetPreferences', outcome: 'success', resource: 'user/bob' });
        expect(JSON.parse(ev.details)).toEqual({ locale: 'zh-CN' });
        // Bad input is refused with a typed error and changes nothing.
        const before = await auditCount();
        for (const [body, code] of [
          [{ locale: 'fr' }, 'ValidationError'],
          [{ locale: 7 }, 'ValidationError'],
          [{ locale: 'zh-CN', theme: 'dark' }, 'UnknownField'],
        ] as const) {
          const bad = await call('PUT', '/api/v1/users/me/preferences', { token: memberToken, body });
          expect(bad.status).toBe(400);
          expect(bad.json.error.code).toBe(code);
        }
        expect(await auditCount()).toBe(before);
        expect((await who(memberToken)).locale).toBe('zh-CN');
        const anon = await call('PUT', '/api/v1/users/me/preferences', { body: { locale: 'en' } });
        expect(anon.status).toBe(401);
        // null returns to the browser's language.
        const cleared = await call('PUT', '/api/v1/users/me/preferences', {
          token: memberToken,
          body: { locale: null },
        });
        expect(cleared.json).toEqual({ locale: null });
        expect((await who(memberToken)).locale).toBeNull();
        await call('PUT', '/api/v1/users/me/preferences', { token: memberToken, body: { locale: 'en' } });
        expect((await who(memberToken)).locale).toBe('en');
      });

      it('changes a password, ends sessions on reset, and signs out', async () => {
        const bad = await call('POST', '/api/v1/auth/password', {
          token: memberToken,
          body: { currentPassword: 'nope', newPassword: 'bob-password-2' },
        });
        expect(bad.status).toBe(401);
        expect(
          (
            await call('POST', '/api/v1/auth/password', {
              token: memberToken,
              body: { currentPassword: 'bob-password', newPassword: 'bob-password-2' },
            })
          ).status,
        ).toBe(204);
        const t2 = await login('bob@acme', 'bob-password-2');
        expect(
          (
            await call('PUT', `/api/v1/users/${memberId}/password`, {
              token: ownerToken,
              body: { password: 'bob-password-3' },
            })
          ).status,
        ).toBe(204);
        expect((await call('GET', '/api/v1/auth/whoami', { token: t2 })).status).toBe(401);
        const t3 = await login('bob@acme', 'bob-password-3');
        expect((await call('POST', '/api/v1/auth/logout', { token: t3 })).status).toBe(204);
        expect((await call('GET', '/api/v1/auth/whoami', { token: t3 })).status).toBe(401);
      });

      it('refuses to delete a user with keys unless forced, and a non-empty tenant', async () => {
        const conflict = await call('DELETE', `/api/v1/users/${memberId}`, { token: ownerToken });
        expect(conflict.status).toBe(409);
        expect(conflict.json.error.code).toBe('DeleteConflict');
        expect(
          (await call('DELETE', `/api/v1/tenants/${tenantId}`, { token: adminToken })).json.error.code,
        ).toBe('DeleteConflict');
        expect(
          (await call('DELETE', `/api/v1/users/${memberId}?force=true`, { token: ownerToken })).status,
        ).toBe(204);
        const q = await call('GET', '/api/v1/quotas', { token: ownerToken });
        expect(q.json.items.find((i: { resource: string }) => i.resource === 'users').used).toBe(2);
      });

      it('lists audit events with filters: tenants see only their own', async () => {
        const mine = await call('GET', '/api/v1/audit?limit=1000', { token: ownerToken });
        expect(mine.status).toBe(200);
        expect(mine.json.items.length).toBeGreaterThan(3);
        expect(new Set(mine.json.items.map((e: { tenantId: string }) => e.tenantId))).toEqual(
          new Set([tenantId]),
        );
        const denials = await call('GET', '/api/v1/audit?outcome=denied', { token: adminToken });
        expect(denials.json.items.every((e: { outcome: string }) => e.outcome === 'denied')).toBe(true);
        const page1 = await call('GET', '/api/v1/audit?limit=2', { token: adminToken });
        const page2 = await call('GET', `/api/v1/audit?limit=2&cursor=${page1.json.nextCursor}`, {
          token: adminToken,
        });
        expect(page2.json.items[0].seq).toBeLessThan(page1.json.items[1].seq);
        expect((await call('GET', '/api/v1/audit/verify', { token: ownerToken })).status).toBe(403);
        const v = await call('GET', '/api/v1/audit/verify', { token: adminToken });
        expect(v.json).toMatchObject({ ok: true });
        expect(v.json.checked).toBe(v.json.headSeq);
      });

      it('shows usage recorded for the tenant', async () => {
        const { recordUsage } = await import('../../platform/usage/ledger.js');
        await cp.database.tx((trx) =>
          recordUsage(trx, [
            {
              tenantId,
              service: 'test',
              resourceId: 'r1',
              meter: 'test.requests',
              quantity: 5,
              periodStart: Date.now() - 1000,
              periodEnd: Date.now(),
              idempotencyKey: `rest-${tenantId}`,
            },
          ]),
        );
        const r = await call('GET', '/api/v1/usage', { token: ownerToken });
        expect(r.json.items).toEqual([
          expect.objectContaining({ meter: 'test.requests', quantity: 5, tenantId }),
        ]);
        const s = await call('GET', '/api/v1/usage/summary', { token: ownerToken });
        expect(s.json.meters).toEqual([{ meter: 'test.requests', total: 5 }]);
        const gina = await login('gina@globex', 'gina-password');
        expect((await call('GET', '/api/v1/usage', { token: gina })).json.items).toEqual([]);
      });
    });
  });
}
