import Mustache from 'mustache';

// Cards are markdown, not HTML: nothing is HTML-escaped.
const noEscape = { escape: (s: unknown) => String(s) };

/** Fills a one-line rules template (a summary, a label). */
export function fill(template: string, view: Record<string, unknown>): string {
  return Mustache.render(template, view, {}, noEscape).replace(/\s+$/g, '');
}

/** Fills a markdown template (a script, a handout): blank lines from empty sections fold to one. */
export function renderMarkdown(template: string, view: Record<string, unknown>): string {
  return Mustache.render(template, view, {}, noEscape).replace(/\n{3,}/g, '\n\n').trim();
}

/** A template's tokens (mustache caches the parse, so rendering it later costs no second parse). */
export function parseTemplate(template: string): unknown[] {
  return Mustache.parse(template);
}

/** CDS Hooks: "one-sentence, <140-character summary". */
export const MAX_SUMMARY = 139;

/**
 * Fills a summary template with a list, dropping list items until it fits,
 * so the most important item (first) always survives.
 */
export function fitSummary(template: string, view: Record<string, unknown>, listKey: string, items: string[], more: (n: number) => string): string {
  for (let keep = items.length; keep >= 1; keep--) {
    const shown = items.slice(0, keep).join(', ') + (keep < items.length ? more(items.length - keep) : '');
    const text = fill(template, { ...view, [listKey]: shown });
    if (text.length <= MAX_SUMMARY) return text;
  }
  const text = fill(template, { ...view, [listKey]: items[0] ?? '' });
  return text.length <= MAX_SUMMARY ? text : `${text.slice(0, MAX_SUMMARY - 1).trimEnd()}…`;
}

export function lowerFirst(s: string): string {
  return s.length > 1 && s[1] === s[1]?.toLowerCase() ? s[0]!.toLowerCase() + s.slice(1) : s;
}

/** Record text shown in markdown is data, not markup: links, images, emphasis and HTML in it are escaped. */
export function escapeMarkdown(text: string): string {
  return text.replace(/[\\`*_{}[\]()#+!|<>~]/g, (c) => `\\${c}`).replace(/\s+/g, ' ');
}
