import type { FastifyPluginAsync } from 'fastify';
import type { LoadedRules } from '../../rules/load-rules.js';
import { evidenceUrl } from '../../cards/evidence-links.js';

/** GET /evidence: the evidence library behind the cards (the cards' source.url points here). Public content only. */
export const evidenceRoutes: FastifyPluginAsync<{ rules: LoadedRules }> = async (app, opts) => {
  const body = {
    rules: { name: opts.rules.name, version: opts.rules.version, hash: opts.rules.hash },
    evidence: [...opts.rules.evidence.values()].map((e) => ({ ...e, link: evidenceUrl(e) })),
  };
  app.get('/evidence', async () => body);
};
