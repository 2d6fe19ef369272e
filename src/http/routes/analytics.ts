import type { FastifyPluginAsync } from 'fastify';
import { Errors } from '../../errors.js';
import type { Store } from '../../store/database.js';
import { analytics } from '../../store/analytics.js';
import { analyticsPage } from '../../analytics/page.js';
import { tokenMatches } from '../plugins/cds-auth.js';

export interface AnalyticsOptions {
  store: Store;
  rules: { version: string };
  /** With CDS_AUTH=jwt, both routes need `Authorization: Bearer ADMIN_TOKEN`; without an ADMIN_TOKEN they are refused. */
  requireToken: boolean;
  adminToken?: string;
}

/** GET /analytics/summary (CONTRACT section 2) and the /analytics page for guideline teams. */
export const analyticsRoutes: FastifyPluginAsync<AnalyticsOptions> = async (app, opts) => {
  app.addHook('onRequest', async (request, reply) => {
    if (opts.requireToken && !tokenMatches(request, opts.adminToken)) {
      void reply.header('www-authenticate', 'Bearer');
      throw Errors.unauthorized();
    }
  });
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
