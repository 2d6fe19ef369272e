import type { ServiceRequest } from 'fhir/r4.js';
import type { LoadedRules } from '../rules/load-rules.js';
import type { Indicator } from '../rules/types.js';
import type { Assessment, CategoryResult, FindingSource, RedFlagResult } from '../facts/types.js';
import type { CdsAction, CdsCard, CdsSuggestion } from '../cds-hooks/types.js';
import type { CardContext } from './card-context.js';
import { evidenceSection } from './evidence-links.js';
import { withoutEmpty } from '../fhir/without-empty.js';
import { escapeMarkdown, fill, fitSummary, lowerFirst } from './template.js';

export const RECOMMENDATION_SYSTEM = 'urn:lbp-imaging-cds:recommendation';
export const OVERRIDE_REASON_SYSTEM = 'urn:lbp-imaging-cds:override-reason';

const INDICATOR_ORDER: Indicator[] = ['info', 'warning', 'critical'];

/** The recommendation's indicator, raised by any found category that asks for more (cauda equina is critical). */
function indicatorFor(a: Assessment, rules: LoadedRules): Indicator {
  let level = INDICATOR_ORDER.indexOf(rules.recommendations.recommendations[a.recommendation].indicator);
  for (const cat of a.facts.categories) {
    const wanted = cat.status === 'found' ? rules.categoryById.get(cat.id)?.indicator : undefined;
    if (wanted) level = Math.max(level, INDICATOR_ORDER.indexOf(wanted));
  }
  return INDICATOR_ORDER[level]!;
}

/** Found flags, in the order of their categories in red-flags.json (most serious first): the summary names as many as fit. */
function foundFlags(a: Assessment): RedFlagResult[] {
  const rank = new Map(a.facts.categories.map((c, i) => [c.id, i]));
  return a.facts.redFlags.filter((f) => f.status === 'found').sort((x, y) => (rank.get(x.category) ?? 0) - (rank.get(y.category) ?? 0));
}

/** A finding in words, from rules/cards; record text is escaped, never markup. */
function describeSource(source: FindingSource, rules: LoadedRules): string {
  const view: Record<string, unknown> = {
    ...source,
    name: escapeMarkdown(source.name ?? rules.cards.sources.unnamed),
    code: source.code ? escapeMarkdown(source.code) : undefined,
    value: source.value ? escapeMarkdown(source.value) : undefined,
  };
  return fill(rules.cards.sources[source.kind], view);
}

function categoryLine(cat: CategoryResult, rules: LoadedRules): string {
  const text = rules.cards.detail;
  const status = text.status[cat.status];
  if (cat.status === 'found') {
    const shown = cat.flags
      .filter((f) => f.status === 'found')
      .map((f) => {
        // A long record (thousands of refills) must not make a long card: a few entries, then how many more.
        const max = text.maxSourcesShown;
        const from = [...new Set(f.sources.slice(0, max * 4).map((s) => describeSource(s, rules)))];
        const more = f.sources.length > max ? fill(rules.cards.summaryMore, { n: f.sources.length - max }) : '';
        return from.length > 0 ? `${f.label} (${from.slice(0, max).join('; ')}${more})` : f.label;
      });
    return `- ${cat.label}: ${status}: ${shown.join('; ')}`;
  }
  if (cat.status === 'unknown') {
    const kinds = [...new Set(cat.flags.flatMap((f) => f.unreadable))].map((k) => rules.cards.dataKinds[k] ?? k);
    const why = kinds.length > 0 ? fill(text.unreadableNote, { kinds: kinds.join(', ') }) : text.undatedNote;
    return `- ${cat.label}: ${status}. ${why}`;
  }
  return `- ${cat.label}: ${status}`;
}

function askList(a: Assessment, rules: LoadedRules): string[] {
  const asks = rules.redFlags.flags
    .filter((flag) => flag.ask && a.facts.redFlags.find((r) => r.id === flag.id)?.status !== 'found')
    .map((flag) => flag.ask as string);
  return [...new Set([...rules.redFlags.alwaysAsk, ...asks])];
}

function suggestionsFor(a: Assessment, rules: LoadedRules, ctx: CardContext, view: Record<string, unknown>): CdsSuggestion[] {
  const out: CdsSuggestion[] = [];
  for (const id of rules.recommendations.recommendations[a.recommendation].suggestions) {
    const def = rules.suggestions.suggestions[id];
    const text = rules.cards.suggestions[id];
    if (!def || !text) continue;
    if (def.notForModalities?.includes(a.order.modality)) continue;
    const actions: CdsAction[] = def.actions.map((action, i) => {
      const description = fill(text.descriptions[i] ?? text.label, view);
      if (action.type === 'delete') return { type: 'delete', description, resourceId: a.order.reference };
      const template = rules.suggestions.orders[action.order]!;
      const reasonCode = withoutEmpty(a.order.resource.reasonCode);
      const resource = {
        ...structuredClone(template),
        id: ctx.newId(),
        subject: { reference: `Patient/${ctx.patientId}` },
        ...(ctx.encounterId ? { encounter: { reference: `Encounter/${ctx.encounterId}` } } : {}),
        ...(/^(Practitioner|PractitionerRole)\//.test(ctx.userId) ? { requester: { reference: ctx.userId } } : {}),
        ...(reasonCode ? { reasonCode } : {}),
      } as ServiceRequest;
      return { type: 'create', description, resource };
    });
    const uuid = ctx.newId();
    ctx.noteSuggestion?.(uuid, id);
    out.push({ label: fill(text.label, view), uuid, actions });
  }
  return out;
}

/** The one recommendation card for one in-scope order. */
export function recommendationCard(a: Assessment, rules: LoadedRules, ctx: CardContext): CdsCard {
  const def = rules.recommendations.recommendations[a.recommendation];
  const text = rules.cards;
  const modality = text.modalityNames[a.order.modality];
  const unreadable = a.facts.unreadable.map((k) => text.dataKinds[k] ?? k).join(', ');
  const view = { modality, unreadable, notMri: a.order.modality !== 'mri', baseUrl: ctx.baseUrl };

  const flagLabels = foundFlags(a).map((f) => lowerFirst(f.label));
  const summary = fitSummary(text.recommendations[a.recommendation].summary, view, 'flags', flagLabels, (n) => fill(text.summaryMore, { n }));

  const found = a.facts.categories.filter((c) => c.status === 'found');
  const advice = found.map((c) => {
    return `- ${c.label}: ${rules.categoryById.get(c.id)?.imagingAdvice ?? ''}`;
  });
  const evidenceIds = [...def.evidence, ...found.flatMap((c) => rules.categoryById.get(c.id)?.evidence ?? [])];
  const evidence = evidenceSection(evidenceIds, rules.evidence);

  const parts: string[] = [fill(text.recommendations[a.recommendation].advice, view), '', `**${text.detail.checkedHeading}**`];
  parts.push(...a.facts.categories.map((c) => categoryLine(c, rules)));
  if (def.askAtBedside) {
    parts.push('', `**${text.detail.askHeading}**`, ...askList(a, rules).map((q) => `- ${q}`));
  }
  if (advice.length > 0) parts.push('', `**${text.detail.adviceHeading}**`, ...advice);
  const sb = a.facts.startBack;
  if (sb) {
    const group = text.startBack.groups[sb.group];
    parts.push('', fill(text.startBack.line, { date: sb.authored ?? '', groupName: group.name, advice: group.advice }));
  }
  parts.push('', `**${text.detail.evidenceHeading}**`, ...evidence.lines);

  const suggestions = suggestionsFor(a, rules, ctx, view);
  const card: CdsCard = {
    uuid: ctx.newId(),
    summary,
    detail: parts.join('\n'),
    indicator: indicatorFor(a, rules),
    source: {
      label: text.source.label,
      url: fill(text.source.url, view),
      topic: { system: RECOMMENDATION_SYSTEM, code: a.recommendation, display: text.source.topicDisplay[a.recommendation] ?? a.recommendation },
    },
    links: evidence.links,
    extension: {
      'lbp-imaging-cds': {
        order: a.order.reference,
        rulesVersion: ctx.rulesVersion,
        ...(a.firedRules.length > 0 ? { firedRules: a.firedRules } : {}),
      },
    },
  };
  if (suggestions.length > 0) {
    card.suggestions = suggestions;
    card.selectionBehavior = 'at-most-one';
  }
  if (def.advisesAgainstImaging) {
    card.overrideReasons = text.overrideReasons.map((r) => ({ system: OVERRIDE_REASON_SYSTEM, code: r.code, display: r.display }));
  }
  return card;
}
