import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadRules, RulesError } from '../../src/rules/load-rules.js';
import { RULES_DIR } from '../support/app.js';

const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

/** A copy of the real rules with one file edited, as a guideline team might. */
async function editedRules(file: string, edit: (json: any) => void): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'rules-'));
  dirs.push(dir);
  await cp(RULES_DIR, dir, { recursive: true });
  const json = JSON.parse(await readFile(join(dir, file), 'utf8'));
  edit(json);
  await writeFile(join(dir, file), JSON.stringify(json));
  return dir;
}

async function problemsOf(dir: string): Promise<string[]> {
  try {
    await loadRules(dir);
  } catch (err) {
    if (err instanceof RulesError) return err.problems;
    throw err;
  }
  return [];
}

describe('loading the rules folder', () => {
  it('loads the project rules with a version and a content hash', async () => {
    const rules = await loadRules(RULES_DIR);
    expect(rules.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(rules.hash).toMatch(/^[0-9a-f]{12}$/);
    expect(rules.valueSets.size).toBeGreaterThan(15);
  });

  it('gives a new hash when any file changes', async () => {
    const a = await loadRules(RULES_DIR);
    const b = await loadRules(await editedRules('red-flags.json', (j) => { j.flags[0].label = 'Changed label'; }));
    expect(b.hash).not.toBe(a.hash);
  });

  it('names the file and path of a schema error', async () => {
    const dir = await editedRules('red-flags.json', (j) => { j.flags[0].criteria = { condition: { valueSet: 'cauda-equina-syndrome', recent: { weeks: 2 } } }; });
    expect((await problemsOf(dir)).join('\n')).toMatch(/red-flags\.json at \/flags\/0\/criteria/);
  });

  it('refuses a reference to a value set that does not exist', async () => {
    const dir = await editedRules('red-flags.json', (j) => { j.flags[0].criteria = { condition: { valueSet: 'no-such-set' } }; });
    expect(await problemsOf(dir)).toContainEqual(expect.stringMatching(/unknown value set "no-such-set"/));
  });

  it('refuses an unknown evidence id and an unknown category in a rule', async () => {
    const flags = await editedRules('red-flags.json', (j) => { j.flags[0].evidence = ['nobody-2099']; });
    expect(await problemsOf(flags)).toContainEqual(expect.stringMatching(/unknown evidence id "nobody-2099"/));
    const recs = await editedRules('recommendations.json', (j) => { j.rules[0].conditions.any[0].value = 'cauda-equine'; });
    expect(await problemsOf(recs)).toContainEqual(expect.stringMatching(/unknown category "cauda-equine"/));
    const scripts = await editedRules('scripts/languages.json', (j) => { j.evidence.push('nobody-2099'); });
    expect(await problemsOf(scripts)).toContainEqual(expect.stringMatching(/scripts\/languages\.json at \/evidence.*nobody-2099/));
  });

  it('refuses a recommendation rule with an operator the compiled rules cannot run', async () => {
    const recs = await editedRules('recommendations.json', (j) => { j.rules[0].conditions.any[0].operator = 'containsAll'; });
    expect((await problemsOf(recs)).join('\n')).toMatch(/operator|containsAll/);
  });

  it('refuses rules that leave a recommendation unreachable', async () => {
    const dir = await editedRules('recommendations.json', (j) => { j.rules = j.rules.filter((r: any) => r.event.type !== 'imaging-xray-first'); });
    expect(await problemsOf(dir)).toContainEqual(expect.stringMatching(/no rule can reach "imaging-xray-first"/));
  });

  it('refuses a summary template that is too long for a card', async () => {
    const dir = await editedRules('cards/en.json', (j) => { j.recommendations['imaging-urgent'].summary = 'x'.repeat(150); });
    expect((await problemsOf(dir)).join('\n')).toMatch(/cards\/en\.json at \/recommendations\/imaging-urgent\/summary/);
  });

  it('refuses a summary that only fits with short flag labels', async () => {
    const dir = await editedRules('cards/en.json', (j) => { j.recommendations['imaging-deferred'].summary = `${'y'.repeat(100)} ({{flags}})`; });
    expect(await problemsOf(dir)).toContainEqual(expect.stringMatching(/imaging-deferred\/summary: \d+ characters with the flag/));
  });
});

describe('cross-checks guideline teams rely on', () => {
  it('refuses a major category that no imaging-urgent rule names', async () => {
    const dir = await editedRules('recommendations.json', (j) => { j.rules[0].conditions.any = j.rules[0].conditions.any.filter((c: any) => c.value !== 'spinal-infection'); });
    expect(await problemsOf(dir)).toContainEqual(expect.stringMatching(/major category "spinal-infection" is in no rule/));
  });

  it('refuses a precedence that differs from the contract', async () => {
    const dir = await editedRules('recommendations.json', (j) => { j.precedence.reverse(); });
    expect(await problemsOf(dir)).toContainEqual(expect.stringMatching(/\/precedence: must be imaging-urgent/));
  });

  it('refuses a flag that uses an undefined named criterion', async () => {
    const dir = await editedRules('red-flags.json', (j) => { j.flags[0].criteria = { use: 'no-such-definition' }; });
    expect(await problemsOf(dir)).toContainEqual(expect.stringMatching(/unknown definition "no-such-definition"/));
  });
});

describe('guideline team checks', () => {
  it('refuses a code in two value sets of opposite meaning', async () => {
    const dir = await editedRules('value-sets/severe-neurological-deficit.json', (j) => { j.include.push({ system: 'icd-10-cm', codes: ['M54.16'] }); });
    expect(await problemsOf(dir)).toContainEqual(expect.stringMatching(/code M54\.16 is also in "radicular-pain", a value set of opposite meaning/));
  });

  it('refuses a site mapping to a value set that does not exist', async () => {
    const dir = await editedRules('site-mapping.json', (j) => { j.diagnoses[0].valueSets = ['low-back-pian']; });
    expect(await problemsOf(dir)).toContainEqual(expect.stringMatching(/site-mapping\.json at \/diagnoses\/0\/valueSets: unknown value set "low-back-pian"/));
  });

  it('puts a site’s local codes into the value sets they are mapped to', async () => {
    const rules = await loadRules(RULES_DIR);
    expect(rules.terminology.matchCoding('lumbar-mri-orders', { system: 'urn:example:ehr:order-catalog', code: 'IMG-LSPINE-MRI-NC' })).toBe(true);
    expect(rules.terminology.matchCoding('low-back-pain', { system: 'urn:example:ehr:problem-list', code: 'PL-LBP-ACUTE' })).toBe(true);
    expect(rules.terminology.matchCoding('low-back-pain', { system: 'urn:example:ehr:problem-list', code: 'PL-OTHER' })).toBe(false);
  });
});
