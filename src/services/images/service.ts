import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import type { Logger } from 'pino';
import { appendAudit } from '../../platform/audit/audit.js';
import type { Database } from '../../platform/db/database.js';
import type { ImagesTable } from '../../platform/db/schema.js';
import { notFound, YunhaiError } from '../../platform/errors.js';
import { type Page, type PageQuery, stringCursor, toPage } from '../../platform/http/pagination.js';
import { newId } from '../../platform/ids.js';
import { authorize, requireAllowed } from '../../platform/policy/authorize.js';
import { principalLabel, type RequestContext } from '../../platform/policy/principal.js';

const execFileP = promisify(execFile);

/** One stored file of an image: the disk, or a kernel and initrd. */
export interface ImageFile {
  name: string;
  size: number;
  sha256: string;
}
export type ImageFileKind = 'disk' | 'kernel' | 'initrd';
export type ImageFiles = Partial<Record<ImageFileKind, ImageFile>>;

export interface ImageView {
  id: string;
  tenantId: string | null;
  name: string;
  visibility: 'public' | 'private';
  format: ImagesTable['format'];
  osType: string;
  osDistro: string;
  firmware: 'bios' | 'uefi';
  status: ImagesTable['status'];
  error: string | null;
  files: ImageFiles;
  cmdline: string | null;
  sizeBytes: number;
  virtualSizeBytes: number;
  minDiskGiB: number;
  createdAt: string;
}

export interface ImportSource {
  /** A file on the control-plane host, or an http(s) URL. */
  disk?: string;
  kernel?: string;
  initrd?: string;
}

export interface ImportInput {
  name: string;
  visibility: 'public' | 'private';
  format: ImagesTable['format'];
  source: ImportSource;
  osType: string;
  osDistro: string;
  firmware: 'bios' | 'uefi';
  cmdline?: string;
  /** Expected sha256 of the disk (or kernel) file; the import fails when it differs. */
  sha256?: string;
  tenantId?: string;
}

export function imageView(r: ImagesTable): ImageView {
  return {
    id: r.id,
    tenantId: r.tenant_id,
    name: r.name,
    visibility: r.visibility,
    format: r.format,
    osType: r.os_type,
    osDistro: r.os_distro,
    firmware: r.firmware,
    status: r.status,
    error: r.error,
    files: JSON.parse(r.files) as ImageFiles,
    cmdline: r.cmdline,
    sizeBytes: r.size_bytes,
    virtualSizeBytes: r.virtual_size_bytes,
    minDiskGiB: r.min_disk_gib,
    createdAt: new Date(r.created_at).toISOString(),
  };
}

/** Copies a local file or URL into `dest` through a temp file (fsync, rename), hashing on the way. */
async function fetchInto(source: string, dest: string): Promise<ImageFile> {
  const tmp = `${dest}.tmp-${randomBytes(6).toString('hex')}`;
  const hash = createHash('sha256');
  let size = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      size += chunk.length;
      done(null, chunk);
    },
  });
  try {
    let input: Readable;
    if (/^https?:\/\//.test(source)) {
      const res = await fetch(source);
      if (!res.ok || !res.body)
        throw new YunhaiError('ValidationError', `Downloading ${source} failed: HTTP ${res.status}.`);
      input = Readable.fromWeb(res.body as import('node:stream/web').ReadableStream);
    } else {
      const st = await stat(source).catch(() => null);
      if (!st?.isFile())
        throw new YunhaiError('ValidationError', `No such file on the control-plane host: ${source}.`);
      input = createReadStream(source);
    }
    await pipeline(input, tap, createWriteStream(tmp, { mode: 0o600 }));
    const fh = await open(tmp, 'r');
    await fh.sync();
    await fh.close();
    await rename(tmp, dest);
    return { name: dest.split('/').pop()!, size, sha256: hash.digest('hex') };
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/** Format and virtual size as qemu-img sees them; refuses files qemu-img cannot read. */
export async function inspectDisk(file: string): Promise<{ format: string; virtualSize: number }> {
  try {
    const { stdout } = await execFileP('qemu-img', ['info', '--output=json', file], { timeout: 30_000 });
    const info = JSON.parse(stdout) as { format: string; 'virtual-size': number };
    return { format: info.format, virtualSize: info['virtual-size'] };
  } catch (e) {
    const msg = (e as { stderr?: string }).stderr?.trim() || String(e);
    throw new YunhaiError(
      'ValidationError',
      `The image is not a readable disk image: ${msg.split('\n').pop()}`,
    );
  }
}

/**
 * The image registry: public images (platform admins) and each tenant's private ones. Files live
 * under `<dataDir>/images/<id>/`; imports run in the background (status importing → available or
 * error) and check format, size and checksum.
 */
export function createImageService(deps: { database: Database; dataDir: string; logger?: Logger }) {
  const { database } = deps;
  const imagesDir = join(deps.dataDir, 'images');
  const pending = new Set<Promise<unknown>>();

  async function visible(ctx: RequestContext, id: string) {
    const r = await database.db.selectFrom('images').selectAll().where('id', '=', id).executeTakeFirst();
    const p = ctx.principal;
    if (!r || (r.visibility !== 'public' && p.role !== 'platform-admin' && r.tenant_id !== p.tenantId))
      throw notFound('Image', id);
    return r;
  }

  async function runImport(id: string, input: ImportInput) {
    const dir = join(imagesDir, id);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const files: ImageFiles = {};
    let virtualSize = 0;
    try {
      if (input.format === 'kernel') {
        if (!input.source.kernel)
          throw new YunhaiError('ValidationError', 'A kernel image needs source.kernel.');
        files.kernel = await fetchInto(input.source.kernel, join(dir, 'kernel'));
        if (input.source.initrd) files.initrd = await fetchInto(input.source.initrd, join(dir, 'initrd'));
      } else {
        if (!input.source.disk) throw new YunhaiError('ValidationError', 'A disk image needs source.disk.');
        files.disk = await fetchInto(input.source.disk, join(dir, 'disk'));
        const info = await inspectDisk(join(dir, 'disk'));
        const expected = input.format === 'iso' ? 'raw' : input.format;
        if (info.format !== expected) {
          throw new YunhaiError('ValidationError', `The file is ${info.format}, not ${input.format}.`);
        }
        if (input.format === 'qcow2') {
          // A qcow2 with a backing file would reach outside the image store.
          const { stdout } = await execFileP('qemu-img', ['info', '--output=json', join(dir, 'disk')]);
          if ((JSON.parse(stdout) as { 'backing-filename'?: string })['backing-filename']) {
            throw new YunhaiError(
              'ValidationError',
              'qcow2 images with a backing file are not accepted; flatten it first.',
            );
          }
          await execFileP('qemu-img', ['check', join(dir, 'disk')], { timeout: 120_000 }).catch(
            (e: { stdout?: string }) => {
              throw new YunhaiError(
                'ValidationError',
                `The qcow2 image is corrupt: ${(e.stdout ?? '').trim().split('\n')[0]}`,
              );
            },
          );
        }
        virtualSize = info.virtualSize;
      }
      const main = files.disk ?? files.kernel!;
      if (input.sha256 && input.sha256.toLowerCase() !== main.sha256) {
        throw new YunhaiError(
          'ValidationError',
          `Checksum mismatch: expected ${input.sha256}, got ${main.sha256}.`,
        );
      }
      const size = Object.values(files).reduce((a, f) => a + (f?.size ?? 0), 0);
      await database.db
        .updateTable('images')
        .set({
          status: 'available',
          files: JSON.stringify(files),
          size_bytes: size,
          virtual_size_bytes: virtualSize,
          min_disk_gib: Math.max(1, Math.ceil(virtualSize / 1024 ** 3)),
          updated_at: Date.now(),
        })
        .where('id', '=', id)
        .execute();
    } catch (e) {
      await rm(dir, { recursive: true, force: true });
      const message = e instanceof YunhaiError ? e.message : String(e);
      deps.logger?.warn({ imageId: id, err: message }, 'image import failed');
      await database.db
        .updateTable('images')
        .set({ status: 'error', error: message, updated_at: Date.now() })
        .where('id', '=', id)
        .execute();
    }
  }

  return {
    imagesDir,

    /** Starts an import and returns the new image (status `importing`). */
    async importImage(ctx: RequestContext, input: ImportInput): Promise<ImageView> {
      const tenantId = input.visibility === 'public' ? null : (input.tenantId ?? ctx.principal.tenantId);
      requireAllowed(
        ctx.principal,
        input.visibility === 'public' ? 'images:ImportPublicImage' : 'images:ImportImage',
        { tenantId },
      );
      // Refused up front rather than ignored: a kernel image boots on a blank disk, a disk image
      // boots from its own bootloader; a kernel + root-disk image kind does not exist yet.
      if (input.format === 'kernel' && input.source.disk)
        throw new YunhaiError(
          'ValidationError',
          'A kernel image takes source.kernel (and source.initrd), not source.disk; import a bootable disk as qcow2 or raw.',
        );
      if (input.format !== 'kernel' && (input.source.kernel || input.source.initrd))
        throw new YunhaiError(
          'ValidationError',
          `A ${input.format} image takes source.disk only; source.kernel and source.initrd belong to format kernel.`,
        );
      const ts = Date.now();
      const row: ImagesTable = {
        id: newId('img'),
        tenant_id: tenantId,
        name: input.name,
        visibility: input.visibility,
        format: input.format,
        os_type: input.osType,
        os_distro: input.osDistro,
        firmware: input.firmware,
        status: 'importing',
        error: null,
        files: '{}',
        cmdline: input.cmdline ?? null,
        size_bytes: 0,
        virtual_size_bytes: 0,
        min_disk_gib: 1,
        created_at: ts,
        updated_at: ts,
      };
      await database.tx(async (trx) => {
        await trx.insertInto('images').values(row).execute();
        await appendAudit(trx, {
          tenantId: tenantId ?? ctx.principal.tenantId,
          principal: principalLabel(ctx.principal),
          action: 'images:ImportImage',
          resource: `image/${row.id}`,
          outcome: 'success',
          sourceIp: ctx.sourceIp,
          requestId: ctx.requestId,
          details: { name: input.name, format: input.format, visibility: input.visibility },
        });
      });
      const job = runImport(row.id, input).finally(() => pending.delete(job));
      pending.add(job);
      return imageView(row);
    },

    async list(
      ctx: RequestContext,
      q: PageQuery & { visibility?: 'public' | 'private'; status?: string },
    ): Promise<Page<ImageView>> {
      requireAllowed(ctx.principal, 'images:ListImages', { tenantId: ctx.principal.tenantId });
      const p = ctx.principal;
      let query = database.db
        .selectFrom('images')
        .selectAll()
        .orderBy('id')
        .limit(q.limit + 1);
      if (p.role !== 'platform-admin') {
        query = query.where((eb) =>
          eb.or([eb('visibility', '=', 'public'), eb('tenant_id', '=', p.tenantId)]),
        );
      }
      if (q.visibility) query = query.where('visibility', '=', q.visibility);
      if (q.status) query = query.where('status', '=', q.status as ImagesTable['status']);
      const after = stringCursor(q.cursor);
      if (after !== undefined) query = query.where('id', '>', after);
      return toPage(await query.execute(), q.limit, imageView, (r) => [r.id]);
    },

    async get(ctx: RequestContext, id: string): Promise<ImageView> {
      return imageView(await visible(ctx, id));
    },

    /** Finds an image by id or name the caller can use (own first, then public). */
    async resolve(ctx: RequestContext, idOrName: string): Promise<ImagesTable> {
      if (/^img-[a-z0-9]{12}$/.test(idOrName)) return visible(ctx, idOrName);
      const rows = await database.db
        .selectFrom('images')
        .selectAll()
        .where('name', '=', idOrName)
        .where((eb) => eb.or([eb('tenant_id', '=', ctx.principal.tenantId), eb('visibility', '=', 'public')]))
        .orderBy('created_at', 'desc')
        .execute();
      const pick =
        rows.find((r) => r.tenant_id === ctx.principal.tenantId && r.status === 'available') ??
        rows.find((r) => r.status === 'available') ??
        rows[0];
      if (!pick) throw notFound('Image', idOrName);
      return pick;
    },

    async remove(ctx: RequestContext, id: string) {
      const r = await visible(ctx, id);
      const action = r.visibility === 'public' ? 'images:ImportPublicImage' : 'images:DeleteImage';
      if (!authorize(ctx.principal, action, { tenantId: r.tenant_id }).allowed) {
        throw new YunhaiError('AccessDenied', `You cannot delete image ${id}.`);
      }
      await database.tx(async (trx) => {
        const used = await trx
          .selectFrom('instances')
          .select('id')
          .where('image_id', '=', id)
          .where('deleted_at', 'is', null)
          .limit(1)
          .execute();
        if (used.length)
          throw new YunhaiError('Conflict', `Image ${id} is in use by instance ${used[0]!.id}.`);
        await trx.deleteFrom('images').where('id', '=', id).execute();
        await appendAudit(trx, {
          tenantId: r.tenant_id ?? ctx.principal.tenantId,
          principal: principalLabel(ctx.principal),
          action: 'images:DeleteImage',
          resource: `image/${id}`,
          outcome: 'success',
          sourceIp: ctx.sourceIp,
          requestId: ctx.requestId,
        });
      });
      await rm(join(imagesDir, id), { recursive: true, force: true });
    },

    /** Path of a stored image file, for agents to download. */
    filePath(image: ImagesTable, kind: ImageFileKind): string | null {
      const files = JSON.parse(image.files) as ImageFiles;
      return files[kind] ? join(imagesDir, image.id, files[kind]!.name) : null;
    },

    async getRow(id: string) {
      return database.db.selectFrom('images').selectAll().where('id', '=', id).executeTakeFirst();
    },

    /** Waits for background imports (tests, shutdown). */
    async settle() {
      await Promise.all([...pending]);
    },
  };
}

export type ImageService = ReturnType<typeof createImageService>;
