import type { FastifyPluginAsync } from 'fastify';

export interface HealthOptions {
  rules: { version: string };
  auth: 'jwt' | 'off';
  store: { kind: string; state: 'starting' | 'up' | 'down'; ping: () => Promise<boolean> };
  draining: () => boolean;
}

/** Liveness and readiness for orchestrators; no auth, no PHI. */
export const healthRoutes: FastifyPluginAsync<HealthOptions> = async (app, opts) => {
  app.get('/healthz', async () => ({ status: 'ok' }));
  // Ready when the rules are loaded (they are, or the app would not exist) and the store answers (within a second). While
  // the store is down the service still answers hook calls; readiness says why it is degraded.
  app.get('/readyz', async (_request, reply) => {
    const storeUp = await opts.store.ping();
    const draining = opts.draining();
    const storeStatus = opts.store.state === 'starting' ? 'store starting: migrations pending, retrying' : 'store unavailable';
    return reply.code(storeUp && !draining ? 200 : 503).send({
      status: draining ? 'shutting down' : storeUp ? 'ready' : storeStatus,
      rulesVersion: opts.rules.version,
      auth: opts.auth,
      store: opts.store.kind,
      storeState: opts.store.state,
      ...(opts.auth === 'off' ? { warning: 'CDS_AUTH=off: hook calls are not authenticated' } : {}),
    });
  });
};
