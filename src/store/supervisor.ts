import type { CompiledQuery, DatabaseConnection, Dialect, Driver, Kysely, QueryCompiler, TransactionSettings } from 'kysely';

/**
 * The store's state. `starting`: the first connection and migrations have not succeeded yet (retrying); `up`: usable;
 * `down`: it was up, then failed (retrying). Only `up` takes queries: the others answer at once with the degraded path.
 */
export type StoreState = 'starting' | 'up' | 'down';

/** What a caller gets when it needs the store (or its hash secret) and the store is not up. */
export class StoreUnavailableError extends Error {
  readonly code = 'CDS_ERR_STORE_UNAVAILABLE';
  constructor(message = 'store unavailable') {
    super(message);
    this.name = 'StoreUnavailableError';
  }
}

/** The log lines the store writes: errors as `{ err: { code, message } }`, never a stack. */
export interface StoreLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export const silentLog: StoreLog = { info: () => undefined, warn: () => undefined, error: () => undefined };

/** An error's code and message only: what a log line may carry. */
export function errSummary(err: unknown): { code?: string; message: string } {
  const e = err as { code?: unknown; message?: unknown; cause?: { code?: unknown } } | undefined;
  const code = typeof e?.code === 'string' ? e.code : typeof e?.cause?.code === 'string' ? e.cause.code : undefined;
  const message = typeof e?.message === 'string' ? e.message.slice(0, 300) : String(err).slice(0, 300);
  return code ? { code, message } : { message };
}

/** Network errors of the socket to PostgreSQL. */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ECONNABORTED', 'EHOSTDOWN', 'ENETDOWN']);
/** The embedded store's folder or file cannot be made or written now (permissions, a read-only or full file system). */
const FILE_CODES = new Set(['EACCES', 'EROFS', 'EPERM', 'ENOSPC', 'EDQUOT']);
/**
 * PostgreSQL's codes that mean the database is not there for us, for now: connection exceptions (class 08), the server
 * shutting down or starting (57P01-57P03), too many connections, the database, schema or a table gone (dropped, or
 * re-created empty: the recovery's migrations put the tables back).
 */
const POSTGRES_CODES = new Set(['57P01', '57P02', '57P03', '53300', '3D000', '3F000', '42P01', '25006']);
const POSTGRES_MESSAGES = /Connection terminated|timeout exceeded when trying to connect|not queryable|Client was closed|Connection is closed|Query read timeout/i;
/** SQLite's codes for a file that cannot be written now (disk full, read-only, I/O error, cannot open): it may pass. */
const SQLITE_OUTAGE = /^SQLITE_(FULL|READONLY|IOERR|CANTOPEN|PERM|NOMEM|CORRUPT|NOTADB)/;

/** Whether an error says the store is unavailable (the service degrades and retries) rather than a fault of one query. */
export function isStoreOutage(err: unknown): boolean {
  if (err instanceof StoreUnavailableError) return true;
  const seen = new Set<unknown>();
  for (let e = err as { code?: unknown; message?: unknown; cause?: unknown } | undefined; e && !seen.has(e); e = e.cause as typeof e) {
    seen.add(e);
    const code = typeof e.code === 'string' ? e.code : '';
    if (NETWORK_CODES.has(code) || FILE_CODES.has(code) || POSTGRES_CODES.has(code) || code.startsWith('08') || SQLITE_OUTAGE.test(code)) return true;
    if (typeof e.message === 'string' && POSTGRES_MESSAGES.test(e.message)) return true;
    // An AggregateError (a connection to several addresses, all refused) carries its causes in `errors`.
    const errors = (e as { errors?: unknown }).errors;
    if (Array.isArray(errors) && errors.some((x) => isStoreOutage(x))) return true;
  }
  return false;
}

/** Settles as `promise` does, or rejects with StoreUnavailableError after `ms` (the promise's own outcome is then ignored). */
export function within<T>(ms: number, promise: Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new StoreUnavailableError(`store did not answer within ${ms} ms`)), ms);
    timer.unref();
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

/** Backoff of the recovery attempts: 0.5 s doubling to 5 s, so the store is back within ~5 s of the database's return. */
export const RECOVERY_FIRST_MS = 500;
export const RECOVERY_MAX_MS = 5_000;

/**
 * Holds the store's state and brings it back. An outage reported from any query (or the driver's own error events)
 * marks it down; the recovery then runs `attempt` (connect, migrate, secret) in the background with backoff until it
 * succeeds. Never throws to a caller; logs once per outage, and again only when the reason changes or each minute.
 */
export class StoreSupervisor {
  state: StoreState = 'starting';
  private timer?: NodeJS.Timeout;
  private attempting?: Promise<void>;
  private delayMs = RECOVERY_FIRST_MS;
  private closed = false;
  private lastLogged = { reason: '', at: -Infinity };
  private readonly listeners = new Set<(state: StoreState) => void>();

  constructor(
    private readonly attempt: () => Promise<void>,
    private readonly log: StoreLog,
  ) {}

  onChange(listener: (state: StoreState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The first attempt, awaited (a store that is there is up when openStore returns); on an outage, retried in the background. */
  async start(): Promise<void> {
    try {
      await this.run();
    } catch (err) {
      if (!isStoreOutage(err)) throw err;
      this.noteFailure(err, 'store starting: migrations pending, retrying');
      this.schedule();
    }
  }

  /** Reports an error met by a query: an outage marks the store down and starts the recovery. Returns whether it was one. */
  report(err: unknown): boolean {
    if (!isStoreOutage(err)) return false;
    if (this.state === 'up' && !this.closed) {
      this.set('down');
      this.delayMs = RECOVERY_FIRST_MS;
      this.lastLogged = { reason: '', at: -Infinity };
      this.noteFailure(err, 'store unavailable; the service answers degraded and retries');
      this.schedule();
    }
    return true;
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Waits for an attempt under way (for close). */
  async settled(): Promise<void> {
    await this.attempting?.catch(() => undefined);
  }

  private async run(): Promise<void> {
    this.attempting = this.attempt();
    try {
      await this.attempting;
    } finally {
      this.attempting = undefined;
    }
    if (this.closed) return;
    const was = this.state;
    this.set('up');
    this.delayMs = RECOVERY_FIRST_MS;
    if (was !== 'starting' || this.lastLogged.reason !== '') this.log.info({ store: 'up' }, 'store available again');
  }

  private schedule(): void {
    if (this.closed || this.timer) return;
    const delay = this.delayMs;
    this.delayMs = Math.min(this.delayMs * 2, RECOVERY_MAX_MS);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.closed || this.state === 'up') return;
      this.run().catch((err: unknown) => {
        if (this.closed) return;
        this.noteFailure(err, this.state === 'starting' ? 'store starting: migrations pending, retrying' : 'store still unavailable, retrying');
        this.schedule();
      });
    }, delay);
    // Retrying must not keep a process alive that has nothing else to do.
    this.timer.unref();
  }

  private noteFailure(err: unknown, msg: string): void {
    const summary = errSummary(err);
    const reason = `${summary.code ?? ''}|${summary.message}`;
    const now = performance.now();
    if (reason === this.lastLogged.reason && now - this.lastLogged.at < 60_000) return;
    this.lastLogged = { reason, at: now };
    const level = this.state === 'down' && msg.startsWith('store unavailable') ? 'error' : 'warn';
    this.log[level]({ err: summary, store: this.state, retryInMs: this.delayMs }, msg);
  }

  private set(state: StoreState): void {
    if (this.state === state) return;
    this.state = state;
    for (const listener of this.listeners) listener(state);
  }
}

/**
 * A dialect whose every query error (and connection error) passes by `report` before it reaches the caller: the
 * supervisor learns of an outage from whichever query meets it first.
 */
export class ObservedDialect implements Dialect {
  constructor(
    private readonly inner: Dialect,
    private readonly report: (err: unknown) => void,
  ) {}
  createDriver(): Driver {
    return new ObservedDriver(this.inner.createDriver(), this.report);
  }
  createQueryCompiler(): QueryCompiler {
    return this.inner.createQueryCompiler();
  }
  createAdapter() {
    return this.inner.createAdapter();
  }
  createIntrospector(db: Kysely<any>) {
    return this.inner.createIntrospector(db);
  }
}

class ObservedDriver implements Driver {
  private readonly inner = new WeakMap<DatabaseConnection, DatabaseConnection>();
  constructor(
    private readonly driver: Driver,
    private readonly report: (err: unknown) => void,
  ) {}

  private async observe<T>(run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      this.report(err);
      throw err;
    }
  }

  private unwrap(connection: DatabaseConnection): DatabaseConnection {
    return this.inner.get(connection) ?? connection;
  }

  init(): Promise<void> {
    return this.observe(() => this.driver.init());
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    const connection = await this.observe(() => this.driver.acquireConnection());
    const observed: DatabaseConnection = {
      executeQuery: <R>(query: CompiledQuery) => this.observe(() => connection.executeQuery<R>(query)),
      streamQuery: <R>(query: CompiledQuery, chunkSize?: number) => connection.streamQuery<R>(query, chunkSize),
    };
    this.inner.set(observed, connection);
    return observed;
  }

  beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    return this.observe(() => this.driver.beginTransaction(this.unwrap(connection), settings));
  }
  commitTransaction(connection: DatabaseConnection): Promise<void> {
    return this.observe(() => this.driver.commitTransaction(this.unwrap(connection)));
  }
  rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    return this.observe(() => this.driver.rollbackTransaction(this.unwrap(connection)));
  }
  async savepoint(connection: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']): Promise<void> {
    if (!this.driver.savepoint) throw new Error('savepoints are not supported');
    await this.observe(() => this.driver.savepoint!(this.unwrap(connection), name, compile));
  }
  async rollbackToSavepoint(connection: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']): Promise<void> {
    if (!this.driver.rollbackToSavepoint) throw new Error('savepoints are not supported');
    await this.observe(() => this.driver.rollbackToSavepoint!(this.unwrap(connection), name, compile));
  }
  async releaseSavepoint(connection: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']): Promise<void> {
    if (!this.driver.releaseSavepoint) throw new Error('savepoints are not supported');
    await this.observe(() => this.driver.releaseSavepoint!(this.unwrap(connection), name, compile));
  }
  releaseConnection(connection: DatabaseConnection): Promise<void> {
    return this.driver.releaseConnection(this.unwrap(connection));
  }
  destroy(): Promise<void> {
    return this.driver.destroy();
  }
}
