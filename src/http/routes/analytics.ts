import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Store } from '../../store/database.js';
import { analytics, type AnalyticsDetail } from '../../store/analytics.js';
import { isStoreOutage } from '../../store/supervisor.js';
import { analyticsPage } from '../../analytics/page.js';
import { storeUnavailable } from '../error-handler.js';

export interface AnalyticsOptions {
  store: Store;
  rules: { version: string };
}

/** GET /analytics/summary and the /analytics page for guideline teams; registered in the admin scope, which authenticates. */
export const analyticsRoutes: FastifyPluginAsync<AnalyticsOptions> = async (app, opts) => {
  /** The analytics, or undefined once a 503 has been sent (the store is down, or went down during the read). */
  async function read(request: FastifyRequest, reply: FastifyReply, since?: string): Promise<AnalyticsDetail | undefined> {
    if (opts.store.state !== 'up') {
      storeUnavailable(request, reply);
      return undefined;
    }
    try {
      return await analytics(opts.store, opts.rules.version, since);
    } catch (err) {
      if (!isStoreOutage(err) && opts.store.state === 'up') throw err;
      storeUnavailable(request, reply, err);
      return undefined;
    }
  }
  app.get<{ Querystring: { since?: string } }>(
    '/analytics/summary',
    { schema: { querystring: { type: 'object', properties: { since: { type: 'string', format: 'date' } } } } },
    async (request, reply) => {
      const detail = await read(request, reply, request.query.since);
      if (!detail) return reply;
      const { rulesVersion, byRecommendation } = detail;
      return { rulesVersion, byRecommendation };
    },
  );
  app.get('/analytics', async (request, reply) => {
    const detail = await read(request, reply);
    if (!detail) return reply;
    return reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(analyticsPage(detail));
  });
};
