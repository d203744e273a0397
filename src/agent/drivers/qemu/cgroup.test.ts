import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  createVmCgroup,
  detectCgroups,
  joinCommand,
  parseProcCgroup,
  removeVmCgroup,
  setVmCgroupCpus,
} from './cgroup.js';

const execFileP = promisify(execFile);

// A directory tree standing in for /sys/fs/cgroup (real cgroupfs creates the control files itself;
// here the test creates the ones the code reads, and rmdir works on empty directories as in cgroupfs).
describe('cgroups', () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'yh-cg-'));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  const v1 = async () => {
    await mkdir(join(root, 'memory', 'agent'), { recursive: true });
    await mkdir(join(root, 'cpu'), { recursive: true });
    await writeFile(join(root, 'memory', 'memory.limit_in_bytes'), '');
    await writeFile(join(root, 'cpu', 'cpu.cfs_quota_us'), '');
  };

  it('parses /proc/self/cgroup for v1 controllers and the v2 entry', () => {
    const m = parseProcCgroup(
      '9:name=systemd:/\n4:memory:/process_api/abc\n1:cpu,cpuacct:/\n0::/user.slice\n',
    );
    expect(m.get('memory')).toBe('/process_api/abc');
    expect(m.get('cpu')).toBe('/');
    expect(m.get('cpuacct')).toBe('/');
    expect(m.get('')).toBe('/user.slice');
  });

  it('on v1 nests VM groups under the agent’s own memory and cpu cgroups', async () => {
    await v1();
    const support = await detectCgroups({ root, selfCgroup: '4:memory:/agent\n1:cpu:/\n' });
    expect(support).toEqual({
      available: true,
      version: 1,
      memoryParent: join(root, 'memory', 'agent', 'yunhai'),
      cpuParent: join(root, 'cpu', 'yunhai'),
    });
    const cg = await createVmCgroup(support, 'vm1', { memoryBytes: 556 * 1024 * 1024, cpus: 2 });
    expect(cg.procsFiles).toEqual([
      join(root, 'memory', 'agent', 'yunhai', 'vm1', 'cgroup.procs'),
      join(root, 'cpu', 'yunhai', 'vm1', 'cgroup.procs'),
    ]);
    expect(await readFile(join(root, 'memory/agent/yunhai/vm1/memory.limit_in_bytes'), 'utf8')).toBe(
      String(556 * 1024 * 1024),
    );
    expect(await readFile(join(root, 'cpu/yunhai/vm1/cpu.cfs_quota_us'), 'utf8')).toBe('200000');
    expect(await readFile(join(root, 'cpu/yunhai/vm1/cpu.cfs_period_us'), 'utf8')).toBe('100000');
    await setVmCgroupCpus(support, 'vm1', 3);
    expect(await readFile(join(root, 'cpu/yunhai/vm1/cpu.cfs_quota_us'), 'utf8')).toBe('300000');
  });

  it('removes the VM group and the shared parent once it is empty', async () => {
    await v1();
    const support = await detectCgroups({ root, selfCgroup: '' });
    await createVmCgroup(support, 'a', { memoryBytes: 1, cpus: 1 });
    await createVmCgroup(support, 'b', { memoryBytes: 1, cpus: 1 });
    // cgroupfs directories hold only kernel files; drop ours so rmdir behaves the same.
    for (const id of ['a', 'b']) {
      await rm(join(root, 'memory/yunhai', id, 'memory.limit_in_bytes'));
      for (const f of ['cpu.cfs_quota_us', 'cpu.cfs_period_us']) await rm(join(root, 'cpu/yunhai', id, f));
    }
    await removeVmCgroup(support, 'a');
    await expect(readFile(join(root, 'memory/yunhai/a'))).rejects.toThrow(/ENOENT/);
    await expect(readFile(join(root, 'memory/yunhai/b'))).rejects.toThrow(/EISDIR/);
    await removeVmCgroup(support, 'b');
    await expect(readFile(join(root, 'memory/yunhai'))).rejects.toThrow(/ENOENT/);
    await removeVmCgroup(support, 'b'); // idempotent
  });

  it('on v2 uses memory.max and cpu.max and enables the controllers down the tree', async () => {
    await writeFile(join(root, 'cgroup.controllers'), 'cpuset cpu io memory pids\n');
    await mkdir(join(root, 'agent.slice'));
    const support = await detectCgroups({ root, selfCgroup: '0::/agent.slice\n' });
    expect(support).toMatchObject({
      available: true,
      version: 2,
      memoryParent: join(root, 'agent.slice', 'yunhai'),
    });
    const cg = await createVmCgroup(support, 'vm1', { memoryBytes: 1024, cpus: 1.5 });
    expect(cg.procsFiles).toEqual([join(root, 'agent.slice/yunhai/vm1/cgroup.procs')]);
    expect(await readFile(join(root, 'agent.slice/yunhai/vm1/memory.max'), 'utf8')).toBe('1024');
    expect(await readFile(join(root, 'agent.slice/yunhai/vm1/cpu.max'), 'utf8')).toBe('150000 100000');
    expect(await readFile(join(root, 'agent.slice/cgroup.subtree_control'), 'utf8')).toBe('+memory +cpu');
  });

  it('reports cgroups unavailable when v2 lacks the controllers or nothing is mounted', async () => {
    await writeFile(join(root, 'cgroup.controllers'), 'hugetlb\n');
    expect(await detectCgroups({ root, selfCgroup: '' })).toMatchObject({ available: false });
    const empty = join(root, 'empty');
    await mkdir(empty);
    const none = await detectCgroups({ root: empty, selfCgroup: '' });
    expect(none.available).toBe(false);
    expect(none.reason).toMatch(/no cgroup/);
    // An unavailable support object makes every operation a no-op.
    expect(await createVmCgroup(none, 'x', { memoryBytes: 1, cpus: 1 })).toEqual({
      procsFiles: [],
      dirs: [],
    });
    await removeVmCgroup(none, 'x');
  });

  it('reports cgroups unavailable when the parent group cannot be written', async () => {
    await v1();
    const support = await detectCgroups({ root, parent: '/not-delegated', selfCgroup: '' });
    expect(support.available).toBe(false);
    expect(support.reason).toMatch(/not writable/);
  });

  it('joins the cgroup in the child before exec, keeping the pid', async () => {
    const procs = [join(root, 'a.procs'), join(root, 'b.procs')];
    const cmd = joinCommand({ procsFiles: procs, dirs: [] }, '/bin/sh', ['-c', 'echo $$']);
    const { stdout } = await execFileP(cmd.command, cmd.args);
    const pid = stdout.trim();
    expect(await readFile(procs[0]!, 'utf8')).toBe(`${pid}\n`);
    expect(await readFile(procs[1]!, 'utf8')).toBe(`${pid}\n`);
    expect(joinCommand({ procsFiles: [], dirs: [] }, 'qemu', ['-x'])).toEqual({
      command: 'qemu',
      args: ['-x'],
    });
  });
});
