import { marked } from 'marked';
import type { HookResult } from '../cds-hooks/handle-hook.js';
import type { CdsAction, CdsCard } from '../cds-hooks/types.js';
import type { LoadedRules } from '../rules/load-rules.js';
import type { EvidenceDef } from '../rules/types.js';
import type { FlagStatus } from '../facts/types.js';

/** What the playground shows for one rules version: the cards as an EHR gets them, and the facts and rules behind them. */
export interface PlaygroundAnswer {
  rulesVersion: string;
  cards: Array<CdsCard & { detailHtml: string }>;
  systemActions: CdsAction[];
  assessments: Array<{
    order: string;
    recommendation: string;
    firedRules: Array<{ name: string; description?: string }>;
    guardNote?: string;
    age?: number;
    episode: { onset?: string; durationDays?: number };
    unreadable: string[];
    categories: Array<{
      id: string;
      label: string;
      status: FlagStatus;
      flags: Array<{ id: string; label: string; status: FlagStatus; sources: unknown[]; unreadable: string[] }>;
    }>;
    evidence: EvidenceDef[];
  }>;
}

export function playgroundAnswer(result: HookResult, rules: LoadedRules): PlaygroundAnswer {
  const describe = (name: string) => (rules.recommendations.rules.find((r) => r.name === name) as { description?: string } | undefined)?.description;
  return {
    rulesVersion: rules.label,
    cards: result.response.cards.map((c) => ({ ...c, detailHtml: marked.parse(c.detail ?? '', { async: false, gfm: true }) as string })),
    systemActions: result.response.systemActions ?? [],
    assessments: result.assessments.map((a) => ({
      order: a.order.reference,
      recommendation: a.recommendation,
      firedRules: a.firedRules.map((name) => ({ name, description: describe(name) })),
      guardNote: a.guardNote,
      age: a.facts.age,
      episode: a.facts.episode,
      unreadable: a.facts.unreadable,
      categories: a.facts.categories.map((c) => ({
        id: c.id,
        label: c.label,
        status: c.status,
        flags: c.flags.map((f) => ({ id: f.id, label: f.label, status: f.status, sources: f.sources, unreadable: f.unreadable })),
      })),
      evidence: rules.recommendations.recommendations[a.recommendation].evidence.map((id) => rules.evidence.get(id)).filter((e): e is EvidenceDef => Boolean(e)),
    })),
  };
}

/** One way the edited copy answers differently from the live rules, for the same patient and order. */
export type PlaygroundChange =
  | { kind: 'recommendation'; order: string; live: string; copy: string }
  | { kind: 'rule-fired'; order: string; rule: string; in: 'live' | 'copy' }
  | { kind: 'category'; order: string; category: string; live: FlagStatus | 'absent'; copy: FlagStatus | 'absent' }
  | { kind: 'card-summary'; index: number; live?: string; copy?: string };

/** Where two answers part: recommendations, rules fired, red-flag categories, and the cards' summaries. */
export function changesBetween(live: PlaygroundAnswer, copy: PlaygroundAnswer): PlaygroundChange[] {
  const changes: PlaygroundChange[] = [];
  const copyByOrder = new Map(copy.assessments.map((a) => [a.order, a]));
  for (const l of live.assessments) {
    const c = copyByOrder.get(l.order);
    if (!c) continue;
    if (l.recommendation !== c.recommendation) changes.push({ kind: 'recommendation', order: l.order, live: l.recommendation, copy: c.recommendation });
    const liveRules = new Set(l.firedRules.map((r) => r.name));
    const copyRules = new Set(c.firedRules.map((r) => r.name));
    for (const rule of liveRules) if (!copyRules.has(rule)) changes.push({ kind: 'rule-fired', order: l.order, rule, in: 'live' });
    for (const rule of copyRules) if (!liveRules.has(rule)) changes.push({ kind: 'rule-fired', order: l.order, rule, in: 'copy' });
    const copyCategories = new Map(c.categories.map((cat) => [cat.id, cat]));
    for (const cat of l.categories) {
      const other = copyCategories.get(cat.id);
      if (other?.status !== cat.status) changes.push({ kind: 'category', order: l.order, category: cat.label, live: cat.status, copy: other?.status ?? 'absent' });
      copyCategories.delete(cat.id);
    }
    for (const cat of copyCategories.values()) changes.push({ kind: 'category', order: l.order, category: cat.label, live: 'absent', copy: cat.status });
  }
  for (let i = 0; i < Math.max(live.cards.length, copy.cards.length); i++) {
    if (live.cards[i]?.summary !== copy.cards[i]?.summary) changes.push({ kind: 'card-summary', index: i, live: live.cards[i]?.summary, copy: copy.cards[i]?.summary });
  }
  return changes;
}
