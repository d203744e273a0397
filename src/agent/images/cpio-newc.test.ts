import { execFileSync, spawnSync } from 'node:child_process';
import { lstatSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildCpioNewc, type CpioEntry } from './cpio-newc.js';

const ENTRIES: CpioEntry[] = [
  { type: 'dir', path: 'bin' },
  { type: 'file', path: 'bin/busybox', data: Buffer.from([0x7f, 0x45, 0x4c, 0x46, 1, 2, 3]), mode: 0o755 },
  { type: 'symlink', path: 'bin/sh', target: 'busybox' },
  { type: 'file', path: 'etc/yunhai/modules', data: 'a.ko\nb.ko\n' },
  { type: 'chardev', path: 'dev/console', major: 5, minor: 1 },
  { type: 'file', path: 'init', data: '#!/bin/sh\n', mode: 0o755 },
];

/** Parses newc headers: [name, mode, size, rdevmajor, rdevminor, header offset]. */
function parse(
  buf: Buffer,
): { name: string; mode: number; size: number; rdev: [number, number]; offset: number }[] {
  const out = [];
  let off = 0;
  for (;;) {
    expect(off % 4).toBe(0);
    expect(buf.toString('ascii', off, off + 6)).toBe('070701');
    const field = (i: number) =>
      Number.parseInt(buf.toString('ascii', off + 6 + i * 8, off + 14 + i * 8), 16);
    const nameSize = field(11);
    const name = buf.toString('utf8', off + 110, off + 110 + nameSize - 1);
    const size = field(6);
    out.push({ name, mode: field(1), size, rdev: [field(9), field(10)] as [number, number], offset: off });
    if (name === 'TRAILER!!!') return out;
    off += Math.ceil((110 + nameSize) / 4) * 4;
    off += Math.ceil(size / 4) * 4;
  }
}

const tmp = mkdtempSync(path.join(os.tmpdir(), 'yunhai-cpio-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('buildCpioNewc', () => {
  it('writes 4-byte aligned newc headers ending with the trailer', () => {
    const entries = parse(buildCpioNewc(ENTRIES));
    expect(entries.map((e) => e.name)).toEqual([
      'bin',
      'bin/busybox',
      'bin/sh',
      'etc',
      'etc/yunhai',
      'etc/yunhai/modules',
      'dev',
      'dev/console',
      'init',
      'TRAILER!!!',
    ]);
  });

  it.each([
    ['bin', 0o040755, 0],
    ['bin/busybox', 0o100755, 7],
    ['bin/sh', 0o120777, 'busybox'.length],
    ['etc/yunhai', 0o040755, 0],
    ['etc/yunhai/modules', 0o100644, 10],
    ['dev/console', 0o020600, 0],
  ])('records %s with mode %o and size %d', (name, mode, size) => {
    const entry = parse(buildCpioNewc(ENTRIES)).find((e) => e.name === name)!;
    expect(entry).toMatchObject({ mode, size });
  });

  it('records device numbers of character devices', () => {
    const entry = parse(buildCpioNewc(ENTRIES)).find((e) => e.name === 'dev/console')!;
    expect(entry.rdev).toEqual([5, 1]);
  });

  it('is byte-for-byte reproducible', () => {
    expect(buildCpioNewc(ENTRIES).equals(buildCpioNewc(ENTRIES))).toBe(true);
  });

  it.each([
    ['a duplicate path', [ENTRIES[0]!, ENTRIES[0]!]],
    ['a dot-dot component', [{ type: 'dir', path: 'a/../b' }]],
    ['an empty path', [{ type: 'dir', path: '/' }]],
  ] as [string, CpioEntry[]][])('rejects %s', (_, entries) => {
    expect(() => buildCpioNewc(entries)).toThrow(RangeError);
  });

  it.skipIf(spawnSync('sh', ['-c', 'command -v cpio']).status !== 0)(
    'is listed and unpacked by GNU cpio',
    () => {
      const archive = path.join(tmp, 'a.cpio');
      writeFileSync(archive, buildCpioNewc(ENTRIES, { mtime: 1_700_000_000 }));
      const list = execFileSync('cpio', ['-it', '--quiet', '-F', archive], { encoding: 'utf8' });
      expect(list.trim().split('\n')).toContain('dev/console');
      const out = path.join(tmp, 'x');
      // Device nodes need root to create; leave them out.
      execFileSync('cpio', ['-idm', '--quiet', '-D', out, '-F', archive, '-f', 'dev/*']);
      expect(readFileSync(path.join(out, 'etc/yunhai/modules'), 'utf8')).toBe('a.ko\nb.ko\n');
      expect(readlinkSync(path.join(out, 'bin/sh'))).toBe('busybox');
      expect(lstatSync(path.join(out, 'bin/busybox')).mode & 0o777).toBe(0o755);
      expect(lstatSync(path.join(out, 'init')).mtimeMs).toBe(1_700_000_000_000);
    },
  );
});
