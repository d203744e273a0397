/**
 * The REST API client. The session lives in an HttpOnly cookie set at sign-in, so requests carry
 * no token; every request sends X-Requested-With, which the API requires for cookie-authenticated
 * state changes (its CSRF defence).
 */
export const API = '/api/v1';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly requestId?: string,
  ) {
    super(message);
  }
}

/** Called when the API answers 401: the session is gone. */
let onUnauthenticated: () => void = () => {};
export function setUnauthenticatedHandler(fn: () => void) {
  onUnauthenticated = fn;
}

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export function qs(params: Record<string, string | number | boolean | undefined | null>): string {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') u.set(k, String(v));
  const s = u.toString();
  return s ? `?${s}` : '';
}

async function errorOf(res: Response): Promise<ApiError> {
  let code = `HTTP${res.status}`;
  let message = res.statusText || `HTTP ${res.status}`;
  let requestId: string | undefined;
  try {
    const j = (await res.json()) as { error?: { code?: string; message?: string; requestId?: string } };
    if (j.error) {
      code = j.error.code ?? code;
      message = j.error.message ?? message;
      requestId = j.error.requestId;
    }
  } catch {
    // not JSON
  }
  return new ApiError(res.status, code, message, requestId);
}

export async function api<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(API + path, {
    method,
    credentials: 'same-origin',
    headers: {
      'x-requested-with': 'yunhai-portal',
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  if (!res.ok) {
    const err = await errorOf(res);
    if (res.status === 401 && path !== '/auth/login') onUnauthenticated();
    throw err;
  }
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  return (text ? JSON.parse(text) : undefined) as T;
}

export const get = <T>(path: string) => api<T>('GET', path);

/** Uploads a file with progress (XMLHttpRequest: fetch has no upload progress). */
export function uploadObject(
  bucket: string,
  key: string,
  file: Blob,
  onProgress: (fraction: number) => void,
): { promise: Promise<void>; abort: () => void } {
  const xhr = new XMLHttpRequest();
  const promise = new Promise<void>((resolve, reject) => {
    xhr.open(
      'PUT',
      `${API}/buckets/${encodeURIComponent(bucket)}/objects/content${qs({ key })}`,
    );
    xhr.setRequestHeader('x-requested-with', 'yunhai-portal');
    xhr.setRequestHeader('content-type', file.type || 'application/octet-stream');
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) onProgress(e.loaded / e.total);
    };
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) return resolve();
      let code = `HTTP${xhr.status}`;
      let message = xhr.statusText;
      try {
        const j = JSON.parse(xhr.responseText) as { error?: { code: string; message: string } };
        if (j.error) ({ code, message } = j.error);
      } catch {
        // not JSON
      }
      if (xhr.status === 401) onUnauthenticated();
      reject(new ApiError(xhr.status, code, message));
    };
    xhr.onerror = () => reject(new ApiError(0, 'NetworkError', 'The upload failed (network error).'));
    xhr.onabort = () => reject(new ApiError(0, 'Aborted', 'The upload was cancelled.'));
    xhr.send(file);
  });
  return { promise, abort: () => xhr.abort() };
}

export const downloadUrl = (bucket: string, key: string) =>
  `${API}/buckets/${encodeURIComponent(bucket)}/objects/content${qs({ key })}`;

// ---- API shapes (what the pages read) ----------------------------------------------------------

export type Role = 'platform-admin' | 'owner' | 'member' | 'readonly';
export interface User {
  id: string;
  tenantId: string;
  name: string;
  role: Role;
  displayName: string;
  email: string | null;
  hasPassword: boolean;
  createdAt: string;
  lastLoginAt: string | null;
  locale?: 'en' | 'zh-CN' | null;
}
export interface Tenant {
  id: string;
  accountId: string;
  name: string;
  displayName: string;
  status: 'active' | 'suspended';
  createdAt: string;
}
export interface WhoAmI {
  user: User;
  tenant: Tenant;
  via: string;
}
export interface Quota {
  resource: string;
  limit: number;
  used: number;
}
export interface Instance {
  id: string;
  tenantId: string;
  name: string;
  imageId: string;
  flavorId: string;
  hostId: string | null;
  state: string;
  desiredState: string;
  vcpus: number;
  memoryMiB: number;
  diskGiB: number;
  maxVcpus: number;
  maxMemoryMiB: number;
  keyName: string | null;
  errorReason: string | null;
  guestReady: boolean;
  createdAt: string;
  launchedAt: string | null;
}
export interface Flavor {
  id: string;
  name: string;
  tenantId: string | null;
  vcpus: number;
  memoryMiB: number;
  diskGiB: number;
  maxVcpus: number;
  maxMemoryMiB: number;
  public: boolean;
}
export interface Image {
  id: string;
  tenantId: string | null;
  name: string;
  visibility: 'public' | 'private';
  format: string;
  osType: string;
  osDistro: string;
  status: 'importing' | 'available' | 'error';
  error: string | null;
  sizeBytes: number;
  minDiskGiB: number;
  createdAt: string;
}
export interface KeyPair {
  id: string;
  name: string;
  fingerprint: string;
  createdAt: string;
}
export interface Bucket {
  name: string;
  tenantName: string;
  region: string;
  versioning: 'Disabled' | 'Enabled' | 'Suspended';
  objectLockEnabled: boolean;
  objectCount: number;
  sizeBytes: number;
  createdAt: string;
}
export interface ObjectEntry {
  key: string;
  size: number;
  etag: string;
  lastModified: string;
  contentType: string | null;
  versionId: string | null;
}
export interface Queue {
  name: string;
  url: string;
  arn: string;
  fifo: boolean;
  createdAt: string;
  attributes?: Record<string, string>;
}
export interface Message {
  messageId: string;
  receiptHandle: string;
  body: string;
  attributes: Record<string, string>;
}
export interface AccessKey {
  accessKeyId: string;
  status: 'Active' | 'Inactive';
  createdAt: string;
  lastUsedAt?: string | null;
  secretAccessKey?: string;
}
export interface UsageRecord {
  id: string;
  meter: string;
  service: string;
  resourceId: string;
  quantity: number;
  periodStart: string;
  periodEnd: string;
}
export interface Host {
  id: string;
  name: string;
  state: 'up' | 'down';
  enabled: boolean;
  maintenance: boolean;
  zone: string;
  driver: string;
  accelerator: string;
  vcpus: number;
  memoryMiB: number;
  diskGiB: number;
  allocated: { instances: number; vcpus: number; memoryMiB: number; diskGiB: number };
  overcommit: { cpu?: number; ram?: number; disk?: number } | null;
  aggregates: string[];
  power: { idleWatts: number; peakWatts: number; standby: boolean };
  lastHeartbeatAt: string | null;
}
export interface Aggregate {
  id: string;
  name: string;
  metadata: Record<string, string>;
  overcommit: { cpu?: number; ram?: number; disk?: number } | null;
  hosts: string[];
  createdAt: string;
}
export interface Migration {
  id: string;
  instanceId: string;
  tenantId: string;
  sourceHost: string;
  targetHost: string;
  kind: 'live' | 'cold';
  state: 'preparing' | 'transferring' | 'switching' | 'completed' | 'failed';
  reason: string;
  requestedBy: string;
  phase: 'disk' | 'memory' | null;
  transferredBytes: number;
  totalBytes: number;
  remainingBytes: number;
  downtimeMs: number | null;
  totalTimeMs: number | null;
  error: string | null;
  createdAt: string;
  finishedAt: string | null;
}
export interface ConsolidationReport {
  id: string;
  status: 'planned' | 'running' | 'completed';
  dryRun: boolean;
  requestedBy: string;
  plan: {
    moves: { instanceId: string; from: string; to: string }[];
    freedHosts: string[];
    skipped: { host: string; reason: string }[];
    hostsOnBefore: number;
    hostsOnAfter: number;
  };
  migrations: string[];
  migrationsCompleted: number;
  migrationsFailed: number;
  hostsFreed: string[];
  wattsBefore: number;
  wattsAfter: number;
  wattsSaved: number;
  kwhPerDaySaved: number;
  createdAt: string;
  finishedAt: string | null;
}
export interface AuditEvent {
  seq: number;
  id: string;
  time: string;
  tenantId: string | null;
  principal: string;
  action: string;
  resource: string;
  outcome: 'success' | 'failure' | 'denied';
  errorCode: string | null;
  sourceIp: string;
  requestId: string;
  details: Record<string, unknown>;
}
export interface BillingSpend {
  tenantId: string;
  currency: string;
  periodStart: string;
  periodEnd: string;
  totalMicros: number;
  byService: { service: string; amountMicros: number }[];
  ratedThrough: string | null;
}
export interface BillingAccount {
  mode: 'prepaid' | 'postpaid';
  status: string;
  statusSince: string | null;
  balanceMicros: number;
  creditMicros: number;
  unbilledMicros: number;
  unpaidMicros: number;
  availableMicros: number;
  currency: string;
}
export interface ShowbackItem {
  time: string;
  key: string;
  amountMicros: number;
  quantity: string;
}
export interface Showback {
  currency: string;
  items: ShowbackItem[];
}
export interface InvoiceLine {
  service: string;
  resourceId: string;
  meter: string;
  unit: string;
  quantity: string;
  amountMicros: number;
}
export interface Invoice {
  id: string;
  number: string;
  tenantId: string;
  periodStart: string;
  periodEnd: string;
  currency: string;
  state: 'draft' | 'finalised' | 'paid' | 'void';
  lines?: InvoiceLine[];
  services?: { service: string; subtotalMicros: number }[];
  subtotalMicros: number;
  taxRatePpm: number;
  taxMicros: number;
  creditsMicros: number;
  totalMicros: number;
  paymentMethod: string | null;
  createdAt: string;
  finalisedAt: string | null;
  paidAt: string | null;
  voidedAt: string | null;
}
export interface MeterDef {
  meter: string;
  service: string;
  unit: string;
  description: string;
  priceUnit: string;
  priceUnitQuantity: number;
}
export interface PriceTier {
  upToUnits: number | null;
  unitPriceMicros: number;
}
export interface RateCardPrice {
  meter: string;
  unit: string;
  unitQuantity: number;
  tiers: PriceTier[];
  freeUnits: number;
}
export interface RateCard {
  id: string;
  name: string;
  tenantId: string | null;
  version: number;
  effectiveFrom: string;
  currency: string;
  prices: RateCardPrice[];
  createdBy: string;
  createdAt: string;
}
export interface BillingTransaction {
  id: string;
  kind: string;
  amountMicros: number;
  reference: string | null;
  createdBy: string;
  createdAt: string;
}
export interface BillingAccountDetail extends BillingAccount {
  tenantId: string;
  recentTransactions: BillingTransaction[];
}
export interface BillingSettings {
  currency: string;
  taxRatePpm: number;
}
export interface Budget {
  id: string;
  tenantId: string;
  name: string;
  amountMicros: number;
  thresholds: number[];
  queueName: string | null;
  webhookUrl: string | null;
  spentMicros: number;
  createdAt: string;
}
export interface BillingNotification {
  id: string;
  tenantId: string;
  kind: string;
  message: string;
  details: Record<string, unknown>;
  target: { kind: string; value: string | null };
  delivery: string;
  attempts: number;
  lastError: string | null;
  createdAt: string;
}
export type GroupPolicy = 'affinity' | 'anti-affinity' | 'soft-affinity' | 'soft-anti-affinity';
export interface ServerGroup {
  id: string;
  tenantId: string;
  name: string;
  policy: GroupPolicy;
  members: string[];
  createdAt: string;
}
export interface Zone {
  name: string;
  hosts: number;
  hostsUp: number;
  hostsEnabled: number;
  hostsInMaintenance: number;
  hostNames: string[];
  capacity: { vcpus: number; memoryMiB: number; diskGiB: number };
  allocated: { instances: number; vcpus: number; memoryMiB: number; diskGiB: number };
}
