import type { Store } from './database.js';
import { errSummary, isStoreOutage, silentLog, within, type StoreLog } from './supervisor.js';

/** Where seen JWT ids are kept until their tokens expire: one instance's memory, or the shared store for several. */
export interface ReplayStore {
  /** True when the id is new (and now remembered); false when it was seen and its token is still alive. */
  remember(key: string, expiresAtMs: number, nowMs: number): Promise<boolean>;
}

/** Expired ids are swept at most this often: a sweep reads every id kept, so it must not run per call. */
export const REPLAY_PURGE_INTERVAL_MS = 60_000;

export class MemoryReplayStore implements ReplayStore {
  private readonly seen = new Map<string, number>();
  private nextPurge = 0;

  get size(): number {
    return this.seen.size;
  }

  /** True when the id was remembered and its token is still alive (nothing is remembered by asking). */
  has(key: string, nowMs: number): boolean {
    this.sweep(nowMs);
    const until = this.seen.get(key);
    return until !== undefined && until > nowMs;
  }

  private sweep(nowMs: number): void {
    if (nowMs < this.nextPurge) return;
    this.nextPurge = nowMs + REPLAY_PURGE_INTERVAL_MS;
    for (const [k, until] of this.seen) if (until <= nowMs) this.seen.delete(k);
  }

  async remember(key: string, expiresAtMs: number, nowMs: number): Promise<boolean> {
    this.sweep(nowMs);
    const until = this.seen.get(key);
    if (until !== undefined && until > nowMs) return false;
    this.seen.set(key, expiresAtMs);
    return true;
  }
}

/** A replay check waits at most this long for the database before it falls back to this instance's memory. */
export const REPLAY_DB_WAIT_MS = 250;

/**
 * The replay store in the database, so a token used on one replica is refused by the others. While the database is
 * down the ids are kept in this instance's memory instead (hook calls keep being answered; a replay to this instance is
 * still refused, one to another replica is not), and they are checked there too, after the database is back, until
 * their tokens expire.
 */
export class DatabaseReplayStore implements ReplayStore {
  private nextPurge = 0;
  private purging?: Promise<void>;
  private readonly memory = new MemoryReplayStore();
  private degraded = false;
  constructor(
    private readonly store: Store,
    private readonly log: StoreLog = silentLog,
  ) {}

  async remember(key: string, expiresAtMs: number, nowMs: number): Promise<boolean> {
    if (this.memory.size > 0 && this.memory.has(key, nowMs)) return false;
    if (this.store.state !== 'up') return this.fallBack(key, expiresAtMs, nowMs, undefined);
    try {
      const fresh = await within(REPLAY_DB_WAIT_MS, this.rememberInDatabase(key, expiresAtMs, nowMs));
      this.degraded = false;
      return fresh;
    } catch (err) {
      // The driver has told the store already (a lost connection marks it down); a slow answer only skips this check.
      if (!isStoreOutage(err)) throw err;
      return this.fallBack(key, expiresAtMs, nowMs, err);
    }
  }

  private fallBack(key: string, expiresAtMs: number, nowMs: number, err: unknown): Promise<boolean> {
    if (!this.degraded) {
      this.degraded = true;
      this.log.warn(err === undefined ? {} : { err: errSummary(err) }, 'JWT replay check in this instance\'s memory while the store is unavailable');
    }
    return this.memory.remember(key, expiresAtMs, nowMs);
  }

  private async rememberInDatabase(key: string, expiresAtMs: number, nowMs: number): Promise<boolean> {
    const expires = new Date(expiresAtMs).toISOString();
    const now = new Date(nowMs).toISOString();
    const db = this.store.db;
    // Insert, or take over the row of an expired token; any other conflict is a replay.
    const result = await db
      .insertInto('jti_seen')
      .values({ jti_key: key, expires_at: expires })
      .onConflict((oc) => oc.column('jti_key').doUpdateSet({ expires_at: expires }).where('jti_seen.expires_at', '<=', now))
      .executeTakeFirst();
    if (nowMs >= this.nextPurge && !this.purging) {
      this.nextPurge = nowMs + REPLAY_PURGE_INTERVAL_MS;
      // Not awaited: the hook call does not wait for housekeeping. A failed sweep costs nothing (an expired row is taken
      // over by the insert above); the next one retries.
      this.purging = db
        .deleteFrom('jti_seen')
        .where('expires_at', '<=', now)
        .execute()
        .then(
          () => undefined,
          () => undefined,
        )
        .finally(() => {
          this.purging = undefined;
        });
    }
    return Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
  }

  /** Resolves when a sweep under way has finished (for tests). */
  async settled(): Promise<void> {
    await this.purging;
  }
}

/** How often ids seen by one instance are written to its embedded store (one transaction for all of them). */
export const REPLAY_PERSIST_INTERVAL_MS = 250;

/**
 * One instance on the embedded store (SQLite): the ids are checked in memory, so the hook call never waits on a
 * synchronous write, and written to the store in batches off the call's path; at start the ids still alive are read
 * back, so a token used before a restart is refused after it (all but the last quarter-second before a crash).
 */
export class PersistedReplayStore implements ReplayStore {
  private readonly memory = new MemoryReplayStore();
  private pending: Array<{ jti_key: string; expires_at: string }> = [];
  private timer?: NodeJS.Timeout;
  private nextPurge = 0;
  private failedLogged = false;
  private readBack = false;
  private closed = false;
  private unsubscribe: () => void = () => undefined;

  private constructor(
    private readonly store: Store,
    private readonly log: StoreLog,
  ) {}

  /**
   * Reads back the ids whose tokens are still alive; a store that is not up yet is read as soon as it comes up (until
   * then the ids of this run are checked in memory, as always).
   */
  static async open(store: Store, log: StoreLog = silentLog): Promise<PersistedReplayStore> {
    const replays = new PersistedReplayStore(store, log);
    if (store.state === 'up') await replays.readBackOnce();
    else {
      replays.unsubscribe = store.onStateChange((state) => {
        if (state === 'up') void replays.readBackOnce();
      });
    }
    return replays;
  }

  private async readBackOnce(): Promise<void> {
    if (this.readBack || this.closed) return;
    this.readBack = true;
    this.unsubscribe();
    const nowMs = Date.now();
    try {
      const rows = await this.store.db.selectFrom('jti_seen').select(['jti_key', 'expires_at']).where('expires_at', '>', new Date(nowMs).toISOString()).execute();
      for (const row of rows) await this.memory.remember(row.jti_key, Date.parse(row.expires_at), nowMs);
    } catch (err) {
      this.log.warn({ err: errSummary(err) }, 'JWT ids seen before the restart could not be read back');
    }
  }

  /** Writes what waits and stops: called once no call is in flight, before the store closes. */
  async close(): Promise<void> {
    this.unsubscribe();
    await this.flush();
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  async remember(key: string, expiresAtMs: number, nowMs: number): Promise<boolean> {
    if (!(await this.memory.remember(key, expiresAtMs, nowMs))) return false;
    if (this.closed) return true;
    this.pending.push({ jti_key: key, expires_at: new Date(expiresAtMs).toISOString() });
    if (!this.timer) {
      this.timer = setTimeout(() => void this.flush(), REPLAY_PERSIST_INTERVAL_MS);
      this.timer.unref();
    }
    return true;
  }

  /** Writes the ids waiting; never throws (a store that is down keeps them for the next try, within a bound). */
  async flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.closed) return;
    if (this.pending.length === 0 || this.store.state !== 'up') {
      // Kept while the store is down, as many as memory holds at most for one token lifetime's worth of calls.
      if (this.pending.length > 0 && !this.timer) {
        this.pending = this.pending.slice(-100_000);
        this.timer = setTimeout(() => void this.flush(), REPLAY_PERSIST_INTERVAL_MS * 4);
        this.timer.unref();
      }
      return;
    }
    const batch = this.pending;
    this.pending = [];
    const now = new Date().toISOString();
    try {
      await this.store.db.transaction().execute(async (trx) => {
        for (let i = 0; i < batch.length; i += 200) {
          const rows = batch.slice(i, i + 200);
          await trx.insertInto('jti_seen').values(rows).onConflict((oc) => oc.column('jti_key').doUpdateSet((eb) => ({ expires_at: eb.ref('excluded.expires_at') }))).execute();
        }
        if (Date.now() >= this.nextPurge) {
          this.nextPurge = Date.now() + REPLAY_PURGE_INTERVAL_MS;
          await trx.deleteFrom('jti_seen').where('expires_at', '<=', now).execute();
        }
      });
      this.failedLogged = false;
    } catch (err) {
      this.pending = [...batch, ...this.pending].slice(-100_000);
      if (!this.failedLogged) {
        this.failedLogged = true;
        this.log.warn({ err: errSummary(err) }, 'JWT ids could not be written to the store; kept in memory and retried');
      }
      if (!this.closed) {
        this.timer ??= setTimeout(() => void this.flush(), REPLAY_PERSIST_INTERVAL_MS * 4);
        this.timer.unref();
      }
    }
  }
}
