import type { Logger } from 'pino';
import { ensureTinyImage } from '../agent/images/tiny.js';
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
