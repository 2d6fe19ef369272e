import { createHmac, randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { type Dialect, Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely';
import pg from 'pg';
import { migrate } from './migrations.js';
import type { Database } from './schema.js';
import type { AuditRecord } from './audit-writer.js';
import { SqliteAuditThread } from './sqlite-audit-thread.js';
import { AuditRetryError } from './audit-retry-error.js';
import { errSummary, isStoreOutage, ObservedDialect, silentLog, StoreSupervisor, StoreUnavailableError, within, type StoreLog, type StoreState } from './supervisor.js';


export interface StoreConfig {
  databaseUrl?: string;
  /** PostgreSQL schema (DATABASE_SCHEMA); created when missing. */
  databaseSchema?: string;
  dataDir: string;
  /** AUDIT_HASH_SECRET; when absent, a secret is generated once and kept in the store, shared by every instance. */
  hashSecret?: string;
  /** SQLite: how long a write waits for another connection's lock before it gives up (and the audit retries it). */
  sqliteBusyTimeoutMs?: number;
  /** SQLite: the most pages the file may grow to, on every connection (default: SQLite's own limit). A full file is an outage. */
  sqliteMaxPageCount?: number;
  /** Where the store says it went down, came back, or keeps failing (default: nowhere). */
  log?: StoreLog;
}

export interface Store {
  db: Kysely<Database>;
  kind: 'sqlite' | 'postgres';
  /** `up`, or why not: `starting` (first connection or migrations pending, retrying) or `down` (lost, retrying). */
  readonly state: StoreState;
  /** Calls `listener` on each change of state. */
  onStateChange(listener: (state: StoreState) => void): () => void;
  /**
   * Reports an error a query met: an outage (connection lost, database gone, file not writable) marks the store down and
   * starts its recovery. Returns whether it was one. Queries through `db` report their own errors; this is for the rest.
   */
  report(err: unknown): boolean;
  /**
   * Keyed hash of an identity (patient or user id): the same id gives the same hash, the id cannot be recovered. Throws
   * StoreUnavailableError while the secret is not known (the store was unreachable since start and AUDIT_HASH_SECRET is unset).
   */
  hash(value: string): string;
  /**
   * Commits a batch of audit records; a record already stored (same hook instance or card) is kept as it was. Rejects
   * with AuditRetryError when trying again later may succeed (the store is down, a lock was held too long).
   */
  writeAudit(batch: AuditRecord[]): Promise<void>;
  /** True when the store is up and answers within a second. */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

const SQLITE_BUSY_TIMEOUT_MS = 5_000;
/** A pool connection that cannot be had within this long is an outage: hook calls and /readyz never wait longer. */
const PG_CONNECT_TIMEOUT_MS = 2_000;
/** The longest one PostgreSQL statement may run on the server (the purge's chunks and the migrations are far quicker). */
const PG_STATEMENT_TIMEOUT_MS = 10_000;
/** With no answer at all for this long the link is taken as lost (an outage): a network that drops packets silently. */
const PG_QUERY_TIMEOUT_MS = 30_000;
/** The readiness ping's bound. */
const PING_TIMEOUT_MS = 1_000;

function sqliteOpener(config: StoreConfig, file: string): () => Promise<BetterSqlite3.Database> {
  return async () => {
    mkdirSync(config.dataDir, { recursive: true });
    const database = new BetterSqlite3(file);
    try {
      // WAL lets readers and the writer work together; FULL makes a commit survive a crash before the 200 goes out.
      database.pragma('journal_mode = WAL');
      database.pragma('synchronous = FULL');
      database.pragma(`busy_timeout = ${config.sqliteBusyTimeoutMs ?? SQLITE_BUSY_TIMEOUT_MS}`);
      if (config.sqliteMaxPageCount) database.pragma(`max_page_count = ${Math.floor(config.sqliteMaxPageCount)}`);
    } catch (err) {
      database.close();
      throw err;
    }
    return database;
  };
}

/**
 * Opens the embedded store (SQLite in DATA_DIR) or PostgreSQL (DATABASE_URL), and migrates it. A store that is not there
 * (PostgreSQL unreachable, the file not writable) does not stop the start: the store comes back `starting` and keeps
 * retrying in the background; the service answers degraded meanwhile. Only a store that answers and refuses (a failing
 * migration, a bad schema name) throws.
 */
export async function openStore(config: StoreConfig): Promise<Store> {
  if (config.databaseUrl && config.databaseSchema && !/^[a-z_][a-z0-9_]*$/.test(config.databaseSchema)) {
    throw new Error('DATABASE_SCHEMA must be a plain lower-case identifier');
  }
  const log = config.log ?? silentLog;
  let supervisor: StoreSupervisor | undefined;
  const report = (err: unknown) => supervisor?.report(err) ?? false;
  let dialect: Dialect;
  let file: string | undefined;
  if (config.databaseUrl) {
    const schema = config.databaseSchema;
    const pool = new pg.Pool({
      connectionString: config.databaseUrl,
      max: 10,
      connectionTimeoutMillis: PG_CONNECT_TIMEOUT_MS,
      idleTimeoutMillis: 10_000,
      keepAlive: true,
      // A link that drops packets without a reset would hold a query (and its pooled connection) forever: each query
      // gives up after this long, which counts as an outage, so the store goes down and recovers instead of draining the pool.
      query_timeout: PG_QUERY_TIMEOUT_MS,
      // One slow query is its own fault (57014, not an outage): the server stops it; the client timeout above is the backstop.
      options: `-c statement_timeout=${PG_STATEMENT_TIMEOUT_MS}${schema ? ` -c search_path=${schema}` : ''}`,
    });
    // A connection lost while idle (a restart, a dropped database): logged, and the store goes down until it is back.
    // One line per outage, not one per idle connection (the supervisor logs the outage itself when it marks it).
    pool.on('error', (err) => {
      if (supervisor?.state === 'up') log.warn({ err: errSummary(err) }, 'store connection lost');
      report(err);
    });
    // A connection lost while a query holds it: the query fails (and reports); without a listener the client's own
    // 'error' event would end the process.
    pool.on('connect', (client) => {
      client.on('error', report);
    });
    dialect = new PostgresDialect({ pool });
  } else {
    file = join(config.dataDir, 'lbp-imaging-cds.sqlite');
    dialect = new SqliteDialect({ database: sqliteOpener(config, file) });
  }
  const kind: Store['kind'] = config.databaseUrl ? 'postgres' : 'sqlite';
  const db = new Kysely<Database>({ dialect: new ObservedDialect(dialect, report) });
  // On SQLite the audit's inserts and fsync run on their own thread; PostgreSQL's driver does not block the event loop.
  const auditThread = file ? new SqliteAuditThread(file, config.sqliteBusyTimeoutMs ?? SQLITE_BUSY_TIMEOUT_MS, config.sqliteMaxPageCount) : undefined;
  let secret = config.hashSecret;
  let closed = false;

  supervisor = new StoreSupervisor(async () => {
    if (config.databaseUrl && config.databaseSchema) await createSchema(config.databaseUrl, config.databaseSchema);
    await migrate(db as Kysely<unknown>, config.databaseUrl ? config.databaseSchema : undefined);
    secret = config.hashSecret ?? (await sharedSecret(db, secret, log));
    // SQLite: the file must take a write again (disk full, read-only) before the store is up.
    if (kind === 'sqlite') await probeWrite(db);
  }, log);
  const sup = supervisor;
  try {
    await sup.start();
  } catch (err) {
    sup.close();
    await db.destroy();
    throw err;
  }

  return {
    db,
    kind,
    get state() {
      return sup.state;
    },
    onStateChange: (listener) => sup.onChange(listener),
    report,
    hash(value) {
      if (secret === undefined) throw new StoreUnavailableError('audit hash secret not known yet');
      return createHmac('sha256', secret).update(value).digest('hex').slice(0, 32);
    },
    async writeAudit(batch) {
      if (closed) throw new Error('store closed');
      if (sup.state !== 'up') throw new AuditRetryError('store unavailable');
      try {
        await (auditThread ? auditThread.write(batch) : insertAudit(db, batch));
      } catch (err) {
        if (!(err instanceof AuditRetryError) && report(err)) throw new AuditRetryError(errSummary(err).message);
        throw err;
      }
    },
    async ping() {
      if (closed || sup.state !== 'up') return false;
      try {
        await within(PING_TIMEOUT_MS, sql`select 1`.execute(db));
        return true;
      } catch {
        return false;
      }
    },
    async close() {
      closed = true;
      sup.close();
      await sup.settled();
      await auditThread?.close();
      await db.destroy();
    },
  };
}

/** DATABASE_SCHEMA, created when missing (at start, and again when the database came back without it). */
async function createSchema(databaseUrl: string, schema: string): Promise<void> {
  const setup = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: PG_CONNECT_TIMEOUT_MS });
  // The connection can be lost at any moment; the query in flight fails on its own.
  setup.on('error', () => undefined);
  await setup.connect();
  try {
    await setup.query(`create schema if not exists ${schema}`);
  } catch (err) {
    // Replicas starting together race on "if not exists"; the loser's duplicate is the winner's schema.
    if (!['23505', '42P06'].includes((err as { code?: string }).code ?? '')) throw err;
  } finally {
    await setup.end().catch(() => undefined);
  }
}

/**
 * The hashing secret kept in the store: the first instance writes it, the others read the same one. A secret this
 * instance already knows is written back (a database dropped and re-created comes back empty): a new one is never
 * generated while an old one is known, or the audit's hashes would stop matching.
 */
async function sharedSecret(db: Kysely<Database>, known: string | undefined, log: StoreLog): Promise<string> {
  await db
    .insertInto('setting')
    .values({ key: 'hash_secret', value: known ?? randomBytes(32).toString('hex') })
    .onConflict((oc) => oc.column('key').doNothing())
    .execute();
  const row = await db.selectFrom('setting').select('value').where('key', '=', 'hash_secret').executeTakeFirstOrThrow();
  if (known !== undefined && row.value !== known) {
    log.error({}, 'the store holds another audit hash secret than the one in use; keeping the one in use (set AUDIT_HASH_SECRET to share one)');
    return known;
  }
  return row.value;
}

/** A write that allocates pages and commits, then leaves nothing behind: the file takes writes again. */
async function probeWrite(db: Kysely<Database>): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await sql`insert into setting (key, value) values ('store-probe', hex(zeroblob(6000))) on conflict (key) do update set value = excluded.value`.execute(trx);
    await sql`delete from setting where key = 'store-probe'`.execute(trx);
  });
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
