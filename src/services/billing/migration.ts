import { type Kysely, type Migration, PostgresAdapter, sql } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations run before the typed schema exists
type AnyDb = Kysely<any>;

/**
 * Billing (issue 8): rate card versions, charge lines (one or more per usage record, keyed by the
 * record id), rating accumulators, invoices and their lines, prepaid accounts and their
 * transactions, budgets, alerts and notifications. Finalised invoices are immutable in the
 * database itself: triggers refuse changes to their amounts and lines on both dialects.
 */
export const billingMigration: Migration = {
  async up(db: AnyDb) {
    const pg = db.getExecutor().adapter instanceof PostgresAdapter;
    await db.schema
      .createTable('billing_rate_cards')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('scope', 'text', (c) => c.notNull())
      .addColumn('tenant_id', 'text')
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('version', 'integer', (c) => c.notNull())
      .addColumn('effective_from', 'bigint', (c) => c.notNull())
      .addColumn('currency', 'text', (c) => c.notNull())
      .addColumn('prices', 'text', (c) => c.notNull())
      .addColumn('created_by', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addUniqueConstraint('billing_rate_cards_version', ['scope', 'version'])
      .execute();

    await db.schema
      .createTable('billing_charges')
      .addColumn('usage_record_id', 'text', (c) => c.notNull())
      .addColumn('seg', 'integer', (c) => c.notNull())
      .addColumn('tenant_id', 'text', (c) => c.notNull())
      .addColumn('service', 'text', (c) => c.notNull())
      .addColumn('resource_id', 'text', (c) => c.notNull())
      .addColumn('meter', 'text', (c) => c.notNull())
      .addColumn('billing_period', 'bigint', (c) => c.notNull())
      .addColumn('start_at', 'bigint', (c) => c.notNull())
      .addColumn('end_at', 'bigint', (c) => c.notNull())
      .addColumn('quantity', 'bigint', (c) => c.notNull())
      .addColumn('amount_micros', 'bigint', (c) => c.notNull())
      .addColumn('card_id', 'text')
      .addColumn('host_id', 'text')
      .addColumn('rated_at', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('billing_charges_pk', ['usage_record_id', 'seg'])
      .execute();
    await db.schema
      .createIndex('billing_charges_tenant_period')
      .on('billing_charges')
      .columns(['tenant_id', 'billing_period'])
      .execute();
    await db.schema.createIndex('billing_charges_start').on('billing_charges').column('start_at').execute();
    // The rater finds new ledger rows by creation time (with a look-back window).
    await db.schema
      .createIndex('usage_records_created')
      .on('usage_records')
      .columns(['created_at', 'id'])
      .execute();

    await db.schema
      .createTable('billing_accumulators')
      .addColumn('tenant_id', 'text', (c) => c.notNull())
      .addColumn('meter', 'text', (c) => c.notNull())
      .addColumn('billing_period', 'bigint', (c) => c.notNull())
      .addColumn('qty', 'text', (c) => c.notNull())
      .addColumn('num', 'text', (c) => c.notNull())
      .addColumn('den', 'text', (c) => c.notNull())
      .addColumn('charged', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('billing_accumulators_pk', ['tenant_id', 'meter', 'billing_period'])
      .execute();

    await db.schema
      .createTable('billing_invoices')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('number', 'text', (c) => c.notNull().unique())
      .addColumn('tenant_id', 'text', (c) => c.notNull())
      .addColumn('period_start', 'bigint', (c) => c.notNull())
      .addColumn('period_end', 'bigint', (c) => c.notNull())
      .addColumn('currency', 'text', (c) => c.notNull())
      .addColumn('state', 'text', (c) => c.notNull())
      .addColumn('subtotal_micros', 'bigint', (c) => c.notNull())
      .addColumn('tax_rate_ppm', 'integer', (c) => c.notNull())
      .addColumn('tax_micros', 'bigint', (c) => c.notNull())
      .addColumn('credits_micros', 'bigint', (c) => c.notNull())
      .addColumn('total_micros', 'bigint', (c) => c.notNull())
      .addColumn('payment_method', 'text')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .addColumn('finalised_at', 'bigint')
      .addColumn('paid_at', 'bigint')
      .addColumn('voided_at', 'bigint')
      .addUniqueConstraint('billing_invoices_period', ['tenant_id', 'period_start'])
      .execute();
    await db.schema
      .createTable('billing_invoice_lines')
      .addColumn('invoice_id', 'text', (c) => c.notNull().references('billing_invoices.id'))
      .addColumn('seq', 'integer', (c) => c.notNull())
      .addColumn('service', 'text', (c) => c.notNull())
      .addColumn('resource_id', 'text', (c) => c.notNull())
      .addColumn('meter', 'text', (c) => c.notNull())
      .addColumn('quantity', 'text', (c) => c.notNull())
      .addColumn('amount_micros', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('billing_invoice_lines_pk', ['invoice_id', 'seq'])
      .execute();

    await db.schema
      .createTable('billing_accounts')
      .addColumn('tenant_id', 'text', (c) => c.primaryKey())
      .addColumn('mode', 'text', (c) => c.notNull())
      .addColumn('balance_micros', 'bigint', (c) => c.notNull())
      .addColumn('credit_micros', 'bigint', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('status_since', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('billing_transactions')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('tenant_id', 'text', (c) => c.notNull())
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('amount_micros', 'bigint', (c) => c.notNull())
      .addColumn('reference', 'text')
      .addColumn('idempotency_key', 'text', (c) => c.unique())
      .addColumn('created_by', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema
      .createIndex('billing_transactions_tenant')
      .on('billing_transactions')
      .columns(['tenant_id', 'created_at'])
      .execute();

    await db.schema
      .createTable('billing_budgets')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('tenant_id', 'text', (c) => c.notNull())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('amount_micros', 'bigint', (c) => c.notNull())
      .addColumn('thresholds', 'text', (c) => c.notNull())
      .addColumn('queue_name', 'text')
      .addColumn('webhook_url', 'text')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .addUniqueConstraint('billing_budgets_name', ['tenant_id', 'name'])
      .execute();
    await db.schema
      .createTable('billing_budget_alerts')
      .addColumn('budget_id', 'text', (c) => c.notNull())
      .addColumn('billing_period', 'bigint', (c) => c.notNull())
      .addColumn('threshold', 'integer', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('billing_budget_alerts_pk', ['budget_id', 'billing_period', 'threshold'])
      .execute();
    await db.schema
      .createTable('billing_notifications')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('tenant_id', 'text', (c) => c.notNull())
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('message', 'text', (c) => c.notNull())
      .addColumn('details', 'text', (c) => c.notNull())
      .addColumn('target_kind', 'text', (c) => c.notNull())
      .addColumn('target', 'text')
      .addColumn('delivery_state', 'text', (c) => c.notNull())
      .addColumn('attempts', 'integer', (c) => c.notNull())
      .addColumn('next_attempt_at', 'bigint', (c) => c.notNull())
      .addColumn('last_error', 'text')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema
      .createIndex('billing_notifications_tenant')
      .on('billing_notifications')
      .columns(['tenant_id', 'created_at'])
      .execute();
    await db.schema
      .createIndex('billing_notifications_delivery')
      .on('billing_notifications')
      .columns(['delivery_state', 'next_attempt_at'])
      .execute();

    // A finalised (or paid, or void) invoice keeps its amounts and lines forever.
    const frozenAmounts =
      'NEW.subtotal_micros <> OLD.subtotal_micros OR NEW.tax_micros <> OLD.tax_micros OR ' +
      'NEW.credits_micros <> OLD.credits_micros OR NEW.total_micros <> OLD.total_micros OR ' +
      'NEW.tax_rate_ppm <> OLD.tax_rate_ppm OR NEW.tenant_id <> OLD.tenant_id OR ' +
      'NEW.period_start <> OLD.period_start OR NEW.currency <> OLD.currency OR NEW.number <> OLD.number';
    const allowedMoves =
      "(OLD.state = 'finalised' AND NEW.state IN ('finalised', 'paid', 'void')) OR (OLD.state = NEW.state)";
    if (pg) {
      await sql
        .raw(`CREATE FUNCTION billing_invoice_frozen() RETURNS trigger AS $$
BEGIN
  IF OLD.state <> 'draft' AND (${frozenAmounts} OR NOT (${allowedMoves})) THEN
    RAISE EXCEPTION 'billing: invoice % is %, it cannot change', OLD.id, OLD.state USING ERRCODE = 'P0001';
  END IF;
  RETURN NEW;
END $$ LANGUAGE plpgsql`)
        .execute(db);
      await sql
        .raw(`CREATE TRIGGER billing_invoices_frozen BEFORE UPDATE ON billing_invoices
FOR EACH ROW EXECUTE FUNCTION billing_invoice_frozen()`)
        .execute(db);
      await sql
        .raw(`CREATE FUNCTION billing_invoice_lines_frozen() RETURNS trigger AS $$
DECLARE s text;
BEGIN
  SELECT state INTO s FROM billing_invoices WHERE id = COALESCE(NEW.invoice_id, OLD.invoice_id);
  IF s IS NOT NULL AND s <> 'draft' THEN
    RAISE EXCEPTION 'billing: invoice lines of a % invoice cannot change', s USING ERRCODE = 'P0001';
  END IF;
  IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
  RETURN NEW;
END $$ LANGUAGE plpgsql`)
        .execute(db);
      await sql
        .raw(`CREATE TRIGGER billing_invoice_lines_frozen BEFORE INSERT OR UPDATE OR DELETE ON billing_invoice_lines
FOR EACH ROW EXECUTE FUNCTION billing_invoice_lines_frozen()`)
        .execute(db);
      await sql
        .raw(`CREATE FUNCTION billing_invoice_no_delete() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'billing: invoice % is %, it cannot be deleted', OLD.id, OLD.state USING ERRCODE = 'P0001';
END $$ LANGUAGE plpgsql`)
        .execute(db);
      await sql
        .raw(`CREATE TRIGGER billing_invoices_no_delete BEFORE DELETE ON billing_invoices
FOR EACH ROW WHEN (OLD.state <> 'draft') EXECUTE FUNCTION billing_invoice_no_delete()`)
        .execute(db);
    } else {
      await sql
        .raw(`CREATE TRIGGER billing_invoices_frozen BEFORE UPDATE ON billing_invoices
FOR EACH ROW WHEN OLD.state <> 'draft' AND (${frozenAmounts} OR NOT (${allowedMoves}))
BEGIN SELECT RAISE(ABORT, 'billing: a finalised invoice cannot change'); END`)
        .execute(db);
      await sql
        .raw(`CREATE TRIGGER billing_invoices_no_delete BEFORE DELETE ON billing_invoices
FOR EACH ROW WHEN OLD.state <> 'draft'
BEGIN SELECT RAISE(ABORT, 'billing: a finalised invoice cannot be deleted'); END`)
        .execute(db);
      for (const [op, ref] of [
        ['INSERT', 'NEW'],
        ['UPDATE', 'OLD'],
        ['DELETE', 'OLD'],
      ] as const) {
        await sql
          .raw(`CREATE TRIGGER billing_invoice_lines_frozen_${op.toLowerCase()} BEFORE ${op} ON billing_invoice_lines
FOR EACH ROW WHEN (SELECT state FROM billing_invoices WHERE id = ${ref}.invoice_id) <> 'draft'
BEGIN SELECT RAISE(ABORT, 'billing: lines of a finalised invoice cannot change'); END`)
          .execute(db);
      }
    }
  },
};
