import type { AnalyticsDetail } from '../store/analytics.js';

/** The /analytics page: tables and charts drawn here as SVG (no script, no CDN), readable on paper and on a phone. */
const esc = (s: unknown) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
const COLORS = { cards: '#4c72b0', accepted: '#55a868', overridden: '#c44e52' } as const;

function bars(rows: Array<{ label: string; values: Record<keyof typeof COLORS, number> }>, title: string): string {
  if (rows.length === 0) return `<p>No data yet.</p>`;
  const max = Math.max(1, ...rows.flatMap((r) => Object.values(r.values)));
  const rowH = 54;
  const width = 720;
  const labelW = 230;
  const scale = (v: number) => Math.round(((width - labelW - 60) * v) / max);
  const body = rows
    .map((r, i) => {
      const y = i * rowH + 10;
      const series = (Object.keys(COLORS) as Array<keyof typeof COLORS>)
        .map((k, j) => `<rect x="${labelW}" y="${y + j * 14}" width="${scale(r.values[k])}" height="12" fill="${COLORS[k]}"><title>${esc(k)}: ${r.values[k]}</title></rect><text x="${labelW + scale(r.values[k]) + 4}" y="${y + j * 14 + 10}" font-size="11">${r.values[k]}</text>`)
        .join('');
      return `<text x="0" y="${y + 24}" font-size="13">${esc(r.label)}</text>${series}`;
    })
    .join('');
  const legend = (Object.keys(COLORS) as Array<keyof typeof COLORS>)
    .map((k, i) => `<rect x="${labelW + i * 110}" y="${rows.length * rowH + 14}" width="12" height="12" fill="${COLORS[k]}"/><text x="${labelW + i * 110 + 16}" y="${rows.length * rowH + 24}" font-size="12">${k}</text>`)
    .join('');
  return `<svg role="img" aria-label="${esc(title)}" viewBox="0 0 ${width} ${rows.length * rowH + 40}" width="100%">${body}${legend}</svg>`;
}

function table(head: string[], rows: Array<Array<string | number>>): string {
  return `<table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('')}</tbody></table>`;
}

export function analyticsPage(a: AnalyticsDetail): string {
  const recs = Object.entries(a.byRecommendation).map(([code, s]) => ({ label: code, values: { cards: s.cards, accepted: s.accepted, overridden: s.overridden } }));
  const reasons = Object.entries(a.byRecommendation).flatMap(([code, s]) => Object.entries(s.overrideReasons).map(([reason, n]) => [code, reason, n] as [string, string, number]));
  const days = a.byDay.slice(-30).map((d) => ({ label: d.day, values: { cards: d.cards, accepted: d.accepted, overridden: d.overridden } }));
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>lbp-imaging-cds analytics</title>
<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:1rem auto;padding:0 1rem;color:#222}table{border-collapse:collapse;margin:.5rem 0 1.5rem}td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:left}th{background:#f3f3f3}h2{margin-top:2rem}</style>
</head><body>
<h1>Card outcomes</h1>
<p>Rules version ${esc(a.rulesVersion)}. Counts are cards shown, and the latest feedback for each card (accepted or overridden); ignored cards send no feedback.</p>
<h2>By recommendation</h2>
${bars(recs, 'Cards, accepted and overridden by recommendation')}
${table(['recommendation', 'cards', 'accepted', 'overridden'], recs.map((r) => [r.label, r.values.cards, r.values.accepted, r.values.overridden]))}
<h2>Override reasons</h2>
${reasons.length ? table(['recommendation', 'reason', 'count'], reasons) : '<p>No overrides yet.</p>'}
<h2>By day (last 30 days with cards)</h2>
${bars(days, 'Cards by day')}
<h2>By rule</h2>
${table(['rule', 'cards', 'accepted', 'overridden'], a.byRule.map((r) => [r.rule, r.cards, r.accepted, r.overridden]))}
<h2>Suggestions</h2>
${table(['suggestion', 'offered', 'accepted', 'acceptance'], a.bySuggestion.map((s) => [s.suggestion, s.offered, s.accepted, s.offered ? `${Math.round((100 * s.accepted) / s.offered)}%` : '']))}
</body></html>`;
}
