import type { FastifyPluginAsync } from 'fastify';
import type { ServiceCatalog } from '../../cds-hooks/service-catalog.js';

/** GET /cds-services: the service definitions from cds-hooks/, as CDS Hooks 2.0 discovery. */
export const discoveryRoutes: FastifyPluginAsync<{ catalog: ServiceCatalog; rules: { version: string } }> = async (app, opts) => {
  // The body changes only with the rules version.
  let cached = { version: '', body: '' };
  app.get('/cds-services', async (_request, reply) => {
    if (cached.version !== opts.rules.version) {
      const services = [...opts.catalog.values()].map(({ definition }) => ({
        ...definition,
        extension: { ...(definition.extension ?? {}), 'lbp-imaging-cds': { rulesVersion: opts.rules.version } },
      }));
      cached = { version: opts.rules.version, body: JSON.stringify({ services }) };
    }
    return reply.type('application/json; charset=utf-8').send(cached.body);
  });
};
