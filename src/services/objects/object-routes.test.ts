import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestControlPlane, type TestControlPlane } from '../../test-support/control-plane.js';

// biome-ignore lint/suspicious/noExplicitAny: tests read whatever JSON the API answered
type Json = any;

describe('object storage on the REST API, used with the portal’s session cookie', () => {
  let cp: TestControlPlane;
  let cookie: string;
  let otherCookie: string;
  const v1 = (p: string) => `${cp.endpoints.api}/api/v1${p}`;

  const signIn = async (username: string, password: string) => {
    const r = await fetch(v1('/auth/login'), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username, password }),
    });
    expect(r.status).toBe(200);
    const set = r.headers.get('set-cookie') ?? '';
    return set;
  };
  const call = async (
    method: string,
    path: string,
    opts: { body?: unknown; cookie?: string; headers?: Record<string, string> } = {},
  ) => {
    const r = await fetch(v1(path), {
      method,
      headers: {
        cookie: opts.cookie ?? cookie,
        'x-requested-with': 'yunhai-portal',
        ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...opts.headers,
      },
      body: opts.body !== undefined ? JSON.stringify(opts.body) : undefined,
    });
    const text = await r.text();
    return { status: r.status, json: (text ? JSON.parse(text) : undefined) as Json, headers: r.headers };
  };

  beforeAll(async () => {
    cp = await startTestControlPlane();
    const admin = await cp.iam.systemContext('object-routes-test');
    await cp.iam.createTenant(admin, {
      name: 'acme',
      owner: { name: 'alice', password: 'alice-password-1' },
    });
    await cp.iam.createTenant(admin, {
      name: 'globex',
      owner: { name: 'gina', password: 'gina-password-1' },
    });
    cookie = (await signIn('alice@acme', 'alice-password-1')).split(';')[0]!;
    otherCookie = (await signIn('gina@globex', 'gina-password-1')).split(';')[0]!;
  });
  afterAll(async () => {
    await cp?.stop();
  });

  it('sign-in sets an HttpOnly, SameSite=Strict session cookie that authenticates REST calls', async () => {
    const set = await signIn('alice@acme', 'alice-password-1');
    expect(set).toMatch(/^yunhai_session=yhs[^;]+;/);
    expect(set).toContain('HttpOnly');
    expect(set).toContain('SameSite=Strict');
    expect(set).toContain('Path=/');
    const who = await call('GET', '/auth/whoami');
    expect(who.status).toBe(200);
    expect(who.json.user.name).toBe('alice');
  });

  it('refuses a cookie-authenticated state change without X-Requested-With or a same Origin (CSRF)', async () => {
    const bare = await fetch(v1('/buckets'), {
      method: 'POST',
      headers: { cookie, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'csrf-bucket' }),
    });
    expect(bare.status).toBe(403);
    expect(((await bare.json()) as Json).error.code).toBe('AccessDenied');
    const foreign = await fetch(v1('/buckets'), {
      method: 'POST',
      headers: { cookie, origin: 'http://evil.example', 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'csrf-bucket' }),
    });
    expect(foreign.status).toBe(403);
    const sameOrigin = await fetch(v1('/buckets'), {
      method: 'POST',
      headers: { cookie, origin: cp.endpoints.api, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'csrf-bucket' }),
    });
    expect(sameOrigin.status).toBe(201);
    expect((await call('DELETE', '/buckets/csrf-bucket')).status).toBe(204);
  });

  it('creates a bucket, streams an upload larger than the JSON body limit and downloads the same bytes', async () => {
    const made = await call('POST', '/buckets', { body: { name: 'acme-files' } });
    expect(made.status).toBe(201);
    expect(made.json).toMatchObject({ name: 'acme-files', versioning: 'Disabled' });
    const big = Buffer.alloc(3 * 1024 * 1024 + 17);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) % 251;
    const put = await fetch(v1('/buckets/acme-files/objects/content?key=docs%2F%E4%BA%91%E6%B5%B7.bin'), {
      method: 'PUT',
      headers: { cookie, 'x-requested-with': 'yunhai-portal', 'content-type': 'application/x-test' },
      body: big,
    });
    expect(put.status).toBe(201);
    const got = await fetch(v1('/buckets/acme-files/objects/content?key=docs%2F%E4%BA%91%E6%B5%B7.bin'), {
      headers: { cookie },
    });
    expect(got.status).toBe(200);
    expect(got.headers.get('content-type')).toBe('application/x-test');
    expect(got.headers.get('content-disposition')).toContain("filename*=UTF-8''%E4%BA%91%E6%B5%B7.bin");
    expect(Buffer.from(await got.arrayBuffer()).equals(big)).toBe(true);
    const missing = await fetch(v1('/buckets/acme-files/objects/content?key=nope'), { headers: { cookie } });
    expect(missing.status).toBe(404);
  });

  it('lists objects by folder with a delimiter and pages through them', async () => {
    for (const key of ['a.txt', 'b.txt', 'c.txt', 'docs/readme.md', 'pics/x.png'])
      expect(
        (
          await fetch(v1(`/buckets/acme-files/objects/content?key=${encodeURIComponent(key)}`), {
            method: 'PUT',
            headers: { cookie, 'x-requested-with': 'x', 'content-type': 'text/plain' },
            body: key,
          })
        ).status,
      ).toBe(201);
    const root = await call('GET', '/buckets/acme-files/objects?delimiter=/');
    expect(root.status).toBe(200);
    expect(root.json.folders).toEqual(['docs/', 'pics/']);
    expect(root.json.items.map((o: Json) => o.key)).toEqual(['a.txt', 'b.txt', 'c.txt']);
    const docs = await call('GET', '/buckets/acme-files/objects?delimiter=/&prefix=docs/');
    expect(docs.json.items.map((o: Json) => o.key)).toEqual(['docs/readme.md', 'docs/云海.bin']);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const q: string = `/buckets/acme-files/objects?delimiter=/&limit=2${cursor ? `&cursor=${cursor}` : ''}`;
      const page = await call('GET', q);
      expect(page.status).toBe(200);
      seen.push(...page.json.folders, ...page.json.items.map((o: Json) => o.key));
      cursor = page.json.nextCursor;
    } while (cursor);
    expect(seen.sort()).toEqual(['a.txt', 'b.txt', 'c.txt', 'docs/', 'pics/']);
  });

  it('presigns a time-limited link on the s3 listener that downloads without signing in', async () => {
    const r = await call('POST', '/buckets/acme-files/presign', {
      body: { key: 'a.txt', expiresSeconds: 600 },
    });
    expect(r.status).toBe(200);
    expect(r.json.url.startsWith(`${cp.endpoints.s3}/acme-files/a.txt?`)).toBe(true);
    expect(r.json.url).toContain('X-Amz-Expires=600');
    const got = await fetch(r.json.url);
    expect(got.status).toBe(200);
    expect(await got.text()).toBe('a.txt');
    const tampered = await fetch(r.json.url.replace('/a.txt?', '/b.txt?'));
    expect(tampered.status).toBe(403);
    expect(
      (await call('POST', '/buckets/acme-files/presign', { body: { key: 'nope.txt' } })).json.error.code,
    ).toBe('NotFound');
  });

  it('toggles versioning and deletes objects (a delete marker when versioned)', async () => {
    const on = await call('PUT', '/buckets/acme-files/versioning', { body: { status: 'Enabled' } });
    expect(on.status).toBe(200);
    expect((await call('GET', '/buckets/acme-files')).json.versioning).toBe('Enabled');
    const del = await call('DELETE', '/buckets/acme-files/objects?key=b.txt');
    expect(del.status).toBe(200);
    expect(del.json.deleteMarker).toBe(true);
    const off = await call('PUT', '/buckets/acme-files/versioning', { body: { status: 'Suspended' } });
    expect(off.json.versioning).toBe('Suspended');
    const bad = await call('PUT', '/buckets/acme-files/versioning', { body: { status: 'Off' } });
    expect(bad.status).toBe(400);
    expect(bad.json.error.code).toBe('ValidationError');
  });

  it('keeps another tenant out and refuses to delete a bucket that is not empty', async () => {
    const peek = await call('GET', '/buckets/acme-files/objects', { cookie: otherCookie });
    expect(peek.status).toBe(403);
    const steal = await fetch(v1('/buckets/acme-files/objects/content?key=a.txt'), {
      headers: { cookie: otherCookie },
    });
    expect(steal.status).toBe(403);
    const put = await fetch(v1('/buckets/acme-files/objects/content?key=evil.txt'), {
      method: 'PUT',
      headers: { cookie: otherCookie, 'x-requested-with': 'x' },
      body: 'x',
    });
    expect(put.status).toBe(403);
    const notEmpty = await call('DELETE', '/buckets/acme-files');
    expect(notEmpty.status).toBe(409);
    expect(notEmpty.json.error.code).toBe('Conflict');
    expect(notEmpty.json.error.message).toMatch(/not empty/);
    const anonymous = await fetch(v1('/buckets/acme-files/objects'));
    expect(anonymous.status).toBe(401);
  });

  it('sign-out ends the session and clears the cookie', async () => {
    const mine = (await signIn('alice@acme', 'alice-password-1')).split(';')[0]!;
    const out = await call('POST', '/auth/logout', { cookie: mine });
    expect(out.status).toBe(204);
    expect(out.headers.get('set-cookie')).toMatch(/^yunhai_session=; .*Max-Age=0/);
    expect((await call('GET', '/auth/whoami', { cookie: mine })).status).toBe(401);
  });
});
