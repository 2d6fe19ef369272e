import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import type { Store } from './database.js';
import { patientHash } from './audit-record.js';
import { within } from './supervisor.js';

/** What the follow-up service needs from the store: what it already said, and what happened to earlier imaging advice. */
export interface FollowUpMemory {
  /** True the first time for a key (and remembers it); false after. */
  firstTime(key: string, at: Date): Promise<boolean>;
  /** Whether an earlier card for this patient advised against imaging and the order was then withdrawn or the advice overridden. */
  imagingAdviceActedOn(patientId: string, since: Date): Promise<boolean>;
}

/** A hook call waits at most this long for each of the follow-up's questions to the store. */
export const FOLLOW_UP_STORE_WAIT_MS = 300;
/** Keys kept in memory while the store cannot say (most recent kept). */
const FALLBACK_KEYS = 10_000;

/**
 * The follow-up's memory in the store. When the store is down, slow or does not know the hash secret yet, a hook call
 * is never failed for it and never waits more than FOLLOW_UP_STORE_WAIT_MS:
 * - firstTime falls back to this instance's memory (bounded; keys only as hashes), so the card is still shown once per
 *   encounter (on this instance; another replica, asking the store once it is back, may show it once more);
 * - imagingAdviceActedOn answers false: the card then makes no claim about earlier advice, rather than one nobody could check
 *   (a withdrawn order in the record still counts).
 */
export function storeFollowUpMemory(store: Store, waitMs = FOLLOW_UP_STORE_WAIT_MS): FollowUpMemory {
  const shown = new Map<string, number>();
  const localKey = (key: string) => createHash('sha256').update(`follow-up|${key}`).digest('hex');
  const rememberLocally = (key: string, at: Date): boolean => {
    const local = localKey(key);
    if (shown.has(local)) return false;
    shown.set(local, at.getTime());
    if (shown.size > FALLBACK_KEYS) shown.delete(shown.keys().next().value!);
    return true;
  };
  return {
    async firstTime(key, at) {
      if (store.state !== 'up') return rememberLocally(key, at);
      try {
        const result = await within(
          waitMs,
          store.db
            .insertInto('follow_up_shown')
            .values({ shown_key: store.hash(`follow-up|${key}`), at: at.toISOString() })
            .onConflict((oc) => oc.column('shown_key').doNothing())
            .executeTakeFirst(),
        );
        // New to the store, but shown by this instance while the store was down: not again.
        return Number(result.numInsertedOrUpdatedRows ?? 0) > 0 && (shown.size === 0 || !shown.has(localKey(key)));
      } catch {
        return rememberLocally(key, at);
      }
    },
    async imagingAdviceActedOn(patientId, since) {
      if (store.state !== 'up') return false;
      try {
        const row = await within(
          waitMs,
          store.db
            .selectFrom('audit_card')
            .innerJoin('audit_hook_call', 'audit_hook_call.hook_instance', 'audit_card.hook_instance')
            .innerJoin('feedback', 'feedback.card_uuid', 'audit_card.card_uuid')
            .select(sql<number>`1`.as('one'))
            .where('audit_hook_call.patient_hash', '=', patientHash(store.hash, patientId))
            .where('audit_card.at', '>=', since.toISOString())
            .where('audit_card.recommendation', 'in', ['imaging-not-indicated', 'imaging-deferred', 'imaging-xray-first'])
            .executeTakeFirst(),
        );
        return row !== undefined;
      } catch {
        return false;
      }
    },
  };
}
