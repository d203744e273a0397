import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import {
  AddPermissionCommand,
  CancelMessageMoveTaskCommand,
  ChangeMessageVisibilityBatchCommand,
  ChangeMessageVisibilityCommand,
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  DeleteMessageCommand,
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  ListDeadLetterSourceQueuesCommand,
  ListMessageMoveTasksCommand,
  ListQueuesCommand,
  ListQueueTagsCommand,
  PurgeQueueCommand,
  ReceiveMessageCommand,
  RemovePermissionCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  SetQueueAttributesCommand,
  SQSClient,
  StartMessageMoveTaskCommand,
  TagQueueCommand,
  UntagQueueCommand,
} from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signRequest } from '../../../platform/auth/sigv4.js';
import { until } from '../../../test-support/api.js';
import { startTestControlPlane, type TestControlPlane } from '../../../test-support/control-plane.js';

const run = promisify(execFile);

interface Keys {
  accessKeyId: string;
  secretAccessKey: string;
}

/** What the SDK makes of an SQS error: its name (JSON __type), query code and status. */
async function sqsError(p: Promise<unknown>): Promise<{ name: string; code: string; status: number }> {
  try {
    await p;
  } catch (e) {
    const err = e as { name: string; Code?: string; $metadata?: { httpStatusCode?: number } };
    return { name: err.name, code: err.Code ?? err.name, status: err.$metadata?.httpStatusCode ?? 0 };
  }
  throw new Error('expected the call to fail');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The SQS listener end to end through @aws-sdk/client-sqs (JSON 1.0), /usr/bin/aws sqs (awscli 2.9,
 * Query protocol) and hand-signed requests, once per SQL dialect.
 */
export function runSqsApiSuite(dialect: 'sqlite' | 'postgres') {
  describe(`SQS API on ${dialect}`, () => {
    let cp: TestControlPlane;
    let acme: SQSClient;
    let globex: SQSClient;
    let acmeKeys: Keys;
    let globexKeys: Keys;
    let acmeAccount: string;
    let globexAccount: string;
    let tinyKeys: Keys;

    beforeAll(async () => {
      cp = await startTestControlPlane({ dialect, meterIntervalMs: 200 });
      const admin = await cp.iam.systemContext('sqs-fixture');
      const tenant = async (name: string, owner: string, quotas?: Record<string, number>) => {
        const t = await cp.iam.createTenant(admin, {
          name,
          owner: { name: owner, password: `${owner}-password-1` },
          ...(quotas ? { quotas } : {}),
        });
        const k = await cp.iam.createAccessKey(admin, t.owner!.id);
        return {
          keys: { accessKeyId: k.accessKeyId, secretAccessKey: k.secretAccessKey },
          account: t.tenant.accountId,
        };
      };
      const a = await tenant('acme', 'alice');
      const g = await tenant('globex', 'gina');
      tinyKeys = (await tenant('tiny', 'tom', { queues: 2 })).keys;
      acmeKeys = a.keys;
      globexKeys = g.keys;
      acmeAccount = a.account;
      globexAccount = g.account;
      acme = client(acmeKeys);
      globex = client(globexKeys);
    });
    afterAll(async () => cp?.stop());

    const client = (credentials: Keys) =>
      new SQSClient({ endpoint: cp.endpoints.sqs, region: 'us-east-1', credentials, maxAttempts: 1 });
    const create = async (c: SQSClient, QueueName: string, Attributes?: Record<string, string>) =>
      (await c.send(new CreateQueueCommand({ QueueName, ...(Attributes ? { Attributes } : {}) }))).QueueUrl!;
    const attrs = async (QueueUrl: string, ...names: string[]) =>
      (
        await acme.send(
          new GetQueueAttributesCommand({
            QueueUrl,
            AttributeNames: (names.length ? names : ['All']) as never,
          }),
        )
      ).Attributes!;

    /** Signs and sends a raw request to the sqs listener. */
    async function raw(keys: Keys | null, body: string, headers: Record<string, string>) {
      const url = new URL(`${cp.endpoints.sqs}/`);
      const h = { ...headers };
      if (keys)
        Object.assign(
          h,
          signRequest({
            method: 'POST',
            url,
            headers: h,
            body,
            ...keys,
            region: 'us-east-1',
            service: 'sqs',
          }),
        );
      const res = await fetch(url, { method: 'POST', headers: h, body });
      return { status: res.status, text: await res.text(), headers: res.headers };
    }
    const jsonCall = (keys: Keys | null, action: string, input: unknown) =>
      raw(keys, JSON.stringify(input), {
        'content-type': 'application/x-amz-json-1.0',
        'x-amz-target': `AmazonSQS.${action}`,
      });
    const queryCall = (keys: Keys | null, params: Record<string, string>) =>
      raw(keys, new URLSearchParams(params).toString(), {
        'content-type': 'application/x-www-form-urlencoded',
      });

    /** `/usr/bin/aws sqs ...` (Debian awscli 2.9: Query protocol) as `keys`; answers parsed JSON or the error. */
    async function aws(
      keys: Keys,
      ...args: string[]
    ): Promise<{ ok: boolean; json: Record<string, unknown>; err: string }> {
      try {
        const { stdout } = await run(
          '/usr/bin/aws',
          ['--endpoint-url', cp.endpoints.sqs, '--output', 'json', 'sqs', ...args],
          {
            env: {
              PATH: process.env.PATH,
              HOME: cp.dataDir,
              AWS_ACCESS_KEY_ID: keys.accessKeyId,
              AWS_SECRET_ACCESS_KEY: keys.secretAccessKey,
              AWS_DEFAULT_REGION: 'us-east-1',
              AWS_EC2_METADATA_DISABLED: 'true',
              AWS_PAGER: '',
            },
          },
        );
        return {
          ok: true,
          json: stdout.trim() ? (JSON.parse(stdout) as Record<string, unknown>) : {},
          err: '',
        };
      } catch (e) {
        return { ok: false, json: {}, err: String((e as { stderr?: string }).stderr ?? e) };
      }
    }

    it('creates queues idempotently, finds, lists and deletes them, each tenant seeing only its own', async () => {
      const url = await create(acme, 'orders', { VisibilityTimeout: '45' });
      expect(url).toBe(`${cp.endpoints.sqs}/${acmeAccount}/orders`);
      expect(await create(acme, 'orders', { VisibilityTimeout: '45' })).toBe(url);
      expect(await create(acme, 'orders')).toBe(url);
      expect(
        await sqsError(
          acme.send(new CreateQueueCommand({ QueueName: 'orders', Attributes: { VisibilityTimeout: '46' } })),
        ),
      ).toEqual({
        name: 'QueueNameExists',
        code: 'QueueAlreadyExists',
        status: 400,
      });
      for (const bad of ['has space', 'x'.repeat(81), 'dot.name', ''])
        expect((await sqsError(acme.send(new CreateQueueCommand({ QueueName: bad })))).code).toMatch(
          /InvalidParameterValue|MissingParameter/,
        );
      expect(
        (
          await sqsError(
            acme.send(new CreateQueueCommand({ QueueName: 'q', Attributes: { Bogus: '1' } as never })),
          )
        ).name,
      ).toBe('InvalidAttributeName');
      expect(
        (
          await sqsError(
            acme.send(new CreateQueueCommand({ QueueName: 'q', Attributes: { VisibilityTimeout: '43201' } })),
          )
        ).name,
      ).toBe('InvalidAttributeValue');
      expect((await acme.send(new GetQueueUrlCommand({ QueueName: 'orders' }))).QueueUrl).toBe(url);
      for (const n of ['list-a', 'list-b', 'list-c']) await create(acme, n);
      const page1 = await acme.send(new ListQueuesCommand({ QueueNamePrefix: 'list-', MaxResults: 2 }));
      expect(page1.QueueUrls).toEqual([
        `${cp.endpoints.sqs}/${acmeAccount}/list-a`,
        `${cp.endpoints.sqs}/${acmeAccount}/list-b`,
      ]);
      const page2 = await acme.send(
        new ListQueuesCommand({ QueueNamePrefix: 'list-', MaxResults: 2, NextToken: page1.NextToken! }),
      );
      expect(page2.QueueUrls).toEqual([`${cp.endpoints.sqs}/${acmeAccount}/list-c`]);
      expect(page2.NextToken).toBeUndefined();
      expect((await globex.send(new ListQueuesCommand({}))).QueueUrls ?? []).toEqual([]);
      // Another tenant's queue does not exist for globex, whether by URL or by name and owner.
      expect(
        await sqsError(globex.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'x' }))),
      ).toEqual({
        name: 'QueueDoesNotExist',
        code: 'AWS.SimpleQueueService.NonExistentQueue',
        status: 400,
      });
      expect(
        (
          await sqsError(
            globex.send(new GetQueueUrlCommand({ QueueName: 'orders', QueueOwnerAWSAccountId: acmeAccount })),
          )
        ).name,
      ).toBe('QueueDoesNotExist');
      await acme.send(new DeleteQueueCommand({ QueueUrl: `${cp.endpoints.sqs}/${acmeAccount}/list-c` }));
      expect(
        (
          await sqsError(
            acme.send(new DeleteQueueCommand({ QueueUrl: `${cp.endpoints.sqs}/${acmeAccount}/list-c` })),
          )
        ).name,
      ).toBe('QueueDoesNotExist');
      expect(
        (await sqsError(acme.send(new GetQueueAttributesCommand({ QueueUrl: 'http://x/not-a-queue-url' }))))
          .name,
      ).toBe('InvalidAddress');
    });

    it('sends and receives messages with attributes, digests the SDK verifies, and system attributes on request', async () => {
      const QueueUrl = await create(acme, 'messages');
      const sent = await acme.send(
        new SendMessageCommand({
          QueueUrl,
          MessageBody: 'This is a test message',
          MessageAttributes: {
            s: { DataType: 'String', StringValue: 'a string' },
            n: { DataType: 'Number.float', StringValue: '3.14' },
            b: { DataType: 'Binary', BinaryValue: Buffer.from([0, 1, 2, 255]) },
            'custom.x': { DataType: 'String.custom', StringValue: 'c' },
          },
          MessageSystemAttributes: {
            AWSTraceHeader: { DataType: 'String', StringValue: 'Root=1-5759e988-bd862e3fe1be46a994272793' },
          },
        }),
      );
      expect(sent.MD5OfMessageBody).toBe('fafb00f5732ab283681e124bf8747ed1');
      expect(sent.MD5OfMessageAttributes).toMatch(/^[0-9a-f]{32}$/);
      expect(sent.MD5OfMessageSystemAttributes).toMatch(/^[0-9a-f]{32}$/);
      const got = await acme.send(
        new ReceiveMessageCommand({
          QueueUrl,
          MessageAttributeNames: ['All'],
          MessageSystemAttributeNames: ['All'],
        }),
      );
      const m = got.Messages![0]!;
      expect(m.MessageId).toBe(sent.MessageId);
      expect(m.Body).toBe('This is a test message');
      expect(m.MD5OfMessageAttributes).toBe(sent.MD5OfMessageAttributes);
      expect(m.MessageAttributes?.b?.BinaryValue).toEqual(new Uint8Array([0, 1, 2, 255]));
      expect(m.MessageAttributes?.n).toEqual({ DataType: 'Number.float', StringValue: '3.14' });
      expect(m.Attributes?.ApproximateReceiveCount).toBe('1');
      expect(m.Attributes?.AWSTraceHeader).toBe('Root=1-5759e988-bd862e3fe1be46a994272793');
      expect(Number(m.Attributes?.SentTimestamp)).toBeGreaterThan(Date.now() - 60_000);
      expect(m.Attributes?.SenderId).toMatch(/^AIDA/);
      await acme.send(new DeleteMessageCommand({ QueueUrl, ReceiptHandle: m.ReceiptHandle! }));

      // Selecting attributes: a prefix, a name, nothing.
      await acme.send(
        new SendMessageCommand({
          QueueUrl,
          MessageBody: 'second',
          MessageAttributes: {
            'app.one': { DataType: 'String', StringValue: '1' },
            other: { DataType: 'String', StringValue: '2' },
          },
        }),
      );
      const sel = await acme.send(
        new ReceiveMessageCommand({
          QueueUrl,
          MessageAttributeNames: ['app.*'],
          AttributeNames: ['SentTimestamp'] as never,
        }),
      );
      expect(Object.keys(sel.Messages![0]!.MessageAttributes!)).toEqual(['app.one']);
      expect(Object.keys(sel.Messages![0]!.Attributes!)).toEqual(['SentTimestamp']);
      await acme.send(
        new DeleteMessageCommand({ QueueUrl, ReceiptHandle: sel.Messages![0]!.ReceiptHandle! }),
      );

      // Invalid bodies and attributes.
      expect(
        (await sqsError(acme.send(new SendMessageCommand({ QueueUrl, MessageBody: 'bad \u0001 char' }))))
          .name,
      ).toBe('InvalidMessageContents');
      expect(
        (await sqsError(acme.send(new SendMessageCommand({ QueueUrl, MessageBody: 'x'.repeat(262_145) }))))
          .code,
      ).toBe('InvalidParameterValue');
      expect(
        (
          await sqsError(
            acme.send(
              new SendMessageCommand({
                QueueUrl,
                MessageBody: 'x',
                MessageAttributes: { n: { DataType: 'Number', StringValue: 'abc' } },
              }),
            ),
          )
        ).code,
      ).toBe('InvalidParameterValue');
    });

    it('sends, deletes and changes visibility in batches with per-entry failures and AWS batch errors', async () => {
      const QueueUrl = await create(acme, 'batches');
      const r = await acme.send(
        new SendMessageBatchCommand({
          QueueUrl,
          Entries: [
            { Id: 'one', MessageBody: 'b1' },
            { Id: 'two', MessageBody: 'bad \u0002' },
            { Id: 'three', MessageBody: 'b3', DelaySeconds: 0 },
          ],
        }),
      );
      expect(r.Successful?.map((s) => s.Id)).toEqual(['one', 'three']);
      expect(r.Failed).toEqual([
        expect.objectContaining({ Id: 'two', SenderFault: true, Code: 'InvalidMessageContents' }),
      ]);
      expect((await sqsError(acme.send(new SendMessageBatchCommand({ QueueUrl, Entries: [] })))).name).toBe(
        'EmptyBatchRequest',
      );
      expect(
        (
          await sqsError(
            acme.send(
              new SendMessageBatchCommand({
                QueueUrl,
                Entries: Array.from({ length: 11 }, (_, i) => ({ Id: `m${i}`, MessageBody: 'x' })),
              }),
            ),
          )
        ).name,
      ).toBe('TooManyEntriesInBatchRequest');
      expect(
        (
          await sqsError(
            acme.send(
              new SendMessageBatchCommand({
                QueueUrl,
                Entries: [
                  { Id: 'a', MessageBody: 'x' },
                  { Id: 'a', MessageBody: 'y' },
                ],
              }),
            ),
          )
        ).name,
      ).toBe('BatchEntryIdsNotDistinct');
      expect(
        (
          await sqsError(
            acme.send(
              new SendMessageBatchCommand({ QueueUrl, Entries: [{ Id: 'bad id!', MessageBody: 'x' }] }),
            ),
          )
        ).name,
      ).toBe('InvalidBatchEntryId');
      expect(
        (
          await sqsError(
            acme.send(
              new SendMessageBatchCommand({
                QueueUrl,
                Entries: [
                  { Id: 'a', MessageBody: 'x'.repeat(200_000) },
                  { Id: 'b', MessageBody: 'y'.repeat(100_000) },
                ],
              }),
            ),
          )
        ).name,
      ).toBe('BatchRequestTooLong');

      const got = await acme.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10 }));
      expect(got.Messages?.map((m) => m.Body).sort()).toEqual(['b1', 'b3']);
      const [a, b] = got.Messages!;
      const vis = await acme.send(
        new ChangeMessageVisibilityBatchCommand({
          QueueUrl,
          Entries: [
            { Id: 'a', ReceiptHandle: a!.ReceiptHandle!, VisibilityTimeout: 0 },
            { Id: 'x', ReceiptHandle: 'garbage-handle', VisibilityTimeout: 0 },
          ],
        }),
      );
      expect(vis.Successful?.map((s) => s.Id)).toEqual(['a']);
      expect(vis.Failed?.[0]).toEqual(expect.objectContaining({ Id: 'x', Code: 'ReceiptHandleIsInvalid' }));
      const again = await acme.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10 }));
      expect(again.Messages?.map((m) => m.Body)).toEqual([a!.Body]);
      expect(again.Messages?.[0]?.ReceiptHandle).not.toBe(a!.ReceiptHandle);
      const del = await acme.send(
        new DeleteMessageBatchCommand({
          QueueUrl,
          Entries: [
            { Id: 'first', ReceiptHandle: again.Messages![0]!.ReceiptHandle! },
            { Id: 'second', ReceiptHandle: b!.ReceiptHandle! },
          ],
        }),
      );
      expect(del.Successful?.map((s) => s.Id)).toEqual(['first', 'second']);
      expect(
        await attrs(QueueUrl, 'ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'),
      ).toEqual({
        ApproximateNumberOfMessages: '0',
        ApproximateNumberOfMessagesNotVisible: '0',
      });
    });

    it('hides received messages for the visibility timeout and delays messages per queue and per message', async () => {
      const QueueUrl = await create(acme, 'visibility', { VisibilityTimeout: '1' });
      await acme.send(new SendMessageCommand({ QueueUrl, MessageBody: 'v' }));
      const first = (await acme.send(new ReceiveMessageCommand({ QueueUrl }))).Messages![0]!;
      expect((await acme.send(new ReceiveMessageCommand({ QueueUrl }))).Messages).toBeUndefined();
      expect(
        (await attrs(QueueUrl, 'ApproximateNumberOfMessagesNotVisible'))
          .ApproximateNumberOfMessagesNotVisible,
      ).toBe('1');
      await sleep(1100);
      const second = (
        await acme.send(
          new ReceiveMessageCommand({ QueueUrl, AttributeNames: ['ApproximateReceiveCount'] as never }),
        )
      ).Messages![0]!;
      expect(second.MessageId).toBe(first.MessageId);
      expect(second.Attributes?.ApproximateReceiveCount).toBe('2');
      // The old receipt handle no longer changes visibility, the new one does.
      expect(
        (
          await sqsError(
            acme.send(
              new ChangeMessageVisibilityCommand({
                QueueUrl,
                ReceiptHandle: first.ReceiptHandle!,
                VisibilityTimeout: 5,
              }),
            ),
          )
        ).name,
      ).toBe('MessageNotInflight');
      await acme.send(
        new ChangeMessageVisibilityCommand({
          QueueUrl,
          ReceiptHandle: second.ReceiptHandle!,
          VisibilityTimeout: 30,
        }),
      );
      await sleep(1100);
      expect((await acme.send(new ReceiveMessageCommand({ QueueUrl }))).Messages).toBeUndefined();
      await acme.send(new DeleteMessageCommand({ QueueUrl, ReceiptHandle: second.ReceiptHandle! }));
      expect(
        (await sqsError(acme.send(new DeleteMessageCommand({ QueueUrl, ReceiptHandle: 'not-a-handle' }))))
          .name,
      ).toBe('ReceiptHandleIsInvalid');

      const delayed = await create(acme, 'delayed', { DelaySeconds: '1' });
      await acme.send(new SendMessageCommand({ QueueUrl: delayed, MessageBody: 'queue delay' }));
      await acme.send(
        new SendMessageCommand({ QueueUrl: delayed, MessageBody: 'no delay', DelaySeconds: 0 }),
      );
      await acme.send(
        new SendMessageCommand({ QueueUrl: delayed, MessageBody: 'own delay', DelaySeconds: 2 }),
      );
      expect(
        (await attrs(delayed, 'ApproximateNumberOfMessagesDelayed')).ApproximateNumberOfMessagesDelayed,
      ).toBe('2');
      const now = await acme.send(new ReceiveMessageCommand({ QueueUrl: delayed, MaxNumberOfMessages: 10 }));
      expect(now.Messages?.map((m) => m.Body)).toEqual(['no delay']);
      const later = await acme.send(
        new ReceiveMessageCommand({ QueueUrl: delayed, MaxNumberOfMessages: 10, WaitTimeSeconds: 3 }),
      );
      expect(later.Messages?.map((m) => m.Body)).toEqual(['queue delay']);
      await sleep(1200);
      const last = await acme.send(
        new ReceiveMessageCommand({ QueueUrl: delayed, MaxNumberOfMessages: 10, WaitTimeSeconds: 2 }),
      );
      expect(last.Messages?.map((m) => m.Body)).toEqual(['own delay']);
    });

    it('wakes a long poll as soon as a message arrives and ends an empty one at WaitTimeSeconds', async () => {
      const QueueUrl = await create(acme, 'long-poll');
      const waiting = acme.send(new ReceiveMessageCommand({ QueueUrl, WaitTimeSeconds: 10 }));
      await sleep(300);
      const t0 = Date.now();
      await acme.send(new SendMessageCommand({ QueueUrl, MessageBody: 'wake up' }));
      const got = await waiting;
      expect(got.Messages?.[0]?.Body).toBe('wake up');
      // Well under the 1 s re-check: the send itself woke the poll.
      expect(Date.now() - t0).toBeLessThan(700);
      const t1 = Date.now();
      expect(
        (await acme.send(new ReceiveMessageCommand({ QueueUrl, WaitTimeSeconds: 1 }))).Messages,
      ).toBeUndefined();
      expect(Date.now() - t1).toBeGreaterThanOrEqual(950);
      // The queue's ReceiveMessageWaitTimeSeconds applies when the request names none.
      await acme.send(
        new SetQueueAttributesCommand({ QueueUrl, Attributes: { ReceiveMessageWaitTimeSeconds: '1' } }),
      );
      const t2 = Date.now();
      await acme.send(new ReceiveMessageCommand({ QueueUrl }));
      expect(Date.now() - t2).toBeGreaterThanOrEqual(950);
      expect(
        (await sqsError(acme.send(new ReceiveMessageCommand({ QueueUrl, WaitTimeSeconds: 21 })))).code,
      ).toBe('InvalidParameterValue');
    });

    it('sweeps messages past their retention period', async () => {
      const QueueUrl = await create(acme, 'retention', { MessageRetentionPeriod: '60' });
      await acme.send(new SendMessageCommand({ QueueUrl, MessageBody: 'old' }));
      await acme.send(new SendMessageCommand({ QueueUrl, MessageBody: 'new' }));
      await cp.database.db
        .updateTable('queue_messages')
        .set({ expires_at: Date.now() - 1 })
        .where('body', '=', 'old')
        .execute();
      expect(await cp.queues.sweep()).toBeGreaterThanOrEqual(1);
      const got = await acme.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10 }));
      expect(got.Messages?.map((m) => m.Body)).toEqual(['new']);
    });

    it('moves a message received more than maxReceiveCount times to the dead-letter queue and moves it back', async () => {
      const dlq = await create(acme, 'orders-dlq');
      const dlqArn = (await attrs(dlq, 'QueueArn')).QueueArn!;
      const src = await create(acme, 'orders-src', {
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: 2 }),
        VisibilityTimeout: '0',
      });
      const srcArn = (await attrs(src, 'QueueArn')).QueueArn!;
      expect((await acme.send(new ListDeadLetterSourceQueuesCommand({ QueueUrl: dlq }))).queueUrls).toEqual([
        src,
      ]);
      await acme.send(new SendMessageCommand({ QueueUrl: src, MessageBody: 'poison' }));
      for (let i = 0; i < 2; i++)
        expect((await acme.send(new ReceiveMessageCommand({ QueueUrl: src }))).Messages?.[0]?.Body).toBe(
          'poison',
        );
      expect((await acme.send(new ReceiveMessageCommand({ QueueUrl: src }))).Messages).toBeUndefined();
      const dead = await acme.send(
        new ReceiveMessageCommand({
          QueueUrl: dlq,
          MessageSystemAttributeNames: ['DeadLetterQueueSourceArn'],
          VisibilityTimeout: 0,
        }),
      );
      expect(dead.Messages?.[0]?.Body).toBe('poison');
      expect(dead.Messages?.[0]?.Attributes?.DeadLetterQueueSourceArn).toBe(srcArn);

      // Redrive back to the source with a message move task.
      await acme.send(new SetQueueAttributesCommand({ QueueUrl: src, Attributes: { RedrivePolicy: '' } }));
      await acme.send(
        new SetQueueAttributesCommand({
          QueueUrl: src,
          Attributes: { RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: 5 }) },
        }),
      );
      const task = await acme.send(new StartMessageMoveTaskCommand({ SourceArn: dlqArn }));
      expect(task.TaskHandle).toBeTruthy();
      const done = await until(
        'the move task to complete',
        async () => {
          const r = await acme.send(new ListMessageMoveTasksCommand({ SourceArn: dlqArn, MaxResults: 10 }));
          return r.Results?.[0]?.Status === 'COMPLETED' ? r.Results[0] : undefined;
        },
        10_000,
        100,
      );
      expect(done.ApproximateNumberOfMessagesMoved).toBe(1);
      expect((await acme.send(new ReceiveMessageCommand({ QueueUrl: src }))).Messages?.[0]?.Body).toBe(
        'poison',
      );
      expect(
        (await sqsError(acme.send(new CancelMessageMoveTaskCommand({ TaskHandle: task.TaskHandle! })))).name,
      ).toBe('UnsupportedOperation');
      expect((await sqsError(acme.send(new StartMessageMoveTaskCommand({ SourceArn: srcArn })))).code).toBe(
        'InvalidParameterValue',
      );

      // A running task can be cancelled.
      for (let i = 0; i < 5; i++)
        await acme.send(new SendMessageCommand({ QueueUrl: dlq, MessageBody: `d${i}` }));
      const slow = await acme.send(
        new StartMessageMoveTaskCommand({
          SourceArn: dlqArn,
          DestinationArn: srcArn,
          MaxNumberOfMessagesPerSecond: 1,
        }),
      );
      expect((await sqsError(acme.send(new StartMessageMoveTaskCommand({ SourceArn: dlqArn })))).name).toBe(
        'UnsupportedOperation',
      );
      const cancelled = await acme.send(new CancelMessageMoveTaskCommand({ TaskHandle: slow.TaskHandle! }));
      expect(cancelled.ApproximateNumberOfMessagesMoved).toBeLessThan(5);
      expect(
        (await acme.send(new ListMessageMoveTasksCommand({ SourceArn: dlqArn }))).Results?.[0]?.Status,
      ).toBe('CANCELLED');

      // A dead-letter queue that denies redrive refuses to become one.
      const closed = await create(acme, 'closed-dlq', {
        RedriveAllowPolicy: JSON.stringify({ redrivePermission: 'denyAll' }),
      });
      const closedArn = (await attrs(closed, 'QueueArn')).QueueArn!;
      expect(
        (
          await sqsError(
            acme.send(
              new CreateQueueCommand({
                QueueName: 'refused-src',
                Attributes: {
                  RedrivePolicy: JSON.stringify({ deadLetterTargetArn: closedArn, maxReceiveCount: 1 }),
                },
              }),
            ),
          )
        ).name,
      ).toBe('InvalidAttributeValue');
    });

    it('keeps FIFO order per group with one in-flight batch per group, deduplicates for 5 minutes and replays receive attempts', async () => {
      const QueueUrl = await create(acme, 'jobs.fifo', {
        FifoQueue: 'true',
        ContentBasedDeduplication: 'true',
      });
      expect(
        (
          await sqsError(
            acme.send(new CreateQueueCommand({ QueueName: 'not-fifo', Attributes: { FifoQueue: 'true' } })),
          )
        ).code,
      ).toBe('InvalidParameterValue');
      const sent = [];
      for (const [g, body] of [
        ['a', 'a1'],
        ['b', 'b1'],
        ['a', 'a2'],
        ['b', 'b2'],
        ['a', 'a3'],
      ] as const)
        sent.push(
          await acme.send(new SendMessageCommand({ QueueUrl, MessageBody: body, MessageGroupId: g })),
        );
      expect(sent.map((s) => s.SequenceNumber)).toEqual([...sent.map((s) => s.SequenceNumber)].sort());
      // Same content within 5 minutes: accepted, not enqueued again, same message id.
      const dup = await acme.send(
        new SendMessageCommand({ QueueUrl, MessageBody: 'a1', MessageGroupId: 'a' }),
      );
      expect(dup.MessageId).toBe(sent[0]!.MessageId);
      const byId = await acme.send(
        new SendMessageCommand({
          QueueUrl,
          MessageBody: 'other',
          MessageGroupId: 'c',
          MessageDeduplicationId: 'k1',
        }),
      );
      expect(
        (
          await acme.send(
            new SendMessageCommand({
              QueueUrl,
              MessageBody: 'other2',
              MessageGroupId: 'c',
              MessageDeduplicationId: 'k1',
            }),
          )
        ).MessageId,
      ).toBe(byId.MessageId);
      expect((await sqsError(acme.send(new SendMessageCommand({ QueueUrl, MessageBody: 'x' })))).code).toBe(
        'MissingParameter',
      );
      expect(
        (
          await sqsError(
            acme.send(
              new SendMessageCommand({ QueueUrl, MessageBody: 'x', MessageGroupId: 'a', DelaySeconds: 5 }),
            ),
          )
        ).code,
      ).toBe('InvalidParameterValue');

      const r1 = await acme.send(
        new ReceiveMessageCommand({
          QueueUrl,
          MaxNumberOfMessages: 2,
          ReceiveRequestAttemptId: 'attempt-1',
          MessageSystemAttributeNames: ['All'],
        }),
      );
      expect(r1.Messages?.map((m) => m.Body)).toEqual(['a1', 'a2']);
      expect(r1.Messages?.[0]?.Attributes?.MessageGroupId).toBe('a');
      expect(r1.Messages?.[0]?.Attributes?.SequenceNumber).toBe(sent[0]!.SequenceNumber);
      // A retry of the same attempt answers the same messages and handles.
      const retry = await acme.send(
        new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 2, ReceiveRequestAttemptId: 'attempt-1' }),
      );
      expect(retry.Messages?.map((m) => m.ReceiptHandle)).toEqual(r1.Messages?.map((m) => m.ReceiptHandle));
      // Group a is in flight: the next receive skips it.
      const r2 = await acme.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10 }));
      expect(r2.Messages?.map((m) => m.Body)).toEqual(['b1', 'b2', 'other']);
      expect(
        (await acme.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10 }))).Messages,
      ).toBeUndefined();
      for (const m of r1.Messages!)
        await acme.send(new DeleteMessageCommand({ QueueUrl, ReceiptHandle: m.ReceiptHandle! }));
      const r3 = await acme.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10 }));
      expect(r3.Messages?.map((m) => m.Body)).toEqual(['a3']);
      const all = await attrs(QueueUrl);
      expect(all).toMatchObject({
        FifoQueue: 'true',
        ContentBasedDeduplication: 'true',
        DeduplicationScope: 'queue',
        FifoThroughputLimit: 'perQueue',
      });
      await acme.send(
        new SetQueueAttributesCommand({
          QueueUrl,
          Attributes: { DeduplicationScope: 'messageGroup', FifoThroughputLimit: 'perMessageGroupId' },
        }),
      );
      expect((await attrs(QueueUrl, 'FifoThroughputLimit')).FifoThroughputLimit).toBe('perMessageGroupId');
    });

    it('purges a queue once per 60 seconds', async () => {
      const QueueUrl = await create(acme, 'purge-me');
      await acme.send(
        new SendMessageBatchCommand({
          QueueUrl,
          Entries: [1, 2, 3].map((i) => ({ Id: `m${i}`, MessageBody: `p${i}` })),
        }),
      );
      await acme.send(new PurgeQueueCommand({ QueueUrl }));
      expect((await attrs(QueueUrl, 'ApproximateNumberOfMessages')).ApproximateNumberOfMessages).toBe('0');
      expect(await sqsError(acme.send(new PurgeQueueCommand({ QueueUrl })))).toEqual({
        name: 'PurgeQueueInProgress',
        code: 'AWS.SimpleQueueService.PurgeQueueInProgress',
        status: 403,
      });
    });

    it('tags queues and lets another account in only through the queue policy', async () => {
      const QueueUrl = await create(acme, 'shared');
      await acme.send(new TagQueueCommand({ QueueUrl, Tags: { team: 'core', env: 'test' } }));
      await acme.send(new UntagQueueCommand({ QueueUrl, TagKeys: ['env'] }));
      expect((await acme.send(new ListQueueTagsCommand({ QueueUrl }))).Tags).toEqual({ team: 'core' });
      expect((await sqsError(globex.send(new SendMessageCommand({ QueueUrl, MessageBody: 'x' })))).name).toBe(
        'QueueDoesNotExist',
      );
      await acme.send(
        new AddPermissionCommand({
          QueueUrl,
          Label: 'globex-send',
          AWSAccountIds: [globexAccount],
          Actions: ['SendMessage', 'GetQueueUrl'],
        }),
      );
      expect(
        (
          await globex.send(
            new GetQueueUrlCommand({ QueueName: 'shared', QueueOwnerAWSAccountId: acmeAccount }),
          )
        ).QueueUrl,
      ).toBe(QueueUrl);
      await globex.send(new SendMessageCommand({ QueueUrl, MessageBody: 'from globex' }));
      expect((await sqsError(globex.send(new ReceiveMessageCommand({ QueueUrl })))).name).toBe(
        'QueueDoesNotExist',
      );
      expect((await acme.send(new ReceiveMessageCommand({ QueueUrl }))).Messages?.[0]?.Body).toBe(
        'from globex',
      );
      expect(JSON.parse((await attrs(QueueUrl, 'Policy')).Policy!).Statement[0].Sid).toBe('globex-send');
      expect(
        (
          await sqsError(
            acme.send(
              new AddPermissionCommand({
                QueueUrl,
                Label: 'globex-send',
                AWSAccountIds: [globexAccount],
                Actions: ['SendMessage'],
              }),
            ),
          )
        ).code,
      ).toBe('InvalidParameterValue');
      await acme.send(new RemovePermissionCommand({ QueueUrl, Label: 'globex-send' }));
      expect((await sqsError(globex.send(new SendMessageCommand({ QueueUrl, MessageBody: 'x' })))).name).toBe(
        'QueueDoesNotExist',
      );
    });

    it('refuses queues beyond the tenant quota and meters requests in 64 KiB chunks', async () => {
      const tiny = client(tinyKeys);
      await create(tiny, 't1');
      const t2 = await create(tiny, 't2');
      expect(await sqsError(tiny.send(new CreateQueueCommand({ QueueName: 't3' })))).toEqual({
        name: 'OverLimit',
        code: 'OverLimit',
        status: 403,
      });
      await tiny.send(new DeleteQueueCommand({ QueueUrl: t2 }));
      await create(tiny, 't3');

      const QueueUrl = await create(acme, 'metered');
      const queueId = (
        await cp.database.db
          .selectFrom('queues')
          .select('id')
          .where('name', '=', 'metered')
          .executeTakeFirstOrThrow()
      ).id;
      await acme.send(new SendMessageCommand({ QueueUrl, MessageBody: 'x'.repeat(100 * 1024) }));
      await acme.send(new SendMessageCommand({ QueueUrl, MessageBody: 'small' }));
      const total = await until(
        'usage to be flushed',
        async () => {
          const rows = await cp.database.db
            .selectFrom('usage_records')
            .select('quantity')
            .where('resource_id', '=', queueId)
            .where('meter', '=', 'sqs.requests')
            .execute();
          const sum = rows.reduce((n, r) => n + Number(r.quantity), 0);
          return sum >= 3 ? sum : undefined;
        },
        10_000,
        100,
      );
      expect(total).toBe(3);
    });

    it('audits queue changes, not messages', async () => {
      const QueueUrl = await create(acme, 'audited');
      await acme.send(new SetQueueAttributesCommand({ QueueUrl, Attributes: { DelaySeconds: '1' } }));
      await acme.send(new SendMessageCommand({ QueueUrl, MessageBody: 'not audited' }));
      await acme.send(new DeleteQueueCommand({ QueueUrl }));
      const rows = await cp.database.db
        .selectFrom('audit_events')
        .select(['action', 'outcome'])
        .where('resource', 'like', '%:audited')
        .orderBy('seq')
        .execute();
      expect(rows.map((r) => r.action)).toEqual([
        'sqs:CreateQueue',
        'sqs:SetQueueAttributes',
        'sqs:DeleteQueue',
      ]);
    });

    it('answers errors in each protocol’s own shape', async () => {
      const j = await jsonCall(acmeKeys, 'GetQueueUrl', { QueueName: 'no-such-queue' });
      expect(j.status).toBe(400);
      expect(j.headers.get('content-type')).toContain('application/x-amz-json-1.0');
      expect(j.headers.get('x-amzn-query-error')).toBe('AWS.SimpleQueueService.NonExistentQueue;Sender');
      expect(JSON.parse(j.text)).toEqual({
        __type: 'com.amazonaws.sqs#QueueDoesNotExist',
        message: expect.any(String),
      });
      const q = await queryCall(acmeKeys, {
        Action: 'GetQueueUrl',
        QueueName: 'no-such-queue',
        Version: '2012-11-05',
      });
      expect(q.status).toBe(400);
      expect(q.text).toContain('<ErrorResponse xmlns="http://queue.amazonaws.com/doc/2012-11-05/">');
      expect(q.text).toContain('<Code>AWS.SimpleQueueService.NonExistentQueue</Code>');
      expect(q.text).toContain('<Type>Sender</Type>');
      expect((await queryCall(acmeKeys, { Action: 'Frobnicate' })).text).toContain(
        '<Code>InvalidAction</Code>',
      );
      expect(JSON.parse((await jsonCall(acmeKeys, 'Frobnicate', {})).text).__type).toBe(
        'com.amazonaws.sqs#InvalidAction',
      );
      const unsigned = await jsonCall(null, 'ListQueues', {});
      expect(unsigned.status).toBe(403);
      expect(JSON.parse(unsigned.text).__type).toBe('com.amazonaws.sqs#MissingAuthenticationToken');
      const bad = await raw({ ...acmeKeys, secretAccessKey: 'wrong' }, '{}', {
        'content-type': 'application/x-amz-json-1.0',
        'x-amz-target': 'AmazonSQS.ListQueues',
      });
      expect(JSON.parse(bad.text).__type).toBe('com.amazonaws.sqs#SignatureDoesNotMatch');
    });

    it('serves the move-task actions over the Query protocol too', async () => {
      const dlq = await create(acme, 'q-dlq');
      const dlqArn = (await attrs(dlq, 'QueueArn')).QueueArn!;
      await create(acme, 'q-src', {
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: 3 }),
      });
      const started = await queryCall(acmeKeys, {
        Action: 'StartMessageMoveTask',
        SourceArn: dlqArn,
        Version: '2012-11-05',
      });
      expect(started.status).toBe(200);
      expect(started.text).toMatch(
        /<StartMessageMoveTaskResult><TaskHandle>[^<]+<\/TaskHandle><\/StartMessageMoveTaskResult>/,
      );
      const listed = await until(
        'the task to complete',
        async () => {
          const r = await queryCall(acmeKeys, {
            Action: 'ListMessageMoveTasks',
            SourceArn: dlqArn,
            MaxResults: '5',
          });
          return r.text.includes('<Status>COMPLETED</Status>') ? r.text : undefined;
        },
        10_000,
        100,
      );
      expect(listed).toContain('<ListMessageMoveTasksResultEntry>');
    });

    it('works with /usr/bin/aws sqs (Query protocol) for every action awscli 2.9 knows', async () => {
      const a = (...args: string[]) => aws(acmeKeys, ...args);
      const created = await a(
        'create-queue',
        '--queue-name',
        'cli-queue',
        '--attributes',
        'VisibilityTimeout=20,DelaySeconds=0',
        '--tags',
        'team=cli',
      );
      expect(created.err).toBe('');
      const url = created.json.QueueUrl as string;
      expect(url).toBe(`${cp.endpoints.sqs}/${acmeAccount}/cli-queue`);
      expect((await a('get-queue-url', '--queue-name', 'cli-queue')).json.QueueUrl).toBe(url);
      expect((await a('list-queues', '--queue-name-prefix', 'cli-')).json.QueueUrls).toEqual([url]);
      expect(
        (await a('create-queue', '--queue-name', 'cli-queue', '--attributes', 'VisibilityTimeout=21')).err,
      ).toContain('QueueAlreadyExists');
      expect(
        (await a('set-queue-attributes', '--queue-url', url, '--attributes', 'MaximumMessageSize=2048')).ok,
      ).toBe(true);
      const qa = await a('get-queue-attributes', '--queue-url', url, '--attribute-names', 'All');
      expect(qa.json.Attributes).toMatchObject({
        VisibilityTimeout: '20',
        MaximumMessageSize: '2048',
        ApproximateNumberOfMessages: '0',
      });
      const sent = await a(
        'send-message',
        '--queue-url',
        url,
        '--message-body',
        'über cli',
        '--message-attributes',
        '{"k":{"DataType":"String","StringValue":"v"},"b":{"DataType":"Binary","BinaryValue":"AAEC"}}',
      );
      expect(sent.err).toBe('');
      expect(sent.json.MD5OfMessageBody).toMatch(/^[0-9a-f]{32}$/);
      const batch = await a(
        'send-message-batch',
        '--queue-url',
        url,
        '--entries',
        JSON.stringify([
          { Id: 'x', MessageBody: 'b1' },
          { Id: 'y', MessageBody: 'b2', DelaySeconds: 0 },
        ]),
      );
      expect((batch.json.Successful as unknown[]).length).toBe(2);
      const got = await a(
        'receive-message',
        '--queue-url',
        url,
        '--max-number-of-messages',
        '10',
        '--attribute-names',
        'All',
        '--message-attribute-names',
        'All',
      );
      expect(got.err).toBe('');
      const msgs = got.json.Messages as {
        Body: string;
        ReceiptHandle: string;
        MessageAttributes?: Record<string, { StringValue?: string }>;
        Attributes: Record<string, string>;
      }[];
      expect(msgs.map((m) => m.Body).sort()).toEqual(['b1', 'b2', 'über cli']);
      const first = msgs.find((m) => m.Body === 'über cli')!;
      expect(first.MessageAttributes?.k?.StringValue).toBe('v');
      expect(first.Attributes.ApproximateReceiveCount).toBe('1');
      const others = msgs.filter((m) => m !== first);
      expect(
        (
          await a(
            'change-message-visibility',
            '--queue-url',
            url,
            '--receipt-handle',
            first.ReceiptHandle,
            '--visibility-timeout',
            '0',
          )
        ).ok,
      ).toBe(true);
      const cmvb = await a(
        'change-message-visibility-batch',
        '--queue-url',
        url,
        '--entries',
        JSON.stringify(
          others.map((m, i) => ({ Id: `e${i}`, ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 60 })),
        ),
      );
      expect((cmvb.json.Successful as unknown[]).length).toBe(2);
      const again = await a('receive-message', '--queue-url', url, '--wait-time-seconds', '1');
      const m2 = (again.json.Messages as { Body: string; ReceiptHandle: string }[])[0]!;
      expect(m2.Body).toBe('über cli');
      expect((await a('delete-message', '--queue-url', url, '--receipt-handle', m2.ReceiptHandle)).ok).toBe(
        true,
      );
      const dmb = await a(
        'delete-message-batch',
        '--queue-url',
        url,
        '--entries',
        JSON.stringify(others.map((m, i) => ({ Id: `d${i}`, ReceiptHandle: m.ReceiptHandle }))),
      );
      expect((dmb.json.Successful as unknown[]).length).toBe(2);
      expect((await a('tag-queue', '--queue-url', url, '--tags', 'env=ci')).ok).toBe(true);
      expect((await a('untag-queue', '--queue-url', url, '--tag-keys', 'team')).ok).toBe(true);
      expect((await a('list-queue-tags', '--queue-url', url)).json.Tags).toEqual({ env: 'ci' });
      const dlqArn = (await a('get-queue-attributes', '--queue-url', url, '--attribute-names', 'QueueArn'))
        .json.Attributes as Record<string, string>;
      const src = await a(
        'create-queue',
        '--queue-name',
        'cli-src',
        '--attributes',
        JSON.stringify({
          RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn.QueueArn, maxReceiveCount: 4 }),
        }),
      );
      expect(src.err).toBe('');
      expect((await a('list-dead-letter-source-queues', '--queue-url', url)).json.queueUrls).toEqual([
        src.json.QueueUrl,
      ]);
      expect(
        (
          await a(
            'add-permission',
            '--queue-url',
            url,
            '--label',
            'g',
            '--aws-account-ids',
            globexAccount,
            '--actions',
            'SendMessage',
          )
        ).ok,
      ).toBe(true);
      expect((await aws(globexKeys, 'send-message', '--queue-url', url, '--message-body', 'guest')).ok).toBe(
        true,
      );
      expect((await a('remove-permission', '--queue-url', url, '--label', 'g')).ok).toBe(true);
      expect(
        (await aws(globexKeys, 'send-message', '--queue-url', url, '--message-body', 'guest')).err,
      ).toContain('NonExistentQueue');
      expect((await a('purge-queue', '--queue-url', url)).ok).toBe(true);
      expect((await a('delete-queue', '--queue-url', src.json.QueueUrl as string)).ok).toBe(true);
      expect((await a('delete-queue', '--queue-url', url)).ok).toBe(true);
      expect((await a('get-queue-url', '--queue-name', 'cli-queue')).err).toContain(
        'AWS.SimpleQueueService.NonExistentQueue',
      );
    }, 420_000);
  });
}
