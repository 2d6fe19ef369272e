import type { RecommendationCode, Rules } from '../rules/types.js';
import type { ClinicalFacts, InScopeOrder } from '../facts/types.js';
import { compiledRules, firedRules, type EngineFacts } from './compile-rules.js';

export interface Decision {
  recommendation: RecommendationCode;
  firedRules: string[];
}

/** The flat facts the recommendation rules see. No `path` lookups: they are slow and a known injection surface. */
export function engineFacts(facts: ClinicalFacts, order: InScopeOrder): EngineFacts {
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
 * Runs the recommendation rules (compiled once per rules version, held equal to json-rules-engine by the tests) and keeps
 * the fired recommendation that comes first in the precedence list.
 */
export function recommend(facts: ClinicalFacts, order: InScopeOrder, rules: Rules): Decision {
  const fired = firedRules(compiledRules(rules.recommendations.rules), engineFacts(facts, order));
  const events = new Set(fired.map((r) => r.event));
  const recommendation = rules.recommendations.precedence.find((code) => events.has(code)) ?? rules.recommendations.default;
  return { recommendation, firedRules: fired.map((r) => r.name) };
}
