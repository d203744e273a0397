/**
 * Per-VM cgroups: each QEMU process runs in `<parent>/yunhai/<vm id>` with a memory limit and
 * a CPU quota, on cgroup v1 (separate `memory` and `cpu` hierarchies) or v2 (unified).
 *
 * The parent defaults to the agent's own cgroup in each hierarchy, so VMs stay inside whatever
 * budget the agent's service was given (on v2 that cgroup must be delegated with its processes
 * in a leaf, or `parent` set to a delegated subtree). When the files are not writable the
 * driver runs VMs without limits and says so (`CgroupSupport.available === false`).
 *
 * QEMU joins its cgroup before it execs (see `joinCommand`), so even its start-up allocations
 * (the kernel and initrd it loads into guest RAM) are charged to the VM.
 */
import { constants, existsSync } from 'node:fs';
import { access, mkdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

export type CgroupVersion = 1 | 2;

export interface CgroupSupport {
  available: boolean;
  version?: CgroupVersion;
  /** Why not, when unavailable. */
  reason?: string;
  /** The directories VM cgroups are created under (one per v1 controller, one for v2). */
  memoryParent?: string;
  cpuParent?: string;
}

export interface VmCgroupLimits {
  memoryBytes: number;
  /** CPU time allowed per period, in vCPUs (2 = two full host CPUs). */
  cpus: number;
}

export interface VmCgroup {
  /** The files QEMU's pid must be written to (`cgroup.procs` of each hierarchy). */
  procsFiles: string[];
  dirs: string[];
}

const CPU_PERIOD_US = 100_000;
const GROUP = 'yunhai';

export interface CgroupOptions {
  /** cgroup filesystem root (tests point it elsewhere). */
  root?: string;
  /** Path inside each hierarchy to create `yunhai/<id>` under; default: this process's own cgroup. */
  parent?: string;
  /** /proc/self/cgroup contents (tests). */
  selfCgroup?: string;
}

/** Finds where VM cgroups can go on this host. Creates nothing; never throws. */
export async function detectCgroups(opts: CgroupOptions = {}): Promise<CgroupSupport> {
  const root = opts.root ?? '/sys/fs/cgroup';
  let self = opts.selfCgroup;
  if (self === undefined) self = await readFile('/proc/self/cgroup', 'utf8').catch(() => '');
  const own = parseProcCgroup(self);
  try {
    if (
      existsSync(join(root, 'memory', 'memory.limit_in_bytes')) &&
      existsSync(join(root, 'cpu', 'cpu.cfs_quota_us'))
    ) {
      const memoryBase = join(root, 'memory', opts.parent ?? own.get('memory') ?? '/');
      const cpuBase = join(root, 'cpu', opts.parent ?? own.get('cpu') ?? '/');
      await access(memoryBase, constants.W_OK);
      await access(cpuBase, constants.W_OK);
      return {
        available: true,
        version: 1,
        memoryParent: join(memoryBase, GROUP),
        cpuParent: join(cpuBase, GROUP),
      };
    }
    if (existsSync(join(root, 'cgroup.controllers'))) {
      const controllers = (await readFile(join(root, 'cgroup.controllers'), 'utf8')).split(/\s+/);
      if (!controllers.includes('memory') || !controllers.includes('cpu')) {
        return { available: false, version: 2, reason: 'cgroup v2 without the memory and cpu controllers' };
      }
      const base = join(root, opts.parent ?? own.get('') ?? '/');
      await access(base, constants.W_OK);
      const parent = join(base, GROUP);
      return { available: true, version: 2, memoryParent: parent, cpuParent: parent };
    }
    return { available: false, reason: `no cgroup memory/cpu controllers under ${root}` };
  } catch (err) {
    return { available: false, reason: `cgroups not writable: ${(err as Error).message}` };
  }
}

/** `/proc/<pid>/cgroup` → controller → path ('' is the v2 entry). */
export function parseProcCgroup(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line.trim());
    if (!m) continue;
    for (const c of m[1]!.split(',')) out.set(c, m[2]!);
  }
  return out;
}

/** Creates (or updates) the VM's cgroup with `limits`. */
export async function createVmCgroup(
  support: CgroupSupport,
  id: string,
  limits: VmCgroupLimits,
): Promise<VmCgroup> {
  if (!support.available) return { procsFiles: [], dirs: [] };
  const quota = Math.max(1000, Math.round(limits.cpus * CPU_PERIOD_US));
  if (support.version === 1) {
    const mem = join(support.memoryParent!, id);
    const cpu = join(support.cpuParent!, id);
    await mkdir(mem, { recursive: true });
    await mkdir(cpu, { recursive: true });
    await writeFile(join(mem, 'memory.limit_in_bytes'), String(limits.memoryBytes));
    await writeFile(join(cpu, 'cpu.cfs_period_us'), String(CPU_PERIOD_US));
    await writeFile(join(cpu, 'cpu.cfs_quota_us'), String(quota));
    return { procsFiles: [join(mem, 'cgroup.procs'), join(cpu, 'cgroup.procs')], dirs: [mem, cpu] };
  }
  // Controllers must be enabled on every level down to the VM's group; this fails (EBUSY) when
  // the parent's parent holds processes itself, i.e. it was not delegated with a leaf for them.
  const parent = support.memoryParent!;
  const dir = join(parent, id);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dirname(parent), 'cgroup.subtree_control'), '+memory +cpu');
  await writeFile(join(parent, 'cgroup.subtree_control'), '+memory +cpu');
  await writeFile(join(dir, 'memory.max'), String(limits.memoryBytes));
  await writeFile(join(dir, 'cpu.max'), `${quota} ${CPU_PERIOD_US}`);
  return { procsFiles: [join(dir, 'cgroup.procs')], dirs: [dir] };
}

/** Changes the CPU quota of a VM's cgroup (after a vCPU resize). */
export async function setVmCgroupCpus(support: CgroupSupport, id: string, cpus: number): Promise<void> {
  if (!support.available) return;
  const quota = Math.max(1000, Math.round(cpus * CPU_PERIOD_US));
  if (support.version === 1) await writeFile(join(support.cpuParent!, id, 'cpu.cfs_quota_us'), String(quota));
  else await writeFile(join(support.memoryParent!, id, 'cpu.max'), `${quota} ${CPU_PERIOD_US}`);
}

/** The VM's cgroup directories (whether or not they exist). */
export function vmCgroupDirs(support: CgroupSupport, id: string): string[] {
  if (!support.available) return [];
  if (support.version === 1) return [join(support.memoryParent!, id), join(support.cpuParent!, id)];
  return [join(support.memoryParent!, id)];
}

/**
 * Removes the VM's cgroup. Its processes must have exited; a just-killed process can take a
 * moment to leave, so removal is retried briefly. Idempotent.
 */
export async function removeVmCgroup(support: CgroupSupport, id: string): Promise<void> {
  for (const dir of vmCgroupDirs(support, id)) {
    for (let attempt = 0; ; attempt++) {
      try {
        await rmdir(dir);
        break;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') break;
        if (code !== 'EBUSY' || attempt >= 50) throw err;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }
  // The shared `yunhai` group goes too once its last VM is gone (fails harmlessly otherwise).
  const parents = new Set(vmCgroupDirs(support, id).map((d) => dirname(d)));
  for (const p of parents) await rmdir(p).catch(() => {});
}

/**
 * Wraps a command so that it joins the cgroup before exec: `sh -c` writes its own pid into each
 * `cgroup.procs` file, then execs the command (keeping that pid).
 */
export function joinCommand(
  cgroup: VmCgroup,
  command: string,
  args: string[],
): { command: string; args: string[] } {
  if (cgroup.procsFiles.length === 0) return { command, args };
  const script =
    'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 125; shift; n=$((n-1)); done; exec "$@"';
  return {
    command: '/bin/sh',
    args: [
      '-c',
      script,
      'yunhai-cgroup-join',
      String(cgroup.procsFiles.length),
      ...cgroup.procsFiles,
      command,
      ...args,
    ],
  };
}
