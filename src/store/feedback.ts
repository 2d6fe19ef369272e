import { createHash } from 'node:crypto';
import type { Store } from './database.js';

/** One feedback item of a CDS Hooks 2.0 feedback request (validated by the route schema). */
export interface FeedbackItem {
  card: string;
  outcome: 'accepted' | 'overridden';
  acceptedSuggestions?: Array<{ id: string }>;
  overrideReason?: { reason?: { system?: string; code: string; display?: string }; userComment?: string };
  outcomeTimestamp: string;
}

/** Same content, same key: a client that sends the same feedback twice (CDS Hooks allows it) stores it once. */
function feedbackKey(f: FeedbackItem): string {
  const content = [
    f.card,
    f.outcome,
    (f.acceptedSuggestions ?? []).map((s) => s.id).sort().join(','),
    f.overrideReason?.reason?.system ?? '',
    f.overrideReason?.reason?.code ?? '',
    f.outcomeTimestamp,
  ].join('\u0000');
  return createHash('sha256').update(content).digest('hex');
}

/** Stores a feedback request in one transaction; resolves only once it is committed. Returns how many items were new. */
export async function storeFeedback(store: Store, service: string, items: FeedbackItem[], receivedAt: Date): Promise<number> {
  const rows = items.map((f) => ({
    feedback_key: feedbackKey(f),
    card_uuid: f.card,
    service,
    outcome: f.outcome,
    accepted_suggestions: JSON.stringify((f.acceptedSuggestions ?? []).map((s) => s.id)),
    override_reason_system: f.overrideReason?.reason?.system ?? null,
    override_reason_code: f.overrideReason?.reason?.code ?? null,
    has_comment: f.overrideReason?.userComment ? 1 : 0,
    outcome_at: f.outcomeTimestamp,
    received_at: receivedAt.toISOString(),
  }));
  const unique = [...new Map(rows.map((r) => [r.feedback_key, r])).values()];
  return store.db.transaction().execute(async (trx) => {
    const inserted = await trx.insertInto('feedback').values(unique).onConflict((oc) => oc.column('feedback_key').doNothing()).executeTakeFirst();
    return Number(inserted.numInsertedOrUpdatedRows ?? 0);
  });
}
