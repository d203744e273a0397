import { z } from 'zod';
import { type RouteDef, route } from '../../platform/http/rest.js';
import type { HostService } from './service.js';

export const hostSchema = z.object({
  id: z.string(),
  name: z.string(),
  state: z.enum(['up', 'down']),
  enabled: z.boolean(),
  maintenance: z.boolean(),
  zone: z.string(),
  overcommit: z.object({ cpu: z.number(), ram: z.number(), disk: z.number() }).partial().nullable(),
  aggregates: z.array(z.string()),
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
  power: z.object({ idleWatts: z.number(), peakWatts: z.number(), standby: z.boolean() }),
  lastHeartbeatAt: z.string().nullable(),
});
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const hostParam = z.strictObject({ id: z.string().regex(NAME) });
const overcommit = z
  .strictObject({
    cpu: z.number().min(0.1).max(64),
    ram: z.number().min(0.1).max(4),
    disk: z.number().min(0.1).max(16),
  })
  .partial();
const metadata = z
  .record(z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/), z.string().max(255))
  .refine((m) => Object.keys(m).length <= 64, 'at most 64 metadata keys');
const aggregateSchema = z.object({
  id: z.string(),
  name: z.string(),
  metadata: z.record(z.string(), z.string()),
  overcommit: overcommit.nullable(),
  hosts: z.array(z.string()),
  createdAt: z.string(),
});
const aggParam = z.strictObject({ id: z.string().regex(NAME) });
const zoneSchema = z.object({
  name: z.string(),
  hosts: z.number(),
  hostsUp: z.number(),
  hostsEnabled: z.number(),
  hostsInMaintenance: z.number(),
  hostNames: z.array(z.string()),
  capacity: z.object({ vcpus: z.number(), memoryMiB: z.number(), diskGiB: z.number() }),
  allocated: z.object({
    instances: z.number(),
    vcpus: z.number(),
    memoryMiB: z.number(),
    diskGiB: z.number(),
  }),
});

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
      path: '/availability-zones',
      operationId: 'listAvailabilityZones',
      summary:
        'Availability zones (from the hosts’ zone) with host counts, capacity and allocation (platform admins).',
      tag: 'hosts',
      query: z.strictObject({ zone: z.string().regex(NAME).optional() }),
      response: z.object({ items: z.array(zoneSchema) }),
      handler: (ctx, { query }) => hosts.zones(ctx, query),
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
      method: 'PATCH',
      path: '/hosts/{id}',
      operationId: 'updateHost',
      summary:
        'Set a host’s availability zone, maintenance (drained: no new instances), overcommit ratios (null: inherit) or power draw (idle/peak watts, for consolidation’s energy estimate).',
      tag: 'hosts',
      params: hostParam,
      body: z
        .strictObject({
          zone: z.string().regex(NAME).optional(),
          maintenance: z.boolean().optional(),
          overcommit: overcommit.nullable().optional(),
          idleWatts: z.number().int().min(0).max(100_000).optional(),
          peakWatts: z.number().int().min(0).max(100_000).optional(),
        })
        .refine((b) => b.idleWatts === undefined || b.peakWatts === undefined || b.peakWatts >= b.idleWatts, {
          message: 'peakWatts must be at least idleWatts',
        }),
      response: hostSchema,
      handler: (ctx, { params, body }) => hosts.update(ctx, params.id, body),
    }),
    route({
      method: 'GET',
      path: '/aggregates',
      operationId: 'listAggregates',
      summary: 'Host aggregates with their metadata, overcommit ratios and hosts.',
      tag: 'hosts',
      response: z.object({ items: z.array(aggregateSchema), nextCursor: z.string().nullable() }),
      handler: (ctx) => hosts.aggregates.list(ctx),
    }),
    route({
      method: 'POST',
      path: '/aggregates',
      operationId: 'createAggregate',
      summary:
        'Create a host aggregate. Metadata is matched against flavor requirements; `filter_tenant_id` reserves its hosts for those tenants.',
      tag: 'hosts',
      status: 201,
      body: z.strictObject({
        name: z.string().regex(NAME),
        metadata: metadata.optional(),
        overcommit: overcommit.optional(),
      }),
      response: aggregateSchema,
      handler: (ctx, { body }) => hosts.aggregates.create(ctx, body),
    }),
    route({
      method: 'GET',
      path: '/aggregates/{id}',
      operationId: 'getAggregate',
      summary: 'Show an aggregate by id or name.',
      tag: 'hosts',
      params: aggParam,
      response: aggregateSchema,
      handler: (ctx, { params }) => hosts.aggregates.get(ctx, params.id),
    }),
    route({
      method: 'PATCH',
      path: '/aggregates/{id}',
      operationId: 'updateAggregate',
      summary: 'Replace an aggregate’s metadata and/or overcommit ratios (null clears them).',
      tag: 'hosts',
      params: aggParam,
      body: z.strictObject({ metadata: metadata.optional(), overcommit: overcommit.nullable().optional() }),
      response: aggregateSchema,
      handler: (ctx, { params, body }) => hosts.aggregates.update(ctx, params.id, body),
    }),
    route({
      method: 'DELETE',
      path: '/aggregates/{id}',
      operationId: 'deleteAggregate',
      summary: 'Delete an aggregate (its hosts stay).',
      tag: 'hosts',
      params: aggParam,
      status: 204,
      handler: async (ctx, { params }) => {
        await hosts.aggregates.delete(ctx, params.id);
      },
    }),
    route({
      method: 'POST',
      path: '/aggregates/{id}/hosts',
      operationId: 'addHostToAggregate',
      summary: 'Add a host (id or name) to an aggregate.',
      tag: 'hosts',
      params: aggParam,
      body: z.strictObject({ host: z.string().regex(NAME) }),
      response: aggregateSchema,
      handler: (ctx, { params, body }) => hosts.aggregates.addHost(ctx, params.id, body.host),
    }),
    route({
      method: 'DELETE',
      path: '/aggregates/{id}/hosts/{host}',
      operationId: 'removeHostFromAggregate',
      summary: 'Take a host out of an aggregate.',
      tag: 'hosts',
      params: z.strictObject({ id: z.string().regex(NAME), host: z.string().regex(NAME) }),
      response: aggregateSchema,
      handler: (ctx, { params }) => hosts.aggregates.removeHost(ctx, params.id, params.host),
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
