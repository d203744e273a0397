/**
 * Instance disks: qcow2 overlays on a base image (copy-on-write, the base stays shared and
 * untouched) and blank qcow2 disks, made with `qemu-img`.
 *
 * A base is checked before use: `qemu-img info` must read it as the claimed format, qcow2 bases
 * must pass `qemu-img check`, and a base may not point at further files (a backing file or an
 * external data file would let an uploaded image make QEMU open arbitrary host files).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { HypervisorError } from '../../hypervisor.js';

const execFileP = promisify(execFile);

export const GIB = 1024 ** 3;

export interface ImageInfo {
  format: string;
  virtualSize: number;
  actualSize?: number;
  backingFile?: string;
}

interface QemuImgInfoJson {
  format?: string;
  'virtual-size'?: number;
  'actual-size'?: number;
  'backing-filename'?: string;
  'full-backing-filename'?: string;
  'format-specific'?: { type?: string; data?: { 'data-file'?: string; corrupt?: boolean } };
}

async function qemuImg(args: string[], timeoutMs = 60_000): Promise<string> {
  const { stdout } = await execFileP('qemu-img', args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 });
  return stdout;
}

function firstLine(err: unknown): string {
  const e = err as { stderr?: string; message?: string };
  const text = (e.stderr || e.message || String(err)).trim();
  return text.split('\n').filter(Boolean).slice(-1)[0] ?? text;
}

/**
 * Reads and validates a base image as `format`. Throws ImageInvalid when qemu-img cannot read
 * it, it is another format, it is corrupt, or it references other files.
 */
export async function inspectBaseImage(path: string, format: 'qcow2' | 'raw' | 'iso'): Promise<ImageInfo> {
  const want = format === 'iso' ? 'raw' : format;
  let info: QemuImgInfoJson;
  try {
    // -U: the base may be open in running VMs; a shared read is all we need.
    info = JSON.parse(await qemuImg(['info', '-U', '--output=json', '-f', want, path])) as QemuImgInfoJson;
  } catch (err) {
    throw new HypervisorError(
      'ImageInvalid',
      `image ${path} is not a readable ${format} image: ${firstLine(err)}`,
    );
  }
  if (info.format !== want || typeof info['virtual-size'] !== 'number') {
    throw new HypervisorError('ImageInvalid', `image ${path} reads as ${info.format}, not ${format}`);
  }
  if (info['backing-filename'] || info['full-backing-filename']) {
    throw new HypervisorError(
      'ImageInvalid',
      `image ${path} has a backing file; base images must be standalone`,
    );
  }
  const specific = info['format-specific']?.data;
  if (specific?.['data-file']) {
    throw new HypervisorError('ImageInvalid', `image ${path} has an external data file`);
  }
  if (specific?.corrupt) throw new HypervisorError('ImageInvalid', `image ${path} is marked corrupt`);
  if (want === 'qcow2') {
    try {
      // Exit 0: clean; 3: only leaked clusters (harmless). 1/2: unreadable or corrupt.
      await qemuImg(['check', '-U', '-f', 'qcow2', path]);
    } catch (err) {
      if ((err as { code?: number }).code !== 3) {
        throw new HypervisorError('ImageInvalid', `image ${path} fails qemu-img check: ${firstLine(err)}`);
      }
    }
  }
  return { format: want, virtualSize: info['virtual-size'], actualSize: info['actual-size'] };
}

/**
 * Creates `overlay` as a qcow2 backed by `base`, sized `sizeGiB`. The base must fit: a disk
 * smaller than the image's virtual size is refused with DiskTooSmall.
 */
export async function createOverlay(opts: {
  base: string;
  baseFormat: 'qcow2' | 'raw';
  overlay: string;
  sizeGiB: number;
}): Promise<ImageInfo> {
  const info = await inspectBaseImage(opts.base, opts.baseFormat);
  const size = opts.sizeGiB * GIB;
  if (info.virtualSize > size) {
    throw new HypervisorError(
      'DiskTooSmall',
      `disk of ${opts.sizeGiB} GiB is smaller than image ${opts.base} (${(info.virtualSize / GIB).toFixed(2)} GiB)`,
    );
  }
  await qemuImg([
    'create',
    '-q',
    '-f',
    'qcow2',
    '-F',
    opts.baseFormat,
    '-b',
    opts.base,
    opts.overlay,
    String(size),
  ]);
  return info;
}

/** Creates an empty qcow2 disk of `sizeGiB` (sparse: it takes a few hundred KiB until written). */
export async function createBlankDisk(path: string, sizeGiB: number): Promise<void> {
  await qemuImg(['create', '-q', '-f', 'qcow2', path, String(sizeGiB * GIB)]);
}

/** Grows a qcow2 disk to `sizeGiB` (cold resize to a bigger flavor); never shrinks one. */
export async function growDisk(path: string, sizeGiB: number): Promise<void> {
  await qemuImg(['resize', '-q', '-f', 'qcow2', path, String(sizeGiB * GIB)]);
}
