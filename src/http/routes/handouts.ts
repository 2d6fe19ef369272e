import type { FastifyPluginAsync } from 'fastify';
import { marked } from 'marked';
import { Errors } from '../../errors.js';
import type { LoadedRules } from '../../rules/load-rules.js';
import { scriptView } from '../../scripts/script-view.js';
import { renderMarkdown } from '../../cards/template.js';

/**
 * GET /handouts/{language}/{ageBand}: the patient handout, printable on one or two pages and readable on a phone.
 * The URL holds only a language and an age band (or "any"): no patient data. Served without authentication, like any leaflet.
 */
/** Every page of one rules version: languages x age bands, rendered once so the route is a lookup. */
function renderPages(rules: LoadedRules): Map<string, string> {
  const { scripts } = rules;
  const pages = new Map<string, string>();
  for (const language of scripts.languages.values()) {
    for (const band of [...scripts.prevalence.bands.map((b) => b.band), 'any']) {
      const sample = scripts.prevalence.bands.find((b) => b.band === band);
      const view = scriptView({ age: sample?.from, checkedCategories: [] }, language, scripts);
      const body = marked.parse(renderMarkdown(language.handout, view), { async: false, gfm: true }) as string;
      pages.set(`${language.code}/${band}`, page(language.code, language.strings.handoutTitle, body));
    }
  }
  return pages;
}

export const handoutRoutes: FastifyPluginAsync<{ rules: { current: LoadedRules } }> = async (app, opts) => {
  let cache = { hash: opts.rules.current.hash, pages: renderPages(opts.rules.current) };
  app.get<{ Params: { language: string; band: string } }>('/handouts/:language/:band', async (request, reply) => {
    if (cache.hash !== opts.rules.current.hash) cache = { hash: opts.rules.current.hash, pages: renderPages(opts.rules.current) };
    const html = cache.pages.get(`${request.params.language}/${request.params.band}`);
    if (!html) throw Errors.notFound();
    return reply.type('text/html; charset=utf-8').header('cache-control', 'public, max-age=3600').send(html);
  });
};

function page(lang: string, title: string, body: string): string {
  const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
  return `<!doctype html>
<html lang="${esc(lang)}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;font-size:1.25rem;line-height:1.55;max-width:40rem;margin:0 auto;padding:1rem;color:#111}
h1{font-size:1.8rem;line-height:1.25}h2{font-size:1.35rem;margin-top:1.4rem}li{margin:.3rem 0}
@media print{body{font-size:13pt;max-width:none;padding:0}h2{break-after:avoid}}
</style></head><body>
${body}
</body></html>`;
}
