/**
 * The QEMU command line for one VM, as a pure function of its spec, its files and the
 * accelerator. Everything the driver decides about a VM's virtual hardware is here, so it can
 * be read (and table-tested) in one place.
 *
 * Choices:
 * - q35, no default devices, no user config, no display; a serial port whose output is logged
 *   to a file and which is also reachable interactively through a unix socket.
 * - Memory boots at `maxMemoryMiB`; the driver inflates the balloon down to `memoryMiB` right
 *   after start, so live resize can go up to the maximum without memory hotplug.
 * - vCPUs: one socket of `maxVcpus` cores. CPU 0 comes from `-smp 1`; CPUs 1..vcpus-1 are
 *   cold-plugged as `-device <model>-x86_64-cpu,core-id=N` (as libvirt does), so every vCPU but
 *   the first can later be unplugged with `device_del`, and the rest up to `maxVcpus` plugged in
 *   core order with `device_add`. Live resize therefore spans 1..maxVcpus.
 * - `-no-shutdown`: when the guest powers off, QEMU stays (runstate `shutdown`) until the driver
 *   sees it and sends `quit`. A VM that powered off while no agent was watching is then still
 *   known as a clean stop, not mistaken for a crash.
 * - `-sandbox`: seccomp, denying obsolete syscalls, privilege changes, fork/exec and
 *   scheduler/affinity changes.
 * - TCG runs single-threaded (`thread=single`: one host thread for all vCPUs) with a 16 MiB
 *   translation cache. Multi-threaded TCG in QEMU 7.2 splits the cache into 2 MiB regions, one set
 *   per possible vCPU, and aborts (`tcg_region_initial_alloc__locked: assertion failed`) when a
 *   hot-plugged vCPU's new thread finds every region taken — which a booted guest reaches sooner or
 *   later (16 MiB: at once; 32 MiB: after a reboot in our driver test). One thread has one region
 *   and never allocates on hotplug. Cost: a multi-vCPU TCG guest runs its vCPUs in turn, not in
 *   parallel (KVM, the production accelerator, is unaffected). Measured on the tiny guest: boot
 *   3.4-3.9 s either way, QEMU RSS 183 MB vs 202 MB (MTTCG, 32 MiB); 8 MiB thrashes (2-3x boot).
 */
import type { VmSpec } from '../../hypervisor.js';

export interface QemuPaths {
  qmpSocket: string;
  consoleSocket: string;
  consoleLog: string;
  pidFile: string;
  /** The VM's root disk: a qcow2 overlay on its image, or a blank qcow2 for kernel/ISO boots. */
  rootDisk: string;
  /** NoCloud seed (raw, attached read-only) when the spec has cloud-init data. */
  seedIso?: string;
  /** Installer/live ISO attached as a CD-ROM (boot.diskImage.format === 'iso'). */
  cdrom?: string;
  /** UEFI: OVMF code (shared, read-only) and this VM's own copy of the variable store. */
  ovmfCode?: string;
  ovmfVars?: string;
}

export interface QemuArgvInput {
  spec: VmSpec;
  accelerator: 'kvm' | 'tcg';
  paths: QemuPaths;
  /** TCG translation-cache size in MiB. */
  tcgTbSizeMiB?: number;
  /**
   * The target of a live migration: QEMU starts paused (`-S`) waiting for the incoming stream
   * (`-incoming defer`; the driver names the address over QMP), and the guest resumes only when the
   * driver says so — after the source has finished copying the disk.
   */
  incoming?: boolean;
  /** Start with the vCPUs stopped (`-S`): the source side of a cold migration. */
  paused?: boolean;
}

export const DEFAULT_TCG_TB_SIZE_MIB = 16;

const SANDBOX = 'on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny';

export function cpuModel(accelerator: 'kvm' | 'tcg'): string {
  return accelerator === 'kvm' ? 'host' : 'max';
}

/** The QOM type of one hot-pluggable vCPU (what `query-hotpluggable-cpus` lists as `type`). */
export function cpuDeviceType(accelerator: 'kvm' | 'tcg'): string {
  return `${cpuModel(accelerator)}-x86_64-cpu`;
}

/** Device id of the vCPU on core `core` (shared with the driver's hotplug code). */
export function vcpuDeviceId(core: number): string {
  return `vcpu${core}`;
}

/** Escapes a value inside a QEMU `key=value,...` option string (a comma is written twice). */
export function qemuOptValue(value: string): string {
  return value.replaceAll(',', ',,');
}

/** The arguments after the QEMU binary (`qemu-system-x86_64 ...argv`). */
export function buildQemuArgv(input: QemuArgvInput): string[] {
  const { spec, accelerator, paths } = input;
  const esc = qemuOptValue;
  const uefi = spec.boot.firmware === 'uefi';
  if (uefi && !(paths.ovmfCode && paths.ovmfVars)) {
    throw new Error(`VM ${spec.id}: UEFI boot needs ovmfCode and ovmfVars paths`);
  }
  const args: string[] = [
    '-name',
    `guest=${esc(spec.name)},process=yunhai-${esc(spec.id)}`,
    '-no-user-config',
    '-nodefaults',
    '-display',
    'none',
    '-no-shutdown',
    '-sandbox',
    SANDBOX,
    '-machine',
    'q35',
    '-accel',
    accelerator === 'kvm'
      ? 'kvm'
      : `tcg,thread=single,tb-size=${input.tcgTbSizeMiB ?? DEFAULT_TCG_TB_SIZE_MIB}`,
    '-cpu',
    cpuModel(accelerator),
    '-smp',
    `1,sockets=1,dies=1,cores=${spec.maxVcpus},threads=1,maxcpus=${spec.maxVcpus}`,
  ];
  if (input.incoming) args.push('-S', '-incoming', 'defer');
  else if (input.paused) args.push('-S');
  for (let core = 1; core < spec.vcpus; core++) {
    args.push(
      '-device',
      `${cpuDeviceType(accelerator)},id=${vcpuDeviceId(core)},socket-id=0,core-id=${core},thread-id=0`,
    );
  }
  args.push('-m', `${spec.maxMemoryMiB}M`);
  if (uefi) {
    args.push(
      '-drive',
      `if=pflash,unit=0,format=raw,readonly=on,file=${esc(paths.ovmfCode!)}`,
      '-drive',
      `if=pflash,unit=1,format=raw,file=${esc(paths.ovmfVars!)}`,
    );
  }
  const kernel = spec.boot.kernel;
  if (kernel) {
    args.push('-kernel', kernel.kernelPath);
    if (kernel.initrdPath) args.push('-initrd', kernel.initrdPath);
    if (kernel.cmdline) args.push('-append', kernel.cmdline);
  }
  args.push(
    '-qmp',
    `unix:${esc(paths.qmpSocket)},server=on,wait=off`,
    '-pidfile',
    paths.pidFile,
    '-chardev',
    `socket,id=ser0,path=${esc(paths.consoleSocket)},server=on,wait=off,` +
      `logfile=${esc(paths.consoleLog)},logappend=on`,
    '-serial',
    'chardev:ser0',
    '-drive',
    `if=none,id=root,format=qcow2,discard=unmap,file=${esc(paths.rootDisk)}`,
    '-device',
    'virtio-blk-pci,drive=root,id=root-disk,bootindex=1',
  );
  if (paths.cdrom) {
    args.push(
      '-drive',
      `if=none,id=cd0,format=raw,media=cdrom,readonly=on,file=${esc(paths.cdrom)}`,
      '-device',
      'ide-cd,drive=cd0,bus=ide.0,id=cdrom,bootindex=0',
    );
  }
  if (paths.seedIso) {
    args.push(
      '-drive',
      `if=none,id=seed,format=raw,readonly=on,file=${esc(paths.seedIso)}`,
      '-device',
      'virtio-blk-pci,drive=seed,id=seed-disk',
    );
  }
  args.push(
    '-device',
    'virtio-balloon-pci,id=balloon0,free-page-reporting=on',
    '-device',
    'virtio-rng-pci,id=rng0',
  );
  return args;
}
