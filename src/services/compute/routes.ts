import { z } from 'zod';
import { pageQuery } from '../../platform/http/pagination.js';
import { type RouteDef, route } from '../../platform/http/rest.js';
import type { ConsoleStore } from './console-store.js';
import { GROUP_POLICIES } from './server-groups.js';
import type { ComputeService } from './service.js';

const instanceId = z.strictObject({
  id: z.string().regex(/^i-[a-z0-9]{12}$/, 'an instance id looks like i-xxxxxxxxxxxx'),
});
const name = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/,
    'letters, digits, . _ -, at most 63 characters, starting with a letter or digit',
  );
const states = [
  'building',
  'starting',
  'running',
  'stopping',
  'stopped',
  'rebooting',
  'resizing',
  'deleting',
  'error',
] as const;

const MIGRATION_STATES = ['preparing', 'transferring', 'switching', 'completed', 'failed'] as const;
export const migrationSchema = z.object({
  id: z.string(),
  instanceId: z.string(),
  tenantId: z.string(),
  sourceHost: z.string(),
  targetHost: z.string(),
  kind: z.enum(['live', 'cold']),
  state: z.enum(MIGRATION_STATES),
  reason: z.string(),
  requestedBy: z.string(),
  phase: z.enum(['disk', 'memory']).nullable(),
  transferredBytes: z.number(),
  totalBytes: z.number(),
  remainingBytes: z.number(),
  downtimeMs: z.number().nullable(),
  totalTimeMs: z.number().nullable(),
  error: z.string().nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
  finishedAt: z.string().nullable(),
});
const consolidationSchema = z.object({
  id: z.string(),
  status: z.enum(['planned', 'running', 'completed']),
  dryRun: z.boolean(),
  requestedBy: z.string(),
  options: z.object({
    maxMigrations: z.number(),
    headroom: z.object({ cpu: z.number(), ram: z.number() }),
  }),
  plan: z.object({
    moves: z.array(z.object({ instanceId: z.string(), from: z.string(), to: z.string() })),
    freedHosts: z.array(z.string()),
    skipped: z.array(z.object({ host: z.string(), reason: z.string() })),
    hostsOnBefore: z.number(),
    hostsOnAfter: z.number(),
    wattsBefore: z.number(),
    wattsAfter: z.number(),
    notStarted: z.array(z.string()).optional(),
  }),
  migrations: z.array(z.string()),
  migrationsCompleted: z.number(),
  migrationsFailed: z.number(),
  hostsFreed: z.array(z.string()),
  wattsBefore: z.number(),
  wattsAfter: z.number(),
  wattsSaved: z.number(),
  kwhPerDaySaved: z.number(),
  createdAt: z.string(),
  finishedAt: z.string().nullable(),
});
const hostMoveResult = z.object({
  host: z.string(),
  results: z.array(
    z.object({
      instanceId: z.string(),
      migrationId: z.string().optional(),
      targetHost: z.string().optional(),
      host: z.string().optional(),
      error: z.string().optional(),
    }),
  ),
});

export const instanceSchema = z.object({
  id: z.string(),
  tenantId: z.string(),
  name: z.string(),
  imageId: z.string(),
  flavorId: z.string(),
  hostId: z.string().nullable(),
  state: z.string(),
  desiredState: z.enum(['running', 'stopped', 'deleted']),
  vcpus: z.number(),
  memoryMiB: z.number(),
  diskGiB: z.number(),
  maxVcpus: z.number(),
  maxMemoryMiB: z.number(),
  keyName: z.string().nullable(),
  errorReason: z.string().nullable(),
  guestReady: z.boolean(),
  zone: z.string().nullable(),
  serverGroupId: z.string().nullable(),
  ha: z.boolean(),
  createdAt: z.string(),
  launchedAt: z.string().nullable(),
});
const serverGroupSchema = z.object({
  id: z.string(),
  tenantId: z.string(),
  name: z.string(),
  policy: z.enum(GROUP_POLICIES),
  members: z.array(z.string()),
  createdAt: z.string(),
});
const flavorSchema = z.object({
  id: z.string(),
  name: z.string(),
  tenantId: z.string().nullable(),
  vcpus: z.number(),
  memoryMiB: z.number(),
  diskGiB: z.number(),
  maxVcpus: z.number(),
  maxMemoryMiB: z.number(),
  extraSpecs: z.record(z.string(), z.string()),
  public: z.boolean(),
});
const keyPairSchema = z.object({
  id: z.string(),
  name: z.string(),
  fingerprint: z.string(),
  createdAt: z.string(),
});
const list = <T extends z.ZodType>(item: T) =>
  z.object({ items: z.array(item), nextCursor: z.string().nullable() });

export function computeRoutes(compute: ComputeService, consoles: ConsoleStore): RouteDef[] {
  return [
    route({
      method: 'GET',
      path: '/flavors',
      operationId: 'listFlavors',
      summary: 'Flavors you can launch: public ones and your tenant’s.',
      tag: 'compute',
      response: list(flavorSchema),
      handler: (ctx) => compute.listFlavors(ctx),
    }),
    route({
      method: 'POST',
      path: '/flavors',
      operationId: 'createFlavor',
      summary:
        'Create a flavor (platform admins); tenantId makes it private to one tenant; extraSpecs is aggregate metadata its hosts must carry (e.g. {"ssd":"true"}).',
      tag: 'compute',
      body: z.strictObject({
        name: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/),
        vcpus: z.number().int().min(1).max(256),
        memoryMiB: z
          .number()
          .int()
          .min(64)
          .max(4 * 1024 * 1024),
        diskGiB: z.number().int().min(1).max(65536),
        maxVcpus: z.number().int().min(1).max(256).optional(),
        maxMemoryMiB: z
          .number()
          .int()
          .min(64)
          .max(4 * 1024 * 1024)
          .optional(),
        tenantId: z.string().optional(),
        extraSpecs: z
          .record(z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/), z.string().max(255))
          .refine((m) => Object.keys(m).length <= 32, 'at most 32 extra specs')
          .optional(),
      }),
      status: 201,
      response: flavorSchema,
      handler: (ctx, { body }) => compute.createFlavor(ctx, body),
    }),
    route({
      method: 'DELETE',
      path: '/flavors/{id}',
      operationId: 'deleteFlavor',
      summary: 'Retire a flavor (running instances keep it).',
      tag: 'compute',
      params: z.strictObject({ id: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/) }),
      status: 204,
      handler: (ctx, { params }) => compute.deleteFlavor(ctx, params.id),
    }),
    route({
      method: 'GET',
      path: '/server-groups',
      operationId: 'listServerGroups',
      summary: 'Your server groups with their placement policy and members.',
      tag: 'compute',
      response: list(serverGroupSchema),
      handler: (ctx) => compute.serverGroups.list(ctx),
    }),
    route({
      method: 'POST',
      path: '/server-groups',
      operationId: 'createServerGroup',
      summary:
        'Create a server group: affinity (one host), anti-affinity (different hosts), or soft- variants (preferred, never refused).',
      tag: 'compute',
      status: 201,
      body: z.strictObject({ name, policy: z.enum(GROUP_POLICIES) }),
      response: serverGroupSchema,
      handler: (ctx, { body }) => compute.serverGroups.create(ctx, body),
    }),
    route({
      method: 'GET',
      path: '/server-groups/{id}',
      operationId: 'getServerGroup',
      summary: 'Show a server group by id or name.',
      tag: 'compute',
      params: z.strictObject({ id: z.string().min(1).max(64) }),
      response: serverGroupSchema,
      handler: (ctx, { params }) => compute.serverGroups.get(ctx, params.id),
    }),
    route({
      method: 'DELETE',
      path: '/server-groups/{id}',
      operationId: 'deleteServerGroup',
      summary: 'Delete an empty server group.',
      tag: 'compute',
      params: z.strictObject({ id: z.string().min(1).max(64) }),
      status: 204,
      handler: (ctx, { params }) => compute.serverGroups.delete(ctx, params.id),
    }),
    route({
      method: 'GET',
      path: '/key-pairs',
      operationId: 'listKeyPairs',
      summary: 'Your tenant’s SSH key pairs.',
      tag: 'compute',
      response: list(keyPairSchema),
      handler: (ctx) => compute.listKeyPairs(ctx),
    }),
    route({
      method: 'POST',
      path: '/key-pairs',
      operationId: 'importKeyPair',
      summary: 'Import an OpenSSH public key.',
      tag: 'compute',
      body: z.strictObject({
        name,
        publicKey: z
          .string()
          .min(16)
          .max(16 * 1024),
      }),
      status: 201,
      response: keyPairSchema,
      handler: (ctx, { body }) => compute.importKeyPair(ctx, body),
    }),
    route({
      method: 'DELETE',
      path: '/key-pairs/{name}',
      operationId: 'deleteKeyPair',
      summary: 'Delete a key pair.',
      tag: 'compute',
      params: z.strictObject({ name }),
      status: 204,
      handler: (ctx, { params }) => compute.deleteKeyPair(ctx, params.name),
    }),
    route({
      method: 'GET',
      path: '/instances',
      operationId: 'listInstances',
      summary: 'Instances in your tenant (platform admins: all, or one tenant or host).',
      tag: 'compute',
      query: pageQuery.extend({
        state: z.enum(states).optional(),
        tenantId: z.string().max(64).optional(),
        hostId: z.string().max(64).optional(),
      }),
      response: list(instanceSchema),
      handler: (ctx, { query }) => compute.listInstances(ctx, query),
    }),
    route({
      method: 'POST',
      path: '/instances',
      operationId: 'createInstance',
      summary:
        'Launch an instance; answers at once with state building. Poll until running (guestReady) or error.',
      tag: 'compute',
      body: z.strictObject({
        name,
        image: z.string().min(1).max(128),
        flavor: z.string().min(1).max(64),
        userData: z
          .string()
          .max(64 * 1024)
          .optional(),
        keyName: name.optional(),
        password: z.string().min(8).max(128).optional(),
        zone: name.optional(),
        serverGroup: z.string().min(1).max(64).optional(),
        ha: z.boolean().optional(),
      }),
      status: 202,
      response: instanceSchema,
      handler: (ctx, { body }) => compute.createInstance(ctx, body),
    }),
    route({
      method: 'GET',
      path: '/instances/{id}',
      operationId: 'getInstance',
      summary: 'Show an instance.',
      tag: 'compute',
      params: instanceId,
      response: instanceSchema,
      handler: (ctx, { params }) => compute.getInstance(ctx, params.id),
    }),
    route({
      method: 'DELETE',
      path: '/instances/{id}',
      operationId: 'deleteInstance',
      summary: 'Delete an instance (its disk goes with it).',
      tag: 'compute',
      params: instanceId,
      status: 202,
      response: z.object({ id: z.string(), state: z.string() }),
      handler: async (ctx, { params }) => {
        await compute.deleteInstance(ctx, params.id);
        return { id: params.id, state: 'deleting' };
      },
    }),
    route({
      method: 'POST',
      path: '/instances/{id}/start',
      operationId: 'startInstance',
      summary: 'Start a stopped instance.',
      tag: 'compute',
      params: instanceId,
      status: 202,
      response: instanceSchema,
      handler: (ctx, { params }) => compute.startInstance(ctx, params.id),
    }),
    route({
      method: 'POST',
      path: '/instances/{id}/stop',
      operationId: 'stopInstance',
      summary: 'Stop: ACPI power-off, then a hard stop after the timeout (force: at once).',
      tag: 'compute',
      params: instanceId,
      body: z.strictObject({ force: z.boolean().optional() }).optional(),
      status: 202,
      response: instanceSchema,
      handler: (ctx, { params, body }) => compute.stopInstance(ctx, params.id, { force: body?.force }),
    }),
    route({
      method: 'POST',
      path: '/instances/{id}/reboot',
      operationId: 'rebootInstance',
      summary: 'Reboot a running instance.',
      tag: 'compute',
      params: instanceId,
      status: 202,
      response: instanceSchema,
      handler: (ctx, { params }) => compute.rebootInstance(ctx, params.id),
    }),
    route({
      method: 'POST',
      path: '/instances/{id}/resize',
      operationId: 'resizeInstance',
      summary:
        'Resize. Live (running): vcpus and/or memoryMiB up to the flavor’s maxima, via hotplug and the balloon. Cold (stopped): flavor, to move to another flavor; it boots with the new size.',
      tag: 'compute',
      params: instanceId,
      body: z
        .strictObject({
          vcpus: z.number().int().min(1).max(256).optional(),
          memoryMiB: z.number().int().min(128).optional(),
          flavor: z.string().min(1).max(64).optional(),
        })
        .refine((b) => (b.flavor === undefined) !== (b.vcpus === undefined && b.memoryMiB === undefined), {
          message: 'give either flavor (cold resize) or vcpus/memoryMiB (live resize)',
        }),
      status: 202,
      response: instanceSchema,
      handler: (ctx, { params, body }) =>
        body.flavor !== undefined
          ? compute.coldResizeInstance(ctx, params.id, body.flavor)
          : compute.resizeInstance(ctx, params.id, body),
    }),
    route({
      method: 'POST',
      path: '/instances/{id}/migrate',
      operationId: 'migrateInstance',
      summary:
        'Migrate an instance (platform admins) to the named host, or where the scheduler finds room: live for a running one, cold (with its disk) for a stopped one; follow it at GET /migrations/{id}. A refusal names what each placement filter ruled out.',
      tag: 'compute',
      params: instanceId,
      body: z.strictObject({ host: name.optional() }),
      status: 202,
      response: migrationSchema,
      handler: (ctx, { params, body }) => compute.migrations.migrate(ctx, params.id, { host: body.host }),
    }),
    route({
      method: 'GET',
      path: '/migrations',
      operationId: 'listMigrations',
      summary: 'Live migrations, newest first (platform admins): state, progress, downtime and bytes moved.',
      tag: 'compute',
      query: z.strictObject({
        instance: z
          .string()
          .regex(/^i-[a-z0-9]{12}$/)
          .optional(),
        host: z.string().max(64).optional(),
        state: z.enum(MIGRATION_STATES).optional(),
        limit: z.coerce.number().int().min(1).max(1000).default(100),
      }),
      response: z.object({ items: z.array(migrationSchema) }),
      handler: async (ctx, { query }) => ({
        items: await compute.migrations.list(ctx, {
          instanceId: query.instance,
          host: query.host,
          state: query.state,
          limit: query.limit,
        }),
      }),
    }),
    route({
      method: 'GET',
      path: '/migrations/{id}',
      operationId: 'getMigration',
      summary: 'One live migration.',
      tag: 'compute',
      params: z.strictObject({ id: z.string().regex(/^mig-[a-z0-9]{12}$/) }),
      response: migrationSchema,
      handler: (ctx, { params }) => compute.migrations.get(ctx, params.id),
    }),
    route({
      method: 'POST',
      path: '/hosts/{id}/drain',
      operationId: 'drainHost',
      summary:
        'Put a host into maintenance and live-migrate its running instances away (platform admins); lists each instance’s migration or why it stays.',
      tag: 'hosts',
      params: z.strictObject({ id: name }),
      status: 202,
      response: hostMoveResult,
      handler: (ctx, { params }) => compute.drainHost(ctx, params.id),
    }),
    route({
      method: 'POST',
      path: '/hosts/{id}/evacuate',
      operationId: 'evacuateHost',
      summary:
        'Rebuild every instance of a host that is down on other hosts, from its image (platform admins).',
      tag: 'hosts',
      params: z.strictObject({ id: name }),
      status: 202,
      response: hostMoveResult,
      handler: (ctx, { params }) => compute.evacuateHost(ctx, params.id),
    }),
    route({
      method: 'POST',
      path: '/consolidation/run',
      operationId: 'runConsolidation',
      summary:
        'Pack running instances onto fewer hosts by live migration (platform admins): within maxMigrations and a CPU/RAM headroom, keeping server-group rules; emptied hosts are marked for power-off. dryRun only plans.',
      tag: 'hosts',
      body: z.strictObject({
        dryRun: z.boolean().default(false),
        maxMigrations: z.number().int().min(0).max(1000).optional(),
        headroom: z
          .strictObject({ cpu: z.number().min(0).max(0.9), ram: z.number().min(0).max(0.9) })
          .partial()
          .optional(),
      }),
      status: 202,
      response: consolidationSchema,
      handler: (ctx, { body }) => compute.consolidation.run(body, ctx),
    }),
    route({
      method: 'GET',
      path: '/consolidation/reports',
      operationId: 'listConsolidationReports',
      summary: 'Consolidation runs, newest first: moves, hosts freed, estimated energy saved.',
      tag: 'hosts',
      query: z.strictObject({ limit: z.coerce.number().int().min(1).max(500).default(50) }),
      response: z.object({ items: z.array(consolidationSchema) }),
      handler: async (ctx, { query }) => ({ items: await compute.consolidation.list(ctx, query.limit) }),
    }),
    route({
      method: 'GET',
      path: '/consolidation/reports/{id}',
      operationId: 'getConsolidationReport',
      summary: 'One consolidation run.',
      tag: 'hosts',
      params: z.strictObject({ id: z.string().regex(/^cons-[a-z0-9]{12}$/) }),
      response: consolidationSchema,
      handler: (ctx, { params }) => compute.consolidation.get(params.id, ctx),
    }),
    route({
      method: 'GET',
      path: '/instances/{id}/console',
      operationId: 'getConsoleOutput',
      summary: 'Serial console output from a byte offset; pass `next` back to follow.',
      tag: 'compute',
      params: instanceId,
      query: z.strictObject({
        offset: z.coerce.number().int().min(0).default(0),
        maxBytes: z.coerce
          .number()
          .int()
          .min(1)
          .max(1024 * 1024)
          .default(65536),
      }),
      response: z.object({ data: z.string(), next: z.number(), size: z.number() }),
      handler: async (ctx, { params, query }) => {
        await compute.visibleInstance(ctx, params.id, 'compute:GetConsoleOutput');
        const r = await consoles.read(params.id, query.offset, query.maxBytes);
        return { data: r.data.toString('utf8'), next: r.next, size: await consoles.size(params.id) };
      },
    }),
  ];
}
