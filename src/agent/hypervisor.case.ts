import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type BootSource,
  type Hypervisor,
  HypervisorError,
  type HypervisorErrorCode,
  type VmEvent,
  type VmSpec,
} from './hypervisor.js';

export interface HypervisorHarness {
  driver: Hypervisor;
  cleanup(): Promise<void>;
  /** A new driver object on the same host state, as after an agent restart (tests rediscovery). */
  reopen?(): Promise<Hypervisor>;
}

export interface HypervisorConformanceOptions {
  /** A boot source for the tiny guest (or dummy paths for the fake). */
  bootSource: () => Promise<BootSource>;
  /** How long a boot may take to reach guest-ready: ~5-10 s under TCG, tens of ms for the fake. */
  readyTimeoutMs: number;
  /** Makes the VM's process die (fake: simulateCrash; qemu: kill -9). Without it the crash case is skipped. */
  crash?: (driver: Hypervisor, id: string) => Promise<void>;
}

const USER_DATA = '#!/bin/sh\necho conformance-user-data';

/**
 * The hypervisor conformance suite. Every driver runs exactly these cases (fake-driver.test.ts,
 * qemu-driver.test.ts), so the agent cannot tell the fake from a real host by behaviour. The cases
 * share one VM and run in order, the way an agent drives a VM through its life; each case still
 * brings the VM into the state it needs, so one failure does not hide the rest.
 *
 * What the guest must print on its serial console: `YUNHAI-BOOT` on every boot, the user-data
 * script's output then `YUNHAI-USERDATA exit=<status>`, `YUNHAI-READY ...` (before the driver emits
 * guest-ready), `YUNHAI-STATS cpus=<n> ...` once a resize has reached it, and an echo of console input.
 */
export function runHypervisorConformance(
  name: string,
  makeDriver: () => Promise<HypervisorHarness>,
  opts: HypervisorConformanceOptions,
) {
  describe(`hypervisor conformance: ${name}`, () => {
    const T = opts.readyTimeoutMs;
    /** Budget for a case that boots the guest up to three times. */
    const BOOTS = 3 * T + 10_000;
    const POLL_MS = Math.min(100, Math.max(5, Math.floor(T / 50)));
    const run = randomBytes(4).toString('hex');
    const vm = `conf-${run}-main`;
    const idle = `conf-${run}-idle`;
    const ghost = `conf-${run}-ghost`;

    let harness: HypervisorHarness | undefined;
    let driver: Hypervisor;
    let boot: BootSource;
    const defined = new Set<string>();
    const events: VmEvent[] = [];
    const eventWaiters = new Set<() => void>();
    let unsubscribe: (() => void) | undefined;

    const record = (d: Hypervisor) => {
      unsubscribe?.();
      unsubscribe = d.onEvent((e) => {
        events.push(e);
        for (const w of eventWaiters) w();
      });
    };

    beforeAll(async () => {
      harness = await makeDriver();
      driver = harness.driver;
      boot = await opts.bootSource();
      record(driver);
    });

    afterAll(async () => {
      if (!harness) return;
      for (const id of defined) await driver.destroy(id).catch(() => {});
      unsubscribe?.();
      await driver.close().catch(() => {});
      await harness.cleanup();
    });

    const spec = (id: string, over: Partial<VmSpec> = {}): VmSpec => ({
      id,
      name: 'conf',
      vcpus: 1,
      maxVcpus: 2,
      memoryMiB: 256,
      maxMemoryMiB: 512,
      diskGiB: 1,
      boot,
      cloudInit: { userData: USER_DATA, metaData: { 'instance-id': id, 'local-hostname': 'conf' } },
      ...over,
    });

    const define = async (s: VmSpec) => {
      defined.add(s.id);
      await driver.define(s);
    };

    /** Index into `events`; waitForEvent looks only at events recorded after it. */
    const mark = () => events.length;

    const waitForEvent = (what: string, since: number, match: (e: VmEvent) => boolean) =>
      new Promise<VmEvent>((resolve, reject) => {
        const check = () => {
          const hit = events.slice(since).find(match);
          if (hit) {
            done();
            resolve(hit);
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`no ${what} within ${T} ms; events seen: ${JSON.stringify(events.slice(since))}`));
        }, T);
        const done = () => {
          clearTimeout(timer);
          eventWaiters.delete(check);
        };
        eventWaiters.add(check);
        check();
      });

    const eventsSince = (since: number, id: string) => events.slice(since).filter((e) => e.id === id);

    /** Everything on the console from `from` up to now, and the offset to continue from. */
    const readAll = async (id: string, from = 0) => {
      const parts: Buffer[] = [];
      let offset = from;
      for (let total = 0; ; ) {
        const { data, next } = await driver.readConsole(id, offset);
        if (data.length === 0) return { text: Buffer.concat(parts).toString('utf8'), next: offset };
        // Without these a driver that ignores the offset would keep this loop going forever.
        expect(next, `readConsole(${offset}) returned data but next=${next}`).toBeGreaterThan(offset);
        total += data.length;
        expect(total, 'console larger than 64 MiB').toBeLessThan(64 << 20);
        parts.push(data);
        offset = next;
      }
    };

    const waitForConsole = async (id: string, needle: string, from = 0) => {
      const deadline = Date.now() + T;
      let text = '';
      for (;;) {
        text = (await readAll(id, from)).text;
        if (text.includes(needle)) return text;
        if (Date.now() > deadline) {
          throw new Error(
            `console of ${id} lacks ${JSON.stringify(needle)} after ${T} ms:\n${text.slice(-2000)}`,
          );
        }
        await new Promise((r) => setTimeout(r, POLL_MS));
      }
    };

    const count = (text: string, needle: string) => text.split(needle).length - 1;

    const expectCode = async (p: Promise<unknown>, code: HypervisorErrorCode) => {
      const err = await p.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, `expected HypervisorError ${code}`).toBeInstanceOf(HypervisorError);
      expect((err as HypervisorError).code).toBe(code);
    };

    const stateOf = async (id: string) => (await driver.status(id))?.state;

    /** Defines the shared VM and makes sure it runs with a ready guest. */
    const ensureReady = async (id = vm) => {
      await define(spec(id));
      if ((await stateOf(id)) === 'running') return;
      const since = mark();
      await driver.start(id);
      await waitForEvent('guest-ready', since, (e) => e.type === 'guest-ready' && e.id === id);
    };

    const ensureStopped = async (id = vm) => {
      await define(spec(id));
      if ((await stateOf(id)) === 'running') await driver.stop(id, { timeoutMs: 0 });
    };

    it('reports capabilities that match the driver and describe a usable host', async () => {
      const caps = await driver.capabilities();
      expect(caps.driver).toBe(driver.name);
      expect(caps.accelerator).toSatisfy((a: string) =>
        driver.name === 'fake' ? a === 'fake' : a === 'kvm' || a === 'tcg',
      );
      expect(caps.hypervisorVersion).toMatch(/\S/);
      for (const n of [caps.vcpus, caps.memoryMiB, caps.diskGiB]) {
        expect(Number.isInteger(n) && n > 0, `${n} is a positive integer`).toBe(true);
      }
      expect(caps.firmware.length).toBeGreaterThan(0);
      for (const f of caps.firmware) expect(['bios', 'uefi']).toContain(f);
      expect(await driver.capabilities()).toEqual(caps);
    });

    it('defines a VM idempotently and reports it stopped at its boot sizes', async () => {
      await define(spec(vm));
      await define(spec(vm));
      expect(await driver.status(vm)).toMatchObject({ id: vm, state: 'stopped', vcpus: 1, memoryMiB: 256 });
      expect((await driver.list()).filter((s) => s.id === vm)).toHaveLength(1);
    });

    it('refuses a spec without a boot source and defines nothing', async () => {
      const id = `conf-${run}-noboot`;
      await expectCode(driver.define(spec(id, { boot: { firmware: boot.firmware } })), 'ImageInvalid');
      expect(await driver.status(id)).toBeNull();
    });

    it('refuses a spec whose boot sizes exceed its maxima', async () => {
      const id = `conf-${run}-oversized`;
      await expectCode(driver.define(spec(id, { vcpus: 3, maxVcpus: 2 })), 'ResizeOutOfRange');
      await expectCode(driver.define(spec(id, { memoryMiB: 1024, maxMemoryMiB: 512 })), 'ResizeOutOfRange');
      await expectCode(driver.define(spec(id, { vcpus: 0 })), 'ResizeOutOfRange');
      expect(await driver.status(id)).toBeNull();
    });

    it('refuses a spec with an empty root disk', async () => {
      const id = `conf-${run}-nodisk`;
      await expectCode(driver.define(spec(id, { diskGiB: 0 })), 'DiskTooSmall');
      expect(await driver.status(id)).toBeNull();
    });

    it('refuses an id that could name a path outside the VM directory', async () => {
      for (const id of ['../escape', 'a/b', '']) {
        await expect(driver.define(spec(id))).rejects.toBeInstanceOf(HypervisorError);
      }
    });

    it('lists every VM it has defined', async () => {
      await define(spec(vm));
      await define(spec(idle));
      const ids = (await driver.list()).map((s) => s.id);
      expect(ids).toEqual(expect.arrayContaining([vm, idle]));
      expect((await driver.list()).find((s) => s.id === idle)).toMatchObject({ state: 'stopped' });
    });

    it(
      'starts a VM that runs, becomes guest-ready and has printed YUNHAI-READY by then',
      async () => {
        await ensureStopped();
        const since = mark();
        await driver.start(vm);
        expect(await driver.status(vm)).toMatchObject({ state: 'running', vcpus: 1, memoryMiB: 256 });
        await waitForEvent('guest-ready', since, (e) => e.type === 'guest-ready' && e.id === vm);
        const { text } = await readAll(vm);
        expect(text).toContain('YUNHAI-BOOT');
        expect(text).toContain('YUNHAI-READY');
        expect(await stateOf(vm)).toBe('running');
      },
      BOOTS,
    );

    it(
      'runs the user-data script and shows its output and exit status on the console',
      async () => {
        await ensureReady();
        const text = await waitForConsole(vm, 'YUNHAI-USERDATA exit=0');
        expect(text).toContain('conformance-user-data');
        expect(text.indexOf('conformance-user-data')).toBeLessThan(text.indexOf('YUNHAI-USERDATA exit=0'));
      },
      BOOTS,
    );

    it(
      'reads the console in pieces from the offset it returns, and echoes what is written to it',
      async () => {
        await ensureReady();
        const head = await driver.readConsole(vm, 0, 8);
        expect(head.data.length).toBeGreaterThan(0);
        expect(head.data.length).toBeLessThanOrEqual(8);
        expect(head.next).toBe(head.data.length);
        const rest = await readAll(vm, head.next);
        const whole = await readAll(vm, 0);
        expect(whole.text.startsWith(head.data.toString('utf8') + rest.text)).toBe(true);

        const marker = `conformance-echo-${run}`;
        await driver.writeConsole(vm, Buffer.from(`${marker}\n`));
        const fresh = await waitForConsole(vm, marker, whole.next);
        expect(fresh).not.toContain('YUNHAI-BOOT');
        const { data } = await driver.readConsole(vm, whole.next + 1_000_000);
        expect(data.length).toBe(0);
      },
      BOOTS,
    );

    it(
      'refuses to start a VM that is already running',
      async () => {
        await ensureReady();
        await expectCode(driver.start(vm), 'InvalidState');
        expect(await stateOf(vm)).toBe('running');
      },
      BOOTS,
    );

    it(
      'accepts the same spec for a running VM but refuses to redefine it with another',
      async () => {
        await ensureReady();
        await driver.define(spec(vm));
        await expectCode(driver.define(spec(vm, { diskGiB: 2 })), 'InvalidState');
        expect(await driver.status(vm)).toMatchObject({ state: 'running', vcpus: 1, memoryMiB: 256 });
      },
      BOOTS,
    );

    it(
      'resizes memory down and back up within the maximum',
      async () => {
        await ensureReady();
        let since = mark();
        expect(await driver.resize(vm, { memoryMiB: 128 })).toMatchObject({ memoryMiB: 128, vcpus: 1 });
        expect(await driver.status(vm)).toMatchObject({ state: 'running', memoryMiB: 128, vcpus: 1 });
        await waitForEvent('resized to 128 MiB', since, (e) => e.type === 'resized' && e.memoryMiB === 128);

        since = mark();
        expect(await driver.resize(vm, { memoryMiB: 512 })).toMatchObject({ memoryMiB: 512 });
        expect(await driver.status(vm)).toMatchObject({ memoryMiB: 512 });
        const e = await waitForEvent('resized to 512 MiB', since, (x) => x.type === 'resized' && x.id === vm);
        expect(e).toEqual({ type: 'resized', id: vm, vcpus: 1, memoryMiB: 512 });

        await driver.resize(vm, { memoryMiB: 256 });
        expect(await driver.status(vm)).toMatchObject({ memoryMiB: 256 });
      },
      BOOTS,
    );

    it(
      'hot-plugs a vCPU and removes it again, as status and the guest report',
      async () => {
        await ensureReady();
        const before = (await readAll(vm)).next;
        let since = mark();
        expect(await driver.resize(vm, { vcpus: 2 })).toMatchObject({ vcpus: 2, memoryMiB: 256 });
        expect(await driver.status(vm)).toMatchObject({ state: 'running', vcpus: 2 });
        await waitForEvent('resized to 2 vCPUs', since, (e) => e.type === 'resized' && e.vcpus === 2);
        await waitForConsole(vm, 'YUNHAI-STATS cpus=2', before);

        const middle = (await readAll(vm)).next;
        since = mark();
        expect(await driver.resize(vm, { vcpus: 1 })).toMatchObject({ vcpus: 1 });
        expect(await driver.status(vm)).toMatchObject({ vcpus: 1 });
        await waitForEvent('resized to 1 vCPU', since, (e) => e.type === 'resized' && e.vcpus === 1);
        await waitForConsole(vm, 'YUNHAI-STATS cpus=1', middle);
      },
      BOOTS,
    );

    it(
      'refuses a resize beyond the maxima and changes nothing',
      async () => {
        await ensureReady();
        const before = await driver.status(vm);
        const since = mark();
        for (const target of [
          { vcpus: 3 },
          { vcpus: 0 },
          { vcpus: 1.5 },
          { memoryMiB: 513 },
          { memoryMiB: 0 },
          { vcpus: 2, memoryMiB: 4096 },
        ]) {
          await expectCode(driver.resize(vm, target), 'ResizeOutOfRange');
        }
        expect(await driver.status(vm)).toEqual(before);
        expect(eventsSince(since, vm).filter((e) => e.type === 'resized')).toEqual([]);
      },
      BOOTS,
    );

    it('refuses to resize, reboot or write the console of a VM that is not running', async () => {
      await define(spec(idle));
      await ensureStopped(idle);
      await expectCode(driver.resize(idle, { memoryMiB: 128 }), 'InvalidState');
      await expectCode(driver.reboot(idle), 'InvalidState');
      await expectCode(driver.writeConsole(idle, Buffer.from('x\n')), 'InvalidState');
      expect(await driver.status(idle)).toMatchObject({ state: 'stopped', vcpus: 1, memoryMiB: 256 });
    });

    it(
      'reboots a running VM, which stays running and boots a second time',
      async () => {
        await ensureReady();
        const { text: first, next } = await readAll(vm);
        const since = mark();
        await driver.reboot(vm);
        expect(await stateOf(vm)).toBe('running');
        await waitForEvent('guest-ready after reboot', since, (e) => e.type === 'guest-ready' && e.id === vm);
        const after = await readAll(vm, next);
        expect(after.text).toContain('YUNHAI-BOOT');
        expect(after.text).toContain('YUNHAI-READY');
        expect(count(first + after.text, 'YUNHAI-BOOT')).toBeGreaterThan(count(first, 'YUNHAI-BOOT'));
        expect(await stateOf(vm)).toBe('running');
        expect(eventsSince(since, vm).filter((e) => e.type === 'stopped' || e.type === 'crashed')).toEqual(
          [],
        );
      },
      BOOTS,
    );

    it(
      'stops a VM cleanly within the timeout and emits stopped',
      async () => {
        await ensureReady();
        const since = mark();
        await driver.stop(vm, { timeoutMs: T });
        expect(await driver.status(vm)).toMatchObject({ state: 'stopped', vcpus: 1, memoryMiB: 256 });
        const e = await waitForEvent('stopped', since, (x) => x.type === 'stopped' && x.id === vm);
        expect(e).toMatchObject({ reason: expect.any(String) });
      },
      BOOTS,
    );

    it('treats stopping a stopped VM as a no-op', async () => {
      await ensureStopped();
      const since = mark();
      await driver.stop(vm, { timeoutMs: 0 });
      await driver.stop(vm, { timeoutMs: 1000 });
      expect(await stateOf(vm)).toBe('stopped');
      expect(eventsSince(since, vm)).toEqual([]);
    });

    it(
      'starts a stopped VM again, with a fresh boot on the console',
      async () => {
        await ensureStopped();
        const { next } = await readAll(vm);
        const since = mark();
        await driver.start(vm);
        expect(await stateOf(vm)).toBe('running');
        await waitForEvent('guest-ready', since, (e) => e.type === 'guest-ready' && e.id === vm);
        const { text } = await readAll(vm, next);
        expect(text).toContain('YUNHAI-BOOT');
        expect(text).toContain('YUNHAI-READY');
      },
      BOOTS,
    );

    it(
      'hard-stops at once when the timeout is 0, and an unsubscribed listener hears nothing',
      async () => {
        await ensureReady();
        const heard: VmEvent[] = [];
        const off = driver.onEvent((e) => heard.push(e));
        off();
        off();
        const since = mark();
        await driver.stop(vm, { timeoutMs: 0 });
        expect(await stateOf(vm)).toBe('stopped');
        await waitForEvent('stopped', since, (e) => e.type === 'stopped' && e.id === vm);
        expect(heard).toEqual([]);
      },
      BOOTS,
    );

    it(
      'rediscovers a running VM from a new driver object, which can stop it',
      async (ctx) => {
        const h = harness;
        if (!h?.reopen) return ctx.skip('the driver has no reopen()');
        await ensureReady();
        await define(spec(idle));
        await driver.close();
        driver = await h.reopen();
        record(driver);

        expect(await driver.status(vm)).toMatchObject({ id: vm, state: 'running', vcpus: 1, memoryMiB: 256 });
        expect(await driver.status(idle)).toMatchObject({ state: 'stopped' });
        expect((await driver.list()).map((s) => s.id)).toEqual(expect.arrayContaining([vm, idle]));
        expect((await readAll(vm)).text).toContain('YUNHAI-READY');

        const since = mark();
        await driver.stop(vm, { timeoutMs: T });
        expect(await stateOf(vm)).toBe('stopped');
        await waitForEvent('stopped', since, (e) => e.type === 'stopped' && e.id === vm);
      },
      BOOTS,
    );

    it(
      'reports a VM whose process died as crashed with a reason and a crashed event, and starts it again',
      async (ctx) => {
        const crash = opts.crash;
        if (!crash) return ctx.skip('no crash hook for this driver');
        await ensureReady();
        const since = mark();
        await crash(driver, vm);
        const e = await waitForEvent('crashed', since, (x) => x.type === 'crashed' && x.id === vm);
        expect(e).toMatchObject({ reason: expect.stringMatching(/\S/) });
        const st = await driver.status(vm);
        expect(st).toMatchObject({ state: 'crashed', reason: expect.stringMatching(/\S/) });

        await driver.start(vm);
        expect(await driver.status(vm)).toMatchObject({ state: 'running', vcpus: 1, memoryMiB: 256 });
      },
      BOOTS,
    );

    it(
      'destroys a running VM idempotently, after which status is null and list() lacks it',
      async () => {
        await define(spec(vm));
        if ((await stateOf(vm)) !== 'running') await driver.start(vm);
        await driver.destroy(vm);
        await driver.destroy(vm);
        expect(await driver.status(vm)).toBeNull();
        expect((await driver.list()).map((s) => s.id)).not.toContain(vm);
        await expectCode(driver.readConsole(vm, 0), 'NotDefined');
        defined.delete(vm);
      },
      BOOTS,
    );

    it('reports NotDefined for every operation on an unknown id, null status, and a no-op destroy', async () => {
      await expectCode(driver.start(ghost), 'NotDefined');
      await expectCode(driver.stop(ghost, { timeoutMs: 0 }), 'NotDefined');
      await expectCode(driver.reboot(ghost), 'NotDefined');
      await expectCode(driver.resize(ghost, { vcpus: 1 }), 'NotDefined');
      await expectCode(driver.readConsole(ghost, 0), 'NotDefined');
      await expectCode(driver.writeConsole(ghost, Buffer.from('x')), 'NotDefined');
      expect(await driver.status(ghost)).toBeNull();
      await driver.destroy(ghost);
      expect((await driver.list()).map((s) => s.id)).not.toContain(ghost);
    });
  });
}
