import type { CodeableConcept, Condition, MedicationRequest, Observation } from 'fhir/r4.js';
import type { Criterion, NumberTest, RecencyTest } from '../rules/types.js';
import { conceptNames, type ConceptNames, type Terminology } from '../rules/terminology.js';
import { addDays, calendarBounds, daysBetween, durationDays, isoDay, parseFhirDate } from '../fhir/dates.js';
import { conceptName, conditionStart, conditionStartText, isCountableCondition, referenceOf } from '../fhir/resources.js';
import { hasReadableShape } from '../fhir/shape.js';
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
  /** First day a finding can have begun to count as new in this episode (S6), as YYYY-MM-DD. */
  newSince: string;
  /** Named criteria from red-flags.json, for `{ "use": "<name>" }`. */
  definitions: Record<string, Criterion>;
  /**
   * Results of record-only tests, shared by every order of one call: only a condition test reads the order's reasons,
   * so everything else is computed once however many orders the call holds.
   */
  memo: Map<Criterion, CriterionResult>;
  /** Each condition's and reason's names, normalised once for this order's evaluation, not once per value set. */
  names: Map<CodeableConcept, ConceptNames>;
}

/** Options for matching a concept by code and by name, with its names worked out once per call. */
function byName(concept: CodeableConcept | undefined, ctx: CriteriaContext): { byName: true; names?: ConceptNames } {
  if (!concept) return { byName: true };
  let names = ctx.names.get(concept);
  if (!names) ctx.names.set(concept, (names = conceptNames(concept)));
  return { byName: true, names };
}

function memoised(c: Criterion, ctx: CriteriaContext, compute: () => CriterionResult): CriterionResult {
  let r = ctx.memo.get(c);
  if (!r) {
    r = compute();
    ctx.memo.set(c, r);
  }
  return r;
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

/** Whether a finding began recently enough; judged on the latest day its date may mean. Undated findings may be new: they count. */
function isRecent(startText: string | undefined, recent: RecencyTest | undefined, ctx: CriteriaContext): boolean {
  if (!recent) return true;
  const bounds = calendarBounds(startText);
  if (!bounds) return true;
  if (recent.withinEpisode && bounds.latest >= ctx.newSince) return true;
  if (recent.days !== undefined && bounds.latest >= isoDay(addDays(ctx.now, -recent.days))) return true;
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
  if ('use' in criterion) {
    const named = ctx.definitions[criterion.use];
    if (!named) throw new Error(`unknown criterion ${criterion.use}`); // the loader checks every name
    return evaluateCriterion(named, ctx);
  }
  if ('condition' in criterion) return conditionCriterion(criterion.condition, ctx);
  if ('observation' in criterion) return memoised(criterion, ctx, () => observationCriterion(criterion.observation, ctx));
  if ('medication' in criterion) return memoised(criterion, ctx, () => medicationCriterion(criterion.medication, ctx));
  if ('age' in criterion) {
    if (ctx.age === undefined) return unknown(['Patient']);
    return passes(ctx.age, criterion.age) ? found([{ kind: 'age', age: ctx.age }]) : notFound;
  }
  if ('ageBySex' in criterion) {
    if (ctx.age === undefined) return unknown(['Patient']);
    const { male, female, otherwise } = criterion.ageBySex;
    const test = ctx.sex === 'male' ? male : ctx.sex === 'female' ? female : otherwise;
    return passes(ctx.age, test) ? found([{ kind: 'age', age: ctx.age, sex: ctx.sex }]) : notFound;
  }
  if ('lasting' in criterion) return memoised(criterion, ctx, () => lastingCriterion(criterion.lasting, ctx));
  const never: never = criterion;
  throw new Error(`unsupported criterion ${JSON.stringify(never)}`);
}

function matchingConditions(valueSet: string, anyClinicalStatus: boolean, ctx: CriteriaContext): Condition[] {
  return ctx.data.Condition.items.filter(
    (c) => isCountableCondition(c, anyClinicalStatus) && ctx.terminology.matchConcept(valueSet, c.code, byName(c.code, ctx)) !== undefined,
  );
}

function conditionCriterion(
  spec: { valueSet: string; anyClinicalStatus?: boolean; recent?: RecencyTest },
  ctx: CriteriaContext,
): CriterionResult {
  const record = memoised(spec as unknown as Criterion, ctx, () => {
    const sources: FindingSource[] = [];
    // A recent finding counts even when already marked resolved (a catheterised retention is still a new retention).
    const anyStatus = spec.anyClinicalStatus ?? spec.recent !== undefined;
    for (const c of matchingConditions(spec.valueSet, anyStatus, ctx)) {
      if (!isRecent(conditionStartText(c), spec.recent, ctx)) continue;
      sources.push({ reference: referenceOf(c), kind: 'condition', ...conceptName(c.code, ctx.terminology, spec.valueSet) });
    }
    return sources.length > 0 ? found(sources) : absent(ctx.data.Condition.complete, 'Condition');
  });
  const fromOrder: FindingSource[] = ctx.orderReasons
    .filter((reason) => ctx.terminology.matchConcept(spec.valueSet, reason, byName(reason, ctx)))
    .map((reason) => ({ reference: ctx.orderReference, kind: 'order-reason' as const, ...conceptName(reason, ctx.terminology, spec.valueSet) }));
  if (fromOrder.length === 0) return record;
  return found([...record.sources, ...fromOrder]);
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
      sources.push({
        reference: referenceOf(o),
        kind: 'measurement',
        ...conceptName(o.code, ctx.terminology, spec.valueSet),
        value: `${q?.value} ${q?.unit ?? q?.code ?? ''}`.trim(),
        date: when ? isoDay(when) : undefined,
      });
    }
  }
  if (sources.length > 0) return found(sources);
  if (inconclusive) return unknown(['Observation']);
  return absent(ctx.data.Observation.complete, 'Observation');
}

const UNUSABLE_MEDICATION = new Set(['entered-in-error', 'cancelled', 'draft']);

/** What the medication is: its code, a contained or included Medication (with ingredients), or the reference's display. */
function medicationConcept(m: MedicationRequest, ctx: CriteriaContext): CodeableConcept | undefined {
  if (m.medicationCodeableConcept) return m.medicationCodeableConcept;
  const ref = m.medicationReference?.reference;
  const target = ref?.startsWith('#')
    ? m.contained?.find((r) => r.resourceType === 'Medication' && r.id === ref.slice(1))
    : ref
      ? ctx.data.referenced.get(ref.split('/').slice(-2).join('/'))
      : undefined;
  if (target && !hasReadableShape(target)) return undefined;
  if (target?.resourceType === 'Medication') {
    // Ingredients carry the active substance when the product code is a local one.
    const ingredientCodings = (target.ingredient ?? []).flatMap((i) => i.itemCodeableConcept?.coding ?? []);
    return { ...target.code, coding: [...(target.code?.coding ?? []), ...ingredientCodings] };
  }
  if (m.medicationReference?.display) return { text: m.medicationReference.display };
  return undefined;
}

interface Course {
  start: Date;
  end: Date;
  request: MedicationRequest;
  concept: CodeableConcept;
}

/** The days a request covers, from its own dates, duration and supply; undefined when it does not say. */
function courseOf(m: MedicationRequest, concept: CodeableConcept, now: Date): Course | undefined {
  const repeat = m.dosageInstruction?.map((d) => d.timing?.repeat).find((r) => r?.boundsPeriod || r?.boundsDuration);
  const start = parseFhirDate(repeat?.boundsPeriod?.start ?? m.dispenseRequest?.validityPeriod?.start ?? m.authoredOn);
  if (!start) return undefined;
  const ends: Date[] = [];
  for (const end of [repeat?.boundsPeriod?.end, m.dispenseRequest?.validityPeriod?.end]) {
    const d = parseFhirDate(end);
    if (d) ends.push(d);
  }
  const bounded = durationDays(repeat?.boundsDuration);
  if (bounded !== undefined) ends.push(addDays(start, bounded));
  const supply = durationDays(m.dispenseRequest?.expectedSupplyDuration);
  if (supply !== undefined) ends.push(addDays(start, supply * (1 + (m.dispenseRequest?.numberOfRepeatsAllowed ?? 0))));
  // An active order with no stated end is still running.
  if (ends.length === 0 && m.status === 'active') ends.push(now);
  if (ends.length === 0) return undefined;
  const end = new Date(Math.max(...ends.map((d) => d.getTime())));
  return { start, end: end < start ? start : end, request: m, concept };
}

function medicationCriterion(
  spec: { valueSet: string; minDays: number; withinDays: number; refillGapDays: number },
  ctx: CriteriaContext,
): CriterionResult {
  const since = addDays(ctx.now, -spec.withinDays);
  let inconclusive = false;
  const courses: Course[] = [];
  for (const m of ctx.data.MedicationRequest.items) {
    if (UNUSABLE_MEDICATION.has(m.status)) continue;
    const concept = medicationConcept(m, ctx);
    if (!concept) {
      // A medication we cannot identify might be a steroid.
      inconclusive = true;
      continue;
    }
    if (!ctx.terminology.matchConcept(spec.valueSet, concept, { byName: true })) continue;
    const course = courseOf(m, concept, ctx.now);
    if (!course) inconclusive = true;
    else courses.push(course);
  }
  courses.sort((a, b) => a.start.getTime() - b.start.getTime());
  const blocks: Array<{ courses: Course[]; end: number }> = [];
  const gapMs = spec.refillGapDays * 86_400_000;
  for (const c of courses) {
    const block = blocks[blocks.length - 1];
    if (block && c.start.getTime() <= block.end + gapMs) {
      block.courses.push(c);
      block.end = Math.max(block.end, c.end.getTime());
    } else {
      blocks.push({ courses: [c], end: c.end.getTime() });
    }
  }
  const sources: FindingSource[] = [];
  for (const block of blocks) {
    const start = block.courses[0]!.start;
    const end = new Date(block.end);
    const days = daysBetween(start, end);
    if (end < since || days < spec.minDays) continue;
    for (const c of block.courses) {
      sources.push({ reference: referenceOf(c.request), kind: 'medication-course', ...conceptName(c.concept, ctx.terminology, spec.valueSet), days, date: isoDay(start) });
    }
  }
  if (sources.length > 0) return found(sources);
  if (inconclusive) return unknown(['MedicationRequest']);
  return absent(ctx.data.MedicationRequest.complete, 'MedicationRequest');
}

function lastingCriterion(spec: { valueSet: string; minDays: number }, ctx: CriteriaContext): CriterionResult {
  const sources: FindingSource[] = [];
  let undated = false;
  for (const c of matchingConditions(spec.valueSet, false, ctx)) {
    const start = conditionStart(c);
    if (!start) undated = true;
    else if (daysBetween(start, ctx.now) >= spec.minDays) {
      sources.push({ reference: referenceOf(c), kind: 'lasting', ...conceptName(c.code, ctx.terminology, spec.valueSet), date: isoDay(start) });
    }
  }
  if (sources.length > 0) return found(sources);
  // It is there but the record does not say since when: how long it has lasted is unknown.
  if (undated) return unknown([]);
  return absent(ctx.data.Condition.complete, 'Condition');
}
