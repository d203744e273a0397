import { describe, expect, it } from 'vitest';
import type { VmSpec } from '../../hypervisor.js';
import { buildQemuArgv, type QemuArgvInput, type QemuPaths, qemuOptValue } from './argv.js';

const D = '/d/instances/vm1';
const PATHS: QemuPaths = {
  qmpSocket: `${D}/qmp.sock`,
  consoleSocket: `${D}/console.sock`,
  consoleLog: `${D}/console.log`,
  pidFile: `${D}/qemu.pid`,
  rootDisk: `${D}/disk.qcow2`,
};

const SPEC: VmSpec = {
  id: 'vm1',
  name: 'web-1',
  vcpus: 1,
  maxVcpus: 1,
  memoryMiB: 256,
  maxMemoryMiB: 256,
  diskGiB: 1,
  boot: {
    kernel: { kernelPath: '/img/vmlinux', initrdPath: '/img/initrd.img', cmdline: 'console=ttyS0' },
    firmware: 'bios',
  },
};

const HEAD = (name: string, accel: string, cpu: string, smp: string) => [
  '-name',
  name,
  '-no-user-config',
  '-nodefaults',
  '-display',
  'none',
  '-no-shutdown',
  '-sandbox',
  'on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny',
  '-machine',
  'q35',
  '-accel',
  accel,
  '-cpu',
  cpu,
  '-smp',
  smp,
];
const KERNEL = ['-kernel', '/img/vmlinux', '-initrd', '/img/initrd.img', '-append', 'console=ttyS0'];
const IO = [
  '-qmp',
  `unix:${D}/qmp.sock,server=on,wait=off`,
  '-pidfile',
  `${D}/qemu.pid`,
  '-chardev',
  `socket,id=ser0,path=${D}/console.sock,server=on,wait=off,logfile=${D}/console.log,logappend=on`,
  '-serial',
  'chardev:ser0',
  '-drive',
  `if=none,id=root,format=qcow2,discard=unmap,file=${D}/disk.qcow2`,
  '-device',
  'virtio-blk-pci,drive=root,id=root-disk,bootindex=1',
];
const TAIL = [
  '-device',
  'virtio-balloon-pci,id=balloon0,free-page-reporting=on',
  '-device',
  'virtio-rng-pci,id=rng0',
];
const SMP1 = '1,sockets=1,dies=1,cores=1,threads=1,maxcpus=1';

const ROWS: Array<{ name: string; input: QemuArgvInput; expected: string[] }> = [
  {
    name: 'a kernel-boot VM under TCG with one vCPU',
    input: { spec: SPEC, accelerator: 'tcg', paths: PATHS },
    expected: [
      ...HEAD('guest=web-1,process=yunhai-vm1', 'tcg,thread=single,tb-size=16', 'max', SMP1),
      '-m',
      '256M',
      ...KERNEL,
      ...IO,
      ...TAIL,
    ],
  },
  {
    name: 'KVM uses the host CPU model and no translation cache',
    input: { spec: SPEC, accelerator: 'kvm', paths: PATHS },
    expected: [
      ...HEAD('guest=web-1,process=yunhai-vm1', 'kvm', 'host', SMP1),
      '-m',
      '256M',
      ...KERNEL,
      ...IO,
      ...TAIL,
    ],
  },
  {
    name: 'boots at the memory maximum and cold-plugs vCPUs beyond the first as unpluggable devices',
    input: {
      spec: { ...SPEC, vcpus: 3, maxVcpus: 4, memoryMiB: 512, maxMemoryMiB: 2048 },
      accelerator: 'tcg',
      paths: PATHS,
      tcgTbSizeMiB: 64,
    },
    expected: [
      ...HEAD(
        'guest=web-1,process=yunhai-vm1',
        'tcg,thread=single,tb-size=64',
        'max',
        '1,sockets=1,dies=1,cores=4,threads=1,maxcpus=4',
      ),
      '-device',
      'max-x86_64-cpu,id=vcpu1,socket-id=0,core-id=1,thread-id=0',
      '-device',
      'max-x86_64-cpu,id=vcpu2,socket-id=0,core-id=2,thread-id=0',
      '-m',
      '2048M',
      ...KERNEL,
      ...IO,
      ...TAIL,
    ],
  },
  {
    name: 'KVM cold-plugs host-model vCPUs',
    input: { spec: { ...SPEC, vcpus: 2, maxVcpus: 2 }, accelerator: 'kvm', paths: PATHS },
    expected: [
      ...HEAD(
        'guest=web-1,process=yunhai-vm1',
        'kvm',
        'host',
        '1,sockets=1,dies=1,cores=2,threads=1,maxcpus=2',
      ),
      '-device',
      'host-x86_64-cpu,id=vcpu1,socket-id=0,core-id=1,thread-id=0',
      '-m',
      '256M',
      ...KERNEL,
      ...IO,
      ...TAIL,
    ],
  },
  {
    name: 'a UEFI disk-image VM with a cloud-init seed gets pflash firmware and a read-only raw seed disk',
    input: {
      spec: {
        ...SPEC,
        boot: { diskImage: { path: '/img/debian.qcow2', format: 'qcow2' }, firmware: 'uefi' },
      },
      accelerator: 'tcg',
      paths: {
        ...PATHS,
        seedIso: `${D}/seed.iso`,
        ovmfCode: '/usr/share/OVMF/OVMF_CODE_4M.fd',
        ovmfVars: `${D}/ovmf-vars.fd`,
      },
    },
    expected: [
      ...HEAD('guest=web-1,process=yunhai-vm1', 'tcg,thread=single,tb-size=16', 'max', SMP1),
      '-m',
      '256M',
      '-drive',
      'if=pflash,unit=0,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd',
      '-drive',
      `if=pflash,unit=1,format=raw,file=${D}/ovmf-vars.fd`,
      ...IO,
      '-drive',
      `if=none,id=seed,format=raw,readonly=on,file=${D}/seed.iso`,
      '-device',
      'virtio-blk-pci,drive=seed,id=seed-disk',
      ...TAIL,
    ],
  },
  {
    name: 'an ISO boots from a read-only CD-ROM ahead of the blank root disk',
    input: {
      spec: { ...SPEC, boot: { diskImage: { path: '/img/install.iso', format: 'iso' }, firmware: 'bios' } },
      accelerator: 'tcg',
      paths: { ...PATHS, cdrom: '/img/install.iso' },
    },
    expected: [
      ...HEAD('guest=web-1,process=yunhai-vm1', 'tcg,thread=single,tb-size=16', 'max', SMP1),
      '-m',
      '256M',
      ...IO,
      '-drive',
      'if=none,id=cd0,format=raw,media=cdrom,readonly=on,file=/img/install.iso',
      '-device',
      'ide-cd,drive=cd0,bus=ide.0,id=cdrom,bootindex=0',
      ...TAIL,
    ],
  },
  {
    name: 'a kernel without initrd or cmdline passes only -kernel, and commas in names and paths are doubled',
    input: {
      spec: { ...SPEC, name: 'a,b', boot: { kernel: { kernelPath: '/img/vmlinuz' }, firmware: 'bios' } },
      accelerator: 'tcg',
      paths: { ...PATHS, rootDisk: '/d/x,y/disk.qcow2' },
    },
    expected: [
      ...HEAD('guest=a,,b,process=yunhai-vm1', 'tcg,thread=single,tb-size=16', 'max', SMP1),
      '-m',
      '256M',
      '-kernel',
      '/img/vmlinuz',
      ...IO.map((a) => (a.includes('disk.qcow2') ? a.replace(`${D}/disk.qcow2`, '/d/x,,y/disk.qcow2') : a)),
      ...TAIL,
    ],
  },
];

describe('buildQemuArgv', () => {
  it.each(ROWS)('$name', ({ input, expected }) => {
    expect(buildQemuArgv(input)).toEqual(expected);
  });

  it('starts a migration target paused, waiting for an incoming stream named later over QMP', () => {
    const argv = buildQemuArgv({ spec: SPEC, accelerator: 'tcg', paths: PATHS, incoming: true });
    const at = argv.indexOf('-incoming');
    expect(argv.slice(at - 1, at + 2)).toEqual(['-S', '-incoming', 'defer']);
    expect(buildQemuArgv({ spec: SPEC, accelerator: 'tcg', paths: PATHS })).not.toContain('-incoming');
    // Same virtual hardware otherwise: the migration stream only fits an identical machine.
    const plain = buildQemuArgv({ spec: SPEC, accelerator: 'tcg', paths: PATHS });
    expect(argv.filter((a) => a !== '-S' && a !== '-incoming' && a !== 'defer')).toEqual(plain);
  });

  it('refuses UEFI without firmware paths', () => {
    expect(() =>
      buildQemuArgv({
        spec: { ...SPEC, boot: { ...SPEC.boot, firmware: 'uefi' } },
        accelerator: 'tcg',
        paths: PATHS,
      }),
    ).toThrow(/UEFI/);
  });

  it('is pure: the same input gives the same argv and the input is not modified', () => {
    const input: QemuArgvInput = { spec: structuredClone(SPEC), accelerator: 'tcg', paths: { ...PATHS } };
    const frozen = structuredClone(input);
    expect(buildQemuArgv(input)).toEqual(buildQemuArgv(input));
    expect(input).toEqual(frozen);
  });

  it('escapes option values by doubling commas', () => {
    expect(qemuOptValue('/a,b,,c')).toBe('/a,,b,,,,c');
  });
});
