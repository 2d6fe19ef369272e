import { describe, expect, it } from 'vitest';
import { deriveFacts } from '../../src/facts/derive-facts.js';
import type { ClinicalData, FlagStatus } from '../../src/facts/types.js';
import { realRules } from '../support/app.js';
import { condition, order, patient, record, steroid, temperature } from '../support/records.js';
import { FIXTURE_CLOCK } from '../support/scenarios.js';

const rules = await realRules();
const mri = order('72148', 'mri');

function statusOf(data: ClinicalData, category: string): FlagStatus {
  const facts = deriveFacts(data, mri, rules, rules.terminology, FIXTURE_CLOCK);
  const cat = facts.categories.find((c) => c.id === category);
  if (!cat) throw new Error(`no category ${category}`);
  return cat.status;
}
const lbp = () => condition('M54.50', { onsetDaysAgo: 10 });

describe('facts: age, sex and the episode', () => {
  it('counts age in completed years at the request date', () => {
    const facts = deriveFacts(
      record({ patient: { resourceType: 'Patient', id: 'p1', birthDate: '1976-11-16', gender: 'male' } }),
      mri, rules, rules.terminology, FIXTURE_CLOCK,
    );
    expect(facts.age).toBe(49);
    expect(facts.sex).toBe('male');
  });

  it('dates the episode from the earliest active back pain or radicular condition', () => {
    const facts = deriveFacts(
      record({ patient: patient(40), conditions: [condition('M54.50', { onsetDaysAgo: 10 }), condition('M54.16', { onsetDaysAgo: 30 }), condition('M54.50', { onsetDaysAgo: 400, clinical: 'resolved' })] }),
      mri, rules, rules.terminology, FIXTURE_CLOCK,
    );
    expect(facts.episode).toEqual({ onset: '2026-10-16', durationDays: 30 });
  });
});

describe('red flags are found, not found, or unknown', () => {
  it('finds a history of malignancy whatever its clinical status', () => {
    expect(statusOf(record({ patient: patient(40), conditions: [lbp(), condition('C50.911', { clinical: 'resolved' })] }), 'cancer-history')).toBe('found');
    expect(statusOf(record({ patient: patient(40), conditions: [lbp(), condition('Z85.3', { clinical: 'inactive' })] }), 'cancer-history')).toBe('found');
  });

  it('never counts entered-in-error or refuted conditions', () => {
    for (const verification of ['entered-in-error', 'refuted']) {
      const data = record({ patient: patient(40), conditions: [lbp(), condition('C34.90', { verification })] });
      expect(statusOf(data, 'cancer-history'), verification).toBe('not-found');
    }
  });

  it('does not call benign neoplasms cancer (S8)', () => {
    expect(statusOf(record({ patient: patient(40), conditions: [lbp(), condition('D17.1')] }), 'cancer-history')).toBe('not-found');
  });

  it('says unknown, not absent, when the conditions could not be read', () => {
    const data = record({ patient: patient(40), unreadable: ['Condition'] });
    for (const category of ['cauda-equina', 'cancer-history', 'spinal-infection', 'fracture-risk']) {
      expect(statusOf(data, category), category).toBe('unknown');
    }
  });

  it('still finds what it can read when part of the data is unreadable', () => {
    const data = record({ patient: patient(40), conditions: [condition('Z85.3')], unreadable: ['Condition'] });
    expect(statusOf(data, 'cancer-history')).toBe('found');
  });

  it('counts bladder symptoms only when new to this episode (S6)', () => {
    const newRetention = record({ patient: patient(40), conditions: [lbp(), condition('R33.9', { onsetDaysAgo: 2 })] });
    const oldIncontinence = record({ patient: patient(40), conditions: [lbp(), condition('N39.46', { onsetDaysAgo: 2000 })] });
    expect(statusOf(newRetention, 'cauda-equina')).toBe('found');
    expect(statusOf(oldIncontinence, 'cauda-equina')).toBe('not-found');
  });

  it('does not take radiculopathy for a neurological deficit (S5)', () => {
    const data = record({ patient: patient(40), conditions: [condition('M54.16', { onsetDaysAgo: 5 })] });
    expect(statusOf(data, 'neurological-deficit')).toBe('not-found');
    expect(statusOf(data, 'radicular-recent')).toBe('found');
  });

  it('needs fever and a risk factor for spinal infection, in either unit', () => {
    const opioid = condition('F11.20');
    expect(statusOf(record({ patient: patient(40), conditions: [lbp(), opioid], observations: [temperature(38.6, 'Cel')] }), 'spinal-infection')).toBe('found');
    expect(statusOf(record({ patient: patient(40), conditions: [lbp(), condition('B20')], observations: [temperature(101.3, '[degF]')] }), 'spinal-infection')).toBe('found');
    expect(statusOf(record({ patient: patient(40), conditions: [lbp()], observations: [temperature(38.6, 'Cel')] }), 'spinal-infection')).toBe('not-found');
    expect(statusOf(record({ patient: patient(40), conditions: [lbp(), opioid], observations: [temperature(37.2, 'Cel')] }), 'spinal-infection')).toBe('not-found');
    expect(statusOf(record({ patient: patient(40), conditions: [lbp(), opioid], observations: [temperature(38.6, 'Cel', 30)] }), 'spinal-infection')).toBe('not-found');
  });

  it('treats an unreadable temperature as unknown only when it could change the answer', () => {
    expect(statusOf(record({ patient: patient(40), conditions: [lbp(), condition('F11.20')], unreadable: ['Observation'] }), 'spinal-infection')).toBe('unknown');
    // With no risk factor, fever alone cannot make the flag, so unreadable temperatures do not matter.
    expect(statusOf(record({ patient: patient(40), conditions: [lbp()], unreadable: ['Observation'] }), 'spinal-infection')).toBe('not-found');
  });

  it('finds long-term systemic steroids by course length, by name when the code is unknown (S4)', () => {
    expect(statusOf(record({ patient: patient(40), conditions: [lbp()], medications: [steroid('prednisone 5 MG Oral Tablet', 120, 120)] }), 'fracture-risk')).toBe('found');
    expect(statusOf(record({ patient: patient(40), conditions: [lbp()], medications: [steroid('prednisone 5 MG Oral Tablet', 30, 30)] }), 'fracture-risk')).toBe('not-found');
    expect(statusOf(record({ patient: patient(40), conditions: [lbp()], medications: [steroid('hydrocortisone 1% cream', 200, 200)] }), 'fracture-risk')).toBe('not-found');
    expect(statusOf(record({ patient: patient(40), conditions: [lbp(), condition('Z79.52')] }), 'fracture-risk')).toBe('found');
  });

  it('uses ACP 2011 fracture ages: over 65 in men, over 75 in women', () => {
    const at = (age: number, sex: 'male' | 'female' | 'other') => statusOf(record({ patient: patient(age, sex), conditions: [lbp()] }), 'fracture-risk');
    expect([at(65, 'male'), at(66, 'male'), at(75, 'female'), at(76, 'female'), at(66, 'other')]).toEqual(['not-found', 'found', 'not-found', 'found', 'found']);
  });

  it('says unknown for age-based flags when there is no birth date', () => {
    const data = record({ patient: { resourceType: 'Patient', id: 'p1' }, conditions: [lbp()] });
    expect(statusOf(data, 'cancer-weaker-risk')).toBe('unknown');
  });

  it('needs 6 weeks (42 days) of radicular pain for the persistent category', () => {
    const at = (days: number) => statusOf(record({ patient: patient(40), conditions: [condition('M54.16', { onsetDaysAgo: days })] }), 'radicular-persistent');
    expect([at(41), at(42)]).toEqual(['not-found', 'found']);
  });

  it('counts the order’s own reason as a current diagnosis', () => {
    const withReason = order('72148', 'mri', [{ coding: [{ system: 'http://hl7.org/fhir/sid/icd-10-cm', code: 'G83.4' }] }]);
    const facts = deriveFacts(record({ patient: patient(40) }), withReason, rules, rules.terminology, FIXTURE_CLOCK);
    expect(facts.categories.find((c) => c.id === 'cauda-equina')?.status).toBe('found');
  });
});

describe('edge cases found in review', () => {
  const withDates = (code: string, fields: Record<string, unknown>) => ({ ...condition(code), onsetDateTime: undefined, ...fields }) as any;

  it('adds refills a few days apart into one course', () => {
    const refills = [120, 90, 60, 30].map((start) => steroid('prednisone 5 MG Oral Tablet', start, 30, 'completed'));
    expect(statusOf(record({ patient: patient(40), conditions: [lbp()], medications: refills }), 'fracture-risk')).toBe('found');
  });

  it('does not stretch a short course that is still marked active', () => {
    const burst = steroid('prednisone 20 MG Oral Tablet', 200, 5, 'active');
    expect(statusOf(record({ patient: patient(40), conditions: [lbp()], medications: [burst] }), 'fracture-risk')).toBe('not-found');
  });

  it('lets a steroid product code win over words in the text', () => {
    const m = steroid('prednisone 10 MG Oral Tablet', 120, 120);
    m.medicationCodeableConcept = { text: 'for joint pain', coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '312615' }] };
    expect(statusOf(record({ patient: patient(40), conditions: [lbp()], medications: [m] }), 'fracture-risk')).toBe('found');
  });

  it('reads an included Medication, and says unknown for one it cannot see', () => {
    const m = steroid('x', 120, 120);
    delete m.medicationCodeableConcept;
    m.medicationReference = { reference: 'Medication/med-9' };
    const data = record({ patient: patient(40), conditions: [lbp()], medications: [m] });
    expect(statusOf(data, 'fracture-risk')).toBe('unknown');
    data.referenced.set('Medication/med-9', { resourceType: 'Medication', id: 'med-9', code: { text: 'predniSONE 5 mg tablet' } });
    expect(statusOf(data, 'fracture-risk')).toBe('found');
  });

  it('counts new bladder symptoms when the episode has no date, within the window', () => {
    expect(statusOf(record({ patient: patient(40), conditions: [condition('R33.9', { onsetDaysAgo: 40 })] }), 'cauda-equina')).toBe('found');
    expect(statusOf(record({ patient: patient(40), conditions: [condition('R33.9', { onsetDaysAgo: 200 })] }), 'cauda-equina')).toBe('not-found');
  });

  it('reads partial dates at their last possible day and time zones by the written day', () => {
    const lbpSep20 = withDates('M54.50', { onsetDateTime: '2026-09-20' });
    expect(statusOf(record({ patient: patient(40), conditions: [lbpSep20, withDates('R33.9', { onsetDateTime: '2026-09' })] }), 'cauda-equina')).toBe('found');
    expect(statusOf(record({ patient: patient(40), conditions: [lbpSep20, withDates('R33.9', { onsetDateTime: '2026-09-20T08:00:00+10:00' })] }), 'cauda-equina')).toBe('found');
    expect(statusOf(record({ patient: patient(40), conditions: [lbpSep20, withDates('R33.9', { onsetDateTime: '2026-09-19' })] }), 'cauda-equina')).toBe('not-found');
  });

  it('does not call the incontinence of a chronic back pain new (S6)', () => {
    const data = record({ patient: patient(40), conditions: [withDates('M54.50', { onsetDateTime: '2015-03-01' }), withDates('N39.41', { onsetDateTime: '2019-06-01' })] });
    expect(statusOf(data, 'cauda-equina')).toBe('not-found');
  });

  it('reads the HL7 status coding first when a local one comes before it', () => {
    const c = condition('Z85.3');
    c.verificationStatus = { coding: [{ system: 'urn:local', code: 'x' }, { system: 'http://terminology.hl7.org/CodeSystem/condition-ver-status', code: 'refuted' }] };
    expect(statusOf(record({ patient: patient(40), conditions: [lbp(), c] }), 'cancer-history')).toBe('not-found');
  });

  it('says unknown when radicular pain has no date: how long it lasted cannot be told', () => {
    const undated = withDates('M54.16', {});
    expect(statusOf(record({ patient: patient(40), conditions: [undated] }), 'radicular-persistent')).toBe('unknown');
  });
});
