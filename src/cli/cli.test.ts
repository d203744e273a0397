import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Sqlite from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestControlPlane, type TestControlPlane } from '../test-support/control-plane.js';
import { parseQuotaLimits } from './commands/quota.js';
import { configPath, resolveTarget, saveConfig } from './config.js';
import { bar, displayWidth, renderTable } from './output.js';
import { runCli } from './run.js';

const OWNER_PASSWORD = 'alice-password-1';

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((done) => srv.listen(0, '127.0.0.1', done));
  const addr = srv.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  await new Promise<void>((done) => srv.close(() => done()));
  return port;
}

describe('yunhai CLI against a real control plane', () => {
  let cp: TestControlPlane;
  let tmp: string;
  let env: NodeJS.ProcessEnv;
  let closed = false;
  const yh = (...argv: string[]) => runCli(argv, env);
  const json = async <T>(...argv: string[]): Promise<T> => {
    const r = await yh(...argv, '-o', 'json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    return JSON.parse(r.stdout) as T;
  };

  beforeAll(async () => {
    cp = await startTestControlPlane();
    tmp = mkdtempSync(join(tmpdir(), 'yunhai-cli-test-'));
    env = { PATH: process.env.PATH, HOME: tmp, YUNHAI_CONFIG_DIR: join(tmp, 'config') };
  });

  afterAll(async () => {
    if (closed) rmSync(cp.dataDir, { recursive: true, force: true });
    else await cp?.stop();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('logs in with --data-dir using the root keys and saves a private profile', async () => {
    const r = await yh('login', '--data-dir', cp.dataDir);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`Logged in to ${cp.endpoints.api} as admin@system (platform-admin)`);

    const file = configPath(env);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(tmp, 'config')).mode & 0o777).toBe(0o700);
    const config = JSON.parse(readFileSync(file, 'utf8'));
    expect(config.currentProfile).toBe('default');
    expect(config.profiles.default).toMatchObject({
      endpoint: cp.endpoints.api,
      accessKeyId: cp.root.accessKeyId,
      secretAccessKey: cp.root.secretAccessKey,
      username: 'admin@system',
    });
  });

  it('whoami shows the signed-in user as fields and as JSON', async () => {
    const r = await yh('whoami');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^user\s+admin \(usr-[a-z0-9]{12}\)$/m);
    expect(r.stdout).toMatch(/^role\s+platform-admin$/m);
    expect(r.stdout).toMatch(new RegExp(`^auth\\s+access key ${cp.root.accessKeyId}$`, 'm'));
    const who = await json<{ user: { name: string }; tenant: { name: string }; via: string }>('whoami');
    expect(who).toMatchObject({ user: { name: 'admin' }, tenant: { name: 'system' }, via: 'sigv4' });
  });

  it('creates a tenant with an owner and quotas, and lists tenants as a table and as JSON', async () => {
    const r = await yh(
      'tenant',
      'create',
      'acme',
      '--display-name',
      'Acme 云海',
      '--owner',
      'alice',
      '--owner-password',
      OWNER_PASSWORD,
      '--quota',
      'users=5,buckets=3',
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Created tenant acme \(ten-[a-z0-9]{12}, account \d{12}\)\.$/m);
    expect(r.stdout).toContain('Owner alice');

    const table = await yh('tenant', 'list');
    expect(table.code).toBe(0);
    const lines = table.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^ID\s+NAME\s+DISPLAY NAME\s+STATUS\s+ACCOUNT\s+CREATED$/);
    expect(lines.some((l) => /^ten-\w+\s+acme\s+Acme 云海\s+active\s+\d{12}\s/.test(l))).toBe(true);
    expect(lines.some((l) => /\ssystem\s/.test(l))).toBe(true);

    const list = await json<{ items: { name: string; displayName: string }[]; nextCursor: string | null }>(
      'tenant',
      'list',
    );
    expect(list.items.map((t) => t.name).sort()).toEqual(['acme', 'system']);
    expect(list.nextCursor).toBeNull();

    const one = await json<{ items: unknown[]; nextCursor: string | null }>('tenant', 'list', '--limit', '1');
    expect(one.items).toHaveLength(1);
    expect(one.nextCursor).not.toBeNull();
    const all = await json<{ items: unknown[]; nextCursor: string | null }>('tenant', 'list', '--all');
    expect(all.items).toHaveLength(2);
  });

  it('suspends, resumes, and (with --yes only) deletes an empty tenant', async () => {
    expect((await yh('tenant', 'create', 'scratch')).code).toBe(0);
    const suspended = await json<{ status: string }>('tenant', 'suspend', 'scratch');
    expect(suspended.status).toBe('suspended');
    expect((await json<{ status: string }>('tenant', 'resume', 'scratch')).status).toBe('active');

    const refused = await yh('tenant', 'delete', 'scratch');
    expect(refused.code).toBe(2);
    expect(refused.stderr).toBe(
      'yunhai: refusing to delete tenant scratch without confirmation: pass --yes\n',
    );

    const deleted = await yh('tenant', 'delete', 'scratch', '--yes');
    expect(deleted.code).toBe(0);
    expect(deleted.stdout).toBe('Deleted tenant scratch.\n');
    const gone = await yh('tenant', 'show', 'scratch');
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(
      /^yunhai: NotFound: Tenant 'scratch' does not exist\. \(request [0-9a-f-]+\)\n$/,
    );
  });

  it('creates, lists, shows and deletes users of a tenant', async () => {
    const bob = await json<{ id: string; name: string; role: string }>(
      'user',
      'create',
      'bob',
      '--tenant',
      'acme',
      '--role',
      'readonly',
      '--email',
      'bob@acme.example',
    );
    expect(bob).toMatchObject({ name: 'bob', role: 'readonly' });

    const list = await yh('user', 'list', '--tenant', 'acme');
    expect(list.code).toBe(0);
    expect(list.stdout.split('\n')[0]).toMatch(
      /^ID\s+NAME\s+ROLE\s+EMAIL\s+PASSWORD\s+CREATED\s+LAST LOGIN$/,
    );
    expect(list.stdout).toMatch(/usr-\w+\s+alice\s+owner\s+-\s+yes/);
    expect(list.stdout).toMatch(/usr-\w+\s+bob\s+readonly\s+bob@acme\.example\s+no/);

    const shown = await yh('user', 'show', 'bob', '--tenant', 'acme');
    expect(shown.stdout).toMatch(new RegExp(`^id\\s+${bob.id}$`, 'm'));
    expect((await json<{ role: string }>('user', 'set-role', bob.id, 'member')).role).toBe('member');

    const refused = await yh('user', 'delete', bob.id);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('pass --yes');
    const deleted = await yh('user', 'delete', bob.id, '--yes');
    expect(deleted.code).toBe(0);
    const after = await json<{ items: { name: string }[] }>('user', 'list', '--tenant', 'acme');
    expect(after.items.map((u) => u.name)).toEqual(['alice']);
  });

  it('creates an access key whose secret is shown once, lists it without the secret, and deletes it', async () => {
    const created = await yh('key', 'create', '--user', 'alice', '--tenant', 'acme');
    expect(created.code).toBe(0);
    expect(created.stderr).toContain('shown only this once');
    const id = /access key id\s+(AKIA[A-Z0-9]+)/.exec(created.stdout)?.[1];
    const secret = /secret access key\s+(\S+)/.exec(created.stdout)?.[1];
    expect(id).toBeDefined();
    expect(secret).toBeDefined();

    // The new key works, and environment credentials override the profile's.
    const asAlice = await runCli(['whoami', '-o', 'json'], {
      ...env,
      YUNHAI_ACCESS_KEY_ID: id,
      YUNHAI_SECRET_ACCESS_KEY: secret,
    });
    expect(asAlice.code).toBe(0);
    expect(JSON.parse(asAlice.stdout)).toMatchObject({ user: { name: 'alice' }, tenant: { name: 'acme' } });

    const list = await yh('key', 'list', '--user', 'alice', '--tenant', 'acme');
    expect(list.stdout).toMatch(new RegExp(`^${id}\\s+alice\\s+Active\\s`, 'm'));
    expect(list.stdout).not.toContain(secret);
    const listJson = await json<{ items: Record<string, unknown>[] }>(
      'key',
      'list',
      '--user',
      'alice',
      '--tenant',
      'acme',
    );
    expect(listJson.items).toHaveLength(1);
    expect(listJson.items[0]).not.toHaveProperty('secretAccessKey');

    expect((await json<{ status: string }>('key', 'deactivate', id!)).status).toBe('Inactive');
    const inactive = await runCli(['whoami'], {
      ...env,
      YUNHAI_ACCESS_KEY_ID: id,
      YUNHAI_SECRET_ACCESS_KEY: secret,
    });
    expect(inactive.code).toBe(1);
    expect(inactive.stderr).toMatch(/^yunhai: InvalidClientTokenId: /);
    expect((await json<{ status: string }>('key', 'activate', id!)).status).toBe('Active');

    expect((await yh('key', 'delete', id!, '--yes')).code).toBe(0);
    const empty = await yh('key', 'list', '--user', 'alice', '--tenant', 'acme');
    expect(empty.code).toBe(0);
    expect(empty.stdout).toBe('');
    expect(empty.stderr).toBe('No access keys.\n');
  });

  it('sets quota limits and shows used / limit with a bar', async () => {
    const set = await yh('quota', 'set', '--tenant', 'acme', 'users=10', 'buckets=unlimited');
    expect(set.code).toBe(0);
    expect(set.stderr).toBe('Updated users, buckets of tenant acme.\n');

    const shown = await yh('quota', 'show', '--tenant', 'acme');
    expect(shown.code).toBe(0);
    expect(shown.stdout.split('\n')[0]).toMatch(/^RESOURCE\s+USED\s+LIMIT\s+USE$/);
    expect(shown.stdout).toMatch(/^users\s+1\s+10\s+█░{9} 10%$/m);
    expect(shown.stdout).toMatch(/^buckets\s+0\s+unlimited\s+-$/m);
    expect(shown.stdout).toMatch(/^storageBytes\s+0\s+1 TiB\s+░{10} 0%$/m);

    const q = await json<{ items: { resource: string; limit: number; used: number }[] }>(
      'quota',
      'show',
      '--tenant',
      'acme',
    );
    expect(q.items.find((i) => i.resource === 'users')).toEqual({ resource: 'users', limit: 10, used: 1 });

    const bad = await yh('quota', 'set', '--tenant', 'acme', 'rockets=1');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^yunhai: unknown quota resource 'rockets'; one of: users, /);
  });

  it('logs in with a password into another profile, and a denied action is a one-line error with exit 1', async () => {
    const login = await yh(
      '--profile',
      'alice',
      'login',
      '--username',
      'alice@acme',
      '--password',
      OWNER_PASSWORD,
    );
    expect(login.stderr).toBe('');
    expect(login.code).toBe(0);
    expect(login.stdout).toContain('as alice@acme (owner) (session until ');
    const config = JSON.parse(readFileSync(configPath(env), 'utf8'));
    expect(config.currentProfile).toBe('alice');
    expect(config.profiles.alice.sessionToken).toMatch(/^yhs_/);
    expect(config.profiles.alice.accessKeyId).toBeUndefined();

    const denied = await yh('tenant', 'create', 'evil');
    expect(denied.code).toBe(1);
    expect(denied.stdout).toBe('');
    expect(denied.stderr).toMatch(
      /^yunhai: AccessDenied: User arn:aws:iam::\d{12}:user\/alice is not authorized to perform iam:CreateTenant on tenant\/evil: .+ \(request [0-9a-f-]{36}\)\n$/,
    );

    const profiles = await yh('profile', 'list');
    expect(profiles.stdout).toMatch(/^\*\s+alice\s+http:\S+\s+alice@acme\s+session until /m);
    expect(profiles.stdout).toMatch(/^\s+default\s+http:\S+\s+admin@system\s+key AKIA/m);
    expect(profiles.stdout).not.toContain(cp.root.secretAccessKey);

    const logout = await yh('logout');
    expect(logout.code).toBe(0);
    expect(logout.stdout).toBe("Logged out of profile 'alice'; session ended.\n");
    const after = await yh('whoami');
    expect(after.code).toBe(2);
    expect(after.stderr).toContain("not logged in (profile 'alice')");

    expect((await yh('profile', 'use', 'default')).stdout).toBe("Now using profile 'default'.\n");
    expect((await yh('profile', 'use', 'nope')).code).toBe(2);
  });

  it('lets an admin set a password and the user change it, after which only the new one signs in', async () => {
    const set = await yh('user', 'set-password', 'alice', '--tenant', 'acme', '--password', 'set-by-admin-1');
    expect(set.code).toBe(0);
    expect(set.stdout).toBe('Password of alice set; their sessions were ended.\n');

    const login = await yh(
      '--profile',
      'alice',
      'login',
      '--username',
      'alice',
      '--tenant',
      'acme',
      '--password',
      'set-by-admin-1',
    );
    expect(login.code).toBe(0);
    const change = await yh(
      'password',
      'change',
      '--current',
      'set-by-admin-1',
      '--new',
      'chosen-by-alice-1',
    );
    expect(change.code).toBe(0);
    expect(change.stdout).toBe('Password changed.\n');
    const wrong = await yh('password', 'change', '--current', 'set-by-admin-1', '--new', 'another-one-1');
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/^yunhai: Unauthenticated: The current password is incorrect\. \(request /);

    const old = await yh(
      '--profile',
      'alice',
      'login',
      '--username',
      'alice@acme',
      '--password',
      'set-by-admin-1',
    );
    expect(old.code).toBe(1);
    expect(old.stderr).toMatch(/^yunhai: Unauthenticated: Incorrect username or password\./);
    const fresh = await yh(
      '--profile',
      'alice',
      'login',
      '--username',
      'alice@acme',
      '--password',
      'chosen-by-alice-1',
    );
    expect(fresh.code).toBe(0);
    // A password needs a terminal when not given as a flag.
    const noTty = await yh('user', 'set-password', 'alice', '--tenant', 'acme');
    expect(noTty.code).toBe(2);
    expect(noTty.stderr).toBe('yunhai: --password is required when not on a terminal\n');
    expect((await yh('profile', 'use', 'default')).code).toBe(0);
  });

  it('saves a new access key as a profile with key create --save-as', async () => {
    const created = await yh(
      'key',
      'create',
      '--user',
      'alice',
      '--tenant',
      'acme',
      '--save-as',
      'alice-key',
    );
    expect(created.code).toBe(0);
    expect(created.stderr).toContain("Saved as profile 'alice-key'");
    const id = /access key id\s+(AKIA[A-Z0-9]+)/.exec(created.stdout)![1]!;
    const who = await json<{ user: { name: string }; via: string }>('--profile', 'alice-key', 'whoami');
    expect(who).toMatchObject({ user: { name: 'alice' }, via: 'sigv4' });
    // The key signing a request cannot delete itself; the admin can.
    const self = await yh('--profile', 'alice-key', 'key', 'delete', id, '--yes');
    expect(self.code).toBe(1);
    expect(self.stderr).toMatch(
      /^yunhai: Conflict: You cannot delete the access key this request is signed with\./,
    );
    expect((await yh('key', 'delete', id, '--yes')).code).toBe(0);
    const profiles = await json<{ profiles: Record<string, Record<string, unknown>> }>('profile', 'list');
    expect(profiles.profiles['alice-key']).toMatchObject({ auth: 'access key', accessKeyId: id });
    expect(JSON.stringify(profiles)).not.toMatch(/secretAccessKey|sessionToken/);
  });

  it('reports an unreachable endpoint with exit 3 and a hint to start the control plane', async () => {
    const port = await closedPort();
    const r = await yh('--endpoint', `http://127.0.0.1:${port}`, 'whoami');
    expect(r.code).toBe(3);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      `yunhai: cannot connect to http://127.0.0.1:${port}: connection refused; is the control plane running? try \`yunhai up\`\n`,
    );
  });

  it('rejects bad usage with exit 2 and prints help with examples', async () => {
    const unknown = await yh('tenant', 'list', '--bogus');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("unknown option '--bogus'");
    const badOutput = await yh('tenant', 'list', '-o', 'yaml');
    expect(badOutput.code).toBe(2);
    expect(badOutput.stderr).toBe("yunhai: --output must be table or json, got 'yaml'\n");
    const help = await yh('tenant', 'create', '--help');
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Examples:');
    expect(help.stdout).toContain('--owner-password');
    expect(help.stdout).toContain('Global Options:');
  });

  it('lists audit events of the commands above, newest first, with filters and pagination', async () => {
    const created = await yh('audit', 'list', '--action', 'iam:CreateTenant');
    expect(created.code).toBe(0);
    expect(created.stdout.split('\n')[0]).toMatch(
      /^\s*SEQ\s+TIME\s+PRINCIPAL\s+ACTION\s+RESOURCE\s+OUTCOME\s+SOURCE\s+REQUEST$/,
    );
    expect(created.stdout).toMatch(/iam:CreateTenant\s+tenant\/acme\s+success/);
    expect(created.stdout).toMatch(/iam:CreateTenant\s+tenant\/scratch\s+success/);

    const denied = await json<{
      items: { action: string; outcome: string; errorCode: string; principal: string }[];
    }>('audit', 'list', '--outcome', 'denied');
    expect(denied.items).toHaveLength(1);
    expect(denied.items[0]).toMatchObject({
      action: 'iam:CreateTenant',
      outcome: 'denied',
      errorCode: 'AccessDenied',
    });
    expect(denied.items[0]!.principal).toMatch(/^\d{12}:alice$/);

    const page = await json<{ items: { seq: number }[]; nextCursor: string | null }>(
      'audit',
      'list',
      '--limit',
      '3',
    );
    expect(page.items.map((e) => e.seq)).toEqual([...page.items.map((e) => e.seq)].sort((a, b) => b - a));
    expect(page.items).toHaveLength(3);
    expect(page.nextCursor).not.toBeNull();
    const all = await json<{ items: { seq: number }[]; nextCursor: string | null }>('audit', 'list', '--all');
    expect(all.nextCursor).toBeNull();
    expect(all.items.at(-1)!.seq).toBe(1);
    expect(all.items[0]!.seq).toBe(all.items.length);

    const future = await yh('audit', 'list', '--since', '2999-01-01');
    expect(future.stderr).toBe('No audit events found.\n');
  });

  it('shows the usage ledger and a summary (empty on a fresh platform)', async () => {
    const list = await yh('usage', 'list');
    expect(list.code).toBe(0);
    expect(list.stderr).toBe('No usage records found.\n');
    const summary = await yh('usage', 'summary', '--tenant', 'acme');
    expect(summary.code).toBe(0);
    expect(summary.stdout).toMatch(
      /^Usage of tenant \S+ from \d{4}-\d\d-01 00:00:00Z to .+:\n {2}\(no usage recorded\)\n$/,
    );
  });

  it('audit verify through the API reports an intact chain', async () => {
    const r = await yh('audit', 'verify');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^audit chain OK: \d+ events, head [0-9a-f]{64}\n$/);
  });

  it('offline audit verify --data-dir detects an edited row and exits 4', async () => {
    await cp.close();
    closed = true;
    const ok = await yh('audit', 'verify', '--data-dir', cp.dataDir);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^audit chain OK: \d+ events, head [0-9a-f]{64}\n$/);

    const db = new Sqlite(join(cp.dataDir, 'yunhai.db'));
    db.prepare("UPDATE audit_events SET action='x' WHERE seq=2").run();
    db.close();

    const broken = await yh('audit', 'verify', '--data-dir', cp.dataDir);
    expect(broken.code).toBe(4);
    expect(broken.stdout).toBe(
      'audit chain BROKEN at event 2: row contents do not match its hash (edited)\n',
    );
    const asJson = await yh('audit', 'verify', '--database', join(cp.dataDir, 'yunhai.db'), '-o', 'json');
    expect(asJson.code).toBe(4);
    expect(JSON.parse(asJson.stdout)).toMatchObject({ ok: false, problem: { seq: 2 } });

    const missing = await yh('audit', 'verify', '--data-dir', join(tmp, 'nowhere'));
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('no database at');
  });
});

describe('CLI building blocks', () => {
  it('aligns table columns by display width, counting CJK characters as two columns', () => {
    expect(displayWidth('云海')).toBe(4);
    const out = renderTable(
      [
        { a: '云海', b: 1 },
        { a: 'x', b: 100 },
      ],
      [
        { header: 'NAME', value: (r) => r.a },
        { header: 'N', value: (r) => r.b, align: 'right' },
      ],
    );
    expect(out).toBe('NAME    N\n云海    1\nx     100\n');
  });

  it('truncates the widest column with an ellipsis to fit the terminal width', () => {
    const rows = [{ id: 'short', text: 'a'.repeat(50) }];
    const out = renderTable(
      rows,
      [
        { header: 'ID', value: (r) => r.id },
        { header: 'TEXT', value: (r) => r.text },
      ],
      30,
    );
    for (const line of out.trimEnd().split('\n')) expect(displayWidth(line)).toBeLessThanOrEqual(30);
    expect(out).toContain('…');
  });

  it('escapes control characters in cells so server data cannot drive the terminal', () => {
    const out = renderTable([{ v: 'evil\u001b[2Jname\nx' }], [{ header: 'V', value: (r) => r.v }]);
    expect(out).toBe('V\nevil\\x1b[2Jname\\nx\n');
  });

  it('draws quota bars and parses quota limits with sizes and unlimited', () => {
    expect(bar(5, 10)).toBe('█████░░░░░');
    expect(bar(20, 10)).toBe('██████████');
    expect(bar(1, -1)).toBe('');
    expect(parseQuotaLimits(['users=5,storageBytes=2TiB', 'Buckets=unlimited'])).toEqual({
      users: 5,
      storageBytes: 2 * 1024 ** 4,
      buckets: -1,
    });
    expect(() => parseQuotaLimits(['users'])).toThrow(/resource=N/);
  });

  it('takes the endpoint from --endpoint over the environment over the profile, and env keys over profile keys', () => {
    const dir = mkdtempSync(join(tmpdir(), 'yunhai-cli-config-'));
    try {
      const env: NodeJS.ProcessEnv = { YUNHAI_CONFIG_DIR: dir };
      saveConfig(env, {
        currentProfile: 'p',
        profiles: { p: { endpoint: 'http://profile:1', accessKeyId: 'AKIAPROFILE', secretAccessKey: 's' } },
      });
      expect(resolveTarget({}, env)).toMatchObject({
        profile: 'p',
        endpoint: 'http://profile:1',
        credentials: { accessKeyId: 'AKIAPROFILE' },
      });
      const withEnv = {
        ...env,
        YUNHAI_ENDPOINT: 'http://env:2',
        YUNHAI_ACCESS_KEY_ID: 'AKIAENV',
        YUNHAI_SECRET_ACCESS_KEY: 'e',
      };
      expect(resolveTarget({}, withEnv)).toMatchObject({
        endpoint: 'http://env:2',
        credentials: { accessKeyId: 'AKIAENV', source: 'env' },
      });
      expect(resolveTarget({ endpoint: 'http://flag:3' }, withEnv).endpoint).toBe('http://flag:3');
      expect(() => resolveTarget({ profile: 'other' }, env)).toThrow(/no endpoint for profile 'other'/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
