import Mustache from 'mustache';
import type { PrevalenceData, Scripts, ScriptLanguage } from '../rules/types.js';

/**
 * The patient-conversation script and handout: pure functions from facts to the words of one language.
 * Templates are logic-less (mustache) markdown in rules/scripts/<language>/; numbers come from rules/data/.
 */

/** The script language for a patient's preferred languages (BCP-47, preferred first): exact, then by primary subtag, else the default. */
export function chooseLanguage(preferred: string[], scripts: Scripts): ScriptLanguage {
  const available = [...scripts.languages.values()];
  for (const wanted of preferred) {
    const w = wanted.toLowerCase();
    const exact = available.find((l) => l.code.toLowerCase() === w);
    if (exact) return exact;
    const primary = available.find((l) => l.code.toLowerCase().split('-')[0] === w.split('-')[0]);
    if (primary) return primary;
  }
  return scripts.languages.get(scripts.defaultLanguage) ?? available[0]!;
}

export function ageBand(age: number | undefined, prevalence: PrevalenceData): PrevalenceData['bands'][number] | undefined {
  if (age === undefined) return undefined;
  return prevalence.bands.find((b) => age >= b.from && age <= b.to);
}

export function joinWords(items: string[], and: string): string {
  if (items.length <= 1) return items.join('');
  return `${items.slice(0, -1).join(', ')} ${and} ${items[items.length - 1]}`;
}

export interface ScriptFacts {
  age?: number;
  episodeDays?: number;
  /** Red-flag categories checked and not found, in the order of red-flags.json. */
  checkedCategories: string[];
  recommendation?: string;
}

/** Everything a template may use; names outside this view are refused when the rules load. */
export function scriptView(facts: ScriptFacts, language: ScriptLanguage, scripts: Scripts): Record<string, unknown> {
  const band = ageBand(facts.age, scripts.prevalence);
  const phase =
    facts.episodeDays === undefined
      ? scripts.prognosis.phases[0]
      : (scripts.prognosis.phases.find((p) => p.maxDays !== undefined && facts.episodeDays! <= p.maxDays) ??
        scripts.prognosis.phases.find((p) => p.maxDays === undefined));
  const checked = facts.checkedCategories.map((c) => language.strings.checkedGroups[c]).filter((w): w is string => Boolean(w));
  return {
    strings: language.strings,
    checked: joinWords(checked, language.strings.and),
    prevalence: band ? { inTen: Math.round(band.percent / 10), ageWords: language.strings.ageWords[band.band] ?? '', band: band.band } : undefined,
    figures: scripts.prognosis.figures,
    reviewWeeks: scripts.prognosis.reviewWeeks,
    early: phase?.id === 'early',
    subacute: phase?.id === 'subacute',
    persistent: phase?.id === 'persistent',
    deferred: facts.recommendation === 'imaging-deferred',
    xrayFirst: facts.recommendation === 'imaging-xray-first',
  };
}

export const TEMPLATE_NAMES = [
  'strings', 'checked', 'prevalence', 'inTen', 'ageWords', 'band', 'figures', 'reviewWeeks', 'early', 'subacute', 'persistent', 'deferred', 'xrayFirst',
  // The follow-up script.
  'weeks', 'reconsidering', 'startBack', 'groupName', 'advice',
];

/** Names a template uses ({{a.b}} gives "a"), to check templates against the view. */
export function templateNames(template: string): string[] {
  const names = new Set<string>();
  const walk = (tokens: unknown[][]) => {
    for (const t of tokens) {
      if (['name', '&', '#', '^'].includes(t[0] as string)) names.add(String(t[1]).split('.')[0]!);
      if (Array.isArray(t[4])) walk(t[4] as unknown[][]);
    }
  };
  walk(Mustache.parse(template) as unknown[][]);
  return [...names];
}

export function render(template: string, view: Record<string, unknown>): string {
  return Mustache.render(template, view, {}, { escape: (s: unknown) => String(s) })
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

/** Patient-facing lines of a rendered script: the quoted sentences a clinician says. */
export function spokenLines(script: string): string[] {
  return script.split('\n').filter((l) => l.startsWith('- "')).map((l) => l.slice(3, -1));
}

/** Words of a language guide found in a text (matched at the start of a word, any case). */
export function fearTermsIn(text: string, guide: ScriptLanguage['guide']): string[] {
  const found: string[] = [];
  for (const term of guide.terms) {
    for (const m of term.match) {
      const escaped = m.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      if (new RegExp(`(?<![\\p{L}\\p{N}])${escaped}`, 'iu').test(text)) found.push(`"${m}" (${term.avoid}: say "${term.instead}")`);
    }
  }
  return found;
}
