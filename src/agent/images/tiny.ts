/**
 * The tiny guest: a Debian kernel plus a busybox initramfs with our own init, built from Debian packages
 * on the host in a few seconds. It boots to a shell in ~2 s under TCG and is what the qemu driver uses to
 * probe accelerators, what tests boot, and a usable minimal VM image.
 *
 * Build (buildTinyImage): `apt-cache depends linux-image-cloud-amd64` (else linux-image-amd64) names the current kernel package
 * (`apt-get update` first if apt knows none) → `apt-get download` → `dpkg-deb -x` → `depmod -b` →
 * the uncompressed PVH `vmlinux` is cut out of the bzImage (QEMU's `-kernel vmlinux` skips the
 * real-mode setup and the decompressor: ~2.5 s faster under TCG; the zeros at the end of its load
 * segments are trimmed from the file) → the modules below plus their
 * dependencies (`modprobe -d … --show-depends`) → a newc cpio (our writer, gzip) with busybox-static and
 * the files of tiny-init.ts. ensureTinyImage caches the result under /var/tmp/yunhai-tiny, keyed by the
 * kernel package version and a hash of everything we put in (init scripts, module list, busybox).
 * Host needs: apt, dpkg, kmod, busybox-static, and xz-utils or python3 (Debian: all but busybox-static
 * are installed by default).
 *
 * Guest contract. Boot with `-kernel <kernelPath> -initrd <initrdPath> -append "<cmdline> [options]"`;
 * the default cmdline is `console=ttyS0 quiet panic=-1`. Attach the NoCloud seed (nocloud-seed.ts) as a
 * virtio disk; any /dev/vd* whose iso9660 label is `cidata` and that has `meta-data` is used.
 * Kernel command line options:
 *   yh.ip=ADDR/PREFIX  static IPv4 address on eth0; yh.gw=ADDR default route; yh.dns=A[,B] resolvers
 *   ip=dhcp            DHCP on eth0 with udhcpc (also when the seed's network-config asks for dhcp4/dhcp)
 * The guest prints these lines on the console (ttyS0), each at the start of a line as `NAME key=value …`
 * (the asynchronous ones after READY are preceded by an empty line, as they may interrupt the console
 * shell's prompt); keys may be added at the end in later versions, so parse by key:
 *   YUNHAI-BOOT uptime=<s> kernel=<uname -r>       init started (before modules load)
 *   YUNHAI-SEED dev=/dev/vdX instance-id=<id> files=<a,b,>   or `YUNHAI-SEED none`
 *   YUNHAI-NET iface=eth0 ip=<addr/prefix> gw=<gw> mode=static|dhcp   when an address is configured
 *   YUNHAI-USERDATA exit=<code> type=script|cloud-config|none|unsupported   after user-data ran
 *     `#!` scripts run as they are (output goes to the console); `#cloud-config` supports hostname,
 *     write_files (path, content, permissions, encoding b64/gz+b64, append) and runcmd; gzip-compressed
 *     user-data is unpacked first; anything else (MIME multipart, #include) is `unsupported` (exit=1).
 *   YUNHAI-READY cpus=<online> mem_kib=<MemTotal>  exactly once, when the guest is up
 *   YUNHAI-STATS cpus=<online> mem_kib=<MemTotal>  checked every second, printed only on change
 *     (hot-plugged CPUs are onlined automatically; balloon inflation lowers MemTotal)
 *   YUNHAI-POWEROFF reason=acpi                    the ACPI power button was pressed; powers off at once
 * Hostname: meta-data `local-hostname`, overridden by cloud-config `hostname:`. After READY, busybox init
 * runs a root shell on the console (respawned) and handles `poweroff`/`reboot` typed there. The guest
 * loads: button evdev virtio_pci virtio_blk virtio_net virtio_balloon virtio_console virtio_rng
 * 9pnet_virtio 9p (when the kernel has them: not the cloud kernel) virtiofs ext4 isofs
 * vmw_vsock_virtio_transport (mount 9p/virtiofs/ext4 yourself).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import {
  chmod,
  copyFile,
  mkdir,
  mkdtemp,
  open,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { commitTemp, fsyncDir, tempSibling, withFileLock, writeFileAtomic } from './atomic-fs.js';
import { buildCpioNewc, type CpioEntry } from './cpio-newc.js';
import { elfInfo, extractVmlinux, trimElfZeroTails } from './kernel-image.js';
import { CommandError, commandExists, pipeCommand, runCommand } from './run-command.js';
import { TINY_GUEST_FILES, TINY_MODULES, TINY_OPTIONAL_MODULES } from './tiny-init.js';

export interface TinyImage {
  /** Uncompressed ELF kernel with a PVH entry note: boot this with QEMU `-kernel`. */
  kernelPath: string;
  /** The same kernel as Debian ships it (bzImage), for boot paths that need one. */
  bzImagePath: string;
  initrdPath: string;
  /** Default kernel command line (`console=ttyS0 quiet panic=-1`); append guest options to it. */
  cmdline: string;
  /** `uname -r` of the kernel, e.g. `6.1.0-56-amd64`. */
  kernelVersion: string;
  /** Bytes on disk of vmlinux + bzImage + initrd. */
  sizeBytes: number;
  sha256: { kernel: string; initrd: string };
}

export interface BuildTinyImageOptions {
  /** Called as the build advances; `fraction` goes from 0 to 1. */
  onProgress?: (step: TinyBuildStep, fraction: number) => void;
}

export type TinyBuildStep =
  | 'resolve'
  | 'download'
  | 'unpack'
  | 'depmod'
  | 'kernel'
  | 'modules'
  | 'initramfs'
  | 'done';

export const TINY_CMDLINE = 'console=ttyS0 quiet panic=-1';
export const TINY_CACHE_DIR = '/var/tmp/yunhai-tiny';
/**
 * The Debian metapackages whose dependency names the current kernel package, in order of preference.
 * The cloud kernel is made for VMs: fewer built-in drivers, 12 MB less `.bss` (memory every guest
 * holds for its whole life) and an LZ4 payload; the generic kernel is the fallback.
 */
export const TINY_KERNEL_METAPACKAGES = ['linux-image-cloud-amd64', 'linux-image-amd64'] as const;
/** Bump when the builder changes what it produces in ways the recipe hash cannot see. */
const BUILDER_VERSION = 2;
const MANIFEST = 'image.json';
const FILES = { kernel: 'vmlinux', bzImage: 'vmlinuz', initrd: 'initrd.img' } as const;
const BUSYBOX_PATHS = ['/bin/busybox', '/usr/bin/busybox'];
const SBIN_PATH = '/usr/local/sbin:/usr/sbin:/sbin';
const APT_LISTS_DIR = '/var/lib/apt/lists';

export type TinyImageErrorCode = 'KernelNotFound' | 'ToolMissing' | 'InvalidKernel' | 'ModuleNotFound';

export class TinyImageError extends Error {
  readonly code: TinyImageErrorCode;
  constructor(code: TinyImageErrorCode, message: string) {
    super(message);
    this.name = 'TinyImageError';
    this.code = code;
  }
}

export interface KernelPackage {
  name: string;
  version: string;
}

interface Manifest {
  format: number;
  kernelPackage: string;
  kernelPackageVersion: string;
  kernelVersion: string;
  recipe: string;
  cmdline: string;
  files: typeof FILES;
  sizeBytes: number;
  sha256: { kernel: string; initrd: string };
  modules: string[];
  builtAt: string;
}

/** Builds the tiny image into `outDir` (created if needed): vmlinux, vmlinuz, initrd.img, image.json. */
export async function buildTinyImage(outDir: string, opts: BuildTinyImageOptions = {}): Promise<TinyImage> {
  const progress = opts.onProgress ?? (() => {});
  progress('resolve', 0);
  await requireTools();
  const busybox = await loadBusybox();
  const pkg = await resolveKernelPackage({ allowUpdate: true });
  return buildInto(outDir, pkg, busybox, progress);
}

/**
 * Returns the cached tiny image for the current kernel package and recipe, building it once if needed.
 * Safe to call concurrently, from one process (shared promise) or many (lock file; the build is
 * published by renaming a finished directory). If apt cannot name a kernel (no package lists, offline),
 * the newest cached image of the same recipe is used before anything touches the network.
 */
export function ensureTinyImage(cacheDir = TINY_CACHE_DIR): Promise<TinyImage> {
  const key = path.resolve(cacheDir);
  let pending = inflight.get(key);
  if (!pending) {
    pending = ensureUncached(key).finally(() => inflight.delete(key));
    inflight.set(key, pending);
  }
  return pending;
}

const inflight = new Map<string, Promise<TinyImage>>();

async function ensureUncached(cacheDir: string): Promise<TinyImage> {
  await mkdir(cacheDir, { recursive: true });
  const busybox = await loadBusybox();
  const recipe = recipeHash(busybox.sha256);
  let pkg = await rememberedKernelPackage(cacheDir);
  if (pkg) {
    const hit = await loadTinyImage(path.join(cacheDir, cacheEntryName(pkg, recipe)));
    if (hit) return hit;
  } else {
    const hit = await newestCached(cacheDir, recipe);
    if (hit) return hit;
  }
  return withFileLock(path.join(cacheDir, '.lock'), async () => {
    pkg ??= await resolveKernelPackage({ allowUpdate: true });
    const final = path.join(cacheDir, cacheEntryName(pkg, recipe));
    const hit = await loadTinyImage(final);
    if (hit) return hit;
    await requireTools();
    await removeAbandonedBuilds(cacheDir);
    const tmp = await mkdtemp(path.join(cacheDir, '.build-'));
    try {
      await buildInto(tmp, pkg, busybox, () => {});
      await chmod(tmp, 0o755); // mkdtemp made it private; the image is for every local user
      await rename(tmp, final);
    } catch (e) {
      await rm(tmp, { recursive: true, force: true });
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOTEMPTY' || code === 'EEXIST') {
        const other = await loadTinyImage(final);
        if (other) return other;
      }
      throw e;
    }
    await fsyncDir(cacheDir);
    await pruneOldEntries(cacheDir, path.basename(final));
    const built = await loadTinyImage(final);
    if (!built) throw new Error(`tiny image in ${final} is unreadable right after building it`);
    return built;
  });
}

/** Reads a built image directory; null if it is missing or incomplete. */
export async function loadTinyImage(dir: string): Promise<TinyImage | null> {
  let manifest: Manifest;
  try {
    manifest = JSON.parse(await readFile(path.join(dir, MANIFEST), 'utf8')) as Manifest;
  } catch {
    return null;
  }
  if (manifest.format !== BUILDER_VERSION) return null;
  const image: TinyImage = {
    kernelPath: path.join(dir, manifest.files.kernel),
    bzImagePath: path.join(dir, manifest.files.bzImage),
    initrdPath: path.join(dir, manifest.files.initrd),
    cmdline: manifest.cmdline,
    kernelVersion: manifest.kernelVersion,
    sizeBytes: manifest.sizeBytes,
    sha256: manifest.sha256,
  };
  try {
    const sizes = await Promise.all(
      [image.kernelPath, image.bzImagePath, image.initrdPath].map((f) => stat(f)),
    );
    if (sizes.reduce((sum, s) => sum + s.size, 0) !== manifest.sizeBytes) return null;
  } catch {
    return null;
  }
  return image;
}

/**
 * The kernel package the first of TINY_KERNEL_METAPACKAGES that apt knows depends on, from apt's
 * local lists; null if apt knows none.
 */
export async function findKernelPackage(): Promise<KernelPackage | null> {
  const env = toolEnv();
  for (const meta of TINY_KERNEL_METAPACKAGES) {
    const depends = await runCommand('apt-cache', ['depends', meta], { env }).catch(() => '');
    const name = parseAptDepends(depends);
    if (!name) continue;
    const show = await runCommand('apt-cache', ['show', '--no-all-versions', name], { env }).catch(() => '');
    const version = /^Version:\s*(\S+)/m.exec(show)?.[1];
    if (version) return { name, version };
  }
  return null;
}

/**
 * findKernelPackage, remembered in the cache directory until apt's package lists change: apt-cache
 * parses all lists on every call (1-2 s), which a cache hit should not pay.
 */
async function rememberedKernelPackage(cacheDir: string): Promise<KernelPackage | null> {
  const stamp = await aptListsStamp();
  const memo = path.join(cacheDir, '.kernel-package.json');
  if (stamp) {
    try {
      const saved = JSON.parse(await readFile(memo, 'utf8')) as KernelPackage & {
        stamp: string;
        from?: string;
      };
      if (saved.stamp === stamp && saved.from === TINY_KERNEL_METAPACKAGES.join(' '))
        return { name: saved.name, version: saved.version };
    } catch {}
  }
  const pkg = await findKernelPackage();
  if (pkg && stamp)
    await writeFileAtomic(
      memo,
      `${JSON.stringify({ ...pkg, stamp, from: TINY_KERNEL_METAPACKAGES.join(' ') })}\n`,
    );
  return pkg;
}

/** Changes whenever `apt-get update` changes a package list; null if there are none. */
async function aptListsStamp(): Promise<string | null> {
  const dir = APT_LISTS_DIR;
  const names = (await readdir(dir).catch(() => [] as string[]))
    .filter((n) => n.includes('_Packages'))
    .sort();
  if (names.length === 0) return null;
  const parts = await Promise.all(
    names.map(async (n) => {
      const s = await stat(path.join(dir, n));
      return `${n} ${s.size} ${s.mtimeMs}`;
    }),
  );
  return createHash('sha256').update(parts.join('\n')).digest('hex');
}

async function resolveKernelPackage(opts: { allowUpdate: boolean }): Promise<KernelPackage> {
  const found = await findKernelPackage();
  if (found) return found;
  if (opts.allowUpdate) {
    await runCommand('apt-get', ['update'], { env: toolEnv() });
    const again = await findKernelPackage();
    if (again) return again;
  }
  throw new TinyImageError(
    'KernelNotFound',
    `apt knows no package behind ${TINY_KERNEL_METAPACKAGES.join(' or ')} (is this a Debian host with package lists?)`,
  );
}

/** `Depends: linux-image-6.1.0-56-amd64` from `apt-cache depends linux-image-amd64`. */
export function parseAptDepends(text: string): string | null {
  return /^\s*\|?Depends:\s*(linux-image-\d\S*)/m.exec(text)?.[1] ?? null;
}

/** Module files (`insmod` lines, in load order) and built-ins from `modprobe --show-depends`. */
export function parseShowDepends(text: string): { files: string[]; builtin: string[] } {
  const files: string[] = [];
  const builtin: string[] = [];
  for (const line of text.split('\n')) {
    const [verb, arg] = line.trim().split(/\s+/);
    if (verb === 'insmod' && arg) files.push(arg);
    else if (verb === 'builtin' && arg) builtin.push(arg);
  }
  return { files, builtin };
}

/** Identifies what we put into the image besides the kernel package. */
export function recipeHash(busyboxSha256: string): string {
  return createHash('sha256')
    .update(
      JSON.stringify({
        builder: BUILDER_VERSION,
        files: TINY_GUEST_FILES,
        modules: TINY_MODULES,
        cmdline: TINY_CMDLINE,
        busybox: busyboxSha256,
      }),
    )
    .digest('hex');
}

export function cacheEntryName(pkg: KernelPackage, recipe: string): string {
  return `${pkg.name}_${pkg.version}-${recipe.slice(0, 12)}`.replace(/[^A-Za-z0-9._+-]/g, '_');
}

async function newestCached(cacheDir: string, recipe: string): Promise<TinyImage | null> {
  const suffix = `-${recipe.slice(0, 12)}`;
  let best: { image: TinyImage; mtime: number } | null = null;
  for (const name of await readdir(cacheDir).catch(() => [] as string[])) {
    if (name.startsWith('.') || !name.endsWith(suffix)) continue;
    const dir = path.join(cacheDir, name);
    const image = await loadTinyImage(dir);
    if (!image) continue;
    const mtime = (await stat(path.join(dir, MANIFEST))).mtimeMs;
    if (!best || mtime > best.mtime) best = { image, mtime };
  }
  return best?.image ?? null;
}

/**
 * Removes other cached images (older kernels or recipes) untouched for a day. Running VMs are not
 * affected: QEMU reads the kernel and initrd into guest memory at start.
 */
async function pruneOldEntries(cacheDir: string, keep: string): Promise<void> {
  const cutoff = Date.now() - 24 * 3600_000;
  for (const name of await readdir(cacheDir)) {
    if (name.startsWith('.') || name === keep) continue;
    const dir = path.join(cacheDir, name);
    const mtime = await stat(path.join(dir, MANIFEST)).then(
      (s) => s.mtimeMs,
      () => 0,
    );
    if (mtime < cutoff) await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Removes `.build-*` directories left by builders that died. Only old ones: in the rare case that two
 * processes both took over a stale lock, the other one's build is still running.
 */
async function removeAbandonedBuilds(cacheDir: string): Promise<void> {
  const cutoff = Date.now() - 3600_000;
  for (const name of await readdir(cacheDir)) {
    if (!name.startsWith('.build-')) continue;
    const dir = path.join(cacheDir, name);
    const mtime = await stat(dir).then(
      (s) => s.mtimeMs,
      () => 0,
    );
    if (mtime < cutoff) await rm(dir, { recursive: true, force: true });
  }
}

function toolEnv(): NodeJS.ProcessEnv {
  return {
    ...process.env,
    PATH: `${process.env.PATH ?? '/usr/bin:/bin'}:${SBIN_PATH}`,
    DEBIAN_FRONTEND: 'noninteractive',
    LC_ALL: 'C',
  };
}

async function requireTools(): Promise<void> {
  const needs: [string, string][] = [
    ['apt-cache', 'apt'],
    ['apt-get', 'apt'],
    ['dpkg-deb', 'dpkg'],
    ['depmod', 'kmod'],
    ['modprobe', 'kmod'],
  ];
  const searchPath = toolEnv().PATH;
  const missing: string[] = [];
  for (const [cmd, pkg] of needs)
    if (!(await commandExists(cmd, searchPath))) missing.push(`${cmd} (${pkg})`);
  if (!(await commandExists('xz')) && !(await commandExists('python3')))
    missing.push('xz (xz-utils) or python3');
  if (missing.length > 0) {
    throw new TinyImageError('ToolMissing', `building the tiny image needs: ${missing.join(', ')}`);
  }
}

interface Busybox {
  data: Buffer;
  sha256: string;
  /** Applet paths relative to /, e.g. `bin/sh`, `sbin/ifconfig`. */
  applets: string[];
}

async function loadBusybox(): Promise<Busybox> {
  for (const p of BUSYBOX_PATHS) {
    let data: Buffer;
    try {
      data = await readFile(p);
    } catch {
      continue;
    }
    if (elfInfo(data).dynamic) continue; // Debian's `busybox` package: needs libc, useless in an initramfs
    const list = await runCommand(p, ['--list-full']);
    const applets = list
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && l !== 'bin/busybox');
    return { data, sha256: createHash('sha256').update(data).digest('hex'), applets };
  }
  throw new TinyImageError(
    'ToolMissing',
    'a static busybox is needed (Debian: apt-get install busybox-static)',
  );
}

async function buildInto(
  outDir: string,
  pkg: KernelPackage,
  busybox: Busybox,
  progress: (step: TinyBuildStep, fraction: number) => void,
): Promise<TinyImage> {
  await mkdir(outDir, { recursive: true });
  const env = toolEnv();
  const work = await mkdtemp(path.join(os.tmpdir(), 'yunhai-tiny-'));
  try {
    progress('download', 0.05);
    const deb = await downloadPackage(pkg, work, env);

    progress('unpack', 0.3);
    const root = path.join(work, 'root');
    await runCommand('dpkg-deb', ['-x', deb, root], { env });
    const kernelVersion = await findModulesVersion(root);

    progress('depmod', 0.5);
    await runCommand('depmod', ['-b', root, kernelVersion], { env });

    progress('kernel', 0.55);
    const bzImagePath = path.join(outDir, FILES.bzImage);
    const bzTmp = tempSibling(bzImagePath);
    await copyFile(path.join(root, 'boot', `vmlinuz-${kernelVersion}`), bzTmp);
    await syncFile(bzTmp);
    await commitTemp(bzTmp, bzImagePath);
    const kernelPath = path.join(outDir, FILES.kernel);
    const vmTmp = tempSibling(kernelPath);
    try {
      await extractVmlinux(bzImagePath, vmTmp);
      // The PVH note can sit anywhere in the 50+ MB file, so read all of it.
      const elf = await readFile(vmTmp);
      if (elfInfo(elf).pvhEntry === null) {
        throw new TinyImageError('InvalidKernel', `${pkg.name}: the kernel has no PVH entry note`);
      }
      // QEMU keeps the loaded segments mapped from this file for resets: no zeros there (-20 MB RSS/VM).
      if (trimElfZeroTails(elf) > 0) await writeFile(vmTmp, elf);
      await syncFile(vmTmp);
    } catch (e) {
      await rm(vmTmp, { force: true });
      throw e instanceof RangeError ? new TinyImageError('InvalidKernel', `${pkg.name}: ${e.message}`) : e;
    }
    await commitTemp(vmTmp, kernelPath);

    progress('modules', 0.75);
    const modules = await collectModules(root, kernelVersion, work, env);

    progress('initramfs', 0.85);
    const cpio = buildCpioNewc(initramfsEntries(kernelVersion, busybox, modules));
    const initrdPath = path.join(outDir, FILES.initrd);
    await writeFileAtomic(initrdPath, gzipSync(cpio));

    const [kernelSha, initrdSha, sizes] = await Promise.all([
      sha256File(kernelPath),
      sha256File(initrdPath),
      Promise.all([kernelPath, bzImagePath, initrdPath].map((f) => stat(f))),
    ]);
    const manifest: Manifest = {
      format: BUILDER_VERSION,
      kernelPackage: pkg.name,
      kernelPackageVersion: pkg.version,
      kernelVersion,
      recipe: recipeHash(busybox.sha256),
      cmdline: TINY_CMDLINE,
      files: FILES,
      sizeBytes: sizes.reduce((sum, s) => sum + s.size, 0),
      sha256: { kernel: kernelSha, initrd: initrdSha },
      modules: modules.map((m) => m.name),
      builtAt: new Date().toISOString(),
    };
    await writeFileAtomic(path.join(outDir, MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
    progress('done', 1);
    return {
      kernelPath,
      bzImagePath,
      initrdPath,
      cmdline: manifest.cmdline,
      kernelVersion,
      sizeBytes: manifest.sizeBytes,
      sha256: manifest.sha256,
    };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

async function downloadPackage(pkg: KernelPackage, dir: string, env: NodeJS.ProcessEnv): Promise<string> {
  const spec = `${pkg.name}=${pkg.version}`;
  try {
    await runCommand('apt-get', ['download', spec], { cwd: dir, env });
  } catch (e) {
    // Stale package lists point at files the mirror no longer has.
    if (!(e instanceof CommandError)) throw e;
    await runCommand('apt-get', ['update'], { env });
    await runCommand('apt-get', ['download', spec], { cwd: dir, env });
  }
  const deb = (await readdir(dir)).find((f) => f.endsWith('.deb'));
  if (!deb) throw new TinyImageError('KernelNotFound', `apt-get download ${spec} produced no .deb`);
  return path.join(dir, deb);
}

/** The one `lib/modules/<version>` directory of the unpacked kernel package. */
async function findModulesVersion(root: string): Promise<string> {
  let base = path.join(root, 'lib', 'modules');
  const usrBase = path.join(root, 'usr', 'lib', 'modules');
  try {
    await stat(base);
  } catch {
    // Kernels installed under /usr/lib/modules (merged /usr): depmod -b looks in lib/modules.
    await mkdir(path.join(root, 'lib'), { recursive: true });
    await symlink(path.relative(path.dirname(base), usrBase), base);
    base = usrBase;
  }
  const versions = (await readdir(base)).filter((v) => /^\d/.test(v));
  if (versions.length !== 1) {
    throw new TinyImageError(
      'InvalidKernel',
      `expected one kernel in the package, found: ${versions.join(', ')}`,
    );
  }
  return versions[0]!;
}

interface Module {
  /** File name inside /lib/modules/<version>/, uncompressed (`virtio_blk.ko`). */
  name: string;
  data: Buffer;
}

async function collectModules(root: string, kernelVersion: string, work: string, env: NodeJS.ProcessEnv) {
  const files: string[] = [];
  for (const mod of TINY_MODULES) {
    let out: string;
    try {
      out = await runCommand('modprobe', ['-d', root, '-S', kernelVersion, '--show-depends', mod], { env });
    } catch (e) {
      if (TINY_OPTIONAL_MODULES.includes(mod)) continue;
      throw new TinyImageError(
        'ModuleNotFound',
        `kernel ${kernelVersion} has no module ${mod}: ${(e as Error).message}`,
      );
    }
    for (const f of parseShowDepends(out).files) if (!files.includes(f)) files.push(f);
  }
  const modules: Module[] = [];
  for (const file of files) {
    const name = path.basename(file).replace(/\.(xz|gz|zst)$/, '');
    if (modules.some((m) => m.name === name))
      throw new TinyImageError('InvalidKernel', `two modules named ${name}`);
    modules.push({ name, data: await readModule(file, work) });
  }
  return modules;
}

/** Module bytes, decompressed: busybox insmod cannot be relied on to read .ko.xz/.ko.zst. */
async function readModule(file: string, work: string): Promise<Buffer> {
  const data = await readFile(file);
  if (file.endsWith('.ko')) return data;
  if (file.endsWith('.gz')) return gunzipSync(data);
  const tool = file.endsWith('.xz') ? 'xz' : file.endsWith('.zst') ? 'zstd' : null;
  if (!tool || !(await commandExists(tool))) {
    throw new TinyImageError('ToolMissing', `cannot decompress module ${path.basename(file)}`);
  }
  const out = path.join(work, 'module.tmp');
  await pipeCommand(tool, ['-dc'], data, out);
  return readFile(out);
}

function initramfsEntries(kernelVersion: string, busybox: Busybox, modules: Module[]): CpioEntry[] {
  const entries: CpioEntry[] = [];
  for (const dir of [
    'bin',
    'sbin',
    'usr/bin',
    'usr/sbin',
    'etc',
    'proc',
    'sys',
    'dev',
    'run',
    'mnt',
    'var/log',
  ]) {
    entries.push({ type: 'dir', path: dir });
  }
  entries.push({ type: 'dir', path: 'tmp', mode: 0o1777 }, { type: 'dir', path: 'root', mode: 0o700 });
  // The kernel opens /dev/console for init's stdio before anything is mounted.
  entries.push(
    { type: 'chardev', path: 'dev/console', major: 5, minor: 1 },
    { type: 'chardev', path: 'dev/null', major: 1, minor: 3, mode: 0o666 },
  );
  entries.push({ type: 'file', path: 'bin/busybox', data: busybox.data, mode: 0o755 });
  const ours = new Set(TINY_GUEST_FILES.map((f) => f.path));
  const seen = new Set<string>();
  for (const applet of busybox.applets) {
    if (ours.has(applet) || seen.has(applet)) continue;
    seen.add(applet);
    entries.push({ type: 'symlink', path: applet, target: '/bin/busybox' });
  }
  for (const f of TINY_GUEST_FILES)
    entries.push({ type: 'file', path: f.path, data: f.content, mode: f.mode });
  entries.push({ type: 'dir', path: `lib/modules/${kernelVersion}` });
  for (const m of modules) {
    entries.push({ type: 'file', path: `lib/modules/${kernelVersion}/${m.name}`, data: m.data, mode: 0o644 });
  }
  entries.push({
    type: 'file',
    path: 'etc/yunhai/modules',
    data: modules.map((m) => `${m.name}\n`).join(''),
    mode: 0o644,
  });
  return entries;
}

async function syncFile(file: string): Promise<void> {
  const fh = await open(file, 'r+');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

function sha256File(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(file)
      .on('error', reject)
      .on('data', (d) => hash.update(d))
      .on('end', () => resolve(hash.digest('hex')));
  });
}
