import Mustache from 'mustache';
import { RECOMMENDATION_CODES, type Criterion, type Rules } from './types.js';
import { TEMPLATE_NAMES, templateNames } from '../scripts/script-view.js';
import { MAX_SUMMARY } from '../cards/template.js';
import type { Terminology } from './terminology.js';


function criterionUses(c: Criterion): string[] {
  if ('all' in c) return c.all.flatMap(criterionUses);
  if ('any' in c) return c.any.flatMap(criterionUses);
  if ('not' in c) return criterionUses(c.not);
  if ('use' in c) return [c.use];
  return [];
}

function criterionValueSets(c: Criterion): string[] {
  if ('all' in c) return c.all.flatMap(criterionValueSets);
  if ('any' in c) return c.any.flatMap(criterionValueSets);
  if ('not' in c) return criterionValueSets(c.not);
  if ('use' in c) return [];
  if ('condition' in c) return [c.condition.valueSet];
  if ('observation' in c) return [c.observation.valueSet];
  if ('medication' in c) return [c.medication.valueSet];
  if ('lasting' in c) return [c.lasting.valueSet];
  return [];
}

/** Facts in a json-rules-engine condition tree: [fact, value] pairs. */
function ruleLeaves(node: unknown): Array<{ fact: string; value: unknown }> {
  if (!node || typeof node !== 'object') return [];
  const n = node as Record<string, unknown>;
  if (Array.isArray(n.all)) return n.all.flatMap(ruleLeaves);
  if (Array.isArray(n.any)) return n.any.flatMap(ruleLeaves);
  if (n.not) return ruleLeaves(n.not);
  if (typeof n.fact === 'string') return [{ fact: n.fact, value: n.value }];
  return [];
}

/** References between rules files; each message names the file, the JSON path and what to do. */
export function crossCheck(rules: Rules, terminology: Terminology): string[] {
  const problems: string[] = [];
  const evidenceKnown = (where: string, ids: string[]) => {
    for (const id of ids) {
      if (!rules.evidence.has(id)) problems.push(`${where}: unknown evidence id "${id}"; add it to evidence.json or fix the id`);
    }
  };
  const valueSetKnown = (where: string, id: string) => {
    if (!rules.valueSets.has(id)) problems.push(`${where}: unknown value set "${id}"; add value-sets/${id}.json or fix the id`);
  };

  const knownSystems = new Set(Object.keys(rules.codeSystems));
  for (const vs of rules.valueSets.values()) {
    for (const [i, part] of [...vs.include, ...(vs.exclude ?? [])].entries()) {
      if (!knownSystems.has(part.system) && !part.system.includes(':')) {
        problems.push(`value-sets/${vs.id}.json part ${i}: unknown code system "${part.system}"; use a key of code-systems.json or a full URI`);
      }
    }
    const ids = vs.sources.filter((s) => /^[a-z0-9]+(-[a-z0-9]+)*$/.test(s));
    evidenceKnown(`value-sets/${vs.id}.json at /sources`, ids);
  }

  const definitions = rules.redFlags.definitions;
  for (const [name, criterion] of Object.entries(definitions)) {
    for (const vs of criterionValueSets(criterion)) valueSetKnown(`red-flags.json at /definitions/${name}`, vs);
    if (criterionUses(criterion).length > 0) problems.push(`red-flags.json at /definitions/${name}: a definition may not use another definition`);
  }
  const usesKnown = (where: string, c: Criterion) => {
    for (const name of criterionUses(c)) {
      if (!definitions[name]) problems.push(`${where}: unknown definition "${name}"; add it under "definitions" or fix the name`);
    }
  };

  // Value sets of opposite meaning share no code (a radiculopathy code must never make a motor deficit).
  for (const vs of rules.valueSets.values()) {
    for (const other of vs.disjointWith ?? []) {
      if (!rules.valueSets.has(other)) {
        problems.push(`value-sets/${vs.id}.json at /disjointWith: unknown value set "${other}"`);
        continue;
      }
      const pairs: Array<[string, string]> = [[vs.id, other], [other, vs.id]];
      for (const [a, b] of pairs) {
        for (const part of rules.valueSets.get(a)!.include) {
          const system = rules.codeSystems[part.system]?.uris[0] ?? part.system;
          for (const entry of part.codes ?? []) {
            const code = typeof entry === 'string' ? entry : entry.code;
            if (terminology.matchCoding(b, { system, code })) {
              problems.push(`value-sets/${a}.json: code ${code} is also in "${b}", a value set of opposite meaning; remove it from one of them`);
            }
          }
        }
      }
    }
  }

  const categoryIds = new Set<string>();
  rules.redFlags.categories.forEach((cat, i) => {
    if (categoryIds.has(cat.id)) problems.push(`red-flags.json at /categories/${i}/id: duplicate category "${cat.id}"`);
    categoryIds.add(cat.id);
    evidenceKnown(`red-flags.json at /categories/${i}/evidence`, cat.evidence);
  });
  const flagIds = new Set<string>();
  rules.redFlags.flags.forEach((flag, i) => {
    const where = `red-flags.json at /flags/${i}`;
    if (flagIds.has(flag.id)) problems.push(`${where}/id: duplicate flag "${flag.id}"`);
    flagIds.add(flag.id);
    if (!categoryIds.has(flag.category)) problems.push(`${where}/category: unknown category "${flag.category}"; use one of ${[...categoryIds].join(', ')}`);
    for (const vs of criterionValueSets(flag.criteria)) valueSetKnown(`${where}/criteria`, vs);
    usesKnown(`${where}/criteria`, flag.criteria);
    evidenceKnown(`${where}/evidence`, flag.evidence);
  });
  for (const cat of categoryIds) {
    if (!rules.redFlags.flags.some((f) => f.category === cat)) problems.push(`red-flags.json: category "${cat}" has no flag; add one or remove the category`);
  }

  const scope = rules.scope;
  scope.orders.forEach((o, i) => valueSetKnown(`scope.json at /orders/${i}/valueSet`, o.valueSet));
  for (const key of ['indicationValueSets', 'episodeValueSets'] as const) {
    scope[key].forEach((vs, i) => valueSetKnown(`scope.json at /${key}/${i}`, vs));
  }

  const recs = rules.recommendations;
  for (const code of RECOMMENDATION_CODES) {
    if (!recs.precedence.includes(code)) problems.push(`recommendations.json at /precedence: "${code}" is missing`);
    const reachable = recs.default === code || recs.rules.some((r) => r.event.type === code);
    if (!reachable) problems.push(`recommendations.json: no rule can reach "${code}"; add a rule whose event type is "${code}"`);
    const def = recs.recommendations[code];
    evidenceKnown(`recommendations.json at /recommendations/${code}/evidence`, def.evidence);
    def.suggestions.forEach((s, i) => {
      if (!rules.suggestions.suggestions[s]) problems.push(`recommendations.json at /recommendations/${code}/suggestions/${i}: unknown suggestion "${s}"; define it in suggestions.json`);
    });
    if (!rules.cards.source.topicDisplay[code]) problems.push(`cards/en.json at /source/topicDisplay: missing "${code}"`);
  }
  if (!rules.cards.source.topicDisplay['patient-conversation']) problems.push('cards/en.json at /source/topicDisplay: missing "patient-conversation"');
  if (recs.precedence.join() !== RECOMMENDATION_CODES.join()) {
    problems.push(`recommendations.json at /precedence: must be ${RECOMMENDATION_CODES.join(', ')} (the order of the recommendation codes the service promises, README: What it answers)`);
  }
  const urgentCategories = new Set(
    recs.rules.filter((r) => r.event.type === 'imaging-urgent').flatMap((r) => ruleLeaves(r.conditions).filter((l) => l.fact === 'foundCategories').map((l) => l.value)),
  );
  for (const cat of rules.redFlags.categories.filter((c) => c.tier === 'major')) {
    if (!urgentCategories.has(cat.id)) {
      problems.push(`recommendations.json: major category "${cat.id}" is in no rule that gives imaging-urgent; add it to the "major-red-flag-found" rule`);
    }
  }
  recs.rules.forEach((rule, i) => {
    for (const leaf of ruleLeaves(rule.conditions)) {
      if (leaf.fact !== 'foundCategories' && leaf.fact !== 'unknownCategories') continue;
      const values = Array.isArray(leaf.value) ? leaf.value : [leaf.value];
      for (const v of values) {
        if (typeof v !== 'string' || !categoryIds.has(v)) {
          problems.push(`recommendations.json at /rules/${i} (${rule.name}): unknown category ${JSON.stringify(v)}; use one of ${[...categoryIds].join(', ')}`);
        }
      }
    }
    if (rule.priority !== undefined) problems.push(`recommendations.json at /rules/${i}/priority: remove it; precedence decides which recommendation wins`);
  });

  for (const [id, s] of Object.entries(rules.suggestions.suggestions)) {
    const text = rules.cards.suggestions[id];
    if (!text) problems.push(`cards/en.json at /suggestions: missing text for suggestion "${id}"`);
    else if (text.descriptions.length !== s.actions.length) {
      problems.push(`cards/en.json at /suggestions/${id}/descriptions: needs one description per action (${s.actions.length})`);
    }
    s.actions.forEach((a, i) => {
      if (a.type === 'create' && !rules.suggestions.orders[a.order]) {
        problems.push(`suggestions.json at /suggestions/${id}/actions/${i}/order: unknown order template "${a.order}"`);
      }
    });
  }

  // Every summary must fit a card (< 140 characters) with the longest flag label and modality name, without truncation.
  const longestFlag = rules.redFlags.flags.map((f) => f.label).reduce((a, b) => (b.length > a.length ? b : a), '');
  const longestModality = Object.values(rules.cards.modalityNames).reduce((a, b) => (b.length > a.length ? b : a), '');
  const longestKinds = Object.values(rules.cards.dataKinds).join(', ');
  for (const code of RECOMMENDATION_CODES) {
    const template = rules.cards.recommendations[code]?.summary ?? '';
    const text = Mustache.render(template, { flags: longestFlag.toLowerCase(), modality: longestModality, unreadable: longestKinds }, {}, { escape: String });
    if (text.length > MAX_SUMMARY) {
      problems.push(`cards/en.json at /recommendations/${code}/summary: ${text.length} characters with the flag "${longestFlag}"; keep it under 140 (shorten the template or the flag label)`);
    }
  }

  const scripts = rules.scripts;
  if (!scripts.languages.has(scripts.defaultLanguage)) problems.push(`scripts/languages.json at /default: "${scripts.defaultLanguage}" is not a listed language`);
  evidenceKnown('scripts/languages.json at /evidence', scripts.evidence);
  evidenceKnown('scripts/languages.json at /followUpEvidence', scripts.followUpEvidence);
  evidenceKnown('data/prevalence.json at /evidence', [scripts.prevalence.evidence]);
  evidenceKnown('data/prognosis.json at /evidence', [...scripts.prognosis.evidence, ...Object.values(scripts.prognosis.sources)]);
  for (const name of Object.keys(scripts.prognosis.figures)) {
    if (!scripts.prognosis.sources[name]) problems.push(`data/prognosis.json at /sources: figure "${name}" needs an evidence id`);
  }
  const bands = scripts.prevalence.bands.map((b) => b.band);
  for (const [code, lang] of scripts.languages) {
    const where = `scripts/${code}`;
    if (lang.strings.language !== code) problems.push(`${where}/strings.json at /language: must be "${code}"`);
    if (lang.guide.language !== code) problems.push(`language/${code}.json at /language: must be "${code}"`);
    for (const key of Object.keys(lang.strings.checkedGroups)) {
      if (!categoryIds.has(key)) problems.push(`${where}/strings.json at /checkedGroups/${key}: unknown category`);
    }
    for (const band of bands) if (!lang.strings.ageWords[band]) problems.push(`${where}/strings.json at /ageWords: missing words for the age band "${band}"`);
    for (const [file, template] of [['conversation.md', lang.conversation], ['handout.md', lang.handout], ['followup.md', lang.followup]] as const) {
      let names: string[] = [];
      try {
        names = templateNames(template);
      } catch (err) {
        problems.push(`${where}/${file}: not a valid template (${(err as Error).message})`);
        continue;
      }
      for (const n of names) if (!TEMPLATE_NAMES.includes(n)) problems.push(`${where}/${file}: unknown placeholder {{${n}}}; use one of ${TEMPLATE_NAMES.join(', ')}`);
      for (const item of ['bladderBowel', 'saddle', 'legWeakness', 'fever']) {
        if (!template.includes(`{{strings.safetyNet.${item}}}`)) problems.push(`${where}/${file}: the safety net must show {{strings.safetyNet.${item}}}`);
      }
    }
  }
  return problems;
}
