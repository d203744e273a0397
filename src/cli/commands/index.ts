import type { Command } from 'commander';
import { type CliContext, processIo } from '../context.js';
import { registerAuditCommands } from './audit.js';
import { registerAuthCommands } from './auth.js';
import { registerBillingCommands } from './billing.js';
import { registerFlavorCommands } from './flavor.js';
import { registerHostCommands } from './host.js';
import { registerImageCommands } from './image.js';
import { registerInstanceCommands } from './instance.js';
import { registerKeyCommands } from './key.js';
import { registerKeyPairCommands } from './keypair.js';
import { registerPlacementCommands } from './placement.js';
import { registerProfileCommands } from './profile.js';
import { registerQuotaCommands } from './quota.js';
import { registerTenantCommands } from './tenant.js';
import { registerUsageCommands } from './usage.js';
import { registerUserCommands } from './user.js';

/** The process's own terminal, environment and directory (when no context is passed). */
export const processContext = (): CliContext => ({
  env: process.env,
  io: processIo(),
  cwd: process.cwd(),
  fetch: globalThis.fetch,
});

/** Client commands (login, tenants, users, keys, quotas, audit, usage, compute, images, hosts). */
export function registerClientCommands(program: Command, ctx: CliContext = processContext()) {
  registerAuthCommands(program, ctx);
  registerProfileCommands(program, ctx);
  registerTenantCommands(program, ctx);
  registerUserCommands(program, ctx);
  registerKeyCommands(program, ctx);
  registerQuotaCommands(program, ctx);
  registerAuditCommands(program, ctx);
  registerUsageCommands(program, ctx);
  registerBillingCommands(program, ctx);
  registerInstanceCommands(program, ctx);
  registerImageCommands(program, ctx);
  registerFlavorCommands(program, ctx);
  registerKeyPairCommands(program, ctx);
  registerHostCommands(program, ctx);
  registerPlacementCommands(program, ctx);
}
