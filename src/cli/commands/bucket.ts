import { createWriteStream, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type Command, InvalidArgumentError } from 'commander';
import type { CliContext } from '../context.js';
import { CliError } from '../errors.js';
import { type Column, formatBytes, shortTime } from '../output.js';
import { barProgress } from '../progress.js';
import { type ListedObject, S3Client } from '../s3-client.js';
import { clientFor, confirm, examples, printerFor, printList, seg, withListOptions } from './common.js';

interface BucketView {
  name: string;
  tenantId: string;
  tenantName: string;
  region: string;
  versioning: string;
  objectLockEnabled: boolean;
  objectCount: number;
  sizeBytes: number;
  createdAt: string;
  currentObjects?: number;
  multipartUploads?: number;
}

const BUCKET_COLUMNS: Column<BucketView>[] = [
  { header: 'NAME', value: (b) => b.name },
  { header: 'OBJECTS', value: (b) => b.objectCount, align: 'right' },
  { header: 'SIZE', value: (b) => formatBytes(b.sizeBytes), align: 'right' },
  { header: 'VERSIONING', value: (b) => b.versioning },
  { header: 'TENANT', value: (b) => b.tenantName },
  { header: 'CREATED', value: (b) => shortTime(b.createdAt) },
];

const MiB = 1024 * 1024;
/** Files larger than the part size go up in parts, four at a time. */
const DEFAULT_PART_SIZE = 16 * MiB;
const MIN_PART_SIZE = 5 * MiB;
const MAX_PARTS = 10_000;

/** `s3://bucket/key`, or `bucket/key` where the argument can only be remote. */
export function parseS3Path(
  arg: string,
  opts: { requireScheme?: boolean } = {},
): { bucket: string; key: string } {
  const m = /^s3:\/\/(.*)$/i.exec(arg);
  if (!m && opts.requireScheme) throw new CliError(`'${arg}' is not an s3:// path`, 2);
  const rest = m ? m[1]! : arg;
  const slash = rest.indexOf('/');
  const bucket = slash < 0 ? rest : rest.slice(0, slash);
  if (!bucket) throw new CliError(`'${arg}' names no bucket: use s3://bucket/key or bucket/key`, 2);
  return { bucket, key: slash < 0 ? '' : rest.slice(slash + 1) };
}

const isRemote = (arg: string) => /^s3:\/\//i.test(arg);

function sizeArg(v: string): number {
  const m = /^(\d+)\s*(B|KiB|MiB|GiB|K|M|G)?$/i.exec(v.trim());
  if (!m) throw new InvalidArgumentError('--part-size takes a size like 16MiB or 64MiB.');
  const unit = (m[2] ?? 'B').toUpperCase()[0]!;
  const n = Number(m[1]) * ({ B: 1, K: 1024, M: MiB, G: 1024 * MiB }[unit] ?? 1);
  if (n < MIN_PART_SIZE) throw new InvalidArgumentError('--part-size must be at least 5MiB.');
  return n;
}

/**
 * The S3 client for this invocation: the profile's (or the environment's) access key, and the S3
 * endpoint from --s3-endpoint, $YUNHAI_S3_ENDPOINT, or the control plane's GET /api/v1/endpoints.
 */
export async function s3ClientFor(ctx: CliContext, cmd: Command): Promise<S3Client> {
  const { client, target } = clientFor(ctx, cmd);
  const c = target.credentials;
  if (c.kind !== 'sigv4') {
    throw new CliError(
      `bucket commands sign S3 requests with an access key, and profile '${target.profile}' has only a session: create a key (\`yunhai key create\`) and \`yunhai login --access-key …\`, or set YUNHAI_ACCESS_KEY_ID and YUNHAI_SECRET_ACCESS_KEY`,
      2,
    );
  }
  const flag = cmd.optsWithGlobals<{ s3Endpoint?: string }>().s3Endpoint;
  let endpoint = flag || ctx.env.YUNHAI_S3_ENDPOINT;
  if (!endpoint) {
    const all = await client.get<Record<string, string>>('/endpoints');
    if (!all?.s3) throw new CliError(`${client.endpoint} reports no s3 endpoint; pass --s3-endpoint`, 1);
    const s3 = new URL(all.s3);
    const api = new URL(client.endpoint);
    // A server listening on every interface reports loopback URLs; reach its s3 port the way we reach its API.
    if (isLoopback(s3.hostname) && !isLoopback(api.hostname)) s3.hostname = api.hostname;
    endpoint = s3.origin;
  }
  try {
    new URL(endpoint);
  } catch {
    throw new CliError(`invalid S3 endpoint '${endpoint}'`, 2);
  }
  return new S3Client({ endpoint, keys: { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey } });
}

const isLoopback = (h: string) => h === 'localhost' || h === '[::1]' || h === '::1' || h.startsWith('127.');

/** Runs `fn` with a client and always releases its sockets. */
async function withS3<T>(ctx: CliContext, cmd: Command, fn: (s3: S3Client) => Promise<T>): Promise<T> {
  const s3 = await s3ClientFor(ctx, cmd);
  try {
    return await fn(s3);
  } finally {
    s3.close();
  }
}

async function upload(
  ctx: CliContext,
  cmd: Command,
  file: string,
  dest: { bucket: string; key: string },
  partSize: number,
  quietJson = false,
): Promise<Record<string, unknown>> {
  const path = resolve(ctx.cwd, file);
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(path);
  } catch {
    throw new CliError(`${file}: no such file`, 2);
  }
  if (!st.isFile()) throw new CliError(`${file} is not a regular file`, 2);
  const key = dest.key === '' || dest.key.endsWith('/') ? dest.key + basename(path) : dest.key;
  const size = st.size;
  const part = Math.max(partSize, Math.ceil(size / MAX_PARTS));
  const printer = printerFor(ctx, cmd);
  const bar = barProgress(ctx.io, `upload ${basename(path)}`);
  let done = 0;
  const t0 = Date.now();
  const etag = await withS3(ctx, cmd, async (s3) => {
    try {
      if (size <= part) {
        const body = S3Client.fileStream(path);
        body.on('data', (c: Buffer | string) => {
          done += c.length;
          bar.bytes(done, size);
        });
        return await s3.putObject(dest.bucket, key, body, { length: size });
      }
      return await s3.uploadFileMultipart(dest.bucket, key, path, size, {
        partSize: part,
        onBytes: (n) => {
          done += n;
          bar.bytes(done, size, `${Math.ceil(done / part)}/${Math.ceil(size / part)} parts`);
        },
      });
    } finally {
      bar.stop();
    }
  });
  const result = { bucket: dest.bucket, key, size, etag };
  if (!(quietJson && printer.json))
    printer.result(result, () => `upload: ${file} to s3://${dest.bucket}/${key} (${rate(size, t0)})\n`);
  return result;
}

function rate(bytes: number, t0: number): string {
  const s = Math.max(0.001, (Date.now() - t0) / 1000);
  return `${formatBytes(bytes)} in ${s.toFixed(1)} s, ${formatBytes(Math.round(bytes / s))}/s`;
}

async function download(
  ctx: CliContext,
  cmd: Command,
  src: { bucket: string; key: string },
  to: string | undefined,
  quietJson = false,
): Promise<Record<string, unknown>> {
  if (!src.key || src.key.endsWith('/'))
    throw new CliError(`s3://${src.bucket}/${src.key} names no object`, 2);
  let path = resolve(ctx.cwd, to ?? basename(src.key));
  if ((to?.endsWith('/') || existsSync(path)) && existsSync(path) && statSync(path).isDirectory())
    path = join(path, basename(src.key));
  const tmp = `${path}.yunhai-part`;
  const printer = printerFor(ctx, cmd);
  const t0 = Date.now();
  const size = await withS3(ctx, cmd, async (s3) => {
    const bar = barProgress(ctx.io, `download ${basename(src.key)}`);
    let total = 0;
    let done = 0;
    const counter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        done += chunk.length;
        bar.bytes(done, total);
        cb(null, chunk);
      },
    });
    try {
      const sink = createWriteStream(tmp);
      const written = pipeline(counter, sink);
      // A failed request leaves the pipe open: end it so the temp file closes. The pipeline then
      // rejects (premature close) after we have thrown; mark that rejection as seen.
      await s3.getObject(src.bucket, src.key, counter, { onSize: (n) => (total = n) }).catch((e) => {
        written.catch(() => {});
        counter.destroy();
        throw e;
      });
      await written;
      if (done !== total)
        throw new CliError(`download of ${src.key} ended after ${done} of ${total} bytes`, 1);
      renameSync(tmp, path);
      return total;
    } catch (e) {
      rmSync(tmp, { force: true });
      throw e;
    } finally {
      bar.stop();
    }
  });
  const result = { bucket: src.bucket, key: src.key, file: path, size };
  if (!(quietJson && printer.json))
    printer.result(
      result,
      () => `download: s3://${src.bucket}/${src.key} to ${to ?? basename(path)} (${rate(size, t0)})\n`,
    );
  return result;
}

/** Every regular file under `dir`, as paths relative to it with `/` separators. */
function walk(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(dir, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...walk(dir, r));
    else if (e.isFile()) out.push(r);
  }
  return out.sort();
}

/** `cp -r`: a directory up under a prefix, or every object under a prefix down into a directory. */
async function copyRecursive(ctx: CliContext, cmd: Command, src: string, dest: string, partSize: number) {
  const results: Record<string, unknown>[] = [];
  if (isRemote(dest)) {
    const root = resolve(ctx.cwd, src);
    if (!existsSync(root) || !statSync(root).isDirectory())
      throw new CliError(`${src} is not a directory`, 2);
    const to = parseS3Path(dest);
    const prefix = to.key === '' || to.key.endsWith('/') ? to.key : `${to.key}/`;
    for (const rel of walk(root))
      results.push(
        await upload(ctx, cmd, join(src, rel), { bucket: to.bucket, key: prefix + rel }, partSize, true),
      );
  } else {
    const from = parseS3Path(src);
    const prefix = from.key === '' || from.key.endsWith('/') ? from.key : `${from.key}/`;
    const root = resolve(ctx.cwd, dest);
    const keys: string[] = [];
    await withS3(ctx, cmd, async (s3) => {
      for await (const page of s3.listAll(from.bucket, { prefix }))
        keys.push(...page.objects.map((o) => o.key));
    });
    for (const key of keys) {
      const rel = key.slice(prefix.length);
      // A key is not trusted as a path: no absolute paths, no '..', nothing outside the destination.
      const target = resolve(root, rel);
      if (
        rel === '' ||
        rel.endsWith('/') ||
        rel.split('/').includes('..') ||
        !target.startsWith(root + sep)
      ) {
        ctx.io.err(`skipping s3://${from.bucket}/${key}: not a safe relative file name\n`);
        continue;
      }
      mkdirSync(dirname(target), { recursive: true });
      results.push(await download(ctx, cmd, { bucket: from.bucket, key }, target, true));
    }
  }
  const printer = printerFor(ctx, cmd);
  if (printer.json) printer.result(results, () => '');
  else if (results.length === 0) printer.note(`Nothing to copy from ${src}.`);
}

const OBJECT_COLUMNS: Column<ListedObject & { prefix?: boolean }>[] = [
  { header: 'MODIFIED', value: (o) => (o.prefix ? '' : shortTime(o.lastModified)) },
  { header: 'SIZE', value: (o) => (o.prefix ? 'PRE' : formatBytes(o.size)), align: 'right' },
  { header: 'KEY', value: (o) => o.key, shrink: false },
];

export function registerBucketCommands(program: Command, ctx: CliContext) {
  const bucket = program
    .command('bucket')
    .description('Object storage: buckets and objects over the S3 endpoint')
    .option(
      '--s3-endpoint <url>',
      'S3 endpoint (env YUNHAI_S3_ENDPOINT; default: what the control plane reports)',
    )
    .addHelpText(
      'after',
      examples(
        'yunhai bucket mb photos',
        'yunhai bucket put ./cat.jpg photos/2024/',
        'yunhai bucket ls photos/2024/',
        'yunhai bucket cp s3://photos/2024/cat.jpg ./cat-copy.jpg',
        'yunhai bucket rm photos/2024/cat.jpg',
        'yunhai bucket rb photos',
      ),
    );

  bucket
    .command('mb')
    .alias('create')
    .description('Create a bucket')
    .argument('<name>', 'bucket name (s3:// optional): 3-63 lowercase letters, digits, . and -')
    .option('--region <region>', 'region (LocationConstraint)')
    .action(async (name: string, f: { region?: string }, cmd: Command) => {
      const { bucket: b, key } = parseS3Path(name);
      if (key) throw new CliError(`a bucket name has no '/': '${name}'`, 2);
      await withS3(ctx, cmd, (s3) => s3.createBucket(b, f.region));
      printerFor(ctx, cmd).result({ bucket: b }, () => `make_bucket: ${b}\n`);
    });

  withListOptions(
    bucket
      .command('ls')
      .description('List buckets (with sizes and object counts), or the objects of a bucket under a prefix')
      .argument('[path]', 'bucket or bucket/prefix (s3:// optional); none lists buckets')
      .option('-r, --recursive', 'every key under the prefix, not rolled up at /')
      .option('--delimiter <d>', 'roll keys up at this delimiter (default /; ignored with --recursive)')
      .option('--tenant <tenant>', 'buckets of this tenant (platform admins; id or name)'),
  ).action(
    async (
      path: string | undefined,
      f: { recursive?: boolean; delimiter?: string; tenant?: string; limit?: number; all?: boolean },
      cmd: Command,
    ) => {
      if (!path) {
        await printList<BucketView>(ctx, cmd, {
          path: '/buckets',
          query: { tenant: f.tenant },
          flags: f,
          label: 'buckets',
          columns: BUCKET_COLUMNS,
        });
        return;
      }
      const { bucket: b, key: prefix } = parseS3Path(path);
      const delimiter = f.recursive ? undefined : (f.delimiter ?? '/');
      const rows: (ListedObject & { prefix?: boolean })[] = [];
      const listing = { objects: [] as ListedObject[], prefixes: [] as string[] };
      await withS3(ctx, cmd, async (s3) => {
        for await (const page of s3.listAll(b, { prefix, delimiter })) {
          listing.objects.push(...page.objects);
          listing.prefixes.push(...page.prefixes);
          if (f.limit !== undefined && listing.objects.length + listing.prefixes.length >= f.limit) break;
        }
      });
      for (const p of listing.prefixes)
        rows.push({ key: p, size: 0, etag: '', lastModified: '', prefix: true });
      rows.push(...listing.objects);
      rows.sort((a, c) => (a.key < c.key ? -1 : a.key > c.key ? 1 : 0));
      const shown = f.limit !== undefined ? rows.slice(0, f.limit) : rows;
      printerFor(ctx, cmd).table(listing, shown, OBJECT_COLUMNS, `No objects under s3://${b}/${prefix}.`);
    },
  );

  bucket
    .command('info')
    .description('One bucket: region, versioning, size, object counts, open multipart uploads')
    .argument('<name>', 'bucket name')
    .action(async (name: string, _f: unknown, cmd: Command) => {
      const { client } = clientFor(ctx, cmd);
      const b = await client.get<BucketView>(`/buckets/${seg(parseS3Path(name).bucket)}`);
      printerFor(ctx, cmd).result(b, () =>
        [
          `name              ${b.name}`,
          `tenant            ${b.tenantName} (${b.tenantId})`,
          `region            ${b.region}`,
          `versioning        ${b.versioning}`,
          `object lock       ${b.objectLockEnabled ? 'enabled' : 'off'}`,
          `size              ${formatBytes(b.sizeBytes)}`,
          `objects           ${b.currentObjects ?? b.objectCount} current, ${b.objectCount} stored versions`,
          `multipart uploads ${b.multipartUploads ?? 0} open`,
          `created           ${shortTime(b.createdAt)}`,
          '',
        ].join('\n'),
      );
    });

  const partSizeOpt = (c: Command) =>
    c.option(
      '--part-size <size>',
      'upload files larger than this in parts of this size (default 16MiB)',
      sizeArg,
    );

  partSizeOpt(
    bucket
      .command('put')
      .description('Upload a file (in parts, four at a time, when larger than --part-size)')
      .argument('<file>', 'local file')
      .argument(
        '<dest>',
        'bucket/key or bucket/prefix/ (s3:// optional); a trailing / appends the file name',
      ),
  ).action(async (file: string, dest: string, f: { partSize?: number }, cmd: Command) => {
    await upload(ctx, cmd, file, parseS3Path(dest), f.partSize ?? DEFAULT_PART_SIZE);
  });

  bucket
    .command('get')
    .description('Download an object')
    .argument('<src>', 'bucket/key (s3:// optional)')
    .argument('[file]', 'local file or directory (default: the key’s last segment, here)')
    .action(async (src: string, file: string | undefined, _f: unknown, cmd: Command) => {
      await download(ctx, cmd, parseS3Path(src), file);
    });

  partSizeOpt(
    bucket
      .command('cp')
      .description('Copy a file up (file s3://bucket/key) or down (s3://bucket/key file); -r copies trees')
      .argument('<src>', 'local file or s3://bucket/key (with -r: a directory or s3://bucket/prefix)')
      .argument('<dest>', 's3://bucket/key or local path (with -r: s3://bucket/prefix or a directory)')
      .option('-r, --recursive', 'copy a directory tree up, or every object under a prefix down'),
  ).action(async (src: string, dest: string, f: { partSize?: number; recursive?: boolean }, cmd: Command) => {
    if (isRemote(src) && isRemote(dest))
      throw new CliError('copying between two s3:// paths is not supported yet: get, then put', 2);
    if (!isRemote(src) && !isRemote(dest)) throw new CliError('one side of cp must be an s3:// path', 2);
    if (f.recursive) {
      await copyRecursive(ctx, cmd, src, dest, f.partSize ?? DEFAULT_PART_SIZE);
      return;
    }
    if (isRemote(dest)) await upload(ctx, cmd, src, parseS3Path(dest), f.partSize ?? DEFAULT_PART_SIZE);
    else await download(ctx, cmd, parseS3Path(src), dest);
  });

  bucket
    .command('rm')
    .description('Delete an object, or with --recursive every object under a prefix')
    .argument('<path>', 'bucket/key or bucket/prefix (s3:// optional)')
    .option('-r, --recursive', 'delete every key under the prefix')
    .option('-y, --yes', 'do not ask before a recursive delete')
    .action(async (path: string, f: { recursive?: boolean; yes?: boolean }, cmd: Command) => {
      const { bucket: b, key } = parseS3Path(path);
      const printer = printerFor(ctx, cmd);
      if (!f.recursive) {
        if (!key) throw new CliError(`'${path}' names no object (use rb for buckets, or --recursive)`, 2);
        await withS3(ctx, cmd, (s3) => s3.deleteObject(b, key));
        printer.result({ bucket: b, key }, () => `delete: s3://${b}/${key}\n`);
        return;
      }
      await confirm(ctx, `delete every object under s3://${b}/${key}`, f.yes);
      const n = await withS3(ctx, cmd, (s3) => deleteAll(s3, b, key));
      printer.result(
        { bucket: b, prefix: key, deleted: n },
        () => `deleted ${n} object(s) under s3://${b}/${key}\n`,
      );
    });

  bucket
    .command('rb')
    .description('Delete a bucket (it must be empty, unless --force)')
    .argument('<name>', 'bucket name (s3:// optional)')
    .option('--force', 'first delete every current object in it')
    .option('-y, --yes', 'do not ask before --force deletes objects')
    .action(async (name: string, f: { force?: boolean; yes?: boolean }, cmd: Command) => {
      const { bucket: b } = parseS3Path(name);
      if (f.force) await confirm(ctx, `delete bucket ${b} and every object in it`, f.yes);
      await withS3(ctx, cmd, async (s3) => {
        if (f.force) await deleteAll(s3, b, '');
        await s3.deleteBucket(b);
      });
      printerFor(ctx, cmd).result({ bucket: b }, () => `remove_bucket: ${b}\n`);
    });
}

/** Deletes every current object under a prefix, 1000 keys per request; answers how many. */
async function deleteAll(s3: S3Client, bucket: string, prefix: string): Promise<number> {
  let n = 0;
  for (;;) {
    const page = await s3.listObjects(bucket, { prefix, maxKeys: 1000 });
    if (page.objects.length === 0) return n;
    const failed = await s3.deleteObjects(
      bucket,
      page.objects.map((o) => o.key),
    );
    if (failed.length > 0) throw new CliError(`could not delete ${failed[0]!.key}: ${failed[0]!.code}`, 1);
    n += page.objects.length;
  }
}
