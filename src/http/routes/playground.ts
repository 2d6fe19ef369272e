import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyPluginAsync } from 'fastify';
import type { Bundle } from 'fhir/r4.js';
import { Errors } from '../../errors.js';
import type { HookDeps } from '../../cds-hooks/handle-hook.js';
import type { ServiceCatalog } from '../../cds-hooks/service-catalog.js';
import { evaluateForPlayground, type PlaygroundOrder } from '../../playground/evaluate.js';
import { changesBetween, playgroundAnswer } from '../../playground/answer.js';
import { RulesCopy } from '../../playground/rules-copy.js';

export interface PlaygroundOptions {
  catalog: ServiceCatalog;
  deps: HookDeps;
  /** The page and its assets (playground/ at the project root). */
  assetsDir: string;
  /** Fixture patients to pick from (fixtures/scenarios), when present. */
  scenariosDir: string;
  /** PLAYGROUND_COMPARE_RULES_DIR: an edited copy of the rules, read afresh for each evaluation and shown beside the live. */
  compareRulesDir?: string;
}

const ASSETS: Record<string, string> = { 'index.html': 'text/html; charset=utf-8', 'app.js': 'text/javascript; charset=utf-8', 'style.css': 'text/css; charset=utf-8' };

/**
 * /playground for guideline teams: pick a fixture or paste a FHIR Bundle, pick an order, and see the cards as an EHR
 * shows them, the red flags table with the resources behind each, and the rules that fired. Served entirely by the service.
 */
export const playgroundRoutes: FastifyPluginAsync<PlaygroundOptions> = async (app, opts) => {
  const copy = opts.compareRulesDir ? new RulesCopy(opts.compareRulesDir) : undefined;
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
    },
    async (request) => {
      const service = opts.catalog.get('lbp-imaging-order-sign') ?? [...opts.catalog.values()][0]!;
      const { bundle, order } = request.body;
      // Read once: a reload while this runs must not mix two versions.
      const liveRules = opts.deps.rules;
      const live = playgroundAnswer(await evaluateForPlayground(bundle, order, service, { ...opts.deps, rules: liveRules }), liveRules);
      if (!copy) return live;
      const loaded = await copy.rules();
      if ('problems' in loaded) return { ...live, compare: { rulesDir: copy.dir, problems: loaded.problems } };
      const answer = playgroundAnswer(await evaluateForPlayground(bundle, order, service, { ...opts.deps, rules: loaded }), loaded);
      return { ...live, compare: { rulesDir: copy.dir, ...answer, changes: changesBetween(live, answer) } };
    },
  );
};
