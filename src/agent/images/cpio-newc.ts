/**
 * A cpio "newc" (SVR4, no CRC) archive writer: the format the Linux kernel unpacks as an initramfs
 * (Documentation/driver-api/early-userspace/buffer-format.rst). Pure and deterministic: entries in
 * archive order, inode numbers from 1, owner root, one fixed mtime. Writing it ourselves means device
 * nodes (`/dev/console`) need no root and the image hash only changes when its content does.
 */

export type CpioEntry =
  | { type: 'dir'; path: string; mode?: number }
  | { type: 'file'; path: string; data: Uint8Array | string; mode?: number }
  | { type: 'symlink'; path: string; target: string }
  | { type: 'chardev'; path: string; major: number; minor: number; mode?: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;
const TRAILER = 'TRAILER!!!';

export interface CpioOptions {
  /** Seconds since the epoch recorded for every entry (default 0, for reproducible archives). */
  mtime?: number;
}

/**
 * Serialises `entries` in order. Parent directories that are not listed are added (mode 0755) just
 * before their first child, because the kernel does not create them. Throws RangeError on duplicate or
 * invalid paths.
 */
export function buildCpioNewc(entries: readonly CpioEntry[], opts: CpioOptions = {}): Buffer {
  const mtime = opts.mtime ?? 0;
  const chunks: Buffer[] = [];
  const seen = new Set<string>();
  let ino = 1;
  let size = 0;
  const emit = (
    name: string,
    mode: number,
    data: Buffer,
    extra: { nlink?: number; rdev?: [number, number] },
  ) => {
    const nameBytes = Buffer.from(`${name}\0`, 'utf8');
    const fields = [
      ino++,
      mode,
      0, // uid
      0, // gid
      extra.nlink ?? 1,
      mtime,
      data.length,
      0, // dev major
      0, // dev minor
      extra.rdev?.[0] ?? 0,
      extra.rdev?.[1] ?? 0,
      nameBytes.length,
      0, // check
    ];
    const header = Buffer.from(`070701${fields.map(hex8).join('')}`, 'ascii');
    const head = Buffer.concat([header, nameBytes]);
    chunks.push(head, pad4(head.length), data, pad4(data.length));
    size += head.length + pad4(head.length).length + data.length + pad4(data.length).length;
  };

  for (const entry of entries) {
    const p = normalise(entry.path);
    if (seen.has(p)) throw new RangeError(`duplicate cpio path: ${p}`);
    const parts = p.split('/');
    for (let i = 1; i < parts.length; i++) {
      const parent = parts.slice(0, i).join('/');
      if (!seen.has(parent)) {
        seen.add(parent);
        emit(parent, S_IFDIR | 0o755, Buffer.alloc(0), { nlink: 2 });
      }
    }
    seen.add(p);
    switch (entry.type) {
      case 'dir':
        emit(p, S_IFDIR | (entry.mode ?? 0o755), Buffer.alloc(0), { nlink: 2 });
        break;
      case 'file':
        emit(p, S_IFREG | (entry.mode ?? 0o644), toBuffer(entry.data), {});
        break;
      case 'symlink':
        emit(p, S_IFLNK | 0o777, Buffer.from(entry.target, 'utf8'), {});
        break;
      case 'chardev':
        emit(p, S_IFCHR | (entry.mode ?? 0o600), Buffer.alloc(0), { rdev: [entry.major, entry.minor] });
        break;
    }
  }
  ino = 0;
  emit(TRAILER, 0, Buffer.alloc(0), {});
  return Buffer.concat(chunks, size);
}

function normalise(path: string): string {
  const p = path.replace(/^\.?\/+/, '').replace(/\/+$/, '');
  if (p === '' || p.split('/').some((c) => c === '' || c === '.' || c === '..') || p.includes('\0')) {
    throw new RangeError(`invalid cpio path: ${JSON.stringify(path)}`);
  }
  return p;
}

function toBuffer(data: Uint8Array | string): Buffer {
  return typeof data === 'string'
    ? Buffer.from(data, 'utf8')
    : Buffer.from(data.buffer, data.byteOffset, data.length);
}

function hex8(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`cpio field out of range: ${n}`);
  return n.toString(16).padStart(8, '0').toUpperCase();
}

function pad4(n: number): Buffer {
  return Buffer.alloc((4 - (n % 4)) % 4);
}
