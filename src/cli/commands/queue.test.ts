import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliAgainst } from '../../test-support/cli.js';
import { startTestControlPlane, type TestControlPlane } from '../../test-support/control-plane.js';

describe('yunhai queue', () => {
  let cp: TestControlPlane;
  let cli: ReturnType<typeof cliAgainst>;
  const yh = (...argv: string[]) => cli.yh(...argv);
  const json = <T>(...argv: string[]) => cli.json<T>(...argv);

  beforeAll(async () => {
    cp = await startTestControlPlane();
    cli = cliAgainst(cp, 'yunhai-cli-queue-');
  });
  afterAll(async () => {
    await cp?.stop();
    cli?.cleanup();
  });

  it('creates, lists, sends, receives, shows attributes, purges and deletes queues', async () => {
    const q = await json<{ name: string; url: string }>(
      'queue',
      'create',
      'jobs',
      '--attribute',
      'VisibilityTimeout=5',
    );
    expect(q.url).toMatch(new RegExp(`^${cp.endpoints.sqs}/\\d{12}/jobs$`));
    expect((await yh('queue', 'list')).stdout).toContain('jobs');
    expect(
      (await json<{ messageId: string }>('queue', 'send', 'jobs', 'hello', '--attribute', 'k=v')).messageId,
    ).toMatch(/-/);
    const got = await json<{ items: { body: string }[] }>(
      'queue',
      'receive',
      'jobs',
      '--max',
      '10',
      '--delete',
    );
    expect(got.items.map((m) => m.body)).toEqual(['hello']);
    const attrs = await yh('queue', 'attributes', 'jobs', '--set', 'DelaySeconds=2');
    expect(attrs.stdout).toMatch(/DelaySeconds\s+2/);
    expect(attrs.stdout).toMatch(/VisibilityTimeout\s+5/);
    await yh('queue', 'send', 'jobs', 'later');
    expect((await yh('queue', 'purge', 'jobs')).code).toBe(2);
    expect((await yh('queue', 'purge', 'jobs', '--yes')).code).toBe(0);
    expect((await yh('queue', 'delete', 'jobs', '--yes')).code).toBe(0);
    expect((await yh('queue', 'list')).stdout).toContain('No queues.');
  });

  it('moves dead letters back to their source queue', async () => {
    const dlq = await json<{ arn: string }>('queue', 'create', 'work-dlq');
    await json(
      'queue',
      'create',
      'work',
      '--attribute',
      `RedrivePolicy={"deadLetterTargetArn":"${dlq.arn}","maxReceiveCount":1}`,
      '--attribute',
      'VisibilityTimeout=0',
    );
    await yh('queue', 'send', 'work', 'poison');
    expect((await json<{ items: unknown[] }>('queue', 'receive', 'work')).items).toHaveLength(1);
    expect((await json<{ items: unknown[] }>('queue', 'receive', 'work')).items).toHaveLength(0);
    const r = await yh('queue', 'redrive', 'work-dlq');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/RUNNING|COMPLETED/);
    for (let i = 0; i < 50; i++) {
      const got = await json<{ items: { body: string }[] }>('queue', 'receive', 'work', '--wait', '1');
      if (got.items.length > 0) {
        expect(got.items[0]!.body).toBe('poison');
        return;
      }
    }
    throw new Error('the dead letter never came back');
  });
});
