import { Engine } from 'json-rules-engine';
import type { RecommendationCode, Rules } from '../rules/types.js';
import type { ClinicalFacts, InScopeOrder } from '../facts/types.js';

export interface Decision {
  recommendation: RecommendationCode;
  firedRules: string[];
}

/** The flat facts the recommendation rules see. No `path` lookups: they are slow and a known injection surface. */
export function engineFacts(facts: ClinicalFacts, order: InScopeOrder): Record<string, unknown> {
  const foundCategories = facts.categories.filter((c) => c.status === 'found').map((c) => c.id);
  const unknownCategories = facts.categories.filter((c) => c.status === 'unknown').map((c) => c.id);
  return {
    foundCategories,
    unknownCategories,
    unknownCategoryCount: unknownCategories.length,
    unreadableDataCount: facts.unreadable.length,
    modality: order.modality,
    age: facts.age ?? null,
    episodeDays: facts.episode.durationDays ?? null,
  };
}

/**
 * Runs the recommendation rules and keeps the fired recommendation that comes first in the precedence list.
 * A new Engine per call: json-rules-engine keeps run state on the Engine, and concurrent runs on one
 * Engine silently drop rules (engineering.md, section 2).
 */
export async function recommend(facts: ClinicalFacts, order: InScopeOrder, rules: Rules): Promise<Decision> {
  const engine = new Engine(rules.recommendations.rules as never, {
    allowUndefinedFacts: false,
    pathResolver: () => {
      throw new Error('path lookups are not supported in recommendation rules');
    },
  });
  const { events, results } = await engine.run(engineFacts(facts, order));
  const fired = new Set(events.map((e) => e.type));
  const recommendation =
    rules.recommendations.precedence.find((code) => fired.has(code)) ?? rules.recommendations.default;
  return { recommendation, firedRules: results.map((r) => String(r.name ?? r.event?.type)) };
}
