import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildIso9660, ISO_SECTOR, type IsoFile } from './iso9660.js';
import { readFileData, readPathTable, readTree, readVolumes } from './iso9660-read.js';

const SEED_FILES: IsoFile[] = [
  { path: 'user-data', data: '#!/bin/sh\necho hi\n' },
  { path: 'meta-data', data: 'instance-id: i-1\nlocal-hostname: vm-1\n' },
  { path: 'network-config', data: 'version: 2\n' },
];

const NESTED_FILES: IsoFile[] = [
  { path: 'openstack/latest/meta_data.json', data: '{"uuid":"u"}' },
  { path: 'openstack/latest/user_data', data: 'x'.repeat(5000) },
  { path: 'openstack/2012-08-10/meta_data.json', data: '{}' },
  { path: 'ec2/latest/meta-data.json', data: '' },
  { path: 'README', data: 'top' },
];

const tmp = mkdtempSync(path.join(os.tmpdir(), 'yunhai-iso-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function has(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

function volumes(image: Buffer) {
  const vols = readVolumes(image);
  const primary = vols.find((v) => v.type === 1)!;
  const joliet = vols.find((v) => v.type === 2 && v.jolietLevel > 0)!;
  return { vols, primary, joliet };
}

describe('buildIso9660', () => {
  it('writes the primary, Joliet and terminator descriptors at sectors 16, 17 and 18', () => {
    const image = buildIso9660(SEED_FILES, { volumeId: 'cidata' });
    expect(image.length % ISO_SECTOR).toBe(0);
    expect(image.subarray(0, 16 * ISO_SECTOR).every((b) => b === 0)).toBe(true);
    const at = (sector: number) => image.subarray(sector * ISO_SECTOR, (sector + 1) * ISO_SECTOR);
    expect([at(16)[0], at(17)[0], at(18)[0]]).toEqual([1, 2, 255]);
    for (const s of [16, 17, 18]) expect(at(s).toString('ascii', 1, 6)).toBe('CD001');
    expect(at(16).toString('ascii', 40, 72)).toBe(`cidata${' '.repeat(26)}`);
    expect(at(17).toString('ascii', 88, 91)).toBe('%/E');
    const { vols, primary, joliet } = volumes(image);
    expect(vols).toHaveLength(2);
    for (const v of [primary, joliet]) {
      expect(v.volumeId).toBe('cidata');
      expect(v.volumeSpaceSize).toBe(image.length / ISO_SECTOR);
      expect(v.logicalBlockSize).toBe(ISO_SECTOR);
    }
    expect(joliet.jolietLevel).toBe(3);
  });

  it('stores both-endian numbers that agree', () => {
    const image = buildIso9660(SEED_FILES, { volumeId: 'cidata' });
    const pvd = image.subarray(16 * ISO_SECTOR);
    const pairs: [number, 16 | 32][] = [
      [80, 32],
      [120, 16],
      [124, 16],
      [128, 16],
      [132, 32],
      [156 + 2, 32],
      [156 + 10, 32],
    ];
    for (const [off, bits] of pairs) {
      if (bits === 32) expect(pvd.readUInt32LE(off)).toBe(pvd.readUInt32BE(off + 4));
      else expect(pvd.readUInt16LE(off)).toBe(pvd.readUInt16BE(off + 2));
    }
  });

  it.each([
    ['user-data', 'USER_DAT.;1'],
    ['meta-data', 'META_DAT.;1'],
    ['network-config', 'NETWORK_.;1'],
    ['README.md', 'README.MD;1'],
    ['a.tar.gz', 'A_TAR.GZ;1'],
    ['.hidden', '_HIDDEN.;1'],
    ['verylongname.json', 'VERYLONG.JSO;1'],
  ])('records %s in the primary tree as %s', (name, expected) => {
    const image = buildIso9660([{ path: name, data: 'x' }], { volumeId: 'T' });
    const { primary } = volumes(image);
    expect(readTree(image, primary).map((e) => e.path)).toEqual([expected]);
  });

  it('keeps primary names unique when 8.3 truncation collides', () => {
    const files = ['network-config', 'network-configs', 'network-config2'].map((p) => ({ path: p, data: p }));
    const image = buildIso9660(files, { volumeId: 'T' });
    const { primary, joliet } = volumes(image);
    const names = readTree(image, primary).map((e) => e.path);
    expect(new Set(names).size).toBe(3);
    expect(names).toContain('NETWORK_.;1');
    // Contents still line up name by name through the Joliet tree.
    for (const e of readTree(image, joliet)) expect(readFileData(image, e).toString()).toBe(e.path);
  });

  it('round-trips names, directories and contents through the Joliet tree', () => {
    const image = buildIso9660(NESTED_FILES, { volumeId: 'config-2' });
    const { joliet } = volumes(image);
    const tree = readTree(image, joliet);
    const files = tree.filter((e) => !e.directory);
    expect(files.map((e) => e.path).sort()).toEqual(NESTED_FILES.map((f) => f.path).sort());
    for (const f of NESTED_FILES) {
      const entry = files.find((e) => e.path === f.path)!;
      expect(readFileData(image, entry).toString()).toBe(f.data);
    }
    expect(
      tree
        .filter((e) => e.directory)
        .map((e) => e.path)
        .sort(),
    ).toEqual(['ec2', 'ec2/latest', 'openstack', 'openstack/2012-08-10', 'openstack/latest']);
  });

  it('shares file extents between the primary and Joliet trees', () => {
    const image = buildIso9660(NESTED_FILES, { volumeId: 'T' });
    const { primary, joliet } = volumes(image);
    const extents = (v: typeof primary) =>
      readTree(image, v)
        .filter((e) => !e.directory)
        .map((e) => `${e.extent}:${e.size}`)
        .sort();
    expect(extents(primary)).toEqual(extents(joliet));
  });

  it('writes L and M path tables that agree and match the directory records', () => {
    const image = buildIso9660(NESTED_FILES, { volumeId: 'T' });
    const { primary, joliet } = volumes(image);
    for (const vol of [primary, joliet]) {
      const l = readPathTable(image, vol, 'L');
      const m = readPathTable(image, vol, 'M');
      expect(m).toEqual(l);
      expect(l[0]).toEqual({ id: '\0', extent: vol.rootExtent, parent: 1 });
      const dirs = readTree(image, vol).filter((e) => e.directory);
      expect(l).toHaveLength(dirs.length + 1);
      // Every directory's extent and parent number agree with the tree; parents precede children.
      for (const [i, entry] of l.entries()) {
        if (i === 0) continue;
        expect(entry.parent).toBeLessThanOrEqual(i);
        const parentPath = entry.parent === 1 ? '' : pathOf(l, entry.parent);
        const dir = dirs.find((d) => d.extent === entry.extent)!;
        expect(dir.path).toBe(parentPath ? `${parentPath}/${entry.id}` : entry.id);
      }
      // Sorted by level, then parent number, then identifier.
      const level = (n: number): number => (n === 1 ? 0 : 1 + level(l[n - 1]!.parent));
      const keys = l.map((e, i) => [level(i + 1), e.parent, e.id] as const);
      const sorted = [...keys].sort(
        (a, b) => a[0] - b[0] || a[1] - b[1] || (a[2] < b[2] ? -1 : a[2] > b[2] ? 1 : 0),
      );
      expect(keys).toEqual(sorted);
    }
  });

  it('starts a new sector instead of letting a directory record straddle one', () => {
    const files = Array.from({ length: 60 }, (_, i) => ({
      path: `a-rather-long-file-name-to-fill-sectors-${String(i).padStart(3, '0')}.txt`,
      data: String(i),
    }));
    const image = buildIso9660(files, { volumeId: 'T' });
    const { joliet } = volumes(image);
    expect(joliet.rootSize).toBeGreaterThan(ISO_SECTOR);
    const tree = readTree(image, joliet);
    expect(tree).toHaveLength(60);
    for (const e of tree)
      expect(readFileData(image, e).toString()).toBe(String(Number(e.path.slice(-7, -4))));
  });

  it('records the given date and is byte-for-byte reproducible', () => {
    const date = new Date(Date.UTC(2026, 10, 24, 12, 34, 56));
    const a = buildIso9660(SEED_FILES, { volumeId: 'cidata', date });
    const b = buildIso9660(SEED_FILES, { volumeId: 'cidata', date });
    expect(a.equals(b)).toBe(true);
    expect(a.toString('ascii', 16 * ISO_SECTOR + 813, 16 * ISO_SECTOR + 829)).toBe('2026112412345600');
    const { joliet } = volumes(a);
    for (const e of readTree(a, joliet)) expect(e.date).toEqual(date);
  });

  it('stores empty files without a data extent', () => {
    const image = buildIso9660([{ path: 'empty', data: '' }], { volumeId: 'T' });
    const [entry] = readTree(image, volumes(image).joliet);
    expect(entry).toMatchObject({ path: 'empty', size: 0, extent: 0 });
  });

  it.each([
    ['an empty path', [{ path: '', data: '' }]],
    ['an empty component', [{ path: 'a//b', data: '' }]],
    ['a dot-dot component', [{ path: '../x', data: '' }]],
    ['a colon', [{ path: 'a:b', data: '' }]],
    ['a control character', [{ path: 'a\nb', data: '' }]],
    ['a character outside UCS-2', [{ path: 'emoji-\u{1f600}', data: '' }]],
    ['a 65-character name', [{ path: 'x'.repeat(65), data: '' }]],
    [
      'a duplicate path',
      [
        { path: 'a', data: '' },
        { path: 'a', data: '' },
      ],
    ],
    [
      'a path through a file',
      [
        { path: 'a', data: '' },
        { path: 'a/b', data: '' },
      ],
    ],
    ['nine directory levels', [{ path: 'a/b/c/d/e/f/g/h/i', data: '' }]],
  ])('rejects %s', (_, files) => {
    expect(() => buildIso9660(files, { volumeId: 'T' })).toThrow(RangeError);
  });

  it('rejects a volume label longer than 32 characters', () => {
    expect(() => buildIso9660([], { volumeId: 'x'.repeat(33) })).toThrow(RangeError);
  });
});

describe('buildIso9660 against independent readers', () => {
  const iso = path.join(tmp, 'seed.iso');
  writeFileSync(iso, buildIso9660(SEED_FILES, { volumeId: 'cidata', date: new Date() }));

  it.skipIf(!has('blkid'))('is identified by blkid as iso9660 labelled cidata', () => {
    const out = execFileSync('blkid', ['-p', '-o', 'export', iso], { encoding: 'utf8' });
    expect(out).toMatch(/^TYPE=iso9660$/m);
    expect(out).toMatch(/^LABEL=cidata$/m);
    expect(out).toMatch(/^VERSION=Joliet\\? Extension$/m);
  });

  it.skipIf(!has('isoinfo'))('is read by isoinfo (cdrkit) with Joliet names and contents', () => {
    const info = execFileSync('isoinfo', ['-d', '-i', iso], { encoding: 'utf8' });
    expect(info).toMatch(/Volume id: cidata/);
    expect(info).toMatch(/Joliet with UCS level 3 found/);
    const list = execFileSync('isoinfo', ['-J', '-f', '-i', iso], { encoding: 'utf8' });
    expect(list.trim().split('\n').sort()).toEqual(['/meta-data', '/network-config', '/user-data']);
    for (const f of SEED_FILES) {
      const data = execFileSync('isoinfo', ['-J', '-x', `/${f.path}`, '-i', iso], { encoding: 'utf8' });
      expect(data).toBe(f.data);
    }
  });

  it.skipIf(!has('genisoimage'))('names files like genisoimage -J does', () => {
    const dir = path.join(tmp, 'genisoimage-in');
    mkdirSync(dir);
    for (const f of SEED_FILES) writeFileSync(path.join(dir, f.path), f.data);
    const theirs = path.join(tmp, 'genisoimage.iso');
    execFileSync('genisoimage', ['-quiet', '-o', theirs, '-V', 'cidata', '-J', dir]);
    const ours = readFileSync(iso);
    const other = readFileSync(theirs);
    const ids = (image: Buffer, joliet: boolean) => {
      const { primary, joliet: j } = volumes(image);
      return readTree(image, joliet ? j : primary)
        .map((e) => Buffer.from(e.rawId).toString('hex'))
        .sort();
    };
    expect(ids(ours, false)).toEqual(ids(other, false));
    expect(ids(ours, true)).toEqual(ids(other, true));
  });

  // Needs root, loop devices and iso9660 in the host kernel; the tiny guest's boot test covers it otherwise.
  const canMount =
    process.getuid?.() === 0 &&
    readdirSync('/dev').includes('loop-control') &&
    /\tiso9660$/m.test(readFileSync('/proc/filesystems', 'utf8'));
  it.skipIf(!canMount)('is mounted by the Linux kernel with and without Joliet', () => {
    const mnt = path.join(tmp, 'mnt');
    mkdirSync(mnt);
    for (const [opts, expected] of [
      ['loop,ro', ['meta-data', 'network-config', 'user-data']],
      ['loop,ro,nojoliet', ['meta_dat', 'network_', 'user_dat']],
    ] as const) {
      const r = spawnSync('mount', ['-t', 'iso9660', '-o', opts, iso, mnt], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`mount failed: ${r.stderr}`);
      try {
        expect(readdirSync(mnt).sort()).toEqual(expected);
        if (!opts.includes('nojoliet')) {
          for (const f of SEED_FILES) expect(readFileSync(path.join(mnt, f.path), 'utf8')).toBe(f.data);
        }
      } finally {
        execFileSync('umount', [mnt]);
      }
    }
  });
});

function pathOf(table: { id: string; parent: number }[], n: number): string {
  if (n === 1) return '';
  const e = table[n - 1]!;
  const parent = pathOf(table, e.parent);
  return parent ? `${parent}/${e.id}` : e.id;
}
