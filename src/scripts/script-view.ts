import type { PrevalenceData, Scripts, ScriptLanguage } from '../rules/types.js';
import { parseTemplate, renderMarkdown } from '../cards/template.js';

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

/** The prognosis phase of an episode of this many days: the first whose maxDays it fits, else the open-ended one. */
export function prognosisPhase(episodeDays: number | undefined, scripts: Scripts): Scripts['prognosis']['phases'][number] | undefined {
  const { phases } = scripts.prognosis;
  if (episodeDays === undefined) return phases[0];
  return phases.find((p) => p.maxDays !== undefined && episodeDays <= p.maxDays) ?? phases.find((p) => p.maxDays === undefined);
}

/** Everything a template may use; names outside this view are refused when the rules load. */
export function scriptView(facts: ScriptFacts, language: ScriptLanguage, scripts: Scripts): Record<string, unknown> {
  const band = ageBand(facts.age, scripts.prevalence);
  const phase = prognosisPhase(facts.episodeDays, scripts);
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
  walk(parseTemplate(template) as unknown[][]);
  return [...names];
}

/**
 * The conversation script for these facts. The script depends only on the language, the age band, the prognosis phase,
 * the categories checked and the recommendation (no patient data), so each combination is rendered once per rules
 * version and kept; the number of combinations met in practice is small, and the cache is bounded all the same. The
 * key names the language by its code: `language` is always one of this `scripts`' languages.
 */
const renderedScripts = new WeakMap<Scripts, Map<string, string>>();
const MAX_RENDERED_SCRIPTS = 2000;
export function conversationScript(facts: ScriptFacts, language: ScriptLanguage, scripts: Scripts): string {
  let cache = renderedScripts.get(scripts);
  if (!cache) renderedScripts.set(scripts, (cache = new Map()));
  const key = [
    language.code,
    ageBand(facts.age, scripts.prevalence)?.band ?? '',
    prognosisPhase(facts.episodeDays, scripts)?.id ?? '',
    facts.recommendation ?? '',
    ...facts.checkedCategories,
  ].join('|');
  let script = cache.get(key);
  if (script === undefined) {
    script = renderMarkdown(language.conversation, scriptView(facts, language, scripts));
    if (cache.size >= MAX_RENDERED_SCRIPTS) cache.clear();
    cache.set(key, script);
  }
  return script;
}
