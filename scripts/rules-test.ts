/**
 * npm run rules:test [rules folder]: runs the guideline team's cases in rules/tests/ and prints a table.
 * Exit code 1 when a case does not get the recommendation it expects.
 */
import { resolve } from 'node:path';
import { loadRules, RulesError } from '../src/rules/load-rules.js';
import { runRuleTests } from '../src/rules/rule-tests.js';

const dir = resolve(process.argv[2] || process.env.RULES_DIR || 'rules');
const fixtures = resolve(new URL('../fixtures', import.meta.url).pathname);
let rules;
try {
  rules = await loadRules(dir);
} catch (err) {
  if (err instanceof RulesError) {
    console.error(`rules in ${dir} are invalid; run npm run rules:check`);
    process.exit(1);
  }
  throw err;
}
const results = await runRuleTests(rules, dir, fixtures);
const width = Math.max(...results.map((r) => r.name.length), 4);
const line = (a: string, b: string, c: string, d: string) => `${a.padEnd(3)} ${b.padEnd(width)}  ${c.padEnd(22)} ${d}`;
console.log(`rules ${rules.version}+${rules.hash}\n`);
console.log(line('', 'case', 'expected', 'got'));
for (const r of results) console.log(line(r.pass ? 'ok' : 'XX', r.name, r.expected, r.pass ? r.got : `${r.got}  <-- (rules fired: ${r.firedRules.join(', ') || 'none'})`));
const failed = results.filter((r) => !r.pass).length;
console.log(`\n${results.length - failed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
