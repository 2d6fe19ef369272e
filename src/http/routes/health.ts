import type { FastifyPluginAsync } from 'fastify';

export interface HealthOptions {
  rules: { version: string };
  auth: 'jwt' | 'off';
  store: { kind: string; ping: () => Promise<boolean> };
  draining: () => boolean;
}

/** Liveness and readiness for orchestrators; no auth, no PHI. */
export const healthRoutes: FastifyPluginAsync<HealthOptions> = async (app, opts) => {
  app.get('/healthz', async () => ({ status: 'ok' }));
  // Ready when the rules are loaded (they are, or the app would not exist) and the store answers.
  app.get('/readyz', async (_request, reply) => {
    const storeUp = await opts.store.ping();
    const draining = opts.draining();
    return reply.code(storeUp && !draining ? 200 : 503).send({
      status: draining ? 'shutting down' : storeUp ? 'ready' : 'store unavailable',
      rulesVersion: opts.rules.version,
      auth: opts.auth,
      store: opts.store.kind,
      ...(opts.auth === 'off' ? { warning: 'CDS_AUTH=off: hook calls are not authenticated' } : {}),
    });
  });
};
