import { createReadStream } from 'node:fs';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { HostsTable } from '../../platform/db/schema.js';
import { YunhaiError } from '../../platform/errors.js';
import { validationError } from '../../platform/http/rest.js';
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
  z.strictObject({ type: z.literal('stopped'), reason: z.string().max(2000).optional() }),
  z.strictObject({
    type: z.enum(['crashed', 'error']),
    reason: z.string().max(8000),
    consoleTail: z.string().max(8000).optional(),
  }),
  z.strictObject({
    type: z.literal('resized'),
    vcpus: z.number().int().min(1),
    memoryMiB: z.number().int().min(1),
  }),
  z.strictObject({ type: z.literal('deleted') }),
]);
const instanceParam = z.strictObject({ id: z.string().regex(/^i-[a-z0-9]{12}$/) });

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
  deps: { hosts: HostService; compute: ComputeService; images: ImageService; consoles: ConsoleStore },
) {
  const { hosts, compute, images, consoles } = deps;

  async function hostOf(req: FastifyRequest): Promise<HostsTable> {
    const authz = req.headers.authorization;
    const token = authz?.startsWith('Bearer ') ? authz.slice(7).trim() : undefined;
    const h = token ? await hosts.hostForToken(token) : undefined;
    if (!h) throw new YunhaiError('Unauthenticated', 'A valid host token is required.');
    return h;
  }

  async function ownInstance(h: HostsTable, id: string) {
    const desired = await compute.desiredForHost(h.id);
    if (!desired.some((d) => d.id === id))
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
      }),
      req.query,
      'query',
    );
    const abort = new AbortController();
    // The response closes early only when the agent hangs up; then stop waiting.
    reply.raw.once('close', () => abort.abort());
    return hosts.desired(h.id, q.after, q.wait * 1000, abort.signal);
  });

  app.post(`${AGENT_PREFIX}/instances/:id/events`, async (req) => {
    const h = await hostOf(req);
    const { id } = parse(instanceParam, req.params, 'path');
    const e = json(eventBody, req);
    await compute.applyAgentEvent(h.id, id, e);
    return { ok: true };
  });

  app.post(`${AGENT_PREFIX}/instances/:id/console`, async (req) => {
    const h = await hostOf(req);
    const { id } = parse(instanceParam, req.params, 'path');
    const { offset } = parse(z.object({ offset: z.coerce.number().int().min(0) }), req.query, 'query');
    await ownInstance(h, id);
    return { size: await consoles.append(id, offset, req.rawBody ?? Buffer.alloc(0)) };
  });

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
