import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readFileData, readTree, readVolumes } from './iso9660-read.js';
import { buildNoCloudSeed, noCloudSeedFiles, renderMetaData, yamlScalar } from './nocloud-seed.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'yunhai-seed-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** cloud-init parses meta-data with PyYAML's safe_load; use the same parser when the host has it. */
const hasPyYaml = spawnSync('python3', ['-c', 'import yaml']).status === 0;
function pyYamlLoad(text: string): unknown {
  const r = spawnSync(
    'python3',
    ['-c', 'import json,sys,yaml; print(json.dumps(yaml.safe_load(sys.stdin)))'],
    {
      input: text,
      encoding: 'utf8',
    },
  );
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout);
}

function seedContents(file: string): Record<string, string> {
  const image = readFileSync(file);
  const joliet = readVolumes(image).find((v) => v.jolietLevel > 0)!;
  return Object.fromEntries(
    readTree(image, joliet).map((e) => [e.path, readFileData(image, e).toString('utf8')]),
  );
}

describe('renderMetaData', () => {
  it('puts instance-id first and local-hostname second, then the rest in order', () => {
    expect(renderMetaData({ zone: 'a', 'local-hostname': 'vm-1', region: 'r', 'instance-id': 'i-1' })).toBe(
      'instance-id: i-1\nlocal-hostname: vm-1\nzone: a\nregion: r\n',
    );
  });

  it('rejects meta-data without an instance-id', () => {
    expect(() => renderMetaData({ 'local-hostname': 'vm-1' })).toThrow(RangeError);
  });
});

describe('yamlScalar', () => {
  it.each([
    ['vm-1', 'vm-1'],
    ['i-0123abcd', 'i-0123abcd'],
    ['node.example.com', 'node.example.com'],
    ['123', '"123"'],
    ['1e3', '"1e3"'],
    ['2026-11-24', '"2026-11-24"'],
    ['true', '"true"'],
    ['No', '"No"'],
    ['null', '"null"'],
    ['~', '"~"'],
    ['', '""'],
    ['a: b', '"a: b"'],
    ['#comment', '"#comment"'],
    ['-dash', '"-dash"'],
    ['line\nbreak', '"line\\nbreak"'],
    ['quote"d', '"quote\\"d"'],
    ['sep\u2028arator', '"sep\\u2028arator"'],
  ])('renders %j as %s', (value, expected) => {
    expect(yamlScalar(value)).toBe(expected);
  });

  it.skipIf(!hasPyYaml)('reads back as the same strings with PyYAML (what cloud-init uses)', () => {
    const values = [
      'vm-1',
      '123',
      '0x1f',
      '1:20',
      '2026-11-24',
      'yes',
      'off',
      '',
      'a: b',
      'ünïcode',
      'tab\there',
      'x\u0085y',
    ];
    const meta = Object.fromEntries([['instance-id', 'i-1'], ...values.map((v, i) => [`k${i}`, v])]);
    expect(pyYamlLoad(renderMetaData(meta))).toEqual(meta);
  });
});

describe('buildNoCloudSeed', () => {
  it('writes an image labelled cidata with user-data, meta-data and network-config', async () => {
    const file = path.join(tmp, 'seed.iso');
    await buildNoCloudSeed(file, {
      userData: '#cloud-config\nhostname: a\n',
      metaData: { 'instance-id': 'i-1', 'local-hostname': 'vm-1' },
      networkConfig: 'version: 2\nethernets:\n  eth0:\n    dhcp4: true\n',
    });
    const vols = readVolumes(readFileSync(file));
    expect(vols.map((v) => v.volumeId)).toEqual(['cidata', 'cidata']);
    expect(seedContents(file)).toEqual({
      'user-data': '#cloud-config\nhostname: a\n',
      'meta-data': 'instance-id: i-1\nlocal-hostname: vm-1\n',
      'network-config': 'version: 2\nethernets:\n  eth0:\n    dhcp4: true\n',
    });
  });

  it('writes an empty user-data and no network-config when they are not given', async () => {
    const file = path.join(tmp, 'minimal.iso');
    await buildNoCloudSeed(file, { metaData: { 'instance-id': 'i-2' } });
    expect(seedContents(file)).toEqual({ 'user-data': '', 'meta-data': 'instance-id: i-2\n' });
  });

  it('replaces an existing file atomically and leaves no temp files behind', async () => {
    const dir = mkdtempSync(path.join(tmp, 'atomic-'));
    const file = path.join(dir, 'seed.iso');
    writeFileSync(file, 'old');
    await buildNoCloudSeed(file, { metaData: { 'instance-id': 'i-3' } });
    expect(readdirSync(dir)).toEqual(['seed.iso']);
    expect(seedContents(file)['meta-data']).toBe('instance-id: i-3\n');
  });

  it('fails without touching the target when meta-data is invalid', async () => {
    const file = path.join(tmp, 'untouched.iso');
    writeFileSync(file, 'old');
    await expect(buildNoCloudSeed(file, { metaData: {} })).rejects.toThrow(RangeError);
    expect(readFileSync(file, 'utf8')).toBe('old');
  });

  it('lists its files in cloud-init order', () => {
    expect(
      noCloudSeedFiles({ metaData: { 'instance-id': 'i' }, networkConfig: '' }).map((f) => f.path),
    ).toEqual(['user-data', 'meta-data', 'network-config']);
  });
});
