import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestControlPlane, type TestControlPlane } from '../test-support/control-plane.js';
import { seedS3Tenants } from '../test-support/s3.js';
import { parseS3Path } from './commands/bucket.js';
import { runCli } from './run.js';

describe('yunhai bucket against a real control plane', () => {
  let cp: TestControlPlane;
  let tmp: string;
  let env: NodeJS.ProcessEnv;
  let adminEnv: NodeJS.ProcessEnv;
  const yh = (...argv: string[]) => runCli(argv, env, { cwd: tmp });

  beforeAll(async () => {
    cp = await startTestControlPlane();
    const keys = await seedS3Tenants(cp);
    tmp = mkdtempSync(join(tmpdir(), 'yunhai-bucket-test-'));
    const base = { PATH: process.env.PATH, HOME: tmp, YUNHAI_CONFIG_DIR: join(tmp, 'config') };
    env = {
      ...base,
      YUNHAI_ENDPOINT: cp.endpoints.api,
      YUNHAI_ACCESS_KEY_ID: keys.acme.accessKeyId,
      YUNHAI_SECRET_ACCESS_KEY: keys.acme.secretAccessKey,
    };
    adminEnv = {
      ...base,
      YUNHAI_ENDPOINT: cp.endpoints.api,
      YUNHAI_ACCESS_KEY_ID: keys.root.accessKeyId,
      YUNHAI_SECRET_ACCESS_KEY: keys.root.secretAccessKey,
    };
  });
  afterAll(async () => {
    await cp?.stop();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('parses s3 paths', () => {
    expect(parseS3Path('s3://b/k/x')).toEqual({ bucket: 'b', key: 'k/x' });
    expect(parseS3Path('b')).toEqual({ bucket: 'b', key: '' });
    expect(() => parseS3Path('s3:///k')).toThrow(/names no bucket/);
    expect(() => parseS3Path('b/k', { requireScheme: true })).toThrow(/not an s3:\/\//);
  });

  it('mb, put, ls, get, rm, rb round trip (the s3 endpoint comes from GET /api/v1/endpoints)', async () => {
    let r = await yh('bucket', 'mb', 'cli-photos');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('make_bucket: cli-photos\n');

    writeFileSync(join(tmp, 'cat.txt'), 'meow');
    r = await yh('bucket', 'put', 'cat.txt', 'cli-photos/2024/');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^upload: cat.txt to s3:\/\/cli-photos\/2024\/cat.txt/);
    // A non-terminal gets no bar, only the step lines (none for a single put).
    expect(r.stderr).toBe('');
    r = await yh('bucket', 'cp', 'cat.txt', 's3://cli-photos/top.txt');
    expect(r.code).toBe(0);

    r = await yh('bucket', 'ls', 'cli-photos');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/PRE\s+2024\//);
    expect(r.stdout).toMatch(/4 B\s+top.txt/);
    r = await yh('bucket', 'ls', 's3://cli-photos', '--recursive', '-o', 'json');
    expect(JSON.parse(r.stdout).objects.map((o: { key: string }) => o.key)).toEqual([
      '2024/cat.txt',
      'top.txt',
    ]);

    r = await yh('bucket', 'ls');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/cli-photos\s+2\s+8 B\s+Disabled\s+acme/);
    r = await yh('bucket', 'info', 'cli-photos', '-o', 'json');
    expect(JSON.parse(r.stdout)).toMatchObject({ name: 'cli-photos', currentObjects: 2, sizeBytes: 8 });

    r = await yh('bucket', 'get', 'cli-photos/2024/cat.txt', 'copy.txt');
    expect(r.code).toBe(0);
    expect(readFileSync(join(tmp, 'copy.txt'), 'utf8')).toBe('meow');
    r = await yh('bucket', 'cp', 's3://cli-photos/top.txt', './');
    expect(r.code).toBe(0);
    expect(readFileSync(join(tmp, 'top.txt'), 'utf8')).toBe('meow');

    r = await yh('bucket', 'rb', 'cli-photos');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^yunhai: BucketNotEmpty: /);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);

    r = await yh('bucket', 'rm', 'cli-photos/top.txt');
    expect(r.stdout).toBe('delete: s3://cli-photos/top.txt\n');
    r = await yh('bucket', 'rb', 'cli-photos', '--force');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--yes/);
    r = await yh('bucket', 'rb', 'cli-photos', '--force', '--yes');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('remove_bucket: cli-photos\n');
  });

  it('uploads a large file in parts with progress and downloads it byte-identical', async () => {
    expect((await yh('bucket', 'mb', 'cli-big')).code).toBe(0);
    const data = randomBytes(11 * 1024 * 1024 + 123);
    writeFileSync(join(tmp, 'big.bin'), data);
    let r = await yh('bucket', 'cp', 'big.bin', 's3://cli-big/big.bin', '--part-size', '5MiB');
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('upload big.bin: 1/3 parts');
    r = await yh('bucket', 'ls', 'cli-big', '-o', 'json');
    expect(JSON.parse(r.stdout).objects[0]).toMatchObject({ key: 'big.bin', size: data.length });
    expect(JSON.parse(r.stdout).objects[0].etag).toMatch(/-3$/);
    r = await yh('bucket', 'get', 's3://cli-big/big.bin', 'big-copy.bin');
    expect(r.code).toBe(0);
    expect(readFileSync(join(tmp, 'big-copy.bin')).equals(data)).toBe(true);
    r = await yh('bucket', 'rm', 'cli-big', '--recursive', '--yes');
    expect(r.stdout).toBe('deleted 1 object(s) under s3://cli-big/\n');
    expect((await yh('bucket', 'rb', 'cli-big')).code).toBe(0);
  });

  it('cp -r copies a tree up under a prefix and back down', async () => {
    expect((await yh('bucket', 'mb', 'cli-tree')).code).toBe(0);
    const src = join(tmp, 'tree');
    mkdirSync(join(src, 'sub', 'deeper'), { recursive: true });
    writeFileSync(join(src, 'top.txt'), 'top');
    writeFileSync(join(src, 'sub', 'a.txt'), 'aaa');
    writeFileSync(join(src, 'sub', 'deeper', '云海.txt'), 'yunhai');
    let r = await yh('bucket', 'cp', '-r', 'tree', 's3://cli-tree/backup');
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n')).toHaveLength(3);
    r = await yh('bucket', 'ls', 'cli-tree/backup/', '--recursive', '-o', 'json');
    expect(JSON.parse(r.stdout).objects.map((o: { key: string }) => o.key)).toEqual([
      'backup/sub/a.txt',
      'backup/sub/deeper/云海.txt',
      'backup/top.txt',
    ]);
    r = await yh('bucket', 'cp', '-r', 's3://cli-tree/backup/', 'restored', '-o', 'json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toHaveLength(3);
    expect(readFileSync(join(tmp, 'restored', 'sub', 'deeper', '云海.txt'), 'utf8')).toBe('yunhai');
    expect(readFileSync(join(tmp, 'restored', 'top.txt'), 'utf8')).toBe('top');
    expect((await yh('bucket', 'rb', 'cli-tree', '--force', '--yes')).code).toBe(0);
  });

  it('errors are one line with the usual exit codes', async () => {
    let r = await yh('bucket', 'get', 'no-such-bucket/x', 'x');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^yunhai: NoSuchBucket: .*\n$/);
    r = await yh('bucket', 'put', 'missing.txt', 'b/k');
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('yunhai: missing.txt: no such file\n');
    r = await yh('bucket', 'cp', 'a', 'b');
    expect(r.code).toBe(2);
    r = await runCli(['bucket', 'ls', 'b', '--s3-endpoint', 'http://127.0.0.1:1'], env, { cwd: tmp });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(
      /^yunhai: cannot connect to the S3 endpoint http:\/\/127.0.0.1:1: ECONNREFUSED\n$/,
    );
    r = await runCli(['bucket', 'ls', 'b'], {
      ...env,
      YUNHAI_ACCESS_KEY_ID: '',
      YUNHAI_SECRET_ACCESS_KEY: '',
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/not logged in/);
  });

  it('a platform admin lists every tenant’s buckets, or one tenant’s', async () => {
    expect((await yh('bucket', 'mb', 'acme-only')).code).toBe(0);
    let r = await runCli(['bucket', 'ls', '--tenant', 'acme'], adminEnv);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/acme-only/);
    r = await runCli(['bucket', 'ls', '--tenant', 'globex'], adminEnv);
    expect(r.stdout).not.toMatch(/acme-only/);
    r = await yh('bucket', 'ls', '--tenant', 'globex');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^yunhai: AccessDenied: /);
  });
});
