/**
 * cloud-init NoCloud seed disks: an ISO 9660 (+ Joliet) image labelled `cidata` holding `user-data`,
 * `meta-data` and optionally `network-config`, as described in
 * https://cloudinit.readthedocs.io/en/latest/reference/datasources/nocloud.html.
 * Attached to a VM as a read-only virtio disk; both cloud-init and the tiny guest find it by label.
 */

import { writeFileAtomic } from './atomic-fs.js';
import { buildIso9660, type IsoFile } from './iso9660.js';

export const NOCLOUD_VOLUME_ID = 'cidata';

export interface NoCloudData {
  /** `#cloud-config`, a `#!` script, or anything else cloud-init accepts; empty if absent. */
  userData?: string;
  /** Must contain `instance-id`; `local-hostname` sets the hostname. Rendered as YAML. */
  metaData: Record<string, string>;
  /** cloud-init network configuration (v1 or v2 YAML), written verbatim. */
  networkConfig?: string;
}

/** The seed's files, in the order cloud-init documents them. */
export function noCloudSeedFiles(data: NoCloudData): IsoFile[] {
  const files: IsoFile[] = [
    { path: 'user-data', data: data.userData ?? '' },
    { path: 'meta-data', data: renderMetaData(data.metaData) },
  ];
  if (data.networkConfig !== undefined) files.push({ path: 'network-config', data: data.networkConfig });
  return files;
}

/**
 * Renders meta-data as a flat YAML mapping: `instance-id` first, `local-hostname` second, then the rest
 * in insertion order. Values that YAML would read as something other than the same string (numbers,
 * booleans, dates, anything with special characters) are double-quoted.
 */
export function renderMetaData(meta: Record<string, string>): string {
  const instanceId = meta['instance-id'];
  if (instanceId === undefined || instanceId === '') {
    throw new RangeError('NoCloud meta-data needs an instance-id');
  }
  const keys = Object.keys(meta).sort((a, b) => rank(a) - rank(b));
  return keys.map((k) => `${yamlScalar(k)}: ${yamlScalar(meta[k]!)}\n`).join('');
}

function rank(key: string): number {
  if (key === 'instance-id') return 0;
  if (key === 'local-hostname') return 1;
  return 2; // Array.prototype.sort is stable: the rest keep their order
}

const YAML_RESERVED = /^(y|yes|n|no|true|false|on|off|null)$/i;

/** A YAML scalar that reads back as exactly `s`: plain when unambiguous, else JSON-style double-quoted. */
export function yamlScalar(s: string): string {
  if (/^[A-Za-z_][A-Za-z0-9_./-]*$/.test(s) && !YAML_RESERVED.test(s)) return s;
  // JSON strings are YAML double-quoted scalars; U+2028/2029 and U+0085 are line breaks to YAML.
  return JSON.stringify(s).replace(
    /[\u0085\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** Writes the seed image to `file` atomically (temp file, fsync, rename). */
export async function buildNoCloudSeed(file: string, data: NoCloudData): Promise<void> {
  const image = buildIso9660(noCloudSeedFiles(data), {
    volumeId: NOCLOUD_VOLUME_ID,
    date: new Date(),
    applicationId: 'YUNHAI NOCLOUD SEED',
  });
  await writeFileAtomic(file, image, 0o644);
}
