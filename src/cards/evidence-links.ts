import type { EvidenceDef } from '../rules/types.js';
import type { CdsLink } from '../cds-hooks/types.js';

/** Parentheses (common in DOIs) are percent-encoded so the URL survives every markdown renderer. */
export function evidenceUrl(e: EvidenceDef): string | undefined {
  const url = e.doi ? `https://doi.org/${e.doi}` : e.url;
  return url?.replaceAll('(', '%28').replaceAll(')', '%29');
}

/** The evidence behind a card: markdown lines for the detail, and the same links for `links` (not every client renders markdown links). */
export function evidenceSection(ids: string[], evidence: Map<string, EvidenceDef>): { lines: string[]; links: CdsLink[] } {
  const lines: string[] = [];
  const links: CdsLink[] = [];
  for (const id of [...new Set(ids)]) {
    const e = evidence.get(id);
    if (!e) continue;
    const url = evidenceUrl(e);
    lines.push(url ? `- [${e.short}](${url}): ${e.finding}` : `- ${e.short}: ${e.finding}`);
    if (url) links.push({ label: e.short, url, type: 'absolute' });
  }
  return { lines, links };
}
