import { COMPUTE_METERS } from '../compute/service.js';
import { S3_METERS } from '../objects/meter.js';
import { SQS_REQUESTS_METER } from '../queues/meter.js';

/**
 * Every meter the services write to the usage ledger, with its unit. A meter ending in `:*` is a
 * family: the service appends a variant (compute's instance-seconds carry the flavor name).
 * New services add their meters here; rate cards may only price meters from this list.
 */
export interface MeterDef {
  meter: string;
  service: string;
  /** Unit of the ledger's integer quantity. */
  unit: string;
  description: string;
  /** The unit prices are usually quoted in, and how many ledger units make one. */
  priceUnit: string;
  priceUnitQuantity: number;
}

const GIB = 1024 ** 3;
const HOUR = 3600;

export const METERS: readonly MeterDef[] = [
  {
    meter: `${COMPUTE_METERS.instanceSeconds}:*`,
    service: 'compute',
    unit: 'instance-second',
    description: 'Seconds an instance of the flavor named after the colon was running (per flavor).',
    priceUnit: 'instance-hour',
    priceUnitQuantity: HOUR,
  },
  {
    meter: COMPUTE_METERS.vcpuSeconds,
    service: 'compute',
    unit: 'vCPU-second',
    description: 'vCPUs of running instances times seconds running.',
    priceUnit: 'vCPU-hour',
    priceUnitQuantity: HOUR,
  },
  {
    meter: COMPUTE_METERS.memoryMiBSeconds,
    service: 'compute',
    unit: 'MiB-second',
    description: 'Memory (MiB) of running instances times seconds running.',
    priceUnit: 'GiB-hour',
    priceUnitQuantity: 1024 * HOUR,
  },
  {
    meter: S3_METERS.storageByteSeconds,
    service: 's3',
    unit: 'byte-second',
    description: 'Bytes stored (every version, parts of open uploads) times seconds stored, per bucket.',
    priceUnit: 'GiB-hour',
    priceUnitQuantity: GIB * HOUR,
  },
  {
    meter: S3_METERS.requestsClassA,
    service: 's3',
    unit: 'request',
    description: 'PUT, COPY, POST and LIST requests (AWS tier 1), per bucket.',
    priceUnit: '10,000 requests',
    priceUnitQuantity: 10_000,
  },
  {
    meter: S3_METERS.requestsClassB,
    service: 's3',
    unit: 'request',
    description: 'GET, HEAD and every other request (AWS tier 2), per bucket.',
    priceUnit: '10,000 requests',
    priceUnitQuantity: 10_000,
  },
  {
    meter: S3_METERS.egressBytes,
    service: 's3',
    unit: 'byte',
    description: 'Bytes sent to clients in response bodies, per bucket.',
    priceUnit: 'GiB',
    priceUnitQuantity: GIB,
  },
  {
    meter: SQS_REQUESTS_METER,
    service: 'sqs',
    unit: 'request',
    description: 'Queue API requests, each started 64 KiB of payload counting as one, per queue.',
    priceUnit: '1,000,000 requests',
    priceUnitQuantity: 1_000_000,
  },
];

/** The catalogue entry a ledger meter name belongs to (exact name, else its `family:*`). */
export function meterDef(meter: string): MeterDef | undefined {
  const exact = METERS.find((m) => m.meter === meter);
  if (exact) return exact;
  const colon = meter.indexOf(':');
  if (colon < 0) return undefined;
  const family = `${meter.slice(0, colon)}:*`;
  return METERS.find((m) => m.meter === family);
}

/** Whether a rate card may price `meter`: a catalogue meter, a family `x:*`, or one variant `x:v`. */
export const isPriceableMeter = (meter: string) => meterDef(meter) !== undefined;
