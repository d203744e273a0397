#!/usr/bin/env node
// bench/vm-boot: API call -> guest-ready latency of `yunhai up` (real QEMU, tiny guest), for N
// sequential and N parallel creates, and the QEMU RSS per VM, beside the floor measured in the
// same run: a bare `qemu-system-x86_64` boot of the same kernel + initrd + seed to the same marker.
// Targets (issue 3): p50 <= 1.3x the bare boot; RSS per 512 MiB tiny guest <= 200 MB.
// Usage: npm run build && node bench/vm-boot.js [--n 5] [--flavor tiny.medium]
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { opt, pct, requireBuilt, root } from './common.js';

const N = Number(opt('--n', 5));
const FLAVOR = opt('--flavor', 'tiny.medium');
requireBuilt('bench/vm-boot');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const { ensureTinyImage } = await import(join(root, 'dist/agent/images/tiny.js'));
const { buildNoCloudSeed } = await import(join(root, 'dist/agent/images/nocloud-seed.js'));
const { DEFAULT_TCG_TB_SIZE_MIB } = await import(join(root, 'dist/agent/drivers/qemu/argv.js'));
const tiny = await ensureTinyImage();

// ---- the floor: bare QEMU ----------------------------------------------------------------------
async function bareBoot(dir, i) {
  const seed = join(dir, `seed-${i}.iso`);
  await buildNoCloudSeed(seed, {
    userData: '#!/bin/sh\necho bench',
    metaData: { 'instance-id': `bare-${i}`, 'local-hostname': 'bare' },
  });
  const log = join(dir, `bare-${i}.log`);
  const t0 = performance.now();
  const q = spawn(
    'qemu-system-x86_64',
    [
      '-accel',
      `tcg,thread=single,tb-size=${DEFAULT_TCG_TB_SIZE_MIB}`,
      '-machine',
      'q35',
      '-cpu',
      'max',
      '-smp',
      '1',
      '-m',
      '512',
      '-nodefaults',
      '-display',
      'none',
      '-no-user-config',
      '-kernel',
      tiny.kernelPath,
      '-initrd',
      tiny.initrdPath,
      '-append',
      tiny.cmdline,
      '-drive',
      `file=${seed},if=virtio,format=raw,readonly=on`,
      '-device',
      'virtio-balloon-pci',
      '-serial',
      `file:${log}`,
    ],
    { stdio: 'ignore' },
  );
  try {
    for (;;) {
      if (existsSync(log) && readFileSync(log, 'utf8').includes('YUNHAI-READY'))
        return performance.now() - t0;
      if (performance.now() - t0 > 120_000) throw new Error('bare boot timed out');
      await sleep(10);
    }
  } finally {
    q.kill('SIGKILL');
  }
}

// ---- yunhai up -------------------------------------------------------------------------------
const dir = mkdtempSync(join(tmpdir(), 'yunhai-vmboot-'));
const dataDir = join(dir, 'data');
const up = spawn(process.execPath, ['bin/yunhai.js', 'up', '--data-dir', dataDir, '--port', '0'], {
  cwd: root,
  stdio: ['ignore', 'pipe', 'inherit'],
});
let upOut = '';
up.stdout.on('data', (d) => {
  upOut += d;
});
const stopAll = async () => {
  up.kill('SIGTERM');
  await new Promise((r) => up.once('exit', r));
};
try {
  while (!upOut.includes('Ready in')) await sleep(20);
  const api = JSON.parse(readFileSync(join(dataDir, 'endpoints.json'), 'utf8')).api;
  const creds = JSON.parse(readFileSync(join(dataDir, 'credentials.json'), 'utf8'));
  const login = await (
    await fetch(`${api}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'admin', password: creds.password }),
    })
  ).json();
  const call = async (method, path, body) => {
    const r = await fetch(api + path, {
      method,
      headers: {
        authorization: `Bearer ${login.token}`,
        ...(body ? { 'content-type': 'application/json' } : {}),
      },
      body: body ? JSON.stringify(body) : undefined,
    });
    return r.status === 204 ? null : r.json();
  };
  // Wait for the tiny image and the host.
  for (;;) {
    const imgs = await call('GET', '/api/v1/images?visibility=public');
    const hosts = await call('GET', '/api/v1/hosts');
    if (
      imgs.items.some((i) => i.name === 'tiny' && i.status === 'available') &&
      hosts.items.some((h) => h.state === 'up')
    )
      break;
    await sleep(200);
  }
  const accel = (await call('GET', '/api/v1/hosts')).items[0].accelerator;

  async function createAndWait(name) {
    const t0 = performance.now();
    const inst = await call('POST', '/api/v1/instances', {
      name,
      image: 'tiny',
      flavor: FLAVOR,
      userData: '#!/bin/sh\necho bench',
    });
    if (!inst.id) throw new Error(JSON.stringify(inst));
    for (;;) {
      const i = await call('GET', `/api/v1/instances/${inst.id}`);
      if (i.state === 'error') throw new Error(`instance error: ${i.errorReason}`);
      if (i.state === 'running' && i.guestReady) return { id: inst.id, ms: performance.now() - t0 };
      await sleep(50);
    }
  }
  /** RSS and PSS (shared pages, e.g. the kernel file mapping, split between the VMs) of a VM's QEMU. */
  function memOf(id) {
    const pid = Number(readFileSync(join(dataDir, 'instances', id, 'qemu.pid'), 'utf8').trim());
    const rss = Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) * 1024;
    const pss = Number(/^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))[1]) * 1024;
    return { rss, pss };
  }
  async function deleteAll(ids) {
    for (const id of ids) await call('DELETE', `/api/v1/instances/${id}`);
    for (const id of ids)
      while (
        (
          await fetch(`${api}/api/v1/instances/${id}`, {
            headers: { authorization: `Bearer ${login.token}` },
          })
        ).status !== 404
      )
        await sleep(50);
  }

  const bare = [];
  for (let i = 0; i < N; i++) bare.push(await bareBoot(dir, i));

  const seq = [];
  const seqIds = [];
  for (let i = 0; i < N; i++) {
    const r = await createAndWait(`seq-${i}`);
    seq.push(r.ms);
    seqIds.push(r.id);
    await deleteAll([r.id]);
  }

  const par = await Promise.all(Array.from({ length: N }, (_, i) => createAndWait(`par-${i}`)));
  await sleep(2000);
  const mem = par.map((r) => memOf(r.id));
  await deleteAll(par.map((r) => r.id));

  const f = (ms) => `${(ms / 1000).toFixed(2)} s`;
  const row = (name, xs) =>
    `${name.padEnd(40)} p50 ${f(pct(xs, 50)).padStart(8)}   p90 ${f(pct(xs, 90)).padStart(8)}   (n=${xs.length})`;
  console.log(
    `bench/vm-boot: tiny guest (kernel ${tiny.kernelVersion}), flavor ${FLAVOR}, accelerator ${accel}, ${N} VMs per row`,
  );
  console.log(row('floor: bare qemu-system-x86_64 boot', bare));
  console.log(row('yunhai: API create -> guest ready (seq)', seq));
  console.log(
    row(
      `yunhai: API create -> guest ready (${N} par)`,
      par.map((r) => r.ms),
    ),
  );
  const mb = mem.map((m) => m.rss / 1024 / 1024);
  const pssMb = mem.map((m) => m.pss / 1024 / 1024);
  console.log(
    `${'QEMU PSS per VM (parallel set)'.padEnd(40)} p50 ${pct(pssMb, 50).toFixed(0).padStart(5)} MB   max ${Math.max(
      ...pssMb,
    )
      .toFixed(0)
      .padStart(5)} MB`,
  );
  console.log(
    `${'QEMU RSS per VM (parallel set)'.padEnd(40)} p50 ${pct(mb, 50).toFixed(0).padStart(5)} MB   max ${Math.max(
      ...mb,
    )
      .toFixed(0)
      .padStart(5)} MB`,
  );
  const ratio = pct(seq, 50) / pct(bare, 50);
  console.log(
    `targets: sequential p50 / bare p50 = ${ratio.toFixed(2)}x (<= 1.3x ${ratio <= 1.3 ? 'OK' : 'MISSED'}); RSS max ${Math.max(...mb).toFixed(0)} MB (<= 200 MB ${Math.max(...mb) <= 200 ? 'OK' : 'MISSED'})`,
  );
} finally {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
}
