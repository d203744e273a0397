import type { Tx } from '../../platform/db/database.js';
import type { InstancesTable } from '../../platform/db/schema.js';

/**
 * Takes an instance's row lock and reads the row under it (undefined when there is no such row).
 * The lock is a no-op update: PostgreSQL's row lock, and portable to SQLite (whose write
 * transaction is already exclusive). Whatever reads an instance and writes fields computed from
 * it — agent events, migrations, metering — reads it this way, so a concurrent writer's change is
 * never written over with a stale value.
 */
export async function lockedInstance(trx: Tx, id: string): Promise<InstancesTable | undefined> {
  await trx
    .updateTable('instances')
    .set((eb) => ({ updated_at: eb.ref('updated_at') }))
    .where('id', '=', id)
    .execute();
  return trx.selectFrom('instances').selectAll().where('id', '=', id).executeTakeFirst();
}
