/**
 * Writes complete CDS Hooks requests for a few fixture scenarios to fixtures/requests/, for EHR integrators,
 * the README's curl example and the tests. Prefetch comes from the real templates in cds-hooks/.
 * Run: npx tsx scripts/write-request-examples.ts
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURES_DIR, loadScenarios, scenarioRequest } from '../test/support/scenarios.js';

const EXAMPLES: Record<string, string> = {
  'order-select-uncomplicated-mri': 'acute-lbp-mri-not-indicated',
  'order-select-history-of-cancer': 'resolved-breast-cancer-urgent',
  'order-sign-osteoporosis-xray-and-mri': 'order-sign-osteoporosis-xray-and-mri',
  'order-sign-lumbar-stenosis': 'lumbar-stenosis-120-days-appropriate',
};

const scenarios = new Map(loadScenarios().map((s) => [s.id, s]));
let n = 0;
for (const [file, id] of Object.entries(EXAMPLES)) {
  const scenario = scenarios.get(id);
  if (!scenario) throw new Error(`no scenario ${id}`);
  const request = scenarioRequest(scenario);
  // A stable hookInstance keeps the files reproducible; real EHRs send a fresh UUID per call.
  request.hookInstance = `d1577c69-dfbe-44ad-ba6d-3e05e953b2${String(++n).padStart(2, '0')}`;
  writeFileSync(join(FIXTURES_DIR, 'requests', `${file}.json`), `${JSON.stringify(request, null, 2)}\n`);
}
console.log(`wrote ${n} requests to fixtures/requests/`);
