import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Logger } from 'pino';
import type { MigrationEvent } from '../services/compute/live-migration.js';
import type { AgentEvent, DesiredInstance } from '../services/compute/service.js';
import { createConsoleBridges } from './console-bridge.js';
import { type Hypervisor, HypervisorError, type VmEvent, type VmSpec, type VmStatus } from './hypervisor.js';

export const AGENT_VERSION = '0.1.0';

export interface AgentOptions {
  /** Base URL of the control plane's api listener. */
  controlPlane: string;
  registrationToken: string;
  /** Agent state (host.json, image cache); VMs live under the driver's own data dir. */
  dataDir: string;
  name: string;
  driver: Hypervisor;
  logger?: Logger;
  heartbeatMs?: number;
  /** How long a stop waits for the guest's ACPI power-off before a hard stop. */
  stopTimeoutMs?: number;
  consolePushMs?: number;
  /** Long-poll wait in seconds. */
  pollWaitSeconds?: number;
  /**
   * The address other hosts reach this one at for live migration (QEMU's migration stream and the
   * disk copy listen there). Default 127.0.0.1, which only serves migrations between agents on
   * one machine.
   */
  migrationAddress?: string;
}

export interface Agent {
  hostId: string;
  /** Resolves when every instance has been reconciled against the latest desired state once. */
  idle(): Promise<void>;
  /** Instance ids whose interactive console this agent is bridging right now. */
  consoleBridges(): string[];
  /** Stops the loops; VMs keep running. */
  stop(): Promise<void>;
}

interface Applied {
  powerSeq: number;
  rebootSeq: number;
  /** Sizes the VM was last defined with; a stopped VM is redefined when they change (cold resize). */
  specKey?: string;
}

const specKeyOf = (d: DesiredInstance) =>
  JSON.stringify([d.vcpus, d.maxVcpus, d.memoryMiB, d.maxMemoryMiB, d.diskGiB]);

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((r) => {
    const done = () => {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      r();
    };
    const t = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });

/**
 * The host agent: registers the host, heartbeats, long-polls the host's desired state and
 * reconciles the hypervisor with it (define, start, stop, reboot, resize, destroy), reports what
 * happened, and mirrors each VM's serial console to the control plane. It keeps no authority of
 * its own: after a restart it rediscovers VMs from the driver and converges again.
 */
export async function startAgent(opts: AgentOptions): Promise<Agent> {
  const log = opts.logger;
  const driver = opts.driver;
  const base = opts.controlPlane.replace(/\/$/, '');
  mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
  const stateFile = join(opts.dataDir, 'agent-state.json');
  const applied: Record<string, Applied> = existsSync(stateFile)
    ? JSON.parse(readFileSync(stateFile, 'utf8'))
    : {};
  const saveApplied = () => writeFileSync(stateFile, JSON.stringify(applied), { mode: 0o600 });
  const abort = new AbortController();
  let hostToken = '';

  async function call(
    method: string,
    path: string,
    body?: unknown,
    raw?: Buffer,
    timeoutMs = 30_000,
  ): Promise<unknown> {
    const res = await fetch(base + path, {
      method,
      headers: {
        ...(hostToken ? { authorization: `Bearer ${hostToken}` } : {}),
        ...(raw
          ? { 'content-type': 'application/octet-stream' }
          : body !== undefined
            ? { 'content-type': 'application/json' }
            : {}),
      },
      body: raw ?? (body !== undefined ? JSON.stringify(body) : undefined),
      signal: AbortSignal.any([abort.signal, AbortSignal.timeout(timeoutMs)]),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status} ${text.slice(0, 300)}`);
    return text ? JSON.parse(text) : undefined;
  }

  /**
   * Reports an event. A 'deleted' report is retried for a while when the control plane did not take
   * it (unreachable, or a 5xx such as a PostgreSQL deadlock victim): losing it would leave the
   * instance in 'deleting' forever, and repeating it is harmless. Other events are reconciled again
   * from the desired state and are reported once; a 4xx is final.
   */
  const report = async (id: string, e: AgentEvent) => {
    for (let attempt = 0; ; attempt++) {
      try {
        await call('POST', `/agent/v1/instances/${id}/events`, e);
        return;
      } catch (err) {
        const final =
          e.type !== 'deleted' || /HTTP 4\d\d/.test(String(err)) || abort.signal.aborted || attempt >= 5;
        log?.warn(
          { err: String(err), id, event: e.type, attempt },
          final ? 'event report failed' : 'event report failed; retrying',
        );
        if (final) return;
        await new Promise((r) => setTimeout(r, 200 * 2 ** attempt));
      }
    }
  };

  // ---- registration --------------------------------------------------------------------------
  const caps = await driver.capabilities();
  const reg = (await call('POST', '/agent/v1/register', {
    registrationToken: opts.registrationToken,
    name: opts.name,
    agentVersion: AGENT_VERSION,
    capabilities: caps,
  })) as { hostId: string; hostToken: string };
  hostToken = reg.hostToken;
  writeFileSync(
    join(opts.dataDir, 'host.json'),
    JSON.stringify({ hostId: reg.hostId, name: opts.name, controlPlane: base }),
    { mode: 0o600 },
  );
  log?.info({ hostId: reg.hostId, accelerator: caps.accelerator }, 'agent registered');

  // ---- image cache ---------------------------------------------------------------------------
  const cacheDir = join(opts.dataDir, 'image-cache');
  const downloads = new Map<string, Promise<string>>();
  function imageFile(image: DesiredInstance['image'], kind: string): Promise<string> {
    const ref = image.files[kind];
    if (!ref) throw new HypervisorError('ImageInvalid', `image ${image.id} has no ${kind} file`);
    const path = join(cacheDir, image.id, kind);
    const key = `${image.id}/${kind}`;
    if (existsSync(path)) return Promise.resolve(path);
    let p = downloads.get(key);
    if (!p) {
      p = (async () => {
        mkdirSync(join(cacheDir, image.id), { recursive: true, mode: 0o700 });
        const tmp = `${path}.tmp-${randomBytes(4).toString('hex')}`;
        const res = await fetch(`${base}/agent/v1/images/${image.id}/files/${kind}`, {
          headers: { authorization: `Bearer ${hostToken}` },
          signal: abort.signal,
        });
        if (!res.ok || !res.body)
          throw new HypervisorError(
            'ImageInvalid',
            `downloading image ${image.id}/${kind}: HTTP ${res.status}`,
          );
        const hash = createHash('sha256');
        const tap = new Transform({
          transform(chunk: Buffer, _e, done) {
            hash.update(chunk);
            done(null, chunk);
          },
        });
        try {
          await pipeline(
            Readable.fromWeb(res.body as import('node:stream/web').ReadableStream),
            tap,
            createWriteStream(tmp, { mode: 0o600 }),
          );
          if (hash.digest('hex') !== ref.sha256)
            throw new HypervisorError('ImageInvalid', `image ${image.id}/${kind} failed its checksum`);
          const fh = await open(tmp, 'r');
          await fh.sync();
          await fh.close();
          await rename(tmp, path);
          return path;
        } catch (e) {
          await rm(tmp, { force: true });
          throw e;
        }
      })().finally(() => downloads.delete(key));
      downloads.set(key, p);
    }
    return p;
  }

  async function specFor(d: DesiredInstance): Promise<VmSpec> {
    const secrets = (await call('GET', `/agent/v1/instances/${d.id}/secrets`)) as {
      publicKey?: string;
      password?: string;
    };
    const metaData = { ...d.cloudInit.metaData };
    delete metaData['public-keys-name'];
    if (secrets.publicKey) metaData['public-keys'] = secrets.publicKey;
    let userData = d.cloudInit.userData;
    if (!userData && secrets.password) {
      userData = `#cloud-config\npassword: ${JSON.stringify(secrets.password)}\nchpasswd: { expire: false }\nssh_pwauth: true\n`;
    }
    const img = d.image;
    const boot: VmSpec['boot'] =
      img.format === 'kernel'
        ? {
            firmware: img.firmware,
            kernel: {
              kernelPath: await imageFile(img, 'kernel'),
              initrdPath: img.files.initrd ? await imageFile(img, 'initrd') : undefined,
              cmdline: img.cmdline ?? undefined,
            },
          }
        : {
            firmware: img.firmware,
            diskImage: { path: await imageFile(img, 'disk'), format: img.format as 'qcow2' | 'raw' | 'iso' },
          };
    return {
      id: d.id,
      name: d.name,
      vcpus: d.vcpus,
      maxVcpus: d.maxVcpus,
      memoryMiB: d.memoryMiB,
      maxMemoryMiB: d.maxMemoryMiB,
      diskGiB: d.diskGiB,
      boot,
      cloudInit: { userData, metaData },
    };
  }

  // ---- reconciliation ------------------------------------------------------------------------
  const chains = new Map<string, Promise<void>>();
  const known = new Set<string>();
  let lastDesired: DesiredInstance[] = [];
  let haveDesired = false;

  function serial(id: string, fn: () => Promise<void>): Promise<void> {
    const next = (chains.get(id) ?? Promise.resolve()).then(fn, fn);
    chains.set(
      id,
      next.catch(() => {}),
    );
    return next;
  }

  async function consoleTail(id: string) {
    const st = await driver.readConsole(id, 0, 0).catch(() => null);
    const end = st?.next ?? 0;
    const r = await driver.readConsole(id, Math.max(0, end - 4096), 4096).catch(() => null);
    return r ? r.data.toString('utf8').split('\n').slice(-15).join('\n') : undefined;
  }

  // ---- live migration -------------------------------------------------------------------------
  /** Migrations this agent object has acted on, by id and step (a step is taken once). */
  const migrationSteps = new Set<string>();

  const reportMigration = async (migrationId: string, e: MigrationEvent) => {
    const final = e.type !== 'progress';
    for (let attempt = 0; ; attempt++) {
      try {
        await call('POST', `/agent/v1/migrations/${migrationId}/events`, e);
        return;
      } catch (err) {
        const stop = !final || /HTTP 4\d\d/.test(String(err)) || abort.signal.aborted || attempt >= 5;
        log?.warn({ err: String(err), migrationId, event: e.type, attempt }, 'migration report failed');
        if (stop) return;
        await sleep(200 * 2 ** attempt, abort.signal);
      }
    }
  };

  const errorText = (e: unknown) =>
    e instanceof HypervisorError ? `${e.code}: ${e.message}` : e instanceof Error ? e.message : String(e);

  /** One step of a migration, run once and in the background (a memory copy takes a while). */
  function migrationStep(
    m: NonNullable<DesiredInstance['migration']>,
    step: string,
    fn: () => Promise<void>,
  ) {
    const key = `${m.id}/${step}`;
    if (migrationSteps.has(key)) return;
    migrationSteps.add(key);
    void serial(`migration:${m.id}`, async () => {
      try {
        await fn();
      } catch (err) {
        log?.warn({ migration: m.id, step, err: errorText(err) }, 'migration step failed');
        await reportMigration(m.id, { type: 'failed', reason: errorText(err) });
      }
    });
  }

  async function reconcileMigration(d: DesiredInstance, m: NonNullable<DesiredInstance['migration']>) {
    const status = await driver.status(d.id);
    if (m.role === 'target') {
      if (m.phase === 'prepare') {
        if (status && !migrationSteps.has(`${m.id}/prepare`)) {
          // A VM half-prepared by an agent that was restarted: its addresses are lost; start over.
          migrationSteps.add(`${m.id}/prepare`);
          await driver.destroy(d.id).catch(() => {});
          await reportMigration(m.id, {
            type: 'failed',
            reason: 'the target agent restarted while preparing',
          });
          return;
        }
        migrationStep(m, 'prepare', async () => {
          const target = await driver.prepareIncoming(await specFor(d), {
            listenHost: opts.migrationAddress ?? '127.0.0.1',
          });
          await reportMigration(m.id, { type: 'prepared', ...target });
        });
      } else if (m.phase === 'switch') {
        migrationStep(m, 'switch', async () => {
          await driver.finishIncoming(d.id, { resume: m.kind !== 'cold' });
          // Its console log here starts empty; what the source wrote is already on the control plane.
          const r = (await call(
            'POST',
            `/agent/v1/instances/${d.id}/console?offset=0`,
            undefined,
            Buffer.alloc(0),
          )) as {
            size: number;
          };
          pushed.set(d.id, { local: 0, remote: r.size });
          applied[d.id] = { powerSeq: d.powerSeq, rebootSeq: d.rebootSeq, specKey: specKeyOf(d) };
          saveApplied();
          known.add(d.id);
          await reportMigration(m.id, { type: 'completed' });
        });
      }
      return;
    }
    // source
    if (m.phase === 'transfer' && m.target) {
      const target = m.target;
      migrationStep(m, 'transfer', async () => {
        let last = 0;
        const result = await driver.migrateOut(
          d.id,
          target,
          (p) => {
            if (Date.now() - last < 1000) return;
            last = Date.now();
            void reportMigration(m.id, { type: 'progress', ...p });
          },
          { cold: m.kind === 'cold' },
        );
        await pushConsole(d.id).catch(() => {});
        known.delete(d.id);
        await reportMigration(m.id, {
          type: 'transferred',
          downtimeMs: Math.round(result.downtimeMs),
          transferredBytes: result.transferredBytes,
          totalTimeMs: Math.round(result.totalTimeMs),
        });
      });
    }
    // 'prepare': the guest runs here as usual until the target is ready.
  }

  async function reconcileOne(d: DesiredInstance): Promise<void> {
    if (d.migration && d.desiredState !== 'deleted') {
      if (d.migration.role === 'target' || d.migration.phase !== 'prepare') {
        try {
          await reconcileMigration(d, d.migration);
        } catch (err) {
          log?.warn({ id: d.id, err: errorText(err) }, 'migration reconcile failed');
        }
        return;
      }
    }
    let status: VmStatus | null = await driver.status(d.id);
    const a = applied[d.id];
    try {
      if (d.desiredState === 'deleted') {
        if (status) await driver.destroy(d.id);
        delete applied[d.id];
        saveApplied();
        known.delete(d.id);
        await report(d.id, { type: 'deleted' });
        return;
      }
      // First look at this VM since the agent started: an agent killed between starting a VM and
      // reporting it leaves the control plane waiting, so a running VM is reported again below.
      const firstSight = !known.has(d.id);
      known.add(d.id);
      if (d.desiredState === 'stopped') {
        const force = a !== undefined && d.powerSeq - a.powerSeq >= 1000;
        // Recorded first, so the stop's own 'stopped' event carries this power cycle's number.
        applied[d.id] = { ...applied[d.id], powerSeq: d.powerSeq, rebootSeq: d.rebootSeq };
        saveApplied();
        if (status && (status.state === 'running' || status.state === 'paused')) {
          await driver.stop(d.id, { timeoutMs: force ? 0 : (opts.stopTimeoutMs ?? 60_000) });
          // The guest's last words (its power-off message) reach the control plane before 'stopped'
          // does: whoever sees the instance stopped reads a console log that is complete.
          await pushConsole(d.id).catch(() => {});
          await report(d.id, {
            type: 'stopped',
            reason: force ? 'forced stop' : 'stopped',
            powerSeq: d.powerSeq,
          });
        } else if (!status || status.state === 'stopped' || status.state === 'crashed') {
          await report(d.id, { type: 'stopped', reason: 'not running', powerSeq: d.powerSeq });
        }
        return;
      }
      // desired running
      const stoppedOrNew = !status || (status.state !== 'running' && status.state !== 'paused');
      if (stoppedOrNew && (!status || (a?.specKey !== undefined && a.specKey !== specKeyOf(d)))) {
        await driver.define(await specFor(d));
        if (a) a.specKey = specKeyOf(d);
        status = await driver.status(d.id);
      }
      if (status && status.state !== 'running' && status.state !== 'paused') {
        if (a && a.powerSeq >= d.powerSeq) return; // it stopped on its own; the control plane will record that
        applied[d.id] = { powerSeq: d.powerSeq, rebootSeq: d.rebootSeq, specKey: specKeyOf(d) };
        saveApplied();
        await driver.start(d.id);
        await report(d.id, { type: 'running' });
        status = await driver.status(d.id);
      } else if (!a || firstSight) {
        if (!a) {
          applied[d.id] = { powerSeq: d.powerSeq, rebootSeq: d.rebootSeq, specKey: specKeyOf(d) };
          saveApplied();
        }
        await report(d.id, { type: 'running' });
      }
      const cur = applied[d.id]!;
      if (d.rebootSeq > cur.rebootSeq) {
        cur.rebootSeq = d.rebootSeq;
        saveApplied();
        await driver.reboot(d.id);
        await report(d.id, { type: 'running' });
      }
      if (status && (status.vcpus !== d.vcpus || status.memoryMiB !== d.memoryMiB)) {
        const after = await driver.resize(d.id, { vcpus: d.vcpus, memoryMiB: d.memoryMiB });
        await report(d.id, { type: 'resized', vcpus: after.vcpus, memoryMiB: after.memoryMiB });
      }
    } catch (e) {
      const reason =
        e instanceof HypervisorError ? `${e.code}: ${e.message}` : e instanceof Error ? e.message : String(e);
      log?.warn({ id: d.id, err: reason }, 'reconcile failed');
      if (d.desiredState === 'deleted') return; // retried on the next pass
      if (!applied[d.id]) applied[d.id] = { powerSeq: d.powerSeq, rebootSeq: d.rebootSeq };
      saveApplied();
      await report(d.id, {
        type: 'error',
        reason,
        consoleTail: await consoleTail(d.id),
        powerSeq: d.powerSeq,
      });
    }
  }

  async function reconcileAll(desired: DesiredInstance[]) {
    lastDesired = desired;
    haveDesired = true;
    const wanted = new Set(desired.map((d) => d.id));
    await Promise.all(desired.map((d) => serial(d.id, () => reconcileOne(d))));
    // VMs the control plane no longer wants here (deleted while this host was away) go.
    for (const vm of await driver.list()) {
      if (!wanted.has(vm.id)) {
        log?.info({ id: vm.id }, 'destroying orphan VM');
        await serial(vm.id, () => driver.destroy(vm.id)).catch(() => {});
        known.delete(vm.id);
      }
    }
  }

  // ---- events from the driver ----------------------------------------------------------------
  const unsubscribe = driver.onEvent((e: VmEvent) => {
    switch (e.type) {
      case 'guest-ready':
        void report(e.id, { type: 'guest-ready' });
        return;
      case 'stopped':
        void serial(e.id, async () => {
          await pushConsole(e.id);
          await report(e.id, { type: 'stopped', reason: e.reason, powerSeq: applied[e.id]?.powerSeq });
        });
        return;
      case 'crashed':
        void serial(e.id, async () => {
          await pushConsole(e.id);
          await report(e.id, {
            type: 'crashed',
            reason: e.reason,
            consoleTail: await consoleTail(e.id),
            powerSeq: applied[e.id]?.powerSeq,
          });
        });
        return;
      case 'resized':
        return;
    }
  });

  // ---- console mirroring ---------------------------------------------------------------------
  const pushed = new Map<string, { local: number; remote: number }>();
  async function pushConsole(id: string) {
    let p = pushed.get(id);
    if (!p) {
      const r = (await call(
        'POST',
        `/agent/v1/instances/${id}/console?offset=0`,
        undefined,
        Buffer.alloc(0),
      )) as { size: number };
      p = { local: r.size, remote: r.size };
      pushed.set(id, p);
    }
    for (let i = 0; i < 16; i++) {
      const chunk = await driver.readConsole(id, p.local, 64 * 1024).catch(() => null);
      if (!chunk || chunk.data.length === 0) return;
      const r = (await call(
        'POST',
        `/agent/v1/instances/${id}/console?offset=${p.remote}`,
        undefined,
        chunk.data,
      )) as { size: number };
      if (r.size === p.remote + chunk.data.length) p.local = chunk.next;
      p.remote = r.size;
    }
  }

  // ---- interactive consoles (WebSocket bridges the control plane asks for) ---------------------
  const bridges = createConsoleBridges({
    controlPlane: base,
    hostToken: () => hostToken,
    driver,
    logger: log,
  });
  let consoleGeneration: number | undefined;

  // ---- loops ---------------------------------------------------------------------------------
  let generation = 0;
  let idleWaiters: Array<() => void> = [];
  const loops = [
    (async () => {
      while (!abort.signal.aborted) {
        try {
          const r = (await call(
            'GET',
            `/agent/v1/desired?after=${generation}&wait=${opts.pollWaitSeconds ?? 20}` +
              (consoleGeneration === undefined ? '' : `&consoles=${consoleGeneration}`),
            undefined,
            undefined,
            ((opts.pollWaitSeconds ?? 20) + 10) * 1000,
          )) as {
            generation: number;
            instances: DesiredInstance[];
            consoleGeneration?: number;
            consoleSessions?: string[];
          };
          generation = r.generation;
          consoleGeneration = r.consoleGeneration;
          bridges.sync(r.consoleSessions ?? []);
          await reconcileAll(r.instances);
          for (const w of idleWaiters) w();
          idleWaiters = [];
        } catch (e) {
          if (abort.signal.aborted) break;
          log?.warn({ err: String(e) }, 'desired-state poll failed; retrying');
          await sleep(1000, abort.signal);
        }
      }
    })(),
    (async () => {
      while (!abort.signal.aborted) {
        await sleep(opts.heartbeatMs ?? 10_000, abort.signal);
        if (abort.signal.aborted) break;
        try {
          const r = (await call('POST', '/agent/v1/heartbeat')) as { generation: number };
          // Drift check: re-run reconciliation now and then even without changes.
          if (haveDesired && r.generation === generation) await reconcileAll(lastDesired);
        } catch (e) {
          log?.warn({ err: String(e) }, 'heartbeat failed');
        }
      }
    })(),
    (async () => {
      while (!abort.signal.aborted) {
        await sleep(opts.consolePushMs ?? 500, abort.signal);
        for (const id of known) await pushConsole(id).catch(() => {});
      }
    })(),
  ];

  return {
    hostId: reg.hostId,
    idle: () => new Promise<void>((r) => idleWaiters.push(r)),
    consoleBridges: () => bridges.active(),
    async stop() {
      abort.abort();
      unsubscribe();
      await bridges.closeAll();
      await Promise.allSettled(loops);
      await Promise.allSettled([...chains.values()]);
    },
  };
}
