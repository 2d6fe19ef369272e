import type { FastifyPluginAsync } from 'fastify';
import type { LoadedRules } from '../../rules/load-rules.js';
import { evidenceUrl } from '../../cards/evidence-links.js';

/** GET /evidence: the evidence library behind the cards (the cards' source.url points here). Public content only. */
export const evidenceRoutes: FastifyPluginAsync<{ rules: { current: LoadedRules } }> = async (app, opts) => {
  app.get('/evidence', async () => {
    const rules = opts.rules.current;
    return {
      rules: { name: rules.name, version: rules.version, hash: rules.hash },
      evidence: [...rules.evidence.values()].map((e) => ({ ...e, link: evidenceUrl(e) })),
    };
  });
};
