import type { FastifyPluginAsync } from 'fastify';
import type { ServiceCatalog } from '../../cds-hooks/service-catalog.js';

/** GET /cds-services: the service definitions from cds-hooks/, as CDS Hooks 2.0 discovery. */
export const discoveryRoutes: FastifyPluginAsync<{ catalog: ServiceCatalog; rulesVersion: string }> = async (app, opts) => {
  const services = [...opts.catalog.values()].map(({ definition }) => ({
    ...definition,
    extension: { ...(definition.extension ?? {}), 'lbp-imaging-cds': { rulesVersion: opts.rulesVersion } },
  }));
  const body = JSON.stringify({ services });
  app.get('/cds-services', async (_request, reply) => reply.type('application/json; charset=utf-8').send(body));
};
