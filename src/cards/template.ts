import Mustache from 'mustache';

/** Fills a rules template. Cards are markdown, not HTML, so nothing is HTML-escaped. */
export function fill(template: string, view: Record<string, unknown>): string {
  return Mustache.render(template, view, {}, { escape: (s: unknown) => String(s) }).replace(/\s+$/g, '');
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
