import type { FastifyPluginAsync } from 'fastify';
import type { Metrics } from '../../observability/metrics.js';

/** GET /metrics: Prometheus text format; no auth and no PHI (labels are codes and outcomes). */
export const metricsRoutes: FastifyPluginAsync<{ metrics: Metrics }> = async (app, opts) => {
  app.get('/metrics', async (_request, reply) => {
    return reply.type(opts.metrics.registry.contentType).send(await opts.metrics.registry.metrics());
  });
};
