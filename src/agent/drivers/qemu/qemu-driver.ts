/**
 * The qemu hypervisor driver: one QEMU process per VM, driven over QMP, no libvirt.
 *
 * Each VM owns `<dataDir>/instances/<id>/` (mode 0700): spec.json (its definition; present =
 * defined), state.json (how its last process ended, its balloon target), disk.qcow2, seed.iso,
 * ovmf-vars.fd, qmp.sock, console.sock, console.log (all serial output, appended across boots),
 * qemu.log (QEMU's own stdout/stderr for the current boot) and qemu.pid.
 *
 * QEMU runs detached (its own session, stdio to qemu.log), so VMs outlive the agent. A new
 * driver object rediscovers them from their pid files, checking /proc/<pid>/cmdline really is the
 * QEMU for that VM, and reconnects QMP lazily. QEMU runs with `-no-shutdown`: when a guest powers
 * off, the driver records a clean stop in state.json and sends `quit`; a process that vanishes
 * without such a record crashed. A VM paused by QEMU is `crashed` if the run state says
 * internal-error or guest-panicked (the PVM failure mode; QEMU is then ended), else `paused`.
 *
 * Under TCG (single-threaded, see argv.ts) QEMU 7.2 cannot unplug a vCPU (it aborts joining the
 * shared vCPU thread), so removing vCPUs replaces the process with fewer of them (the guest sees a
 * power cycle); adding vCPUs stays live. Under KVM both are live.
 *
 * Known gaps: no networking, disk hotplug, snapshots or migration yet; redefining a stopped VM
 * keeps its disk as it is (no grow to a larger diskGiB, no new base image).
 *
 * A VM rediscovered mid-boot (the agent died before the guest said it was ready) is watched again
 * from where its boot's console output starts (state.json `consoleStart`), so the guest-ready event
 * and the boot-time balloon target still happen.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { constants, existsSync } from 'node:fs';
import {
  chmod,
  copyFile,
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  statfs,
  writeFile,
} from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from 'pino';
import {
  type Accelerator,
  type Firmware,
  type HostCapabilities,
  type Hypervisor,
  HypervisorError,
  type HypervisorErrorCode,
  type MigrationProgress,
  type MigrationResult,
  type MigrationTarget,
  type VmEvent,
  type VmPowerState,
  type VmSpec,
  type VmStatus,
} from '../../hypervisor.js';
import { buildNoCloudSeed } from '../../images/nocloud-seed.js';
import { ensureTinyImage } from '../../images/tiny.js';
import { buildQemuArgv, type QemuPaths, vcpuDeviceId } from './argv.js';
import {
  type CgroupOptions,
  type CgroupSupport,
  createVmCgroup,
  detectCgroups,
  joinCommand,
  removeVmCgroup,
  setVmCgroupCpus,
  type VmCgroup,
} from './cgroup.js';
import { createBlankDisk, createOverlay, growDisk, inspectBaseImage } from './disks.js';
import { type KvmProbeResult, probeAccelerator, type TinyImage } from './kvm-probe.js';
import { isOurQemu, readPidFile, signal, sleep, tailFile, waitForExit } from './process.js';
import { QmpClient } from './qmp-client.js';

const execFileP = promisify(execFile);

export type DriverLog = Pick<Logger, 'info' | 'warn' | 'debug'>;

export interface QemuDriverOptions {
  /** Root of the driver's files; VMs live in `<dataDir>/instances/<id>/`. */
  dataDir: string;
  /** 'auto' (default) probes KVM by booting the tiny guest and falls back to TCG. */
  accelerator?: 'auto' | 'kvm' | 'tcg';
  log?: DriverLog;
  qemuBinary?: string;
  /** OVMF code and variable-store template (default: Debian's 4M builds). */
  ovmf?: { code: string; vars: string };
  /** cgroup placement; `false` runs VMs without cgroup limits. */
  cgroups?: CgroupOptions | false;
  /** The tiny guest for the KVM probe (default: images/tiny.ts `ensureTinyImage`, built on first use). */
  probeImage?: () => Promise<TinyImage>;
  probeTimeoutMs?: number;
  /** Builds the NoCloud seed image (default: images/nocloud-seed.ts). */
  buildSeed?: typeof buildNoCloudSeed;
  /** How often console.log is checked for the guest-ready line. */
  consolePollMs?: number;
  /** Deadline for QEMU to come up (QMP answering) in `start`. */
  startTimeoutMs?: number;
  /** How long `resize` waits for the guest to follow the balloon / CPU unplug. */
  resizeTimeoutMs?: number;
  /** Deadline for a live migration's disk and memory copy (default 10 min). */
  migrationTimeoutMs?: number;
}

export type QemuDriver = Hypervisor & {
  /** The accelerator decision and why (probes on first call, like `capabilities`). */
  acceleratorInfo(): Promise<{ accelerator: 'kvm' | 'tcg'; detail: string }>;
  /** Whether VMs get cgroup limits here, and why not. */
  cgroupSupport(): Promise<CgroupSupport>;
  /** Runs a raw QMP command on a running VM (diagnostics and tests). */
  qmp<T = unknown>(id: string, command: string, args?: Record<string, unknown>): Promise<T>;
};

/** Lines that mean the guest has finished booting: the tiny guest's, then cloud-init's. */
const GUEST_READY = /YUNHAI-READY|Cloud-init v\. \S+ finished/;
const VM_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const MIB = 1024 * 1024;
const DEFAULT_OVMF = { code: '/usr/share/OVMF/OVMF_CODE_4M.fd', vars: '/usr/share/OVMF/OVMF_VARS_4M.fd' };
/** cgroup memory budget on top of guest RAM: QEMU itself, device buffers, TCG's code cache. */
const OVERHEAD_MIB = { tcg: 300, kvm: 160 } as const;
const DEFAULT_CONSOLE_READ = 64 * 1024;
/** Longest a boot-time balloon target waits for the guest-ready line. */
const BALLOON_DEFER_MAX_MS = 60_000;
/** How often a graceful stop presses the ACPI power button again while the guest is still up. */
const POWERDOWN_RETRY_MS = 3_000;

const balloonAt = async (qmp: QmpClient, mib: number) =>
  Math.abs((await qmp.execute<{ actual: number }>('query-balloon')).actual - mib * MIB) < MIB;
/** sun_path is 108 bytes including the NUL. */
const MAX_SOCKET_PATH = 107;

interface InstanceFiles {
  dir: string;
  spec: string;
  state: string;
  disk: string;
  seed: string;
  ovmfVars: string;
  qmp: string;
  consoleSock: string;
  consoleLog: string;
  qemuLog: string;
  pid: string;
}

/** What survives the agent about a VM's process (state.json). */
interface PersistedState {
  /** A QEMU process was started and has not been seen to end. */
  running: boolean;
  /** Its end was asked for (stop) or was the guest powering off. */
  clean: boolean;
  reason?: string;
  /** Balloon target of the running VM. */
  memoryMiB?: number;
  pid?: number;
  /** Where in console.log the current boot's output starts, and whether it has said it is ready. */
  consoleStart?: number;
  guestReady?: boolean;
}

/** In-memory view of one VM, for this driver object. */
interface Vm {
  id: string;
  files: InstanceFiles;
  pid?: number;
  /** Set when this driver object spawned the process (exit status is then known). */
  child?: ChildProcess;
  qmp?: QmpClient;
  qmpConnecting?: Promise<QmpClient>;
  /** Incremented per process; a late callback for an older process is ignored. */
  boot: number;
  /** The current process's end has been handled (event emitted, state written). */
  ended: boolean;
  exited?: Promise<void>;
  markExited?: () => void;
  /** Reason to report when the current process ends because we asked it to. */
  stopReason?: string;
  /** Suppresses events for a process being torn down by a failed start or destroy. */
  silent?: boolean;
  /** The current process's end handling (state, files, cgroup, event), once it has begun. */
  endDone?: Promise<void>;
  watchConsole: boolean;
  /** Balloon target applied once the guest is ready: inflating during boot slows it under TCG. */
  pendingBalloon?: { mib: number; timer: NodeJS.Timeout };
  consoleOffset: number;
  consoleTail: string;
  statePatch?: Promise<void>;
}

export function createQemuDriver(opts: QemuDriverOptions): QemuDriver {
  const dataDir = resolve(opts.dataDir);
  const instancesDir = join(dataDir, 'instances');
  const qemuBinary = opts.qemuBinary ?? 'qemu-system-x86_64';
  const ovmf = opts.ovmf ?? DEFAULT_OVMF;
  const log = opts.log;
  const buildSeed = opts.buildSeed ?? buildNoCloudSeed;
  const consolePollMs = opts.consolePollMs ?? 100;
  const startTimeoutMs = opts.startTimeoutMs ?? 20_000;
  const resizeTimeoutMs = opts.resizeTimeoutMs ?? 15_000;
  const vms = new Map<string, Vm>();
  const locks = new Map<string, Promise<unknown>>();
  const listeners = new Set<{ fn: (e: VmEvent) => void }>();
  let closed = false;
  let consoleTimer: NodeJS.Timeout | undefined;
  let versionP: Promise<string> | undefined;
  let accelP: Promise<{ accelerator: 'kvm' | 'tcg'; detail: string }> | undefined;
  let cgroupP: Promise<CgroupSupport> | undefined;
  let capsP: Promise<HostCapabilities> | undefined;

  const fail = (code: HypervisorErrorCode, message: string): never => {
    throw new HypervisorError(code, message);
  };
  const alive = () => {
    if (closed) fail('MonitorDisconnected', 'the qemu driver has been closed');
  };

  const emit = (e: VmEvent) => {
    if (closed) return;
    for (const l of listeners) {
      try {
        l.fn(e);
      } catch (err) {
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  };

  const filesOf = (id: string): InstanceFiles => {
    const dir = join(instancesDir, id);
    return {
      dir,
      spec: join(dir, 'spec.json'),
      state: join(dir, 'state.json'),
      disk: join(dir, 'disk.qcow2'),
      seed: join(dir, 'seed.iso'),
      ovmfVars: join(dir, 'ovmf-vars.fd'),
      qmp: join(dir, 'qmp.sock'),
      consoleSock: join(dir, 'console.sock'),
      consoleLog: join(dir, 'console.log'),
      qemuLog: join(dir, 'qemu.log'),
      pid: join(dir, 'qemu.pid'),
    };
  };

  const vmOf = (id: string): Vm => {
    let vm = vms.get(id);
    if (!vm) {
      vm = {
        id,
        files: filesOf(id),
        boot: 0,
        ended: true,
        watchConsole: false,
        consoleOffset: 0,
        consoleTail: '',
      };
      vms.set(id, vm);
    }
    return vm;
  };

  /** Runs VM operations one at a time per VM. */
  const withLock = <T>(id: string, fn: () => Promise<T>): Promise<T> => {
    const prev = locks.get(id) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => {});
    locks.set(id, tail);
    void tail.then(() => {
      if (locks.get(id) === tail) locks.delete(id);
    });
    return run;
  };

  // ---- files --------------------------------------------------------------------------------------

  const readSpec = async (id: string): Promise<VmSpec | null> => {
    if (!VM_ID.test(id)) return null;
    try {
      return JSON.parse(await readFile(filesOf(id).spec, 'utf8')) as VmSpec;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  };
  const needSpec = async (id: string): Promise<VmSpec> => {
    alive();
    return (await readSpec(id)) ?? fail('NotDefined', `VM ${id} is not defined`);
  };

  const writeJsonAtomic = async (path: string, value: unknown) => {
    const tmp = `${path}.tmp`;
    await writeFile(tmp, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600 });
    await rename(tmp, path);
  };

  const readState = async (vm: Vm): Promise<PersistedState> => {
    try {
      return JSON.parse(await readFile(vm.files.state, 'utf8')) as PersistedState;
    } catch {
      return { running: false, clean: true };
    }
  };
  /** Read-modify-write of state.json, one at a time per VM (events and operations both write it). */
  const patchState = (vm: Vm, patch: Partial<PersistedState>): Promise<void> => {
    const run = (vm.statePatch ?? Promise.resolve()).then(async () => {
      if (!existsSync(vm.files.dir)) return;
      await writeJsonAtomic(vm.files.state, { ...(await readState(vm)), ...patch });
    });
    vm.statePatch = run.catch(() => {});
    return run;
  };

  // ---- host facts ---------------------------------------------------------------------------------

  const qemuVersion = () => {
    versionP ??= execFileP(qemuBinary, ['--version']).then(({ stdout }) => {
      const m = /version (\d+\.\d+(?:\.\d+)?)/.exec(stdout);
      return m?.[1] ?? stdout.split('\n')[0]!.trim();
    });
    return versionP;
  };

  const accelerator = () => {
    accelP ??= (async () => {
      const mode = opts.accelerator ?? 'auto';
      if (mode === 'tcg') return { accelerator: 'tcg' as const, detail: 'configured' };
      if (mode === 'kvm') return { accelerator: 'kvm' as const, detail: 'configured' };
      await mkdir(dataDir, { recursive: true });
      const probed: KvmProbeResult = await probeAccelerator({
        dataDir,
        qemuBinary,
        qemuVersion: await qemuVersion(),
        image: opts.probeImage ?? (() => ensureTinyImage()),
        timeoutMs: opts.probeTimeoutMs,
      });
      log?.info({ accelerator: probed.accelerator, detail: probed.detail }, 'qemu accelerator decided');
      return { accelerator: probed.accelerator, detail: probed.detail };
    })();
    return accelP;
  };

  const cgroups = () => {
    cgroupP ??= (async () => {
      if (opts.cgroups === false) return { available: false, reason: 'disabled by configuration' };
      const support = await detectCgroups(opts.cgroups);
      if (!support.available)
        log?.warn({ reason: support.reason }, 'cgroups unavailable: VMs run without limits');
      return support;
    })();
    return cgroupP;
  };

  const hostLimits = () => ({
    vcpus: os.cpus().length,
    memoryMiB: Math.floor(os.totalmem() / MIB),
    firmware: (existsSync(ovmf.code) && existsSync(ovmf.vars) ? ['bios', 'uefi'] : ['bios']) as Firmware[],
  });

  // ---- QMP ----------------------------------------------------------------------------------------

  const getQmp = async (vm: Vm): Promise<QmpClient> => {
    if (vm.qmp && !vm.qmp.closed) return vm.qmp;
    vm.qmpConnecting ??= (async () => {
      try {
        const client = await QmpClient.connect(vm.files.qmp, { timeoutMs: 3_000 });
        attachQmp(vm, client);
        return client;
      } finally {
        vm.qmpConnecting = undefined;
      }
    })();
    return vm.qmpConnecting;
  };

  const attachQmp = (vm: Vm, client: QmpClient) => {
    vm.qmp = client;
    const boot = vm.boot;
    client.onEvent((e) => {
      if (vm.boot !== boot || vm.qmp !== client) return;
      switch (e.event) {
        case 'SHUTDOWN':
          void onShutdown(vm, client, String(e.data.reason ?? ''));
          break;
        case 'RESET':
          void restartConsoleWatch(vm);
          break;
        case 'STOP':
        case 'GUEST_PANICKED':
          void checkRunState(vm, client);
          break;
      }
    });
    client.onClose(() => {
      if (vm.qmp !== client) return;
      vm.qmp = undefined;
      if (vm.child && vm.boot === boot) return; // our child: its 'exit' event reports the end
      void (async () => {
        const pid = vm.pid;
        if (pid === undefined || vm.boot !== boot) return;
        if (await waitForExit(pid, vm.files.pid, 3_000))
          await processEnded(vm, boot, `QEMU process ${pid} ended`);
      })();
    });
  };

  /**
   * QEMU stopped the guest (and, with -no-shutdown, waits). `host-qmp-quit` is our own `quit`, whose
   * caller already recorded why; anything else is a power-off, recorded as clean before QEMU is ended.
   */
  const onShutdown = async (vm: Vm, client: QmpClient, reason: string) => {
    if (reason === 'host-qmp-quit') return;
    if (reason === 'guest-panic') {
      await patchState(vm, { clean: false, reason: 'guest panicked' }).catch(() => {});
    } else {
      vm.stopReason ??= reason === 'guest-shutdown' ? 'guest powered off' : `QEMU shut down (${reason})`;
      await patchState(vm, { clean: true, reason: vm.stopReason }).catch(() => {});
    }
    await client.execute('quit', undefined, { timeoutMs: 2_000 }).catch(() => {});
  };

  /** A paused VM may be an internal error (e.g. a KVM emulation failure) or a panic: a crash. */
  const checkRunState = async (vm: Vm, client: QmpClient) => {
    const st = await client.execute<{ status: string }>('query-status').catch(() => null);
    if (!st || !['internal-error', 'guest-panicked'].includes(st.status)) return;
    const detail = await tailFile(vm.files.qemuLog, 2);
    vm.stopReason = undefined;
    await patchState(vm, { clean: false, reason: `guest ${st.status}${detail ? `: ${detail}` : ''}` }).catch(
      () => {},
    );
    await client.execute('quit', undefined, { timeoutMs: 2_000 }).catch(() => {});
  };

  // ---- process lifecycle --------------------------------------------------------------------------

  /** Handles the end of a VM's process once: state file, cgroup, stale files, event. */
  const processEnded = (vm: Vm, boot: number, how: string): Promise<void> => {
    if (vm.boot !== boot || vm.ended) return vm.endDone ?? Promise.resolve();
    vm.ended = true;
    vm.endDone = finishEnd(vm, how);
    return vm.endDone;
  };
  const finishEnd = async (vm: Vm, how: string) => {
    vm.watchConsole = false;
    await vm.statePatch;
    const state = await readState(vm);
    const clean = state.clean || vm.stopReason !== undefined;
    const reason = clean
      ? (vm.stopReason ?? state.reason ?? 'guest powered off')
      : (state.reason ?? `${how}${await tailLine(vm)}`);
    await patchState(vm, { running: false, clean, reason, pid: undefined, memoryMiB: undefined }).catch(
      () => {},
    );
    await cleanupProcessFiles(vm).catch((err) =>
      log?.warn({ vm: vm.id, err: (err as Error).message }, 'could not clean up after QEMU'),
    );
    vm.pid = undefined;
    vm.child = undefined;
    const qmp = vm.qmp;
    vm.qmp = undefined;
    await qmp?.close();
    vm.stopReason = undefined;
    const silent = vm.silent;
    vm.silent = false;
    log?.info({ vm: vm.id, clean, reason }, 'qemu process ended');
    if (!silent) emit({ type: clean ? 'stopped' : 'crashed', id: vm.id, reason });
    vm.markExited?.();
  };

  const tailLine = async (vm: Vm) => {
    const t = await tailFile(vm.files.qemuLog, 1);
    return t ? `: ${t}` : '';
  };

  const cleanupProcessFiles = async (vm: Vm) => {
    for (const f of [vm.files.qmp, vm.files.consoleSock, vm.files.pid]) await rm(f, { force: true });
    const support = await cgroups();
    await removeVmCgroup(support, vm.id).catch((err) =>
      log?.warn({ vm: vm.id, err: (err as Error).message }, 'could not remove cgroup'),
    );
  };

  /** The live QEMU pid of a VM, or undefined (rediscovered from the pid file). */
  const livePid = async (vm: Vm): Promise<number | undefined> => {
    const candidates = [vm.pid, await readPidFile(vm.files.pid), (await readState(vm)).pid];
    for (const pid of candidates) {
      if (pid !== undefined && (await isOurQemu(pid, vm.files.pid))) {
        if (vm.pid !== pid) await adopt(vm, pid);
        return pid;
      }
    }
    if (vm.pid !== undefined && !vm.ended) {
      // Our own child's exit status is about to arrive; otherwise the process ended unobserved.
      if (vm.child) await Promise.race([vm.exited, sleep(1_000)]);
      if (!vm.ended) await processEnded(vm, vm.boot, `QEMU process ${vm.pid} ended`);
    }
    return undefined;
  };

  /** Takes over a running QEMU this driver object did not start (agent restart). */
  const adopt = async (vm: Vm, pid: number) => {
    vm.boot++;
    vm.pid = pid;
    vm.child = undefined;
    vm.ended = false;
    vm.exited = new Promise((r) => {
      vm.markExited = r;
    });
    const state = await readState(vm);
    if (state.guestReady === false && state.consoleStart !== undefined) {
      // Still booting when the last agent went: watch its console from the boot's first line.
      if (state.memoryMiB !== undefined) deferBalloon(vm, state.memoryMiB);
      vm.consoleOffset = state.consoleStart;
      vm.consoleTail = '';
      vm.watchConsole = true;
      startConsoleTimer();
    }
  };

  /** Holds the boot-time balloon target until the guest reports ready (or a minute passes). */
  const deferBalloon = (vm: Vm, mib: number) => {
    if (vm.pendingBalloon) clearTimeout(vm.pendingBalloon.timer);
    const timer = setTimeout(() => void applyBalloon(vm), BALLOON_DEFER_MAX_MS);
    timer.unref();
    vm.pendingBalloon = { mib, timer };
  };

  const applyBalloon = async (vm: Vm) => {
    const pending = vm.pendingBalloon;
    if (!pending) return;
    clearTimeout(pending.timer);
    vm.pendingBalloon = undefined;
    if (vm.ended) return;
    try {
      await (await getQmp(vm)).execute('balloon', { value: pending.mib * MIB });
    } catch (err) {
      log?.warn({ vm: vm.id, err: (err as Error).message }, 'could not apply the balloon target');
    }
  };

  const startConsoleTimer = () => {
    if (consoleTimer || closed) return;
    consoleTimer = setInterval(() => void pollConsoles(), consolePollMs);
    consoleTimer.unref();
  };

  const restartConsoleWatch = async (vm: Vm) => {
    const size = await stat(vm.files.consoleLog).then(
      (s) => s.size,
      () => 0,
    );
    vm.consoleOffset = size;
    vm.consoleTail = '';
    vm.watchConsole = true;
    await patchState(vm, { consoleStart: size, guestReady: false });
    startConsoleTimer();
  };

  const pollConsole = async (vm: Vm) => {
    const size = await stat(vm.files.consoleLog).then(
      (st) => st.size,
      () => 0,
    );
    if (size <= vm.consoleOffset) return;
    const { data } = await readRange(
      vm.files.consoleLog,
      vm.consoleOffset,
      Math.min(size - vm.consoleOffset, MIB),
    );
    vm.consoleOffset += data.length;
    const text = vm.consoleTail + data.toString('latin1');
    if (GUEST_READY.test(text)) {
      vm.watchConsole = false;
      await applyBalloon(vm);
      emit({ type: 'guest-ready', id: vm.id });
      await patchState(vm, { guestReady: true }); // after: a repeated event is harmless, a lost one is not
    } else {
      vm.consoleTail = text.slice(-200);
    }
  };

  let polling = false;
  const pollConsoles = async () => {
    if (polling) return;
    polling = true;
    try {
      for (const vm of vms.values()) {
        if (vm.watchConsole) await pollConsole(vm).catch(() => {}); // retried next tick
      }
    } finally {
      polling = false;
    }
    if (consoleTimer && ![...vms.values()].some((vm) => vm.watchConsole)) {
      clearInterval(consoleTimer);
      consoleTimer = undefined;
    }
  };

  // ---- status -------------------------------------------------------------------------------------

  const statusOf = async (id: string, spec: VmSpec): Promise<VmStatus> => {
    const vm = vmOf(id);
    const pid = await livePid(vm);
    if (pid === undefined) {
      const state = await readState(vm);
      const crashed = !state.clean;
      const s: VmStatus = {
        id,
        state: crashed ? 'crashed' : 'stopped',
        vcpus: spec.vcpus,
        memoryMiB: spec.memoryMiB,
      };
      if (crashed) {
        s.reason =
          state.reason ??
          `QEMU process ${state.pid ?? '?'} ended while no agent watched${await tailLine(vm)}`;
      }
      return s;
    }
    const state = await readState(vm);
    const s: VmStatus = {
      id,
      state: 'running',
      pid,
      vcpus: spec.vcpus,
      memoryMiB: state.memoryMiB ?? spec.memoryMiB,
    };
    try {
      const qmp = await getQmp(vm);
      const [run, cpus] = await Promise.all([
        qmp.execute<{ status: string }>('query-status'),
        qmp.execute<unknown[]>('query-cpus-fast'),
      ]);
      s.vcpus = cpus.length;
      s.state = runStateToPower(run.status);
      if (s.state === 'crashed') s.reason = `guest ${run.status}`;
      if (run.status === 'shutdown') {
        // The guest powered off (maybe while no agent watched); record it and end QEMU.
        s.state = 'stopped';
        vm.stopReason ??= 'guest powered off';
        await patchState(vm, { clean: true, reason: vm.stopReason });
        void qmp.execute('quit').catch(() => {});
      }
    } catch (err) {
      s.reason = `monitor unreachable: ${(err as Error).message}`;
    }
    return s;
  };

  // ---- start / stop -------------------------------------------------------------------------------

  const startVm = async (id: string) => {
    const spec = await needSpec(id);
    const vm = vmOf(id);
    if ((await livePid(vm)) !== undefined) fail('InvalidState', `VM ${id} is already running`);
    await launch(vm, spec, { vcpus: spec.vcpus, memoryMiB: spec.memoryMiB });
  };

  /** Starts QEMU for `spec` with `sizes` (the spec's boot sizes, or the live ones on a cold reboot). */
  const launch = async (
    vm: Vm,
    spec: VmSpec,
    sizes: { vcpus: number; memoryMiB: number },
    mode: { incoming?: boolean; paused?: boolean } = {},
  ) => {
    const id = vm.id;
    for (const p of [vm.files.qmp, vm.files.consoleSock]) {
      if (p.length > MAX_SOCKET_PATH) fail('StartFailed', `socket path too long (${p.length} > 107): ${p}`);
    }
    const accel = (await accelerator()).accelerator;
    await cleanupProcessFiles(vm);
    const paths = await pathsFor(vm, spec);
    const argv = buildQemuArgv({
      spec: { ...spec, vcpus: sizes.vcpus },
      accelerator: accel,
      paths,
      incoming: mode.incoming,
      paused: mode.paused,
    });
    let cgroup: VmCgroup = { procsFiles: [], dirs: [] };
    const support = await cgroups();
    try {
      cgroup = await createVmCgroup(support, id, {
        memoryBytes: (spec.maxMemoryMiB + OVERHEAD_MIB[accel]) * MIB,
        cpus: sizes.vcpus,
      });
    } catch (err) {
      log?.warn(
        { vm: id, err: (err as Error).message },
        'cgroups unavailable for this VM: running without limits',
      );
    }
    const cmd = joinCommand(cgroup, qemuBinary, argv);
    const consoleStart = await stat(vm.files.consoleLog).then(
      (s) => s.size,
      () => 0,
    );
    // Before the process exists, so an agent killed at any point after finds where this boot begins.
    await patchState(vm, { consoleStart, guestReady: false });
    const logFh = await open(vm.files.qemuLog, 'w', 0o600);
    let child: ChildProcess;
    try {
      child = spawn(cmd.command, cmd.args, {
        cwd: vm.files.dir,
        detached: true,
        stdio: ['ignore', logFh.fd, logFh.fd],
        // glibc's per-thread malloc arenas cost QEMU tens of MiB of RSS for nothing.
        env: { ...process.env, MALLOC_ARENA_MAX: '2' },
      });
    } catch (err) {
      await logFh.close();
      return fail('StartFailed', `VM ${id}: could not spawn ${qemuBinary}: ${(err as Error).message}`);
    }
    // Everything below up to the first await runs before the child can be reaped, so a QEMU that
    // exits at once is still observed.
    vm.boot++;
    const boot = vm.boot;
    vm.pid = child.pid;
    vm.child = child;
    vm.ended = false;
    vm.stopReason = undefined;
    vm.silent = false;
    vm.exited = new Promise((r) => {
      vm.markExited = r;
    });
    let exitedEarly: string | undefined;
    child.on('error', (err) => {
      exitedEarly = err.message;
      void processEnded(vm, boot, `QEMU failed: ${err.message}`);
    });
    child.on('exit', (code, sig) => {
      const how = sig ? `QEMU killed by ${sig}` : `QEMU exited with code ${code}`;
      exitedEarly = how;
      void processEnded(vm, boot, how);
    });
    child.unref();
    await logFh.close();
    const pid = child.pid;
    if (pid === undefined) {
      vm.silent = true;
      vm.stopReason = 'start failed';
      await vm.exited;
      return fail('StartFailed', `VM ${id}: could not spawn ${cmd.command}: ${exitedEarly}`);
    }
    await patchState(vm, {
      running: true,
      clean: false,
      reason: undefined,
      pid,
      memoryMiB: sizes.memoryMiB,
      consoleStart,
      guestReady: false,
    });

    const startFailed = async (why: string): Promise<never> => {
      vm.silent = true;
      vm.stopReason = 'start failed';
      if (!exitedEarly) signal(pid, 'SIGKILL');
      await vm.exited;
      const tail = await tailFile(vm.files.qemuLog, 10);
      await patchState(vm, { running: false, clean: true, reason: undefined });
      return fail('StartFailed', `VM ${id} failed to start: ${why}${tail ? `\n${tail}` : ''}`);
    };

    const deadline = Date.now() + startTimeoutMs;
    let qmp: QmpClient | undefined;
    while (!qmp) {
      if (exitedEarly) return startFailed(exitedEarly);
      if (Date.now() > deadline) return startFailed(`QMP did not answer within ${startTimeoutMs} ms`);
      if (existsSync(vm.files.qmp)) {
        qmp = await getQmp(vm).catch(() => undefined);
        if (qmp) break;
      }
      await sleep(20);
    }
    try {
      const st = await qmp.execute<{ status: string }>('query-status');
      const expected = mode.incoming ? 'inmigrate' : mode.paused ? 'prelaunch' : 'running';
      if (st.status !== expected) return startFailed(`VM is ${st.status} after start`);
      // A migration target gets the balloon's state with the device state.
      if (!mode.incoming && !mode.paused && sizes.memoryMiB < spec.maxMemoryMiB)
        deferBalloon(vm, sizes.memoryMiB);
    } catch (err) {
      if (err instanceof HypervisorError && err.code === 'StartFailed') throw err;
      return startFailed((err as Error).message);
    }
    vm.consoleOffset = consoleStart;
    vm.consoleTail = '';
    vm.watchConsole = true;
    startConsoleTimer();
    log?.info({ vm: id, pid, accelerator: accel }, 'qemu started');
  };

  const pathsFor = async (vm: Vm, spec: VmSpec): Promise<QemuPaths> => {
    const f = vm.files;
    const paths: QemuPaths = {
      qmpSocket: f.qmp,
      consoleSocket: f.consoleSock,
      consoleLog: f.consoleLog,
      pidFile: f.pid,
      rootDisk: f.disk,
    };
    if (spec.cloudInit) paths.seedIso = f.seed;
    if (spec.boot.diskImage?.format === 'iso') paths.cdrom = resolve(spec.boot.diskImage.path);
    if (spec.boot.firmware === 'uefi') {
      if (!existsSync(f.ovmfVars)) await copyFile(ovmf.vars, f.ovmfVars, constants.COPYFILE_EXCL);
      paths.ovmfCode = ovmf.code;
      paths.ovmfVars = f.ovmfVars;
    }
    return paths;
  };

  /** Ends the process now: `quit` (QEMU flushes and exits), then SIGKILL. */
  const hardStop = async (vm: Vm, pid: number, reason: string) => {
    vm.stopReason ??= reason;
    await patchState(vm, { clean: true, reason: vm.stopReason }).catch(() => {});
    const qmp = vm.qmp && !vm.qmp.closed ? vm.qmp : await getQmp(vm).catch(() => undefined);
    await qmp?.execute('quit', undefined, { timeoutMs: 1_000 }).catch(() => {});
    if (!(await waitForExit(pid, vm.files.pid, 3_000))) {
      signal(pid, 'SIGKILL');
      await waitForExit(pid, vm.files.pid, 5_000);
    }
    await awaitEnded(vm, pid);
  };

  /** Waits until processEnded ran for this process (it runs from the exit or QMP close). */
  const awaitEnded = async (vm: Vm, pid: number) => {
    // Until its clean-up is done (cgroup removal included): a new process of the same VM must not
    // create its cgroup while the old one's removal is still pending.
    if (vm.ended) return vm.endDone;
    const boot = vm.boot;
    const ended = vm.exited;
    const timeout = sleep(1_000).then(() => 'timeout' as const);
    if ((await Promise.race([ended, timeout])) === 'timeout' && vm.boot === boot) {
      await processEnded(vm, boot, `QEMU process ${pid} ended`);
    }
  };

  const stopVm = async (id: string, timeoutMs: number) => {
    await needSpec(id);
    const vm = vmOf(id);
    const pid = await livePid(vm);
    if (pid === undefined) return;
    if (timeoutMs === 0) return hardStop(vm, pid, 'hard stop');
    vm.stopReason = 'guest powered off';
    await patchState(vm, { clean: true, reason: vm.stopReason });
    // A power-button press can be lost (the guest still booting, or busy enough to miss the ACPI
    // event), so press again every POWERDOWN_RETRY_MS until the guest is gone or time is up, as Nova
    // does; a guest that is already shutting down ignores the repeats.
    const press = async () => {
      try {
        const qmp = await getQmp(vm);
        await qmp.execute('system_powerdown');
      } catch (err) {
        if (!vm.ended) log?.warn({ vm: id, err: (err as Error).message }, 'ACPI power-off request failed');
      }
    };
    await press();
    const exited = (vm.exited ?? Promise.resolve()).then(() => 'exited' as const);
    const deadline = Date.now() + timeoutMs;
    let outcome: 'exited' | 'wait' = 'wait';
    while (outcome === 'wait' && Date.now() < deadline) {
      const wait = sleep(Math.min(deadline - Date.now(), POWERDOWN_RETRY_MS)).then(() => 'wait' as const);
      outcome = await Promise.race([exited, wait]);
      if (outcome === 'wait' && Date.now() < deadline) await press();
    }
    if (outcome === 'wait' && !vm.ended) {
      vm.stopReason = `hard stop after ${timeoutMs} ms`;
      await hardStop(vm, pid, vm.stopReason);
    }
  };

  const destroyVm = async (id: string) => {
    if (!VM_ID.test(id)) return;
    const vm = vmOf(id);
    const pid = await livePid(vm);
    if (pid !== undefined) {
      vm.stopReason = 'destroyed';
      signal(pid, 'SIGKILL');
      await waitForExit(pid, vm.files.pid, 5_000);
      await awaitEnded(vm, pid);
    }
    await cleanupProcessFiles(vm);
    await rm(vm.files.dir, { recursive: true, force: true });
    vms.delete(id);
  };

  // ---- define -------------------------------------------------------------------------------------

  const defineVm = async (spec: VmSpec) => {
    validateSpec(spec, hostLimits());
    const f = filesOf(spec.id);
    const existing = await readSpec(spec.id);
    if (existing) {
      if (canonicalJson(existing) === canonicalJson(spec)) return;
      if ((await livePid(vmOf(spec.id))) !== undefined) {
        fail('InvalidState', `cannot redefine VM ${spec.id} while it runs; stop it first`);
      }
      // Sizes and cloud-init data may change (cold resize); the root disk keeps its data and may grow.
      if (spec.diskGiB < existing.diskGiB) {
        fail(
          'DiskTooSmall',
          `VM ${spec.id}: the root disk cannot shrink from ${existing.diskGiB} to ${spec.diskGiB} GiB`,
        );
      }
      if (spec.diskGiB > existing.diskGiB) await growDisk(f.disk, spec.diskGiB);
      if (canonicalJson(existing.cloudInit ?? null) !== canonicalJson(spec.cloudInit ?? null)) {
        if (spec.cloudInit) await buildSeed(f.seed, spec.cloudInit);
        else await rm(f.seed, { force: true });
      }
      await writeJsonAtomic(f.spec, spec);
      return;
    }
    // A failed define leaves nothing behind.
    const created = !existsSync(f.dir);
    try {
      await mkdir(f.dir, { recursive: true, mode: 0o700 });
      await chmod(f.dir, 0o700);
      const img = spec.boot.diskImage;
      if (img && img.format !== 'iso') {
        await createOverlay({
          base: resolve(img.path),
          baseFormat: img.format,
          overlay: f.disk,
          sizeGiB: spec.diskGiB,
        });
      } else {
        if (img) await inspectBaseImage(resolve(img.path), 'iso');
        await createBlankDisk(f.disk, spec.diskGiB);
      }
      if (spec.cloudInit) await buildSeed(f.seed, spec.cloudInit);
      if (spec.boot.firmware === 'uefi') await copyFile(ovmf.vars, f.ovmfVars);
      await writeJsonAtomic(f.spec, spec);
    } catch (err) {
      if (created) await rm(f.dir, { recursive: true, force: true });
      else for (const p of [f.disk, f.seed, f.ovmfVars]) await rm(p, { force: true });
      throw err;
    }
  };

  // ---- resize -------------------------------------------------------------------------------------

  interface HotpluggableCpu {
    type: string;
    'qom-path'?: string;
    props: Record<string, number>;
  }
  interface CpuFast {
    'qom-path': string;
    props: Record<string, number>;
  }
  const cpuOrder = (a: Record<string, number>, b: Record<string, number>) => {
    for (const k of ['socket-id', 'die-id', 'core-id', 'thread-id']) {
      const d = (a[k] ?? 0) - (b[k] ?? 0);
      if (d !== 0) return d;
    }
    return 0;
  };

  const waitFor = async (check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (await check()) return true;
      if (Date.now() >= deadline) return false;
      await sleep(50);
    }
  };

  const resizeVm = async (id: string, target: { vcpus?: number; memoryMiB?: number }): Promise<VmStatus> => {
    const spec = await needSpec(id);
    const vm = vmOf(id);
    const before = await statusOf(id, spec);
    if (before.state !== 'running') fail('InvalidState', `cannot resize VM ${id}: it is ${before.state}`);
    const vcpus = target.vcpus ?? before.vcpus;
    const memoryMiB = target.memoryMiB ?? before.memoryMiB;
    if (!inRange(vcpus, 1, spec.maxVcpus)) {
      fail('ResizeOutOfRange', `VM ${id}: vcpus must be an integer in 1..${spec.maxVcpus}, got ${vcpus}`);
    }
    if (!inRange(memoryMiB, 1, spec.maxMemoryMiB)) {
      fail(
        'ResizeOutOfRange',
        `VM ${id}: memoryMiB must be an integer in 1..${spec.maxMemoryMiB}, got ${memoryMiB}`,
      );
    }
    const qmp = await getQmp(vm);
    if (vm.pendingBalloon) {
      clearTimeout(vm.pendingBalloon.timer);
      vm.pendingBalloon = undefined;
    }
    if (memoryMiB !== before.memoryMiB || !(await balloonAt(qmp, memoryMiB))) {
      await qmp.execute('balloon', { value: memoryMiB * MIB });
      await patchState(vm, { memoryMiB });
      const followed = await waitFor(async () => {
        const b = await qmp.execute<{ actual: number }>('query-balloon');
        return Math.abs(b.actual - memoryMiB * MIB) < MIB;
      }, resizeTimeoutMs);
      if (!followed) log?.warn({ vm: id, memoryMiB }, 'guest has not reached the balloon target yet');
    }
    if (vcpus !== before.vcpus) {
      const cpus = await qmp.execute<CpuFast[]>('query-cpus-fast');
      if (vcpus > cpus.length) {
        const slots = (await qmp.execute<HotpluggableCpu[]>('query-hotpluggable-cpus'))
          .filter((c) => !c['qom-path'])
          .sort((a, b) => cpuOrder(a.props, b.props))
          .slice(0, vcpus - cpus.length);
        for (const slot of slots) {
          await qmp.execute('device_add', {
            driver: slot.type,
            id: vcpuDeviceId(slot.props['core-id'] ?? 0),
            ...slot.props,
          });
        }
      } else {
        const plugged = cpus
          .filter((c) => c['qom-path'].startsWith('/machine/peripheral/'))
          .sort((a, b) => cpuOrder(b.props, a.props));
        const remove = plugged.slice(0, cpus.length - vcpus);
        if (remove.length < cpus.length - vcpus) {
          fail('ResizeOutOfRange', `VM ${id}: only ${plugged.length} vCPUs can be unplugged`);
        }
        if ((await accelerator()).accelerator === 'tcg') {
          // Single-threaded TCG (see argv.ts) cannot unplug: QEMU 7.2 aborts joining the vCPU thread
          // all vCPUs share. Replace the process with fewer vCPUs instead: the guest sees a power cycle.
          const pid = vm.pid;
          if (pid !== undefined) {
            vm.silent = true;
            await hardStop(vm, pid, 'resize');
            await launch(vm, spec, { vcpus, memoryMiB });
          }
        } else {
          for (const c of remove) {
            await qmp.execute('device_del', { id: c['qom-path'].split('/').pop() });
          }
        }
      }
      const followed = await waitFor(
        async () => (await (await getQmp(vm)).execute<unknown[]>('query-cpus-fast')).length === vcpus,
        resizeTimeoutMs,
      );
      if (!followed) log?.warn({ vm: id, vcpus }, 'guest has not released the vCPUs yet');
      await setVmCgroupCpus(await cgroups(), id, vcpus).catch(() => {});
    }
    const after = await statusOf(id, spec);
    if (after.vcpus !== before.vcpus || after.memoryMiB !== before.memoryMiB) {
      emit({ type: 'resized', id, vcpus: after.vcpus, memoryMiB: after.memoryMiB });
    }
    return after;
  };

  // ---- console ------------------------------------------------------------------------------------

  // QEMU's console socket takes one client at a time, and a second connect while one is open fails
  // at once (EAGAIN: the listen backlog is full). Keystrokes arrive as many small writes, so writes
  // to one VM's console go through a queue: one connection at a time, and whatever arrived while it
  // was open goes, in order, in the next one.
  interface ConsoleQueue {
    chunks: Buffer[];
    waiters: { resolve: () => void; reject: (e: unknown) => void }[];
  }
  const consoleQueues = new Map<string, ConsoleQueue>();

  /** One connection to the console socket: connect (again while it is busy, up to 3 s), write, hang up. */
  const sendToConsole = (id: string, vm: Vm, data: Buffer) =>
    new Promise<void>((resolvePromise, reject) => {
      const deadline = Date.now() + 3_000;
      const attempt = () => {
        const sock = net.createConnection({ path: vm.files.consoleSock });
        const timer = setTimeout(
          () => {
            sock.destroy();
            reject(
              new HypervisorError('MonitorTimeout', `console of VM ${id} is busy (another client holds it)`),
            );
          },
          Math.max(0, deadline - Date.now()),
        );
        sock.on('data', () => {}); // guest output also goes to console.log; drop it here
        sock.on('error', (err: NodeJS.ErrnoException) => {
          clearTimeout(timer);
          if (err.code === 'EAGAIN' && Date.now() < deadline) {
            setTimeout(attempt, 20);
            return;
          }
          reject(new HypervisorError('MonitorDisconnected', `console of VM ${id}: ${err.message}`));
        });
        sock.on('connect', () => {
          sock.write(data, () => {
            // Give QEMU a moment to read before the hang-up.
            setTimeout(() => {
              clearTimeout(timer);
              sock.end();
              resolvePromise();
            }, 50);
          });
        });
      };
      attempt();
    });

  const drainConsole = async (id: string, q: ConsoleQueue) => {
    while (q.chunks.length > 0) {
      const data = Buffer.concat(q.chunks);
      const waiters = q.waiters;
      q.chunks = [];
      q.waiters = [];
      try {
        // Under the VM's lock, like every other operation on it (not while it starts or stops).
        await withLock(id, async () => {
          await needSpec(id);
          const vm = vmOf(id);
          if ((await livePid(vm)) === undefined)
            fail('InvalidState', `cannot write the console of VM ${id}: it is not running`);
          await sendToConsole(id, vm, data);
        });
        for (const w of waiters) w.resolve();
      } catch (e) {
        for (const w of waiters) w.reject(e);
      }
    }
    consoleQueues.delete(id);
  };

  /** Queued at once (before any await), so concurrent writes reach the guest in call order. */
  const writeConsoleVm = (id: string, data: Buffer): Promise<void> => {
    let q = consoleQueues.get(id);
    const idle = !q;
    if (!q) {
      q = { chunks: [], waiters: [] };
      consoleQueues.set(id, q);
    }
    const queue = q;
    const written = new Promise<void>((resolve, reject) => queue.waiters.push({ resolve, reject }));
    queue.chunks.push(data);
    if (idle) void drainConsole(id, queue);
    return written;
  };

  // ---- live migration -----------------------------------------------------------------------------

  const MIRROR_JOB = 'yunhai-migrate-disk';
  const migrationTimeoutMs = opts.migrationTimeoutMs ?? 600_000;
  const hostInUri = (host: string) => (host.includes(':') ? `[${host}]` : host);

  interface BlockJob {
    device: string;
    len: number;
    offset: number;
    ready: boolean;
  }
  interface MigrateInfo {
    status: string;
    'error-desc'?: string;
    'total-time'?: number;
    downtime?: number;
    ram?: { transferred: number; total: number; remaining: number };
  }

  const prepareIncomingVm = async (spec: VmSpec, listenHost: string) => {
    const vm = vmOf(spec.id);
    if ((await livePid(vm)) !== undefined) fail('InvalidState', `VM ${spec.id} already runs on this host`);
    await defineVm(spec);
    await launch(vm, spec, { vcpus: spec.vcpus, memoryMiB: spec.memoryMiB }, { incoming: true });
    try {
      const qmp = await getQmp(vm);
      const nbdPort = await freePort(listenHost);
      await qmp.execute('nbd-server-start', {
        addr: { type: 'inet', data: { host: listenHost, port: String(nbdPort) } },
      });
      await qmp.execute('nbd-server-add', { device: 'root', writable: true });
      const migratePort = await freePort(listenHost);
      const migrateUri = `tcp:${hostInUri(listenHost)}:${migratePort}`;
      await qmp.execute('migrate-incoming', { uri: migrateUri });
      log?.info({ vm: spec.id, migrateUri }, 'waiting for an incoming migration');
      return { migrateUri, diskUri: `nbd://${hostInUri(listenHost)}:${nbdPort}/root` };
    } catch (err) {
      await destroyVm(spec.id).catch(() => {});
      return fail(
        'CommandFailed',
        `VM ${spec.id}: preparing the migration target failed: ${(err as Error).message}`,
      );
    }
  };

  const migrateOutVm = async (
    id: string,
    target: MigrationTarget,
    onProgress?: (p: MigrationProgress) => void,
    cold = false,
  ): Promise<MigrationResult> => {
    const spec = await needSpec(id);
    const vm = vmOf(id);
    if ((await livePid(vm)) === undefined) {
      if (!cold) fail('InvalidState', `cannot migrate VM ${id}: it is not running`);
      // A stopped VM travels the same way, its vCPUs never started: the disk copy is what matters.
      await launch(vm, spec, { vcpus: spec.vcpus, memoryMiB: spec.memoryMiB }, { paused: true });
    } else if (cold) fail('InvalidState', `cannot cold-migrate VM ${id}: it is running`);
    const qmp = await getQmp(vm);
    const deadline = Date.now() + migrationTimeoutMs;
    const jobs = async () =>
      (await qmp.execute<BlockJob[]>('query-block-jobs')).find((j) => j.device === MIRROR_JOB);
    let diskBytes = 0;
    try {
      // 1. The root disk's own data (the overlay's clusters; the target has the same base image)
      //    is mirrored to the target's NBD export; once in sync, the mirror keeps following writes.
      await qmp.execute('drive-mirror', {
        'job-id': MIRROR_JOB,
        device: 'root',
        target: target.diskUri,
        format: 'raw',
        sync: 'top',
        mode: 'existing',
      });
      for (;;) {
        const j = await jobs();
        if (!j) fail('CommandFailed', 'the disk copy ended before it was in sync');
        diskBytes = j!.offset;
        onProgress?.({
          phase: 'disk',
          transferredBytes: j!.offset,
          totalBytes: j!.len,
          remainingBytes: Math.max(0, j!.len - j!.offset),
        });
        if (j!.ready) break;
        if (Date.now() > deadline) fail('CommandFailed', 'the disk copy did not get in sync in time');
        await sleep(200);
      }
      // 2. Memory, while the guest runs; QEMU pauses it for the last round.
      await qmp.execute('migrate', { uri: target.migrateUri });
      let info: MigrateInfo;
      for (;;) {
        info = await qmp.execute<MigrateInfo>('query-migrate');
        if (info.status === 'completed') break;
        if (info.status === 'failed' || info.status === 'cancelled')
          fail('CommandFailed', `memory copy ${info.status}: ${info['error-desc'] ?? 'no detail'}`);
        if (info.ram)
          onProgress?.({
            phase: 'memory',
            transferredBytes: info.ram.transferred,
            totalBytes: info.ram.total,
            remainingBytes: info.ram.remaining,
          });
        if (Date.now() > deadline) fail('CommandFailed', 'the memory copy did not converge in time');
        await sleep(200);
      }
      // 3. The guest is paused here; end the mirror (a ready mirror's cancel drains what is in
      //    flight, leaving the target's disk identical), then the target may resume.
      await qmp.execute('block-job-cancel', { device: MIRROR_JOB });
      for (;;) {
        const j = await jobs();
        if (!j) break;
        diskBytes = j.offset;
        if (Date.now() > deadline) fail('CommandFailed', 'the disk copy did not finish in time');
        await sleep(50);
      }
      // From here this process is a stale copy: ending it is not a stop the agent reports.
      vm.silent = true;
      vm.watchConsole = false;
      await patchState(vm, { clean: true, reason: 'migrated away' });
      log?.info({ vm: id, downtimeMs: info.downtime, totalTimeMs: info['total-time'] }, 'migrated out');
      return {
        downtimeMs: info.downtime ?? 0,
        transferredBytes: (info.ram?.transferred ?? 0) + diskBytes,
        totalTimeMs: info['total-time'] ?? 0,
      };
    } catch (err) {
      // The guest keeps running here (a cold one goes back to being stopped).
      await qmp.execute('migrate_cancel').catch(() => {});
      await qmp.execute('block-job-cancel', { device: MIRROR_JOB, force: true }).catch(() => {});
      if (cold) {
        vm.silent = true;
        const pid = await livePid(vm);
        if (pid !== undefined) await hardStop(vm, pid, 'cold migration abandoned');
      } else {
        const st = await qmp.execute<{ status: string }>('query-status').catch(() => null);
        if (st && st.status !== 'running') await qmp.execute('cont').catch(() => {});
      }
      if (err instanceof HypervisorError) throw err;
      return fail('CommandFailed', `VM ${id}: migration failed: ${(err as Error).message}`);
    }
  };

  const finishIncomingVm = async (id: string, resume: boolean) => {
    await needSpec(id);
    const vm = vmOf(id);
    if ((await livePid(vm)) === undefined) fail('InvalidState', `VM ${id} is not running here`);
    const qmp = await getQmp(vm);
    const deadline = Date.now() + 30_000;
    for (;;) {
      const st = await qmp.execute<{ status: string }>('query-status');
      if (st.status === 'running') return;
      if (st.status === 'paused' || st.status === 'prelaunch') break;
      if (st.status !== 'inmigrate') fail('CommandFailed', `VM ${id} is ${st.status}, not waiting to resume`);
      if (Date.now() > deadline) fail('CommandFailed', `VM ${id}: the incoming migration did not complete`);
      await sleep(50);
    }
    await qmp.execute('nbd-server-stop').catch(() => {});
    if (!resume) {
      // Cold migration: the disk is here; the VM stays stopped (no event: it never ran).
      vm.silent = true;
      const pid = await livePid(vm);
      if (pid !== undefined) await hardStop(vm, pid, 'cold migration arrived');
      await patchState(vm, { running: false, clean: true, reason: 'stopped' });
      log?.info({ vm: id }, 'stopped VM arrived by cold migration');
      return;
    }
    await qmp.execute('cont');
    log?.info({ vm: id }, 'resumed after an incoming migration');
  };

  // ---- the driver ---------------------------------------------------------------------------------

  const driver: QemuDriver = {
    name: 'qemu',

    async capabilities() {
      alive();
      capsP ??= (async () => {
        await mkdir(dataDir, { recursive: true });
        const [version, accel, fs] = await Promise.all([qemuVersion(), accelerator(), statfs(dataDir)]);
        const host = hostLimits();
        return {
          driver: 'qemu',
          accelerator: accel.accelerator as Accelerator,
          hypervisorVersion: version,
          vcpus: host.vcpus,
          memoryMiB: host.memoryMiB,
          diskGiB: Math.floor((fs.bavail * fs.bsize) / 1024 ** 3),
          firmware: host.firmware,
        };
      })();
      const caps = await capsP;
      return { ...caps, firmware: [...caps.firmware] };
    },

    async acceleratorInfo() {
      return accelerator();
    },

    async cgroupSupport() {
      return cgroups();
    },

    async qmp<T>(id: string, command: string, args?: Record<string, unknown>): Promise<T> {
      await needSpec(id);
      const vm = vmOf(id);
      if ((await livePid(vm)) === undefined) fail('InvalidState', `VM ${id} is not running`);
      return (await getQmp(vm)).execute<T>(command, args);
    },

    define(spec) {
      alive();
      if (typeof spec?.id !== 'string' || !VM_ID.test(spec.id)) {
        return Promise.reject(
          new HypervisorError('CommandFailed', `invalid VM spec ${JSON.stringify(spec?.id)}: bad id`),
        );
      }
      return withLock(spec.id, () => defineVm(spec));
    },

    start(id) {
      return withLock(id, () => startVm(id));
    },

    stop(id, { timeoutMs }) {
      if (!(Number.isFinite(timeoutMs) && timeoutMs >= 0)) {
        return Promise.reject(new RangeError(`timeoutMs must be a finite number >= 0, got ${timeoutMs}`));
      }
      return withLock(id, () => stopVm(id, timeoutMs));
    },

    reboot(id) {
      return withLock(id, async () => {
        await needSpec(id);
        const vm = vmOf(id);
        if ((await livePid(vm)) === undefined)
          fail('InvalidState', `cannot reboot VM ${id}: it is not running`);
        await (await getQmp(vm)).execute('system_reset');
        await restartConsoleWatch(vm);
      });
    },

    destroy(id) {
      alive();
      return withLock(id, () => destroyVm(id));
    },

    async status(id) {
      alive();
      const spec = await readSpec(id);
      return spec ? statusOf(id, spec) : null;
    },

    async list() {
      alive();
      const names = await readdir(instancesDir).catch(() => [] as string[]);
      const out: VmStatus[] = [];
      for (const id of names.sort()) {
        const spec = await readSpec(id);
        if (spec) out.push(await statusOf(id, spec));
      }
      return out;
    },

    resize(id, target) {
      alive();
      return withLock(id, () => resizeVm(id, target));
    },

    async readConsole(id, offset, maxBytes = DEFAULT_CONSOLE_READ) {
      await needSpec(id);
      if (!(Number.isInteger(offset) && offset >= 0)) throw new RangeError(`bad console offset ${offset}`);
      if (!(Number.isInteger(maxBytes) && maxBytes > 0)) throw new RangeError(`bad maxBytes ${maxBytes}`);
      return readRange(filesOf(id).consoleLog, offset, maxBytes);
    },

    writeConsole(id, data) {
      return writeConsoleVm(id, data);
    },

    prepareIncoming(spec, { listenHost }) {
      alive();
      if (typeof spec?.id !== 'string' || !VM_ID.test(spec.id)) {
        return Promise.reject(
          new HypervisorError('CommandFailed', `invalid VM spec ${JSON.stringify(spec?.id)}: bad id`),
        );
      }
      return withLock(spec.id, () => prepareIncomingVm(spec, listenHost));
    },

    migrateOut(id, target, onProgress, opts) {
      alive();
      return withLock(id, () => migrateOutVm(id, target, onProgress, opts?.cold === true));
    },

    finishIncoming(id, opts) {
      alive();
      return withLock(id, () => finishIncomingVm(id, opts?.resume !== false));
    },

    onEvent(listener) {
      const entry = { fn: listener };
      listeners.add(entry);
      return () => {
        listeners.delete(entry);
      };
    },

    async close() {
      if (closed) return;
      closed = true;
      if (consoleTimer) clearInterval(consoleTimer);
      consoleTimer = undefined;
      listeners.clear();
      await Promise.allSettled([...locks.values()]);
      for (const vm of vms.values()) {
        vm.child?.removeAllListeners('exit');
        vm.child?.removeAllListeners('error');
        const qmp = vm.qmp;
        vm.qmp = undefined;
        await qmp?.close();
      }
      vms.clear();
    },
  };
  return driver;
}

/** A TCP port free on `host` right now (the kernel picks it; QEMU binds it a moment later). */
function freePort(host: string): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolvePort(port));
    });
  });
}

function runStateToPower(status: string): VmPowerState {
  switch (status) {
    case 'running':
      return 'running';
    case 'internal-error':
    case 'guest-panicked':
      return 'crashed';
    default:
      return 'paused';
  }
}

async function readRange(
  path: string,
  offset: number,
  maxBytes: number,
): Promise<{ data: Buffer; next: number }> {
  let fh: Awaited<ReturnType<typeof open>>;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { data: Buffer.alloc(0), next: offset };
    throw err;
  }
  try {
    const { size } = await fh.stat();
    if (offset >= size) return { data: Buffer.alloc(0), next: size };
    const len = Math.min(maxBytes, size - offset);
    const buf = Buffer.alloc(len);
    const { bytesRead } = await fh.read(buf, 0, len, offset);
    return { data: buf.subarray(0, bytesRead), next: offset + bytesRead };
  } finally {
    await fh.close();
  }
}

const inRange = (n: unknown, min: number, max: number): n is number =>
  typeof n === 'number' && Number.isInteger(n) && n >= min && n <= max;

/** The same checks, codes and order as the fake driver, so the conformance suite holds for both. */
function validateSpec(spec: VmSpec, host: { vcpus: number; memoryMiB: number; firmware: Firmware[] }): void {
  const bad = (code: HypervisorErrorCode, message: string): never => {
    throw new HypervisorError(code, `invalid VM spec ${JSON.stringify(spec?.id)}: ${message}`);
  };
  if (typeof spec?.id !== 'string' || !VM_ID.test(spec.id)) {
    bad('CommandFailed', 'id must be 1-128 letters, digits, "_", "." or "-", not starting with "." or "-"');
  }
  if (typeof spec.name !== 'string' || spec.name === '')
    bad('CommandFailed', 'name must be a non-empty string');
  if (!inRange(spec.maxVcpus, 1, host.vcpus)) {
    bad('ResizeOutOfRange', `maxVcpus must be an integer in 1..${host.vcpus} (this host)`);
  }
  if (!inRange(spec.vcpus, 1, spec.maxVcpus)) bad('ResizeOutOfRange', 'vcpus must be in 1..maxVcpus');
  if (!inRange(spec.maxMemoryMiB, 1, host.memoryMiB)) {
    bad('ResizeOutOfRange', `maxMemoryMiB must be an integer in 1..${host.memoryMiB} (this host)`);
  }
  if (!inRange(spec.memoryMiB, 1, spec.maxMemoryMiB))
    bad('ResizeOutOfRange', 'memoryMiB must be in 1..maxMemoryMiB');
  if (!inRange(spec.diskGiB, 1, Number.MAX_SAFE_INTEGER))
    bad('DiskTooSmall', 'diskGiB must be a positive integer');
  const boot = spec.boot;
  if (!boot || (!boot.diskImage && !boot.kernel)) bad('ImageInvalid', 'boot needs a disk image or a kernel');
  if (!['bios', 'uefi'].includes(boot.firmware) || !host.firmware.includes(boot.firmware)) {
    bad('ImageInvalid', `firmware ${JSON.stringify(boot.firmware)} is not available on this host`);
  }
  if (boot.diskImage && !(boot.diskImage.path && ['qcow2', 'raw', 'iso'].includes(boot.diskImage.format))) {
    bad('ImageInvalid', 'diskImage needs a path and a format of qcow2, raw or iso');
  }
  if (boot.kernel && !boot.kernel.kernelPath) bad('ImageInvalid', 'kernel needs a kernelPath');
  if (boot.kernel && !existsSync(boot.kernel.kernelPath))
    bad('ImageInvalid', `no kernel at ${boot.kernel.kernelPath}`);
  if (boot.kernel?.initrdPath && !existsSync(boot.kernel.initrdPath)) {
    bad('ImageInvalid', `no initrd at ${boot.kernel.initrdPath}`);
  }
  if (spec.cloudInit && typeof spec.cloudInit.metaData !== 'object') {
    bad('CommandFailed', 'cloudInit.metaData must be an object');
  }
}

/** JSON with sorted keys, so equal specs compare equal whatever their key order. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}
