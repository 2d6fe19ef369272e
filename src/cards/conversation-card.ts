import type { LoadedRules } from '../rules/load-rules.js';
import type { Assessment } from '../facts/types.js';
import type { CdsCard } from '../cds-hooks/types.js';
import type { CardContext } from './card-context.js';
import { evidenceSection } from './evidence-links.js';
import { RECOMMENDATION_SYSTEM } from './recommendation-card.js';
import { fill } from './template.js';

function joinWords(items: string[], and: string): string {
  if (items.length <= 1) return items.join('');
  return `${items.slice(0, -1).join(', ')} ${and} ${items[items.length - 1]}`;
}

/** The Brinjikji 2015 band at or below the patient's age (the youngest band for younger patients). */
function prevalenceFor(age: number | undefined, bands: LoadedRules['conversation']['prevalence']['bands']) {
  if (age === undefined || bands.length === 0) return undefined;
  const sorted = [...bands].sort((a, b) => a.age - b.age);
  const band = [...sorted].reverse().find((b) => age >= b.age) ?? sorted[0]!;
  return { inTen: Math.round(band.percent / 10), decade: band.decade };
}

/** The patient-conversation card: the script, fitted to this patient's facts. */
export function conversationCard(a: Assessment, rules: LoadedRules, ctx: CardContext): CdsCard {
  const script = rules.conversation;
  const checked = a.facts.categories
    .filter((c) => c.status === 'not-found' && script.checkedGroups[c.id])
    .map((c) => script.checkedGroups[c.id]!);
  const days = a.facts.episode.durationDays;
  const prognosis =
    script.prognosis.find((p) => p.maxDays !== undefined && days !== undefined && days <= p.maxDays) ??
    (days === undefined ? script.prognosis[0] : script.prognosis.find((p) => p.maxDays === undefined)) ??
    script.prognosis[0]!;
  const view = {
    checked: joinWords(checked, script.and),
    prevalence: prevalenceFor(a.facts.age, script.prevalence.bands),
    prognosis: prognosis.text,
    reviewWeeks: script.reviewWeeks,
  };

  const lines: string[] = [`**${script.title}**`, '', script.intro, ''];
  for (const section of script.sections) {
    const said = section.lines.map((l) => fill(l, view)).filter((l) => l.length > 0);
    if (said.length === 0) continue;
    lines.push(`**${section.heading}**`, ...said.map((l) => `- "${l}"`), '');
  }
  const evidence = evidenceSection(script.evidence, rules.evidence);
  lines.push(`**${rules.cards.detail.evidenceHeading}**`, ...evidence.lines);

  return {
    uuid: ctx.newId(),
    summary: script.summary,
    detail: lines.join('\n'),
    indicator: script.indicator,
    source: {
      label: rules.cards.source.label,
      url: fill(rules.cards.source.url, { baseUrl: ctx.baseUrl }),
      topic: {
        system: RECOMMENDATION_SYSTEM,
        code: 'patient-conversation',
        display: rules.cards.source.topicDisplay['patient-conversation'] ?? 'patient-conversation',
      },
    },
    links: evidence.links,
    extension: { 'lbp-imaging-cds': { order: a.order.reference, rulesVersion: ctx.rulesVersion, language: script.language } },
  };
}
