import type { Command } from 'commander';

/** Client commands (login, tenants, users, keys, quotas, audit, usage). */
export function registerClientCommands(program: Command) {
  void program;
}
