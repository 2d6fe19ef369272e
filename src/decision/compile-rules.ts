import type { EngineRule } from '../rules/types.js';

/** What the compiled rules see: the flat facts of `engineFacts`. */
export type EngineFacts = Record<string, unknown>;
type Predicate = (facts: EngineFacts) => boolean;

export interface CompiledRule {
  name: string;
  event: string;
  test: Predicate;
}

/**
 * json-rules-engine's default operators, with the fact-value checks that make a comparison false rather than an error
 * (a `contains` on something that is not a list, a `lessThan` on something that is not a number).
 */
const isNumeric = (a: unknown) => Number.parseFloat(a as string).toString() !== 'NaN';
const OPERATORS: Record<string, { test: (a: never, b: never) => boolean; accepts?: (a: unknown) => boolean }> = {
  equal: { test: (a, b) => a === b },
  notEqual: { test: (a, b) => a !== b },
  in: { test: (a, b: unknown[]) => b.indexOf(a) > -1 },
  notIn: { test: (a, b: unknown[]) => b.indexOf(a) === -1 },
  contains: { test: (a: unknown[], b) => a.indexOf(b) > -1, accepts: Array.isArray },
  doesNotContain: { test: (a: unknown[], b) => a.indexOf(b) === -1, accepts: Array.isArray },
  lessThan: { test: (a, b) => a < b, accepts: isNumeric },
  lessThanInclusive: { test: (a, b) => a <= b, accepts: isNumeric },
  greaterThan: { test: (a, b) => a > b, accepts: isNumeric },
  greaterThanInclusive: { test: (a, b) => a >= b, accepts: isNumeric },
};

export class RuleCompileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RuleCompileError';
  }
}

function compileCondition(condition: Record<string, unknown>, where: string): Predicate {
  for (const bool of ['all', 'any'] as const) {
    const list = condition[bool];
    if (list === undefined) continue;
    if (!Array.isArray(list)) throw new RuleCompileError(`${where}: "${bool}" must be a list`);
    const parts = list.map((c, i) => compileCondition(c as Record<string, unknown>, `${where}/${bool}/${i}`));
    // As json-rules-engine: an empty list passes, whether "all" or "any".
    if (parts.length === 0) return () => true;
    return bool === 'all' ? (f) => parts.every((p) => p(f)) : (f) => parts.some((p) => p(f));
  }
  if (condition.not !== undefined) {
    const inner = compileCondition(condition.not as Record<string, unknown>, `${where}/not`);
    return (f) => !inner(f);
  }
  const { fact, operator, value } = condition as { fact?: unknown; operator?: unknown; value?: unknown };
  if (typeof fact !== 'string') throw new RuleCompileError(`${where}: a condition needs "all", "any", "not" or a "fact"`);
  const op = typeof operator === 'string' ? OPERATORS[operator] : undefined;
  if (!op) throw new RuleCompileError(`${where}: unknown operator ${JSON.stringify(operator)}`);
  return (facts) => {
    if (!(fact in facts) || facts[fact] === undefined) throw new RuleCompileError(`${where}: fact "${fact}" is not defined`);
    const actual = facts[fact];
    if (op.accepts && !op.accepts(actual)) return false;
    return op.test(actual as never, value as never);
  };
}

/**
 * Turns the recommendation rules (json-rules-engine's JSON format, so guideline teams keep its documentation) into plain
 * functions, once per rules version. json-rules-engine itself costs tenths of a millisecond per call in cloning and
 * promise chains; the property tests hold these functions equal to it.
 */
export function compileRules(rules: EngineRule[]): CompiledRule[] {
  // Higher priority first, file order within a priority, as json-rules-engine lists its results.
  const ordered = rules.map((rule, i) => ({ rule, i })).sort((a, b) => (b.rule.priority ?? 1) - (a.rule.priority ?? 1) || a.i - b.i);
  return ordered.map(({ rule, i }) => ({
    name: rule.name,
    event: rule.event.type,
    test: compileCondition(rule.conditions, `recommendations.json at /rules/${i} (${rule.name})`),
  }));
}

const compiled = new WeakMap<EngineRule[], CompiledRule[]>();

/** The compiled form of a rules list, built the first time that list (one rules version) is used. */
export function compiledRules(rules: EngineRule[]): CompiledRule[] {
  let c = compiled.get(rules);
  if (!c) {
    c = compileRules(rules);
    compiled.set(rules, c);
  }
  return c;
}

/** The rules that fire on these facts, by priority then file order. */
export function firedRules(rules: CompiledRule[], facts: EngineFacts): CompiledRule[] {
  return rules.filter((r) => r.test(facts));
}
