/**
 * A minimal ISO 9660 reader: volume descriptors, path tables and directory trees (primary or Joliet).
 * Used to validate images (ours and uploaded ones) and to read seeds back in tests. No Rock Ridge.
 */
import { ISO_SECTOR } from './iso9660.js';

export interface IsoVolume {
  /** 1 = primary, 2 = supplementary (Joliet when `jolietLevel` is set). */
  type: number;
  volumeId: string;
  /** 1-3 from the escape sequence `%/@`, `%/C`, `%/E`; 0 if not Joliet. */
  jolietLevel: number;
  volumeSpaceSize: number;
  logicalBlockSize: number;
  pathTableSize: number;
  lPathTable: number;
  mPathTable: number;
  rootExtent: number;
  rootSize: number;
  applicationId: string;
}

export interface IsoPathTableEntry {
  id: string;
  extent: number;
  parent: number;
}

export interface IsoEntry {
  /** Slash-separated path; file identifiers keep their `;1` version when the image records one. */
  path: string;
  /** The raw identifier as recorded. */
  rawId: Uint8Array;
  directory: boolean;
  extent: number;
  size: number;
  /** Recording date of the directory record (UTC). */
  date: Date;
}

export class IsoFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'IsoFormatError';
  }
}

/** All volume descriptors from sector 16 up to the set terminator. */
export function readVolumes(image: Uint8Array): IsoVolume[] {
  const buf = Buffer.from(image.buffer, image.byteOffset, image.byteLength);
  const out: IsoVolume[] = [];
  for (let sector = 16; ; sector++) {
    const off = sector * ISO_SECTOR;
    if (off + ISO_SECTOR > buf.length) throw new IsoFormatError('no volume descriptor set terminator');
    if (buf.toString('ascii', off + 1, off + 6) !== 'CD001') {
      throw new IsoFormatError(`sector ${sector} is not a volume descriptor`);
    }
    const type = buf[off]!;
    if (type === 255) return out;
    if (type !== 1 && type !== 2) continue;
    const esc = buf.toString('ascii', off + 88, off + 91);
    const jolietLevel = type === 2 ? ({ '%/@': 1, '%/C': 2, '%/E': 3 }[esc] ?? 0) : 0;
    const text = (start: number, len: number): string =>
      (jolietLevel
        ? ucs2beToString(buf.subarray(start, start + len - (len % 2)))
        : buf.toString('ascii', start, start + len)
      ).trimEnd();
    out.push({
      type,
      volumeId: text(off + 40, 32),
      jolietLevel,
      volumeSpaceSize: buf.readUInt32LE(off + 80),
      logicalBlockSize: buf.readUInt16LE(off + 128),
      pathTableSize: buf.readUInt32LE(off + 132),
      lPathTable: buf.readUInt32LE(off + 140),
      mPathTable: buf.readUInt32BE(off + 148),
      rootExtent: buf.readUInt32LE(off + 156 + 2),
      rootSize: buf.readUInt32LE(off + 156 + 10),
      applicationId: text(off + 574, 128),
    });
  }
}

/** Decodes a path table (L: little-endian, M: big-endian); entry n-1 is directory number n. */
export function readPathTable(image: Uint8Array, vol: IsoVolume, which: 'L' | 'M'): IsoPathTableEntry[] {
  const buf = Buffer.from(image.buffer, image.byteOffset, image.byteLength);
  const start = (which === 'L' ? vol.lPathTable : vol.mPathTable) * ISO_SECTOR;
  const out: IsoPathTableEntry[] = [];
  let off = start;
  while (off < start + vol.pathTableSize) {
    const idLen = buf[off]!;
    if (idLen === 0) throw new IsoFormatError('path table record with empty identifier');
    const extent = which === 'L' ? buf.readUInt32LE(off + 2) : buf.readUInt32BE(off + 2);
    const parent = which === 'L' ? buf.readUInt16LE(off + 6) : buf.readUInt16BE(off + 6);
    out.push({ id: decodeId(buf.subarray(off + 8, off + 8 + idLen), vol.jolietLevel > 0), extent, parent });
    off += 8 + idLen + (idLen % 2);
  }
  return out;
}

/** Walks the directory tree of `vol` depth-first; directories come before their contents. */
export function readTree(image: Uint8Array, vol: IsoVolume): IsoEntry[] {
  const buf = Buffer.from(image.buffer, image.byteOffset, image.byteLength);
  const joliet = vol.jolietLevel > 0;
  const out: IsoEntry[] = [];
  const seen = new Set<number>();
  const walk = (extent: number, size: number, prefix: string): void => {
    if (seen.has(extent)) throw new IsoFormatError(`directory loop at sector ${extent}`);
    seen.add(extent);
    const start = extent * ISO_SECTOR;
    if (start + size > buf.length)
      throw new IsoFormatError(`directory at sector ${extent} runs past the image`);
    let off = start;
    while (off < start + size) {
      const len = buf[off]!;
      if (len === 0) {
        // Records never straddle sectors: zero padding up to the next one.
        off = start + (Math.floor((off - start) / ISO_SECTOR) + 1) * ISO_SECTOR;
        continue;
      }
      if (len < 34 || (off % ISO_SECTOR) + len > ISO_SECTOR) {
        throw new IsoFormatError(`bad directory record at byte ${off}`);
      }
      const idLen = buf[off + 32]!;
      const rawId = buf.subarray(off + 33, off + 33 + idLen);
      const isDot = idLen === 1 && (rawId[0] === 0 || rawId[0] === 1);
      if (!isDot) {
        const entry: IsoEntry = {
          path: prefix + decodeId(rawId, joliet),
          rawId: Uint8Array.from(rawId),
          directory: (buf[off + 25]! & 0x02) !== 0,
          extent: buf.readUInt32LE(off + 2),
          size: buf.readUInt32LE(off + 10),
          date: new Date(
            Date.UTC(
              1900 + buf[off + 18]!,
              buf[off + 19]! - 1,
              buf[off + 20]!,
              buf[off + 21]!,
              buf[off + 22]!,
              buf[off + 23]!,
            ),
          ),
        };
        out.push(entry);
        if (entry.directory) walk(entry.extent, entry.size, `${entry.path}/`);
      }
      off += len;
    }
  };
  walk(vol.rootExtent, vol.rootSize, '');
  return out;
}

/** The bytes of a file entry. */
export function readFileData(image: Uint8Array, entry: IsoEntry): Buffer {
  const buf = Buffer.from(image.buffer, image.byteOffset, image.byteLength);
  return buf.subarray(entry.extent * ISO_SECTOR, entry.extent * ISO_SECTOR + entry.size);
}

function decodeId(raw: Uint8Array, joliet: boolean): string {
  // The root (and `.`/`..`) are the single bytes 0x00/0x01 in both trees.
  if (raw.length === 1 && raw[0]! <= 1) return String.fromCharCode(raw[0]!);
  return joliet ? ucs2beToString(raw) : Buffer.from(raw).toString('ascii');
}

function ucs2beToString(raw: Uint8Array): string {
  if (raw.length % 2 !== 0) throw new IsoFormatError('odd-length UCS-2 identifier');
  return Buffer.from(raw).swap16().toString('utf16le');
}
