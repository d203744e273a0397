import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { apiRequest, loginToken } from './api.js';
import type { TestControlPlane } from './control-plane.js';

/**
 * What compute tests start from: tenants `acme` (owner alice) and `globex` (owner gina), and a
 * public kernel-format image `tiny` made of dummy files (the fake driver never reads them).
 * Returns the three session tokens and the image id.
 */
export async function seedComputeFixture(cp: TestControlPlane) {
  const api = cp.endpoints.api;
  const admin = await loginToken(api, 'admin', 'root-password-1');
  for (const [name, owner] of [
    ['acme', 'alice'],
    ['globex', 'gina'],
  ] as const) {
    await apiRequest(api, admin, 'POST', '/api/v1/tenants', {
      name,
      owner: { name: owner, password: `${owner}-password` },
    });
  }
  const dir = mkdtempSync(join(tmpdir(), 'yh-img-'));
  writeFileSync(join(dir, 'vmlinux'), randomBytes(4096));
  writeFileSync(join(dir, 'initrd'), randomBytes(2048));
  const imp = await apiRequest(api, admin, 'POST', '/api/v1/images', {
    name: 'tiny',
    visibility: 'public',
    format: 'kernel',
    source: { kernel: join(dir, 'vmlinux'), initrd: join(dir, 'initrd') },
    cmdline: 'console=ttyS0',
  });
  if (imp.status !== 202) throw new Error(`image import answered ${imp.status}: ${JSON.stringify(imp.json)}`);
  await cp.images.settle();
  return {
    admin,
    owner: await loginToken(api, 'alice@acme', 'alice-password'),
    other: await loginToken(api, 'gina@globex', 'gina-password'),
    imageId: imp.json.id as string,
  };
}
