import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestControlPlane, type TestControlPlane } from '../src/test-support/control-plane.js';

/**
 * Unmodified third-party S3 clients against the s3 listener: rclone and s3cmd (Debian packages;
 * each suite skips when its binary is missing, CI installs both).
 */
const run = promisify(execFile);
const which = (bin: string) =>
  (process.env.PATH ?? '').split(delimiter).some((d) => d && existsSync(join(d, bin)));

/** A small tree with nested dirs, an empty file, a Unicode name and a multi-chunk file. */
function makeTree(root: string): Record<string, Buffer> {
  const files: Record<string, Buffer> = {
    'a.txt': Buffer.from('alpha\n'),
    'empty.bin': Buffer.alloc(0),
    'dir/b.txt': Buffer.from('bravo\n'),
    'dir/sub/c.bin': randomBytes(300 * 1024),
    'dir/云海 notes.txt': Buffer.from('unicode\n'),
    'big.bin': randomBytes(7 * 1024 * 1024 + 17),
  };
  for (const [rel, data] of Object.entries(files)) {
    mkdirSync(join(root, rel, '..'), { recursive: true });
    writeFileSync(join(root, rel), data);
  }
  return files;
}

describe.skipIf(!which('rclone'))('rclone against the s3 listener', () => {
  let cp: TestControlPlane;
  let dir: string;
  const rclone = async (...args: string[]) => {
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: dir,
      RCLONE_CONFIG: join(dir, 'rclone.conf'),
      RCLONE_CONFIG_Y_TYPE: 's3',
      RCLONE_CONFIG_Y_PROVIDER: 'Other',
      RCLONE_CONFIG_Y_ENV_AUTH: 'false',
      RCLONE_CONFIG_Y_ACCESS_KEY_ID: cp.root.accessKeyId,
      RCLONE_CONFIG_Y_SECRET_ACCESS_KEY: cp.root.secretAccessKey,
      RCLONE_CONFIG_Y_ENDPOINT: cp.endpoints.s3,
      RCLONE_CONFIG_Y_REGION: 'us-east-1',
      RCLONE_CONFIG_Y_FORCE_PATH_STYLE: 'true',
      // Multipart above 5 MiB, so big.bin goes up in two parts.
      RCLONE_CONFIG_Y_UPLOAD_CUTOFF: '5M',
      RCLONE_CONFIG_Y_CHUNK_SIZE: '5M',
    };
    // AWS_CA_BUNDLE (set on some machines) would make rclone's TLS setup fail even for http.
    delete env.AWS_CA_BUNDLE;
    const { stdout } = await run('rclone', ['--retries', '1', '--low-level-retries', '1', ...args], {
      env,
      maxBuffer: 16 * 1024 * 1024,
    });
    return stdout;
  };

  beforeAll(async () => {
    cp = await startTestControlPlane();
    dir = mkdtempSync(join(tmpdir(), 'yunhai-rclone-'));
    writeFileSync(join(dir, 'rclone.conf'), '');
  });
  afterAll(async () => {
    await cp?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('copies a tree up and down, checks it, syncs changes both ways and deletes', async () => {
    const src = join(dir, 'src');
    const files = makeTree(src);
    await rclone('mkdir', 'y:rc-tree');
    await rclone('copy', src, 'y:rc-tree/data');
    const listed = (await rclone('lsf', '-R', '--files-only', 'y:rc-tree/data')).trim().split('\n').sort();
    expect(listed).toEqual(Object.keys(files).sort());
    // size + MD5 (ETag, or the md5 rclone stored in metadata for its multipart upload) per file.
    await rclone('check', src, 'y:rc-tree/data');

    const down = join(dir, 'down');
    await rclone('copy', 'y:rc-tree/data', down);
    for (const [rel, data] of Object.entries(files))
      expect(readFileSync(join(down, rel)).equals(data)).toBe(true);

    // Local changes: one changed, one removed, one added; sync makes the bucket match.
    writeFileSync(join(src, 'a.txt'), 'alpha, changed\n');
    rmSync(join(src, 'dir/b.txt'));
    writeFileSync(join(src, 'dir/new.txt'), 'new\n');
    await rclone('sync', src, 'y:rc-tree/data');
    await rclone('check', src, 'y:rc-tree/data');
    expect(await rclone('cat', 'y:rc-tree/data/a.txt')).toBe('alpha, changed\n');
    const after = (await rclone('lsf', '-R', '--files-only', 'y:rc-tree/data')).trim().split('\n');
    expect(after).toContain('dir/new.txt');
    expect(after).not.toContain('dir/b.txt');

    // And back down: the old copy is brought in line.
    await rclone('sync', 'y:rc-tree/data', down);
    await rclone('check', src, down);

    await rclone('delete', 'y:rc-tree/data/dir');
    expect((await rclone('lsf', '-R', '--files-only', 'y:rc-tree')).trim().split('\n').sort()).toEqual([
      'data/a.txt',
      'data/big.bin',
      'data/empty.bin',
    ]);
    await rclone('purge', 'y:rc-tree');
    expect(await rclone('lsd', 'y:')).not.toContain('rc-tree');
  }, 120_000);
});

describe.skipIf(!which('s3cmd'))('s3cmd against the s3 listener', () => {
  let cp: TestControlPlane;
  let dir: string;
  const s3cmd = async (...args: string[]) => {
    const host = new URL(cp.endpoints.s3).host;
    const { stdout } = await run(
      's3cmd',
      [
        '-c',
        join(dir, 's3cfg'),
        '--host',
        host,
        '--host-bucket',
        host,
        '--no-ssl',
        '--region',
        'us-east-1',
        '--multipart-chunk-size-mb',
        '5',
        ...args,
      ],
      { env: { PATH: process.env.PATH, HOME: dir }, maxBuffer: 16 * 1024 * 1024 },
    );
    return stdout;
  };

  beforeAll(async () => {
    cp = await startTestControlPlane();
    dir = mkdtempSync(join(tmpdir(), 'yunhai-s3cmd-'));
    writeFileSync(
      join(dir, 's3cfg'),
      `[default]\naccess_key = ${cp.root.accessKeyId}\nsecret_key = ${cp.root.secretAccessKey}\nsignature_v2 = False\n`,
      { mode: 0o600 },
    );
  });
  afterAll(async () => {
    await cp?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('mb, put (single and multipart), ls, get, del, rb', async () => {
    expect(await s3cmd('mb', 's3://s3cmd-bucket')).toContain("Bucket 's3://s3cmd-bucket/' created");
    const small = join(dir, 'small.txt');
    const big = join(dir, 'big.bin');
    writeFileSync(small, 'hello from s3cmd\n');
    const bigData = randomBytes(11 * 1024 * 1024);
    writeFileSync(big, bigData);
    await s3cmd('put', small, 's3://s3cmd-bucket/docs/small.txt');
    await s3cmd('put', big, 's3://s3cmd-bucket/big.bin');

    expect(await s3cmd('ls')).toContain('s3://s3cmd-bucket');
    const top = await s3cmd('ls', 's3://s3cmd-bucket');
    expect(top).toMatch(/DIR\s+s3:\/\/s3cmd-bucket\/docs\//);
    expect(top).toMatch(/11534336\s+s3:\/\/s3cmd-bucket\/big.bin/);
    expect(await s3cmd('ls', '--recursive', 's3://s3cmd-bucket')).toContain(
      's3://s3cmd-bucket/docs/small.txt',
    );

    await s3cmd('get', 's3://s3cmd-bucket/docs/small.txt', join(dir, 'small-copy.txt'));
    expect(readFileSync(join(dir, 'small-copy.txt'), 'utf8')).toBe('hello from s3cmd\n');
    await s3cmd('get', 's3://s3cmd-bucket/big.bin', join(dir, 'big-copy.bin'));
    expect(readFileSync(join(dir, 'big-copy.bin')).equals(bigData)).toBe(true);

    await s3cmd('del', 's3://s3cmd-bucket/docs/small.txt');
    await s3cmd('del', 's3://s3cmd-bucket/big.bin');
    expect((await s3cmd('ls', '--recursive', 's3://s3cmd-bucket')).trim()).toBe('');
    expect(await s3cmd('rb', 's3://s3cmd-bucket')).toContain("Bucket 's3://s3cmd-bucket/' removed");
    expect(await s3cmd('ls')).not.toContain('s3cmd-bucket');
  }, 120_000);
});
