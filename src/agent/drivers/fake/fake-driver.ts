/**
 * The fake hypervisor driver: VMs are records in memory, time is timers. Like Nova's fake virt
 * driver it exists for fleet simulation (10,000 VMs in one process) and fast tests, and it keeps
 * the real driver's state machine and errors so the conformance suite (hypervisor.case.ts) holds
 * for both. The console imitates the tiny guest (images/tiny-init.ts): `YUNHAI-BOOT`, the user-data
 * script's output and `YUNHAI-USERDATA exit=N`, `YUNHAI-READY cpus=N mem_kib=M`, `YUNHAI-STATS ...`
 * after a resize, `YUNHAI-POWEROFF reason=acpi` on a clean stop, and an echo of console input.
 *
 * Known gaps against the qemu driver and the tiny guest: no files, processes or pids; the user-data
 * "shell" only knows `echo`, `true`, `false` and `exit`, and `#cloud-config` is not run (the tiny
 * guest also prints `type=...` on its USERDATA line and a `YUNHAI-SEED` line); `mem_kib` is exactly
 * the granted memory where a guest reports MemTotal; the guest always honours ACPI power-off after
 * `stopMs`; `paused` exists only around a migration (a target waiting for it, a source after it).
 *
 * With `stateFile`, every completed operation is written to one JSON file (coalesced per tick) so a
 * new driver object rediscovers the VMs, as an agent does after a restart; that costs O(VMs) per
 * write, so fleet simulations leave it unset.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  type Firmware,
  type HostCapabilities,
  type Hypervisor,
  HypervisorError,
  type VmEvent,
  type VmPowerState,
  type VmSpec,
  type VmStatus,
} from '../../hypervisor.js';

export interface FakeDriverOptions {
  /** Overrides for the reported host (the defaults describe a large host). */
  capabilities?: Partial<HostCapabilities>;
  /** Simulated time from start (or reboot) until the guest is ready. Default 20 ms. */
  bootMs?: number;
  /** Simulated time the guest takes to power off after an ACPI request. Default 10 ms. */
  stopMs?: number;
  /** JSON file holding every VM, so a new driver object rediscovers them like an agent restart. */
  stateFile?: string;
  /** Returns a message to make `start` fail with `StartFailed` for that spec. */
  failStartFor?: (spec: VmSpec) => string | undefined;
}

/** The fake driver plus test hooks for things a real host does on its own. */
export type FakeDriver = Hypervisor & {
  /** The VM's process dies: state `crashed` with `reason`, and a `crashed` event. */
  simulateCrash(id: string, reason: string): void;
};

const DEFAULT_CAPABILITIES: HostCapabilities = {
  driver: 'fake',
  accelerator: 'fake',
  hypervisorVersion: 'fake-1',
  vcpus: 64,
  memoryMiB: 262144,
  diskGiB: 4096,
  firmware: ['bios', 'uefi'],
};

/** Ids become file names in the qemu driver, so both drivers accept only path-safe ones. */
const VM_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const FIRMWARE: readonly Firmware[] = ['bios', 'uefi'];
const DISK_FORMATS = ['qcow2', 'raw', 'iso'];
const DEFAULT_CONSOLE_READ = 64 * 1024;
const STATE_VERSION = 1;

interface PendingStop {
  waiters: Array<{ resolve(): void; reject(err: Error): void }>;
  timers: NodeJS.Timeout[];
}

interface FakeVm {
  spec: VmSpec;
  state: VmPowerState;
  /** Live sizes; equal to the spec's boot sizes whenever the VM is not running. */
  vcpus: number;
  memoryMiB: number;
  reason?: string;
  /** Console log: bytes [0, consoleLen) of a buffer grown by doubling. */
  console: Buffer;
  consoleLen: number;
  ready: boolean;
  bootDueAt?: number;
  bootTimer?: NodeJS.Timeout;
  stopping?: PendingStop;
}

interface StateFileVm {
  spec: VmSpec;
  state: VmPowerState;
  vcpus: number;
  memoryMiB: number;
  reason?: string;
  console: string;
  ready: boolean;
  bootDueAt?: number;
}

/**
 * Fake migration targets listening in this process (several fake agents share one process in fleet
 * tests): `fake-migrate://<n>` → the target's receive function.
 */
const fakeIncoming = new Map<string, (from: { vcpus: number; memoryMiB: number; console: Buffer }) => void>();
let fakeIncomingSeq = 0;

export function createFakeDriver(opts: FakeDriverOptions = {}): FakeDriver {
  const caps: HostCapabilities = { ...DEFAULT_CAPABILITIES, ...opts.capabilities };
  caps.firmware = [...caps.firmware];
  const bootMs = opts.bootMs ?? 20;
  const stopMs = opts.stopMs ?? 10;
  const { stateFile, failStartFor } = opts;
  const vms = new Map<string, FakeVm>();
  const listeners = new Set<{ listener: (e: VmEvent) => void }>();
  let closed = false;
  let flushing: Promise<void> | undefined;

  const fail = (code: HypervisorError['code'], message: string): never => {
    throw new HypervisorError(code, message);
  };

  const alive = () => {
    if (closed) fail('MonitorDisconnected', 'the fake driver has been closed');
  };

  const need = (id: string): FakeVm => {
    alive();
    return vms.get(id) ?? fail('NotDefined', `VM ${id} is not defined`);
  };

  const emit = (e: VmEvent) => {
    for (const entry of listeners) {
      try {
        entry.listener(e);
      } catch (err) {
        // A listener's bug must not corrupt the VM's transition; surface it as an uncaught error.
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  };

  const statusOf = (id: string, vm: FakeVm): VmStatus => {
    const s: VmStatus = { id, state: vm.state, vcpus: vm.vcpus, memoryMiB: vm.memoryMiB };
    if (vm.reason !== undefined) s.reason = vm.reason;
    return s;
  };

  const writeConsoleBytes = (vm: FakeVm, bytes: Buffer) => {
    const len = vm.consoleLen + bytes.length;
    if (len > vm.console.length) {
      const grown = Buffer.allocUnsafe(Math.max(len, vm.console.length * 2, 256));
      vm.console.copy(grown, 0, 0, vm.consoleLen);
      vm.console = grown;
    }
    bytes.copy(vm.console, vm.consoleLen);
    vm.consoleLen = len;
  };
  // A serial console under Linux turns "\n" into "\r\n" (ONLCR); the fake does the same.
  const consoleLine = (vm: FakeVm, line: string) => writeConsoleBytes(vm, Buffer.from(`${line}\r\n`));

  // ---- state file -------------------------------------------------------------------------------

  const writeStateFile = () => {
    if (!stateFile) return;
    const out: Record<string, StateFileVm> = {};
    for (const [id, vm] of vms) {
      const row: StateFileVm = {
        spec: vm.spec,
        state: vm.state,
        vcpus: vm.vcpus,
        memoryMiB: vm.memoryMiB,
        console: vm.console.subarray(0, vm.consoleLen).toString('base64'),
        ready: vm.ready,
      };
      if (vm.reason !== undefined) row.reason = vm.reason;
      if (vm.bootDueAt !== undefined) row.bootDueAt = vm.bootDueAt;
      out[id] = row;
    }
    mkdirSync(dirname(stateFile), { recursive: true });
    const tmp = `${stateFile}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify({ version: STATE_VERSION, vms: out }));
    renameSync(tmp, stateFile);
  };

  /** Schedules one write for everything changed in this tick; resolves once it is on disk. */
  const persist = (): Promise<void> => {
    if (!stateFile || closed) return Promise.resolve();
    flushing ??= new Promise<void>((resolve, reject) => {
      setImmediate(() => {
        flushing = undefined;
        if (closed) return resolve();
        try {
          writeStateFile();
          resolve();
        } catch (err) {
          reject(err);
        }
      });
    });
    return flushing;
  };
  // Changes made by timers have no caller to report a failed write to; the next operation will.
  const persistInBackground = () => {
    persist().catch(() => {});
  };

  // ---- transitions ------------------------------------------------------------------------------

  const clearTimers = (vm: FakeVm) => {
    if (vm.bootTimer) clearTimeout(vm.bootTimer);
    vm.bootTimer = undefined;
    vm.bootDueAt = undefined;
    for (const t of vm.stopping?.timers ?? []) clearTimeout(t);
  };

  const scheduleBootEnd = (id: string, vm: FakeVm, dueAt: number) => {
    vm.bootDueAt = dueAt;
    vm.bootTimer = setTimeout(() => finishBoot(id, vm), Math.max(0, dueAt - Date.now()));
  };

  const beginBoot = (id: string, vm: FakeVm) => {
    clearTimers(vm);
    vm.ready = false;
    consoleLine(vm, 'YUNHAI-BOOT');
    scheduleBootEnd(id, vm, Date.now() + bootMs);
  };

  const finishBoot = (id: string, vm: FakeVm) => {
    vm.bootTimer = undefined;
    vm.bootDueAt = undefined;
    if (vms.get(id) !== vm || vm.state !== 'running') return;
    const userData = vm.spec.cloudInit?.userData;
    if (userData?.startsWith('#!')) {
      const run = runFakeScript(userData);
      for (const line of run.output) consoleLine(vm, line);
      consoleLine(vm, `YUNHAI-USERDATA exit=${run.exitCode}`);
    }
    consoleLine(vm, `YUNHAI-READY cpus=${vm.vcpus} mem_kib=${vm.memoryMiB * 1024}`);
    vm.ready = true;
    emit({ type: 'guest-ready', id });
    persistInBackground();
  };

  /** Every way out of `running` ends here: clean or hard stop, crash, destroy. */
  const powerOff = (id: string, vm: FakeVm, outcome: 'stopped' | 'crashed', reason: string) => {
    clearTimers(vm);
    const waiters = vm.stopping?.waiters ?? [];
    vm.stopping = undefined;
    vm.state = outcome;
    vm.reason = outcome === 'crashed' ? reason : undefined;
    vm.ready = false;
    vm.vcpus = vm.spec.vcpus;
    vm.memoryMiB = vm.spec.memoryMiB;
    for (const w of waiters) w.resolve();
    emit({ type: outcome, id, reason });
    persistInBackground();
  };

  const requireRunning = (id: string, vm: FakeVm, action: string) => {
    if (vm.state !== 'running') fail('InvalidState', `cannot ${action} VM ${id}: it is ${vm.state}`);
    if (vm.stopping) fail('InvalidState', `cannot ${action} VM ${id}: it is stopping`);
  };

  // ---- rediscovery ------------------------------------------------------------------------------

  if (stateFile) {
    let text: string | undefined;
    try {
      text = readFileSync(stateFile, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (text !== undefined) {
      const saved = JSON.parse(text) as { version: number; vms: Record<string, StateFileVm> };
      if (saved.version !== STATE_VERSION) {
        throw new Error(`fake driver state file ${stateFile} has version ${saved.version}`);
      }
      for (const [id, row] of Object.entries(saved.vms)) {
        const bytes = Buffer.from(row.console, 'base64');
        const vm: FakeVm = {
          spec: row.spec,
          state: row.state,
          vcpus: row.vcpus,
          memoryMiB: row.memoryMiB,
          console: bytes,
          consoleLen: bytes.length,
          ready: row.ready,
        };
        if (row.reason !== undefined) vm.reason = row.reason;
        vms.set(id, vm);
        // The guest kept booting while no agent watched it.
        if (vm.state === 'running' && !vm.ready) scheduleBootEnd(id, vm, row.bootDueAt ?? Date.now());
      }
    }
  }

  // ---- the driver -------------------------------------------------------------------------------

  return {
    name: 'fake',

    async capabilities() {
      alive();
      return { ...caps, firmware: [...caps.firmware] };
    },

    async define(spec) {
      alive();
      validateSpec(spec, caps);
      const existing = vms.get(spec.id);
      if (existing) {
        if (canonicalJson(existing.spec) === canonicalJson(spec)) return;
        if (existing.state === 'running') {
          fail('InvalidState', `cannot redefine VM ${spec.id} while it runs; stop it first`);
        }
        existing.spec = structuredClone(spec);
        existing.vcpus = spec.vcpus;
        existing.memoryMiB = spec.memoryMiB;
      } else {
        vms.set(spec.id, {
          spec: structuredClone(spec),
          state: 'stopped',
          vcpus: spec.vcpus,
          memoryMiB: spec.memoryMiB,
          console: Buffer.alloc(0),
          consoleLen: 0,
          ready: false,
        });
      }
      await persist();
    },

    async start(id) {
      const vm = need(id);
      if (vm.state === 'running') fail('InvalidState', `VM ${id} is already running`);
      const refusal = failStartFor?.(vm.spec);
      if (refusal !== undefined) fail('StartFailed', `VM ${id} failed to start: ${refusal}`);
      vm.state = 'running';
      vm.reason = undefined;
      vm.vcpus = vm.spec.vcpus;
      vm.memoryMiB = vm.spec.memoryMiB;
      beginBoot(id, vm);
      await persist();
    },

    async stop(id, { timeoutMs }) {
      const vm = need(id);
      if (!(Number.isFinite(timeoutMs) && timeoutMs >= 0)) {
        throw new RangeError(`timeoutMs must be a finite number >= 0, got ${timeoutMs}`);
      }
      if (vm.state !== 'running') return;
      if (timeoutMs === 0) {
        powerOff(id, vm, 'stopped', 'hard stop');
        return persist();
      }
      const done = new Promise<void>((resolve, reject) => {
        if (!vm.stopping) {
          vm.stopping = { waiters: [], timers: [] };
          const acpiPowerOff = () => {
            consoleLine(vm, 'YUNHAI-POWEROFF reason=acpi');
            powerOff(id, vm, 'stopped', 'guest powered off');
          };
          vm.stopping.timers.push(setTimeout(acpiPowerOff, stopMs));
        }
        vm.stopping.waiters.push({ resolve, reject });
        vm.stopping.timers.push(
          setTimeout(() => powerOff(id, vm, 'stopped', `hard stop after ${timeoutMs} ms`), timeoutMs),
        );
      });
      await done;
      await persist();
    },

    async reboot(id) {
      const vm = need(id);
      requireRunning(id, vm, 'reboot');
      beginBoot(id, vm);
      await persist();
    },

    async destroy(id) {
      alive();
      const vm = vms.get(id);
      if (!vm) return;
      if (vm.state === 'running') powerOff(id, vm, 'stopped', 'destroyed');
      vms.delete(id);
      await persist();
    },

    async prepareIncoming(spec, { listenHost }) {
      alive();
      validateSpec(spec, caps);
      if (vms.get(spec.id)?.state === 'running') fail('InvalidState', `VM ${spec.id} already runs here`);
      const vm: FakeVm = {
        spec: structuredClone(spec),
        state: 'paused',
        vcpus: spec.vcpus,
        memoryMiB: spec.memoryMiB,
        console: Buffer.alloc(0),
        consoleLen: 0,
        ready: false,
      };
      vms.set(spec.id, vm);
      const uri = `fake-migrate://${listenHost}/${++fakeIncomingSeq}`;
      fakeIncoming.set(uri, (from) => {
        if (vms.get(spec.id) !== vm) fail('CommandFailed', `migration target ${uri} is gone`);
        vm.vcpus = from.vcpus;
        vm.memoryMiB = from.memoryMiB;
        writeConsoleBytes(vm, from.console);
        vm.ready = true;
        fakeIncoming.delete(uri);
      });
      await persist();
      return { migrateUri: uri, diskUri: `${uri}/disk` };
    },

    async migrateOut(id, target, onProgress, opts) {
      const vm = need(id);
      if (opts?.cold) {
        if (vm.state === 'running') fail('InvalidState', `cannot cold-migrate VM ${id}: it is running`);
      } else requireRunning(id, vm, 'migrate');
      const receive = fakeIncoming.get(target.migrateUri);
      if (!receive) fail('CommandFailed', `nothing listens at ${target.migrateUri}`);
      const total = vm.memoryMiB * 1024 * 1024;
      onProgress?.({ phase: 'disk', transferredBytes: 0, totalBytes: 0, remainingBytes: 0 });
      onProgress?.({
        phase: 'memory',
        transferredBytes: total / 2,
        totalBytes: total,
        remainingBytes: total / 2,
      });
      receive!({ vcpus: vm.vcpus, memoryMiB: vm.memoryMiB, console: vm.console.subarray(0, vm.consoleLen) });
      // Paused here for good: the target runs the guest now; destroy ends this copy without events.
      clearTimers(vm);
      vm.state = 'paused';
      await persist();
      return { downtimeMs: 1, transferredBytes: total, totalTimeMs: 2 };
    },

    async finishIncoming(id, opts) {
      const vm = need(id);
      if (vm.state !== 'paused' || !vm.ready) fail('InvalidState', `VM ${id} has not received a migration`);
      vm.state = opts?.resume === false ? 'stopped' : 'running';
      await persist();
    },

    async status(id) {
      alive();
      const vm = vms.get(id);
      return vm ? statusOf(id, vm) : null;
    },

    async list() {
      alive();
      return Array.from(vms, ([id, vm]) => statusOf(id, vm));
    },

    async resize(id, target) {
      const vm = need(id);
      requireRunning(id, vm, 'resize');
      const vcpus = target.vcpus ?? vm.vcpus;
      const memoryMiB = target.memoryMiB ?? vm.memoryMiB;
      if (!inRange(vcpus, 1, vm.spec.maxVcpus)) {
        fail(
          'ResizeOutOfRange',
          `VM ${id}: vcpus must be an integer in 1..${vm.spec.maxVcpus}, got ${vcpus}`,
        );
      }
      if (!inRange(memoryMiB, 1, vm.spec.maxMemoryMiB)) {
        fail(
          'ResizeOutOfRange',
          `VM ${id}: memoryMiB must be an integer in 1..${vm.spec.maxMemoryMiB}, got ${memoryMiB}`,
        );
      }
      if (vcpus !== vm.vcpus || memoryMiB !== vm.memoryMiB) {
        vm.vcpus = vcpus;
        vm.memoryMiB = memoryMiB;
        if (vm.ready) consoleLine(vm, `YUNHAI-STATS cpus=${vcpus} mem_kib=${memoryMiB * 1024}`);
        emit({ type: 'resized', id, vcpus, memoryMiB });
        await persist();
      }
      return statusOf(id, vm);
    },

    async readConsole(id, offset, maxBytes = DEFAULT_CONSOLE_READ) {
      const vm = need(id);
      if (!(Number.isInteger(offset) && offset >= 0)) throw new RangeError(`bad console offset ${offset}`);
      if (!(Number.isInteger(maxBytes) && maxBytes > 0)) throw new RangeError(`bad maxBytes ${maxBytes}`);
      if (offset >= vm.consoleLen) return { data: Buffer.alloc(0), next: vm.consoleLen };
      const end = Math.min(vm.consoleLen, offset + maxBytes);
      return { data: Buffer.from(vm.console.subarray(offset, end)), next: end };
    },

    async writeConsole(id, data) {
      const vm = need(id);
      if (vm.state !== 'running')
        fail('InvalidState', `cannot write the console of VM ${id}: it is ${vm.state}`);
      // The guest's tty echoes what it receives.
      writeConsoleBytes(vm, Buffer.from(data));
      await persist();
    },

    onEvent(listener) {
      const entry = { listener };
      listeners.add(entry);
      return () => {
        listeners.delete(entry);
      };
    },

    async close() {
      if (closed) return;
      closed = true;
      for (const vm of vms.values()) {
        // A boot in progress keeps its due time, so the next driver object finishes it.
        const bootDueAt = vm.bootDueAt;
        clearTimers(vm);
        vm.bootDueAt = bootDueAt;
        for (const w of vm.stopping?.waiters ?? []) {
          w.reject(new HypervisorError('MonitorDisconnected', 'the fake driver was closed during a stop'));
        }
        vm.stopping = undefined;
      }
      listeners.clear();
      writeStateFile();
    },

    simulateCrash(id, reason) {
      const vm = need(id);
      if (vm.state !== 'running') fail('InvalidState', `cannot crash VM ${id}: it is ${vm.state}`);
      powerOff(id, vm, 'crashed', reason);
    },
  };
}

const inRange = (n: unknown, min: number, max: number): n is number =>
  typeof n === 'number' && Number.isInteger(n) && n >= min && n <= max;

/** The checks the qemu driver makes before it writes any file, with the same error codes. */
function validateSpec(spec: VmSpec, caps: HostCapabilities): void {
  const bad = (code: HypervisorError['code'], message: string): never => {
    throw new HypervisorError(code, `invalid VM spec ${JSON.stringify(spec?.id)}: ${message}`);
  };
  if (typeof spec?.id !== 'string' || !VM_ID.test(spec.id)) {
    bad('CommandFailed', 'id must be 1-128 letters, digits, "_", "." or "-", not starting with "." or "-"');
  }
  if (typeof spec.name !== 'string' || spec.name === '')
    bad('CommandFailed', 'name must be a non-empty string');
  if (!inRange(spec.maxVcpus, 1, caps.vcpus)) {
    bad('ResizeOutOfRange', `maxVcpus must be an integer in 1..${caps.vcpus} (this host)`);
  }
  if (!inRange(spec.vcpus, 1, spec.maxVcpus)) bad('ResizeOutOfRange', `vcpus must be in 1..maxVcpus`);
  if (!inRange(spec.maxMemoryMiB, 1, caps.memoryMiB)) {
    bad('ResizeOutOfRange', `maxMemoryMiB must be an integer in 1..${caps.memoryMiB} (this host)`);
  }
  if (!inRange(spec.memoryMiB, 1, spec.maxMemoryMiB))
    bad('ResizeOutOfRange', 'memoryMiB must be in 1..maxMemoryMiB');
  if (!inRange(spec.diskGiB, 1, Number.MAX_SAFE_INTEGER))
    bad('DiskTooSmall', 'diskGiB must be a positive integer');
  const boot = spec.boot;
  if (!boot || (!boot.diskImage && !boot.kernel)) bad('ImageInvalid', 'boot needs a disk image or a kernel');
  if (!FIRMWARE.includes(boot.firmware) || !caps.firmware.includes(boot.firmware)) {
    bad('ImageInvalid', `firmware ${JSON.stringify(boot.firmware)} is not available on this host`);
  }
  if (boot.diskImage && !(boot.diskImage.path && DISK_FORMATS.includes(boot.diskImage.format))) {
    bad('ImageInvalid', 'diskImage needs a path and a format of qcow2, raw or iso');
  }
  if (boot.kernel && !boot.kernel.kernelPath) bad('ImageInvalid', 'kernel needs a kernelPath');
  if (spec.cloudInit && typeof spec.cloudInit.metaData !== 'object') {
    bad('CommandFailed', 'cloudInit.metaData must be an object');
  }
}

/**
 * Runs a user-data script the way the tiny guest's shell would, for the few commands the fake
 * understands: `echo` prints, `true`/`false` set the status, `exit [n]` ends; anything else succeeds.
 */
function runFakeScript(script: string): { output: string[]; exitCode: number } {
  const output: string[] = [];
  let status = 0;
  for (const raw of script.split('\n').slice(1)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const [cmd = '', ...rest] = line.split(/\s+/);
    const args = line.slice(cmd.length).trim();
    if (cmd === 'echo') {
      output.push(unquote(args));
      status = 0;
    } else if (cmd === 'false') {
      status = 1;
    } else if (cmd === 'exit') {
      return { output, exitCode: rest.length > 0 ? Number.parseInt(rest[0] ?? '0', 10) & 0xff : status };
    } else {
      status = 0;
    }
  }
  return { output, exitCode: status };
}

const unquote = (s: string) => (/^(['"]).*\1$/s.test(s) ? s.slice(1, -1) : s);

/** JSON with sorted keys, so two equal specs compare equal whatever their key order. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}
