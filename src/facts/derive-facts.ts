import type { Criterion, Rules } from '../rules/types.js';
import type { Terminology } from '../rules/terminology.js';
import { addDays, ageInYears, daysBetween, isoDay } from '../fhir/dates.js';
import { conditionStart, isCountableCondition } from '../fhir/resources.js';
import { evaluateCriterion, type CriteriaContext } from './criteria.js';
import { RED_FLAG_KINDS } from './types.js';
import { scoreStartBack } from './start-back.js';
import type {
  CriterionResult,
  CategoryResult,
  ClinicalData,
  ClinicalFacts,
  DataKind,
  EpisodeFacts,
  FlagStatus,
  InScopeOrder,
  RedFlagResult,
  Sex,
} from './types.js';

function sexOf(gender: string | undefined): Sex {
  if (gender === 'male' || gender === 'female' || gender === 'other') return gender;
  return 'unknown';
}

/** The current episode starts at the earliest recorded start of an active back pain, radicular pain or stenosis condition. */
export function episodeFacts(data: ClinicalData, rules: Rules, terminology: Terminology, now: Date): EpisodeFacts {
  const episodeSets = rules.scope.episodeValueSets;
  let onset: Date | undefined;
  for (const c of data.Condition.items) {
    if (!isCountableCondition(c, false)) continue;
    const inEpisode = episodeSets.some((vs) => terminology.matchConcept(vs, c.code));
    if (!inEpisode) continue;
    const start = conditionStart(c);
    if (start && start <= now && (!onset || start < onset)) onset = start;
  }
  return {
    onset: onset?.toISOString().slice(0, 10),
    durationDays: onset ? daysBetween(onset, now) : undefined,
  };
}

/**
 * A finding is new to this episode when it began on or after the episode's first day, and never earlier than the window
 * (S6): long-standing symptoms of a chronic back pain are not new. Without a dated episode, the window alone decides.
 */
function newSince(episodeOnset: string | undefined, windowDays: number, now: Date): string {
  const windowStart = isoDay(addDays(now, -windowDays));
  return episodeOnset && episodeOnset > windowStart ? episodeOnset : windowStart;
}

/** The patient's languages (Patient.communication), preferred ones first. */
export function languagesOf(patient: ClinicalData['Patient']['items'][number] | undefined): string[] {
  const communication = [...(patient?.communication ?? [])].sort((a, b) => Number(Boolean(b.preferred)) - Number(Boolean(a.preferred)));
  return communication.flatMap((c) => c.language?.coding?.map((cd) => cd.code).filter((x): x is string => typeof x === 'string') ?? []);
}

function categoryStatus(flags: RedFlagResult[]): FlagStatus {
  if (flags.some((f) => f.status === 'found')) return 'found';
  if (flags.some((f) => f.status === 'unknown')) return 'unknown';
  return 'not-found';
}

/** What is known of the patient whatever the order: the same for every order of one call. */
export type PatientFacts = Pick<ClinicalFacts, 'age' | 'sex' | 'languages' | 'episode' | 'startBack'>;

export function patientFacts(data: ClinicalData, rules: Rules, terminology: Terminology, now: Date): PatientFacts {
  const patient = data.Patient.items[0];
  const startBack = scoreStartBack(data.QuestionnaireResponse.items, rules.questionnaires.startBack, now);
  return {
    age: ageInYears(patient?.birthDate, now),
    sex: sexOf(patient?.gender),
    languages: languagesOf(patient),
    episode: episodeFacts(data, rules, terminology, now),
    ...(startBack ? { startBack } : {}),
  };
}

/**
 * Everything the rules need to know about this patient and this order; pure. A call with several orders passes the
 * patient's facts and the criteria memo worked out for the first, so the record is read once.
 */
export function deriveFacts(
  data: ClinicalData,
  order: InScopeOrder,
  rules: Rules,
  terminology: Terminology,
  now: Date,
  memo: Map<Criterion, CriterionResult> = new Map(),
  patient: PatientFacts = patientFacts(data, rules, terminology, now),
): ClinicalFacts {
  if (order.hiddenReason) {
    // This order's view of the record differs from the others': no red-flag result computed for them applies.
    data = { ...data, Condition: { ...data.Condition, complete: false } };
    memo = new Map();
  }
  const { age, sex, episode } = patient;
  const ctx: CriteriaContext = {
    now,
    terminology,
    data,
    orderReasons: order.reasons,
    orderReference: order.reference,
    age,
    sex,
    newSince: newSince(episode.onset, rules.scope.newFindingWindowDays, now),
    definitions: rules.redFlags.definitions,
    memo,
    names: new Map(),
  };

  const redFlags: RedFlagResult[] = rules.redFlags.flags.map((flag) => ({
    id: flag.id,
    category: flag.category,
    label: flag.label,
    ...evaluateCriterion(flag.criteria, ctx),
  }));

  const categories: CategoryResult[] = rules.redFlags.categories.map((cat) => {
    const flags = redFlags.filter((f) => f.category === cat.id);
    return { id: cat.id, label: cat.label, tier: cat.tier, status: categoryStatus(flags), flags };
  });

  const unreadable: DataKind[] = RED_FLAG_KINDS.filter((k) => !data[k].complete);
  return { ...patient, redFlags, categories, unreadable };
}
