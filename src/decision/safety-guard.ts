import type { RecommendationCode, Rules } from '../rules/types.js';
import type { ClinicalFacts } from '../facts/types.js';

export interface GuardedDecision {
  recommendation: RecommendationCode;
  /** Why the guard overruled the rules; the rules are then wrong and the log says so. */
  overruled?: string;
}

/**
 * The clinical safety invariant, enforced after the rules whatever the rule files say:
 * a card that advises against imaging never goes out when a major red flag is in the data,
 * and never when part of the red-flag check could not be read (unknown is not absent).
 */
export function applySafetyGuard(recommendation: RecommendationCode, facts: ClinicalFacts, rules: Rules): GuardedDecision {
  const def = rules.recommendations.recommendations[recommendation];
  if (!def.advisesAgainstImaging) return { recommendation };
  const major = facts.categories.filter((c) => c.tier === 'major' && c.status === 'found');
  if (major.length > 0) {
    return {
      recommendation: 'imaging-urgent',
      overruled: `rules chose ${recommendation} although ${major.map((c) => c.id).join(', ')} was found`,
    };
  }
  const unknown = [...facts.categories.filter((c) => c.status === 'unknown').map((c) => c.id), ...facts.unreadable];
  if (unknown.length > 0) {
    return {
      recommendation: 'red-flags-unverified',
      overruled: `rules chose ${recommendation} although ${unknown.join(', ')} could not be checked`,
    };
  }
  return { recommendation };
}
