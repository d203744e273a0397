import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import type { TinyImage } from '../../agent/images/tiny.js';
import type { ApiClient } from '../client.js';
import type { CliContext } from '../context.js';
import { CliError, isNotFound } from '../errors.js';
import { type Column, formatBytes, type Printer, renderFields, shortTime } from '../output.js';
import { barProgress } from '../progress.js';
import type { ImageView } from '../types.js';
import { DEFAULT_WAIT_SECONDS, timeoutSeconds, waitFor } from '../wait.js';
import {
  choice,
  clientFor,
  confirm,
  examples,
  type ListFlags,
  printerFor,
  printList,
  seg,
  withListOptions,
} from './common.js';

export const IMAGE_FORMATS = ['qcow2', 'raw', 'iso', 'kernel'] as const;
const OS_TYPES = ['linux', 'windows', 'bsd', 'other'] as const;
const FIRMWARES = ['bios', 'uefi'] as const;
const IMAGE_ID = /^img-[a-z0-9]{12}$/;
const IMAGE_REF = 'image id (img-…) or name';
const isUrl = (s: string) => /^https?:\/\//i.test(s);

const IMAGE_COLUMNS: Column<ImageView>[] = [
  { header: 'ID', value: (i) => i.id, shrink: false },
  { header: 'NAME', value: (i) => i.name },
  { header: 'STATUS', value: (i) => i.status },
  { header: 'FORMAT', value: (i) => i.format },
  { header: 'VISIBILITY', value: (i) => i.visibility },
  {
    header: 'OS',
    value: (i) => (i.osDistro && i.osDistro !== 'unknown' ? `${i.osType}/${i.osDistro}` : i.osType),
  },
  {
    header: 'SIZE',
    value: (i) => (i.status === 'available' ? formatBytes(i.sizeBytes) : null),
    align: 'right',
  },
  { header: 'MIN DISK', value: (i) => `${i.minDiskGiB} GiB`, align: 'right' },
  { header: 'CREATED', value: (i) => shortTime(i.createdAt) },
];

function imageFields(i: ImageView): string {
  const fields: [string, unknown][] = [
    ['id', i.id],
    ['name', i.name],
    ['status', i.status],
  ];
  if (i.error) fields.push(['error', i.error]);
  fields.push(
    ['format', i.format],
    ['visibility', i.visibility],
    ['tenant', i.tenantId],
    ['os', `${i.osType} (${i.osDistro})`],
    ['firmware', i.firmware],
  );
  for (const kind of ['disk', 'kernel', 'initrd'] as const) {
    const file = i.files[kind];
    if (file) fields.push([kind, `${formatBytes(file.size)}, sha256 ${file.sha256}`]);
  }
  if (i.cmdline) fields.push(['cmdline', i.cmdline]);
  fields.push(
    ['size', formatBytes(i.sizeBytes)],
    ['virtual size', i.virtualSizeBytes ? formatBytes(i.virtualSizeBytes) : null],
    ['min disk', `${i.minDiskGiB} GiB`],
    ['created', i.createdAt],
  );
  return renderFields(fields);
}

/** `img-…` ids go straight to the API; anything else is looked up as an image name (must be unique). */
export async function resolveImageId(client: ApiClient, ref: string): Promise<string> {
  if (IMAGE_ID.test(ref)) return ref;
  const page = await client.list<ImageView>('/images', {}, { all: true });
  const found = page.items.filter((i) => i.name === ref);
  if (found.length === 1) return found[0]!.id;
  if (found.length === 0)
    throw new CliError(
      `NotFound: no image named '${ref}' (pass an img-… id, or see \`yunhai image list\`)`,
      1,
    );
  throw new CliError(
    `${found.length} images are named '${ref}' (${found.map((i) => i.id).join(', ')}); pass an id`,
    1,
  );
}

/** Waits for an import to finish: available, or error (exit 1 with the reason). */
export async function waitImage(
  ctx: CliContext,
  client: ApiClient,
  image: ImageView,
  timeout: number,
): Promise<ImageView> {
  const label = `${image.name} (${image.id})`;
  const done = await waitFor<ImageView>(ctx.io, {
    label,
    goal: `image ${label} to be imported`,
    checkWith: `yunhai image show ${image.id}`,
    timeoutSeconds: timeout,
    initial: image,
    fetch: async () => {
      try {
        return await client.get<ImageView>(`/images/${seg(image.id)}`);
      } catch (e) {
        if (isNotFound(e)) return null;
        throw e;
      }
    },
    status: (i) => (i ? i.status : 'deleted'),
    done: (i) => i?.status === 'available',
    failed: (i) =>
      !i
        ? `image ${label} was deleted while importing`
        : i.status === 'error'
          ? `image ${label} failed to import: ${i.error ?? 'no reason given'}`
          : undefined,
  });
  return done!;
}

const importedText = (i: ImageView) =>
  `Imported image ${i.name} (${i.id}): ${i.format}, ${formatBytes(i.sizeBytes)}, ${i.visibility}.\n`;

interface ImportFlags {
  format: (typeof IMAGE_FORMATS)[number];
  disk?: string;
  kernel?: string;
  initrd?: string;
  cmdline?: string;
  public?: boolean;
  osType?: string;
  osDistro?: string;
  firmware?: string;
  sha256?: string;
  wait: boolean;
  timeout: number;
}

/** The import request for the flags: sources checked against the format, local paths made absolute. */
export function importBody(cwd: string, name: string, f: ImportFlags): Record<string, unknown> {
  const abs = (s: string) => (isUrl(s) ? s : resolve(cwd, s));
  let source: Record<string, string>;
  if (f.format === 'kernel') {
    if (!f.kernel)
      throw new CliError('--format kernel needs --kernel (and optionally --initrd, --cmdline)', 2);
    if (f.disk) throw new CliError('--disk does not go with --format kernel; use --kernel', 2);
    source = { kernel: abs(f.kernel), ...(f.initrd ? { initrd: abs(f.initrd) } : {}) };
  } else {
    if (!f.disk) throw new CliError(`--format ${f.format} needs --disk PATH_OR_URL`, 2);
    if (f.kernel || f.initrd || f.cmdline)
      throw new CliError('--kernel, --initrd and --cmdline go with --format kernel only', 2);
    source = { disk: abs(f.disk) };
  }
  if (f.sha256 !== undefined && !/^[0-9a-fA-F]{64}$/.test(f.sha256))
    throw new CliError('--sha256 takes 64 hex digits', 2);
  return {
    name,
    format: f.format,
    visibility: f.public ? 'public' : 'private',
    source,
    ...(f.osType ? { osType: f.osType } : {}),
    ...(f.osDistro ? { osDistro: f.osDistro } : {}),
    ...(f.firmware ? { firmware: f.firmware } : {}),
    ...(f.cmdline ? { cmdline: f.cmdline } : {}),
    ...(f.sha256 ? { sha256: f.sha256.toLowerCase() } : {}),
  };
}

// ---- the tiny guest image ------------------------------------------------------------------

/** Builds the tiny guest into a directory (src/agent/images/tiny.ts `buildTinyImage`). */
export type TinyBuilder = (
  outDir: string,
  opts: { onProgress?: (step: string, fraction: number) => void },
) => Promise<TinyImage>;

/** Loaded on demand: the builder (apt, busybox, cpio) is needed by this one command only. */
export async function loadTinyBuilder(): Promise<TinyBuilder> {
  return (await import('../../agent/images/tiny.js')).buildTinyImage;
}

/** `$XDG_CACHE_HOME/yunhai/tiny`, else `~/.cache/yunhai/tiny`. */
export function defaultTinyDir(env: NodeJS.ProcessEnv): string {
  const cache = env.XDG_CACHE_HOME || join(env.HOME || homedir(), '.cache');
  return join(cache, 'yunhai', 'tiny');
}

export interface BuildTinyFlags {
  out?: string;
  name: string;
  wait: boolean;
  timeout: number;
}

/**
 * Builds the tiny guest (kernel + initrd) here with a progress bar, then imports it as a public
 * kernel image and waits until it is available. An identical public image already there is reused.
 */
export async function buildTinyAndImport(
  ctx: CliContext,
  client: ApiClient,
  printer: Printer,
  f: BuildTinyFlags,
  load: () => Promise<TinyBuilder> = loadTinyBuilder,
): Promise<void> {
  const build = await load();
  const outDir = f.out ? resolve(ctx.cwd, f.out) : defaultTinyDir(ctx.env);
  const bar = barProgress(ctx.io, 'building tiny image');
  let tiny: TinyImage;
  try {
    tiny = await build(outDir, { onProgress: (step, fraction) => bar.update(fraction, step) });
  } catch (e) {
    bar.stop();
    throw new CliError(`building the tiny image failed: ${e instanceof Error ? e.message : String(e)}`, 1);
  }
  bar.stop();
  printer.note(
    `Built the tiny image: kernel ${tiny.kernelVersion}, ${formatBytes(tiny.sizeBytes)}, in ${outDir}`,
  );

  const kernelPath = resolve(ctx.cwd, tiny.kernelPath);
  const initrdPath = resolve(ctx.cwd, tiny.initrdPath);
  const { kernel: kernelSha, initrd: initrdSha } = tiny.sha256;
  const sameName = (
    await client.list<ImageView>('/images', { visibility: 'public' }, { all: true })
  ).items.filter((i) => i.name === f.name);
  const existing = sameName.find(
    (i) =>
      i.status === 'available' &&
      i.format === 'kernel' &&
      i.files.kernel?.sha256 === kernelSha &&
      i.files.initrd?.sha256 === initrdSha &&
      (i.cmdline ?? '') === tiny.cmdline,
  );
  if (existing) {
    printer.result(
      existing,
      () => `Image ${existing.name} (${existing.id}) already holds this build; nothing to import.\n`,
    );
    return;
  }
  const created = await client.post<ImageView>('/images', {
    name: f.name,
    format: 'kernel',
    visibility: 'public',
    source: { kernel: kernelPath, initrd: initrdPath },
    osType: 'linux',
    osDistro: `debian-kernel-${tiny.kernelVersion}`,
    firmware: 'bios',
    cmdline: tiny.cmdline,
    sha256: kernelSha,
  });
  if (!f.wait) {
    printer.result(created, () => `Importing image ${created.name} (${created.id}).\n`);
    return;
  }
  const image = await waitImage(ctx, client, created, f.timeout);
  printer.result(
    image,
    () =>
      importedText(image) +
      `Try it: yunhai instance create tiny-1 --image ${image.name} --flavor tiny.small\n`,
  );
  // Launches by name take the newest image; older builds stay until deleted.
  const older = sameName.filter((i) => i.status !== 'error');
  if (older.length && !printer.json)
    printer.note(
      `${older.length} older public image${older.length === 1 ? '' : 's'} named ${f.name} remain${older.length === 1 ? 's' : ''} (${older.map((i) => i.id).join(', ')}); ` +
        `new instances use the newest. Remove with: yunhai image delete ID --yes`,
    );
}

export function registerImageCommands(program: Command, ctx: CliContext) {
  const image = program
    .command('image')
    .description('Boot images: import (qcow2, raw, ISO, kernel + initrd), list, delete')
    .addHelpText(
      'after',
      examples(
        'yunhai image build tiny',
        'yunhai image import ubuntu-24.04 --format qcow2 --disk https://cloud-images.ubuntu.com/noble/current/noble-server-cloudimg-amd64.img',
        'yunhai image list',
      ),
    );

  withListOptions(
    image
      .command('list')
      .description('List public images and your tenant’s own')
      .option('--visibility <v>', 'public or private', choice('--visibility', ['public', 'private'] as const))
      .option(
        '--status <status>',
        'importing, available or error',
        choice('--status', ['importing', 'available', 'error'] as const),
      ),
  )
    .addHelpText('after', examples('yunhai image list', 'yunhai image list --visibility public -o json'))
    .action(async (f: ListFlags & { visibility?: string; status?: string }, cmd: Command) => {
      await printList<ImageView>(ctx, cmd, {
        path: '/images',
        query: { visibility: f.visibility, status: f.status },
        flags: f,
        label: 'images',
        columns: IMAGE_COLUMNS,
      });
    });

  image
    .command('show')
    .description('Show an image (with its import error, if any)')
    .argument('<image>', IMAGE_REF)
    .action(async (ref: string, _f: unknown, cmd: Command) => {
      const { client } = clientFor(ctx, cmd);
      const id = await resolveImageId(client, ref);
      const i = await client.get<ImageView>(`/images/${seg(id)}`);
      printerFor(ctx, cmd).result(i, () => imageFields(i));
    });

  image
    .command('import')
    .description('Import an image from a file on the control-plane host or an http(s) URL, and wait for it')
    .argument('<name>', 'letters, digits, . _ -, at most 128 characters')
    .requiredOption('--format <format>', IMAGE_FORMATS.join(', '), choice('--format', IMAGE_FORMATS))
    .option('--disk <path-or-url>', 'the disk image (qcow2, raw, iso)')
    .option('--kernel <path-or-url>', 'the kernel (format kernel)')
    .option('--initrd <path-or-url>', 'the initrd (format kernel)')
    .option('--cmdline <text>', 'kernel command line (format kernel)')
    .option('--public', 'visible to every tenant (platform admins)')
    .option('--os-type <type>', OS_TYPES.join(', '), choice('--os-type', OS_TYPES))
    .option('--os-distro <name>', 'e.g. ubuntu-24.04')
    .option('--firmware <firmware>', 'bios or uefi', choice('--firmware', FIRMWARES))
    .option('--sha256 <hex>', 'expected SHA-256 of the disk (or kernel); the import fails when it differs')
    .option('--no-wait', 'return at once, with the image still importing')
    .option(
      '--timeout <seconds>',
      'give up waiting after this long (the import carries on)',
      timeoutSeconds,
      DEFAULT_WAIT_SECONDS,
    )
    .addHelpText(
      'after',
      `
Paths are read by the control plane, so they must exist on its host; relative paths are made absolute
here. URLs are downloaded by the control plane.
${examples(
  'yunhai image import ubuntu-24.04 --format qcow2 --disk ./noble.img --os-distro ubuntu-24.04',
  'yunhai image import alpine --format kernel --kernel ./vmlinuz --initrd ./initrd --cmdline "console=ttyS0"',
  'yunhai image import debian --format qcow2 --disk https://example.com/debian.qcow2 --sha256 <hex> --public',
)}`,
    )
    .action(async (name: string, f: ImportFlags, cmd: Command) => {
      const body = importBody(ctx.cwd, name, f);
      const { client } = clientFor(ctx, cmd);
      const printer = printerFor(ctx, cmd);
      const created = await client.post<ImageView>('/images', body);
      if (!f.wait) {
        printer.result(
          created,
          () =>
            `Importing image ${created.name} (${created.id}); follow it with: yunhai image show ${created.id}\n`,
        );
        return;
      }
      const done = await waitImage(ctx, client, created, f.timeout);
      printer.result(done, () => importedText(done));
    });

  image
    .command('delete')
    .description('Delete an image no instance uses')
    .argument('<image>', IMAGE_REF)
    .option('-y, --yes', 'do not ask for confirmation')
    .addHelpText('after', examples('yunhai image delete img-0a1b2c3d4e5f --yes'))
    .action(async (ref: string, f: { yes?: boolean }, cmd: Command) => {
      const { client } = clientFor(ctx, cmd);
      const id = await resolveImageId(client, ref);
      const label = ref === id ? id : `${ref} (${id})`;
      await confirm(ctx, `delete image ${label}`, f.yes);
      await client.delete(`/images/${seg(id)}`);
      printerFor(ctx, cmd).result({ deleted: id }, () => `Deleted image ${label}.\n`);
    });

  const build = image.command('build').description('Build a built-in image on this machine and import it');
  build
    .command('tiny')
    .description('Build the tiny guest (a small kernel + initrd) and import it as a public image')
    .option('--out <dir>', 'where to build (default: ~/.cache/yunhai/tiny, or $XDG_CACHE_HOME/yunhai/tiny)')
    .option('--name <name>', 'image name', 'tiny')
    .option('--no-wait', 'return once the import has started')
    .option(
      '--timeout <seconds>',
      'give up waiting for the import after this long',
      timeoutSeconds,
      DEFAULT_WAIT_SECONDS,
    )
    .addHelpText(
      'after',
      `
The build runs here and the control plane imports the files from its own disk, so run this on the
control-plane host (as after \`yunhai up\`). Needs a platform admin (public image).
${examples('yunhai image build tiny', 'yunhai instance create t1 --image tiny --flavor tiny.small')}`,
    )
    .action(async (f: BuildTinyFlags, cmd: Command) => {
      const { client } = clientFor(ctx, cmd);
      await buildTinyAndImport(ctx, client, printerFor(ctx, cmd), f);
    });
}
