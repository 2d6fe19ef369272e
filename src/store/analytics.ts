import type { Store } from './database.js';

export interface RecommendationStats {
  cards: number;
  accepted: number;
  overridden: number;
  overrideReasons: Record<string, number>;
}

export interface AnalyticsSummary {
  rulesVersion: string;
  byRecommendation: Record<string, RecommendationStats>;
}

export interface AnalyticsDetail extends AnalyticsSummary {
  byDay: Array<{ day: string; cards: number; accepted: number; overridden: number }>;
  byRule: Array<{ rule: string; cards: number; accepted: number; overridden: number }>;
  bySuggestion: Array<{ suggestion: string; offered: number; accepted: number }>;
}

const empty = (): RecommendationStats => ({ cards: 0, accepted: 0, overridden: 0, overrideReasons: {} });

/**
 * What the cards did: how many of each recommendation were shown, accepted and overridden, and why. Feedback counts once
 * per card and outcome (the latest wins when a client changes its mind); feedback for cards this store never issued is left out.
 */
export async function analytics(store: Store, rulesVersion: string, since?: string): Promise<AnalyticsDetail> {
  let cardsQuery = store.db.selectFrom('audit_card').select(['card_uuid', 'recommendation', 'day', 'fired_rules', 'suggestions']);
  if (since) cardsQuery = cardsQuery.where('at', '>=', since);
  const cards = await cardsQuery.execute();
  const byCard = new Map(cards.map((c) => [c.card_uuid, c]));
  let feedbackQuery = store.db
    .selectFrom('feedback')
    .select(['card_uuid', 'outcome', 'accepted_suggestions', 'override_reason_code', 'outcome_at'])
    .orderBy('outcome_at', 'asc');
  // Only the window's cards' feedback: the cost follows the window asked for, not the store's retention.
  if (since) feedbackQuery = feedbackQuery.where('card_uuid', 'in', store.db.selectFrom('audit_card').select('card_uuid').where('at', '>=', since));
  const feedback = await feedbackQuery.execute();
  const latest = new Map<string, (typeof feedback)[number]>();
  for (const f of feedback) if (byCard.has(f.card_uuid)) latest.set(f.card_uuid, f);

  const byRecommendation: Record<string, RecommendationStats> = {};
  const days = new Map<string, { day: string; cards: number; accepted: number; overridden: number }>();
  const rules = new Map<string, { rule: string; cards: number; accepted: number; overridden: number }>();
  const suggestions = new Map<string, { suggestion: string; offered: number; accepted: number }>();
  for (const c of cards) {
    const stats = (byRecommendation[c.recommendation] ??= empty());
    const day = days.get(c.day) ?? { day: c.day, cards: 0, accepted: 0, overridden: 0 };
    days.set(c.day, day);
    const fired = (JSON.parse(c.fired_rules) as string[]).map((rule) => {
      const r = rules.get(rule) ?? { rule, cards: 0, accepted: 0, overridden: 0 };
      rules.set(rule, r);
      return r;
    });
    const offered = JSON.parse(c.suggestions) as Array<{ uuid: string; kind: string }>;
    for (const s of offered) {
      const entry = suggestions.get(s.kind) ?? { suggestion: s.kind, offered: 0, accepted: 0 };
      entry.offered++;
      suggestions.set(s.kind, entry);
    }
    for (const target of [stats, day, ...fired]) target.cards++;
    const f = latest.get(c.card_uuid);
    if (!f) continue;
    const outcome = f.outcome === 'accepted' ? 'accepted' : 'overridden';
    for (const target of [stats, day, ...fired]) target[outcome]++;
    if (outcome === 'overridden') {
      const reason = f.override_reason_code ?? 'none-given';
      stats.overrideReasons[reason] = (stats.overrideReasons[reason] ?? 0) + 1;
    } else {
      const accepted = new Set(JSON.parse(f.accepted_suggestions) as string[]);
      for (const s of offered) if (accepted.has(s.uuid)) suggestions.get(s.kind)!.accepted++;
    }
  }
  return {
    rulesVersion,
    byRecommendation,
    byDay: [...days.values()].sort((a, b) => a.day.localeCompare(b.day)),
    byRule: [...rules.values()].sort((a, b) => b.cards - a.cards),
    bySuggestion: [...suggestions.values()].sort((a, b) => b.offered - a.offered),
  };
}

/** Rows deleted per statement by the retention purge. */
export const PURGE_CHUNK = 2_000;

/**
 * Deletes audit and feedback older than the retention period, a chunk at a time with a turn of the event loop between
 * chunks: on SQLite every statement runs on the event loop and holds the write lock, so one statement over a large backlog
 * would stall hook calls and the audit thread alike. Each chunk commits on its own; a purge cut short (`stopped`, at
 * shutdown) resumes next time.
 */
export async function purgeOlderThan(store: Store, cutoff: Date, options: { stopped?: () => boolean } = {}): Promise<number> {
  const iso = cutoff.toISOString();
  let deleted = 0;
  const { db } = store;
  // Each deletes up to PURGE_CHUNK of its table's oldest rows (by primary key, which both databases can limit).
  const chunks = [
    () => db.deleteFrom('audit_card').where('card_uuid', 'in', db.selectFrom('audit_card').select('card_uuid').where('at', '<', iso).orderBy('at').limit(PURGE_CHUNK)),
    () => db.deleteFrom('audit_hook_call').where('hook_instance', 'in', db.selectFrom('audit_hook_call').select('hook_instance').where('at', '<', iso).orderBy('at').limit(PURGE_CHUNK)),
    () => db.deleteFrom('feedback').where('feedback_key', 'in', db.selectFrom('feedback').select('feedback_key').where('received_at', '<', iso).orderBy('received_at').limit(PURGE_CHUNK)),
  ];
  for (const chunk of chunks) {
    for (;;) {
      if (options.stopped?.()) return deleted;
      const n = Number((await chunk().executeTakeFirst()).numDeletedRows ?? 0);
      deleted += n;
      if (n < PURGE_CHUNK) break;
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
  return deleted;
}
