import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestControlPlane, type TestControlPlane } from '../../../test-support/control-plane.js';

const AWS = '/usr/bin/aws';
const run = promisify(execFile);

/** The unmodified AWS CLI against the s3 listener: high-level `s3` commands and `s3api`. */
describe.skipIf(!existsSync(AWS))('the AWS CLI against the s3 listener', () => {
  let cp: TestControlPlane;
  let dir: string;
  const aws = async (...args: string[]) => {
    const { stdout } = await run(AWS, ['--endpoint-url', cp.endpoints.s3, '--output', 'json', ...args], {
      env: {
        ...process.env,
        AWS_ACCESS_KEY_ID: cp.root.accessKeyId,
        AWS_SECRET_ACCESS_KEY: cp.root.secretAccessKey,
        AWS_DEFAULT_REGION: 'us-east-1',
        AWS_CONFIG_FILE: '/dev/null',
        AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
      },
      maxBuffer: 16 * 1024 * 1024,
    });
    return stdout;
  };

  beforeAll(async () => {
    cp = await startTestControlPlane();
    dir = mkdtempSync(join(tmpdir(), 'yunhai-awscli-'));
  });
  afterAll(async () => {
    await cp?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('makes a bucket, copies files up and down (multipart for large ones), syncs a tree and removes it all', {
    timeout: 120_000,
  }, async () => {
    await aws('s3', 'mb', 's3://cli-bucket');
    const big = randomBytes(9 * 1024 * 1024 + 5);
    writeFileSync(join(dir, 'big.bin'), big);
    await aws('s3', 'cp', '--only-show-errors', join(dir, 'big.bin'), 's3://cli-bucket/big.bin');
    await aws('s3', 'cp', '--only-show-errors', 's3://cli-bucket/big.bin', join(dir, 'big.out'));
    expect(readFileSync(join(dir, 'big.out')).equals(big)).toBe(true);
    const head = JSON.parse(await aws('s3api', 'head-object', '--bucket', 'cli-bucket', '--key', 'big.bin'));
    expect(head.ETag).toMatch(/-\d+"$/);

    const tree = join(dir, 'tree');
    mkdirSync(join(tree, 'sub', 'deeper'), { recursive: true });
    for (const f of ['a.txt', 'sub/b.txt', 'sub/deeper/c.txt', 'sub/ü ñ.txt'])
      writeFileSync(join(tree, f), `content of ${f}`);
    await aws('s3', 'sync', '--only-show-errors', tree, 's3://cli-bucket/tree');
    const listing = await aws('s3', 'ls', '--recursive', 's3://cli-bucket/tree/');
    expect(listing).toContain('tree/sub/deeper/c.txt');
    expect(listing).toContain('tree/sub/ü ñ.txt');
    // A second sync uploads nothing; sync down reproduces the tree.
    expect(await aws('s3', 'sync', tree, 's3://cli-bucket/tree')).toBe('');
    await aws('s3', 'sync', '--only-show-errors', 's3://cli-bucket/tree', join(dir, 'back'));
    expect(readFileSync(join(dir, 'back', 'sub', 'ü ñ.txt'), 'utf8')).toBe('content of sub/ü ñ.txt');

    const listed = JSON.parse(
      await aws(
        's3api',
        'list-objects-v2',
        '--bucket',
        'cli-bucket',
        '--prefix',
        'tree/',
        '--delimiter',
        '/',
      ),
    );
    expect(listed.CommonPrefixes.map((p: { Prefix: string }) => p.Prefix)).toEqual(['tree/sub/']);
    await aws(
      's3api',
      'put-bucket-versioning',
      '--bucket',
      'cli-bucket',
      '--versioning-configuration',
      'Status=Enabled',
    );
    await aws('s3', 'rm', '--only-show-errors', '--recursive', 's3://cli-bucket/');
    const versions = JSON.parse(await aws('s3api', 'list-object-versions', '--bucket', 'cli-bucket'));
    expect(versions.DeleteMarkers.length).toBe(5);
    await expect(aws('s3', 'rb', 's3://cli-bucket')).rejects.toThrow(/BucketNotEmpty/);
  });
});
