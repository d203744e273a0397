import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateQueueCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type ControlPlane, startControlPlane } from '../../../server/control-plane.js';
import { createTestDatabase, describeIfPg, type TestDatabase } from '../../../test-support/pg.js';

/** Two control-plane replicas on one PostgreSQL: a long poll on one wakes for a send on the other. */
describeIfPg('SQS across control-plane replicas (PostgreSQL LISTEN/NOTIFY)', () => {
  let db: TestDatabase;
  const replicas: ControlPlane[] = [];
  const dirs: string[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    const env = {
      YUNHAI_MASTER_KEY: randomBytes(32).toString('hex'),
      YUNHAI_ROOT_PASSWORD: 'root-password-1',
    };
    for (let i = 0; i < 2; i++) {
      const dataDir = mkdtempSync(join(tmpdir(), 'yunhai-sqs-replica-'));
      dirs.push(dataDir);
      replicas.push(
        await startControlPlane({
          dataDir,
          database: db.url,
          host: '127.0.0.1',
          port: 0,
          logLevel: 'silent',
          env,
        }),
      );
    }
  });
  afterAll(async () => {
    for (const r of replicas) await r.close();
    await db?.drop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('wakes a long poll on one replica as soon as another replica accepts a message', async () => {
    const creds = replicas[0]!.rootCredentials!;
    const client = (i: number) =>
      new SQSClient({
        endpoint: replicas[i]!.endpoints.sqs,
        region: 'us-east-1',
        credentials: creds,
        maxAttempts: 1,
      });
    const a = client(0);
    const b = client(1);
    const QueueUrl = (await a.send(new CreateQueueCommand({ QueueName: 'cross-replica' }))).QueueUrl!;
    // The queue URL names replica A's listener; the SDK sends to the endpoint the URL names, so B
    // gets the same queue by its own URL.
    const urlOnB = QueueUrl.replace(replicas[0]!.endpoints.sqs, replicas[1]!.endpoints.sqs);
    const waiting = a.send(new ReceiveMessageCommand({ QueueUrl, WaitTimeSeconds: 10 }));
    await new Promise((r) => setTimeout(r, 300));
    const t0 = Date.now();
    await b.send(new SendMessageCommand({ QueueUrl: urlOnB, MessageBody: 'from replica b' }));
    const got = await waiting;
    expect(got.Messages?.[0]?.Body).toBe('from replica b');
    // Before the re-check a long poll does every second (due ~700 ms after t0): the NOTIFY woke it.
    expect(Date.now() - t0).toBeLessThan(500);
  });
});
