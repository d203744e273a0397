#!/usr/bin/env node
// bench/scheduler-api: the scheduler's workload through the HTTP API, on a real control plane
// (SQLite, in this process) whose fleet is 10,000 simulated hosts (rows as registered agents would
// leave them; no agent runs, so instances stay 'building' — placement and the API are what is
// measured). Prints, beside a baseline measured in the same run (GET /healthz, the API's floor):
//   1. POST /api/v1/instances: creates/s and p50/p99 per create (each places against every host
//      inside its transaction, reserves quota, audits), sequential and with 4 concurrent clients;
//   2. GET /api/v1/instances?limit=100 paging through 100,000 instances: p50/p99 per page.
// Target (issue 7): list of 100,000 instances p99 <= 50 ms per page.
// Usage: npm run build && node bench/scheduler-api.js [--hosts 10000] [--creates 500] [--instances 100000]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { opt, pct, requireBuilt, root } from './common.js';

requireBuilt('bench/scheduler-api', 'server/control-plane.js');
const { startControlPlane } = await import(join(root, 'dist/server/control-plane.js'));
const HOSTS = Number(opt('--hosts', 10_000));
const CREATES = Number(opt('--creates', 500));
const INSTANCES = Number(opt('--instances', 100_000));

const dataDir = mkdtempSync(join(tmpdir(), 'yh-bench-sched-'));
const cp = await startControlPlane({
  dataDir,
  host: '127.0.0.1',
  port: 0,
  logLevel: 'silent',
  // The simulated hosts send no heartbeats; they must not be marked down during the run.
  hostGraceMs: 365 * 24 * 3600 * 1000,
  env: { YUNHAI_ROOT_PASSWORD: 'bench-password-1' },
});
const api = cp.endpoints.api;
const db = cp.database.db;
try {
  const login = await fetch(`${api}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'admin', password: 'bench-password-1' }),
  });
  const { token } = await login.json();
  const call = async (method, path, body) => {
    const s = performance.now();
    const r = await fetch(`${api}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const json = await r.json();
    return { status: r.status, json, ms: performance.now() - s };
  };

  // ---- the fleet, an image, room in the quota ----------------------------------------------------
  const now = Date.now();
  for (let i = 0; i < HOSTS; i += 500) {
    const rows = [];
    for (let k = i; k < Math.min(HOSTS, i + 500); k++)
      rows.push({
        id: `host-${String(k).padStart(12, '0')}`,
        name: `sim-${k}`,
        token_hash: `bench-${k}`,
        state: k % 97 === 0 ? 'down' : 'up',
        enabled: 1,
        zone: `az${k % 3}`,
        maintenance: 0,
        overcommit: null,
        idle_watts: 120,
        peak_watts: 350,
        standby: 0,
        driver: 'fake',
        accelerator: 'kvm',
        hypervisor_version: 'bench',
        agent_version: 'bench',
        vcpus: 64,
        memory_mib: 512 * 1024,
        disk_gib: 4000,
        firmware: JSON.stringify(['bios', 'uefi']),
        generation: 1,
        last_heartbeat_at: now,
        created_at: now,
        updated_at: now,
      });
    await db.insertInto('hosts').values(rows).execute();
  }
  const image = {
    id: 'img-benchbench01',
    tenant_id: null,
    name: 'bench',
    visibility: 'public',
    format: 'kernel',
    os_type: 'linux',
    os_distro: 'bench',
    firmware: 'bios',
    status: 'available',
    error: null,
    files: JSON.stringify({}),
    cmdline: null,
    size_bytes: 0,
    virtual_size_bytes: 0,
    min_disk_gib: 0,
    created_at: now,
    updated_at: now,
  };
  await db.insertInto('images').values(image).execute();
  const tenantId = (await call('GET', '/api/v1/auth/whoami')).json.tenant.id;
  const q = await call('PUT', `/api/v1/tenants/${tenantId}/quotas`, {
    instances: 1_000_000,
    vcpus: 10_000_000,
    memoryMiB: 1_000_000_000,
  });
  if (q.status !== 200) throw new Error(`quotas: ${q.status} ${JSON.stringify(q.json)}`);

  const health = [];
  for (let i = 0; i < 300; i++) {
    const s = performance.now();
    await fetch(`${api}/healthz`);
    health.push(performance.now() - s);
  }
  console.log(
    `bench/scheduler-api: ${HOSTS} hosts (1% down, 3 zones) in SQLite, control plane in this process`,
  );
  console.log(
    `baseline GET /healthz                 p50 ${pct(health, 50).toFixed(2)} ms   p99 ${pct(health, 99).toFixed(2)} ms`,
  );

  // ---- creates through the API --------------------------------------------------------------------
  const flavors = ['tiny.small', 'tiny.medium', 'm1.small', 'm1.medium'];
  let n = 0;
  const create = async () => {
    const i = n++;
    const r = await call('POST', '/api/v1/instances', {
      name: `b-${i}`,
      image: 'bench',
      flavor: flavors[i % flavors.length],
      ...(i % 5 === 0 ? { zone: `az${i % 3}` } : {}),
    });
    if (r.status !== 202) throw new Error(`create ${i}: ${r.status} ${JSON.stringify(r.json)}`);
    return r.ms;
  };
  for (const conc of [1, 4]) {
    const times = [];
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: conc }, async () => {
        for (let k = 0; k < CREATES / conc; k++) times.push(await create());
      }),
    );
    const s = (performance.now() - t0) / 1000;
    console.log(
      `POST /instances  c=${conc}  ${String(times.length).padStart(5)} creates  ${(times.length / s).toFixed(0).padStart(5)} creates/s   p50 ${pct(times, 50).toFixed(1)} ms   p99 ${pct(times, 99).toFixed(1)} ms`,
    );
  }

  // ---- 100,000 instances listed ------------------------------------------------------------------
  const flavor = await db
    .selectFrom('flavors')
    .select(['id'])
    .where('name', '=', 'tiny.small')
    .executeTakeFirstOrThrow();
  const have = Number(
    (
      await db
        .selectFrom('instances')
        .select((eb) => eb.fn.countAll().as('n'))
        .executeTakeFirst()
    ).n,
  );
  for (let i = have; i < INSTANCES; i += 1000) {
    const rows = [];
    for (let k = i; k < Math.min(INSTANCES, i + 1000); k++)
      rows.push({
        id: `i-${k.toString(36).padStart(12, '0')}`,
        tenant_id: tenantId,
        name: `seed-${k}`,
        image_id: image.id,
        flavor_id: flavor.id,
        host_id: `host-${String(k % HOSTS).padStart(12, '0')}`,
        state: 'running',
        desired_state: 'running',
        vcpus: 1,
        memory_mib: 256,
        disk_gib: 1,
        max_vcpus: 2,
        max_memory_mib: 512,
        user_data: null,
        key_name: null,
        password_sealed: null,
        error_reason: null,
        target_vcpus: null,
        target_memory_mib: null,
        reboot_seq: 0,
        power_seq: 0,
        guest_ready_at: now,
        launched_at: now,
        metered_to: null,
        created_at: now,
        updated_at: now,
        deleted_at: null,
        server_group_id: null,
        zone: null,
        ha: 0,
      });
    await db.insertInto('instances').values(rows).execute();
  }
  const total = Number(
    (
      await db
        .selectFrom('instances')
        .select((eb) => eb.fn.countAll().as('n'))
        .executeTakeFirst()
    ).n,
  );
  const pages = [];
  let cursor;
  let listed = 0;
  for (;;) {
    const r = await call(
      'GET',
      `/api/v1/instances?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
    );
    pages.push(r.ms);
    listed += r.json.items.length;
    cursor = r.json.nextCursor;
    if (!cursor) break;
  }
  const p99 = pct(pages, 99);
  console.log(
    `GET /instances?limit=100 over ${total} instances: ${pages.length} pages (${listed} listed)   p50 ${pct(pages, 50).toFixed(1)} ms   p99 ${p99.toFixed(1)} ms   (target p99 <= 50 ms: ${p99 <= 50 ? 'OK' : 'MISSED'})`,
  );
} finally {
  await cp.close();
  rmSync(dataDir, { recursive: true, force: true });
}
