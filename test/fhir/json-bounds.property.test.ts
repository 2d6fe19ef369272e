import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { jsonBoundsProblem } from '../../src/fhir/shape.js';

/** The plain recursive reading of the bounds, to hold the iterative one to. */
function reference(value: unknown, maxDepth: number, maxArray: number, depth = 1): boolean {
  if (typeof value !== 'object' || value === null) return true;
  if (depth > maxDepth) return false;
  if (Array.isArray(value) && value.length > maxArray) return false;
  return Object.values(value).every((child) => reference(child, maxDepth, maxArray, depth + 1));
}

describe('jsonBoundsProblem', () => {
  it('finds a problem exactly when the body nests too deep or holds too long an array', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 7 }), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 0, max: 5 }), (value, maxDepth, maxArray) => {
        expect(jsonBoundsProblem(value, maxDepth, maxArray) === undefined).toBe(reference(value, maxDepth, maxArray));
      }),
      { numRuns: 2000 },
    );
  });

  it('names the bound that is broken, and walks a deep body without overflowing the stack', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 100_000; i++) deep = [deep];
    expect(jsonBoundsProblem(deep, 64, 10)).toBe('nests deeper than 64 levels');
    expect(jsonBoundsProblem({ a: { b: [1, 2, 3] } }, 64, 2)).toBe('has an array longer than 2 items');
    expect(jsonBoundsProblem({ a: { b: [1, 2, 3] } }, 2, 10)).toBe('nests deeper than 2 levels');
    expect(jsonBoundsProblem({ a: { b: [1, 2, 3] } }, 3, 3)).toBeUndefined();
  });
});
