/**
 * A small ISO 9660 image writer (ECMA-119) with a Joliet supplementary tree: files in, image out.
 *
 * Why our own: a cloud-init seed is three small files; shelling out to genisoimage/xorriso would add a
 * host dependency for ~300 lines of well-specified layout. Pure and deterministic (same input, same bytes).
 *
 * Layout, in 2048-byte sectors:
 *   0-15  system area (zeros)
 *   16    primary volume descriptor (interchange level 1 names: `USER_DAT.;1`)
 *   17    Joliet supplementary volume descriptor (UCS-2 names: `user-data`, escape `%/E`, UCS level 3)
 *   18    volume descriptor set terminator
 *   then  L and M path tables of the primary tree, L and M path tables of the Joliet tree,
 *         the primary tree's directory extents, the Joliet tree's directory extents, and file data
 *         (each file once; both trees point at the same extents).
 * Linux, Windows and macOS read the Joliet tree, so names keep their case, hyphens and length (up to 64
 * UTF-16 units); readers that only know ISO 9660 see the 8.3 names. No Rock Ridge, no El Torito, no
 * multi-extent files (each file < 4 GiB).
 */

export const ISO_SECTOR = 2048;

export interface IsoFile {
  /** Slash-separated path inside the image, e.g. `user-data` or `openstack/latest/meta_data.json`. */
  path: string;
  data: Uint8Array | string;
}

export interface IsoOptions {
  /** Volume label, up to 32 printable ASCII characters, kept as given (cloud-init wants lowercase `cidata`). */
  volumeId: string;
  /** Recorded as every date in the image; defaults to the Unix epoch so builds are reproducible. */
  date?: Date;
  /** Application identifier (up to 128 ASCII characters). */
  applicationId?: string;
}

const SYSTEM_AREA_SECTORS = 16;
const MAX_JOLIET_NAME = 64;
const MAX_DEPTH = 8;

interface FileNode {
  kind: 'file';
  name: string;
  data: Uint8Array;
  /** Assigned during layout. */
  extent: number;
}

interface DirNode {
  kind: 'dir';
  name: string;
  children: Map<string, Node>;
  parent: DirNode | null;
}

type Node = FileNode | DirNode;

/** One directory as laid out in one of the two trees. */
interface TreeDir {
  node: DirNode;
  /** Identifier bytes in this tree (root: a single 0x00). */
  id: Uint8Array;
  /** 1-based number in this tree's path table. */
  number: number;
  parent: TreeDir | null;
  /** Children in recording order, with their identifiers in this tree. */
  entries: { id: Uint8Array; node: Node }[];
  /** This tree's records of the child directories. */
  subdirs: Map<DirNode, TreeDir>;
  extent: number;
  sectors: number;
}

interface Tree {
  joliet: boolean;
  dirs: TreeDir[];
  pathTableSize: number;
  pathTableSectors: number;
  lPathTable: number;
  mPathTable: number;
}

/** Builds a complete ISO 9660 + Joliet image in memory. Throws RangeError on invalid names or sizes. */
export function buildIso9660(files: readonly IsoFile[], opts: IsoOptions): Buffer {
  validateText('volumeId', opts.volumeId, 32);
  const applicationId = opts.applicationId ?? '';
  validateText('applicationId', applicationId, 128);
  const date = opts.date ?? new Date(0);

  const root = buildTree(files);
  const primary = layoutTree(root, false);
  const joliet = layoutTree(root, true);

  // Allocate sectors: descriptors, path tables, directory extents, file data.
  let next = SYSTEM_AREA_SECTORS + 3;
  for (const tree of [primary, joliet]) {
    tree.lPathTable = next;
    next += tree.pathTableSectors;
    tree.mPathTable = next;
    next += tree.pathTableSectors;
  }
  for (const tree of [primary, joliet]) {
    for (const dir of tree.dirs) {
      dir.extent = next;
      next += dir.sectors;
    }
  }
  for (const file of filesInOrder(root)) {
    const sectors = Math.ceil(file.data.length / ISO_SECTOR);
    file.extent = sectors === 0 ? 0 : next;
    next += sectors;
  }
  const totalSectors = next;

  const image = Buffer.alloc(totalSectors * ISO_SECTOR);
  for (const tree of [primary, joliet]) {
    const sector = tree.joliet ? SYSTEM_AREA_SECTORS + 1 : SYSTEM_AREA_SECTORS;
    writeVolumeDescriptor(image.subarray(sector * ISO_SECTOR, (sector + 1) * ISO_SECTOR), tree, {
      volumeId: opts.volumeId,
      applicationId,
      date,
      totalSectors,
    });
    writePathTables(image, tree);
    for (const dir of tree.dirs) writeDirectory(image, dir, date);
  }
  const terminator = image.subarray((SYSTEM_AREA_SECTORS + 2) * ISO_SECTOR);
  terminator[0] = 255;
  terminator.write('CD001', 1, 'ascii');
  terminator[6] = 1;
  for (const file of filesInOrder(root)) {
    if (file.data.length > 0) image.set(file.data, file.extent * ISO_SECTOR);
  }
  return image;
}

function validateText(field: string, value: string, max: number): void {
  if (value.length > max || !/^[\x20-\x7e]*$/.test(value)) {
    throw new RangeError(
      `${field} must be at most ${max} printable ASCII characters: ${JSON.stringify(value)}`,
    );
  }
}

function buildTree(files: readonly IsoFile[]): DirNode {
  const root: DirNode = { kind: 'dir', name: '', children: new Map(), parent: null };
  for (const file of files) {
    const parts = file.path.split('/');
    if (parts.length > MAX_DEPTH)
      throw new RangeError(`path is deeper than ${MAX_DEPTH} levels: ${file.path}`);
    let dir = root;
    parts.forEach((part, i) => {
      validateName(part, file.path);
      const existing = dir.children.get(part);
      if (i === parts.length - 1) {
        if (existing) throw new RangeError(`duplicate path: ${file.path}`);
        const data = typeof file.data === 'string' ? Buffer.from(file.data, 'utf8') : file.data;
        if (data.length >= 2 ** 32) throw new RangeError(`file is 4 GiB or larger: ${file.path}`);
        dir.children.set(part, { kind: 'file', name: part, data, extent: 0 });
        return;
      }
      if (existing?.kind === 'file') throw new RangeError(`path runs through a file: ${file.path}`);
      if (!existing) {
        const child: DirNode = { kind: 'dir', name: part, children: new Map(), parent: dir };
        dir.children.set(part, child);
        dir = child;
      } else {
        dir = existing;
      }
    });
  }
  return root;
}

function validateName(name: string, path: string): void {
  if (name === '' || name === '.' || name === '..')
    throw new RangeError(`invalid path: ${JSON.stringify(path)}`);
  if (name.length > MAX_JOLIET_NAME) {
    throw new RangeError(`name longer than ${MAX_JOLIET_NAME} characters: ${name}`);
  }
  // Joliet forbids control characters and * / : ; ? \; surrogates (astral characters) do not fit UCS-2.
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c < 0x20 || (c >= 0xd800 && c <= 0xdfff) || '*/:;?\\'.includes(name[i]!)) {
      throw new RangeError(`name has a character Joliet cannot record: ${JSON.stringify(name)}`);
    }
  }
}

/** Files in a stable order (depth-first, children sorted by name) for data allocation. */
function filesInOrder(root: DirNode): FileNode[] {
  const out: FileNode[] = [];
  const walk = (dir: DirNode): void => {
    for (const name of [...dir.children.keys()].sort()) {
      const child = dir.children.get(name)!;
      if (child.kind === 'file') out.push(child);
      else walk(child);
    }
  };
  walk(root);
  return out;
}

function layoutTree(root: DirNode, joliet: boolean): Tree {
  const dirs: TreeDir[] = [];
  const rootDir: TreeDir = {
    node: root,
    id: Uint8Array.of(0),
    number: 1,
    parent: null,
    entries: [],
    subdirs: new Map(),
    extent: 0,
    sectors: 0,
  };
  // Breadth-first over children in recording order yields the path table order ECMA-119 9.4.3 asks
  // for: by level, then by parent number, then by identifier.
  const queue = [rootDir];
  while (queue.length > 0) {
    const dir = queue.shift()!;
    dirs.push(dir);
    dir.number = dirs.length;
    const ids = joliet ? jolietIds(dir.node) : primaryIds(dir.node);
    dir.entries = [...ids.entries()]
      .map(([node, id]) => ({ id, node }))
      .sort((a, b) => compareBytes(a.id, b.id));
    dir.sectors = directorySectors(dir.entries.map((e) => e.id));
    for (const entry of dir.entries) {
      if (entry.node.kind === 'dir') {
        const child: TreeDir = {
          node: entry.node,
          id: entry.id,
          number: 0,
          parent: dir,
          entries: [],
          subdirs: new Map(),
          extent: 0,
          sectors: 0,
        };
        dir.subdirs.set(entry.node, child);
        queue.push(child);
      }
    }
  }
  const pathTableSize = dirs.reduce((sum, d) => sum + 8 + d.id.length + (d.id.length % 2), 0);
  return {
    joliet,
    dirs,
    pathTableSize,
    pathTableSectors: Math.ceil(pathTableSize / ISO_SECTOR),
    lPathTable: 0,
    mPathTable: 0,
  };
}

/** Interchange level 1 identifiers: `NAME.EXT;1` in d-characters (A-Z 0-9 _), 8.3, unique per directory. */
function primaryIds(dir: DirNode): Map<Node, Uint8Array> {
  const used = new Set<string>();
  const out = new Map<Node, Uint8Array>();
  const clean = (s: string): string => s.toUpperCase().replace(/[^A-Z0-9_]/g, '_');
  for (const name of [...dir.children.keys()].sort()) {
    const node = dir.children.get(name)!;
    let base: string;
    let ext = '';
    if (node.kind === 'file') {
      const dot = name.lastIndexOf('.');
      base = clean(dot > 0 ? name.slice(0, dot) : name).slice(0, 8);
      ext = dot > 0 ? clean(name.slice(dot + 1)).slice(0, 3) : '';
    } else {
      base = clean(name).slice(0, 8);
    }
    const key = (b: string): string => (node.kind === 'file' ? `${b}.${ext}` : b);
    let candidate = base;
    for (let n = 1; used.has(key(candidate)); n++) {
      const suffix = String(n);
      candidate = base.slice(0, 8 - suffix.length) + suffix;
    }
    used.add(key(candidate));
    out.set(node, Buffer.from(node.kind === 'file' ? `${key(candidate)};1` : candidate, 'ascii'));
  }
  return out;
}

/** Joliet identifiers: the name in UCS-2 big-endian, without a `;1` version (as genisoimage writes them). */
function jolietIds(dir: DirNode): Map<Node, Uint8Array> {
  const out = new Map<Node, Uint8Array>();
  for (const node of dir.children.values()) out.set(node, ucs2be(node.name));
  return out;
}

function ucs2be(s: string): Buffer {
  const le = Buffer.from(s, 'utf16le');
  return le.swap16();
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (a[i] !== b[i]) return a[i]! - b[i]!;
  }
  return a.length - b.length;
}

function recordLength(idLength: number): number {
  return 33 + idLength + (idLength % 2 === 0 ? 1 : 0);
}

/** Sectors a directory extent needs: `.` and `..` then the entries; records never straddle sectors. */
function directorySectors(ids: Uint8Array[]): number {
  let sectors = 1;
  let used = 2 * recordLength(1);
  for (const id of ids) {
    const len = recordLength(id.length);
    if (used + len > ISO_SECTOR) {
      sectors++;
      used = 0;
    }
    used += len;
  }
  return sectors;
}

function both16(buf: Buffer, off: number, v: number): void {
  buf.writeUInt16LE(v, off);
  buf.writeUInt16BE(v, off + 2);
}

function both32(buf: Buffer, off: number, v: number): void {
  buf.writeUInt32LE(v, off);
  buf.writeUInt32BE(v, off + 4);
}

/** 7-byte directory record date (ECMA-119 9.1.5), UTC. */
function recordDate(d: Date): Uint8Array {
  return Uint8Array.of(
    d.getUTCFullYear() - 1900,
    d.getUTCMonth() + 1,
    d.getUTCDate(),
    d.getUTCHours(),
    d.getUTCMinutes(),
    d.getUTCSeconds(),
    0,
  );
}

/** 17-byte volume descriptor date (ECMA-119 8.4.26.1), UTC; `null` writes "not specified". */
function descriptorDate(d: Date | null): Buffer {
  const out = Buffer.alloc(17, 0);
  if (d === null) {
    out.write('0'.repeat(16), 0, 'ascii');
    return out;
  }
  const p = (n: number, w: number): string => String(n).padStart(w, '0');
  const s =
    p(d.getUTCFullYear(), 4) +
    p(d.getUTCMonth() + 1, 2) +
    p(d.getUTCDate(), 2) +
    p(d.getUTCHours(), 2) +
    p(d.getUTCMinutes(), 2) +
    p(d.getUTCSeconds(), 2) +
    p(Math.floor(d.getUTCMilliseconds() / 10), 2);
  out.write(s, 0, 'ascii');
  return out;
}

/** Writes a text field padded with spaces: ASCII in the primary descriptor, UCS-2BE in Joliet's. */
function textField(buf: Buffer, off: number, len: number, value: string, joliet: boolean): void {
  if (!joliet) {
    buf.fill(0x20, off, off + len);
    buf.write(value, off, len, 'ascii');
    return;
  }
  const chars = Math.floor(len / 2);
  const padded = value.slice(0, chars).padEnd(chars, ' ');
  ucs2be(padded).copy(buf, off);
  if (len % 2 === 1) buf[off + len - 1] = 0x20;
}

function writeDirectoryRecord(
  buf: Buffer,
  off: number,
  rec: { id: Uint8Array; extent: number; size: number; dir: boolean; date: Uint8Array },
): number {
  const len = recordLength(rec.id.length);
  buf[off] = len;
  buf[off + 1] = 0;
  both32(buf, off + 2, rec.extent);
  both32(buf, off + 10, rec.size);
  buf.set(rec.date, off + 18);
  buf[off + 25] = rec.dir ? 0x02 : 0x00;
  buf[off + 26] = 0;
  buf[off + 27] = 0;
  both16(buf, off + 28, 1);
  buf[off + 32] = rec.id.length;
  buf.set(rec.id, off + 33);
  return len;
}

function writeVolumeDescriptor(
  sector: Buffer,
  tree: Tree,
  v: { volumeId: string; applicationId: string; date: Date; totalSectors: number },
): void {
  const j = tree.joliet;
  sector[0] = j ? 2 : 1;
  sector.write('CD001', 1, 'ascii');
  sector[6] = 1;
  textField(sector, 8, 32, '', j); // system identifier
  textField(sector, 40, 32, v.volumeId, j);
  both32(sector, 80, v.totalSectors);
  if (j) sector.write('%/E', 88, 'ascii'); // UCS-2 level 3
  both16(sector, 120, 1); // volume set size
  both16(sector, 124, 1); // volume sequence number
  both16(sector, 128, ISO_SECTOR);
  both32(sector, 132, tree.pathTableSize);
  sector.writeUInt32LE(tree.lPathTable, 140);
  sector.writeUInt32BE(tree.mPathTable, 148);
  const root = tree.dirs[0]!;
  writeDirectoryRecord(sector, 156, {
    id: Uint8Array.of(0),
    extent: root.extent,
    size: root.sectors * ISO_SECTOR,
    dir: true,
    date: recordDate(v.date),
  });
  textField(sector, 190, 128, '', j); // volume set
  textField(sector, 318, 128, '', j); // publisher
  textField(sector, 446, 128, '', j); // data preparer
  textField(sector, 574, 128, v.applicationId, j);
  textField(sector, 702, 37, '', j); // copyright file
  textField(sector, 739, 37, '', j); // abstract file
  textField(sector, 776, 37, '', j); // bibliographic file
  descriptorDate(v.date).copy(sector, 813); // creation
  descriptorDate(v.date).copy(sector, 830); // modification
  descriptorDate(null).copy(sector, 847); // expiration
  descriptorDate(null).copy(sector, 864); // effective
  sector[881] = 1; // file structure version
}

function writePathTables(image: Buffer, tree: Tree): void {
  let l = tree.lPathTable * ISO_SECTOR;
  let m = tree.mPathTable * ISO_SECTOR;
  for (const dir of tree.dirs) {
    const parent = dir.parent?.number ?? 1;
    for (const [off, le] of [
      [l, true],
      [m, false],
    ] as const) {
      image[off] = dir.id.length;
      image[off + 1] = 0;
      if (le) {
        image.writeUInt32LE(dir.extent, off + 2);
        image.writeUInt16LE(parent, off + 6);
      } else {
        image.writeUInt32BE(dir.extent, off + 2);
        image.writeUInt16BE(parent, off + 6);
      }
      image.set(dir.id, off + 8);
    }
    const len = 8 + dir.id.length + (dir.id.length % 2);
    l += len;
    m += len;
  }
}

function writeDirectory(image: Buffer, dir: TreeDir, date: Date): void {
  const stamp = recordDate(date);
  const self = { extent: dir.extent, size: dir.sectors * ISO_SECTOR };
  const parentDir = dir.parent ?? dir;
  const parent = { extent: parentDir.extent, size: parentDir.sectors * ISO_SECTOR };
  const base = dir.extent * ISO_SECTOR;
  let used = 0;
  let sector = 0;
  const put = (rec: { id: Uint8Array; extent: number; size: number; dir: boolean }): void => {
    if (used + recordLength(rec.id.length) > ISO_SECTOR) {
      sector++;
      used = 0;
    }
    used += writeDirectoryRecord(image, base + sector * ISO_SECTOR + used, { ...rec, date: stamp });
  };
  put({ id: Uint8Array.of(0), ...self, dir: true });
  put({ id: Uint8Array.of(1), ...parent, dir: true });
  for (const entry of dir.entries) {
    if (entry.node.kind === 'file') {
      put({ id: entry.id, extent: entry.node.extent, size: entry.node.data.length, dir: false });
    } else {
      const child = dir.subdirs.get(entry.node)!;
      put({ id: entry.id, extent: child.extent, size: child.sectors * ISO_SECTOR, dir: true });
    }
  }
}
