import { describe, expect, it } from 'vitest';
import { createTerminology } from '../../src/rules/terminology.js';
import type { ValueSetDef } from '../../src/rules/types.js';

const ICD = 'http://hl7.org/fhir/sid/icd-10-cm';
const codeSystems = {
  'icd-10-cm': { uris: [ICD, 'urn:oid:2.16.840.1.113883.6.90'], normalise: 'strip-dots-uppercase' as const },
  snomed: { uris: ['http://snomed.info/sct'], normalise: 'exact' as const },
};
const malignancy: ValueSetDef = {
  id: 'malignancy',
  title: 'Malignancy',
  sources: ['test'],
  text: { anyOf: ['carcinoma'] },
  include: [
    { system: 'icd-10-cm', ranges: [{ from: 'C00', to: 'C96' }, { from: 'D00', to: 'D09' }], prefixes: ['Z85'] },
    { system: 'snomed', codes: [{ code: '266987004', display: 'History of malignant neoplasm' }] },
  ],
  exclude: [{ system: 'icd-10-cm', codes: ['C44.91'] }],
};
const steroids: ValueSetDef = {
  id: 'steroids',
  title: 'Steroids',
  sources: ['test'],
  include: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', codes: ['8640'] }],
  text: { anyOf: ['prednisone'], noneOf: ['inhal', 'cream'] },
};
const t = createTerminology(codeSystems, [malignancy, steroids]);
const icd = (code: string) => ({ system: ICD, code });

describe('value set matching', () => {
  it('matches ICD-10-CM codes dotted or undotted, in any case', () => {
    expect(t.matchCoding('malignancy', icd('Z85.3'))).toBe(true);
    expect(t.matchCoding('malignancy', icd('z853'))).toBe(true);
    expect(t.matchCoding('malignancy', { system: 'urn:oid:2.16.840.1.113883.6.90', code: 'C50.911' })).toBe(true);
  });

  it('compares ranges as text so alphanumeric categories (C4A, C7B) fall inside C00-C96', () => {
    for (const code of ['C00.0', 'C4A.9', 'C7B.00', 'C49.A0', 'C96.Z', 'D05.10', 'D09']) expect(t.matchCoding('malignancy', icd(code)), code).toBe(true);
    for (const code of ['D10.0', 'D17.1', 'D36', 'B99', 'C97']) expect(t.matchCoding('malignancy', icd(code)), code).toBe(false);
  });

  it('applies exclusions after inclusions', () => {
    expect(t.matchCoding('malignancy', icd('C44.91'))).toBe(false);
    expect(t.matchCoding('malignancy', icd('C44.92'))).toBe(true);
  });

  it('an excluded code is the answer: the name of a condition coded with it is not read instead', () => {
    const named = { coding: [{ system: ICD, code: 'C44.91', display: 'Basal cell carcinoma of skin' }] };
    expect(t.matchConcept('malignancy', named, { byName: true })).toBeUndefined();
    // The same name with no code the value set knows still reads as what it says.
    expect(t.matchConcept('malignancy', { text: 'Basal cell carcinoma of skin' }, { byName: true })).toBeDefined();
  });

  it('needs the right system: the same code in another system does not match', () => {
    expect(t.matchCoding('malignancy', { system: 'http://snomed.info/sct', code: 'Z85.3' })).toBe(false);
    expect(t.matchCoding('malignancy', { code: 'Z85.3' })).toBe(false);
  });

  it('falls back to text only when asked, and honours words that veto it', () => {
    const tablet = { text: 'predniSONE 5 MG Oral Tablet' };
    expect(t.matchConcept('steroids', tablet)).toBeUndefined();
    expect(t.matchConcept('steroids', tablet, { byName: true })).toEqual({ display: 'predniSONE 5 MG Oral Tablet' });
    expect(t.matchConcept('steroids', { text: 'prednisone inhaler' }, { byName: true })).toBeUndefined();
    expect(t.matchConcept('steroids', { coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '8640' }] })).toBeDefined();
  });

  it('gives the display a value set records for a code', () => {
    expect(t.displayOf('malignancy', { system: 'http://snomed.info/sct', code: '266987004' })).toBe('History of malignant neoplasm');
  });
});
