import { z } from 'zod';
import { type RouteDef, route } from '../../platform/http/rest.js';
import type { HostService } from './service.js';

export const hostSchema = z.object({
  id: z.string(),
  name: z.string(),
  state: z.enum(['up', 'down']),
  enabled: z.boolean(),
  driver: z.string(),
  accelerator: z.string(),
  hypervisorVersion: z.string(),
  agentVersion: z.string(),
  vcpus: z.number(),
  memoryMiB: z.number(),
  diskGiB: z.number(),
  firmware: z.array(z.string()),
  allocated: z.object({
    instances: z.number(),
    vcpus: z.number(),
    memoryMiB: z.number(),
    diskGiB: z.number(),
  }),
  lastHeartbeatAt: z.string().nullable(),
});
const hostParam = z.strictObject({ id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/) });

export function hostRoutes(hosts: HostService): RouteDef[] {
  return [
    route({
      method: 'GET',
      path: '/hosts',
      operationId: 'listHosts',
      summary: 'Compute hosts with capacity and allocation (platform admins).',
      tag: 'hosts',
      response: z.object({ items: z.array(hostSchema), nextCursor: z.string().nullable() }),
      handler: (ctx) => hosts.list(ctx),
    }),
    route({
      method: 'GET',
      path: '/hosts/{id}',
      operationId: 'getHost',
      summary: 'Show a host by id or name.',
      tag: 'hosts',
      params: hostParam,
      response: hostSchema,
      handler: (ctx, { params }) => hosts.get(ctx, params.id),
    }),
    route({
      method: 'POST',
      path: '/hosts/{id}/enable',
      operationId: 'enableHost',
      summary: 'Let the scheduler place new instances on the host.',
      tag: 'hosts',
      params: hostParam,
      response: hostSchema,
      handler: (ctx, { params }) => hosts.setEnabled(ctx, params.id, true),
    }),
    route({
      method: 'POST',
      path: '/hosts/{id}/disable',
      operationId: 'disableHost',
      summary: 'Stop placing new instances on the host (running ones stay).',
      tag: 'hosts',
      params: hostParam,
      response: hostSchema,
      handler: (ctx, { params }) => hosts.setEnabled(ctx, params.id, false),
    }),
    route({
      method: 'POST',
      path: '/hosts/registration-token',
      operationId: 'createRegistrationToken',
      summary:
        'Create the token agents register with (`yunhai agent --token`); replaces the previous one. Shown once.',
      tag: 'hosts',
      status: 201,
      response: z.object({ token: z.string() }),
      handler: async (ctx) => ({ token: await hosts.createRegistrationToken(ctx) }),
    }),
  ];
}
