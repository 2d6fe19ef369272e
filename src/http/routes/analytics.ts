import type { FastifyPluginAsync } from 'fastify';
import type { Store } from '../../store/database.js';
import { analytics } from '../../store/analytics.js';
import { analyticsPage } from '../../analytics/page.js';

export interface AnalyticsOptions {
  store: Store;
  rules: { version: string };
}

/** GET /analytics/summary and the /analytics page for guideline teams; registered in the admin scope, which authenticates. */
export const analyticsRoutes: FastifyPluginAsync<AnalyticsOptions> = async (app, opts) => {
  app.get<{ Querystring: { since?: string } }>(
    '/analytics/summary',
    { schema: { querystring: { type: 'object', properties: { since: { type: 'string', format: 'date' } } } } },
    async (request) => {
      const { rulesVersion, byRecommendation } = await analytics(opts.store, opts.rules.version, request.query.since);
      return { rulesVersion, byRecommendation };
    },
  );
  app.get('/analytics', async (_request, reply) => {
    const detail = await analytics(opts.store, opts.rules.version);
    return reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(analyticsPage(detail));
  });
};
