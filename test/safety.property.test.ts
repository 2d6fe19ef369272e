import fc from 'fast-check';
import type { Condition, FhirResource, MedicationRequest, Observation } from 'fhir/r4.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { testApp } from './support/app.js';
import { cardRuleViolations } from './support/card-rules.js';
import { daysAgo, ICD } from './support/records.js';
import { requestFor } from './support/scenarios.js';

/**
 * The clinical safety invariant, over generated patients sent through the real HTTP path and prefetch templates:
 * 1. a patient whose data holds a major red flag always gets imaging-urgent, whatever else the record holds or lacks;
 * 2. a patient with data that could not be read never gets advice against imaging.
 */
let app: FastifyInstance;
beforeAll(async () => { app = await testApp(); });
afterAll(async () => { await app.close(); });

const ADVISES_AGAINST = new Set(['imaging-not-indicated', 'imaging-deferred', 'imaging-xray-first']);
const CATEGORY = 'http://terminology.hl7.org/CodeSystem/condition-category';
const CPT: Record<string, string> = { xray: '72100', ct: '72131', mri: '72148' };

/** Codes the record may hold around the flag: back pain, radicular pain, fracture and weaker risks, benign and unrelated codes. */
const NOISE_CODES = ['M54.50', 'M54.59', 'M54.16', 'M48.062', 'M81.0', 'Z79.52', 'R63.4', 'M45.A6', 'D17.1', 'E11.9', 'I10', 'J45.909', 'N39.46', 'S32.010A', 'F41.1', 'K21.9'];

const conditionArb = fc.record({
  code: fc.constantFrom(...NOISE_CODES),
  onset: fc.option(fc.integer({ min: 0, max: 4000 }), { nil: undefined }),
  clinical: fc.constantFrom('active', 'active', 'resolved', 'inactive', 'recurrence'),
  verification: fc.constantFrom('confirmed', 'confirmed', 'unconfirmed', 'entered-in-error', 'refuted'),
  category: fc.constantFrom('problem-list-item', 'encounter-diagnosis'),
});

function toCondition(c: { code: string; onset?: number; clinical: string; verification: string; category: string }, i: number, prefix = 'n'): Condition {
  return {
    resourceType: 'Condition',
    id: `${prefix}${i}`,
    subject: { reference: 'Patient/p1' },
    category: [{ coding: [{ system: CATEGORY, code: c.category }] }],
    clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: c.clinical }] },
    verificationStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-ver-status', code: c.verification }] },
    code: { coding: [{ system: ICD, code: c.code }] },
    ...(c.onset !== undefined ? { onsetDateTime: daysAgo(c.onset) } : {}),
  };
}

function temperature(i: number, celsius: number, days: number, fahrenheit: boolean): Observation {
  const value = fahrenheit ? Math.round((celsius * 9) / 5 + 32) * 1 : celsius;
  return {
    resourceType: 'Observation',
    id: `t${i}`,
    status: 'final',
    code: { coding: [{ system: 'http://loinc.org', code: '8310-5' }] },
    subject: { reference: 'Patient/p1' },
    effectiveDateTime: daysAgo(days),
    valueQuantity: { value, unit: fahrenheit ? '[degF]' : 'Cel', system: 'http://unitsofmeasure.org', code: fahrenheit ? '[degF]' : 'Cel' },
  };
}

const medicationArb = fc.record({
  name: fc.constantFrom('prednisone 5 MG Oral Tablet', 'metformin 500 MG Oral Tablet', 'hydrocortisone 1% cream', 'ibuprofen 400 MG Oral Tablet'),
  start: fc.integer({ min: 0, max: 700 }),
  length: fc.integer({ min: 1, max: 400 }),
  status: fc.constantFrom('active', 'completed', 'stopped', 'entered-in-error'),
});

function toMedication(m: { name: string; start: number; length: number; status: string }, i: number): MedicationRequest {
  return {
    resourceType: 'MedicationRequest',
    id: `m${i}`,
    status: m.status as MedicationRequest['status'],
    intent: 'order',
    subject: { reference: 'Patient/p1' },
    authoredOn: daysAgo(m.start),
    medicationCodeableConcept: { text: m.name },
    dosageInstruction: [{ timing: { repeat: { boundsPeriod: { start: daysAgo(m.start), end: daysAgo(m.start - m.length) } } } }],
  };
}

/**
 * A major red flag as an EHR might send it: an ICD-10-CM code, a code outside the value sets with a display that names it,
 * or text alone; active or already resolved where that still counts; in the record, as the order's reason, or as a
 * Condition contained in the order. Each must make the call imaging-urgent on its own.
 */
interface FlagCondition {
  code: string;
  name: string;
  onset?: number;
  /** Still counts when marked resolved (a history of cancer, a new retention already catheterised). */
  resolvedCounts: boolean;
  /** Its value set has no word list, so it is only recognised by code. */
  codeOnly?: boolean;
}
interface MajorFlag {
  name: string;
  conditions: FlagCondition[];
  temperature?: { celsius: number; fahrenheit: boolean };
}

const FLAGS: FlagCondition[] = [
  { code: 'G83.4', name: 'Cauda equina syndrome', onset: 3, resolvedCounts: false },
  { code: 'R33.9', name: 'Retention of urine', onset: 2, resolvedCounts: true },
  { code: 'R15.9', name: 'Full incontinence of feces', onset: 1, resolvedCounts: true },
  { code: 'M21.371', name: 'Foot drop, right foot', onset: 4, resolvedCounts: true },
  { code: 'Z85.3', name: 'Personal history of malignant neoplasm of breast', onset: 3000, resolvedCounts: true },
  { code: 'C50.911', name: 'Malignant neoplasm of right female breast', onset: 3000, resolvedCounts: true },
  { code: 'C79.51', name: 'Secondary malignant neoplasm of bone', resolvedCounts: true },
  { code: 'C4A.9', name: 'Merkel cell carcinoma, unspecified', resolvedCounts: true },
  { code: 'M46.26', name: 'Osteomyelitis of vertebra, lumbar region', resolvedCounts: false },
  { code: 'G06.1', name: 'Intraspinal abscess and granuloma', resolvedCounts: false },
  { code: 'M46.47', name: 'Discitis, unspecified, lumbosacral region', resolvedCounts: false },
];
const FEVER_RISKS: FlagCondition[] = [
  { code: 'F11.20', name: 'Opioid dependence, uncomplicated', resolvedCounts: true },
  { code: 'B20', name: 'Human immunodeficiency virus [HIV] disease', resolvedCounts: false },
  { code: 'D84.9', name: 'Immunodeficiency, unspecified', resolvedCounts: false },
  { code: 'Z79.52', name: 'Long term (current) use of systemic steroids', resolvedCounts: false, codeOnly: true },
];

const majorFlagArb: fc.Arbitrary<MajorFlag> = fc.oneof(
  fc.constantFrom(...FLAGS).map((c) => ({ name: c.name, conditions: [c] })),
  fc.record({ risk: fc.constantFrom(...FEVER_RISKS), t: fc.double({ min: 38.0, max: 41, noNaN: true }), f: fc.boolean() }).map(
    ({ risk, t, f }) => ({ name: `fever ${t.toFixed(1)} with ${risk.name}`, conditions: [risk], temperature: { celsius: Math.ceil(t * 10) / 10 + (f ? 0.6 : 0), fahrenheit: f } }),
  ),
);
const flagFormArb = fc.record({
  coding: fc.constantFrom('icd', 'display', 'text'),
  resolved: fc.boolean(),
  where: fc.constantFrom('record', 'record', 'reasonCode', 'contained'),
});
type FlagForm = typeof flagFormArb extends fc.Arbitrary<infer T> ? T : never;

function flagConcept(c: FlagCondition, form: FlagForm) {
  if (form.coding === 'icd' || c.codeOnly) return { coding: [{ system: ICD, code: c.code, display: c.name }] };
  // A code the value sets do not list (a SNOMED CT descendant, a local code): only its name says what it is.
  if (form.coding === 'display') return { coding: [{ system: 'http://snomed.info/sct', code: '900000000000', display: c.name }] };
  return { text: c.name };
}

const UNREADABLE_KEYS = ['patient', 'conditions', 'temperature', 'medications'];
const OUTCOME: FhirResource = { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'exception', diagnostics: 'EHR timeout' }] };

const patientArb = fc.record({
  age: fc.option(fc.integer({ min: 18, max: 100 }), { nil: undefined }),
  gender: fc.constantFrom('male', 'female', 'other', 'unknown'),
  noise: fc.array(conditionArb, { maxLength: 8 }),
  temps: fc.array(fc.record({ c: fc.double({ min: 35, max: 37.9, noNaN: true }), days: fc.integer({ min: 0, max: 30 }) }), { maxLength: 3 }),
  meds: fc.array(medicationArb, { maxLength: 3 }),
  modality: fc.constantFrom('xray', 'ct', 'mri'),
  lbpOnOrder: fc.boolean(),
  hook: fc.constantFrom('order-select', 'order-sign') as fc.Arbitrary<'order-select' | 'order-sign'>,
  unreadable: fc.subarray(UNREADABLE_KEYS),
});

type Generated = typeof patientArb extends fc.Arbitrary<infer T> ? T : never;

function buildRequest(g: Generated, flag?: MajorFlag, form?: FlagForm) {
  const resources: FhirResource[] = [
    { resourceType: 'Patient', id: 'p1', gender: g.gender as 'male', ...(g.age !== undefined ? { birthDate: `${2026 - g.age}-01-01` } : {}) },
    ...g.noise.map((c, i) => toCondition(c, i)),
    ...g.temps.map((t, i) => temperature(i, Math.round(t.c * 10) / 10, t.days, false)),
    ...g.meds.map(toMedication),
  ];
  const reasonCode: any[] = g.lbpOnOrder ? [{ coding: [{ system: 'http://snomed.info/sct', code: '279039007' }] }] : [];
  const contained: any[] = [];
  const reasonReference: any[] = [];
  if (flag && form) {
    flag.conditions.forEach((c, i) => {
      const status = form.resolved && c.resolvedCounts ? 'resolved' : 'active';
      const condition = {
        ...toCondition({ code: c.code, onset: c.onset, clinical: status, verification: 'confirmed', category: 'encounter-diagnosis' }, i, 'flag'),
        code: flagConcept(c, form),
      };
      if (form.where === 'record') resources.push(condition);
      else if (form.where === 'reasonCode') reasonCode.push(condition.code);
      else {
        contained.push({ ...condition, id: `reason${i}` });
        reasonReference.push({ reference: `#reason${i}` });
      }
    });
    if (flag.temperature) resources.push(temperature(99, flag.temperature.celsius, 1, flag.temperature.fahrenheit));
  }
  const order = {
    resourceType: 'ServiceRequest' as const,
    id: 'img-1',
    status: 'draft' as const,
    intent: 'order' as const,
    subject: { reference: 'Patient/p1' },
    code: { coding: [{ system: 'http://www.ama-assn.org/go/cpt', code: CPT[g.modality]! }] },
    ...(reasonCode.length ? { reasonCode } : {}),
    ...(contained.length ? { contained, reasonReference } : {}),
  };
  const request = requestFor(g.hook, { resourceType: 'Bundle', type: 'collection', entry: resources.map((resource) => ({ resource })) }, [order as any]);
  // Unreadable data as EHRs send it: the Patient read fails outright; a search returns what it had and an error outcome.
  for (const key of g.unreadable) {
    const value = request.prefetch![key] as any;
    if (key === 'patient' || !value || value.resourceType !== 'Bundle') request.prefetch![key] = OUTCOME;
    else value.entry = [...(value.entry ?? []), { resource: OUTCOME, search: { mode: 'outcome' } }];
  }
  return request;
}

async function call(request: ReturnType<typeof buildRequest>) {
  const res = await app.inject({ method: 'POST', url: `/cds-services/lbp-imaging-${request.hook}`, payload: request as any });
  expect(res.statusCode).toBe(200);
  const body = res.json();
  expect(cardRuleViolations(body)).toEqual([]);
  const codes = body.cards.map((c: any) => c.source.topic.code).filter((c: string) => c !== 'patient-conversation');
  return { body, codes: codes as string[] };
}

describe('clinical safety invariant (property-based)', () => {
  it('a major red flag in the data always gives imaging-urgent, never advice against imaging', async () => {
    await fc.assert(
      fc.asyncProperty(patientArb, majorFlagArb, flagFormArb, async (g, flag, form) => {
        // In scope by its reason, so the flag is the only thing that decides.
        const { body, codes } = await call(buildRequest({ ...g, lbpOnOrder: true }, flag, form));
        expect(codes, `${flag.name} as ${JSON.stringify(form)}`).toEqual(['imaging-urgent']);
        expect(body.cards.some((c: any) => c.source.topic.code === 'patient-conversation')).toBe(false);
      }),
      { numRuns: 250 },
    );
  });

  it('data that could not be read never gives advice against imaging', async () => {
    await fc.assert(
      fc.asyncProperty(patientArb.filter((g) => g.unreadable.length > 0), async (g) => {
        const { codes } = await call(buildRequest(g));
        for (const code of codes) expect(ADVISES_AGAINST.has(code), `${code} with unreadable ${g.unreadable.join(',')}`).toBe(false);
        // An order with back pain on it is always in scope, so the check must answer.
        if (g.lbpOnOrder) expect(codes).toHaveLength(1);
      }),
      { numRuns: 250 },
    );
  });

  it('a child never gets a card, whatever the record holds (the guidelines are adult guidelines)', async () => {
    await fc.assert(
      fc.asyncProperty(patientArb, fc.integer({ min: 0, max: 17 }), fc.option(fc.tuple(majorFlagArb, flagFormArb), { nil: undefined }), async (g, age, flag) => {
        // The Patient is readable here: with it unreadable the age is unknown, and the patient counts as an adult.
        const child = { ...g, age, lbpOnOrder: true, unreadable: g.unreadable.filter((k) => k !== 'patient') };
        const { body } = await call(buildRequest(child, flag?.[0], flag?.[1]));
        expect(body, `aged ${age}${flag ? ` with ${flag[0].name}` : ''}`).toEqual({ cards: [] });
      }),
      { numRuns: 150 },
    );
  });

  it('every generated call answers with exactly one recommendation card per in-scope order and valid cards', async () => {
    await fc.assert(
      fc.asyncProperty(patientArb, async (g) => {
        const { codes } = await call(buildRequest(g));
        if (g.lbpOnOrder) expect(codes).toHaveLength(1);
        else expect(codes.length).toBeLessThanOrEqual(1);
      }),
      { numRuns: 150 },
    );
  });
});
