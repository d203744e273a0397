/**
 * The hypervisor interface: what a host agent needs from a virtualisation driver. Two drivers
 * implement it: `qemu` (real VMs, one QEMU process per VM, driven over QMP) and `fake` (in-memory,
 * for fleet simulation and fast tests). Both pass the same conformance suite
 * (hypervisor.case.ts). Drivers are registered by name in drivers/load.ts.
 */

export type Accelerator = 'kvm' | 'tcg' | 'fake';
export type Firmware = 'bios' | 'uefi';

/** What a host offers, as reported at registration. */
export interface HostCapabilities {
  driver: 'qemu' | 'fake';
  /** The accelerator the driver actually uses (probed: KVM only if a guest really boots under it). */
  accelerator: Accelerator;
  /** e.g. "7.2.11" for QEMU; the driver's own version for fake. */
  hypervisorVersion: string;
  vcpus: number;
  memoryMiB: number;
  diskGiB: number;
  firmware: Firmware[];
}

/** A VM's boot source: a disk image (qcow2/raw/iso) or a kernel + initrd pair. */
export interface BootSource {
  /** Base image file on this host; instance disks are qcow2 overlays on it. */
  diskImage?: { path: string; format: 'qcow2' | 'raw' | 'iso' };
  kernel?: { kernelPath: string; initrdPath?: string; cmdline?: string };
  firmware: Firmware;
}

/** Everything a driver needs to define a VM. Sizes are what the flavor grants. */
export interface VmSpec {
  id: string;
  name: string;
  /** vCPUs at boot, and the most that live resize may raise them to. */
  vcpus: number;
  maxVcpus: number;
  /** Memory at boot (MiB), and the ceiling for live resize through the balloon. */
  memoryMiB: number;
  maxMemoryMiB: number;
  /** Size of the root disk overlay (GiB); must be at least the image's virtual size. */
  diskGiB: number;
  boot: BootSource;
  /** cloud-init NoCloud data, delivered as a `cidata` seed disk. */
  cloudInit?: { userData?: string; metaData: Record<string, string>; networkConfig?: string };
}

export type VmPowerState = 'running' | 'paused' | 'stopped' | 'crashed';

export interface VmStatus {
  id: string;
  state: VmPowerState;
  /** Host process id while running (qemu). */
  pid?: number;
  vcpus: number;
  memoryMiB: number;
  /** Human-readable reason for `crashed` (exit status, QEMU's last error line). */
  reason?: string;
}

/** Things that happen to VMs without being asked: guest shutdowns, crashes, guest-ready. */
export type VmEvent =
  | { type: 'stopped'; id: string; reason: string }
  | { type: 'crashed'; id: string; reason: string }
  | { type: 'guest-ready'; id: string }
  | { type: 'resized'; id: string; vcpus: number; memoryMiB: number };

/** Where a live migration's target listens: QEMU's migration stream and the disk copy (NBD). */
export interface MigrationTarget {
  /** QEMU migration URI, e.g. `tcp:10.0.0.2:49152`. */
  migrateUri: string;
  /** Writable export of the target's root disk, e.g. `nbd://10.0.0.2:49153/root`. */
  diskUri: string;
}

export interface MigrationProgress {
  /** `disk`: copying the root disk's own data; `memory`: copying RAM while the guest runs. */
  phase: 'disk' | 'memory';
  transferredBytes: number;
  totalBytes: number;
  remainingBytes: number;
}

export interface MigrationResult {
  /** How long the guest was paused at switch-over, as QEMU measured it. */
  downtimeMs: number;
  /** Bytes sent: RAM stream plus disk copy. */
  transferredBytes: number;
  totalTimeMs: number;
}

export interface Hypervisor {
  readonly name: 'qemu' | 'fake';
  /** Probes the host (accelerator, version, sizes). Cheap after the first call. */
  capabilities(): Promise<HostCapabilities>;
  /** Prepares a VM's files (disk overlay, seed, definition) without starting it. Idempotent. */
  define(spec: VmSpec): Promise<void>;
  /** Boots a defined VM; resolves once the hypervisor runs it (not when the guest is ready). */
  start(id: string): Promise<void>;
  /** ACPI power-off, then a hard stop after `timeoutMs` (0 = hard stop at once). */
  stop(id: string, opts: { timeoutMs: number }): Promise<void>;
  /** Guest reboot (ACPI reset), VM keeps its process. */
  reboot(id: string): Promise<void>;
  /** Stops the VM if needed and removes every file it had. Idempotent. */
  destroy(id: string): Promise<void>;
  status(id: string): Promise<VmStatus | null>;
  /** All VMs this driver knows on the host (rediscovered from disk after an agent restart). */
  list(): Promise<VmStatus[]>;
  /** Live resize within the spec's maxima: memory through the balloon, vCPUs through hotplug. */
  resize(id: string, target: { vcpus?: number; memoryMiB?: number }): Promise<VmStatus>;
  /** Serial console output from byte `offset`; `next` is the offset to ask for next. */
  readConsole(id: string, offset: number, maxBytes?: number): Promise<{ data: Buffer; next: number }>;
  /** Writes to the guest's serial console (interactive console). */
  writeConsole(id: string, data: Buffer): Promise<void>;
  /**
   * Live migration, target side: defines the VM from `spec` (a fresh overlay on the same image) and
   * starts it paused, waiting for the source's memory stream and disk copy on `listenHost`.
   * `destroy` abandons it.
   */
  prepareIncoming(spec: VmSpec, opts: { listenHost: string }): Promise<MigrationTarget>;
  /**
   * Live migration, source side: copies the root disk's data and then the memory of the running VM
   * to `target`, pausing the guest only for the final switch-over. On success the VM stays paused
   * here (destroy it once the target runs) and reports no further events; on failure it keeps
   * running here.
   */
  migrateOut(
    id: string,
    target: MigrationTarget,
    onProgress?: (p: MigrationProgress) => void,
    opts?: { cold?: boolean },
  ): Promise<MigrationResult>;
  /**
   * Target side, once the source is done: stops the disk export and resumes the guest — or, for a
   * cold migration (`resume: false`), ends the paused process, leaving a stopped VM with its disk.
   * With `cold`, `migrateOut` moves a stopped VM: it is started paused (its vCPUs never run) only
   * to carry its disk over the same path.
   */
  finishIncoming(id: string, opts?: { resume?: boolean }): Promise<void>;
  /** Subscribes to VM events; returns an unsubscribe function. */
  onEvent(listener: (e: VmEvent) => void): () => void;
  /** Releases driver resources (QMP connections); VMs keep running. */
  close(): Promise<void>;
}

/** Named driver failures. */
export type HypervisorErrorCode =
  | 'NotDefined'
  | 'InvalidState'
  | 'ResizeOutOfRange'
  | 'StartFailed'
  | 'ImageInvalid'
  | 'DiskTooSmall'
  | 'MonitorTimeout'
  | 'MonitorDisconnected'
  | 'CommandFailed';

export class HypervisorError extends Error {
  readonly code: HypervisorErrorCode;
  constructor(code: HypervisorErrorCode, message: string) {
    super(message);
    this.name = 'HypervisorError';
    this.code = code;
  }
}
