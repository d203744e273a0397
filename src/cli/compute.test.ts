import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFakeDriver } from '../agent/drivers/fake/fake-driver.js';
import { cliAgainst } from '../test-support/cli.js';
import { startTestControlPlane, type TestControlPlane } from '../test-support/control-plane.js';
import { ApiClient } from './client.js';
import { buildTinyAndImport, loadTinyBuilder, type TinyBuilder } from './commands/image.js';
import { captureIo } from './context.js';
import { Printer } from './output.js';
import { barProgress, fractionBar, renderBar, statusProgress } from './progress.js';
import { runCli } from './run.js';
import { formatMiB, parseMemoryMiB } from './units.js';

/** An OpenSSH `ssh-ed25519 AAAA…` line: the blob is the key type and the 32-byte key, each uint32-length-prefixed. */
function sshEd25519PublicKey(comment = 'test@yunhai'): string {
  const { publicKey } = generateKeyPairSync('ed25519');
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url');
  expect(raw.length).toBe(32);
  const field = (b: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(b.length);
    return Buffer.concat([len, b]);
  };
  const blob = Buffer.concat([field(Buffer.from('ssh-ed25519')), field(raw)]);
  return `ssh-ed25519 ${blob.toString('base64')} ${comment}`;
}

const lines = (s: string) => s.split('\n').filter((l) => l !== '');

describe('yunhai compute, image, flavor, keypair and host commands (fake driver)', () => {
  let cp: TestControlPlane;
  let tmp: string;
  let env: NodeJS.ProcessEnv;
  let instanceId: string;
  let cli: ReturnType<typeof cliAgainst>;
  const yh = (...argv: string[]) => cli.yh(...argv);
  const json = <T>(...argv: string[]) => cli.json<T>(...argv);

  beforeAll(async () => {
    const driver = createFakeDriver({
      bootMs: 50,
      failStartFor: (spec) => (spec.name === 'doomed' ? 'no room for doomed on this host' : undefined),
    });
    cp = await startTestControlPlane({
      localAgent: { driver, heartbeatMs: 200, name: 'fake-host-1' },
    });
    expect(await cp.agent()).not.toBeNull();
    cli = cliAgainst(cp, 'yunhai-cli-compute-');
    ({ tmp, env } = cli);
    // The fake driver never reads the kernel and initrd; any bytes do.
    mkdirSync(join(tmp, 'boot'));
    writeFileSync(join(tmp, 'boot', 'vmlinuz'), randomBytes(4096));
    writeFileSync(join(tmp, 'boot', 'initrd'), randomBytes(2048));
  });

  afterAll(async () => {
    await cp?.stop();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('imports a kernel image from relative paths and waits until it is available', async () => {
    const r = await yh(
      'image',
      'import',
      'tiny',
      '--format',
      'kernel',
      '--kernel',
      'boot/vmlinuz',
      '--initrd',
      './boot/initrd',
      '--cmdline',
      'console=ttyS0',
      '--public',
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Imported image tiny \(img-[a-z0-9]{12}\): kernel, 6 KiB, public\.\n$/);
    // Not a terminal: one line per status.
    expect(r.stderr).toMatch(/^tiny \(img-[a-z0-9]{12}\): importing \(\d+s\)\n/);
    expect(r.stderr).toMatch(/^tiny \(img-[a-z0-9]{12}\): available \(\d+s\)$/m);

    const list = await yh('image', 'list');
    expect(lines(list.stdout)[0]).toMatch(
      /^ID\s+NAME\s+STATUS\s+FORMAT\s+VISIBILITY\s+OS\s+SIZE\s+MIN DISK\s+CREATED$/,
    );
    expect(list.stdout).toMatch(/^img-\w+\s+tiny\s+available\s+kernel\s+public\s+linux\s+6 KiB\s+1 GiB\s/m);

    const shown = await json<{ id: string; status: string; files: Record<string, { size: number }> }>(
      'image',
      'show',
      'tiny',
    );
    expect(shown).toMatchObject({
      status: 'available',
      files: { kernel: { size: 4096 }, initrd: { size: 2048 } },
    });
    const text = await yh('image', 'show', shown.id);
    expect(text.stdout).toMatch(/^cmdline\s+console=ttyS0$/m);
    expect(text.stdout).toMatch(/^kernel\s+4 KiB, sha256 [0-9a-f]{64}$/m);
  });

  it('reports a failed import with its reason and exit 1, and checks the source flags', async () => {
    const r = await yh('image', 'import', 'broken', '--format', 'kernel', '--kernel', 'boot/missing');
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(
      /^yunhai: image broken \(img-\w+\) failed to import: No such file on the control-plane host: \/.+\/boot\/missing\.\n$/m,
    );
    const noKernel = await yh('image', 'import', 'x', '--format', 'kernel', '--disk', 'a.img');
    expect(noKernel.code).toBe(2);
    expect(noKernel.stderr).toBe(
      'yunhai: --format kernel needs --kernel (and optionally --initrd, --cmdline)\n',
    );
    const noDisk = await yh('image', 'import', 'x', '--format', 'qcow2', '--kernel', 'k');
    expect(noDisk.code).toBe(2);
    expect(noDisk.stderr).toBe('yunhai: --format qcow2 needs --disk PATH_OR_URL\n');
    const badFormat = await yh('image', 'import', 'x', '--format', 'vmdk', '--disk', 'a');
    expect(badFormat.code).toBe(2);
    expect(badFormat.stderr).toContain('--format must be one of qcow2, raw, iso, kernel.');

    const failed = await json<{ items: { id: string }[] }>('image', 'list', '--status', 'error');
    expect(failed.items).toHaveLength(1);
    expect((await yh('image', 'delete', 'broken')).code).toBe(2);
    const del = await yh('image', 'delete', 'broken', '--yes');
    expect(del.code).toBe(0);
    expect(del.stdout).toBe(`Deleted image broken (${failed.items[0]!.id}).\n`);
  });

  it('lists the default flavors, creates one with sizes and deletes it', async () => {
    const list = await yh('flavor', 'list');
    expect(list.code).toBe(0);
    expect(lines(list.stdout)[0]).toMatch(
      /^NAME\s+VCPUS\s+MEMORY\s+DISK\s+MAX VCPUS\s+MAX MEMORY\s+VISIBILITY\s+ID$/,
    );
    expect(list.stdout).toMatch(/^tiny\.small\s+1\s+256MiB\s+1GiB\s+2\s+512MiB\s+public\s+flv-\w+$/m);

    const created = await yh(
      'flavor',
      'create',
      'c1.custom',
      '--vcpus',
      '2',
      '--memory',
      '1.5GiB',
      '--disk',
      '10GiB',
      '--max-vcpus',
      '4',
      '--max-memory',
      '3GiB',
    );
    expect(created.code).toBe(0);
    expect(created.stdout).toMatch(
      /^Created flavor c1\.custom \(flv-\w+\): 2 vCPU \(max 4\), 1\.5GiB \(max 3GiB\), 10GiB disk\.\n$/,
    );
    const flavors = await json<{ items: { name: string; memoryMiB: number; maxMemoryMiB: number }[] }>(
      'flavor',
      'list',
    );
    expect(flavors.items.find((f) => f.name === 'c1.custom')).toMatchObject({
      memoryMiB: 1536,
      maxMemoryMiB: 3072,
    });
    const bad = await yh('flavor', 'create', 'x', '--vcpus', '1', '--memory', 'lots', '--disk', '1');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--memory takes a size like 512MiB');
    expect((await yh('flavor', 'delete', 'c1.custom', '--yes')).stdout).toBe('Deleted flavor c1.custom.\n');
    const after = await json<{ items: { name: string }[] }>('flavor', 'list');
    expect(after.items.map((f) => f.name)).not.toContain('c1.custom');
  });

  it('creates an instance and shows each state change until it is running with its guest ready', async () => {
    writeFileSync(join(tmp, 'init.sh'), '#!/bin/sh\necho hello-from-user-data\n');
    const r = await yh(
      'instance',
      'create',
      'web-1',
      '--image',
      'tiny',
      '--flavor',
      'tiny.small',
      '--user-data',
      'init.sh',
    );
    expect(r.code).toBe(0);
    const m =
      /^Instance web-1 \((i-[a-z0-9]{12})\) is running on host (host-\w+) \(1 vCPU, 256MiB\); ready after \d+ s\.\n$/.exec(
        r.stdout,
      );
    expect(m).not.toBeNull();
    instanceId = m![1]!;
    const progress = lines(r.stderr);
    expect(progress[0]).toBe(`web-1 (${instanceId}): building (0s)`);
    expect(progress.at(-1)).toMatch(new RegExp(`^web-1 \\(${instanceId}\\): running \\(\\d+s\\)$`));
    // No status is printed twice in a row.
    expect(new Set(progress).size).toBe(progress.length);
  });

  it('lists and shows instances as tables and JSON, by id or by name', async () => {
    const list = await yh('instance', 'list');
    expect(list.code).toBe(0);
    expect(lines(list.stdout)[0]).toMatch(/^ID\s+NAME\s+STATE\s+VCPUS\s+MEMORY\s+DISK\s+HOST\s+CREATED$/);
    expect(list.stdout).toMatch(
      new RegExp(`^${instanceId}\\s+web-1\\s+running\\s+1\\s+256MiB\\s+1GiB\\s+host-\\w+\\s`, 'm'),
    );
    const running = await json<{ items: { id: string }[]; nextCursor: string | null }>(
      'instance',
      'list',
      '--state',
      'running',
      '--all',
    );
    expect(running.items.map((i) => i.id)).toEqual([instanceId]);
    expect(running.nextCursor).toBeNull();
    const stopped = await yh('instance', 'list', '--state', 'stopped');
    expect(stopped.stderr).toBe('No instances found.\n');

    const shown = await yh('instance', 'show', 'web-1');
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(new RegExp(`^id\\s+${instanceId}$`, 'm'));
    expect(shown.stdout).toMatch(/^state\s+running$/m);
    expect(shown.stdout).toMatch(/^image\s+tiny \(img-\w+\)$/m);
    expect(shown.stdout).toMatch(/^flavor\s+tiny\.small \(flv-\w+\)$/m);
    expect(shown.stdout).toMatch(/^memory\s+256MiB \(max 512MiB\)$/m);
    expect(shown.stdout).toMatch(/^guest ready\s+yes$/m);
    const asJson = await json<{ id: string; state: string; guestReady: boolean }>(
      'instance',
      'show',
      instanceId,
    );
    expect(asJson).toMatchObject({ id: instanceId, state: 'running', guestReady: true });
  });

  it('prints the serial console from the start, and the tail with --tail', async () => {
    // The agent mirrors the console every 500 ms.
    let out = '';
    for (let i = 0; i < 40 && !out.includes('YUNHAI-READY'); i++) {
      const r = await yh('instance', 'console', 'web-1');
      expect(r.code).toBe(0);
      out = r.stdout;
      if (!out.includes('YUNHAI-READY')) await new Promise((res) => setTimeout(res, 100));
    }
    expect(out.startsWith('YUNHAI-BOOT\r\n')).toBe(true);
    expect(out).toContain('hello-from-user-data\r\nYUNHAI-USERDATA exit=0\r\n');
    expect(out).toContain('YUNHAI-READY cpus=1 mem_kib=262144\r\n');
    const tail = await yh('instance', 'console', instanceId, '--tail');
    expect(tail.code).toBe(0);
    expect(tail.stdout).toBe(out); // less than 16 KiB: the tail is everything
  });

  it('shows the host with the fake accelerator and its allocation', async () => {
    const list = await yh('host', 'list');
    expect(list.code).toBe(0);
    expect(lines(list.stdout)[0]).toMatch(
      /^NAME\s+ID\s+STATE\s+ENABLED\s+ZONE\s+ACCEL\s+INSTANCES\s+VCPUS\s+MEMORY\s+DISK\s+HEARTBEAT$/,
    );
    expect(list.stdout).toMatch(
      /^fake-host-1\s+host-\w+\s+up\s+yes\s+default\s+fake\s+1\s+1\/64 ░{6}\s+256MiB\/256GiB ░{6}\s+1GiB\/4TiB ░{6}\s+\d{4}-/m,
    );
    const hosts = await json<{ items: { id: string; accelerator: string }[] }>('host', 'list');
    expect(hosts.items).toHaveLength(1);
    expect(hosts.items[0]!.accelerator).toBe('fake');
    const hostId = hosts.items[0]!.id;

    const shown = await yh('host', 'show', 'fake-host-1');
    expect(shown.stdout).toMatch(/^accelerator\s+fake$/m);
    expect(shown.stdout).toMatch(/^vcpus\s+1\/64 ░{6} 2%$/m);
    expect((await yh('host', 'disable', hostId)).stdout).toBe(`Disabled host fake-host-1 (${hostId}).\n`);
    expect((await json<{ enabled: boolean }>('host', 'show', hostId)).enabled).toBe(false);
    expect((await yh('host', 'enable', 'fake-host-1')).stdout).toBe(
      `Enabled host fake-host-1 (${hostId}).\n`,
    );

    const token = await yh('host', 'token', 'create');
    expect(token.code).toBe(0);
    const t = /^ {2}(yhr_\S+)$/m.exec(token.stdout)?.[1];
    expect(t).toBeDefined();
    expect(token.stdout).toContain(`  yunhai agent --control-plane ${cp.endpoints.api} --token ${t}\n`);
    expect(token.stderr).toContain('replaces the previous token');
    expect(token.stderr).toContain('loopback address');
  });

  it('sets zones, maintenance and overcommit, manages aggregates and server groups', async () => {
    const upd = await json<{ zone: string; maintenance: boolean; overcommit: unknown }>(
      'host',
      'update',
      'fake-host-1',
      '--zone',
      'az1',
      '--maintenance',
      'on',
      '--overcommit',
      'cpu=8,ram=1.5',
    );
    expect(upd).toMatchObject({ zone: 'az1', maintenance: true, overcommit: { cpu: 8, ram: 1.5 } });
    expect((await yh('host', 'show', 'fake-host-1')).stdout).toMatch(/^overcommit\s+cpu 8, ram 1\.5$/m);
    const none = await yh('instance', 'create', 'nowhere', '--image', 'tiny', '--flavor', 'tiny.small');
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('state: 1 host host is in maintenance');
    await yh('host', 'update', 'fake-host-1', '--maintenance', 'off', '--overcommit', 'inherit');
    const bad = await yh('host', 'update', 'fake-host-1', '--overcommit', 'cpu=lots');
    expect([bad.code, bad.stderr]).toEqual([
      2,
      'yunhai: overcommit must look like cpu=4,ram=1,disk=1 (got "cpu=lots")\n',
    ]);

    expect((await yh('aggregate', 'create', 'ssd', '--set', 'ssd=true', '--set', 'rack=r1')).code).toBe(0);
    expect((await json<{ hosts: string[] }>('aggregate', 'add-host', 'ssd', 'fake-host-1')).hosts).toEqual([
      'fake-host-1',
    ]);
    expect((await yh('aggregate', 'list')).stdout).toMatch(/^ssd\s+fake-host-1\s+ssd=true, rack=r1\s+agg-/m);
    expect((await json<{ aggregates: string[] }>('host', 'show', 'fake-host-1')).aggregates).toEqual(['ssd']);
    await yh('aggregate', 'remove-host', 'ssd', 'fake-host-1');
    expect((await yh('aggregate', 'delete', 'ssd')).stdout).toBe('Deleted aggregate ssd.\n');

    expect((await yh('server-group', 'create', 'web', '--policy', 'anti-affinity')).code).toBe(0);
    const member = await json<{ serverGroupId: string; zone: string }>(
      'instance',
      'create',
      'web-a',
      '--image',
      'tiny',
      '--flavor',
      'tiny.small',
      '--server-group',
      'web',
      '--zone',
      'az1',
      '--no-wait',
    );
    expect(member.serverGroupId).toMatch(/^sg-/);
    expect(member.zone).toBe('az1');
    const second = await yh(
      'instance',
      'create',
      'web-b',
      '--image',
      'tiny',
      '--flavor',
      'tiny.small',
      '--server-group',
      'web',
    );
    expect(second.stderr).toContain('affinity: 1 host already run a member of group web');
    expect((await yh('server-group', 'list')).stdout).toMatch(/^web\s+anti-affinity\s+1\s/m);
  });

  it('resizes a running instance live and waits for it', async () => {
    const r = await yh('instance', 'resize', 'web-1', '--vcpus', '2', '--memory', '512MiB', '--wait');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`Instance web-1 (${instanceId}) now has 2 vCPUs, 512MiB.\n`);
    expect(r.stderr).toMatch(/: resizing \(\d+s\)\n/);
    const i = await json<{ vcpus: number; memoryMiB: number; state: string }>('instance', 'show', instanceId);
    expect(i).toMatchObject({ vcpus: 2, memoryMiB: 512, state: 'running' });

    const tooBig = await yh('instance', 'resize', instanceId, '--vcpus', '3');
    expect(tooBig.code).toBe(1);
    expect(tooBig.stderr).toMatch(
      /^yunhai: ValidationError: vcpus must be 1\.\.2 for this flavor\. \(request /,
    );
    const nothing = await yh('instance', 'resize', instanceId);
    expect(nothing.code).toBe(2);
    expect(nothing.stderr).toBe('yunhai: give --vcpus, --memory or both\n');
  });

  it('reboots with a spinner redrawn in place on a terminal', async () => {
    const io = captureIo({ errIsTTY: true, columns: 100 });
    const r = await runCli(['instance', 'reboot', 'web-1', '--wait'], env, { io, cwd: tmp });
    expect(r.code).toBe(0);
    expect(io.stdout()).toBe(`Instance web-1 (${instanceId}) has rebooted and is running.\n`);
    const err = io.stderr();
    expect(err.startsWith(`\r\u001b[2K⠋ web-1 (${instanceId}): rebooting  0s`)).toBe(true);
    expect(err).not.toContain('\n'); // everything transient, redrawn with \r
    expect(err.endsWith('\r\u001b[2K')).toBe(true); // and cleared at the end
  });

  it('stops and starts an instance, waiting for each', async () => {
    const stop = await yh('instance', 'stop', 'web-1', '--wait');
    expect(stop.code).toBe(0);
    expect(stop.stdout).toBe(`Instance web-1 (${instanceId}) is stopped.\n`);
    expect(lines(stop.stderr)[0]).toMatch(/: stopping \(0s\)$/);
    expect(lines(stop.stderr).at(-1)).toMatch(/: stopped \(\d+s\)$/);
    expect((await json<{ state: string }>('instance', 'show', instanceId)).state).toBe('stopped');

    const again = await yh('instance', 'stop', instanceId);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^yunhai: InvalidState: Instance i-\w+ is stopped; it cannot be stopped\./);

    const start = await yh('instance', 'start', instanceId, '--wait');
    expect(start.code).toBe(0);
    expect(start.stdout).toBe(`Instance web-1 (${instanceId}) is running.\n`);
    expect(lines(start.stderr)[0]).toMatch(/: starting \(0s\)$/);
    const i = await json<{ state: string; guestReady: boolean }>('instance', 'show', instanceId);
    expect(i).toMatchObject({ state: 'running', guestReady: true });
  });

  it('follows the console until the instance is deleted with --yes --wait', async () => {
    const refused = await yh('instance', 'delete', 'web-1');
    expect(refused.code).toBe(2);
    expect(refused.stderr).toBe(
      `yunhai: refusing to delete instance web-1 (${instanceId}) and its disk without confirmation: pass --yes\n`,
    );

    const follow = yh('instance', 'console', instanceId, '--follow');
    await new Promise((res) => setTimeout(res, 700));
    const del = await yh('instance', 'delete', 'web-1', '--yes', '--wait');
    expect(del.code).toBe(0);
    expect(del.stdout).toBe(`Deleted instance web-1 (${instanceId}).\n`);
    expect(lines(del.stderr)[0]).toBe(`web-1 (${instanceId}): deleting (0s)`);
    expect(lines(del.stderr).at(-1)).toMatch(/: deleted \(\d+s\)$/);

    const followed = await follow;
    expect(followed.code).toBe(0);
    expect(followed.stdout).toContain('YUNHAI-READY cpus=1 mem_kib=262144');
    expect(followed.stderr).toBe(`\n(instance ${instanceId} was deleted)\n`);

    const gone = await yh('instance', 'show', instanceId);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(
      /^yunhai: NotFound: Instance 'i-\w+' does not exist\. \(request [0-9a-f-]+\)\n$/,
    );
  });

  it('creates without waiting (JSON), and deletes without waiting', async () => {
    const created = await json<{ id: string; state: string; name: string }>(
      'instance',
      'create',
      'web-2',
      '--image',
      'tiny',
      '--flavor',
      'tiny.small',
      '--user-data-text',
      'hello',
      '--no-wait',
    );
    expect(created).toMatchObject({ name: 'web-2', state: 'building' });
    const del = await json<{ id: string; state: string }>('instance', 'delete', 'web-2', '--yes');
    expect(del).toEqual({ id: created.id, state: 'deleting' });
  });

  it('fails an instance that cannot start with its error reason and exit 1', async () => {
    const r = await yh('instance', 'create', 'doomed', '--image', 'tiny', '--flavor', 'tiny.small');
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    const last = lines(r.stderr).at(-1);
    expect(last).toMatch(
      /^yunhai: instance doomed \(i-\w+\) failed: StartFailed: .*no room for doomed on this host/,
    );
    const list = await json<{ items: { name: string; state: string; errorReason: string }[] }>(
      'instance',
      'list',
      '--state',
      'error',
    );
    expect(list.items).toHaveLength(1);
    expect(list.items[0]).toMatchObject({ name: 'doomed', state: 'error' });
    expect((await yh('instance', 'show', 'doomed')).stdout).toMatch(/^error\s+StartFailed: /m);
    expect((await yh('instance', 'delete', 'doomed', '--yes', '--wait')).code).toBe(0);
  });

  it('refuses to create with an unknown image: one-line NotFound, exit 1', async () => {
    const r = await yh('instance', 'create', 'x1', '--image', 'no-such-image', '--flavor', 'tiny.small');
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(
      /^yunhai: NotFound: Image 'no-such-image' does not exist\. \(request [0-9a-f-]+\)\n$/,
    );
    const flavor = await yh('instance', 'create', 'x1', '--image', 'tiny', '--flavor', 'huge.99');
    expect(flavor.code).toBe(1);
    expect(flavor.stderr).toMatch(/^yunhai: NotFound: Flavor 'huge\.99' does not exist\./);
    const byName = await yh('instance', 'show', 'nothing-here');
    expect(byName.code).toBe(1);
    expect(byName.stderr).toBe(
      "yunhai: NotFound: no instance named 'nothing-here' (pass an i-… id, or see `yunhai instance list`)\n",
    );
    const both = await yh(
      'instance',
      'create',
      'x1',
      '--image',
      'tiny',
      '--flavor',
      'tiny.small',
      '--user-data',
      'a',
      '--user-data-text',
      'b',
    );
    expect(both.code).toBe(2);
    const neverThere = await yh('instance', 'console', 'i-000000000000', '--follow');
    expect(neverThere.code).toBe(1);
    expect(neverThere.stderr).toMatch(/^yunhai: NotFound: Instance 'i-000000000000' does not exist\./);
    const timeout = await yh('instance', 'start', 'web-1', '--timeout', 'soon');
    expect(timeout.code).toBe(2);
    expect(timeout.stderr).toContain('--timeout must be a positive number of seconds.');
  });

  it('imports, lists and deletes SSH key pairs', async () => {
    writeFileSync(join(tmp, 'id_ed25519.pub'), `${sshEd25519PublicKey()}\n`);
    const imported = await yh('keypair', 'import', 'laptop', '--public-key-file', 'id_ed25519.pub');
    expect(imported.code).toBe(0);
    expect(imported.stdout).toMatch(/^Imported key pair laptop \(SHA256:[A-Za-z0-9+/]{43}\)\.\n$/);

    // From standard input too.
    const io = captureIo({ readStdin: async () => sshEd25519PublicKey('ci@yunhai') });
    const viaStdin = await runCli(['keypair', 'import', 'ci', '--public-key-file', '-'], env, {
      io,
      cwd: tmp,
    });
    expect(viaStdin.code).toBe(0);

    const list = await yh('keypair', 'list');
    expect(lines(list.stdout)[0]).toMatch(/^NAME\s+FINGERPRINT\s+CREATED\s+ID$/);
    expect(list.stdout).toMatch(/^ci\s+SHA256:\S+\s+\d{4}-.+\s+key-\w+$/m);
    expect(list.stdout).toMatch(/^laptop\s+SHA256:\S+\s/m);

    writeFileSync(
      join(tmp, 'id_ed25519'),
      '-----BEGIN OPENSSH PRIVATE KEY-----\nxxx\n-----END OPENSSH PRIVATE KEY-----\n',
    );
    const priv = await yh('keypair', 'import', 'oops', '--public-key-file', 'id_ed25519');
    expect(priv.code).toBe(2);
    expect(priv.stderr).toContain('that is a private key');
    const dup = await yh('keypair', 'import', 'laptop', '--public-key-file', 'id_ed25519.pub');
    expect(dup.code).toBe(1);
    expect(dup.stderr).toMatch(/^yunhai: AlreadyExists: Key pair laptop already exists\./);

    expect((await yh('keypair', 'delete', 'laptop')).code).toBe(2);
    expect((await yh('keypair', 'delete', 'laptop', '--yes')).stdout).toBe('Deleted key pair laptop.\n');
    expect((await yh('keypair', 'delete', 'ci', '--yes')).code).toBe(0);
    const empty = await yh('keypair', 'list');
    expect(empty.stderr).toBe('No key pairs.\n');
  });

  it('image build tiny: builds with a progress bar, imports the result as public, and reuses an identical image', async () => {
    const out = join(tmp, 'tiny-build');
    const built: string[] = [];
    const fakeBuilder: TinyBuilder = async (outDir, opts) => {
      mkdirSync(outDir, { recursive: true });
      opts.onProgress?.('download', 0.25);
      writeFileSync(join(outDir, 'vmlinux'), Buffer.alloc(8192, 1));
      opts.onProgress?.('initramfs', 0.75);
      writeFileSync(join(outDir, 'initrd.img'), Buffer.alloc(4096, 2));
      opts.onProgress?.('done', 1);
      built.push(outDir);
      const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
      return {
        kernelPath: join(outDir, 'vmlinux'),
        bzImagePath: join(outDir, 'vmlinuz'),
        initrdPath: join(outDir, 'initrd.img'),
        cmdline: 'console=ttyS0 quiet panic=-1',
        kernelVersion: '6.1.0-test',
        sizeBytes: 12288,
        sha256: { kernel: sha(Buffer.alloc(8192, 1)), initrd: sha(Buffer.alloc(4096, 2)) },
      };
    };
    const client = new ApiClient({
      endpoint: cp.endpoints.api,
      credentials: {
        kind: 'sigv4',
        accessKeyId: cp.root.accessKeyId,
        secretAccessKey: cp.root.secretAccessKey,
        source: 'env',
      },
    });
    const ctx = { env, io: captureIo(), cwd: tmp, fetch: globalThis.fetch };
    const flags = { out, name: 'tiny-built', wait: true, timeout: 30 };
    await buildTinyAndImport(ctx, client, new Printer(ctx.io, 'table'), flags, async () => fakeBuilder);
    expect(built).toEqual([out]);
    expect(ctx.io.stderr()).toContain(
      'building tiny image: download\nbuilding tiny image: initramfs\nbuilding tiny image: done\n',
    );
    expect(ctx.io.stderr()).toContain(`Built the tiny image: kernel 6.1.0-test, 12 KiB, in ${out}`);
    expect(ctx.io.stdout()).toMatch(/^Imported image tiny-built \(img-\w+\): kernel, 12 KiB, public\.\n/);
    const images = await json<{
      items: { name: string; visibility: string; cmdline: string; osDistro: string }[];
    }>('image', 'list');
    expect(images.items.find((i) => i.name === 'tiny-built')).toMatchObject({
      visibility: 'public',
      cmdline: 'console=ttyS0 quiet panic=-1',
      osDistro: 'debian-kernel-6.1.0-test',
    });

    // The same build again (on a terminal: the bar is redrawn in place): nothing new to import.
    const again = { env, io: captureIo({ errIsTTY: true }), cwd: tmp, fetch: globalThis.fetch };
    await buildTinyAndImport(again, client, new Printer(again.io, 'table'), flags, async () => fakeBuilder);
    expect(again.io.stdout()).toMatch(
      /^Image tiny-built \(img-\w+\) already holds this build; nothing to import\.\n$/,
    );
    expect(again.io.stderr()).toContain(
      '\r\u001b[2Kbuilding tiny image ███████████████░░░░░  75%  initramfs',
    );
    const count = (await json<{ items: { name: string }[] }>('image', 'list')).items.filter(
      (i) => i.name === 'tiny-built',
    );
    expect(count).toHaveLength(1);

    // A failing build is one line, exit 1.
    const failing = { env, io: captureIo(), cwd: tmp, fetch: globalThis.fetch };
    await expect(
      buildTinyAndImport(failing, client, new Printer(failing.io, 'table'), flags, async () => async () => {
        throw new Error('apt-get: no kernel package found');
      }),
    ).rejects.toThrow(/^building the tiny image failed: apt-get: no kernel package found$/);
  });

  it('loads the real tiny image builder lazily', async () => {
    expect(typeof (await loadTinyBuilder())).toBe('function');
  });
});

describe('progress and size helpers', () => {
  it('draws byte and fraction bars', () => {
    expect(renderBar(5 * 1024 * 1024, 10 * 1024 * 1024, 10)).toBe('█████░░░░░  50% 5 MiB/10 MiB');
    expect(renderBar(0, 2048, 4)).toBe('░░░░   0% 0 B/2 KiB');
    expect(renderBar(4096, 2048, 4)).toBe('████ 100% 2 KiB/2 KiB');
    expect(renderBar(1536, 0, 10)).toBe('1.5 KiB'); // unknown total: bytes only
    expect(fractionBar(0.34, 3)).toBe('█░░  34%');
    expect(fractionBar(0.999, 4)).toBe('███░  99%'); // full only when done
    expect(fractionBar(Number.NaN, 2)).toBe('░░   0%');
  });

  it('prints one line per status change when stderr is not a terminal', () => {
    let t = 0;
    const io = captureIo();
    const p = statusProgress(io, 'vm', { now: () => t });
    p.update('building');
    p.update('building');
    t = 2500;
    p.update('running');
    p.stop('done');
    p.update('ignored after stop');
    expect(io.stderr()).toBe('vm: building (0s)\nvm: running (2s)\ndone\n');
  });

  it('redraws in place on a terminal and cuts lines to the terminal width', () => {
    const io = captureIo({ errIsTTY: true, columns: 20 });
    const p = statusProgress(io, 'a-very-long-instance-label', { now: () => 0 });
    p.update('building');
    p.stop();
    expect(io.stderr()).toBe('\r\u001b[2K⠋ a-very-long-inst…\r\u001b[2K');
    const bio = captureIo();
    const b = barProgress(bio, 'upload');
    b.bytes(10, 100, 'sending');
    b.bytes(50, 100, 'sending');
    b.stop();
    expect(bio.stderr()).toBe('upload: sending\n');
  });

  it('parses and formats memory sizes', () => {
    expect(parseMemoryMiB('512MiB')).toBe(512);
    expect(parseMemoryMiB('512')).toBe(512);
    expect(parseMemoryMiB('1GiB')).toBe(1024);
    expect(parseMemoryMiB('1.5g')).toBe(1536);
    expect(parseMemoryMiB('2TB')).toBe(2 * 1024 * 1024);
    expect(parseMemoryMiB('0.1M')).toBeUndefined();
    expect(parseMemoryMiB('lots')).toBeUndefined();
    expect(formatMiB(256)).toBe('256MiB');
    expect(formatMiB(1536)).toBe('1.5GiB');
    expect(formatMiB(23 * 1024)).toBe('23GiB');
    expect(formatMiB(4 * 1024 * 1024)).toBe('4TiB');
  });
});
