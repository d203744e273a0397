/**
 * Hypervisor drivers by name: the one place that maps a configured driver name to its factory.
 * `qemu` runs real VMs on this host; `fake` keeps VMs in memory (fleet simulation, fast tests).
 */
import type { Hypervisor } from '../hypervisor.js';
import { createFakeDriver, type FakeDriverOptions } from './fake/fake-driver.js';
import { createQemuDriver, type QemuDriverOptions } from './qemu/qemu-driver.js';

/** Each driver's options, by driver name. */
export interface HypervisorDriverOptions {
  qemu: QemuDriverOptions;
  fake: FakeDriverOptions;
}

export type HypervisorDriverName = keyof HypervisorDriverOptions;

export const HYPERVISOR_DRIVERS: {
  [N in HypervisorDriverName]: (opts: HypervisorDriverOptions[N]) => Hypervisor;
} = {
  qemu: createQemuDriver,
  fake: createFakeDriver,
};

export function isHypervisorDriverName(name: string): name is HypervisorDriverName {
  return Object.hasOwn(HYPERVISOR_DRIVERS, name);
}

/** Creates the named driver; an unknown name (e.g. from configuration) throws. */
export function loadHypervisor<N extends HypervisorDriverName>(
  name: N,
  opts: HypervisorDriverOptions[N],
): Hypervisor {
  if (!isHypervisorDriverName(name)) {
    throw new Error(
      `unknown hypervisor driver ${JSON.stringify(name)}; known: ${Object.keys(HYPERVISOR_DRIVERS).join(', ')}`,
    );
  }
  const factory = HYPERVISOR_DRIVERS[name] as (o: HypervisorDriverOptions[N]) => Hypervisor;
  return factory(opts);
}
