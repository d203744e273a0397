import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { ApiClient } from '../client.js';
import type { CliContext } from '../context.js';
import { CliError, isNotFound } from '../errors.js';
import { type Column, renderFields, shortTime } from '../output.js';
import type { ConsoleChunk, FlavorView, ImageView, InstanceView } from '../types.js';
import { formatGiB, formatMiB, memoryArg } from '../units.js';
import { DEFAULT_WAIT_SECONDS, timeoutSeconds, type WaitFailure, waitFor } from '../wait.js';
import {
  choice,
  clientFor,
  confirm,
  examples,
  type ListFlags,
  positiveInt,
  printerFor,
  printList,
  secretArg,
  seg,
  withListOptions,
} from './common.js';

export const INSTANCE_STATES = [
  'building',
  'starting',
  'running',
  'stopping',
  'stopped',
  'rebooting',
  'resizing',
  'deleting',
  'error',
] as const;

const INSTANCE_ID = /^i-[a-z0-9]{12}$/;
/** The API's limit on user data. */
const MAX_USER_DATA = 64 * 1024;
/** `instance console --tail` shows this much of the end. */
export const CONSOLE_TAIL_BYTES = 16 * 1024;
const CONSOLE_PAGE = 64 * 1024;
const FOLLOW_INTERVAL_MS = 500;

const INSTANCE_REF = 'instance id (i-…) or name';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** `running` only once the guest has finished booting; before that `running (guest booting)`. */
export const instanceStatus = (i: InstanceView | null): string =>
  !i ? 'deleted' : i.state === 'running' && !i.guestReady ? 'running (guest booting)' : i.state;

const describe = (i: { id: string; name?: string }) => (i.name ? `${i.name} (${i.id})` : i.id);
const sizeText = (i: InstanceView) => `${plural(i.vcpus, 'vCPU')}, ${formatMiB(i.memoryMiB)}`;

const INSTANCE_COLUMNS: Column<InstanceView>[] = [
  { header: 'ID', value: (i) => i.id, shrink: false },
  { header: 'NAME', value: (i) => i.name },
  { header: 'STATE', value: (i) => instanceStatus(i) },
  { header: 'VCPUS', value: (i) => i.vcpus, align: 'right' },
  { header: 'MEMORY', value: (i) => formatMiB(i.memoryMiB), align: 'right' },
  { header: 'DISK', value: (i) => formatGiB(i.diskGiB), align: 'right' },
  { header: 'HOST', value: (i) => i.hostId },
  { header: 'CREATED', value: (i) => shortTime(i.createdAt) },
];

function instanceFields(i: InstanceView, names: { flavor?: string; image?: string } = {}): string {
  const fields: [string, unknown][] = [
    ['id', i.id],
    ['name', i.name],
    ['state', instanceStatus(i)],
    ['desired state', i.desiredState],
  ];
  if (i.errorReason) fields.push(['error', i.errorReason.split('\n')[0]]);
  fields.push(
    ['tenant', i.tenantId],
    ['host', i.hostId],
    ['image', names.image ? `${names.image} (${i.imageId})` : i.imageId],
    ['flavor', names.flavor ? `${names.flavor} (${i.flavorId})` : i.flavorId],
    ['vcpus', `${i.vcpus} (max ${i.maxVcpus})`],
    ['memory', `${formatMiB(i.memoryMiB)} (max ${formatMiB(i.maxMemoryMiB)})`],
    ['disk', formatGiB(i.diskGiB)],
    ['key pair', i.keyName],
    ['guest ready', i.guestReady ? 'yes' : 'no'],
    ['created', i.createdAt],
    ['launched', i.launchedAt],
  );
  let out = renderFields(fields);
  // The reason may carry the console's last lines: shown as they are, below the fields.
  const more = i.errorReason?.split('\n').slice(1).join('\n');
  if (more) out += `${more.replace(/\r/g, '')}\n`;
  return out;
}

/** `i-…` ids go straight to the API; anything else is looked up as an instance name. */
export async function resolveInstanceId(client: ApiClient, ref: string): Promise<string> {
  if (INSTANCE_ID.test(ref)) return ref;
  const page = await client.list<InstanceView>('/instances', {}, { all: true });
  const found = page.items.filter((i) => i.name === ref);
  if (found.length === 1) return found[0]!.id;
  if (found.length === 0)
    throw new CliError(
      `NotFound: no instance named '${ref}' (pass an i-… id, or see \`yunhai instance list\`)`,
      1,
    );
  throw new CliError(
    `${found.length} instances are named '${ref}' (${found.map((i) => i.id).join(', ')}); pass an id`,
    1,
  );
}

/** GET /instances/{id}, or null once it is gone. */
async function fetchInstance(client: ApiClient, id: string): Promise<InstanceView | null> {
  try {
    return await client.get<InstanceView>(`/instances/${seg(id)}`);
  } catch (e) {
    if (isNotFound(e)) return null;
    throw e;
  }
}

/** An instance in `error`: the reason's first line as the message, the rest (console tail) as details. */
function errorFailure(i: InstanceView): WaitFailure {
  const [first, ...rest] = (i.errorReason ?? 'no reason given').split('\n');
  return {
    message: `instance ${describe(i)} failed: ${first}`,
    details: rest.length ? rest.join('\n').replace(/\r/g, '') : undefined,
  };
}

interface WaitFlags {
  wait?: boolean;
  timeout: number;
}

type Goal = 'running' | 'stopped' | 'resized' | 'deleted';

const GOAL_TEXT: Record<Goal, string> = {
  running: 'to be running with its guest ready',
  stopped: 'to stop',
  resized: 'to finish resizing',
  deleted: 'to be deleted',
};

/** Waits for an instance to reach a goal, with progress; throws (exit 1) on error or timeout. */
async function waitInstance(
  ctx: CliContext,
  client: ApiClient,
  initial: InstanceView | { id: string; name?: string },
  goal: Goal,
  timeout: number,
): Promise<InstanceView | null> {
  const full = 'state' in initial ? initial : undefined;
  return waitFor<InstanceView>(ctx.io, {
    label: describe(initial),
    goal: `instance ${describe(initial)} ${GOAL_TEXT[goal]}`,
    checkWith: `yunhai instance show ${initial.id}`,
    timeoutSeconds: timeout,
    initial: full,
    startStatus: goal === 'deleted' ? 'deleting' : undefined,
    fetch: () => fetchInstance(client, initial.id),
    status: instanceStatus,
    done: (i) => {
      switch (goal) {
        case 'running':
          return i?.state === 'running' && i.guestReady;
        case 'stopped':
          return i?.state === 'stopped';
        case 'resized':
          return i?.state === 'running';
        case 'deleted':
          return i === null;
      }
    },
    failed: (i) => {
      if (!i) return goal === 'deleted' ? undefined : `instance ${describe(initial)} was deleted`;
      if (i.state === 'error' && goal !== 'deleted') return errorFailure(i);
      if (goal === 'running' && i.state === 'stopped')
        return `instance ${describe(i)} stopped before its guest was ready; see \`yunhai instance console ${i.id}\``;
      return undefined;
    },
  });
}

async function readUserData(ctx: CliContext, f: { userData?: string; userDataText?: string }) {
  if (f.userData !== undefined && f.userDataText !== undefined)
    throw new CliError('use either --user-data or --user-data-text, not both', 2);
  let text: string | undefined = f.userDataText;
  if (f.userData === '-') {
    if (!ctx.io.readStdin) throw new CliError('--user-data -: there is no standard input to read', 2);
    text = await ctx.io.readStdin();
  } else if (f.userData !== undefined) {
    const file = resolve(ctx.cwd, f.userData);
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      const code = (e as { code?: string }).code;
      throw new CliError(`cannot read user data ${file}: ${code ?? String(e)}`, 2);
    }
  }
  if (text !== undefined && Buffer.byteLength(text) > MAX_USER_DATA)
    throw new CliError(
      `user data is ${Buffer.byteLength(text)} bytes; at most ${MAX_USER_DATA} are allowed`,
      2,
    );
  return text;
}

interface CreateFlags {
  image: string;
  flavor: string;
  userData?: string;
  userDataText?: string;
  keyName?: string;
  zone?: string;
  serverGroup?: string;
  ha?: boolean;
  password?: string | true;
  wait: boolean;
  timeout: number;
}

const timeoutOption = (cmd: Command) =>
  cmd.option(
    '--timeout <seconds>',
    `give up waiting after this long (the operation carries on)`,
    timeoutSeconds,
    DEFAULT_WAIT_SECONDS,
  );

/** Streams the console to stdout from offset 0 (or the last 16 KiB), then follows it if asked. */
async function streamConsole(
  ctx: CliContext,
  client: ApiClient,
  id: string,
  opts: { tail?: boolean; follow?: boolean },
): Promise<void> {
  const path = `/instances/${seg(id)}/console`;
  let offset = 0;
  if (opts.tail) {
    const probe = await client.get<ConsoleChunk>(path, { offset: 0, maxBytes: 1 });
    offset = Math.max(0, probe.size - CONSOLE_TAIL_BYTES);
  }
  let seen = opts.tail === true;
  for (;;) {
    let chunk: ConsoleChunk;
    try {
      chunk = await client.get<ConsoleChunk>(path, { offset, maxBytes: CONSOLE_PAGE });
      seen = true;
    } catch (e) {
      // Gone while we were following it: the end of the story, not an error.
      if (opts.follow && seen && isNotFound(e)) {
        ctx.io.err(`\n(instance ${id} was deleted)\n`);
        return;
      }
      throw e;
    }
    // The guest's bytes as they are: a serial console speaks in CRs and escape sequences.
    if (chunk.data) ctx.io.out(chunk.data);
    const advanced = chunk.next > offset;
    offset = chunk.next;
    if (advanced && offset < chunk.size) continue;
    if (!opts.follow) return;
    await sleep(FOLLOW_INTERVAL_MS);
  }
}

export function registerInstanceCommands(program: Command, ctx: CliContext) {
  const instance = program
    .command('instance')
    .description('Virtual machines: create, list, start, stop, resize, console, delete')
    .addHelpText(
      'after',
      `
An instance is building, then running; it is ready once its guest has booted. States: building,
starting, running, rebooting, resizing, stopping, stopped, deleting, error (see its reason with show).
${examples(
  'yunhai instance create web-1 --image tiny --flavor tiny.small',
  'yunhai instance list',
  'yunhai instance console web-1 --follow',
  'yunhai instance resize web-1 --vcpus 2 --memory 512MiB --wait',
  'yunhai instance delete web-1 --yes',
)}`,
    );

  timeoutOption(
    instance
      .command('create')
      .description('Launch an instance and wait until it is running and its guest is ready')
      .argument('<name>', 'letters, digits, . _ -, at most 63 characters')
      .requiredOption('--image <image>', 'image id (img-…) or name (see `yunhai image list`)')
      .requiredOption('--flavor <flavor>', 'flavor name or id (see `yunhai flavor list`)')
      .option('--user-data <file>', 'cloud-init user data from a file, or - for standard input (64 KiB max)')
      .option('--user-data-text <text>', 'cloud-init user data given inline')
      .option('--key-name <name>', 'SSH key pair to install (see `yunhai keypair import`)')
      .option('--zone <zone>', 'availability zone to place it in')
      .option('--server-group <group>', 'server group to join (see `yunhai server-group`)')
      .option('--ha', 'rebuild it on another host if its host goes down')
      .option(
        '--password [password]',
        'password for the default user (without a value: ask on a terminal); 8-128 characters',
      )
      .option('--no-wait', 'return at once, with the instance still building'),
  )
    .addHelpText(
      'after',
      examples(
        'yunhai instance create web-1 --image tiny --flavor tiny.small',
        'yunhai instance create db-1 --image ubuntu-24.04 --flavor m1.medium --key-name laptop --user-data init.yaml',
        "echo 'echo hello' | yunhai instance create t1 --image tiny --flavor tiny.small --user-data -",
        'yunhai instance create web-2 --image tiny --flavor tiny.small --no-wait -o json',
      ),
    )
    .action(async (name: string, f: CreateFlags, cmd: Command) => {
      const printer = printerFor(ctx, cmd);
      const userData = await readUserData(ctx, f);
      const password =
        f.password === undefined
          ? undefined
          : await secretArg(ctx, f.password === true ? undefined : f.password, {
              flag: '--password',
              prompt: `Password for instance ${name}`,
              twice: true,
            });
      const { client } = clientFor(ctx, cmd);
      const created = await client.post<InstanceView>('/instances', {
        name,
        image: f.image,
        flavor: f.flavor,
        ...(userData !== undefined ? { userData } : {}),
        ...(f.keyName ? { keyName: f.keyName } : {}),
        ...(f.zone ? { zone: f.zone } : {}),
        ...(f.serverGroup ? { serverGroup: f.serverGroup } : {}),
        ...(f.ha ? { ha: true } : {}),
        ...(password ? { password } : {}),
      });
      if (!f.wait) {
        printer.result(
          created,
          () =>
            `Creating instance ${describe(created)} on host ${created.hostId ?? '-'}: ${created.state}.\n` +
            `Follow it with: yunhai instance show ${created.id}\n`,
        );
        return;
      }
      const started = Date.now();
      const ready = (await waitInstance(ctx, client, created, 'running', f.timeout))!;
      const secs = Math.round((Date.now() - started) / 1000);
      printer.result(
        ready,
        () =>
          `Instance ${describe(ready)} is running on host ${ready.hostId ?? '-'} (${sizeText(ready)}); ready after ${secs} s.\n`,
      );
    });

  withListOptions(
    instance
      .command('list')
      .description('List instances (platform admins see every tenant’s)')
      .option(
        '--state <state>',
        `only this state: ${INSTANCE_STATES.join(', ')}`,
        choice('--state', INSTANCE_STATES),
      )
      .option('--tenant <tenant>', 'only this tenant id (platform admins)')
      .option('--host <host>', 'only instances on this host id (platform admins)'),
  )
    .addHelpText(
      'after',
      examples(
        'yunhai instance list',
        'yunhai instance list --state error',
        'yunhai instance list --all -o json',
      ),
    )
    .action(async (f: ListFlags & { state?: string; tenant?: string; host?: string }, cmd: Command) => {
      await printList<InstanceView>(ctx, cmd, {
        path: '/instances',
        query: { state: f.state, tenantId: f.tenant, hostId: f.host },
        flags: f,
        label: 'instances',
        columns: INSTANCE_COLUMNS,
      });
    });

  instance
    .command('show')
    .description('Show an instance (with its error reason and console tail when it failed)')
    .argument('<instance>', INSTANCE_REF)
    .action(async (ref: string, _f: unknown, cmd: Command) => {
      const { client } = clientFor(ctx, cmd);
      const printer = printerFor(ctx, cmd);
      const id = await resolveInstanceId(client, ref);
      const i = await client.get<InstanceView>(`/instances/${seg(id)}`);
      if (printer.json) {
        printer.result(i, () => '');
        return;
      }
      // Names for the ids, best effort: a retired flavor or another tenant's image stays an id.
      const [flavors, image] = await Promise.all([
        client.get<{ items: FlavorView[] }>('/flavors').catch(() => undefined),
        client.get<ImageView>(`/images/${seg(i.imageId)}`).catch(() => undefined),
      ]);
      const flavor = flavors?.items.find((x) => x.id === i.flavorId)?.name;
      printer.result(i, () => instanceFields(i, { flavor, image: image?.name }));
    });

  const actions: Array<{
    verb: 'start' | 'stop' | 'reboot';
    description: string;
    goal: Goal;
    doing: string;
    done: string;
  }> = [
    {
      verb: 'start',
      description: 'Start a stopped instance',
      goal: 'running',
      doing: 'Starting',
      done: 'is running',
    },
    {
      verb: 'stop',
      description: 'Stop an instance: ACPI power-off, then a hard stop after a timeout (--force: at once)',
      goal: 'stopped',
      doing: 'Stopping',
      done: 'is stopped',
    },
    {
      verb: 'reboot',
      description: 'Reboot a running instance',
      goal: 'running',
      doing: 'Rebooting',
      done: 'has rebooted and is running',
    },
  ];
  for (const a of actions) {
    const sub = timeoutOption(
      instance
        .command(a.verb)
        .description(a.description)
        .argument('<instance>', INSTANCE_REF)
        .option(
          '--wait',
          `wait until the instance ${a.goal === 'stopped' ? 'is stopped' : 'is running and ready'}`,
        ),
    );
    if (a.verb === 'stop') sub.option('--force', 'hard stop at once, without asking the guest to power off');
    sub
      .addHelpText('after', examples(`yunhai instance ${a.verb} web-1 --wait`))
      .action(async (ref: string, f: WaitFlags & { force?: boolean }, cmd: Command) => {
        const { client } = clientFor(ctx, cmd);
        const printer = printerFor(ctx, cmd);
        const id = await resolveInstanceId(client, ref);
        const path = `/instances/${seg(id)}/${a.verb}`;
        const after =
          a.verb === 'stop' && f.force
            ? await client.post<InstanceView>(path, { force: true })
            : await client.post<InstanceView>(path);
        if (!f.wait) {
          printer.result(after, () => `${a.doing} instance ${describe(after)}: ${after.state}.\n`);
          return;
        }
        const final = (await waitInstance(ctx, client, after, a.goal, f.timeout))!;
        printer.result(final, () => `Instance ${describe(final)} ${a.done}.\n`);
      });
  }

  timeoutOption(
    instance
      .command('resize')
      .description('Live-resize a running instance within its flavor’s maxima (vCPU hotplug, memory balloon)')
      .argument('<instance>', INSTANCE_REF)
      .option('--vcpus <n>', 'vCPUs', positiveInt('--vcpus'))
      .option('--memory <size>', 'memory, e.g. 512MiB or 1GiB', memoryArg('--memory'))
      .option('--wait', 'wait until the resize is done'),
  )
    .addHelpText(
      'after',
      examples(
        'yunhai instance resize web-1 --vcpus 2 --memory 512MiB --wait',
        'yunhai instance resize web-1 --memory 1GiB',
      ),
    )
    .action(async (ref: string, f: WaitFlags & { vcpus?: number; memory?: number }, cmd: Command) => {
      if (f.vcpus === undefined && f.memory === undefined)
        throw new CliError('give --vcpus, --memory or both', 2);
      const { client } = clientFor(ctx, cmd);
      const printer = printerFor(ctx, cmd);
      const id = await resolveInstanceId(client, ref);
      const after = await client.post<InstanceView>(`/instances/${seg(id)}/resize`, {
        ...(f.vcpus !== undefined ? { vcpus: f.vcpus } : {}),
        ...(f.memory !== undefined ? { memoryMiB: f.memory } : {}),
      });
      const asked = [
        f.vcpus !== undefined ? plural(f.vcpus, 'vCPU') : undefined,
        f.memory !== undefined ? formatMiB(f.memory) : undefined,
      ]
        .filter(Boolean)
        .join(', ');
      if (!f.wait) {
        printer.result(after, () => `Resizing instance ${describe(after)} to ${asked}.\n`);
        return;
      }
      const final = (await waitInstance(ctx, client, after, 'resized', f.timeout))!;
      const short =
        (f.vcpus !== undefined && final.vcpus !== f.vcpus) ||
        (f.memory !== undefined && final.memoryMiB !== f.memory);
      printer.result(final, () => `Instance ${describe(final)} now has ${sizeText(final)}.\n`);
      if (short) printer.note(`Warning: asked for ${asked}; the hypervisor applied ${sizeText(final)}.`);
    });

  timeoutOption(
    instance
      .command('delete')
      .description('Delete an instance and its disk')
      .argument('<instance>', INSTANCE_REF)
      .option('-y, --yes', 'do not ask for confirmation')
      .option('--wait', 'wait until it is gone'),
  )
    .addHelpText(
      'after',
      examples('yunhai instance delete web-1 --yes', 'yunhai instance delete i-0a1b2c3d4e5f --yes --wait'),
    )
    .action(async (ref: string, f: WaitFlags & { yes?: boolean }, cmd: Command) => {
      const { client } = clientFor(ctx, cmd);
      const printer = printerFor(ctx, cmd);
      const id = await resolveInstanceId(client, ref);
      const label = ref === id ? id : `${ref} (${id})`;
      await confirm(ctx, `delete instance ${label} and its disk`, f.yes);
      const res = await client.delete<{ id: string; state: string }>(`/instances/${seg(id)}`);
      if (!f.wait) {
        printer.result(res, () => `Deleting instance ${label}.\n`);
        return;
      }
      await waitInstance(ctx, client, { id, name: ref === id ? undefined : ref }, 'deleted', f.timeout);
      printer.result({ id, state: 'deleted' }, () => `Deleted instance ${label}.\n`);
    });

  instance
    .command('console')
    .description('Print the serial console output (raw); --follow keeps printing new output')
    .argument('<instance>', INSTANCE_REF)
    .option('--tail', `start from the last ${CONSOLE_TAIL_BYTES / 1024} KiB instead of the beginning`)
    .option('-f, --follow', 'keep printing new output until Ctrl-C or the instance is deleted')
    .addHelpText(
      'after',
      examples('yunhai instance console web-1', 'yunhai instance console web-1 --tail --follow'),
    )
    .action(async (ref: string, f: { tail?: boolean; follow?: boolean }, cmd: Command) => {
      const { client } = clientFor(ctx, cmd);
      const id = await resolveInstanceId(client, ref);
      await streamConsole(ctx, client, id, f);
    });
}
