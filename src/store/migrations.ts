import { type Kysely, type Migration, type MigrationProvider, Migrator } from 'kysely';

/** One set of migrations for SQLite and PostgreSQL: only types both understand (text, integer, real). */
const migrations: Record<string, Migration> = {
  '001-feedback-and-audit': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('audit_hook_call')
        .addColumn('hook_instance', 'text', (c) => c.primaryKey())
        .addColumn('service', 'text', (c) => c.notNull())
        .addColumn('at', 'text', (c) => c.notNull())
        .addColumn('rules_version', 'text', (c) => c.notNull())
        .addColumn('duration_ms', 'real', (c) => c.notNull())
        .addColumn('patient_hash', 'text', (c) => c.notNull())
        .addColumn('user_hash', 'text', (c) => c.notNull())
        .addColumn('orders', 'integer', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('audit_card')
        .addColumn('card_uuid', 'text', (c) => c.primaryKey())
        .addColumn('hook_instance', 'text', (c) => c.notNull())
        .addColumn('service', 'text', (c) => c.notNull())
        .addColumn('at', 'text', (c) => c.notNull())
        .addColumn('day', 'text', (c) => c.notNull())
        .addColumn('recommendation', 'text', (c) => c.notNull())
        .addColumn('order_ref', 'text', (c) => c.notNull())
        .addColumn('red_flags', 'text', (c) => c.notNull())
        .addColumn('fired_rules', 'text', (c) => c.notNull())
        .addColumn('suggestions', 'text', (c) => c.notNull())
        .addColumn('rules_version', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('audit_card_day').on('audit_card').column('day').execute();
      await db.schema.createIndex('audit_card_at').on('audit_card').column('at').execute();
      await db.schema.createIndex('audit_hook_call_at').on('audit_hook_call').column('at').execute();
      await db.schema
        .createTable('feedback')
        .addColumn('feedback_key', 'text', (c) => c.primaryKey())
        .addColumn('card_uuid', 'text', (c) => c.notNull())
        .addColumn('service', 'text', (c) => c.notNull())
        .addColumn('outcome', 'text', (c) => c.notNull())
        .addColumn('accepted_suggestions', 'text', (c) => c.notNull())
        .addColumn('override_reason_system', 'text')
        .addColumn('override_reason_code', 'text')
        .addColumn('has_comment', 'integer', (c) => c.notNull())
        .addColumn('outcome_at', 'text', (c) => c.notNull())
        .addColumn('received_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('feedback_card').on('feedback').column('card_uuid').execute();
      await db.schema.createIndex('feedback_received').on('feedback').column('received_at').execute();
      await db.schema
        .createTable('setting')
        .addColumn('key', 'text', (c) => c.primaryKey())
        .addColumn('value', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('jti_seen')
        .addColumn('jti_key', 'text', (c) => c.primaryKey())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .execute();
    },
  },
  '002-follow-up-shown': {
    async up(db: Kysely<unknown>) {
      // What the follow-up service has already said: at most one card per encounter (or per patient and day).
      await db.schema
        .createTable('follow_up_shown')
        .addColumn('shown_key', 'text', (c) => c.primaryKey())
        .addColumn('at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('audit_hook_call_patient').on('audit_hook_call').column('patient_hash').execute();
    },
  },
  '003-audit-card-call': {
    async up(db: Kysely<unknown>) {
      // The follow-up hook joins a patient's calls to their cards during a hook call; without this it scans the cards.
      await db.schema.createIndex('audit_card_hook_instance').on('audit_card').column('hook_instance').execute();
    },
  },
};

const provider: MigrationProvider = { getMigrations: async () => migrations };

/**
 * Brings the store's schema up to date; safe to run from several instances (the migrator takes a lock). On PostgreSQL with
 * DATABASE_SCHEMA, the migrator's own tables live in that schema too (else it may find another schema's and skip its own).
 */
export async function migrate(db: Kysely<unknown>, schema?: string): Promise<void> {
  const { error, results } = await new Migrator({ db, provider, ...(schema ? { migrationTableSchema: schema } : {}) }).migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName;
    // The cause keeps its code: an outage met while migrating is retried, a failing migration is not.
    throw new Error(`store migration ${failed ?? ''} failed: ${(error as Error).message ?? String(error)}`, { cause: error });
  }
}
