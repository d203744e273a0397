import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import fastifyWebsocket from '@fastify/websocket';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import pino, { type Logger } from 'pino';
import { Counter, Gauge } from 'prom-client';
import { type Agent, startAgent } from '../agent/agent.js';
import type { Hypervisor } from '../agent/hypervisor.js';
import { auditRoutes } from '../platform/audit/routes.js';
import { type AuthOptions, authenticate, type CredentialSource } from '../platform/auth/authenticate.js';
import { loadMasterKey } from '../platform/crypto/master-key.js';
import { createSealer } from '../platform/crypto/sealer.js';
import { type Database, openDatabase } from '../platform/db/database.js';
import { YunhaiError } from '../platform/errors.js';
import { authRequestOf, createBaseServer } from '../platform/http/base-server.js';
import { endpointsRoute } from '../platform/http/endpoints-route.js';
import { createMetrics, type Metrics } from '../platform/http/metrics.js';
import {
  mountRoutes,
  openApiDocument,
  type RouteDef,
  sameOrigin,
  sessionCookieOf,
} from '../platform/http/rest.js';
import { usageRoutes } from '../platform/usage/routes.js';
import { billingRoutes } from '../services/billing/routes.js';
import {
  type BillingConfig,
  type BillingService,
  createBillingService,
} from '../services/billing/service.js';
import { createConsoleRelay, registerConsoleWsRoute } from '../services/compute/console-relay.js';
import { createConsoleStore } from '../services/compute/console-store.js';
import { computeRoutes } from '../services/compute/routes.js';
import { type ComputeService, createComputeService } from '../services/compute/service.js';
import { registerAgentRoutes } from '../services/hosts/agent-routes.js';
import { createHostNotifier } from '../services/hosts/notifier.js';
import { hostRoutes } from '../services/hosts/routes.js';
import { createHostService, type HostService } from '../services/hosts/service.js';
import { queryErrorRenderer, registerQueryApi } from '../services/iam/query/query-api.js';
import { iamRoutes } from '../services/iam/routes.js';
import { createIamService, type IamService, type RootCredentials } from '../services/iam/service.js';
import { imageRoutes } from '../services/images/routes.js';
import { createImageService, type ImageService } from '../services/images/service.js';
import { type ReadCacheStats, withReadCache } from '../services/objects/blob-cache.js';
import { createFsBlobStore } from '../services/objects/fs-blob-store.js';
import { createObjectMeter } from '../services/objects/meter.js';
import { objectRoutes, registerObjectTransferRoutes } from '../services/objects/object-routes.js';
import { bucketRoutes } from '../services/objects/routes.js';
import { registerS3Api, s3ErrorRenderer } from '../services/objects/s3/s3-api.js';
import { createObjectService, type ObjectService } from '../services/objects/service.js';
import { createQueueMeter } from '../services/queues/meter.js';
import { queueRoutes } from '../services/queues/routes.js';
import { createQueueService, type QueueService } from '../services/queues/service.js';
import { registerSqsApi, sqsErrorRenderer } from '../services/queues/sqs/sqs-api.js';
import { parseOvercommit, parseWeighers } from '../services/scheduler/placement.js';
import { registerPortal, registerSessionCookie } from './portal-static.js';
import { tinyImageRoutes } from './public-images.js';
import { VERSION } from './version.js';

export const API_PREFIX = '/api/v1';

/** The listeners a control plane opens, in port order; later issues add sqs, webdav, portal. */
export type ListenerName = 'api' | 'iam' | 'sts' | 's3' | 'sqs';
export const LISTENERS: ListenerName[] = ['api', 'iam', 'sts', 's3', 'sqs'];

export interface ControlPlaneConfig {
  dataDir: string;
  /** SQLite file path or postgres:// URL; default `<dataDir>/yunhai.db`. */
  database?: string;
  host: string;
  /** Port of the api listener; iam and sts take the next ones. 0 picks free ports for all. */
  port: number;
  /** Per-listener port overrides. */
  ports?: Partial<Record<ListenerName, number>>;
  logLevel?: string;
  /** Write logs here instead of stdout. */
  logFile?: string;
  env?: NodeJS.ProcessEnv;
  /** Largest JSON body the REST API accepts (default 1 MiB). */
  apiBodyLimit?: number;
  /** Run a host agent in this process (what `yunhai up` does) with this driver. */
  localAgent?: { driver: Hypervisor; name?: string; heartbeatMs?: number; stopTimeoutMs?: number };
  /** A host whose heartbeats stop this long is marked down (default 30 s). */
  hostGraceMs?: number;
  /** How often running instances' usage is written (default 60 s). */
  meterIntervalMs?: number;
  /**
   * Energy-saving consolidation loop (off by default; YUNHAI_CONSOLIDATION_INTERVAL_MS also turns
   * it on): how often, how many live migrations per run, how much CPU/RAM headroom to keep.
   */
  consolidation?: { intervalMs?: number; maxMigrations?: number; headroom?: { cpu?: number; ram?: number } };
  /** A guest that has not reported ready this long after starting ends in error (default 10 min). */
  bootTimeoutMs?: number;
  /** Object storage (the s3 listener). */
  s3?: S3Config;
  /** Message queues (the sqs listener). */
  sqs?: SqsConfig;
  /** Billing: currency, tax and loop intervals, out-of-balance policy. */
  billing?: BillingConfig;
}

export interface SqsConfig {
  /** Region in queue ARNs (default us-east-1). */
  region?: string;
  /** How often messages past their retention are swept (default 60 s). */
  sweepIntervalMs?: number;
}

export interface S3Config {
  /**
   * Host names of the S3 endpoint; `<bucket>.<domain>` is virtual-hosted style. Default:
   * `localhost`, `127.0.0.1`, the listen host, and `YUNHAI_S3_DOMAINS` (comma-separated).
   */
  domains?: string[];
  /** Region of buckets created without a LocationConstraint (default us-east-1). */
  region?: string;
  /** Smallest multipart part but the last (default 5 MiB, as AWS). */
  minPartSize?: number;
  /** How often unreferenced blobs are swept (default 10 min); blobs younger than this are never swept. */
  sweepIntervalMs?: number;
  /** How often bucket lifecycle rules are applied (default 5 min). */
  lifecycleIntervalMs?: number;
  /**
   * Bytes of object bodies (up to 1 MiB each) kept in memory for GETs (default 256 MiB, or
   * `YUNHAI_S3_READ_CACHE_MB`; 0 turns it off). See services/objects/blob-cache.ts.
   */
  readCacheBytes?: number;
}

export interface ControlPlane {
  endpoints: Record<ListenerName, string>;
  /** Set only on the first start of a fresh database. */
  rootCredentials: RootCredentials | null;
  database: Database;
  iam: IamService;
  images: ImageService;
  compute: ComputeService;
  hosts: HostService;
  objects: ObjectService;
  queues: QueueService;
  billing: BillingService;
  /** The in-process agent once registered (null without `localAgent`, or when it failed to start). */
  agent(): Promise<Agent | null>;
  metrics: Metrics;
  logger: Logger;
  close(): Promise<void>;
}

function makeLogger(cfg: ControlPlaneConfig): Logger {
  const level = cfg.logLevel ?? 'info';
  if (cfg.logFile)
    return pino(
      { level, base: { pid: process.pid } },
      pino.destination({ dest: cfg.logFile, mkdir: true, sync: false }),
    );
  return pino({ level, base: { pid: process.pid } });
}

const renderJsonError = (
  err: { code: string; message: string; status: number },
  req: FastifyRequest,
  reply: FastifyReply,
) =>
  reply
    .code(err.status)
    .type('application/json')
    .send({ error: { code: err.code, message: err.message, requestId: req.id } });

/**
 * Starts the control plane: database (migrated), master key, IAM bootstrap, and one HTTP
 * listener per protocol. Writes `<dataDir>/endpoints.json`. `close()` stops listeners, then the database.
 */
export async function startControlPlane(cfg: ControlPlaneConfig): Promise<ControlPlane> {
  const env = cfg.env ?? process.env;
  const dataDir = resolve(cfg.dataDir);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const logger = makeLogger(cfg);
  const metrics = createMetrics();
  const database = await openDatabase({
    url: cfg.database ?? join(dataDir, 'yunhai.db'),
    checkpointInWorker: true,
  });
  const sealer = createSealer(loadMasterKey(dataDir, env));
  const iam = createIamService({ database, sealer });
  const rootCredentials = await iam.bootstrap({
    accessKeyId: env.YUNHAI_ROOT_ACCESS_KEY || undefined,
    secretAccessKey: env.YUNHAI_ROOT_SECRET_KEY || undefined,
    password: env.YUNHAI_ROOT_PASSWORD || undefined,
  });
  if (rootCredentials) {
    writeFileSync(join(dataDir, 'credentials.json'), JSON.stringify(rootCredentials, null, 2) + '\n', {
      mode: 0o600,
    });
  }

  const notifier = createHostNotifier();
  const consoles = createConsoleStore(dataDir);
  const images = createImageService({ database, dataDir, logger });
  const compute = createComputeService({
    database,
    sealer,
    images,
    notifier,
    scheduler: {
      weighers: parseWeighers(env.YUNHAI_SCHEDULER_WEIGHERS ?? 'spread'),
      overcommit: parseOvercommit(env.YUNHAI_SCHEDULER_OVERCOMMIT ?? ''),
    },
    placementCacheMs: cacheMsFrom(env.YUNHAI_PLACEMENT_CACHE_MS),
  });
  const relay = createConsoleRelay({ notifier, logger: logger.child({ component: 'console-relay' }) });
  const hosts = createHostService({
    database,
    sealer,
    compute,
    notifier,
    graceMs: cfg.hostGraceMs,
    consoleSessions: (hostId) => relay.sessionsFor(hostId),
  });
  await compute.seedDefaultFlavors();
  const objectMeter = createObjectMeter(database);
  const blobs = withReadCache(createFsBlobStore({ dir: join(dataDir, 'blobs') }), {
    maxBytes: cfg.s3?.readCacheBytes ?? readCacheBytesFrom(env.YUNHAI_S3_READ_CACHE_MB),
  });
  readCacheMetrics(metrics, blobs.cacheStats);
  const objects = createObjectService({
    database,
    blobs,
    region: cfg.s3?.region,
    meter: objectMeter,
    logger: logger.child({ component: 'objects' }),
    minPartSize: cfg.s3?.minPartSize,
    lifecycleIntervalMs: cfg.s3?.lifecycleIntervalMs,
    sealer,
  });
  const queueMeter = createQueueMeter(database);
  const databaseUrl = cfg.database ?? join(dataDir, 'yunhai.db');
  const queues = createQueueService({
    database,
    meter: queueMeter,
    region: cfg.sqs?.region,
    logger: logger.child({ component: 'queues' }),
    ...(database.dialect === 'postgres' ? { listenUrl: databaseUrl } : {}),
  });
  const billing = createBillingService({
    database,
    compute,
    queues,
    logger: logger.child({ component: 'billing' }),
    config: cfg.billing,
  });
  await billing.seed();
  const startedAt = Date.now();

  const credentials: CredentialSource = {
    credentialForKey: (id) => iam.credentialForKey(id),
    principalForToken: (t) => iam.principalForToken(t),
    auditAuthFailure: (m) => iam.auditAuthFailure(m),
    mac: (v) => sealer.mac(v),
  };

  // ---- api listener: REST, OpenAPI, health, metrics --------------------------------------
  const api = createBaseServer({
    name: 'api',
    logger,
    metrics,
    bodyLimit: cfg.apiBodyLimit ?? 1024 * 1024,
    renderError: renderJsonError,
  });
  // WebSockets (interactive consoles); registered first so every later route knows upgrades.
  await api.register(fastifyWebsocket, { options: { maxPayload: 1024 * 1024 } });
  const routes: RouteDef[] = [
    ...iamRoutes(iam),
    ...auditRoutes(database),
    ...usageRoutes(database),
    ...imageRoutes(images),
    ...tinyImageRoutes({ iam, images, logger }),
    ...computeRoutes(compute, consoles),
    ...hostRoutes(hosts),
    ...queueRoutes(queues, () => endpoints.sqs),
    ...billingRoutes(billing),
    ...bucketRoutes(database),
    ...objectRoutes({ objects, iam, s3Endpoint: () => endpoints.s3 }),
    endpointsRoute(() => endpoints),
  ];
  registerAgentRoutes(api, { hosts, compute, images, consoles, relay });
  const apiAuth: AuthOptions = { allowBearer: true, service: 'yunhai', auditAction: 'api:Authenticate' };
  registerConsoleWsRoute(api, API_PREFIX, {
    relay,
    compute,
    database,
    // Browsers cannot set headers on a WebSocket: `?token=` carries the session token there.
    // The portal's same-origin page sends its cookie instead (Origin checked: no cross-site hijack).
    authenticate: (req, queryToken) =>
      authenticate(
        credentials,
        {
          ...authRequestOf(req),
          sessionCookie: queryToken ?? (sameOrigin(req) ? sessionCookieOf(req) : undefined),
        },
        apiAuth,
      ),
  });
  api.addHook('preValidation', async (req) => {
    // JSON bodies for the REST API; anything else is refused before it reaches a handler.
    if (req.rawBody === undefined || !req.url.startsWith(API_PREFIX)) return;
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/json')
      throw new YunhaiError('UnsupportedMediaType', 'The REST API accepts only application/json bodies.');
    try {
      req.body = JSON.parse(req.rawBody.toString('utf8'));
    } catch {
      throw new YunhaiError('MalformedJSON', 'The request body is not valid JSON.');
    }
  });
  const restAuthenticate = async (req: FastifyRequest) => {
    const authz = req.headers.authorization;
    // The portal's session cookie counts only when no Authorization header is sent.
    const cookie = authz === undefined ? sessionCookieOf(req) : undefined;
    const principal = await authenticate(
      credentials,
      { ...authRequestOf(req), sessionCookie: cookie },
      apiAuth,
    );
    const sessionToken = authz?.startsWith('Bearer ') ? authz.slice(7).trim() : cookie;
    return { principal, sessionToken };
  };
  mountRoutes(api, API_PREFIX, routes, { authenticate: restAuthenticate });
  await registerObjectTransferRoutes(api, API_PREFIX, { objects, authenticate: restAuthenticate });
  const doc = openApiDocument(routes, { title: 'Yunhai API', version: VERSION, prefix: API_PREFIX });
  api.get(`${API_PREFIX}/openapi.json`, async () => doc);
  api.get('/healthz', async () => ({ status: 'ok' }));
  api.get('/readyz', async (_req, reply) => {
    try {
      await database.ping();
      return { status: 'ready', database: database.dialect };
    } catch (e) {
      return reply.code(503).send({ status: 'not ready', error: String(e) });
    }
  });
  api.get('/metrics', async (_req, reply) =>
    reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()),
  );
  registerSessionCookie(api, API_PREFIX);
  registerPortal(api, {
    apiPrefix: API_PREFIX,
    info: { name: 'yunhai', version: VERSION, api: API_PREFIX, openapi: `${API_PREFIX}/openapi.json` },
  });

  // ---- iam and sts listeners: AWS Query protocol -----------------------------------------
  const queryListener = (service: 'iam' | 'sts') => {
    const app = createBaseServer({
      name: service,
      logger,
      metrics,
      bodyLimit: 1024 * 1024,
      renderError: queryErrorRenderer(service),
    });
    registerQueryApi(app, { service, iam, credentials });
    return app;
  };
  const iamApp = queryListener('iam');
  const stsApp = queryListener('sts');

  // ---- s3 listener: the S3 REST protocol -------------------------------------------------
  const s3App = createBaseServer({
    name: 's3',
    logger,
    metrics,
    bodyLimit: 1024 * 1024,
    renderError: s3ErrorRenderer,
  });
  const s3Domains = new Set(['localhost', '127.0.0.1', ...(cfg.s3?.domains ?? [])]);
  for (const d of (env.YUNHAI_S3_DOMAINS ?? '').split(','))
    if (d.trim()) s3Domains.add(d.trim().toLowerCase());
  if (!['0.0.0.0', '::'].includes(cfg.host)) s3Domains.add(cfg.host.toLowerCase());
  registerS3Api(s3App, { objects, credentials, domains: [...s3Domains] });

  // ---- sqs listener: SQS JSON 1.0 and Query protocols ------------------------------------
  const sqsApp = createBaseServer({
    name: 'sqs',
    logger,
    metrics,
    // A 256 KiB message, form-encoded (up to 3x) with its attributes.
    bodyLimit: 1024 * 1024,
    renderError: sqsErrorRenderer,
  });
  registerSqsApi(sqsApp, { queues, credentials, metrics });

  const apps: Record<ListenerName, FastifyInstance> = {
    api,
    iam: iamApp,
    sts: stsApp,
    s3: s3App,
    sqs: sqsApp,
  };
  const endpoints = {} as Record<ListenerName, string>;
  try {
    for (const [i, name] of LISTENERS.entries()) {
      const port = cfg.ports?.[name] ?? (cfg.port === 0 ? 0 : cfg.port + i);
      await apps[name].listen({ host: cfg.host, port });
      const addr = apps[name].server.address();
      const actual = typeof addr === 'object' && addr ? addr.port : port;
      const host =
        cfg.host === '0.0.0.0' || cfg.host === '::'
          ? '127.0.0.1'
          : cfg.host.includes(':')
            ? `[${cfg.host}]`
            : cfg.host;
      endpoints[name] = `http://${host}:${actual}`;
    }
  } catch (e) {
    await Promise.all(Object.values(apps).map((a) => a.close().catch(() => {})));
    await database.close();
    throw e;
  }
  // The web portal is served by the api listener at `/`.
  (endpoints as Record<string, string>).portal = endpoints.api;
  writeFileSync(join(dataDir, 'endpoints.json'), JSON.stringify(endpoints, null, 2) + '\n');
  logger.info({ endpoints, database: database.dialect }, 'control plane started');

  // ---- background loops ------------------------------------------------------------------
  const loops: NodeJS.Timeout[] = [];
  const every = (name: string, ms: number, fn: () => Promise<unknown>) => {
    const timer = setInterval(() => {
      fn().catch((err) => logger.error({ err: String(err), loop: name }, 'background loop failed'));
    }, ms);
    timer.unref();
    loops.push(timer);
  };
  every('host-monitor', Math.min(5000, Math.max(200, Math.floor((cfg.hostGraceMs ?? 30_000) / 3))), () =>
    hosts.markLostHosts(),
  );
  every('metering', cfg.meterIntervalMs ?? 60_000, () => compute.meterRunning());
  // Consolidation runs finish (hosts emptied → standby) whether started by an admin or the loop;
  // the loop itself is off unless an interval is configured.
  every('consolidation-progress', 2000, () => compute.consolidation.progress());
  const consolidateMs = cfg.consolidation?.intervalMs ?? Number(env.YUNHAI_CONSOLIDATION_INTERVAL_MS ?? 0);
  if (consolidateMs > 0)
    every('consolidation', consolidateMs, () => compute.consolidation.tick(cfg.consolidation ?? {}));
  every('objects-metering', cfg.meterIntervalMs ?? 60_000, () => objectMeter.flush());
  every('queues-metering', cfg.meterIntervalMs ?? 60_000, () => queueMeter.flush());
  every('queues-sweep', cfg.sqs?.sweepIntervalMs ?? 60_000, () => queues.sweep());
  queues.resumeMoveTasks();
  // Usage written before a crash is rated at start-up; the loop rates new rows seconds after they land.
  billing.rate({ full: true }).catch((err) => logger.error({ err: String(err) }, 'start-up rating failed'));
  every('billing-rate', cfg.billing?.rateIntervalMs ?? 5000, () => billing.rate());
  every('billing-policy', cfg.billing?.policyIntervalMs ?? 30_000, () => billing.policyPass());
  const sweepMs = cfg.s3?.sweepIntervalMs ?? 600_000;
  every('objects-sweep', sweepMs, () => objects.sweepOrphans(Date.now() - sweepMs));
  every('objects-lifecycle', objects.lifecycleIntervalMs, () => objects.runLifecycle());
  // Blobs written before this process started and never committed are orphans of a crash.
  const startupSweep = objects
    .sweepOrphans(startedAt)
    .catch((err) => logger.error({ err: String(err) }, 'start-up orphan sweep failed'));
  const bootTimeoutMs = cfg.bootTimeoutMs ?? 600_000;
  every('boot-deadlines', Math.min(10_000, Math.max(200, Math.floor(bootTimeoutMs / 4))), () =>
    compute.checkBootDeadlines(bootTimeoutMs, (id) => consoles.tail(id)),
  );

  // ---- the local host agent (yunhai up) --------------------------------------------------
  // Started in the background: probing the accelerator can take seconds, start-up should not.
  let agentStarting: Promise<Agent | null> = Promise.resolve(null);
  const localAgent = cfg.localAgent;
  if (localAgent) {
    const tokenFile = join(dataDir, 'agent-registration.token');
    let token = existsSync(tokenFile) ? readFileSync(tokenFile, 'utf8').trim() : '';
    const stored = await database.db
      .selectFrom('settings')
      .select('value')
      .where('key', '=', 'agent_registration_token')
      .executeTakeFirst();
    if (!token || stored?.value !== sealer.mac(token)) {
      token = await hosts.createRegistrationToken();
      writeFileSync(tokenFile, token + '\n', { mode: 0o600 });
    }
    agentStarting = startAgent({
      controlPlane: endpoints.api,
      registrationToken: token,
      dataDir: join(dataDir, 'agent'),
      name: localAgent.name ?? hostname(),
      driver: localAgent.driver,
      logger: logger.child({ component: 'agent' }),
      heartbeatMs: localAgent.heartbeatMs,
      stopTimeoutMs: localAgent.stopTimeoutMs,
    }).catch((err) => {
      logger.error({ err: String(err) }, 'the local host agent failed to start');
      return null;
    });
  }

  let closed: Promise<void> | undefined;
  return {
    endpoints,
    rootCredentials,
    database,
    iam,
    images,
    compute,
    hosts,
    objects,
    queues,
    billing,
    agent: () => agentStarting,
    metrics,
    logger,
    close() {
      closed ??= (async () => {
        for (const t of loops) clearInterval(t);
        relay.closeAll();
        await (await agentStarting)?.stop();
        await cfg.localAgent?.driver.close();
        await images.settle();
        // Long polls return at once, so the listeners close without waiting out WaitTimeSeconds.
        const queuesClosed = queues.close();
        await Promise.all(Object.values(apps).map((a) => a.close()));
        await queuesClosed;
        await queueMeter
          .flush()
          .catch((err) => logger.error({ err: String(err) }, 'final queue metering flush failed'));
        await startupSweep;
        await objectMeter
          .flush()
          .catch((err) => logger.error({ err: String(err) }, 'final metering flush failed'));
        await billing.settle();
        billing.close();
        await objects.close();
        await database.close();
        logger.info('control plane stopped');
        logger.flush?.();
      })();
      return closed;
    },
  };
}

/** The blob read cache's size and hit counts at /metrics, read when scraped. */
function readCacheMetrics(metrics: Metrics, stats: ReadCacheStats) {
  new Gauge({
    name: 'yunhai_s3_read_cache_bytes',
    help: 'Bytes of object bodies the s3 listener keeps in memory for GETs',
    registers: [metrics.registry],
    collect() {
      this.set(stats.bytes);
    },
  });
  new Counter({
    name: 'yunhai_s3_read_cache_reads_total',
    help: 'Blob reads answered from the read cache (hit) or from the store (miss)',
    labelNames: ['result'] as const,
    registers: [metrics.registry],
    collect() {
      // The cache counts; the counter shows its totals.
      this.reset();
      this.inc({ result: 'hit' }, stats.hits);
      this.inc({ result: 'miss' }, stats.misses);
    },
  });
}

/** YUNHAI_S3_READ_CACHE_MB: MiB of object bodies kept in memory for GETs (default 256; 0: off). */
function readCacheBytesFrom(v: string | undefined): number {
  if (v === undefined || v === '') return 256 * 1024 * 1024;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0)
    throw new Error(`YUNHAI_S3_READ_CACHE_MB must be an integer >= 0, got ${v}`);
  return n * 1024 * 1024;
}

/** YUNHAI_PLACEMENT_CACHE_MS: how long creates may reuse a compiled fleet snapshot (0: never). */
function cacheMsFrom(v: string | undefined): number | undefined {
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0)
    throw new Error(`YUNHAI_PLACEMENT_CACHE_MS must be an integer >= 0, got ${v}`);
  return n;
}
