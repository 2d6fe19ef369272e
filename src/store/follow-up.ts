import { sql } from 'kysely';
import type { Store } from './database.js';

/** What the follow-up service needs from the store: what it already said, and what happened to earlier imaging advice. */
export interface FollowUpMemory {
  /** True the first time for a key (and remembers it); false after. */
  firstTime(key: string, at: Date): Promise<boolean>;
  /** Whether an earlier card for this patient advised against imaging and the order was then withdrawn or the advice overridden. */
  imagingAdviceActedOn(patientHash: string, since: Date): Promise<boolean>;
}

export function storeFollowUpMemory(store: Store): FollowUpMemory {
  return {
    async firstTime(key, at) {
      const result = await store.db
        .insertInto('follow_up_shown')
        .values({ shown_key: store.hash(`follow-up|${key}`), at: at.toISOString() })
        .onConflict((oc) => oc.column('shown_key').doNothing())
        .executeTakeFirst();
      return Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
    },
    async imagingAdviceActedOn(patientHash, since) {
      const row = await store.db
        .selectFrom('audit_card')
        .innerJoin('audit_hook_call', 'audit_hook_call.hook_instance', 'audit_card.hook_instance')
        .innerJoin('feedback', 'feedback.card_uuid', 'audit_card.card_uuid')
        .select(sql<number>`1`.as('one'))
        .where('audit_hook_call.patient_hash', '=', patientHash)
        .where('audit_card.at', '>=', since.toISOString())
        .where('audit_card.recommendation', 'in', ['imaging-not-indicated', 'imaging-deferred', 'imaging-xray-first'])
        .executeTakeFirst();
      return row !== undefined;
    },
  };
}
