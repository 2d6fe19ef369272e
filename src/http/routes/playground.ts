import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyPluginAsync } from 'fastify';
import type { Bundle } from 'fhir/r4.js';
import { marked } from 'marked';
import { Errors } from '../../errors.js';
import type { HookDeps } from '../../cds-hooks/handle-hook.js';
import type { ServiceCatalog } from '../../cds-hooks/service-catalog.js';
import { evaluateForPlayground, type PlaygroundOrder } from '../../playground/evaluate.js';
import { tokenMatches } from '../plugins/cds-auth.js';

export interface PlaygroundOptions {
  catalog: ServiceCatalog;
  deps: HookDeps;
  /** The page and its assets (playground/ at the project root). */
  assetsDir: string;
  /** Fixture patients to pick from (fixtures/scenarios), when present. */
  scenariosDir: string;
  requireToken: boolean;
  adminToken?: string;
}

const ASSETS: Record<string, string> = { 'index.html': 'text/html; charset=utf-8', 'app.js': 'text/javascript; charset=utf-8', 'style.css': 'text/css; charset=utf-8' };

/**
 * /playground for guideline teams: pick a fixture or paste a FHIR Bundle, pick an order, and see the cards as an EHR
 * shows them, the red flags table with the resources behind each, and the rules that fired. Served entirely by the service.
 */
export const playgroundRoutes: FastifyPluginAsync<PlaygroundOptions> = async (app, opts) => {
  const files = new Map<string, string>();
  for (const name of Object.keys(ASSETS)) files.set(name, await readFile(join(opts.assetsDir, name), 'utf8'));
  app.get('/playground', async (_request, reply) => reply.type(ASSETS['index.html']!).send(files.get('index.html')));
  app.get<{ Params: { file: string } }>('/playground/assets/:file', async (request, reply) => {
    const body = files.get(request.params.file);
    if (!body || request.params.file === 'index.html') throw Errors.notFound();
    return reply.type(ASSETS[request.params.file]!).send(body);
  });

  app.get('/playground/scenarios', async () => {
    const names = (await readdir(opts.scenariosDir).catch(() => [] as string[])).filter((f) => f.endsWith('.json')).sort();
    const scenarios = await Promise.all(
      names.map(async (f) => {
        const s = JSON.parse(await readFile(join(opts.scenariosDir, f), 'utf8')) as { id: string; description: string; patient: Bundle };
        return { id: s.id, description: s.description, patient: s.patient };
      }),
    );
    return { scenarios };
  });

  app.post<{ Body: { bundle: Bundle; order: PlaygroundOrder } }>(
    '/playground/evaluate',
    {
      schema: {
        body: {
          type: 'object',
          required: ['bundle', 'order'],
          properties: {
            bundle: { type: 'object', required: ['resourceType'], properties: { resourceType: { const: 'Bundle' }, entry: { type: 'array', maxItems: 5000 } } },
            order: { type: 'object', required: ['modality', 'lowBackPainReason'], properties: { modality: { enum: ['xray', 'ct', 'mri'] }, lowBackPainReason: { type: 'boolean' } } },
          },
        },
      },
      onRequest: async (request, reply) => {
        if (opts.requireToken && !tokenMatches(request, opts.adminToken)) {
          void reply.header('www-authenticate', 'Bearer');
          throw Errors.unauthorized();
        }
      },
    },
    async (request) => {
      const service = opts.catalog.get('lbp-imaging-order-sign') ?? [...opts.catalog.values()][0]!;
      const result = await evaluateForPlayground(request.body.bundle, request.body.order, service, opts.deps);
      const rules = opts.deps.rules;
      return {
        rulesVersion: rules.label,
        cards: result.response.cards.map((c) => ({ ...c, detailHtml: marked.parse(c.detail ?? '', { async: false, gfm: true }) })),
        systemActions: result.response.systemActions ?? [],
        assessments: result.assessments.map((a) => ({
          order: a.order.reference,
          recommendation: a.recommendation,
          firedRules: a.firedRules.map((name) => ({ name, description: rules.recommendations.rules.find((r) => r.name === name) && (rules.recommendations.rules.find((r) => r.name === name) as { description?: string }).description })),
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
          evidence: rules.recommendations.recommendations[a.recommendation].evidence.map((id) => rules.evidence.get(id)).filter(Boolean),
        })),
      };
    },
  );
};
