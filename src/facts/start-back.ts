import type { QuestionnaireResponse, QuestionnaireResponseItem } from 'fhir/r4.js';
import type { QuestionnaireScoring } from '../rules/types.js';
import { daysBetween, parseFhirDate, isoDay } from '../fhir/dates.js';
import type { StartBackResult } from './types.js';

function findItem(items: QuestionnaireResponseItem[] | undefined, linkId: string): QuestionnaireResponseItem | undefined {
  for (const item of items ?? []) {
    if (item.linkId === linkId) return item;
    const nested = findItem(item.item, linkId);
    if (nested) return nested;
  }
  return undefined;
}

/** 1 for a positive answer, 0 for another, undefined for none. */
function answerScore(item: QuestionnaireResponseItem | undefined, def: QuestionnaireScoring): number | undefined {
  const a = item?.answer?.[0];
  if (!a) return undefined;
  if (a.valueCoding?.code !== undefined) return def.positive.codes.includes(a.valueCoding.code) ? 1 : 0;
  if (typeof a.valueBoolean === 'boolean') return def.positive.booleans.includes(a.valueBoolean) ? 1 : 0;
  if (typeof a.valueString === 'string') return def.positive.strings.includes(a.valueString.trim().toLowerCase()) ? 1 : 0;
  return undefined;
}

/**
 * The Keele STarT Back group from the newest completed response in the record (rules/questionnaires/start-back.json):
 * overall 0-9, psychosocial subscale items 5-9; low when overall is at most 3, high when the subscale is at least 4,
 * medium otherwise. A response with an unanswered item, or older than maxAgeDays, is not used.
 */
export function scoreStartBack(responses: QuestionnaireResponse[], def: QuestionnaireScoring, now: Date): StartBackResult | undefined {
  const usable = responses
    .filter((r) => (r.status === 'completed' || r.status === 'amended') && r.questionnaire !== undefined && def.canonicals.some((c) => r.questionnaire === c || r.questionnaire!.startsWith(`${c}|`)))
    .filter((r) => {
      const authored = parseFhirDate(r.authored);
      return !authored || daysBetween(authored, now) <= def.maxAgeDays;
    })
    .sort((a, b) => (b.authored ?? '').localeCompare(a.authored ?? ''));
  for (const r of usable) {
    const scores = def.items.map((linkId) => answerScore(findItem(r.item, linkId), def));
    if (scores.some((s) => s === undefined)) continue;
    const byItem = new Map(def.items.map((id, i) => [id, scores[i]!]));
    const total = scores.reduce((sum: number, s) => sum + s!, 0);
    const psychosocial = def.psychosocialItems.reduce((sum, id) => sum + (byItem.get(id) ?? 0), 0);
    const group = total <= def.scoring.lowMaxTotal ? 'low' : psychosocial >= def.scoring.highMinPsychosocial ? 'high' : 'medium';
    // Only a date that reads as one is kept: it is shown on the card, and record text must not become markup there.
    const authored = parseFhirDate(r.authored);
    return { group, total, psychosocial, authored: authored ? isoDay(authored) : undefined, reference: r.id ? `QuestionnaireResponse/${r.id}` : undefined };
  }
  return undefined;
}
