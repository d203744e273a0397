import type { Kysely, Migration } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations run before the typed schema exists
type AnyDb = Kysely<any>;

/**
 * Fleet scheduling (issue 7): host zones, maintenance and per-host overcommit; aggregates (named
 * host sets with metadata and overcommit ratios, e.g. `ssd=true`, `filter_tenant_id=...`); server
 * groups with (anti-)affinity policies; an instance's requested zone and group, and whether it is
 * rebuilt elsewhere when its host goes down (ha).
 */
export const fleetMigration: Migration = {
  async up(db: AnyDb) {
    await db.schema
      .alterTable('hosts')
      .addColumn('zone', 'text', (c) => c.notNull().defaultTo('default'))
      .execute();
    await db.schema
      .alterTable('hosts')
      .addColumn('maintenance', 'integer', (c) => c.notNull().defaultTo(0))
      .execute();
    await db.schema.alterTable('hosts').addColumn('overcommit', 'text').execute();
    await db.schema
      .createTable('aggregates')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull().unique())
      .addColumn('metadata', 'text', (c) => c.notNull())
      .addColumn('overcommit', 'text')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('aggregate_hosts')
      .addColumn('aggregate_id', 'text', (c) => c.notNull().references('aggregates.id'))
      .addColumn('host_id', 'text', (c) => c.notNull().references('hosts.id'))
      .addPrimaryKeyConstraint('aggregate_hosts_pk', ['aggregate_id', 'host_id'])
      .execute();
    await db.schema.createIndex('aggregate_hosts_host').on('aggregate_hosts').column('host_id').execute();
    await db.schema
      .createTable('server_groups')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('policy', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addUniqueConstraint('server_groups_tenant_name', ['tenant_id', 'name'])
      .execute();
    await db.schema.alterTable('instances').addColumn('server_group_id', 'text').execute();
    await db.schema.alterTable('instances').addColumn('zone', 'text').execute();
    await db.schema
      .alterTable('instances')
      .addColumn('ha', 'integer', (c) => c.notNull().defaultTo(0))
      .execute();
    await db.schema.createIndex('instances_server_group').on('instances').column('server_group_id').execute();
  },
};

/**
 * Flavor extra specs (issue 7): aggregate metadata a flavor requires of its hosts, e.g.
 * `{"ssd": "true"}` places only on hosts in an aggregate with `ssd=true`. JSON object.
 */
export const flavorSpecsMigration: Migration = {
  async up(db: AnyDb) {
    await db.schema
      .alterTable('flavors')
      .addColumn('extra_specs', 'text', (c) => c.notNull().defaultTo('{}'))
      .execute();
  },
};
