import { z } from 'zod';
import { pageQuery } from '../../platform/http/pagination.js';
import { type RouteDef, route } from '../../platform/http/rest.js';
import type { ImageService } from './service.js';

const fileRef = z.object({ name: z.string(), size: z.number(), sha256: z.string() });
export const imageSchema = z.object({
  id: z.string(),
  tenantId: z.string().nullable(),
  name: z.string(),
  visibility: z.enum(['public', 'private']),
  format: z.enum(['qcow2', 'raw', 'iso', 'kernel']),
  osType: z.string(),
  osDistro: z.string(),
  firmware: z.enum(['bios', 'uefi']),
  status: z.enum(['importing', 'available', 'error']),
  error: z.string().nullable(),
  files: z.object({ disk: fileRef.optional(), kernel: fileRef.optional(), initrd: fileRef.optional() }),
  cmdline: z.string().nullable(),
  sizeBytes: z.number(),
  virtualSizeBytes: z.number(),
  minDiskGiB: z.number(),
  createdAt: z.string(),
});
const imageId = z.strictObject({
  id: z.string().regex(/^img-[a-z0-9]{12}$/, 'an image id looks like img-xxxxxxxxxxxx'),
});
const source = z
  .string()
  .min(1)
  .max(2048)
  .refine(
    (s) => /^https?:\/\//.test(s) || s.startsWith('/'),
    'an absolute path on the control-plane host or an http(s) URL',
  );

export function imageRoutes(images: ImageService): RouteDef[] {
  return [
    route({
      method: 'GET',
      path: '/images',
      operationId: 'listImages',
      summary: 'Public images and your tenant’s own.',
      tag: 'images',
      query: pageQuery.extend({
        visibility: z.enum(['public', 'private']).optional(),
        status: z.enum(['importing', 'available', 'error']).optional(),
      }),
      response: z.object({ items: z.array(imageSchema), nextCursor: z.string().nullable() }),
      handler: (ctx, { query }) => images.list(ctx, query),
    }),
    route({
      method: 'POST',
      path: '/images',
      operationId: 'importImage',
      summary:
        'Import an image from a file on the control-plane host or a URL (qcow2, raw, ISO, or kernel + initrd). Runs in the background.',
      tag: 'images',
      body: z.strictObject({
        name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/),
        visibility: z.enum(['public', 'private']).default('private'),
        format: z.enum(['qcow2', 'raw', 'iso', 'kernel']),
        source: z.strictObject({
          disk: source.optional(),
          kernel: source.optional(),
          initrd: source.optional(),
        }),
        osType: z.enum(['linux', 'windows', 'bsd', 'other']).default('linux'),
        osDistro: z.string().max(64).default('unknown'),
        firmware: z.enum(['bios', 'uefi']).default('bios'),
        cmdline: z.string().max(1024).optional(),
        sha256: z
          .string()
          .regex(/^[0-9a-fA-F]{64}$/)
          .optional(),
      }),
      status: 202,
      response: imageSchema,
      handler: (ctx, { body }) => images.importImage(ctx, body),
    }),
    route({
      method: 'GET',
      path: '/images/{id}',
      operationId: 'getImage',
      summary: 'Show an image.',
      tag: 'images',
      params: imageId,
      response: imageSchema,
      handler: (ctx, { params }) => images.get(ctx, params.id),
    }),
    route({
      method: 'DELETE',
      path: '/images/{id}',
      operationId: 'deleteImage',
      summary: 'Delete an image no instance uses.',
      tag: 'images',
      params: imageId,
      status: 204,
      handler: (ctx, { params }) => images.remove(ctx, params.id),
    }),
  ];
}
