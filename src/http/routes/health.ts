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
  // the store is down the service still answers hook calls; readiness says why it is degraded. `?store=optional` is for
  // a load balancer's traffic probe: it fails only while draining, so a database outage does not take every replica out
  // of service while each would still answer hook calls (the body still says the store is down).
  app.get<{ Querystring: { store?: string } }>(
    '/readyz',
    { schema: { querystring: { type: 'object', properties: { store: { enum: ['required', 'optional'] } } } } },
    async (request, reply) => {
      const storeOptional = request.query.store === 'optional';
      // The traffic probe answers at once from the store's state: a ping that hangs on a silent network must not fail it.
      const storeUp = storeOptional ? opts.store.state === 'up' : await opts.store.ping();
      const draining = opts.draining();
      const storeStatus = opts.store.state === 'starting' ? 'store starting: migrations pending, retrying' : 'store unavailable';
      const ready = !draining && (storeUp || storeOptional);
      return reply.code(ready ? 200 : 503).send({
        status: draining ? 'shutting down' : storeUp ? 'ready' : storeOptional ? `degraded: ${storeStatus}` : storeStatus,
        rulesVersion: opts.rules.version,
        auth: opts.auth,
        store: opts.store.kind,
        storeState: opts.store.state,
        ...(opts.auth === 'off' ? { warning: 'CDS_AUTH=off: hook calls are not authenticated' } : {}),
      });
    },
  );
};
