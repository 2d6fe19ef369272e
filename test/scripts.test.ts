import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { chooseLanguage, conversationScript, scriptView } from '../src/scripts/script-view.js';
import { renderMarkdown as render } from '../src/cards/template.js';
import { fearTermsIn, spokenLines } from './support/language-check.js';
import { realRules, testApp } from './support/app.js';
import { loadScenarios, scenarioRequest, SERVICE_IDS, type Scenario } from './support/scenarios.js';

/** The patient-conversation script and handout, in every language, for the fixture patients. */
const rules = await realRules();
const { scripts } = rules;
const LANGUAGES = [...scripts.languages.keys()];
let app: FastifyInstance;
beforeAll(async () => { app = await testApp(); });
afterAll(async () => { await app.close(); });

function withLanguage(s: Scenario, code: string): Scenario {
  const copy = structuredClone(s);
  const patient = copy.patient.entry!.find((e) => e.resource?.resourceType === 'Patient')!.resource as any;
  patient.communication = [{ language: { coding: [{ system: 'urn:ietf:bcp:47', code }] }, preferred: true }];
  return copy;
}

async function conversationFor(s: Scenario) {
  const res = await app.inject({ method: 'POST', url: `/cds-services/${SERVICE_IDS[s.hook]}`, payload: scenarioRequest(s) as any });
  expect(res.statusCode).toBe(200);
  return res.json().cards.find((c: any) => c.source.topic.code === 'patient-conversation');
}

const withScript = loadScenarios().filter((s) =>
  Object.values(s.expect.recommendations ?? {}).some((r) => ['imaging-not-indicated', 'imaging-deferred', 'imaging-xray-first'].includes(r)),
);

/** Flesch-Kincaid grade, with the usual vowel-group syllable count. */
function fleschKincaid(text: string): number {
  const sentences = text.split(/[.!?]+\s|[.!?]+$|\n+/).filter((s) => /\w/.test(s)).length;
  const words = text.match(/[A-Za-z']+/g) ?? [];
  const syllables = words.reduce((n, w) => {
    const groups = w.toLowerCase().replace(/e$/, '').match(/[aeiouy]+/g);
    return n + Math.max(1, groups?.length ?? 1);
  }, 0);
  return 0.39 * (words.length / sentences) + 11.8 * (syllables / words.length) - 15.59;
}

const strip = (html: string) =>
  html
    .replace(/<style[\s\S]*?<\/style>/g, '')
    .replace(/<[^>]+>/g, ' ')
    .replaceAll('&#39;', "'")
    .replaceAll('&quot;', '"')
    .replaceAll('&amp;', '&')
    .replace(/\s+/g, ' ');

describe('the script for every fixture patient, in every language', () => {
  it('covers enough patients', () => expect(withScript.length).toBeGreaterThanOrEqual(15));

  for (const code of LANGUAGES) {
    it.each(withScript.map((s) => [s.id, s] as const))(`${code}: %s`, async (_id, s) => {
      const card = await conversationFor(withLanguage(s, code));
      const lang = scripts.languages.get(code)!;
      expect(card.extension['lbp-imaging-cds'].language).toBe(code);
      expect(card.detail).not.toMatch(/\{\{|\}\}/);
      const spoken = spokenLines(card.detail);
      expect(spoken.length).toBeGreaterThanOrEqual(15);
      for (const line of spoken) expect(line.trim().length, 'an empty line').toBeGreaterThan(10);
      expect(fearTermsIn(spoken.join('\n'), lang.guide)).toEqual([]);
      for (const item of Object.values(lang.strings.safetyNet)) expect(card.detail).toContain(item);
      // The age band's figure, from the data file.
      const patient = s.patient.entry!.find((e) => e.resource?.resourceType === 'Patient')!.resource as any;
      const age = Math.floor((Date.UTC(2026, 10, 15) - Date.parse(patient.birthDate)) / (365.25 * 86_400_000));
      const band = scripts.prevalence.bands.find((b) => age >= b.from && age <= b.to);
      if (band) expect(card.detail).toContain(lang.strings.ageWords[band.band]!);
      if (band) expect(card.detail).toMatch(new RegExp(`${Math.round(band.percent / 10)} (in|ud af|personnes sur) 10`));
    });
  }
});

describe('done when', () => {
  it('a not-indicated call for a 35-year-old gives the 30-39 figures', async () => {
    const s = structuredClone(loadScenarios().find((x) => x.id === 'acute-lbp-mri-not-indicated')!);
    (s.patient.entry!.find((e) => e.resource?.resourceType === 'Patient')!.resource as any).birthDate = '1991-06-01';
    const card = await conversationFor(s);
    const band = scripts.prevalence.bands.find((b) => b.band === '30-39')!;
    expect(card.detail).toContain(`About ${Math.round(band.percent / 10)} in 10 people in their thirties`);
  });

  it('a Danish-speaking patient gets the Danish script, and its handout link serves a Danish page', async () => {
    const card = await conversationFor(withLanguage(loadScenarios().find((x) => x.id === 'acute-lbp-mri-not-indicated')!, 'da-DK'));
    expect(card.extension['lbp-imaging-cds'].language).toBe('da');
    expect(card.detail).toContain('**1. Lyt**');
    const link = card.links[0];
    expect(link.url).toMatch(/^http:\/\/localhost:3000\/handouts\/da\/\d+-\d+$/);
    const page = await app.inject({ method: 'GET', url: new URL(link.url).pathname });
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('<html lang="da">');
    expect(page.body).toContain('Dine rygsmerter');
    // The other languages are linked too.
    expect(card.links.filter((l: any) => l.url.includes('/handouts/')).map((l: any) => l.url.split('/')[4]).sort()).toEqual([...LANGUAGES].sort());
  });
});

describe('what the script says, by recommendation and by episode length', () => {
  const en = scripts.languages.get('en')!;
  const view = (recommendation: string, episodeDays: number) => scriptView({ age: 40, episodeDays, checkedCategories: ['cancer-history'], recommendation }, en, scripts);
  it('explains the trial of care for imaging-deferred, and why an X-ray comes first', () => {
    expect(render(en.conversation, view('imaging-deferred', 10))).toMatch(/the best test is time and care/);
    expect(render(en.conversation, view('imaging-xray-first', 10))).toMatch(/plain X-ray is the right first picture/);
    expect(render(en.conversation, view('imaging-not-indicated', 10))).not.toMatch(/X-ray is the right first/);
  });
  it('fits the prognosis to how long the episode has lasted', () => {
    expect(render(en.conversation, view('imaging-not-indicated', 10))).toMatch(/within a few weeks/);
    expect(render(en.conversation, view('imaging-not-indicated', 60))).toMatch(/Most of the recovery happens in the first weeks/);
    expect(render(en.conversation, view('imaging-not-indicated', 200))).toMatch(new RegExp(`About ${scripts.prognosis.figures.recoveredAtYearPercent} in 100`));
  });
});

describe('the language checker', () => {
  it('catches frightening words, in every language', () => {
    expect(fearTermsIn('You have degenerative disc disease', scripts.languages.get('en')!.guide)).not.toEqual([]);
    expect(fearTermsIn('Du har en diskusprolaps og slidgigt', scripts.languages.get('da')!.guide)).not.toEqual([]);
    expect(fearTermsIn('Vous avez de la dégénérescence discale', scripts.languages.get('fr-CA')!.guide)).not.toEqual([]);
    expect(fearTermsIn('Vos os sont solides', scripts.languages.get('fr-CA')!.guide)).toEqual([]);
  });

  it.each(LANGUAGES)('finds none in any %s handout or script', async (code) => {
    const lang = scripts.languages.get(code)!;
    for (const band of [...scripts.prevalence.bands.map((b) => b.band), 'any']) {
      const page = await app.inject({ method: 'GET', url: `/handouts/${code}/${band}` });
      expect(page.statusCode).toBe(200);
      expect(fearTermsIn(strip(page.body), lang.guide), `${code}/${band}`).toEqual([]);
      for (const item of Object.values(lang.strings.safetyNet)) expect(strip(page.body)).toContain(item);
    }
    for (const recommendation of ['imaging-not-indicated', 'imaging-deferred', 'imaging-xray-first']) {
      for (const days of [5, 60, 300]) {
        const text = render(lang.conversation, scriptView({ age: 55, episodeDays: days, checkedCategories: ['cauda-equina', 'cancer-history'], recommendation }, lang, scripts));
        expect(fearTermsIn(spokenLines(text).join('\n'), lang.guide)).toEqual([]);
      }
    }
  });

  it('reads the English handout at grade 8 or below (Flesch-Kincaid)', async () => {
    const page = await app.inject({ method: 'GET', url: '/handouts/en/40-49' });
    const grade = fleschKincaid(strip(page.body));
    expect(grade).toBeLessThanOrEqual(8);
  });
});

describe('language choice', () => {
  it('takes the preferred language, by exact code then primary subtag, else English', () => {
    expect(chooseLanguage(['fr'], scripts).code).toBe('fr-CA');
    expect(chooseLanguage(['da-DK'], scripts).code).toBe('da');
    expect(chooseLanguage(['de', 'da'], scripts).code).toBe('da');
    expect(chooseLanguage(['de'], scripts).code).toBe('en');
    expect(chooseLanguage([], scripts).code).toBe('en');
  });
});

describe('the conversation script kept per combination', () => {
  it('is the script rendered afresh, whatever the age, episode, categories and recommendation', () => {
    const categories = rules.redFlags.categories.map((c) => c.id);
    const facts = fc.record({
      age: fc.option(fc.integer({ min: 0, max: 110 }), { nil: undefined }),
      episodeDays: fc.option(fc.integer({ min: 0, max: 2000 }), { nil: undefined }),
      checkedCategories: fc.subarray(categories),
      recommendation: fc.constantFrom('imaging-not-indicated', 'imaging-deferred', 'imaging-xray-first'),
    });
    fc.assert(
      fc.property(facts, fc.constantFrom(...LANGUAGES), (f, code) => {
        const language = scripts.languages.get(code)!;
        // Twice: the second answer comes from the cache.
        const fresh = render(language.conversation, scriptView(f, language, scripts));
        expect(conversationScript(f, language, scripts)).toBe(fresh);
        expect(conversationScript(f, language, scripts)).toBe(fresh);
      }),
      { numRuns: 1000 },
    );
  });
});
