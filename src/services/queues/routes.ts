import { z } from 'zod';
import { type RouteDef, route } from '../../platform/http/rest.js';
import type { QueueInfo, QueueService } from './service.js';

/**
 * REST routes for queues (what `yunhai queue ...` and the portal use); the same QueueService as the
 * SQS listener. Queues are named within the caller's account (`?account=` for another one).
 */
const queueView = z.object({
  name: z.string(),
  url: z.string(),
  arn: z.string(),
  fifo: z.boolean(),
  accountId: z.string(),
  createdAt: z.string(),
  attributes: z.record(z.string(), z.string()).optional(),
  tags: z.record(z.string(), z.string()),
});
const nameParam = z.strictObject({ name: z.string().min(1).max(80) });
const accountQuery = z.strictObject({
  account: z
    .string()
    .regex(/^\d{12}$/)
    .optional(),
});
const messageView = z.object({
  messageId: z.string(),
  receiptHandle: z.string(),
  body: z.string(),
  md5OfBody: z.string(),
  attributes: z.record(z.string(), z.string()),
  messageAttributes: z.record(z.string(), z.string()),
});

export function queueRoutes(queues: QueueService, sqsEndpoint: () => string): RouteDef[] {
  const view = (q: QueueInfo, attributes?: Record<string, string>) => ({
    name: q.name,
    url: `${sqsEndpoint()}/${q.accountId}/${q.name}`,
    arn: q.arn,
    fifo: q.fifo,
    accountId: q.accountId,
    createdAt: new Date(q.createdAt).toISOString(),
    ...(attributes ? { attributes } : {}),
    tags: q.tags,
  });
  const ref = (ctx: { principal: { accountId: string } }, name: string, account?: string) => ({
    accountId: account ?? ctx.principal.accountId,
    name,
  });
  return [
    route({
      method: 'GET',
      path: '/queues',
      operationId: 'listQueues',
      summary: 'Your tenant’s message queues, by name.',
      tag: 'queues',
      query: z.strictObject({ prefix: z.string().max(80).optional() }),
      response: z.object({ items: z.array(queueView), nextCursor: z.string().nullable() }),
      handler: async (ctx, { query }) => {
        const r = await queues.listQueues(ctx, query.prefix ? { prefix: query.prefix } : {});
        return { items: r.queues.map((q) => view(q)), nextCursor: null };
      },
    }),
    route({
      method: 'POST',
      path: '/queues',
      operationId: 'createQueue',
      summary:
        'Create a queue (SQS CreateQueue: idempotent for identical attributes). A name ending in .fifo makes a FIFO queue.',
      tag: 'queues',
      body: z.strictObject({
        name: z.string().min(1).max(80),
        attributes: z.record(z.string(), z.string()).default({}),
        tags: z.record(z.string(), z.string()).default({}),
      }),
      status: 201,
      response: queueView,
      handler: async (ctx, { body }) =>
        view(await queues.createQueue(ctx, body.name, body.attributes, body.tags)),
    }),
    route({
      method: 'GET',
      path: '/queues/{name}',
      operationId: 'getQueue',
      summary: 'A queue with all its attributes, including approximate message counts.',
      tag: 'queues',
      params: nameParam,
      query: accountQuery,
      response: queueView,
      handler: async (ctx, { params, query }) => {
        const r = ref(ctx, params.name, query.account);
        const q = await queues.getQueueUrl(ctx, r.name, r.accountId);
        return view(q, await queues.getQueueAttributes(ctx, r, ['All']));
      },
    }),
    route({
      method: 'PATCH',
      path: '/queues/{name}',
      operationId: 'setQueueAttributes',
      summary:
        'Change queue attributes (SQS SetQueueAttributes); an empty Policy or RedrivePolicy removes it.',
      tag: 'queues',
      params: nameParam,
      query: accountQuery,
      body: z.strictObject({ attributes: z.record(z.string(), z.string()) }),
      status: 204,
      handler: async (ctx, { params, query, body }) =>
        queues.setQueueAttributes(ctx, ref(ctx, params.name, query.account), body.attributes),
    }),
    route({
      method: 'DELETE',
      path: '/queues/{name}',
      operationId: 'deleteQueue',
      summary: 'Delete a queue and its messages.',
      tag: 'queues',
      params: nameParam,
      query: accountQuery,
      status: 204,
      handler: async (ctx, { params, query }) =>
        queues.deleteQueue(ctx, ref(ctx, params.name, query.account)),
    }),
    route({
      method: 'POST',
      path: '/queues/{name}/purge',
      operationId: 'purgeQueue',
      summary: 'Delete every message of a queue (once per 60 s).',
      tag: 'queues',
      params: nameParam,
      query: accountQuery,
      status: 204,
      handler: async (ctx, { params, query }) => queues.purgeQueue(ctx, ref(ctx, params.name, query.account)),
    }),
    route({
      method: 'POST',
      path: '/queues/{name}/messages',
      operationId: 'sendMessage',
      summary: 'Send a message (string message attributes only).',
      tag: 'queues',
      params: nameParam,
      query: accountQuery,
      body: z.strictObject({
        body: z.string(),
        delaySeconds: z.number().int().min(0).max(900).optional(),
        groupId: z.string().optional(),
        deduplicationId: z.string().optional(),
        attributes: z.record(z.string(), z.string()).optional(),
      }),
      response: z.object({
        messageId: z.string(),
        md5OfBody: z.string(),
        sequenceNumber: z.string().optional(),
      }),
      handler: async (ctx, { params, query, body }) => {
        const [r] = await queues.sendMessages(
          ctx,
          ref(ctx, params.name, query.account),
          [
            {
              body: body.body,
              ...(body.delaySeconds !== undefined ? { delaySeconds: body.delaySeconds } : {}),
              ...(body.groupId !== undefined ? { groupId: body.groupId } : {}),
              ...(body.deduplicationId !== undefined ? { dedupId: body.deduplicationId } : {}),
              ...(body.attributes
                ? {
                    attributes: Object.fromEntries(
                      Object.entries(body.attributes).map(([k, v]) => [
                        k,
                        { DataType: 'String', StringValue: v },
                      ]),
                    ),
                  }
                : {}),
            },
          ],
          false,
        );
        if (!r || 'error' in r) throw r?.error;
        return {
          messageId: r.ok.messageId,
          md5OfBody: r.ok.md5OfBody,
          ...(r.ok.sequenceNumber ? { sequenceNumber: r.ok.sequenceNumber } : {}),
        };
      },
    }),
    route({
      method: 'POST',
      path: '/queues/{name}/receive',
      operationId: 'receiveMessages',
      summary: 'Receive up to 10 messages (long poll up to 20 s); `delete: true` deletes them once read.',
      tag: 'queues',
      params: nameParam,
      query: accountQuery,
      body: z.strictObject({
        max: z.number().int().min(1).max(10).default(1),
        waitSeconds: z.number().int().min(0).max(20).optional(),
        visibilityTimeout: z.number().int().min(0).max(43_200).optional(),
        delete: z.boolean().default(false),
      }),
      response: z.object({ items: z.array(messageView) }),
      handler: async (ctx, { params, query, body }) => {
        const r = ref(ctx, params.name, query.account);
        const msgs = await queues.receiveMessages(ctx, r, {
          maxMessages: body.max,
          ...(body.waitSeconds !== undefined ? { waitTimeSeconds: body.waitSeconds } : {}),
          ...(body.visibilityTimeout !== undefined ? { visibilityTimeout: body.visibilityTimeout } : {}),
        });
        if (body.delete && msgs.length > 0)
          await queues.deleteMessages(
            ctx,
            r,
            msgs.map((m) => ({ receiptHandle: m.receiptHandle })),
            false,
          );
        return {
          items: msgs.map((m) => ({
            messageId: m.messageId,
            receiptHandle: m.receiptHandle,
            body: m.body,
            md5OfBody: m.md5OfBody,
            attributes: m.systemAttributes,
            messageAttributes: Object.fromEntries(
              Object.entries(m.attributes).map(([k, v]) => [
                k,
                v.StringValue ?? v.BinaryValue?.toString('base64') ?? '',
              ]),
            ),
          })),
        };
      },
    }),
    route({
      method: 'POST',
      path: '/queues/{name}/redrive',
      operationId: 'startMessageMoveTask',
      summary:
        'Move the messages of a dead-letter queue back to their source queues, or to `destination` (SQS StartMessageMoveTask).',
      tag: 'queues',
      params: nameParam,
      body: z.strictObject({
        destination: z.string().min(1).max(80).optional(),
        maxPerSecond: z.number().int().min(1).max(500).optional(),
      }),
      status: 202,
      response: z.object({ taskHandle: z.string() }),
      handler: async (ctx, { params, body }) => {
        const arn = (name: string) => `arn:aws:sqs:${queues.region}:${ctx.principal.accountId}:${name}`;
        const taskHandle = await queues.startMessageMoveTask(ctx, {
          sourceArn: arn(params.name),
          ...(body.destination ? { destinationArn: arn(body.destination) } : {}),
          ...(body.maxPerSecond ? { maxNumberOfMessagesPerSecond: body.maxPerSecond } : {}),
        });
        return { taskHandle };
      },
    }),
    route({
      method: 'GET',
      path: '/queues/{name}/move-tasks',
      operationId: 'listMessageMoveTasks',
      summary: 'The latest message move tasks of a dead-letter queue, newest first.',
      tag: 'queues',
      params: nameParam,
      response: z.object({
        items: z.array(
          z.object({
            taskHandle: z.string().optional(),
            status: z.string(),
            sourceArn: z.string(),
            destinationArn: z.string().optional(),
            approximateNumberOfMessagesMoved: z.number(),
            approximateNumberOfMessagesToMove: z.number(),
            failureReason: z.string().optional(),
            startedTimestamp: z.number(),
          }),
        ),
      }),
      handler: async (ctx, { params }) => ({
        items: await queues.listMessageMoveTasks(
          ctx,
          `arn:aws:sqs:${queues.region}:${ctx.principal.accountId}:${params.name}`,
          10,
        ),
      }),
    }),
  ];
}
