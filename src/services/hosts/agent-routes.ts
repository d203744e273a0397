import { createReadStream } from 'node:fs';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { HostsTable } from '../../platform/db/schema.js';
import { YunhaiError } from '../../platform/errors.js';
import { validationError } from '../../platform/http/rest.js';
import { CONSOLE_CLOSE, type ConsoleRelay, closeSocket, holdMessages } from '../compute/console-relay.js';
import type { ConsoleStore } from '../compute/console-store.js';
import type { ComputeService } from '../compute/service.js';
import type { ImageService } from '../images/service.js';
import type { HostService } from './service.js';

/** Prefix of the agent protocol on the api listener. */
export const AGENT_PREFIX = '/agent/v1';

const capabilities = z.strictObject({
  driver: z.enum(['qemu', 'fake']),
  accelerator: z.enum(['kvm', 'tcg', 'fake']),
  hypervisorVersion: z.string().max(100),
  vcpus: z.number().int().min(1).max(100_000),
  memoryMiB: z.number().int().min(64),
  diskGiB: z.number().int().min(0),
  firmware: z.array(z.enum(['bios', 'uefi'])).max(4),
});
const registerBody = z.strictObject({
  registrationToken: z.string().min(10).max(200),
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/),
  agentVersion: z.string().max(50),
  capabilities,
});
const eventBody = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('running') }),
  z.strictObject({ type: z.literal('guest-ready') }),
  z.strictObject({
    type: z.literal('stopped'),
    reason: z.string().max(2000).optional(),
    powerSeq: z.number().int().min(0).optional(),
  }),
  z.strictObject({
    type: z.enum(['crashed', 'error']),
    reason: z.string().max(8000),
    consoleTail: z.string().max(8000).optional(),
    powerSeq: z.number().int().min(0).optional(),
  }),
  z.strictObject({
    type: z.literal('resized'),
    vcpus: z.number().int().min(1),
    memoryMiB: z.number().int().min(1),
  }),
  z.strictObject({ type: z.literal('deleted') }),
]);
const instanceParam = z.strictObject({ id: z.string().regex(/^i-[a-z0-9]{12}$/) });
const migrationParam = z.strictObject({ id: z.string().regex(/^mig-[a-z0-9]{12}$/) });
const bytes = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const migrationEventBody = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('prepared'),
    migrateUri: z
      .string()
      .regex(/^tcp:[A-Za-z0-9.:[\]-]+:\d{1,5}$|^fake-migrate:\/\/\S+$/)
      .max(300),
    diskUri: z
      .string()
      .regex(/^nbd:\/\/\S+$|^fake-migrate:\/\/\S+$/)
      .max(300),
  }),
  z.strictObject({
    type: z.literal('progress'),
    phase: z.enum(['disk', 'memory']),
    transferredBytes: bytes,
    totalBytes: bytes,
    remainingBytes: bytes,
  }),
  z.strictObject({
    type: z.literal('transferred'),
    downtimeMs: z.number().int().min(0),
    transferredBytes: bytes,
    totalTimeMs: z.number().int().min(0),
  }),
  z.strictObject({ type: z.literal('completed') }),
  z.strictObject({ type: z.literal('failed'), reason: z.string().max(4000) }),
]);

function json<T extends z.ZodType>(schema: T, req: FastifyRequest): z.output<T> {
  let value: unknown;
  try {
    value = req.rawBody ? JSON.parse(req.rawBody.toString('utf8')) : undefined;
  } catch {
    throw new YunhaiError('MalformedJSON', 'The request body is not valid JSON.');
  }
  const r = schema.safeParse(value);
  if (!r.success) throw validationError(r.error, 'body');
  return r.data;
}

function parse<T extends z.ZodType>(schema: T, value: unknown, where: string): z.output<T> {
  const r = schema.safeParse(value);
  if (!r.success) throw validationError(r.error, where);
  return r.data;
}

/**
 * The agent protocol: how host agents register, heartbeat, long-poll their desired state,
 * report what happened and fetch image files. Every call but register carries the host's own
 * bearer token; an agent can touch only instances placed on its host.
 */
export function registerAgentRoutes(
  app: FastifyInstance,
  deps: {
    hosts: HostService;
    compute: ComputeService;
    images: ImageService;
    consoles: ConsoleStore;
    /** The interactive console hub; without it the console WebSocket route is not offered. */
    relay?: ConsoleRelay;
  },
) {
  const { hosts, compute, images, consoles, relay } = deps;

  async function hostOf(req: FastifyRequest): Promise<HostsTable> {
    const authz = req.headers.authorization;
    const token = authz?.startsWith('Bearer ') ? authz.slice(7).trim() : undefined;
    const h = token ? await hosts.hostForToken(token) : undefined;
    if (!h) throw new YunhaiError('Unauthenticated', 'A valid host token is required.');
    return h;
  }

  async function ownInstance(h: HostsTable, id: string) {
    if (!(await compute.isPlacedOn(h.id, id)))
      throw new YunhaiError('NotFound', `Instance ${id} is not placed on host ${h.name}.`);
  }

  app.post(`${AGENT_PREFIX}/register`, async (req) => {
    const body = json(registerBody, req);
    return hosts.register({ ...body, sourceIp: req.ip });
  });

  app.post(`${AGENT_PREFIX}/heartbeat`, async (req) => {
    const h = await hostOf(req);
    return hosts.heartbeat(h.id);
  });

  app.get(`${AGENT_PREFIX}/desired`, async (req, reply) => {
    const h = await hostOf(req);
    const q = parse(
      z.object({
        after: z.coerce.number().int().min(0).default(0),
        wait: z.coerce.number().int().min(0).max(60).default(0),
        /** The console-session generation the agent last saw; a different one answers at once. */
        consoles: z.coerce.number().int().min(0).optional(),
      }),
      req.query,
      'query',
    );
    const abort = new AbortController();
    // The response closes early only when the agent hangs up; then stop waiting.
    reply.raw.once('close', () => abort.abort());
    return hosts.desired(h.id, q.after, q.wait * 1000, abort.signal, q.consoles);
  });

  app.post(`${AGENT_PREFIX}/instances/:id/events`, async (req) => {
    const h = await hostOf(req);
    const { id } = parse(instanceParam, req.params, 'path');
    const e = json(eventBody, req);
    await compute.applyAgentEvent(h.id, id, e);
    return { ok: true };
  });

  app.post(`${AGENT_PREFIX}/migrations/:id/events`, async (req) => {
    const h = await hostOf(req);
    const { id } = parse(migrationParam, req.params, 'path');
    const e = json(migrationEventBody, req);
    await compute.migrations.applyEvent(h.id, id, e);
    return { ok: true };
  });

  app.post(`${AGENT_PREFIX}/instances/:id/console`, async (req) => {
    const h = await hostOf(req);
    const { id } = parse(instanceParam, req.params, 'path');
    const { offset } = parse(z.object({ offset: z.coerce.number().int().min(0) }), req.query, 'query');
    await ownInstance(h, id);
    return { size: await consoles.append(id, offset, req.rawBody ?? Buffer.alloc(0)) };
  });

  // The agent's side of an interactive console session: frames from the control plane are
  // keystrokes for the guest, frames to it are guest output. Opened when the desired-state
  // response lists the instance in `consoleSessions`.
  if (relay) {
    app.get(`${AGENT_PREFIX}/instances/:id/console/ws`, { websocket: true }, (ws, req) => {
      const output = holdMessages(ws);
      void (async () => {
        let h: HostsTable;
        try {
          h = await hostOf(req);
        } catch {
          return closeSocket(ws, CONSOLE_CLOSE.unauthenticated, 'A valid host token is required.');
        }
        const r = instanceParam.safeParse(req.params);
        if (!r.success) return closeSocket(ws, CONSOLE_CLOSE.notFound, 'No such instance.');
        try {
          await ownInstance(h, r.data.id);
        } catch (e) {
          return closeSocket(ws, CONSOLE_CLOSE.notFound, e instanceof Error ? e.message : String(e));
        }
        if (ws.readyState !== ws.OPEN) return;
        relay.attachAgent(r.data.id, h.id, ws, output);
      })().catch((err) => {
        req.log.error({ err: String(err) }, 'agent console connect failed');
        closeSocket(ws, 1011, 'internal error');
      });
    });
  }

  app.get(`${AGENT_PREFIX}/instances/:id/secrets`, async (req) => {
    const h = await hostOf(req);
    const { id } = parse(instanceParam, req.params, 'path');
    await ownInstance(h, id);
    return compute.guestSecrets(id);
  });

  app.get(`${AGENT_PREFIX}/images/:id/files/:kind`, async (req, reply) => {
    await hostOf(req);
    const p = parse(
      z.strictObject({
        id: z.string().regex(/^img-[a-z0-9]{12}$/),
        kind: z.enum(['disk', 'kernel', 'initrd']),
      }),
      req.params,
      'path',
    );
    const image = await images.getRow(p.id);
    const path = image && image.status === 'available' ? images.filePath(image, p.kind) : null;
    if (!path) throw new YunhaiError('NotFound', `Image ${p.id} has no ${p.kind} file.`);
    return reply.type('application/octet-stream').send(createReadStream(path));
  });
}
