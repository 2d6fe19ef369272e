import fc from 'fast-check';
import { Engine } from 'json-rules-engine';
import { describe, expect, it } from 'vitest';
import { compileRules, firedRules, RuleCompileError, type EngineFacts } from '../../src/decision/compile-rules.js';
import type { EngineRule } from '../../src/rules/types.js';
import { realRules } from '../support/app.js';

const rules = await realRules();
const categoryIds = rules.redFlags.categories.map((c) => c.id);

/** The reference: json-rules-engine itself, as the rules format documents it. */
async function engineFired(list: EngineRule[], facts: EngineFacts): Promise<string[]> {
  const engine = new Engine(list as never, { allowUndefinedFacts: false });
  const { results } = await engine.run(facts);
  return results.map((r) => String(r.name)).sort();
}
const compiledFired = (list: EngineRule[], facts: EngineFacts) => firedRules(compileRules(list), facts).map((r) => r.name).sort();

const someCategories = fc.subarray([...categoryIds, 'not-a-category']);
const maybeNumber = fc.oneof(fc.constant(null), fc.integer({ min: -5, max: 200 }));
const facts: fc.Arbitrary<EngineFacts> = fc.record({
  foundCategories: someCategories,
  unknownCategories: someCategories,
  unknownCategoryCount: fc.integer({ min: 0, max: 12 }),
  unreadableDataCount: fc.integer({ min: 0, max: 5 }),
  modality: fc.constantFrom('xray', 'ct', 'mri', 'other'),
  age: maybeNumber,
  episodeDays: maybeNumber,
});

const FACTS = ['foundCategories', 'unknownCategories', 'unknownCategoryCount', 'unreadableDataCount', 'modality', 'age', 'episodeDays'];
const scalar = fc.oneof(fc.constantFrom(...categoryIds, 'xray', 'ct', 'mri'), fc.integer({ min: -5, max: 200 }), fc.constant(null));
const leaf = fc.oneof(
  fc.record({ fact: fc.constantFrom(...FACTS), operator: fc.constantFrom('equal', 'notEqual', 'contains', 'doesNotContain'), value: scalar }),
  fc.record({ fact: fc.constantFrom(...FACTS), operator: fc.constantFrom('in', 'notIn'), value: fc.array(scalar, { maxLength: 4 }) }),
  fc.record({
    fact: fc.constantFrom(...FACTS),
    operator: fc.constantFrom('lessThan', 'lessThanInclusive', 'greaterThan', 'greaterThanInclusive'),
    value: fc.integer({ min: -5, max: 200 }),
  }),
);
const { tree } = fc.letrec<{ tree: Record<string, unknown>; node: Record<string, unknown> }>((tie) => ({
  tree: fc.oneof(fc.record({ all: fc.array(tie('node'), { maxLength: 4 }) }), fc.record({ any: fc.array(tie('node'), { maxLength: 4 }) })),
  node: fc.oneof({ depthSize: 'small', withCrossShrink: true }, leaf, tie('tree'), fc.record({ not: tie('node') })),
}));
const ruleList: fc.Arbitrary<EngineRule[]> = fc
  .array(fc.record({ conditions: tree, event: fc.record({ type: fc.constantFrom('a', 'b', 'c') }) }), { minLength: 1, maxLength: 6 })
  .map((list) => list.map((r, i) => ({ ...r, name: `rule-${i}` })));

describe('compiled recommendation rules give what json-rules-engine gives', () => {
  it('for the shipped rules, on any facts', async () => {
    await fc.assert(
      fc.asyncProperty(facts, async (f) => {
        expect(compiledFired(rules.recommendations.rules, f)).toEqual(await engineFired(rules.recommendations.rules, f));
      }),
      { numRuns: 500 },
    );
  });

  it('for any rules a guideline team could write (all, any, not, every operator), on any facts', async () => {
    await fc.assert(
      fc.asyncProperty(ruleList, facts, async (list, f) => {
        expect(compiledFired(list, f)).toEqual(await engineFired(list, f));
      }),
      { numRuns: 1000 },
    );
  });

  it('refuses, when compiling, an operator it does not know', () => {
    const bad: EngineRule = { name: 'bad', conditions: { all: [{ fact: 'age', operator: 'olderThan', value: 50 }] }, event: { type: 'a' } };
    expect(() => compileRules([bad])).toThrow(RuleCompileError);
    expect(() => compileRules([bad])).toThrow(/olderThan/);
  });

  it('treats a missing fact as an error, as json-rules-engine does with allowUndefinedFacts off', () => {
    const rule: EngineRule = { name: 'r', conditions: { all: [{ fact: 'age', operator: 'greaterThan', value: 50 }] }, event: { type: 'a' } };
    expect(() => firedRules(compileRules([rule]), {})).toThrow(/age/);
  });
});
