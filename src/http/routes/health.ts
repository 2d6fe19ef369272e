import type { FastifyPluginAsync } from 'fastify';

export interface HealthOptions {
  rulesVersion: string;
  auth: 'jwt' | 'off';
}

/** Liveness and readiness for orchestrators; no auth, no PHI. */
export const healthRoutes: FastifyPluginAsync<HealthOptions> = async (app, opts) => {
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async () => ({
    status: 'ready',
    rulesVersion: opts.rulesVersion,
    auth: opts.auth,
    ...(opts.auth === 'off' ? { warning: 'CDS_AUTH=off: hook calls are not authenticated' } : {}),
  }));
};
