import type { LoadedRules } from '../rules/load-rules.js';
import type { Assessment } from '../facts/types.js';
import type { CdsCard, CdsLink } from '../cds-hooks/types.js';
import { ageBand, chooseLanguage, conversationScript } from '../scripts/script-view.js';
import type { CardContext } from './card-context.js';
import { evidenceSection } from './evidence-links.js';
import { RECOMMENDATION_SYSTEM } from './recommendation-card.js';
import { fill } from './template.js';

/** The handout for a language and age band: no patient data in the URL. */
export function handoutUrl(baseUrl: string, language: string, band: string | undefined): string {
  return `${baseUrl}/handouts/${encodeURIComponent(language)}/${band ?? 'any'}`;
}

/** The patient-conversation card: the script in the patient's language, fitted to this call's facts, with the handout. */
export function conversationCard(a: Assessment, rules: LoadedRules, ctx: CardContext): CdsCard {
  const scripts = rules.scripts;
  const language = chooseLanguage(a.facts.languages, scripts);
  const script = conversationScript(
    {
      age: a.facts.age,
      episodeDays: a.facts.episode.durationDays,
      checkedCategories: a.facts.categories.filter((c) => c.status === 'not-found').map((c) => c.id),
      recommendation: a.recommendation,
    },
    language,
    scripts,
  );
  const band = ageBand(a.facts.age, scripts.prevalence)?.band;
  const handouts: CdsLink[] = [language, ...[...scripts.languages.values()].filter((l) => l.code !== language.code)].map((l) => ({
    label: fill(l.strings.handoutLink, { name: l.name }),
    url: handoutUrl(ctx.baseUrl, l.code, band),
    type: 'absolute' as const,
  }));
  const evidence = evidenceSection(scripts.evidence, rules.evidence);
  const others = handouts.slice(1).map((h) => `[${h.label}](${h.url})`).join(' · ');
  const detail = [
    script,
    '',
    `[${handouts[0]!.label}](${handouts[0]!.url})`,
    ...(others ? ['', `${language.strings.otherLanguages} ${others}`] : []),
    '',
    `**${language.strings.evidenceHeading}**`,
    ...evidence.lines,
  ].join('\n');

  return {
    uuid: ctx.newId(),
    summary: language.strings.summary,
    detail,
    indicator: 'info',
    source: {
      label: rules.cards.source.label,
      url: fill(rules.cards.source.url, { baseUrl: ctx.baseUrl }),
      topic: {
        system: RECOMMENDATION_SYSTEM,
        code: 'patient-conversation',
        display: rules.cards.source.topicDisplay['patient-conversation'] ?? 'patient-conversation',
      },
    },
    links: [...handouts, ...evidence.links],
    extension: { 'lbp-imaging-cds': { order: a.order.reference, rulesVersion: ctx.rulesVersion, language: language.code, languageReviewed: language.reviewed } },
  };
}
