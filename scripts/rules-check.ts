/**
 * npm run rules:check [folder]: checks a rules folder as the service would at start (schemas, then every reference
 * between files), and prints each problem with its file, JSON path and fix. Exit code 1 when anything is wrong.
 */
import { resolve } from 'node:path';
import { loadRules, RulesError } from '../src/rules/load-rules.js';

const dir = resolve(process.argv[2] || process.env.RULES_DIR || 'rules');
try {
  const rules = await loadRules(dir);
  console.log(`rules OK: ${rules.name} ${rules.version}+${rules.hash} (${rules.valueSets.size} value sets, ${rules.redFlags.flags.length} red flags, ${rules.recommendations.rules.length} rules, ${rules.scripts.languages.size} languages)`);
} catch (err) {
  if (!(err instanceof RulesError)) throw err;
  console.error(`rules in ${dir} are invalid (${err.problems.length} problem${err.problems.length > 1 ? 's' : ''}):`);
  for (const p of err.problems) console.error(`  - ${p}`);
  process.exit(1);
}
