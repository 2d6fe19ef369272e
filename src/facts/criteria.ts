import type { CodeableConcept, Condition, MedicationRequest, Observation } from 'fhir/r4.js';
import type { Criterion, NumberTest, RecencyTest } from '../rules/types.js';
import type { Terminology } from '../rules/terminology.js';
import { addDays, daysBetween, durationDays, parseFhirDate } from '../fhir/dates.js';
import { conceptLabel, conditionStart, isCountableCondition, referenceOf } from '../fhir/resources.js';
import { toUnit } from '../fhir/units.js';
import type { ClinicalData, CriterionResult, DataKind, FindingSource, Sex } from './types.js';

/** What a criterion is evaluated against: one patient's data for one order, at one moment. */
export interface CriteriaContext {
  now: Date;
  terminology: Terminology;
  data: ClinicalData;
  /** The draft order's reasons: current diagnoses, dated today. */
  orderReasons: CodeableConcept[];
  orderReference: string;
  age?: number;
  sex: Sex;
  episodeOnset?: Date;
}

const found = (sources: FindingSource[]): CriterionResult => ({ status: 'found', sources, unreadable: [] });
const notFound: CriterionResult = { status: 'not-found', sources: [], unreadable: [] };
const unknown = (kinds: DataKind[]): CriterionResult => ({ status: 'unknown', sources: [], unreadable: kinds });

/** Data that was read in full proves absence; otherwise absence is unknown. */
function absent(complete: boolean, kind: DataKind): CriterionResult {
  return complete ? notFound : unknown([kind]);
}

function passes(value: number, test: NumberTest): boolean {
  if (test.gt !== undefined && !(value > test.gt)) return false;
  if (test.gte !== undefined && !(value >= test.gte)) return false;
  if (test.lt !== undefined && !(value < test.lt)) return false;
  if (test.lte !== undefined && !(value <= test.lte)) return false;
  return true;
}

function isRecent(start: Date | undefined, recent: RecencyTest | undefined, ctx: CriteriaContext): boolean {
  if (!recent) return true;
  // An undated finding may be new: counting it is the safe side of S6.
  if (!start) return true;
  if (recent.withinEpisode && ctx.episodeOnset && start >= ctx.episodeOnset) return true;
  if (recent.days !== undefined && daysBetween(start, ctx.now) <= recent.days) return true;
  return false;
}

function unionKinds(results: CriterionResult[]): DataKind[] {
  return [...new Set(results.flatMap((r) => r.unreadable))];
}

/** Kleene three-valued logic: found = true, not-found = false, unknown = unknown. */
export function evaluateCriterion(criterion: Criterion, ctx: CriteriaContext): CriterionResult {
  if ('all' in criterion) {
    const results = criterion.all.map((c) => evaluateCriterion(c, ctx));
    if (results.some((r) => r.status === 'not-found')) return notFound;
    if (results.every((r) => r.status === 'found')) return found(results.flatMap((r) => r.sources));
    return unknown(unionKinds(results));
  }
  if ('any' in criterion) {
    const results = criterion.any.map((c) => evaluateCriterion(c, ctx));
    const hits = results.filter((r) => r.status === 'found');
    if (hits.length > 0) return found(hits.flatMap((r) => r.sources));
    if (results.every((r) => r.status === 'not-found')) return notFound;
    return unknown(unionKinds(results));
  }
  if ('not' in criterion) {
    const inner = evaluateCriterion(criterion.not, ctx);
    if (inner.status === 'unknown') return inner;
    return inner.status === 'found' ? notFound : found([]);
  }
  if ('condition' in criterion) return conditionCriterion(criterion.condition, ctx);
  if ('observation' in criterion) return observationCriterion(criterion.observation, ctx);
  if ('medication' in criterion) return medicationCriterion(criterion.medication, ctx);
  if ('age' in criterion) {
    if (ctx.age === undefined) return unknown(['Patient']);
    return passes(ctx.age, criterion.age) ? found([{ display: `age ${ctx.age}` }]) : notFound;
  }
  if ('ageBySex' in criterion) {
    if (ctx.age === undefined) return unknown(['Patient']);
    const { male, female, otherwise } = criterion.ageBySex;
    const test = ctx.sex === 'male' ? male : ctx.sex === 'female' ? female : otherwise;
    return passes(ctx.age, test) ? found([{ display: `age ${ctx.age}, ${ctx.sex}` }]) : notFound;
  }
  if ('lasting' in criterion) return lastingCriterion(criterion.lasting, ctx);
  const never: never = criterion;
  throw new Error(`unsupported criterion ${JSON.stringify(never)}`);
}

function matchingConditions(valueSet: string, anyClinicalStatus: boolean, ctx: CriteriaContext): Condition[] {
  return ctx.data.Condition.items.filter(
    (c) => isCountableCondition(c, anyClinicalStatus) && ctx.terminology.matchConcept(valueSet, c.code) !== undefined,
  );
}

function conditionCriterion(
  spec: { valueSet: string; anyClinicalStatus?: boolean; recent?: RecencyTest },
  ctx: CriteriaContext,
): CriterionResult {
  const sources: FindingSource[] = [];
  for (const c of matchingConditions(spec.valueSet, spec.anyClinicalStatus ?? false, ctx)) {
    if (!isRecent(conditionStart(c), spec.recent, ctx)) continue;
    sources.push({ reference: referenceOf(c), display: conceptLabel(c.code, ctx.terminology, spec.valueSet) });
  }
  for (const reason of ctx.orderReasons) {
    if (ctx.terminology.matchConcept(spec.valueSet, reason)) {
      sources.push({ reference: ctx.orderReference, display: `order reason: ${conceptLabel(reason, ctx.terminology, spec.valueSet)}` });
    }
  }
  return sources.length > 0 ? found(sources) : absent(ctx.data.Condition.complete, 'Condition');
}

const UNUSABLE_OBSERVATION = new Set(['entered-in-error', 'cancelled', 'registered']);

function observationCriterion(
  spec: { valueSet: string; withinDays: number; value: NumberTest & { unit: string } },
  ctx: CriteriaContext,
): CriterionResult {
  const since = addDays(ctx.now, -spec.withinDays);
  let inconclusive = false;
  const sources: FindingSource[] = [];
  for (const o of ctx.data.Observation.items as Observation[]) {
    if (UNUSABLE_OBSERVATION.has(o.status)) continue;
    if (!ctx.terminology.matchConcept(spec.valueSet, o.code)) continue;
    const when = parseFhirDate(o.effectiveDateTime ?? o.effectivePeriod?.start ?? o.effectiveInstant ?? o.issued);
    if (when && when < since) continue;
    const q = o.valueQuantity;
    const value = q && typeof q.value === 'number' ? toUnit(q.value, q.code ?? q.unit, spec.value.unit) : undefined;
    if (value === undefined) {
      // A recent measurement we cannot read is not a normal one.
      inconclusive = true;
      continue;
    }
    if (passes(value, spec.value)) {
      const shown = `${q?.value} ${q?.unit ?? q?.code ?? ''}`.trim();
      sources.push({ reference: referenceOf(o), display: `${conceptLabel(o.code, ctx.terminology, spec.valueSet)} ${shown}${when ? ` on ${when.toISOString().slice(0, 10)}` : ''}` });
    }
  }
  if (sources.length > 0) return found(sources);
  if (inconclusive) return unknown(['Observation']);
  return absent(ctx.data.Observation.complete, 'Observation');
}

const UNUSABLE_MEDICATION = new Set(['entered-in-error', 'cancelled', 'draft']);

function medicationConcept(m: MedicationRequest): CodeableConcept | undefined {
  if (m.medicationCodeableConcept) return m.medicationCodeableConcept;
  const ref = m.medicationReference?.reference;
  if (ref?.startsWith('#')) {
    const contained = m.contained?.find((r) => r.resourceType === 'Medication' && r.id === ref.slice(1));
    if (contained && contained.resourceType === 'Medication') {
      // Ingredients carry the active substance when the product code is a local one.
      const ingredientCodings = (contained.ingredient ?? []).flatMap((i) => i.itemCodeableConcept?.coding ?? []);
      return { ...contained.code, coding: [...(contained.code?.coding ?? []), ...ingredientCodings] };
    }
  }
  if (m.medicationReference?.display) return { text: m.medicationReference.display };
  return undefined;
}

/** How many days a course covers, from the request's own dates and supply. */
function courseDays(m: MedicationRequest, now: Date): { start?: Date; end?: Date; days?: number } {
  const bounds = m.dosageInstruction?.map((d) => d.timing?.repeat).find((r) => r?.boundsPeriod || r?.boundsDuration);
  const start = parseFhirDate(bounds?.boundsPeriod?.start ?? m.dispenseRequest?.validityPeriod?.start ?? m.authoredOn);
  let end = parseFhirDate(bounds?.boundsPeriod?.end ?? m.dispenseRequest?.validityPeriod?.end);
  const supply = durationDays(m.dispenseRequest?.expectedSupplyDuration);
  const fills = 1 + (m.dispenseRequest?.numberOfRepeatsAllowed ?? 0);
  const candidates: number[] = [];
  if (start && end) candidates.push(daysBetween(start, end));
  const bounded = durationDays(bounds?.boundsDuration);
  if (bounded !== undefined) candidates.push(bounded);
  if (supply !== undefined) candidates.push(supply * fills);
  if (start && m.status === 'active') {
    candidates.push(daysBetween(start, now));
    end = end ?? now;
  }
  if (start && !end && candidates.length > 0) end = addDays(start, Math.max(...candidates));
  return { start, end, days: candidates.length > 0 ? Math.max(...candidates) : undefined };
}

function medicationCriterion(
  spec: { valueSet: string; minDays: number; withinDays: number },
  ctx: CriteriaContext,
): CriterionResult {
  const since = addDays(ctx.now, -spec.withinDays);
  let inconclusive = false;
  const sources: FindingSource[] = [];
  for (const m of ctx.data.MedicationRequest.items) {
    if (UNUSABLE_MEDICATION.has(m.status)) continue;
    const concept = medicationConcept(m);
    if (!concept) {
      // A medication we cannot identify might be a steroid.
      inconclusive = true;
      continue;
    }
    const match = ctx.terminology.matchConcept(spec.valueSet, concept, true);
    if (!match) continue;
    const course = courseDays(m, ctx.now);
    if (course.days === undefined) {
      inconclusive = true;
      continue;
    }
    if (course.end && course.end < since) continue;
    if (course.days >= spec.minDays) {
      sources.push({ reference: referenceOf(m), display: `${conceptLabel(concept, ctx.terminology, spec.valueSet)}, about ${Math.round(course.days)} days` });
    }
  }
  if (sources.length > 0) return found(sources);
  if (inconclusive) return unknown(['MedicationRequest']);
  return absent(ctx.data.MedicationRequest.complete, 'MedicationRequest');
}

function lastingCriterion(spec: { valueSet: string; minDays: number }, ctx: CriteriaContext): CriterionResult {
  const matches = matchingConditions(spec.valueSet, false, ctx);
  const sources: FindingSource[] = [];
  for (const c of matches) {
    const start = conditionStart(c);
    if (start && daysBetween(start, ctx.now) >= spec.minDays) {
      sources.push({
        reference: referenceOf(c),
        display: `${conceptLabel(c.code, ctx.terminology, spec.valueSet)} since ${start.toISOString().slice(0, 10)}`,
      });
    }
  }
  if (sources.length > 0) return found(sources);
  return absent(ctx.data.Condition.complete, 'Condition');
}
