import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { withoutEmpty } from '../../src/fhir/without-empty.js';

/** The plain reading: drop null, '', [] and {} at every level, bottom up. */
function reference(value: unknown): unknown {
  if (value === null || value === '') return undefined;
  if (Array.isArray(value)) {
    const items = value.map(reference).filter((v) => v !== undefined);
    return items.length > 0 ? items : undefined;
  }
  if (typeof value === 'object') {
    const entries = Object.entries(value as object).map(([k, v]) => [k, reference(v)] as const).filter(([, v]) => v !== undefined);
    return entries.length > 0 ? Object.fromEntries(entries) : undefined;
  }
  return value;
}

describe('withoutEmpty', () => {
  it('drops exactly the empty values, at every depth, and leaves its input as it was', () => {
    const leaf = fc.oneof(fc.constant(null), fc.constant(''), fc.string(), fc.integer(), fc.boolean(), fc.constant([]), fc.constant({}));
    const json = fc.letrec((tie) => ({
      value: fc.oneof({ depthSize: 'small' }, leaf, fc.array(tie('value'), { maxLength: 4 }), fc.dictionary(fc.string({ maxLength: 4 }), tie('value'), { maxKeys: 4 })),
    })).value;
    fc.assert(
      fc.property(json, (value) => {
        const before = JSON.stringify(value);
        expect(withoutEmpty(value)).toEqual(reference(value));
        expect(JSON.stringify(value)).toBe(before);
      }),
      { numRuns: 2000 },
    );
  });

  it('keeps an own "__proto__" key as data, never as the prototype', () => {
    const input = JSON.parse('{"a":{"__proto__":{"polluted":1},"b":[]}}');
    const out = withoutEmpty(input) as any;
    expect(Object.getPrototypeOf(out.a)).toBe(Object.prototype);
    expect(Object.keys(out.a)).toEqual(['__proto__']);
    expect(({} as any).polluted).toBeUndefined();
  });

  it('turns the sandbox`s empty lists into absent elements', () => {
    expect(withoutEmpty({ resourceType: 'ServiceRequest', reasonCode: [], note: [{ text: '' }], code: { text: 'MRI' } })).toEqual({ resourceType: 'ServiceRequest', code: { text: 'MRI' } });
  });
});
