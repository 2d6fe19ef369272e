import { createHmac, randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely';
import pg from 'pg';
import { migrate } from './migrations.js';
import type { Database } from './schema.js';
import type { AuditRecord } from './audit-writer.js';
import { SqliteAuditThread } from './sqlite-audit-thread.js';

export interface StoreConfig {
  databaseUrl?: string;
  /** PostgreSQL schema (DATABASE_SCHEMA); created when missing. */
  databaseSchema?: string;
  dataDir: string;
  /** AUDIT_HASH_SECRET; when absent, a secret is generated once and kept in the store, shared by every instance. */
  hashSecret?: string;
  /** SQLite: how long a write waits for another connection's lock before it gives up (and the audit retries it). */
  sqliteBusyTimeoutMs?: number;
}

export interface Store {
  db: Kysely<Database>;
  kind: 'sqlite' | 'postgres';
  /** Keyed hash of an identity (patient or user id): the same id gives the same hash, the id cannot be recovered. */
  hash(value: string): string;
  /**
   * Commits a batch of audit records; a record already stored (same hook instance or card) is kept as it was. Rejects
   * with AuditRetryError when trying again later may succeed.
   */
  writeAudit(batch: AuditRecord[]): Promise<void>;
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

const SQLITE_BUSY_TIMEOUT_MS = 5_000;

function openDialect(config: StoreConfig): { dialect: SqliteDialect | PostgresDialect; kind: Store['kind']; file?: string } {
  if (config.databaseUrl) {
    const schema = config.databaseSchema;
    const pool = new pg.Pool({
      connectionString: config.databaseUrl,
      max: 10,
      connectionTimeoutMillis: 5_000,
      ...(schema ? { options: `-c search_path=${schema}` } : {}),
    });
    return { dialect: new PostgresDialect({ pool }), kind: 'postgres' };
  }
  mkdirSync(config.dataDir, { recursive: true });
  const file = join(config.dataDir, 'lbp-imaging-cds.sqlite');
  const database = new BetterSqlite3(file);
  // WAL lets readers and the writer work together; FULL makes a commit survive a crash before the 200 goes out.
  database.pragma('journal_mode = WAL');
  database.pragma('synchronous = FULL');
  database.pragma(`busy_timeout = ${config.sqliteBusyTimeoutMs ?? SQLITE_BUSY_TIMEOUT_MS}`);
  return { dialect: new SqliteDialect({ database }), kind: 'sqlite', file };
}

/** Opens the embedded store (SQLite in DATA_DIR) or PostgreSQL (DATABASE_URL), and migrates it. */
export async function openStore(config: StoreConfig): Promise<Store> {
  if (config.databaseUrl && config.databaseSchema) {
    if (!/^[a-z_][a-z0-9_]*$/.test(config.databaseSchema)) throw new Error('DATABASE_SCHEMA must be a plain lower-case identifier');
    const setup = new pg.Client({ connectionString: config.databaseUrl, connectionTimeoutMillis: 5_000 });
    await setup.connect();
    try {
      await setup.query(`create schema if not exists ${config.databaseSchema}`);
    } catch (err) {
      // Replicas starting together race on "if not exists"; the loser's duplicate is the winner's schema.
      if (!['23505', '42P06'].includes((err as { code?: string }).code ?? '')) throw err;
    } finally {
      await setup.end();
    }
  }
  const { dialect, kind, file } = openDialect(config);
  const db = new Kysely<Database>({ dialect });
  // On SQLite the audit's inserts and fsync run on their own thread; PostgreSQL's driver does not block the event loop.
  const auditThread = file ? new SqliteAuditThread(file, config.sqliteBusyTimeoutMs ?? SQLITE_BUSY_TIMEOUT_MS) : undefined;
  try {
    await migrate(db as Kysely<unknown>, config.databaseUrl ? config.databaseSchema : undefined);
    const secret = config.hashSecret ?? (await sharedSecret(db));
    return {
      db,
      kind,
      hash: (value) => createHmac('sha256', secret).update(value).digest('hex').slice(0, 32),
      writeAudit: (batch) => (auditThread ? auditThread.write(batch) : insertAudit(db, batch)),
      async ping() {
        try {
          await sql`select 1`.execute(db);
          return true;
        } catch {
          return false;
        }
      },
      async close() {
        await auditThread?.close();
        await db.destroy();
      },
    };
  } catch (err) {
    await db.destroy();
    throw err;
  }
}

/** The hashing secret kept in the store: the first instance writes it, the others read the same one. */
async function sharedSecret(db: Kysely<Database>): Promise<string> {
  await db
    .insertInto('setting')
    .values({ key: 'hash_secret', value: randomBytes(32).toString('hex') })
    .onConflict((oc) => oc.column('key').doNothing())
    .execute();
  const row = await db.selectFrom('setting').select('value').where('key', '=', 'hash_secret').executeTakeFirstOrThrow();
  return row.value;
}

async function insertAudit(db: Kysely<Database>, batch: AuditRecord[]): Promise<void> {
  await db.transaction().execute(async (trx) => {
    for (let i = 0; i < batch.length; i += 100) {
      const slice = batch.slice(i, i + 100);
      await trx.insertInto('audit_hook_call').values(slice.map((r) => r.call)).onConflict((oc) => oc.column('hook_instance').doNothing()).execute();
      const cards = slice.flatMap((r) => r.cards);
      if (cards.length > 0) await trx.insertInto('audit_card').values(cards).onConflict((oc) => oc.column('card_uuid').doNothing()).execute();
    }
  });
}
