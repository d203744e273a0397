import { type Command, InvalidArgumentError } from 'commander';
import type { CliContext } from '../context.js';
import { type Column, renderFields, renderTable, shortTime } from '../output.js';
import { clientFor, confirm, examples, positiveInt, printerFor, seg } from './common.js';

interface QueueView {
  name: string;
  url: string;
  arn: string;
  fifo: boolean;
  accountId: string;
  createdAt: string;
  attributes?: Record<string, string>;
  tags: Record<string, string>;
}

interface MessageView {
  messageId: string;
  receiptHandle: string;
  body: string;
  md5OfBody: string;
  attributes: Record<string, string>;
  messageAttributes: Record<string, string>;
}

interface MoveTaskView {
  taskHandle?: string;
  status: string;
  sourceArn: string;
  destinationArn?: string;
  approximateNumberOfMessagesMoved: number;
  approximateNumberOfMessagesToMove: number;
  failureReason?: string;
  startedTimestamp: number;
}

const QUEUE_COLUMNS: Column<QueueView>[] = [
  { header: 'NAME', value: (q) => q.name, shrink: false },
  { header: 'TYPE', value: (q) => (q.fifo ? 'fifo' : 'standard') },
  { header: 'CREATED', value: (q) => shortTime(q.createdAt) },
  { header: 'URL', value: (q) => q.url },
];

/** `KEY=VALUE` pairs collected into an object (repeatable option). */
function pair(name: string) {
  return (v: string, prev: Record<string, string> = {}) => {
    const eq = v.indexOf('=');
    if (eq < 1) throw new InvalidArgumentError(`${name} takes NAME=VALUE, not '${v}'.`);
    return { ...prev, [v.slice(0, eq)]: v.slice(eq + 1) };
  };
}

function int(name: string, min: number, max: number) {
  return (v: string) => {
    if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max)
      throw new InvalidArgumentError(`${name} must be a whole number from ${min} to ${max}.`);
    return Number(v);
  };
}

/** `yunhai queue ...`: SQS-compatible message queues through the REST API. */
export function registerQueueCommands(program: Command, ctx: CliContext) {
  const queue = program
    .command('queue')
    .description('Message queues (SQS-compatible; AWS SDKs and `aws sqs` work against the sqs endpoint)')
    .addHelpText(
      'after',
      examples(
        'yunhai queue create orders --attribute VisibilityTimeout=60',
        'yunhai queue send orders "hello"',
        'yunhai queue receive orders --max 10 --wait 20 --delete',
        'yunhai queue redrive orders-dlq',
      ),
    );

  queue
    .command('create <name>')
    .description(
      'Create a queue (a name ending in .fifo makes a FIFO queue); idempotent for identical attributes',
    )
    .option(
      '--attribute <NAME=VALUE>',
      'queue attribute, repeatable (VisibilityTimeout, DelaySeconds, RedrivePolicy, ...)',
      pair('--attribute'),
    )
    .option('--tag <KEY=VALUE>', 'tag, repeatable', pair('--tag'))
    .action(
      async (
        name: string,
        f: { attribute?: Record<string, string>; tag?: Record<string, string> },
        cmd: Command,
      ) => {
        const { client } = clientFor(ctx, cmd);
        const attributes = { ...f.attribute };
        if (name.endsWith('.fifo')) attributes.FifoQueue ??= 'true';
        const q = await client.post<QueueView>('/queues', { name, attributes, tags: f.tag ?? {} });
        printerFor(ctx, cmd).result(q, () => `Queue ${q.name} is ready: ${q.url}\n`);
      },
    );

  queue
    .command('list')
    .description('Your queues')
    .option('--prefix <prefix>', 'only names starting with this')
    .action(async (f: { prefix?: string }, cmd: Command) => {
      const { client } = clientFor(ctx, cmd);
      const page = await client.get<{ items: QueueView[] }>('/queues', { prefix: f.prefix });
      printerFor(ctx, cmd).result(page, () =>
        page.items.length === 0 ? 'No queues.\n' : renderTable(page.items, QUEUE_COLUMNS, ctx.io.columns),
      );
    });

  queue
    .command('attributes <name>')
    .description('Show a queue’s attributes and approximate counts, or change them with --set')
    .option(
      '--set <NAME=VALUE>',
      'attribute to change, repeatable (an empty RedrivePolicy removes it)',
      pair('--set'),
    )
    .action(async (name: string, f: { set?: Record<string, string> }, cmd: Command) => {
      const { client } = clientFor(ctx, cmd);
      if (f.set) await client.patch(`/queues/${seg(name)}`, { attributes: f.set });
      const q = await client.get<QueueView>(`/queues/${seg(name)}`);
      printerFor(ctx, cmd).result(q, () =>
        renderFields([
          ['name', q.name],
          ['url', q.url],
          ...Object.entries(q.attributes ?? {}).sort(([a], [b]) => a.localeCompare(b)),
          ...Object.entries(q.tags).map(([k, v]): [string, string] => [`tag ${k}`, v]),
        ]),
      );
    });

  queue
    .command('send <name> <body>')
    .description('Send a message')
    .option('--delay <seconds>', 'delivery delay, 0-900', int('--delay', 0, 900))
    .option('--group <id>', 'message group (FIFO queues)')
    .option('--dedup <id>', 'deduplication id (FIFO queues without content-based deduplication)')
    .option('--attribute <NAME=VALUE>', 'string message attribute, repeatable', pair('--attribute'))
    .action(
      async (
        name: string,
        body: string,
        f: { delay?: number; group?: string; dedup?: string; attribute?: Record<string, string> },
        cmd: Command,
      ) => {
        const { client } = clientFor(ctx, cmd);
        const r = await client.post<{ messageId: string; sequenceNumber?: string }>(
          `/queues/${seg(name)}/messages`,
          {
            body,
            ...(f.delay !== undefined ? { delaySeconds: f.delay } : {}),
            ...(f.group ? { groupId: f.group } : {}),
            ...(f.dedup ? { deduplicationId: f.dedup } : {}),
            ...(f.attribute ? { attributes: f.attribute } : {}),
          },
        );
        printerFor(ctx, cmd).result(
          r,
          () => `Sent ${r.messageId}${r.sequenceNumber ? ` (sequence ${r.sequenceNumber})` : ''}\n`,
        );
      },
    );

  queue
    .command('receive <name>')
    .description('Receive messages; they stay hidden for the visibility timeout unless --delete')
    .option('--max <n>', 'at most n messages, 1-10', int('--max', 1, 10), 1)
    .option('--wait <seconds>', 'long-poll up to this long, 0-20', int('--wait', 0, 20))
    .option('--visibility <seconds>', 'visibility timeout for these messages', int('--visibility', 0, 43_200))
    .option('--delete', 'delete the messages once received')
    .action(
      async (
        name: string,
        f: { max: number; wait?: number; visibility?: number; delete?: boolean },
        cmd: Command,
      ) => {
        const { client } = clientFor(ctx, cmd);
        const r = await client.post<{ items: MessageView[] }>(`/queues/${seg(name)}/receive`, {
          max: f.max,
          ...(f.wait !== undefined ? { waitSeconds: f.wait } : {}),
          ...(f.visibility !== undefined ? { visibilityTimeout: f.visibility } : {}),
          delete: f.delete ?? false,
        });
        printerFor(ctx, cmd).result(r, () =>
          r.items.length === 0
            ? 'No messages.\n'
            : renderTable(
                r.items,
                [
                  { header: 'MESSAGE ID', value: (m) => m.messageId, shrink: false },
                  { header: 'RECEIVES', value: (m) => m.attributes.ApproximateReceiveCount, align: 'right' },
                  { header: 'BODY', value: (m) => m.body },
                ],
                ctx.io.columns,
              ),
        );
      },
    );

  queue
    .command('purge <name>')
    .description('Delete every message in a queue')
    .option('-y, --yes', 'do not ask for confirmation')
    .action(async (name: string, f: { yes?: boolean }, cmd: Command) => {
      await confirm(ctx, `purge every message of queue ${name}`, f.yes);
      const { client } = clientFor(ctx, cmd);
      await client.post(`/queues/${seg(name)}/purge`);
      printerFor(ctx, cmd).result({ purged: name }, () => `Purged ${name}.\n`);
    });

  queue
    .command('delete <name>')
    .description('Delete a queue and its messages')
    .option('-y, --yes', 'do not ask for confirmation')
    .action(async (name: string, f: { yes?: boolean }, cmd: Command) => {
      await confirm(ctx, `delete queue ${name} and its messages`, f.yes);
      const { client } = clientFor(ctx, cmd);
      await client.delete(`/queues/${seg(name)}`);
      printerFor(ctx, cmd).result({ deleted: name }, () => `Deleted ${name}.\n`);
    });

  queue
    .command('redrive <dead-letter-queue>')
    .description('Move the messages of a dead-letter queue back to the queues they came from (or --to)')
    .option('--to <queue>', 'move them to this queue instead')
    .option('--rate <n>', 'at most n messages per second', positiveInt('--rate'))
    .option('--status', 'only show the latest move tasks')
    .action(async (dlq: string, f: { to?: string; rate?: number; status?: boolean }, cmd: Command) => {
      const { client } = clientFor(ctx, cmd);
      const printer = printerFor(ctx, cmd);
      if (!f.status) {
        const t = await client.post<{ taskHandle: string }>(`/queues/${seg(dlq)}/redrive`, {
          ...(f.to ? { destination: f.to } : {}),
          ...(f.rate ? { maxPerSecond: f.rate } : {}),
        });
        printer.note(`Started moving messages out of ${dlq} (task ${t.taskHandle.slice(0, 16)}…).`);
      }
      const tasks = await client.get<{ items: MoveTaskView[] }>(`/queues/${seg(dlq)}/move-tasks`);
      printer.result(tasks, () =>
        tasks.items.length === 0
          ? 'No move tasks.\n'
          : renderTable(
              tasks.items,
              [
                { header: 'STARTED', value: (t) => shortTime(new Date(t.startedTimestamp).toISOString()) },
                { header: 'STATUS', value: (t) => t.status },
                {
                  header: 'MOVED',
                  value: (t) =>
                    `${t.approximateNumberOfMessagesMoved}/${t.approximateNumberOfMessagesToMove}`,
                  align: 'right',
                },
                { header: 'TO', value: (t) => t.destinationArn ?? '(original queues)' },
                { header: 'FAILURE', value: (t) => t.failureReason ?? '' },
              ],
              ctx.io.columns,
            ),
      );
    });
}
