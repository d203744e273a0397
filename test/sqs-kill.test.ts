import { mkdtempSync, readFileSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  endpointsOf,
  ensureBuilt,
  startUp,
  type UpProcess,
  waitFor,
} from '../src/test-support/up-process.js';

const TOTAL = 10_000;

/**
 * Durability of the message queue: `yunhai up` is SIGKILLed in the middle of a 10,000-message
 * send/receive/delete flow. After a restart on the same data dir no acknowledged send is missing
 * and no message whose delete was acknowledged is delivered again (unacknowledged receives may
 * come back: at-least-once).
 */
describe('SQS durability across SIGKILL', () => {
  let dir: string;
  let up: UpProcess | undefined;
  // ensureBuilt() may run tsc, which takes a while on a busy machine.
  beforeAll(() => {
    ensureBuilt();
    dir = mkdtempSync(join(tmpdir(), 'yunhai-sqs-kill-'));
  }, 300_000);
  afterAll(() => {
    up?.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  async function start(): Promise<SQSClient> {
    try {
      unlinkSync(join(dir, 'endpoints.json'));
    } catch {}
    up = startUp(dir);
    const proc = up;
    await waitFor(() => proc.output().includes('Ready in'), 60_000);
    const creds = JSON.parse(readFileSync(join(dir, 'credentials.json'), 'utf8'));
    return new SQSClient({
      endpoint: endpointsOf(dir).sqs,
      region: 'us-east-1',
      credentials: { accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey },
      maxAttempts: 1,
    });
  }

  it('loses no acknowledged message and brings back no acknowledged delete', async () => {
    let sqs = await start();
    const QueueUrl = (
      await sqs.send(new CreateQueueCommand({ QueueName: 'durable', Attributes: { VisibilityTimeout: '2' } }))
    ).QueueUrl!;
    const acked = new Set<number>(); // sends acknowledged
    const received = new Set<number>(); // ever received
    const deleted = new Set<number>(); // deletes acknowledged before the kill
    let killed = false;
    const afterKill: number[] = [];

    const sendAll = async (ids: number[], c: SQSClient) => {
      let next = 0;
      const worker = async () => {
        while (next < ids.length && !killed) {
          const chunk = ids.slice(next, next + 10);
          next += 10;
          try {
            const r = await c.send(
              new SendMessageBatchCommand({
                QueueUrl,
                Entries: chunk.map((id) => ({ Id: `m${id}`, MessageBody: `m${id}` })),
              }),
            );
            for (const s of r.Successful ?? []) acked.add(Number(s.Id!.slice(1)));
          } catch {
            // Unacknowledged: retried after the restart.
          }
        }
      };
      await Promise.all([worker(), worker(), worker(), worker()]);
    };

    const consume = async (c: SQSClient, record: (id: number) => void, until: () => boolean) => {
      const worker = async () => {
        while (!until()) {
          try {
            const r = await c.send(
              new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }),
            );
            const msgs = r.Messages ?? [];
            for (const m of msgs) record(Number(m.Body!.slice(1)));
            if (msgs.length === 0) continue;
            const d = await c.send(
              new DeleteMessageBatchCommand({
                QueueUrl,
                Entries: msgs.map((m, i) => ({ Id: `d${i}`, ReceiptHandle: m.ReceiptHandle! })),
              }),
            );
            if (!killed)
              for (const s of d.Successful ?? [])
                deleted.add(Number(msgs[Number(s.Id!.slice(1))]!.Body!.slice(1)));
          } catch {
            if (killed) return;
          }
        }
      };
      await Promise.all([worker(), worker(), worker(), worker()]);
    };

    // Phase 1: produce and consume until the kill.
    const ids = Array.from({ length: TOTAL }, (_, i) => i);
    const producing = sendAll(ids, sqs);
    const consuming = consume(
      sqs,
      (id) => received.add(id),
      () => killed,
    );
    await waitFor(() => acked.size >= 3000 && deleted.size >= 500, 120_000);
    up!.child.kill('SIGKILL');
    killed = true;
    await up!.exited;
    await Promise.all([producing, consuming]);
    const deletedBeforeKill = new Set(deleted);
    expect(acked.size).toBeGreaterThanOrEqual(3000);

    // Phase 2: restart, send what was never acknowledged nor seen, then drain the queue.
    sqs = await start();
    killed = false;
    await sendAll(
      ids.filter((id) => !acked.has(id) && !received.has(id)),
      sqs,
    );
    const all = new Set([...received]);
    let idleSince = Date.now();
    const deadline = Date.now() + 120_000;
    await consume(
      sqs,
      (id) => {
        afterKill.push(id);
        all.add(id);
        idleSince = Date.now();
      },
      () => (all.size >= TOTAL && Date.now() - idleSince > 3000) || Date.now() > deadline,
    );
    const counts = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['All'] })))
      .Attributes!;
    expect(
      Number(counts.ApproximateNumberOfMessages) + Number(counts.ApproximateNumberOfMessagesNotVisible),
    ).toBe(0);
    for (const id of ids) if (acked.has(id)) expect(all.has(id)).toBe(true);
    expect(all.size).toBe(TOTAL);
    const resurrected = afterKill.filter((id) => deletedBeforeKill.has(id));
    expect(resurrected).toEqual([]);
    up!.child.kill('SIGTERM');
    await up!.exited;
    up = undefined;
  }, 300_000);
});
