import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiRequest, loginToken, until } from '../../test-support/api.js';
import { createTestDatabase, type TestDatabase } from '../../test-support/pg.js';
import { ensureBuilt } from '../../test-support/up-process.js';

/**
 * The issue's end-to-end check of billing ("Done when"): a control plane runs as its own process
 * (test-server.ts: `yunhai up --driver fake` with 1 s metering and rating intervals) with
 * instances, S3 objects and SQS traffic of two tenants; it is SIGKILLed twice, once in the middle of
 * the traffic and once while the rater is inside a rating transaction (its charge lines written, not
 * committed), and restarted each time. A price change takes effect while instances run. Then the
 * invoice of each tenant is checked
 *
 * - against the usage ledger priced independently here (exact, to the micro-unit), with every ledger
 *   row rated exactly once and the invoice lines summing to the rated charges;
 * - against usage computed independently from the hash-chained audit trail: instance vCPU-, memory-
 *   and instance-seconds from the agent-reported Running/Stopped/Deleted events (exact, to the
 *   micro-unit, across the price change); stored byte-seconds from PutObject/DeleteObject events,
 *   and request counts and egress from the audit trail and this client's own log of acknowledged
 *   requests, within the tolerances explained at `TOLERANCES` below.
 */

const root = join(import.meta.dirname, '..', '..', '..');
const SERVER = join(root, 'dist', 'services', 'billing', 'test-server.js');
const PASSWORD = 'root-password-kill-twice';
/**
 * Metering interval of every meter (the storage tolerance below grows with the number of flushes).
 * Compute's metering pass re-reads each instance under its row lock, so a stop committed during a
 * pass is not metered again (this test first found that race; phase B stops and starts an instance).
 */
const METER_MS = 1000;
const RATE_MS = 1000;

/**
 * Why some meters cannot be checked to the micro-unit against the audit trail:
 * - `ACCRUAL_SKEW_MS`: a PutObject/DeleteObject audit row is stamped (Date.now() at the append) a few
 *   milliseconds after the time the same transaction used to accrue the bucket's byte-seconds (a few
 *   queries apart), so an object's lifetime in the audit trail can differ from the accrued one by up
 *   to this much (both ends move the same way); each accrual also floors to a whole byte-second.
 *   Stored byte-seconds are therefore checked within `size × ACCRUAL_SKEW_MS` per object plus one
 *   byte-second per accrual.
 * - Lost counts: S3 and SQS request counts and egress are summed in memory and written to the ledger
 *   every metering interval (the services' documented behaviour), so a SIGKILL loses what was counted
 *   since the last flush. Requests acknowledged after the last flush that reached the ledger before a
 *   kill (its rows' period end, less `FLUSH_MARGIN_MS` for egress counted as a response ends) may be
 *   missing; requests cut by a kill may or may not have been counted. GET, ReceiveMessage and message
 *   sends are not in the audit trail at all, so their counts come from this client's own log; PUT,
 *   DELETE and CreateBucket are checked against the audit trail too.
 */
const TOLERANCES = { ACCRUAL_SKEW_MS: 250, FLUSH_MARGIN_MS: 250 };

/** The test's rate card: flat prices, no free allowances, so the expected totals are plain sums. */
const BASE: Record<string, { uq: number; price: number }> = {
  'compute.vcpu-seconds': { uq: 3600, price: 120_000 },
  'compute.memory-mib-seconds': { uq: 3600 * 1024, price: 30_000 },
  'compute.instance-seconds:*': { uq: 3600, price: 36_000 },
  's3.storage-byte-seconds': { uq: 3600 * 2 ** 30, price: 100_000_000 },
  's3.requests-class-a': { uq: 1, price: 1000 },
  's3.requests-class-b': { uq: 1, price: 100 },
  's3.egress-bytes': { uq: 2 ** 20, price: 1000 },
  'sqs.requests': { uq: 1, price: 500 },
};
/** The price change while instances run: compute costs more, everything else stays. */
const RAISED: typeof BASE = {
  ...BASE,
  'compute.vcpu-seconds': { uq: 3600, price: 360_000 },
  'compute.memory-mib-seconds': { uq: 3600 * 1024, price: 90_000 },
  'compute.instance-seconds:*': { uq: 3600, price: 72_000 },
};
const cardBody = (prices: typeof BASE, effectiveFrom: number) => ({
  name: 'kill-twice',
  effectiveFrom: new Date(effectiveFrom).toISOString(),
  prices: Object.entries(prices).map(([meter, p]) => ({
    meter,
    unitQuantity: p.uq,
    tiers: [{ upToUnits: null, unitPriceMicros: p.price }],
  })),
});
const priceOf = (card: typeof BASE, meter: string) =>
  card[meter] ?? card[`${meter.slice(0, meter.indexOf(':'))}:*`]!;
/** round-half-up of num/den, both non-negative BigInts. */
const roundHalfUp = (num: bigint, den: bigint) => Number((2n * num + den) / (2n * den));

interface ServerProcess {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
  endpoints: Record<string, string>;
}

/** Requests of one tenant as this client saw them: acknowledged ones with their time, and cut ones. */
interface RequestLog {
  acked: { at: number; meter: string; n: number; op?: string }[];
  cut: { meter: string; n: number; op?: string }[];
}

export function runKillTwiceSuite(dialect: 'sqlite' | 'postgres') {
  describe(`billing across two SIGKILLs of the control plane (${dialect})`, () => {
    let dir: string;
    let pgDb: TestDatabase | undefined;
    let server: ServerProcess | undefined;
    beforeAll(async () => {
      ensureBuilt();
      dir = mkdtempSync(join(tmpdir(), 'yunhai-billing-kill-'));
      if (dialect === 'postgres') pgDb = await createTestDatabase();
    }, 300_000);
    afterAll(async () => {
      if (server && server.child.exitCode === null) {
        server.child.kill('SIGKILL');
        await server.exited;
      }
      await pgDb?.drop();
      rmSync(dir, { recursive: true, force: true });
    });

    const arm = () => join(dir, 'pause-armed');
    const paused = () => join(dir, 'rating-paused.json');

    async function start(): Promise<ServerProcess> {
      for (const f of [join(dir, 'endpoints.json'), arm(), paused()]) if (existsSync(f)) unlinkSync(f);
      const config = {
        dataDir: dir,
        ...(pgDb ? { database: pgDb.url } : {}),
        meterIntervalMs: METER_MS,
        rateIntervalMs: RATE_MS,
        pauseArmFile: arm(),
        pausedFile: paused(),
      };
      let out = '';
      const child = spawn(process.execPath, [SERVER, JSON.stringify(config)], {
        env: { ...process.env, YUNHAI_ROOT_PASSWORD: PASSWORD },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child.stdout!.on('data', (d) => {
        out += d;
      });
      child.stderr!.on('data', (d) => {
        out += d;
      });
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      await until(
        'the control plane to start',
        async () => {
          if (child.exitCode !== null) throw new Error(`the control plane exited: ${out}`);
          return out.includes('Ready') ? true : undefined;
        },
        60_000,
        25,
      );
      const endpoints = JSON.parse(readFileSync(join(dir, 'endpoints.json'), 'utf8'));
      server = { child, output: () => out, exited, endpoints };
      return server;
    }

    async function kill(s: ServerProcess) {
      s.child.kill('SIGKILL');
      await s.exited;
    }

    it('invoices what the audit trail says was used, every ledger row rated once, after two kills', async () => {
      const t0 = Date.now();
      // The run must not straddle a UTC month boundary (one billing period, one invoice per tenant).
      const nextMonth = Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth() + 1, 1);
      if (nextMonth - Date.now() < 180_000)
        await new Promise((r) => setTimeout(r, nextMonth - Date.now() + 1000));

      // ---- phase A: set up, start traffic, SIGKILL in the middle of it --------------------------
      let s = await start();
      const api = (method: string, path: string, token: string, body?: unknown) =>
        apiRequest(s.endpoints.api!, token, method, `/api/v1${path}`, body);
      let admin = await loginToken(s.endpoints.api!, 'admin', PASSWORD);
      const tenants: {
        name: string;
        id: string;
        ownerToken: string;
        keys: { accessKeyId: string; secretAccessKey: string };
        log: RequestLog;
        bucket: string;
        queue: string;
        live: Map<string, number>;
      }[] = [];
      for (const [name, owner] of [
        ['acme', 'alice'],
        ['globex', 'gina'],
      ] as const) {
        const t = await api('POST', '/tenants', admin, {
          name,
          owner: { name: owner, password: `${owner}-pw-123456` },
        });
        expect(t.status).toBe(201);
        const k = await api('POST', `/users/${t.json.owner.id}/access-keys`, admin);
        expect(k.status).toBe(201);
        tenants.push({
          name,
          id: t.json.tenant.id,
          ownerToken: '',
          keys: { accessKeyId: k.json.accessKeyId, secretAccessKey: k.json.secretAccessKey },
          log: { acked: [], cut: [] },
          bucket: `kill-twice-${name}`,
          queue: `kill-twice-${name}`,
          live: new Map(),
        });
      }
      const ownerLogin = async () => {
        for (const t of tenants)
          t.ownerToken = await loginToken(
            s.endpoints.api!,
            `${t.name === 'acme' ? 'alice' : 'gina'}@${t.name}`,
            `${t.name === 'acme' ? 'alice' : 'gina'}-pw-123456`,
          );
      };
      await ownerLogin();
      const [acme, globex] = tenants as [(typeof tenants)[0], (typeof tenants)[0]];
      const imgDir = mkdtempSync(join(dir, 'img-'));
      writeFileSync(join(imgDir, 'vmlinux'), randomBytes(4096));
      writeFileSync(join(imgDir, 'initrd'), randomBytes(2048));
      const img = await api('POST', '/images', admin, {
        name: 'tiny',
        visibility: 'public',
        format: 'kernel',
        source: { kernel: join(imgDir, 'vmlinux'), initrd: join(imgDir, 'initrd') },
        cmdline: 'console=ttyS0',
      });
      expect(img.status).toBe(202);
      await until(
        'the image',
        async () =>
          (await api('GET', `/images/${img.json.id}`, admin)).json.status === 'available' ? true : undefined,
        30_000,
        100,
      );
      const flavors = new Map<string, { vcpus: number; memoryMiB: number }>(
        (await api('GET', '/flavors', admin)).json.items.map(
          (f: { name: string; vcpus: number; memoryMiB: number }) => [
            f.name,
            { vcpus: f.vcpus, memoryMiB: f.memoryMiB },
          ],
        ),
      );
      // The test's card takes effect before any usage exists; metered traffic starts a few metering
      // intervals later, so no ledger row starts before it (checked below).
      const cardFrom = Date.now() + 1000;
      expect((await api('POST', '/billing/rate-cards', admin, cardBody(BASE, cardFrom))).status).toBe(201);
      await new Promise((r) => setTimeout(r, cardFrom - Date.now() + 2 * METER_MS));

      const instance = async (t: (typeof tenants)[0], name: string, flavor: string) => {
        const r = await api('POST', '/instances', t.ownerToken, { name, image: img.json.id, flavor });
        expect(r.status).toBe(202);
        return r.json.id as string;
      };
      const waitState = (t: (typeof tenants)[0], id: string, state: string) =>
        until(
          `${id} ${state}`,
          async () => {
            const r = await api('GET', `/instances/${id}`, t.ownerToken);
            if (state === 'deleted' && (r.status === 404 || r.json.state === 'deleted')) return true;
            return r.json?.state === state ? true : undefined;
          },
          30_000,
          50,
        );
      const i1 = await instance(acme, 'a1', 'tiny.small');
      const i2 = await instance(globex, 'g1', 'm1.small');
      await waitState(acme, i1, 'running');
      await waitState(globex, i2, 'running');

      // Traffic: per tenant one S3 writer/reader and one SQS producer/consumer, until `phase.stop`.
      const phase = { stop: false, errors: [] as string[] };
      const s3Of = (t: (typeof tenants)[0]) =>
        new S3Client({
          endpoint: s.endpoints.s3,
          region: 'us-east-1',
          credentials: t.keys,
          forcePathStyle: true,
          maxAttempts: 1,
        });
      const sqsOf = (t: (typeof tenants)[0]) =>
        new SQSClient({
          endpoint: s.endpoints.sqs,
          region: 'us-east-1',
          credentials: t.keys,
          maxAttempts: 1,
        });
      /** Runs one logged request: acknowledged (with its meter counts) or cut by a kill. */
      const logged = async <T>(
        t: (typeof tenants)[0],
        counts: { meter: string; n: number; op?: string }[],
        fn: () => Promise<T>,
        ackCounts?: (r: T) => { meter: string; n: number; op?: string }[],
      ): Promise<T | undefined> => {
        try {
          const r = await fn();
          const at = Date.now();
          for (const c of ackCounts ? ackCounts(r) : counts) t.log.acked.push({ at, ...c });
          return r;
        } catch (e) {
          if (!phase.stop) phase.errors.push(`${t.name}: ${e instanceof Error ? e.message : String(e)}`);
          for (const c of counts) t.log.cut.push(c);
          return undefined;
        }
      };
      let seq = 0;
      const s3Worker = async (t: (typeof tenants)[0]) => {
        const c = s3Of(t);
        for (let i = 0; !phase.stop; i++) {
          const key = `o${seq++}`;
          const size = 1024 + ((seq * 7919) % 60_000);
          const put = await logged(t, [{ meter: 's3.requests-class-a', n: 1, op: 'put' }], () =>
            c.send(new PutObjectCommand({ Bucket: t.bucket, Key: key, Body: randomBytes(size) })),
          );
          if (put) t.live.set(key, size);
          const keys = [...t.live.keys()];
          if (i % 2 === 1 && keys.length > 0) {
            const k = keys[(i * 31) % keys.length]!;
            const sz = t.live.get(k)!;
            await logged(
              t,
              [
                { meter: 's3.requests-class-b', n: 1 },
                { meter: 's3.egress-bytes', n: sz },
              ],
              async () =>
                (
                  await c.send(new GetObjectCommand({ Bucket: t.bucket, Key: k }))
                ).Body!.transformToByteArray(),
              (body) => [
                { meter: 's3.requests-class-b', n: 1 },
                { meter: 's3.egress-bytes', n: body.length },
              ],
            );
          }
          if (i % 3 === 2 && keys.length > 4) {
            const k = keys[0]!;
            const del = await logged(t, [{ meter: 's3.requests-class-b', n: 1, op: 'delete' }], () =>
              c.send(new DeleteObjectCommand({ Bucket: t.bucket, Key: k })),
            );
            if (del) t.live.delete(k);
          }
        }
        c.destroy();
      };
      const sqsWorker = async (t: (typeof tenants)[0], url: string) => {
        const c = sqsOf(t);
        const one = [{ meter: 'sqs.requests', n: 1 }];
        for (let i = 0; !phase.stop; i++) {
          await logged(t, one, () =>
            c.send(
              new SendMessageBatchCommand({
                QueueUrl: url,
                Entries: Array.from({ length: 5 }, (_, k) => ({ Id: `m${k}`, MessageBody: `msg ${i}.${k}` })),
              }),
            ),
          );
          const got = await logged(t, one, () =>
            c.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 })),
          );
          const msgs = got?.Messages ?? [];
          if (msgs.length > 0)
            await logged(t, one, () =>
              c.send(
                new DeleteMessageBatchCommand({
                  QueueUrl: url,
                  Entries: msgs.map((m, k) => ({ Id: `d${k}`, ReceiptHandle: m.ReceiptHandle! })),
                }),
              ),
            );
        }
        c.destroy();
      };
      const queueUrls = new Map<string, string>();
      for (const t of tenants) {
        const c3 = s3Of(t);
        await logged(t, [{ meter: 's3.requests-class-a', n: 1, op: 'create-bucket' }], () =>
          c3.send(new CreateBucketCommand({ Bucket: t.bucket })),
        );
        const cq = sqsOf(t);
        const q = await logged(t, [{ meter: 'sqs.requests', n: 1 }], () =>
          cq.send(new CreateQueueCommand({ QueueName: t.queue })),
        );
        queueUrls.set(t.name, q!.QueueUrl!.replace(/^http:\/\/[^/]+/, ''));
      }
      const runTraffic = () => {
        phase.stop = false;
        return Promise.all(
          tenants.flatMap((t) => [s3Worker(t), sqsWorker(t, `${s.endpoints.sqs}${queueUrls.get(t.name)}`)]),
        );
      };
      const kills: number[] = [];
      let traffic = runTraffic();
      /** After a kill: a new server process, fresh sign-ins, and the traffic again. */
      const restart = async () => {
        s = await start();
        admin = await loginToken(s.endpoints.api!, 'admin', PASSWORD);
        await ownerLogin();
        traffic = runTraffic();
      };
      await new Promise((r) => setTimeout(r, 6000));
      phase.stop = true;
      await kill(s); // kill #1: mid-traffic (requests in flight on every worker)
      kills.push(Date.now());
      await traffic;

      // ---- phase B: restart, price change while instances run, SIGKILL inside a rating transaction --
      await restart();
      const i3 = await instance(acme, 'a2', 'tiny.medium');
      await waitState(acme, i3, 'running');
      const i4 = await instance(globex, 'g2', 'tiny.small');
      await waitState(globex, i4, 'running');
      const change = Date.now() + 1500;
      expect((await api('POST', '/billing/rate-cards', admin, cardBody(RAISED, change))).status).toBe(201);
      // i4 runs across the price change and is deleted before the next kill; i3 is stopped and
      // started again after it (its stopped time is not charged: the audit trail's intervals say so).
      await new Promise((r) => setTimeout(r, Math.max(0, change + 1500 - Date.now())));
      expect((await api('DELETE', `/instances/${i4}`, globex.ownerToken)).status).toBeLessThan(300);
      await waitState(globex, i4, 'deleted');
      expect((await api('POST', `/instances/${i3}/stop`, acme.ownerToken)).status).toBeLessThan(300);
      await waitState(acme, i3, 'stopped');
      await new Promise((r) => setTimeout(r, 2 * METER_MS));
      expect((await api('POST', `/instances/${i3}/start`, acme.ownerToken)).status).toBeLessThan(300);
      await waitState(acme, i3, 'running');
      await new Promise((r) => setTimeout(r, 1000));
      // Kill #2: the next rating transaction writes its charge lines and blocks before its commit.
      writeFileSync(arm(), '');
      const pausedBatch = await until(
        'the rater to pause inside a transaction',
        async () =>
          existsSync(paused()) ? (JSON.parse(readFileSync(paused(), 'utf8')) as { rows: number }) : undefined,
        30_000,
        10,
      );
      expect(pausedBatch.rows).toBeGreaterThan(0);
      phase.stop = true;
      await kill(s);
      kills.push(Date.now());
      await traffic;

      // ---- phase C: restart, a little more traffic, then everything stops -----------------------
      await restart();
      await new Promise((r) => setTimeout(r, 2000));
      phase.stop = true;
      await traffic;
      expect(phase.errors).toEqual([]);
      // Objects whose PUT was cut by a kill may exist too: list and delete everything.
      for (const t of tenants) {
        const c = s3Of(t);
        let token: string | undefined;
        do {
          const listed = await logged(t, [{ meter: 's3.requests-class-a', n: 1 }], () =>
            c.send(new ListObjectsV2Command({ Bucket: t.bucket, ContinuationToken: token })),
          );
          for (const o of listed!.Contents ?? [])
            await logged(t, [{ meter: 's3.requests-class-b', n: 1, op: 'delete' }], () =>
              c.send(new DeleteObjectCommand({ Bucket: t.bucket, Key: o.Key! })),
            );
          token = listed!.NextContinuationToken;
        } while (token);
        expect(phase.errors).toEqual([]);
        c.destroy();
      }
      for (const [t, id] of [
        [acme, i1],
        [acme, i3],
        [globex, i2],
      ] as const)
        expect((await api('DELETE', `/instances/${id}`, t.ownerToken)).status).toBeLessThan(300);
      for (const [t, id] of [
        [acme, i1],
        [acme, i3],
        [globex, i2],
      ] as const)
        await waitState(t, id, 'deleted');
      // A clean stop flushes the meters; the next start rates what is left.
      s.child.kill('SIGTERM');
      expect(await s.exited).toBe(0);

      // ---- phase D: the final ledger, rated; invoices ------------------------------------------
      s = await start();
      admin = await loginToken(s.endpoints.api!, 'admin', PASSWORD);
      const db = await openReader(dialect, dir, pgDb?.url);
      try {
        await until(
          'every ledger row rated',
          async () => {
            await api('POST', '/billing/rate', admin);
            const [r] = await db.all<{ n: number | string }>(
              'select count(*) as n from usage_records u where not exists (select 1 from billing_charges c where c.usage_record_id = u.id)',
            );
            return Number(r!.n) === 0 ? true : undefined;
          },
          30_000,
          200,
        );
        const usage = (
          await db.all<Record<string, string | number>>(
            'select id, tenant_id, service, resource_id, meter, quantity, period_start, period_end from usage_records',
          )
        ).map((u) => ({
          id: String(u.id),
          tenant: String(u.tenant_id),
          service: String(u.service),
          resource: String(u.resource_id),
          meter: String(u.meter),
          q: Number(u.quantity),
          start: Number(u.period_start),
          end: Number(u.period_end),
        }));
        const charges = (
          await db.all<Record<string, string | number>>(
            'select usage_record_id, seg, tenant_id, meter, quantity, amount_micros, billing_period from billing_charges',
          )
        ).map((c) => ({
          usage: String(c.usage_record_id),
          seg: Number(c.seg),
          tenant: String(c.tenant_id),
          meter: String(c.meter),
          q: Number(c.quantity),
          amount: Number(c.amount_micros),
          period: Number(c.billing_period),
        }));

        // Every ledger row rated exactly once: its segments 0..n-1 share out its quantity exactly,
        // and no charge line lacks its ledger row.
        const byUsage = new Map<string, typeof charges>();
        for (const c of charges) byUsage.set(c.usage, [...(byUsage.get(c.usage) ?? []), c]);
        expect(byUsage.size).toBe(usage.length);
        for (const u of usage) {
          const cs = (byUsage.get(u.id) ?? []).sort((a, b) => a.seg - b.seg);
          expect(cs.map((c) => c.seg)).toEqual(cs.map((_, i) => i));
          expect(cs.reduce((n, c) => n + c.q, 0)).toBe(u.q);
        }
        const usageIds = new Set(usage.map((u) => u.id));
        expect(charges.every((c) => usageIds.has(c.usage))).toBe(true);
        // The card in force for all of it is the test's (the seeded default never priced any of it).
        expect(usage.every((u) => u.start >= cardFrom)).toBe(true);
        expect(new Set(charges.map((c) => c.period)).size).toBe(1);
        const period = charges[0]!.period;

        await api('POST', '/billing/invoices/generate', admin, { period: new Date(period).toISOString() });
        const audit = await readAudit(s.endpoints.api!, admin);
        expect((await api('GET', '/audit/verify', admin)).json.ok).toBe(true);
        // Each instance's vCPU ledger rows tile its running intervals in the audit trail (whole
        // seconds from each start): no gap, no overlap, nothing while stopped.
        for (const [id, intervals] of runningIntervals(audit)) {
          const merged: [number, number][] = [];
          for (const u of usage
            .filter((x) => x.resource === id && x.meter === 'compute.vcpu-seconds')
            .sort((x, y) => x.start - y.start)) {
            const last = merged[merged.length - 1];
            if (last && last[1] === u.start) last[1] = u.end;
            else merged.push([u.start, u.end]);
          }
          const want = intervals
            .map(([from, to]) => [from, from + Math.floor((to - from) / 1000) * 1000] as [number, number])
            .filter(([a, b]) => b > a);
          expect({ instance: id, metered: merged }).toEqual({ instance: id, metered: want });
        }
        const report: string[] = [];
        for (const t of tenants) {
          const list = (await api('GET', `/billing/invoices?tenantId=${t.id}`, admin)).json.items;
          expect(list).toHaveLength(1);
          const inv = (await api('GET', `/billing/invoices/${list[0].id}`, admin)).json;
          const invoiced = new Map<string, number>();
          for (const l of inv.lines as { meter: string; amountMicros: number }[])
            invoiced.set(l.meter, (invoiced.get(l.meter) ?? 0) + l.amountMicros);
          // Invoice lines sum to the rated charges, to the micro-unit.
          const rated = charges.filter((c) => c.tenant === t.id).reduce((n, c) => n + c.amount, 0);
          expect([...invoiced.values()].reduce((a, b) => a + b, 0)).toBe(rated);
          expect(inv.subtotalMicros).toBe(rated);

          // 1. The ledger priced here: each row's share before the price change at the old price.
          const fromLedger = new Map<string, bigint>();
          for (const u of usage.filter((x) => x.tenant === t.id)) {
            const before =
              u.end <= change
                ? BigInt(u.q)
                : u.start >= change
                  ? 0n
                  : (BigInt(u.q) * BigInt(change - u.start)) / BigInt(u.end - u.start);
            const p1 = priceOf(BASE, u.meter);
            const p2 = priceOf(RAISED, u.meter);
            expect(p1.uq).toBe(p2.uq);
            const num = before * BigInt(p1.price) + (BigInt(u.q) - before) * BigInt(p2.price);
            fromLedger.set(u.meter, (fromLedger.get(u.meter) ?? 0n) + num);
          }
          for (const [meter, num] of fromLedger)
            expect([meter, invoiced.get(meter)]).toEqual([
              meter,
              roundHalfUp(num, BigInt(priceOf(BASE, meter).uq)),
            ]);
          expect([...invoiced.keys()].sort()).toEqual([...fromLedger.keys()].sort());

          // 2. The audit trail, independently of the ledger.
          const expected = expectedFromAudit(
            audit,
            t.id,
            flavors,
            change,
            t.log,
            Date.now() - t0,
            (service) =>
              // Per kill, the last flush of the service's meters that reached the ledger before it.
              kills.map((k) => ({
                kill: k,
                lastFlush: usage
                  .filter((u) => u.service === service && u.meter !== 's3.storage-byte-seconds' && u.end <= k)
                  .reduce((m, u) => Math.max(m, u.end), 0),
              })),
          );
          for (const [meter, e] of expected) {
            const got = invoiced.get(meter) ?? 0;
            const p1 = priceOf(BASE, meter);
            const p2 = priceOf(RAISED, meter);
            const money = (q: { before: bigint; after: bigint }) =>
              roundHalfUp(q.before * BigInt(p1.price) + q.after * BigInt(p2.price), BigInt(p1.uq));
            const lo = money(e.lo);
            const hi = money(e.hi);
            report.push(
              `${t.name} ${meter}: invoiced ${got}, from the audit trail ${lo === hi ? lo : `${lo}..${hi}`}${e.note ? ` (${e.note})` : ''}`,
            );
            if (e.exact) expect([meter, got]).toEqual([meter, lo]);
            else {
              expect(got, `${meter} of ${t.name}`).toBeGreaterThanOrEqual(lo);
              expect(got, `${meter} of ${t.name}`).toBeLessThanOrEqual(hi);
            }
          }
          expect([...invoiced.keys()].filter((m) => !expected.has(m) && invoiced.get(m) !== 0)).toEqual([]);
          expect(invoiced.get('compute.vcpu-seconds') ?? 0).toBeGreaterThan(0);
        }
        process.stdout.write(
          `kill-twice (${dialect}): ${usage.length} ledger rows, ${charges.length} charge lines, paused rating batch of ${pausedBatch.rows} rows, ${((Date.now() - t0) / 1000).toFixed(1)} s\n  ${report.join('\n  ')}\n`,
        );
      } finally {
        await db.close();
      }
      s.child.kill('SIGTERM');
      expect(await s.exited).toBe(0);
    }, 240_000);
  });
}

interface AuditRow {
  seq: number;
  time: string;
  tenantId: string | null;
  action: string;
  resource: string;
  outcome: string;
  requestId: string;
  details: Record<string, unknown>;
}

/** Every audit event, oldest first, through the REST API (pages of 1,000, newest first). */
async function readAudit(api: string, token: string): Promise<AuditRow[]> {
  const all: AuditRow[] = [];
  let cursor: string | null = null;
  do {
    const r = await apiRequest(
      api,
      token,
      'GET',
      `/api/v1/audit?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
    );
    all.push(...(r.json.items as AuditRow[]));
    cursor = r.json.nextCursor;
  } while (cursor);
  return all.sort((a, b) => a.seq - b.seq);
}

type Quantity = { before: bigint; after: bigint };
interface Expectation {
  lo: Quantity;
  hi: Quantity;
  exact: boolean;
  note?: string;
}

/**
 * A tenant's usage per meter from the audit trail (and, for what the audit trail does not record,
 * from this client's log of acknowledged requests), split at the price change `change`.
 */
function expectedFromAudit(
  audit: AuditRow[],
  tenantId: string,
  flavors: Map<string, { vcpus: number; memoryMiB: number }>,
  change: number,
  log: RequestLog,
  runMs: number,
  flushesBeforeKills: (service: string) => { kill: number; lastFlush: number }[],
): Map<string, Expectation> {
  const out = new Map<string, Expectation>();
  const exact = (meter: string, before: bigint, after: bigint) => {
    const cur = out.get(meter)?.lo ?? { before: 0n, after: 0n };
    const q = { before: cur.before + before, after: cur.after + after };
    out.set(meter, { lo: q, hi: q, exact: true });
  };
  const own = audit.filter((e) => e.tenantId === tenantId && e.outcome === 'success');

  // Instances: running from an agent's InstanceRunning to its InstanceStopped/Deleted/Error. The
  // agent events' request ids carry the exact time the compute service metered from and to
  // (`agent-<ms>`); metering counts whole seconds from the running time, so `floor((to−from)/1000)`
  // seconds, and before the price change `floor(n·(change−from)/1000)` units of a per-second meter
  // with n units per second (the rater splits the row spanning the change in proportion to time).
  const flavorOf = new Map<string, string>();
  for (const e of own)
    if (e.action === 'compute:RunInstance')
      flavorOf.set(e.resource.replace(/^instance\//, ''), String(e.details.flavor));
  for (const [id, intervals] of runningIntervals(audit.filter((e) => e.tenantId === tenantId))) {
    for (const [from, to] of intervals) {
      const secs = Math.floor((to - from) / 1000);
      const flavor = flavorOf.get(id)!;
      const f = flavors.get(flavor)!;
      for (const [meter, perSecond] of [
        [`compute.instance-seconds:${flavor}`, 1],
        ['compute.vcpu-seconds', f.vcpus],
        ['compute.memory-mib-seconds', f.memoryMiB],
      ] as const) {
        const total = BigInt(secs * perSecond);
        const b = from >= change ? 0n : BigInt(Math.floor((perSecond * (change - from)) / 1000));
        const before = b < total ? b : total;
        exact(meter, before, total - before);
      }
    }
  }

  // Stored bytes: each object from its PutObject to its DeleteObject (or the PUT replacing it).
  const skew = TOLERANCES.ACCRUAL_SKEW_MS;
  let byteMs = 0n; // exact byte-milliseconds
  let skewBytes = 0n;
  let accruals = 0n;
  const live = new Map<string, { size: number; at: number }>();
  const end = (key: string, at: number) => {
    const o = live.get(key);
    if (!o) return;
    byteMs += BigInt(o.size) * BigInt(at - o.at);
    skewBytes += BigInt(o.size);
    live.delete(key);
  };
  let puts = 0;
  let deletes = 0;
  let buckets = 0;
  for (const e of own) {
    const at = Date.parse(e.time);
    if (e.action === 's3:PutObject') {
      end(e.resource, at);
      live.set(e.resource, { size: Number(e.details.size), at });
      puts++;
      accruals++;
    } else if (e.action === 's3:DeleteObject') {
      end(e.resource, at);
      deletes++;
      accruals++;
    } else if (e.action === 's3:CreateBucket') buckets++;
  }
  if (live.size > 0) throw new Error(`objects never deleted: ${[...live.keys()]}`);
  // Flushes floor the accrued byte-seconds too: at most one per metering interval of the run.
  accruals += BigInt(Math.ceil(runMs / METER_MS) + 10);
  const bs = byteMs / 1000n;
  const slack = (skewBytes * BigInt(skew)) / 1000n + 1n;
  out.set('s3.storage-byte-seconds', {
    lo: { before: 0n, after: bs - slack - accruals > 0n ? bs - slack - accruals : 0n },
    hi: { before: 0n, after: bs + slack },
    exact: false,
    note: `${bs} byte-seconds ± ${slack + accruals}`,
  });

  // Requests and egress: acknowledged ones, less those that may have been lost with a kill, plus
  // those cut by a kill that may have been counted.
  const sum = (xs: { meter: string; n: number }[], meter: string) =>
    xs.filter((x) => x.meter === meter).reduce((n, x) => n + x.n, 0);
  for (const meter of ['s3.requests-class-a', 's3.requests-class-b', 's3.egress-bytes', 'sqs.requests']) {
    const windows = flushesBeforeKills(meter.slice(0, meter.indexOf('.')));
    const lostWindow = (x: { at: number }) =>
      windows.some((w) => x.at <= w.kill && x.at > w.lastFlush - TOLERANCES.FLUSH_MARGIN_MS);
    const acked = sum(log.acked, meter);
    const mayBeLost = sum(log.acked.filter(lostWindow), meter);
    const cut = sum(log.cut, meter);
    if (acked + cut === 0) continue;
    out.set(meter, {
      lo: { before: 0n, after: BigInt(acked - mayBeLost) },
      hi: { before: 0n, after: BigInt(acked + cut) },
      exact: false,
      note: `${acked} acknowledged, ${mayBeLost} of them just before a kill, ${cut} cut`,
    });
  }
  // The audit trail's S3 writes agree with this client: every acknowledged PUT and CreateBucket is
  // there, and of those cut by a kill only some (the committed ones). A DELETE is audited when it
  // removed something: a DELETE cut after its commit leaves the key for a second, unaudited one.
  const ops = (xs: { op?: string }[], op: string) => xs.filter((x) => x.op === op).length;
  for (const [op, audited] of [
    ['put', puts],
    ['delete', deletes],
    ['create-bucket', buckets],
  ] as const) {
    const lo = ops(log.acked, op) - (op === 'delete' ? ops(log.cut, op) : 0);
    expect(audited, `audited ${op}s`).toBeGreaterThanOrEqual(lo);
    expect(audited, `audited ${op}s`).toBeLessThanOrEqual(ops(log.acked, op) + ops(log.cut, op));
  }
  return out;
}

/**
 * Running intervals of every instance in the audit trail: from an agent's InstanceRunning to its
 * InstanceStopped/Deleted/Error. An agent event's request id carries the exact time the compute
 * service metered from or to (`agent-<ms>`).
 */
function runningIntervals(audit: AuditRow[]): Map<string, [number, number][]> {
  const out = new Map<string, [number, number][]>();
  const since = new Map<string, number>();
  const agentTime = (e: AuditRow) => {
    const m = /^agent-(\d+)$/.exec(e.requestId);
    if (!m) throw new Error(`agent event without its time: ${JSON.stringify(e)}`);
    return Number(m[1]);
  };
  for (const e of audit) {
    if (e.outcome === 'failure' && e.action !== 'compute:InstanceError') continue;
    const id = e.resource.replace(/^instance\//, '');
    if (e.action === 'compute:InstanceRunning') {
      if (!since.has(id)) since.set(id, agentTime(e));
    } else if (
      ['compute:InstanceStopped', 'compute:InstanceDeleted', 'compute:InstanceError'].includes(e.action)
    ) {
      const from = since.get(id);
      if (from === undefined) continue; // a repeated report of a stop already counted
      since.delete(id);
      out.set(id, [...(out.get(id) ?? []), [from, agentTime(e)]]);
    }
  }
  if (since.size > 0) throw new Error(`instances still running: ${[...since.keys()]}`);
  return out;
}

interface Reader {
  all<T>(sql: string): Promise<T[]>;
  close(): Promise<void>;
}

/** Reads the control plane's database directly (SQLite read-only beside the running server). */
async function openReader(dialect: 'sqlite' | 'postgres', dataDir: string, url?: string): Promise<Reader> {
  if (dialect === 'sqlite') {
    const db = new Database(join(dataDir, 'yunhai.db'), { readonly: true, fileMustExist: true });
    return {
      all: async <T>(sql: string) => db.prepare(sql).all() as T[],
      close: async () => {
        db.close();
      },
    };
  }
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => {});
  await client.connect();
  return {
    all: async <T>(sql: string) => (await client.query(sql)).rows as T[],
    close: () => client.end(),
  };
}
