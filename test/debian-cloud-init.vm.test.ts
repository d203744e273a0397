import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiRequest, HAS_QEMU, until } from '../src/test-support/api.js';
import { startQemuTestControlPlane } from '../src/test-support/qemu-control-plane.js';

/**
 * A real Debian 12 cloud image (debootstrap + cloud-init, built by scripts/build-debian-image.sh)
 * through the public REST API: import, launch with `#cloud-config` user-data and a key pair, the
 * guest's cloud-init reads them from Yunhai's NoCloud seed (runcmd, write_files, hostname, SSH key,
 * root partition grown to the flavor's disk), ACPI stop, delete. Once per firmware (BIOS: syslinux;
 * UEFI: OVMF + systemd-boot), from the same disk image.
 *
 * Slow (minutes under TCG) and needs the built image, so it runs only when asked:
 *   scripts/build-debian-image.sh /var/tmp/debian-image
 *   YUNHAI_TEST_DEBIAN_IMAGE=/var/tmp/debian-image npx vitest run test/debian-cloud-init.vm.test.ts
 * YUNHAI_TEST_DEBIAN_FIRMWARE=bios (or uefi) runs one firmware only. Figures (API create → cloud-init
 * finished, QEMU RSS) are printed as `DEBIAN-FIGURES {...}` lines.
 */
const IMAGE_DIR = process.env.YUNHAI_TEST_DEBIAN_IMAGE;
const FIRMWARES = (process.env.YUNHAI_TEST_DEBIAN_FIRMWARE ?? 'bios,uefi')
  .split(',')
  .map((s) => s.trim())
  .filter((s): s is 'bios' | 'uefi' => s === 'bios' || s === 'uefi');
const FLAVOR = { name: 'debian.small', vcpus: 1, memoryMiB: 1024, diskGiB: 4 };

interface Manifest {
  file: string;
  sha256: string;
  kernelVersion: string;
  virtualSizeBytes: number;
  sizeBytes: number;
}

/** An OpenSSH ed25519 public key line. */
function sshPublicKey(comment: string): string {
  const raw = generateKeyPairSync('ed25519').publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
  const str = (b: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(b.length);
    return Buffer.concat([len, b]);
  };
  const blob = Buffer.concat([str(Buffer.from('ssh-ed25519')), str(raw)]);
  return `ssh-ed25519 ${blob.toString('base64')} ${comment}`;
}

const rssMiB = (pid: number) => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round(Number(m[1]) / 1024) : Number.NaN;
};

describe.skipIf(!IMAGE_DIR || !HAS_QEMU)(
  'Debian 12 cloud image with cloud-init on QEMU through the API',
  () => {
    let cp: Awaited<ReturnType<typeof startQemuTestControlPlane>>;
    let manifest: Manifest;
    let disk: string;
    const publicKey = sshPublicKey('yunhai-debian-test');

    const call = (method: string, path: string, body?: unknown) =>
      apiRequest(cp.endpoints.api, cp.token, method, path, body);

    beforeAll(async () => {
      const dir = resolve(IMAGE_DIR!);
      manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Manifest;
      disk = join(dir, manifest.file);
      cp = await startQemuTestControlPlane({ stopTimeoutMs: 120_000 });
      const flavor = await call('POST', '/api/v1/flavors', FLAVOR);
      expect(flavor.status, JSON.stringify(flavor.json)).toBe(201);
      const key = await call('POST', '/api/v1/key-pairs', { name: 'laptop', publicKey });
      expect(key.status, JSON.stringify(key.json)).toBe(201);
    }, 300_000);
    /** Instances not yet deleted: a failed case must not leave its QEMU running (VMs outlive the agent). */
    const launched = new Set<string>();
    afterAll(async () => {
      if (!cp) return;
      for (const id of launched) {
        await call('DELETE', `/api/v1/instances/${id}`).catch(() => {});
        await until(
          `instance ${id} deleted`,
          async () => ((await call('GET', `/api/v1/instances/${id}`)).status === 404 ? true : undefined),
          60_000,
        ).catch(() => {});
      }
      await cp.stop();
    }, 180_000);

    it.each(FIRMWARES)(
      'imports the image, boots it with %s firmware, runs cloud-config user-data, stops and deletes',
      async (firmware) => {
        // ---- import ------------------------------------------------------------------------------
        const importStart = Date.now();
        const imp = await call('POST', '/api/v1/images', {
          name: `debian-12-${firmware}`,
          format: 'qcow2',
          source: { disk },
          osType: 'linux',
          osDistro: 'debian-12',
          firmware,
          sha256: manifest.sha256,
        });
        expect(imp.status, JSON.stringify(imp.json)).toBe(202);
        const image = await until(
          'image import',
          async () => {
            const i = (await call('GET', `/api/v1/images/${imp.json.id}`)).json;
            if (i.status === 'error') throw new Error(`import failed: ${i.error}`);
            return i.status === 'available' ? i : undefined;
          },
          120_000,
        );
        const importMs = Date.now() - importStart;
        expect(image).toMatchObject({
          firmware,
          format: 'qcow2',
          virtualSizeBytes: manifest.virtualSizeBytes,
        });

        // ---- launch --------------------------------------------------------------------------------
        const name = `deb-${firmware}`;
        const userData = [
          '#cloud-config',
          'write_files:',
          '  - path: /etc/yunhai-test.txt',
          '    content: |',
          '      written by write_files',
          '    permissions: "0644"',
          'runcmd:',
          `  - echo "YUNHAI-DEBIAN firmware=${firmware} answer=$((6 * 7))" > /dev/console`,
          '  - echo "YUNHAI-DEBIAN file=$(cat /etc/yunhai-test.txt)" > /dev/console',
          '  - echo "YUNHAI-DEBIAN hostname=$(hostname)" > /dev/console',
          '  - echo "YUNHAI-DEBIAN rootMiB=$(df -BM --output=size / | tail -1 | tr -dc 0-9)" > /dev/console',
          '  - echo "YUNHAI-DEBIAN keys=$(grep -c yunhai-debian-test /home/debian/.ssh/authorized_keys)" > /dev/console',
          '  - echo "YUNHAI-DEBIAN efi=$(test -d /sys/firmware/efi && echo yes || echo no)" > /dev/console',
          '',
        ].join('\n');
        const createStart = Date.now();
        const created = await call('POST', '/api/v1/instances', {
          name,
          image: image.id,
          flavor: FLAVOR.name,
          keyName: 'laptop',
          userData,
        });
        expect(created.status, JSON.stringify(created.json)).toBe(202);
        const id: string = created.json.id;
        launched.add(id);
        const instance = async () => (await call('GET', `/api/v1/instances/${id}`)).json;
        const consoleText = async () =>
          (await call('GET', `/api/v1/instances/${id}/console?maxBytes=1048576`)).json.data as string;

        let runningMs: number | undefined;
        await until(
          'cloud-init finished (guest ready)',
          async () => {
            const i = await instance();
            if (i.state === 'error') throw new Error(`instance failed: ${i.errorReason}`);
            if (i.state === 'running' && runningMs === undefined) runningMs = Date.now() - createStart;
            return i.state === 'running' && i.guestReady ? i : undefined;
          },
          420_000,
          500,
        );
        const readyMs = Date.now() - createStart;
        const pid = Number(readFileSync(join(cp.vmDir, 'instances', id, 'qemu.pid'), 'utf8').trim());
        const rssAtReady = rssMiB(pid);

        // The agent ships console output to the control plane in batches: the API's copy may trail
        // the driver's guest-ready detection by a moment.
        const text = await until(
          'console with cloud-init finished',
          async () => {
            const t = await consoleText();
            return /Cloud-init v\. \S+ finished/.test(t) ? t : undefined;
          },
          60_000,
          500,
        );
        expect(text).toMatch(/Cloud-init v\. \S+ finished at .*Datasource DataSourceNoCloud/);
        expect(text).toContain(`YUNHAI-DEBIAN firmware=${firmware} answer=42`);
        expect(text).toContain('YUNHAI-DEBIAN file=written by write_files');
        expect(text).toContain(`YUNHAI-DEBIAN hostname=${name}`);
        expect(text).toContain('YUNHAI-DEBIAN keys=1');
        expect(text).toContain(`YUNHAI-DEBIAN efi=${firmware === 'uefi' ? 'yes' : 'no'}`);
        // cloud-init grew the root partition and filesystem to the flavor's disk.
        const rootMiB = Number(/YUNHAI-DEBIAN rootMiB=(\d+)/.exec(text)?.[1]);
        expect(rootMiB).toBeGreaterThan((FLAVOR.diskGiB - 0.5) * 1024 * 0.9);
        expect(text).toContain(manifest.kernelVersion);
        // The kernel's boot clock at cloud-init's end, as the guest saw it.
        const guestUp = Number(/Cloud-init v\. \S+ finished at .*Up ([\d.]+) seconds/.exec(text)?.[1]);

        // ---- stop (ACPI) and delete ---------------------------------------------------------------
        const stopStart = Date.now();
        expect((await call('POST', `/api/v1/instances/${id}/stop`)).status).toBe(202);
        await until(
          'stopped',
          async () => ((await instance()).state === 'stopped' ? true : undefined),
          180_000,
        );
        const stopMs = Date.now() - stopStart;
        const after = await consoleText();
        // systemd's orderly power-off, not the hard stop after the timeout.
        expect(after).toMatch(/reboot: Power down|System Power Off/);
        expect(Date.now() - stopStart).toBeLessThan(120_000);

        expect((await call('DELETE', `/api/v1/instances/${id}`)).status).toBe(202);
        await until(
          'deleted',
          async () => ((await call('GET', `/api/v1/instances/${id}`)).status === 404 ? true : undefined),
          60_000,
        );
        const instancesDir = join(cp.vmDir, 'instances');
        expect(existsSync(instancesDir) ? readdirSync(instancesDir) : []).not.toContain(id);
        expect(execFileSync('ps', ['-eo', 'args']).toString()).not.toContain(id);
        launched.delete(id);
        expect((await call('DELETE', `/api/v1/images/${image.id}`)).status).toBe(204);

        console.log(
          `DEBIAN-FIGURES ${JSON.stringify({
            firmware,
            imageSizeMiB: Math.round(manifest.sizeBytes / 1024 ** 2),
            importS: importMs / 1000,
            createToRunningS: (runningMs ?? Number.NaN) / 1000,
            createToCloudInitFinishedS: readyMs / 1000,
            guestUptimeAtFinishedS: guestUp,
            qemuRssMiBAtReady: rssAtReady,
            stopS: stopMs / 1000,
            flavor: FLAVOR,
          })}`,
        );
      },
      900_000,
    );
  },
);
