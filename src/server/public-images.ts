import type { Logger } from 'pino';
import { z } from 'zod';
import { ensureTinyImage } from '../agent/images/tiny.js';
import { type RouteDef, route } from '../platform/http/rest.js';
import { requireAllowed } from '../platform/policy/authorize.js';
import type { IamService } from '../services/iam/service.js';
import type { ImageService } from '../services/images/service.js';

export const TINY_IMAGE_NAME = 'tiny';

/**
 * Makes the tiny Linux guest available as a public image, so a newcomer can launch a VM at once.
 * Builds it from Debian packages on first use (cached), then imports it. Safe to call on every
 * start: does nothing when a public `tiny` image exists.
 */
export async function ensurePublicTinyImage(deps: {
  iam: IamService;
  images: ImageService;
  logger?: Logger;
  onProgress?: (step: string, fraction: number) => void;
}): Promise<{ imageId: string; created: boolean }> {
  const ctx = await deps.iam.systemContext('tiny-image');
  const existing = (await deps.images.list(ctx, { limit: 1000, visibility: 'public' })).items.find(
    (i) => i.name === TINY_IMAGE_NAME && i.status !== 'error',
  );
  if (existing) return { imageId: existing.id, created: false };
  const tiny = await ensureTinyImage();
  const img = await deps.images.importImage(ctx, {
    name: TINY_IMAGE_NAME,
    visibility: 'public',
    format: 'kernel',
    source: { kernel: tiny.kernelPath, initrd: tiny.initrdPath },
    cmdline: tiny.cmdline,
    osType: 'linux',
    osDistro: `debian-kernel-${tiny.kernelVersion}`,
    firmware: 'bios',
  });
  await deps.images.settle();
  deps.logger?.info({ imageId: img.id }, 'public tiny image ready');
  return { imageId: img.id, created: true };
}

/**
 * `POST /images/tiny` (platform admins): builds and publishes the tiny image now if it is not
 * there (e.g. it was deleted, or the host had no network at start). The build runs in the
 * background (minutes on first use); the answer says whether it is ready or building.
 */
export function tinyImageRoutes(deps: {
  iam: IamService;
  images: ImageService;
  logger?: Logger;
}): RouteDef[] {
  let building: Promise<unknown> | undefined;
  return [
    route({
      method: 'POST',
      path: '/images/tiny',
      operationId: 'buildTinyImage',
      summary:
        'Build and publish the tiny Linux guest image if it is missing (platform admins); answers at once with ready or building.',
      tag: 'images',
      status: 202,
      response: z.object({ status: z.enum(['ready', 'building']), imageId: z.string().nullable() }),
      handler: async (ctx) => {
        requireAllowed(ctx.principal, 'images:ImportPublicImage', { tenantId: null });
        const sys = await deps.iam.systemContext('tiny-image');
        const existing = (await deps.images.list(sys, { limit: 1000, visibility: 'public' })).items.find(
          (i) => i.name === TINY_IMAGE_NAME && i.status !== 'error',
        );
        if (existing?.status === 'available') return { status: 'ready' as const, imageId: existing.id };
        if (!building) {
          building = ensurePublicTinyImage(deps)
            .catch((err) => deps.logger?.error({ err: String(err) }, 'building the tiny image failed'))
            .finally(() => {
              building = undefined;
            });
        }
        return { status: 'building' as const, imageId: existing?.id ?? null };
      },
    }),
  ];
}
