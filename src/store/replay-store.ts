import type { Store } from './database.js';

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

  async remember(key: string, expiresAtMs: number, nowMs: number): Promise<boolean> {
    if (nowMs >= this.nextPurge) {
      this.nextPurge = nowMs + REPLAY_PURGE_INTERVAL_MS;
      for (const [k, until] of this.seen) if (until <= nowMs) this.seen.delete(k);
    }
    const until = this.seen.get(key);
    if (until !== undefined && until > nowMs) return false;
    this.seen.set(key, expiresAtMs);
    return true;
  }
}

/** The replay store in the database, so a token used on one replica is refused by the others. */
export class DatabaseReplayStore implements ReplayStore {
  private nextPurge = 0;
  private purging?: Promise<void>;
  constructor(private readonly store: Store) {}

  async remember(key: string, expiresAtMs: number, nowMs: number): Promise<boolean> {
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
