import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { renderMetaData } from './nocloud-seed.js';
import { TINY_CLOUD_CONFIG_AWK, TINY_FUNCTIONS, TINY_GUEST_FILES } from './tiny-init.js';

// The guest runs these with busybox; so do we (busybox-static is a build dependency anyway).
const BUSYBOX = ['/bin/busybox', '/usr/bin/busybox'].find((p) => existsSync(p));
const tmp = mkdtempSync(path.join(os.tmpdir(), 'yunhai-tiny-init-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function busybox(args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {}) {
  const r = spawnSync(BUSYBOX!, args, { encoding: 'utf8', input: opts.input, env: opts.env, cwd: opts.cwd });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

let n = 0;
/** Translates cloud-config with the guest's awk program, then runs the result; returns both. */
function applyCloudConfig(userData: string) {
  const dir = path.join(tmp, `cc-${n++}`);
  mkdirSync(path.join(dir, 'files'), { recursive: true });
  writeFileSync(path.join(dir, 'user-data'), userData);
  writeFileSync(path.join(dir, 'cloud-config.awk'), TINY_CLOUD_CONFIG_AWK);
  const awk = busybox([
    'awk',
    '-v',
    `files=${dir}/files`,
    '-f',
    `${dir}/cloud-config.awk`,
    `${dir}/user-data`,
  ]);
  expect(awk.stderr).toBe('');
  expect(awk.status).toBe(0);
  // Run without the hostname line (it would rename the test machine).
  const script = awk.stdout.replace(/^hostname .*\n/m, '');
  const run = busybox(['sh', '-c', script], { cwd: dir });
  return { dir, script: awk.stdout, ...run };
}

describe.skipIf(!BUSYBOX)('tiny guest scripts', () => {
  it.each(TINY_GUEST_FILES.filter((f) => f.content.startsWith('#!/bin/sh') || f.path.endsWith('.sh')))(
    'has valid shell syntax in $path',
    (file) => {
      const r = busybox(['sh', '-n', '-c', file.content]);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
    },
  );

  it('prints every marker the contract names', () => {
    const all = TINY_GUEST_FILES.map((f) => f.content).join('\n');
    for (const marker of [
      'YUNHAI-BOOT uptime=',
      'YUNHAI-SEED dev=',
      'YUNHAI-SEED none',
      'YUNHAI-NET iface=',
      'YUNHAI-USERDATA exit=',
      'YUNHAI-READY cpus=$CPUS mem_kib=$MEM',
      'YUNHAI-STATS cpus=%s mem_kib=%s',
      'YUNHAI-POWEROFF reason=acpi',
    ]) {
      expect(all).toContain(marker);
    }
  });

  it.each([
    ['console=ttyS0 yh.ip=10.0.0.5/24 yh.gw=10.0.0.1', 'yh.ip', '10.0.0.5/24'],
    ['console=ttyS0 yh.ip=10.0.0.5/24 yh.gw=10.0.0.1', 'yh.gw', '10.0.0.1'],
    ['quiet ip=dhcp', 'ip', 'dhcp'],
    ['yh.ipx=1 yh.ip=2', 'yh.ip', '2'],
    ['yh.dns=1.1.1.1,9.9.9.9 a=b=c', 'a', 'b=c'],
    ['console=ttyS0 *', 'yh.ip', ''],
  ])('reads %s: %s is "%s"', (cmdline, name, value) => {
    const file = path.join(tmp, `cmdline-${n++}`);
    writeFileSync(file, `${cmdline}\n`);
    const r = busybox(['sh', '-c', `${TINY_FUNCTIONS}\ncmdline_arg ${name}`], { env: { YH_CMDLINE: file } });
    expect(r.stdout).toBe(`${value}\n`);
  });

  it.each([
    ['vm-1', 'vm-1'],
    ['123', '123'],
    ['yes', 'yes'],
    ['host name with spaces', 'host name with spaces'],
  ])('reads local-hostname %s back from rendered meta-data', (hostname, expected) => {
    const seed = path.join(tmp, `seed-${n++}`);
    mkdirSync(seed);
    writeFileSync(
      path.join(seed, 'meta-data'),
      renderMetaData({ 'instance-id': 'i-1', 'local-hostname': hostname }),
    );
    const r = busybox(['sh', '-c', `${TINY_FUNCTIONS}\nmeta_data local-hostname; meta_data instance-id`], {
      env: { YH_SEED: seed },
    });
    expect(r.stdout).toBe(`${expected}\ni-1\n`);
  });
});

describe.skipIf(!BUSYBOX)('cloud-config subset', () => {
  it('runs runcmd strings and argv lists in order and exits with the last status', () => {
    const r = applyCloudConfig(
      '#cloud-config\nruncmd:\n  - echo one\n  - [ echo, "two words", \'three\' ]\n  - "echo four; exit 3"\n',
    );
    expect(r.stdout).toBe('one\ntwo words three\nfour\n');
    expect(r.status).toBe(3);
  });

  it('writes files from plain, quoted and block contents with permissions', () => {
    const r = applyCloudConfig(
      [
        '#cloud-config',
        'write_files:',
        '  - path: out/plain.txt',
        '    content: hello world',
        '  - path: out/quoted.txt',
        '    content: "a\\tb\\n"',
        "    permissions: '0600'",
        '  - path: out/block.sh',
        '    permissions: "0755"',
        '    content: |',
        '      #!/bin/sh',
        '      echo "it\'s $HOME"',
        '',
        '        indented',
        '  - path: out/strip.txt',
        '    content: |-',
        '      no newline',
        '  - path: out/folded.txt',
        '    content: >',
        '      one',
        '      two',
        '',
        '      three',
        'runcmd:',
        '  - cat out/plain.txt',
      ].join('\n'),
    );
    expect(r.status).toBe(0);
    const read = (f: string) => readFileSync(path.join(r.dir, 'out', f), 'utf8');
    expect(read('plain.txt')).toBe('hello world');
    expect(read('quoted.txt')).toBe('a\tb\n');
    expect(read('block.sh')).toBe('#!/bin/sh\necho "it\'s $HOME"\n\n  indented\n');
    expect(read('strip.txt')).toBe('no newline');
    expect(read('folded.txt')).toBe('one two\nthree\n');
    expect(statSync(path.join(r.dir, 'out', 'quoted.txt')).mode & 0o777).toBe(0o600);
    expect(statSync(path.join(r.dir, 'out', 'block.sh')).mode & 0o777).toBe(0o755);
    expect(r.stdout).toBe('hello world');
  });

  it('decodes base64 content and appends when asked', () => {
    const r = applyCloudConfig(
      [
        '#cloud-config',
        'write_files:',
        '- path: b64.txt',
        '  encoding: b64',
        `  content: ${Buffer.from('decoded\n').toString('base64')}`,
        '- path: b64.txt',
        '  append: true',
        '  content: more',
      ].join('\n'),
    );
    expect(r.status).toBe(0);
    expect(readFileSync(path.join(r.dir, 'b64.txt'), 'utf8')).toBe('decoded\nmore');
  });

  it('quotes paths and arguments so they cannot inject commands', () => {
    const r = applyCloudConfig(
      [
        '#cloud-config',
        'write_files:',
        '  - path: "x\'; touch pwned; echo \'"',
        '    content: safe',
        'runcmd:',
        '  - [ echo, "$(touch pwned2)" ]',
      ].join('\n'),
    );
    expect(r.status).toBe(0);
    expect(existsSync(path.join(r.dir, 'pwned'))).toBe(false);
    expect(existsSync(path.join(r.dir, 'pwned2'))).toBe(false);
    expect(readFileSync(path.join(r.dir, "x'; touch pwned; echo '"), 'utf8')).toBe('safe');
  });

  it('sets the hostname from hostname: and ignores keys it does not support', () => {
    const r = applyCloudConfig(
      '#cloud-config\npackages:\n  - nginx\nhostname: web-1\nusers:\n  - name: bob\n',
    );
    expect(r.script).toMatch(/^hostname 'web-1' && echo 'web-1' > \/etc\/hostname$/m);
    expect(r.status).toBe(0);
  });
});
