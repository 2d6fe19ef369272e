import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runRuleTest, type RuleTestCase } from '../../src/rules/rule-tests.js';
import { realRules, RULES_DIR } from '../support/app.js';
import { FIXTURES_DIR } from '../support/scenarios.js';

/** The guideline team's cases in rules/tests/, each one a test. */
const rules = await realRules();
const files = readdirSync(join(RULES_DIR, 'tests')).filter((f) => f.endsWith('.json'));

for (const file of files) {
  const { cases } = JSON.parse(readFileSync(join(RULES_DIR, 'tests', file), 'utf8')) as { cases: RuleTestCase[] };
  describe(`rules/tests/${file}`, () => {
    it.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
      const r = await runRuleTest(c, rules, FIXTURES_DIR);
      expect(r.got, `rules fired: ${r.firedRules.join(', ')}`).toBe(c.expect);
    });
  });
}
