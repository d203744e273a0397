import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runHypervisorConformance } from '../../hypervisor.case.js';
import type { BootSource, Hypervisor, VmEvent, VmSpec } from '../../hypervisor.js';
import { createFakeDriver, type FakeDriver } from './fake-driver.js';

const KERNEL_BOOT: BootSource = {
  kernel: { kernelPath: '/fake/vmlinux', initrdPath: '/fake/initrd.img', cmdline: 'console=ttyS0' },
  firmware: 'bios',
};

const isFake = (d: Hypervisor): d is FakeDriver => 'simulateCrash' in d;

runHypervisorConformance(
  'fake',
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'yunhai-fake-'));
    const stateFile = join(dir, 'state.json');
    return {
      driver: createFakeDriver({ stateFile }),
      reopen: async () => createFakeDriver({ stateFile }),
      cleanup: async () => rmSync(dir, { recursive: true, force: true }),
    };
  },
  {
    bootSource: async () => KERNEL_BOOT,
    readyTimeoutMs: 2_000,
    crash: async (driver, id) => {
      if (!isFake(driver)) throw new Error('not the fake driver');
      driver.simulateCrash(id, 'simulated: killed by signal 9');
    },
  },
);

const spec = (id: string, over: Partial<VmSpec> = {}): VmSpec => ({
  id,
  name: id,
  vcpus: 1,
  maxVcpus: 4,
  memoryMiB: 256,
  maxMemoryMiB: 1024,
  diskGiB: 1,
  boot: KERNEL_BOOT,
  ...over,
});

const consoleText = async (d: Hypervisor, id: string) =>
  (await d.readConsole(id, 0, 1 << 20)).data.toString();

/** Resolves with the first event matching `match` (subscribe before acting). */
const nextEvent = (d: Hypervisor, match: (e: VmEvent) => boolean) =>
  new Promise<VmEvent>((resolve) => {
    const off = d.onEvent((e) => {
      if (match(e)) {
        off();
        resolve(e);
      }
    });
  });

describe('fake driver', () => {
  const open: Hypervisor[] = [];
  const dirs: string[] = [];
  const make = (opts: Parameters<typeof createFakeDriver>[0] = {}) => {
    const d = createFakeDriver(opts);
    open.push(d);
    return d;
  };
  const tempStateFile = () => {
    const dir = mkdtempSync(join(tmpdir(), 'yunhai-fake-'));
    dirs.push(dir);
    return join(dir, 'state.json');
  };
  afterEach(async () => {
    for (const d of open.splice(0)) await d.close();
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it('runs ten thousand VMs in memory through define, start, guest-ready, resize and destroy', async () => {
    const d = make({ bootMs: 5 });
    const ids = Array.from({ length: 10_000 }, (_, i) => `vm-${i}`);
    let ready = 0;
    const allReady = new Promise<void>((resolve) => {
      d.onEvent((e) => {
        if (e.type === 'guest-ready' && ++ready === ids.length) resolve();
      });
    });
    await Promise.all(ids.map((id) => d.define(spec(id))));
    await Promise.all(ids.map((id) => d.start(id)));
    await allReady;

    const all = await d.list();
    expect(all).toHaveLength(10_000);
    expect(all.every((s) => s.state === 'running')).toBe(true);
    expect(await d.resize('vm-9999', { vcpus: 4 })).toMatchObject({ vcpus: 4 });
    expect(await consoleText(d, 'vm-4242')).toContain('YUNHAI-READY');

    await Promise.all(ids.map((id) => d.destroy(id)));
    expect(await d.list()).toEqual([]);
  });

  it('fails a start chosen by failStartFor with StartFailed and leaves the VM stopped', async () => {
    const d = make({
      failStartFor: (s) => (s.name === 'doomed' ? 'no such file: /fake/vmlinux' : undefined),
    });
    await d.define(spec('vm-doomed', { name: 'doomed' }));
    await d.define(spec('vm-fine'));
    await expect(d.start('vm-doomed')).rejects.toMatchObject({
      code: 'StartFailed',
      message: expect.stringContaining('no such file'),
    });
    expect(await d.status('vm-doomed')).toMatchObject({ state: 'stopped' });
    expect(await consoleText(d, 'vm-doomed')).toBe('');
    await d.start('vm-fine');
    expect(await d.status('vm-fine')).toMatchObject({ state: 'running' });
  });

  it('rediscovers VMs with their state, live sizes and console from the state file', async () => {
    const stateFile = tempStateFile();
    const first = make({ stateFile });
    await first.define(spec('vm-a'));
    await first.define(spec('vm-b'));
    const ready = nextEvent(first, (e) => e.type === 'guest-ready');
    await first.start('vm-a');
    await ready;
    await first.resize('vm-a', { vcpus: 2, memoryMiB: 512 });
    const log = await consoleText(first, 'vm-a');
    await first.close();

    const second = make({ stateFile });
    expect(await second.list()).toEqual([
      { id: 'vm-a', state: 'running', vcpus: 2, memoryMiB: 512 },
      { id: 'vm-b', state: 'stopped', vcpus: 1, memoryMiB: 256 },
    ]);
    expect(await consoleText(second, 'vm-a')).toBe(log);
    await second.stop('vm-a', { timeoutMs: 1000 });
    expect(await second.status('vm-a')).toMatchObject({ state: 'stopped', vcpus: 1, memoryMiB: 256 });
  });

  it('finishes a boot that was in progress when the driver was closed', async () => {
    const stateFile = tempStateFile();
    const first = make({ stateFile, bootMs: 50 });
    await first.define(spec('vm-a'));
    await first.start('vm-a');
    await first.close();

    const second = make({ stateFile });
    await nextEvent(second, (e) => e.type === 'guest-ready' && e.id === 'vm-a');
    expect(await consoleText(second, 'vm-a')).toContain('YUNHAI-READY');
  });

  it('merges capability overrides with the defaults', async () => {
    expect(await make().capabilities()).toEqual({
      driver: 'fake',
      accelerator: 'fake',
      hypervisorVersion: 'fake-1',
      vcpus: 64,
      memoryMiB: 262144,
      diskGiB: 4096,
      firmware: ['bios', 'uefi'],
    });
    expect(await make({ capabilities: { vcpus: 8, firmware: ['bios'] } }).capabilities()).toMatchObject({
      driver: 'fake',
      vcpus: 8,
      memoryMiB: 262144,
      firmware: ['bios'],
    });
  });

  it('refuses maxima beyond the host and a firmware the host lacks', async () => {
    const d = make({ capabilities: { vcpus: 4, memoryMiB: 2048, firmware: ['bios'] } });
    await expect(d.define(spec('vm-a', { maxVcpus: 8 }))).rejects.toMatchObject({ code: 'ResizeOutOfRange' });
    await expect(d.define(spec('vm-a', { maxMemoryMiB: 4096 }))).rejects.toMatchObject({
      code: 'ResizeOutOfRange',
    });
    await expect(
      d.define(spec('vm-a', { boot: { ...KERNEL_BOOT, firmware: 'uefi' } })),
    ).rejects.toMatchObject({
      code: 'ImageInvalid',
    });
    await expect(
      d.define(spec('vm-a', { boot: { diskImage: { path: '', format: 'qcow2' }, firmware: 'bios' } })),
    ).rejects.toMatchObject({ code: 'ImageInvalid' });
    expect(await d.list()).toEqual([]);
  });

  it('redefines a stopped VM with a new spec, which the next start uses', async () => {
    const d = make();
    await d.define(spec('vm-a'));
    await d.define(spec('vm-a', { vcpus: 2, memoryMiB: 512 }));
    expect(await d.status('vm-a')).toMatchObject({ state: 'stopped', vcpus: 2, memoryMiB: 512 });
    const ready = nextEvent(d, (e) => e.type === 'guest-ready');
    await d.start('vm-a');
    await ready;
    expect(await consoleText(d, 'vm-a')).toContain('YUNHAI-READY cpus=2 mem_kib=524288');
  });

  it('prints the tiny guest lines with exact sizes: READY at boot, STATS after a resize', async () => {
    const d = make();
    await d.define(spec('vm-a'));
    const ready = nextEvent(d, (e) => e.type === 'guest-ready');
    await d.start('vm-a');
    await ready;
    await d.resize('vm-a', { vcpus: 3 });
    await d.resize('vm-a', { memoryMiB: 300 });
    expect((await consoleText(d, 'vm-a')).split('\r\n')).toEqual([
      'YUNHAI-BOOT',
      'YUNHAI-READY cpus=1 mem_kib=262144',
      'YUNHAI-STATS cpus=3 mem_kib=262144',
      'YUNHAI-STATS cpus=3 mem_kib=307200',
      '',
    ]);
  });

  it('runs user-data scripts for their echo output and exit status, and ignores other user data', async () => {
    const d = make();
    const scripts = {
      'vm-echo': '#!/bin/sh\n# comment\necho \'hello world\'\necho "two"\n',
      'vm-false': '#!/bin/sh\necho before\nfalse\n',
      'vm-exit': '#!/bin/sh\nexit 3\necho never\n',
      'vm-config': '#cloud-config\nruncmd: [echo hi]\n',
    };
    for (const [id, userData] of Object.entries(scripts)) {
      await d.define(spec(id, { cloudInit: { userData, metaData: { 'instance-id': id } } }));
      const ready = nextEvent(d, (e) => e.type === 'guest-ready' && e.id === id);
      await d.start(id);
      await ready;
    }
    expect(await consoleText(d, 'vm-echo')).toContain('hello world\r\ntwo\r\nYUNHAI-USERDATA exit=0\r\n');
    expect(await consoleText(d, 'vm-false')).toContain('before\r\nYUNHAI-USERDATA exit=1\r\n');
    const exited = await consoleText(d, 'vm-exit');
    expect(exited).toContain('YUNHAI-USERDATA exit=3');
    expect(exited).not.toContain('never');
    expect(await consoleText(d, 'vm-config')).not.toContain('YUNHAI-USERDATA');
  });

  it('powers off cleanly through ACPI when the guest answers within the timeout', async () => {
    const d = make({ stopMs: 5 });
    await d.define(spec('vm-a'));
    await d.start('vm-a');
    const stopped = nextEvent(d, (e) => e.type === 'stopped');
    await d.stop('vm-a', { timeoutMs: 10_000 });
    expect(await stopped).toEqual({ type: 'stopped', id: 'vm-a', reason: 'guest powered off' });
    expect(await consoleText(d, 'vm-a')).toContain('YUNHAI-POWEROFF reason=acpi');
  });

  it('hard-stops a guest that does not power off within the timeout', async () => {
    const d = make({ stopMs: 10_000 });
    await d.define(spec('vm-a'));
    await d.start('vm-a');
    const stopped = nextEvent(d, (e) => e.type === 'stopped');
    await d.stop('vm-a', { timeoutMs: 20 });
    expect(await stopped).toEqual({ type: 'stopped', id: 'vm-a', reason: 'hard stop after 20 ms' });
    expect(await d.status('vm-a')).toMatchObject({ state: 'stopped' });
    expect(await consoleText(d, 'vm-a')).not.toContain('YUNHAI-POWEROFF');
  });

  it('lets concurrent stops share one power-off, the earliest deadline winning', async () => {
    const d = make({ stopMs: 10_000 });
    await d.define(spec('vm-a'));
    await d.start('vm-a');
    const heard: VmEvent[] = [];
    d.onEvent((e) => heard.push(e));
    await Promise.all([d.stop('vm-a', { timeoutMs: 60_000 }), d.stop('vm-a', { timeoutMs: 20 })]);
    expect(heard.filter((e) => e.type === 'stopped')).toEqual([
      { type: 'stopped', id: 'vm-a', reason: 'hard stop after 20 ms' },
    ]);
    await expect(d.reboot('vm-a')).rejects.toMatchObject({ code: 'InvalidState' });
  });

  it('refuses to simulate a crash of a VM that is not running or not defined', async () => {
    const d = make();
    await d.define(spec('vm-a'));
    expect(() => d.simulateCrash('vm-a', 'boom')).toThrow(expect.objectContaining({ code: 'InvalidState' }));
    expect(() => d.simulateCrash('vm-none', 'boom')).toThrow(expect.objectContaining({ code: 'NotDefined' }));
  });

  it('rejects every call after close with MonitorDisconnected', async () => {
    const d = make();
    await d.define(spec('vm-a'));
    await d.close();
    await expect(d.status('vm-a')).rejects.toMatchObject({ code: 'MonitorDisconnected' });
    await expect(d.start('vm-a')).rejects.toMatchObject({ code: 'MonitorDisconnected' });
    await d.close();
  });
});
