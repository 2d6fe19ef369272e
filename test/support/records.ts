import type { CodeableConcept, Condition, MedicationRequest, Observation, Patient, QuestionnaireResponse, ServiceRequest } from 'fhir/r4.js';
import type { ClinicalData, DataKind, InScopeOrder } from '../../src/facts/types.js';

/** Small builders for record data in unit tests; dates are relative to the fixture clock (2026-11-15). */
export const ICD = 'http://hl7.org/fhir/sid/icd-10-cm';
export const CPT = 'http://www.ama-assn.org/go/cpt';
export const LOINC = 'http://loinc.org';
export const RXNORM = 'http://www.nlm.nih.gov/research/umls/rxnorm';

let seq = 0;
const nextId = (prefix: string) => `${prefix}-${++seq}`;

export function daysAgo(n: number, from = new Date('2026-11-15T12:00:00Z')): string {
  return new Date(from.getTime() - n * 86_400_000).toISOString().slice(0, 10);
}

export function patient(age: number, gender: Patient['gender'] = 'female'): Patient {
  // Born on 1 January, so the age at 2026-11-15 is exactly `age`.
  return { resourceType: 'Patient', id: 'p1', gender, birthDate: `${2026 - age}-01-01` };
}

export function condition(
  code: string,
  opts: { onsetDaysAgo?: number; clinical?: string; verification?: string; system?: string; category?: string } = {},
): Condition {
  return {
    resourceType: 'Condition',
    id: nextId('cond'),
    subject: { reference: 'Patient/p1' },
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-category', code: opts.category ?? 'encounter-diagnosis' }] }],
    clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: opts.clinical ?? 'active' }] },
    ...(opts.verification
      ? { verificationStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-ver-status', code: opts.verification }] } }
      : {}),
    code: { coding: [{ system: opts.system ?? ICD, code }] },
    ...(opts.onsetDaysAgo !== undefined ? { onsetDateTime: daysAgo(opts.onsetDaysAgo) } : {}),
  };
}

export function temperature(value: number, unit: 'Cel' | '[degF]', daysAgoN = 1): Observation {
  return {
    resourceType: 'Observation',
    id: nextId('obs'),
    status: 'final',
    code: { coding: [{ system: LOINC, code: '8310-5' }] },
    subject: { reference: 'Patient/p1' },
    effectiveDateTime: daysAgo(daysAgoN),
    valueQuantity: { value, unit, system: 'http://unitsofmeasure.org', code: unit },
  };
}

export function steroid(name: string, startDaysAgo: number, lengthDays: number, status: MedicationRequest['status'] = 'active'): MedicationRequest {
  return {
    resourceType: 'MedicationRequest',
    id: nextId('med'),
    status,
    intent: 'order',
    subject: { reference: 'Patient/p1' },
    authoredOn: daysAgo(startDaysAgo),
    medicationCodeableConcept: { text: name },
    dosageInstruction: [{ timing: { repeat: { boundsPeriod: { start: daysAgo(startDaysAgo), end: daysAgo(startDaysAgo - lengthDays) } } } }],
  };
}

export function record(parts: {
  patient?: Patient | null;
  conditions?: Condition[];
  observations?: Observation[];
  medications?: MedicationRequest[];
  questionnaires?: QuestionnaireResponse[];
  unreadable?: DataKind[];
}): ClinicalData {
  const unreadable = new Set(parts.unreadable ?? []);
  return {
    Patient: { items: parts.patient ? [parts.patient] : [], complete: !unreadable.has('Patient') },
    Condition: { items: parts.conditions ?? [], complete: !unreadable.has('Condition') },
    Observation: { items: parts.observations ?? [], complete: !unreadable.has('Observation') },
    MedicationRequest: { items: parts.medications ?? [], complete: !unreadable.has('MedicationRequest') },
    QuestionnaireResponse: { items: parts.questionnaires ?? [], complete: true },
    ServiceRequest: { items: [], complete: true },
    referenced: new Map(),
  };
}

export function order(cpt: string, modality: InScopeOrder['modality'], reasons: CodeableConcept[] = []): InScopeOrder {
  const resource: ServiceRequest = {
    resourceType: 'ServiceRequest',
    id: 'order-1',
    status: 'draft',
    intent: 'order',
    subject: { reference: 'Patient/p1' },
    code: { coding: [{ system: CPT, code: cpt }] },
  };
  return { reference: 'ServiceRequest/order-1', resource, modality, reasons };
}
