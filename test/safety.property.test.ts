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

/** A major red flag as the record would show it; each must make the call imaging-urgent on its own. */
const majorFlagArb: fc.Arbitrary<MajorFlag> = fc.oneof<fc.Arbitrary<MajorFlag>[]>(
  fc.constant({ name: 'cauda equina syndrome', conditions: [{ code: 'G83.4', onset: 3 }], temperature: undefined }),
  fc.constant({ name: 'new urinary retention', conditions: [{ code: 'R33.9', onset: 2 }], temperature: undefined }),
  fc.constant({ name: 'new faecal incontinence', conditions: [{ code: 'R15.9', onset: 1 }], temperature: undefined }),
  fc.constant({ name: 'new foot drop', conditions: [{ code: 'M21.371', onset: 4 }], temperature: undefined }),
  fc.constantFrom('Z85.3', 'C50.911', 'C79.51', 'C4A.9', 'D05.10').map((code) => ({ name: `malignancy ${code}`, conditions: [{ code, onset: 3000, clinical: 'resolved' }], temperature: undefined })),
  fc.constantFrom('M46.26', 'G06.1', 'M46.47').map((code) => ({ name: `spinal infection ${code}`, conditions: [{ code }], temperature: undefined })),
  fc.record({ risk: fc.constantFrom('F11.20', 'B20', 'Z79.52', 'D84.9'), t: fc.double({ min: 38.0, max: 41, noNaN: true }), f: fc.boolean() }).map(
    ({ risk, t, f }) => ({ name: `fever ${t.toFixed(1)} with ${risk}`, conditions: [{ code: risk }], temperature: { celsius: Math.ceil(t * 10) / 10 + (f ? 0.6 : 0), fahrenheit: f } }),
  ),
);

const UNREADABLE_KEYS = ['patient', 'problemList', 'encounterDiagnoses', 'temperature', 'medications'];
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
interface MajorFlag {
  name: string;
  conditions: ReadonlyArray<{ code: string; onset?: number; clinical?: string }>;
  temperature?: { celsius: number; fahrenheit: boolean };
}

function buildRequest(g: Generated, flag?: MajorFlag) {
  const resources: FhirResource[] = [
    { resourceType: 'Patient', id: 'p1', gender: g.gender as 'male', ...(g.age !== undefined ? { birthDate: `${2026 - g.age}-01-01` } : {}) },
    ...g.noise.map((c, i) => toCondition(c, i)),
    ...g.temps.map((t, i) => temperature(i, Math.round(t.c * 10) / 10, t.days, false)),
    ...g.meds.map(toMedication),
  ];
  if (flag) {
    flag.conditions.forEach((c, i) =>
      resources.push(toCondition({ code: c.code, onset: c.onset, clinical: c.clinical ?? 'active', verification: 'confirmed', category: 'encounter-diagnosis' }, i, 'flag')),
    );
    if (flag.temperature) resources.push(temperature(99, flag.temperature.celsius, 1, flag.temperature.fahrenheit));
  }
  const order = {
    resourceType: 'ServiceRequest' as const,
    id: 'img-1',
    status: 'draft' as const,
    intent: 'order' as const,
    subject: { reference: 'Patient/p1' },
    code: { coding: [{ system: 'http://www.ama-assn.org/go/cpt', code: CPT[g.modality]! }] },
    ...(g.lbpOnOrder ? { reasonCode: [{ coding: [{ system: 'http://snomed.info/sct', code: '279039007' }] }] } : {}),
  };
  const prefetch = Object.fromEntries(g.unreadable.map((k) => [k, OUTCOME] as const));
  // A flag the EHR could not send is not in the data; keep the flag's conditions readable through one key.
  if (flag && prefetch.encounterDiagnoses) delete prefetch.encounterDiagnoses;
  if (flag?.temperature && prefetch.temperature) delete prefetch.temperature;
  return requestFor(g.hook, { resourceType: 'Bundle', type: 'collection', entry: resources.map((resource) => ({ resource })) }, [order], { prefetch });
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
      fc.asyncProperty(patientArb, majorFlagArb, async (g, flag) => {
        // In scope by its reason, so the flag is the only thing that decides.
        const { body, codes } = await call(buildRequest({ ...(g as Generated), lbpOnOrder: true }, flag));
        expect(codes, flag.name).toEqual(['imaging-urgent']);
        expect(body.cards.some((c: any) => c.source.topic.code === 'patient-conversation')).toBe(false);
      }),
      { numRuns: 250 },
    );
  });

  it('data that could not be read never gives advice against imaging', async () => {
    await fc.assert(
      fc.asyncProperty(patientArb.filter((g) => g.unreadable.length > 0), async (g) => {
        const { codes } = await call(buildRequest(g as Generated));
        for (const code of codes) expect(ADVISES_AGAINST.has(code), `${code} with unreadable ${g.unreadable.join(',')}`).toBe(false);
        // An order with back pain on it is always in scope, so the check must answer.
        if (g.lbpOnOrder) expect(codes).toHaveLength(1);
      }),
      { numRuns: 250 },
    );
  });

  it('every generated call answers with exactly one recommendation card per in-scope order and valid cards', async () => {
    await fc.assert(
      fc.asyncProperty(patientArb, async (g) => {
        const { codes } = await call(buildRequest(g as Generated));
        if (g.lbpOnOrder) expect(codes).toHaveLength(1);
        else expect(codes.length).toBeLessThanOrEqual(1);
      }),
      { numRuns: 150 },
    );
  });
});
