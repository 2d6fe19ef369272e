import type { Store } from './database.js';

/** Where seen JWT ids are kept until their tokens expire: one instance's memory, or the shared store for several. */
export interface ReplayStore {
  /** True when the id is new (and now remembered); false when it was seen and its token is still alive. */
  remember(key: string, expiresAtMs: number, nowMs: number): Promise<boolean>;
}

export class MemoryReplayStore implements ReplayStore {
  private readonly seen = new Map<string, number>();
  async remember(key: string, expiresAtMs: number, nowMs: number): Promise<boolean> {
    const until = this.seen.get(key);
    if (until !== undefined && until > nowMs) return false;
    this.seen.set(key, expiresAtMs);
    if (this.seen.size % 1024 === 0) for (const [k, t] of this.seen) if (t <= nowMs) this.seen.delete(k);
    return true;
  }
}

/** The replay store in the database, so a token used on one replica is refused by the others. */
export class DatabaseReplayStore implements ReplayStore {
  private inserts = 0;
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
    if (++this.inserts % 1024 === 0) await db.deleteFrom('jti_seen').where('expires_at', '<=', now).execute();
    return Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
  }
}
