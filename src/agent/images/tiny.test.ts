import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  cpSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { elfInfo } from './kernel-image.js';
import { buildNoCloudSeed, type NoCloudData } from './nocloud-seed.js';
import {
  cacheEntryName,
  ensureTinyImage,
  parseAptDepends,
  parseShowDepends,
  recipeHash,
  TINY_CACHE_DIR,
  TINY_CMDLINE,
  type TinyImage,
} from './tiny.js';
import { TINY_INIT } from './tiny-init.js';

describe('tiny image helpers', () => {
  it.each([
    ['linux-image-amd64\n  Depends: linux-image-6.1.0-56-amd64\n', 'linux-image-6.1.0-56-amd64'],
    ['linux-image-amd64\n |Depends: linux-image-6.12.9-amd64\n  Depends: foo\n', 'linux-image-6.12.9-amd64'],
    ['linux-image-amd64\n  Depends: linux-image-amd64-signed-template\n', null],
    ['', null],
  ])('finds the kernel package in apt-cache depends output %#', (text, expected) => {
    expect(parseAptDepends(text)).toBe(expected);
  });

  it('collects insmod paths in load order and built-in modules from modprobe --show-depends', () => {
    const out =
      'insmod /k/lib/modules/v/virtio_ring.ko \ninsmod /k/lib/modules/v/virtio.ko\nbuiltin crc32c\n';
    expect(parseShowDepends(out)).toEqual({
      files: ['/k/lib/modules/v/virtio_ring.ko', '/k/lib/modules/v/virtio.ko'],
      builtin: ['crc32c'],
    });
  });

  it('names cache entries by package, version and recipe, safe for a file name', () => {
    const recipe = recipeHash('busybox-sha');
    expect(cacheEntryName({ name: 'linux-image-6.1.0-56-amd64', version: '1:6.1.192-2' }, recipe)).toBe(
      `linux-image-6.1.0-56-amd64_1_6.1.192-2-${recipe.slice(0, 12)}`,
    );
  });

  it('changes the recipe when busybox changes', () => {
    expect(recipeHash('a')).not.toBe(recipeHash('b'));
  });
});

// Building needs a Debian host with apt, kmod and busybox-static; booting needs qemu-system-x86_64.
const canBuild =
  process.getuid?.() === 0 &&
  existsSync('/usr/bin/apt-get') &&
  existsSync('/bin/busybox') &&
  spawnSync('sh', ['-c', 'PATH=$PATH:/usr/sbin:/sbin command -v depmod']).status === 0;
const canBoot = canBuild && spawnSync('sh', ['-c', 'command -v qemu-system-x86_64']).status === 0;

const timings: Record<string, string> = {};
afterAll(() => {
  if (Object.keys(timings).length > 0) console.log(`tiny image figures: ${JSON.stringify(timings)}`);
});

describe.skipIf(!canBuild)('ensureTinyImage', () => {
  let image: TinyImage;
  beforeAll(async () => {
    const t0 = performance.now();
    image = await ensureTinyImage();
    timings.ensureFirstMs = (performance.now() - t0).toFixed(0);
  }, 600_000);

  it('returns the cached image quickly on the next call', async () => {
    const t0 = performance.now();
    const again = await ensureTinyImage();
    const ms = performance.now() - t0;
    timings.ensureCachedMs = ms.toFixed(0);
    expect(again).toEqual(image);
    expect(ms).toBeLessThan(3000);
  });

  it('shares one build between concurrent callers', async () => {
    const [a, b] = await Promise.all([ensureTinyImage(), ensureTinyImage()]);
    expect(a).toEqual(b);
  });

  it('waits for another process that holds the build lock and uses what it published', async () => {
    const dir = mkdtempSync(path.join(path.dirname(TINY_CACHE_DIR), 'yunhai-tiny-lock-test-'));
    try {
      const entry = path.basename(path.dirname(image.kernelPath));
      cpSync(path.join(TINY_CACHE_DIR, '.kernel-package.json'), path.join(dir, '.kernel-package.json'));
      // "Another builder": a live process owns the lock, publishes the image after 0.5 s, exits at 2 s.
      const other = spawn('sleep', ['2']);
      writeFileSync(path.join(dir, '.lock'), `${other.pid} other-builder\n`);
      const published = sleep(500).then(() => {
        cpSync(path.dirname(image.kernelPath), path.join(dir, '.build-other'), { recursive: true });
        renameSync(path.join(dir, '.build-other'), path.join(dir, entry));
      });
      const t0 = performance.now();
      const got = await ensureTinyImage(dir);
      await published;
      expect(performance.now() - t0).toBeGreaterThan(1500);
      expect(got.kernelPath).toBe(path.join(dir, entry, 'vmlinux'));
      expect(readdirSync(dir).filter((n) => !n.startsWith('.'))).toEqual([entry]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);

  it('describes its files truthfully', () => {
    const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');
    expect(image.sha256).toEqual({ kernel: sha(image.kernelPath), initrd: sha(image.initrdPath) });
    const sizes = [image.kernelPath, image.bzImagePath, image.initrdPath].map((f) => statSync(f).size);
    expect(image.sizeBytes).toBe(sizes.reduce((a, b) => a + b, 0));
    expect(image.cmdline).toBe(TINY_CMDLINE);
    expect(image.kernelVersion).toMatch(/^\d+\.\d+\.\d+-\d+-(cloud-)?amd64$/);
    timings.vmlinuxMiB = (sizes[0]! / 2 ** 20).toFixed(1);
    timings.bzImageMiB = (sizes[1]! / 2 ** 20).toFixed(1);
    timings.initrdMiB = (sizes[2]! / 2 ** 20).toFixed(2);
  });

  it('has an uncompressed kernel with a PVH entry point', () => {
    expect(elfInfo(readFileSync(image.kernelPath)).pvhEntry).not.toBeNull();
  });

  it.skipIf(spawnSync('sh', ['-c', 'command -v cpio']).status !== 0)(
    'packs our init, busybox and the modules',
    () => {
      const cpio = gunzipSync(readFileSync(image.initrdPath));
      const list = execFileSync('cpio', ['-it', '--quiet'], { input: cpio, encoding: 'utf8' }).split('\n');
      expect(list).toEqual(
        expect.arrayContaining(['init', 'bin/busybox', 'bin/sh', 'dev/console', 'etc/yunhai/modules']),
      );
      for (const m of [
        'virtio_blk.ko',
        'virtio_net.ko',
        'isofs.ko',
        'button.ko',
        'evdev.ko',
        'virtio_balloon.ko',
      ]) {
        expect(list).toContain(`lib/modules/${image.kernelVersion}/${m}`);
      }
      const init = execFileSync('cpio', ['-i', '--quiet', '--to-stdout', 'init'], {
        input: cpio,
        encoding: 'utf8',
      });
      expect(init).toBe(TINY_INIT);
    },
  );
});

/** One QEMU process running the tiny guest under TCG, with its serial console in a file and QMP. */
class Guest {
  readonly dir: string;
  readonly consolePath: string;
  readonly qmpPath: string;
  readonly startedAt = performance.now();
  readonly proc: ChildProcess;
  readonly exited: Promise<number | null>;
  private qmpSocket: net.Socket | null = null;
  private qmpBuffer = '';
  private qmpWaiters: ((msg: Record<string, unknown>) => void)[] = [];

  readonly serialPath: string;

  constructor(
    image: TinyImage,
    opts: { dir: string; seed: string; append: string; extra?: string[]; interactive?: boolean },
  ) {
    this.dir = opts.dir;
    this.consolePath = path.join(opts.dir, 'console.log');
    this.qmpPath = path.join(opts.dir, 'qmp.sock');
    this.serialPath = path.join(opts.dir, 'serial.sock');
    // Interactive: the serial port is a socket we can type into, still logged to console.log.
    const serial = opts.interactive
      ? [
          '-chardev',
          `socket,id=ser0,path=${this.serialPath},server=on,wait=off,logfile=${this.consolePath}`,
          '-serial',
          'chardev:ser0',
        ]
      : ['-serial', `file:${this.consolePath}`];
    // biome-ignore format: one QEMU option per line
    const args = [
      '-accel', 'tcg', '-M', 'q35', '-m', '256', '-smp', '1,maxcpus=2',
      '-nodefaults', '-display', 'none', '-no-reboot',
      '-kernel', image.kernelPath, '-initrd', image.initrdPath,
      '-append', `${image.cmdline} ${opts.append}`.trim(),
      '-drive', `file=${opts.seed},if=virtio,format=raw,readonly=on`,
      ...serial,
      '-device', 'virtio-balloon-pci',
      '-qmp', `unix:${this.qmpPath},server=on,wait=off`,
      ...(opts.extra ?? []),
    ];
    this.proc = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    this.proc.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    this.exited = new Promise((resolve) => {
      this.proc.on('exit', (code) => {
        if (code !== 0 && stderr.trim()) console.error(`qemu: ${stderr.trim()}`);
        resolve(code);
      });
    });
  }

  console(): string {
    try {
      return readFileSync(this.consolePath, 'utf8');
    } catch {
      return '';
    }
  }

  /** Waits until the console matches `re`; returns the match and the seconds since QEMU started. */
  async waitFor(re: RegExp, timeoutMs: number): Promise<{ match: RegExpMatchArray; seconds: number }> {
    const match = await this.waitUntil((c) => c.match(re), timeoutMs, String(re));
    return { match, seconds: (performance.now() - this.startedAt) / 1000 };
  }

  /** Polls the console until `probe` returns something. */
  async waitUntil<T>(
    probe: (console: string) => T | null | undefined,
    timeoutMs: number,
    what: string,
  ): Promise<T> {
    const deadline = performance.now() + timeoutMs;
    let exited = false;
    void this.exited.then(() => {
      exited = true;
    });
    for (;;) {
      const found = probe(this.console());
      if (found !== null && found !== undefined) return found;
      if (exited || performance.now() > deadline) {
        throw new Error(
          `console never showed ${what} (${exited ? 'QEMU exited' : 'timeout'}):\n${this.console()}`,
        );
      }
      await sleep(100);
    }
  }

  /** Minimal QMP: greeting, qmp_capabilities, then one command at a time (events are skipped). */
  async qmp(execute: string, args?: Record<string, unknown>): Promise<unknown> {
    if (!this.qmpSocket) {
      this.qmpSocket = await connectUnix(this.qmpPath);
      this.qmpSocket.on('data', (d: Buffer) => {
        this.qmpBuffer += d.toString();
        for (let nl = this.qmpBuffer.indexOf('\n'); nl >= 0; nl = this.qmpBuffer.indexOf('\n')) {
          const msg = JSON.parse(this.qmpBuffer.slice(0, nl)) as Record<string, unknown>;
          this.qmpBuffer = this.qmpBuffer.slice(nl + 1);
          if ('event' in msg) continue;
          this.qmpWaiters.shift()?.(msg);
        }
      });
      await this.next(); // greeting
      await this.qmp('qmp_capabilities');
    }
    const reply = this.next();
    this.qmpSocket.write(`${JSON.stringify(args ? { execute, arguments: args } : { execute })}\n`);
    const msg = await reply;
    if ('error' in msg) throw new Error(`QMP ${execute}: ${JSON.stringify(msg.error)}`);
    return msg.return;
  }

  private next(): Promise<Record<string, unknown>> {
    return new Promise((resolve) => this.qmpWaiters.push(resolve));
  }

  async stop(): Promise<void> {
    this.qmpSocket?.destroy();
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.kill('SIGKILL');
      await this.exited;
    }
  }
}

async function connectUnix(file: string): Promise<net.Socket> {
  for (let i = 0; ; i++) {
    try {
      return await new Promise<net.Socket>((resolve, reject) => {
        const s = net.createConnection(file, () => resolve(s));
        s.once('error', reject);
      });
    } catch (e) {
      if (i > 100) throw e;
      await sleep(50);
    }
  }
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function bootGuest(
  name: string,
  seed: NoCloudData,
  append: string,
  extra: string[] = [],
  interactive = false,
): Promise<Guest> {
  const image = await ensureTinyImage();
  const dir = mkdtempSync(path.join(os.tmpdir(), `yunhai-tiny-${name}-`));
  const seedPath = path.join(dir, 'seed.iso');
  await buildNoCloudSeed(seedPath, seed);
  return new Guest(image, { dir, seed: seedPath, append, extra, interactive });
}

const BOOT_TIMEOUT_MS = 120_000;
const NIC = ['-netdev', 'user,id=n0', '-device', 'virtio-net-pci,netdev=n0'];

describe.skipIf(!canBoot)('tiny guest booted under TCG with a #! user-data script', () => {
  let guest: Guest;
  let ready: { match: RegExpMatchArray; seconds: number };
  beforeAll(async () => {
    guest = await bootGuest(
      'script',
      {
        userData:
          '#!/bin/sh\necho hello-from-user-data\necho "host=$(hostname)"\nip -4 addr show eth0 | grep inet\n',
        metaData: { 'instance-id': 'i-script', 'local-hostname': 'tiny-script' },
      },
      'yh.ip=10.0.2.50/24 yh.gw=10.0.2.2',
      NIC,
    );
    ready = await guest.waitFor(/^YUNHAI-READY cpus=(\d+) mem_kib=(\d+)$/m, BOOT_TIMEOUT_MS);
    timings.bootToReadySeconds = ready.seconds.toFixed(2);
    timings.guestUptimeAtBoot = guest.console().match(/YUNHAI-BOOT uptime=(\S+)/)?.[1] ?? '?';
  }, BOOT_TIMEOUT_MS + 600_000);
  afterAll(async () => {
    await guest?.stop();
    if (guest) rmSync(guest.dir, { recursive: true, force: true });
  });

  it('reaches YUNHAI-READY once, with one CPU and MemTotal in KiB', () => {
    expect(Number(ready.match[1])).toBe(1);
    expect(Number(ready.match[2])).toBeGreaterThan(150_000);
    expect(Number(ready.match[2])).toBeLessThan(262_144);
    expect(guest.console().match(/YUNHAI-READY/g)).toHaveLength(1);
  });

  it('prints YUNHAI-BOOT before the seed, user-data and READY markers', () => {
    const c = guest.console();
    const at = (s: string) => c.indexOf(s);
    expect(at('YUNHAI-BOOT uptime=')).toBeGreaterThanOrEqual(0);
    expect(at('YUNHAI-BOOT')).toBeLessThan(at('YUNHAI-SEED dev=/dev/vda instance-id=i-script'));
    expect(at('YUNHAI-SEED')).toBeLessThan(at('YUNHAI-USERDATA'));
    expect(at('YUNHAI-USERDATA')).toBeLessThan(at('YUNHAI-READY'));
  });

  it('finds the seed by its cidata label and reads the Joliet names', () => {
    expect(guest.console()).toMatch(
      /^YUNHAI-SEED dev=\/dev\/vda instance-id=i-script files=meta-data,user-data,$/m,
    );
  });

  it('runs the user-data script with the hostname from meta-data and shows its output', () => {
    const c = guest.console();
    expect(c).toMatch(/^hello-from-user-data$/m);
    expect(c).toMatch(/^host=tiny-script$/m);
    expect(c).toMatch(/^YUNHAI-USERDATA exit=0 type=script$/m);
  });

  it('configures the static address from yh.ip and yh.gw before user-data runs', () => {
    const c = guest.console();
    expect(c).toMatch(/^YUNHAI-NET iface=eth0 ip=10\.0\.2\.50\/24 gw=10\.0\.2\.2 mode=static$/m);
    expect(c).toMatch(/inet 10\.0\.2\.50\/24/);
  });

  it('loads every module without complaint', () => {
    expect(guest.console()).not.toMatch(/yunhai: insmod/);
  });

  it('onlines a hot-plugged CPU and reports it as YUNHAI-STATS', async () => {
    const cpus = (await guest.qmp('query-hotpluggable-cpus')) as {
      type: string;
      props: Record<string, number>;
      'qom-path'?: string;
    }[];
    const free = cpus.find((c) => !c['qom-path'])!;
    await guest.qmp('device_add', { driver: free.type, id: 'cpu1', ...free.props });
    await guest.waitFor(/^YUNHAI-STATS cpus=2 mem_kib=\d+$/m, 30_000);
  }, 40_000);

  it('reports a balloon inflation as a lower MemTotal', async () => {
    const before = Number(ready.match[2]);
    await guest.qmp('balloon', { value: 160 * 2 ** 20 });
    // The balloon fills gradually: wait for a line that shows most of the 96 MiB gone.
    const mem = await guest.waitUntil(
      (c) =>
        [...c.matchAll(/^YUNHAI-STATS cpus=\d+ mem_kib=(\d+)$/gm)]
          .map((m) => Number(m[1]))
          .find((kib) => kib < before - 80_000),
      60_000,
      'MemTotal shrinking by 80 MB',
    );
    expect(mem).toBeGreaterThan(100_000);
  }, 70_000);

  it('prints YUNHAI-STATS only when something changed', async () => {
    await sleep(3000);
    const lines = guest.console().match(/^YUNHAI-STATS .*$/gm) ?? [];
    for (let i = 1; i < lines.length; i++) expect(lines[i]).not.toBe(lines[i - 1]);
  }, 10_000);

  it('powers off cleanly within 10 s of system_powerdown', async () => {
    const t0 = performance.now();
    // Like the QEMU driver's graceful stop: press the power button again every 3 s in case the
    // guest missed the ACPI event (seen once on a loaded CI machine).
    await guest.qmp('system_powerdown');
    const again = setInterval(() => void guest.qmp('system_powerdown').catch(() => undefined), 3_000);
    const code = await withTimeout(guest.exited, 10_000, 'powering off')
      .catch((e: Error) => {
        throw new Error(`${e.message}; console ends:\n${guest.console().slice(-2000)}`);
      })
      .finally(() => clearInterval(again));
    timings.powerdownMs = (performance.now() - t0).toFixed(0);
    expect(code).toBe(0);
    expect(guest.console()).toMatch(/^YUNHAI-POWEROFF reason=acpi/m);
  }, 15_000);
});

describe.skipIf(!canBoot)('tiny guest booted under TCG with #cloud-config and DHCP', () => {
  let guest: Guest;
  beforeAll(async () => {
    guest = await bootGuest(
      'cloud-config',
      {
        userData: [
          '#cloud-config',
          'hostname: from-cloud-config',
          'write_files:',
          '  - path: /etc/motd.d/hello',
          '    permissions: "0600"',
          '    content: |',
          '      written by write_files',
          'runcmd:',
          '  - cat /etc/motd.d/hello',
          '  - [ sh, -c, "echo mode=$(stat -c %a /etc/motd.d/hello) host=$(hostname)" ]',
        ].join('\n'),
        metaData: { 'instance-id': 'i-cc', 'local-hostname': 'from-meta-data' },
        networkConfig: 'version: 2\nethernets:\n  eth0:\n    dhcp4: true\n',
      },
      '',
      NIC,
      true,
    );
    await guest.waitFor(/^YUNHAI-READY /m, BOOT_TIMEOUT_MS);
  }, BOOT_TIMEOUT_MS + 600_000);
  afterAll(async () => {
    await guest?.stop();
    if (guest) rmSync(guest.dir, { recursive: true, force: true });
  });

  it('applies write_files and runcmd, and the cloud-config hostname wins', () => {
    const c = guest.console();
    expect(c).toMatch(/^written by write_files$/m);
    expect(c).toMatch(/^mode=600 host=from-cloud-config$/m);
    expect(c).toMatch(/^YUNHAI-USERDATA exit=0 type=cloud-config$/m);
  });

  it('gets an address over DHCP when network-config asks for dhcp4', () => {
    expect(guest.console()).toMatch(/^YUNHAI-NET iface=eth0 ip=10\.0\.2\.15\/24 gw=10\.0\.2\.2 mode=dhcp$/m);
  });

  it('answers commands typed on the serial console with a root shell', async () => {
    const serial = await connectUnix(guest.serialPath);
    try {
      // The shell may still be starting: type until it answers.
      await guest.waitUntil(
        (c) => {
          if (/^shell-42 uid=0\r?$/m.test(c)) return true;
          serial.write('echo shell-$((6*7)) uid=$(id -u)\n');
          return null;
        },
        30_000,
        'the shell answering',
      );
    } finally {
      serial.destroy();
    }
  }, 40_000);
});
