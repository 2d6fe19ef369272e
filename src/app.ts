import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyServerOptions } from 'fastify';
import type { Config } from './config.js';
import { loggerOptions } from './observability/logging.js';
import { loadRules, type LoadedRules } from './rules/load-rules.js';
import { RulesRegistry, watchRules } from './rules/rules-registry.js';
import { loadServiceCatalog, type ServiceCatalog } from './cds-hooks/service-catalog.js';
import { installErrorHandling, sendOutcome } from './http/error-handler.js';
import { installSecurityHeaders } from './http/security-headers.js';
import { discoveryRoutes } from './http/routes/discovery.js';
import { hookRoutes } from './http/routes/hook.js';
import { healthRoutes } from './http/routes/health.js';
import { evidenceRoutes } from './http/routes/evidence.js';
import cors from '@fastify/cors';
import rateLimit from '@fastify/rate-limit';
import { loadTrustedIssuers, type TrustedIssuer } from './auth/trusted-issuers.js';
import { CdsJwtVerifier } from './auth/jwt-verifier.js';
import { adminAuthHook, cdsAuthHook, type RateLimitCheck } from './http/plugins/cds-auth.js';
import { guardRouteScopes, registerInScope } from './http/plugins/auth-scopes.js';
import { installRequestTargetCheck, requireJsonBody } from './http/plugins/request-target.js';
import { Errors } from './errors.js';
import { openStore, type Store } from './store/database.js';
import { AuditWriter } from './store/audit-writer.js';
import { purgeOlderThan } from './store/analytics.js';
import { DatabaseReplayStore, PersistedReplayStore } from './store/replay-store.js';
import { storeFollowUpMemory } from './store/follow-up.js';
import { feedbackRoutes } from './http/routes/feedback.js';
import { analyticsRoutes } from './http/routes/analytics.js';
import { metricsRoutes } from './http/routes/metrics.js';
import { handoutRoutes } from './http/routes/handouts.js';
import { playgroundRoutes } from './http/routes/playground.js';
import type { HookDeps } from './cds-hooks/handle-hook.js';
import { Metrics } from './observability/metrics.js';

/** The service definitions, the playground page and the fixture patients ship with the code, one folder above src/ and dist/. */
export const SERVICE_DEFINITIONS_DIR = fileURLToPath(new URL('../cds-hooks/', import.meta.url));
const PLAYGROUND_DIR = fileURLToPath(new URL('../playground/', import.meta.url));
const SCENARIOS_DIR = fileURLToPath(new URL('../fixtures/scenarios/', import.meta.url));

export interface AppOptions {
  config: Config;
  rules?: LoadedRules;
  catalog?: ServiceCatalog;
  /** The clock; tests pin it so ages and durations in fixtures stay put. */
  now?: () => Date;
  newId?: () => string;
  logger?: FastifyServerOptions['logger'];
  /** Trusted EHRs; read from CDS_TRUSTED_ISSUERS when not given. */
  trustedIssuers?: TrustedIssuer[];
  /** Watch RULES_DIR and reload valid changes (default: when the rules come from RULES_DIR and RULES_WATCH is not "false"). */
  watchRules?: boolean;
  /** How soon an unknown `kid` may refetch an issuer's keys (tests shorten it). */
  jwksCooldownMs?: number;
  /** The feedback and audit store; opened from DATABASE_URL or DATA_DIR when not given (and then closed with the app). */
  store?: Store;
  /** Audit records held while the store is slow or down before new ones are dropped and counted (default 10 000). */
  auditQueueMax?: number;
}

declare module 'fastify' {
  interface FastifyInstance {
    audit: AuditWriter;
    store: Store;
    metrics: Metrics;
    draining: boolean;
    rules: RulesRegistry;
  }
}

/** The composition root: rules and service definitions in, a fastify app with every route out. */
export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const { config } = options;
  const registry = new RulesRegistry(options.rules ?? (await loadRules(config.rulesDir)));
  const rules = registry.current;
  const catalog = options.catalog ?? (await loadServiceCatalog(SERVICE_DEFINITIONS_DIR));

  const app = Fastify({
    logger: options.logger ?? loggerOptions(config),
    // One summary line per hook call instead of two lines per request.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.bodyLimitBytes,
    requestTimeout: Math.max(config.deadlineMs * 4, 10_000),
    connectionTimeout: 30_000,
    keepAliveTimeout: 72_000,
    return503OnClosing: true,
    // Behind a TLS proxy the client's address (rate limits, logs) comes from X-Forwarded-For only when TRUST_PROXY says so.
    // (fastify takes a number of hops too; its types omit it.)
    trustProxy: config.trustProxy as boolean | string[],
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
    // A target the router cannot decode (`/%zz`) is refused like any bad request: an OperationOutcome, nothing echoed back.
    frameworkErrors: (error, _request, reply: FastifyReply) => {
      void sendOutcome(reply, Errors.invalidRequest(error.code === 'FST_ERR_BAD_URL' ? 'The request target is not a valid URL' : 'Request refused'));
    },
  });

  app.addContentTypeParser(['application/fhir+json', 'application/json+fhir'], { parseAs: 'string' }, (request, body, done) => {
    try {
      done(null, JSON.parse(body as string));
    } catch {
      const err = Object.assign(new Error('Body is not valid JSON'), { statusCode: 400, code: 'FST_ERR_CTP_INVALID_JSON_BODY' });
      done(err, undefined);
    }
  });

  installErrorHandling(app);
  // First of all: the request target (absolute form only for this service's own authority) and the arrival time.
  installRequestTargetCheck(app, config.publicBaseUrl);
  guardRouteScopes(app);
  // Browser CDS clients (the CDS Hooks sandbox) need CORS; preflights are answered before authentication.
  await app.register(cors, {
    origin: config.corsOrigins.includes('*') ? true : config.corsOrigins,
    methods: ['GET', 'POST', 'OPTIONS'],
    allowedHeaders: ['Authorization', 'Content-Type'],
    maxAge: 600,
  });
  installSecurityHeaders(app);
  let limitPerIssuer: RateLimitCheck | undefined;
  let limitFailuresPerAddress: RateLimitCheck | undefined;
  if (config.rateLimitPerAddress > 0 || config.rateLimitPerIssuer > 0 || config.rateLimitAuthFailuresPerAddress > 0) {
    await app.register(rateLimit, {
      global: config.rateLimitPerAddress > 0,
      max: config.rateLimitPerAddress,
      timeWindow: 60_000,
      errorResponseBuilder: () => Errors.rateLimited(),
    });
    // Counted in the authentication hook: the issuer's budget only for tokens that verified, failures per address.
    if (config.rateLimitPerIssuer > 0) {
      limitPerIssuer = app.createRateLimit({ max: config.rateLimitPerIssuer, timeWindow: 60_000, keyGenerator: (request) => `iss:${request.cdsIssuer ?? ''}` });
    }
    if (config.rateLimitAuthFailuresPerAddress > 0) {
      limitFailuresPerAddress = app.createRateLimit({ max: config.rateLimitAuthFailuresPerAddress, timeWindow: 60_000, keyGenerator: (request) => `auth-failed:${request.ip}` });
    }
  }
  // A store that is not there does not stop the start: it comes up `starting` and keeps retrying (see /readyz).
  const store =
    options.store ??
    (await openStore({ databaseUrl: config.databaseUrl, databaseSchema: config.databaseSchema, dataDir: config.dataDir, hashSecret: config.auditHashSecret, log: app.log }));
  const audit = new AuditWriter(store, app.log, options.auditQueueMax ? { maxQueue: options.auditQueueMax } : {});
  const now = options.now ?? (() => new Date());
  // Retention: old audit and feedback go, hourly; the timer must not keep the process alive. One purge at a time, and
  // shutdown stops it between chunks and waits for the chunk under way before the store closes.
  let purging: Promise<unknown> | undefined;
  let closing = false;
  const purge = setInterval(() => {
    if (store.state !== 'up') return;
    purging ??= purgeOlderThan(store, new Date(Date.now() - config.auditRetentionDays * 86_400_000), { stopped: () => closing })
      .catch((err: Error) => app.log.error({ err: { message: err.message } }, 'retention purge failed'))
      .finally(() => {
        purging = undefined;
      });
  }, 3_600_000);
  purge.unref();
  /** Set once the JWT replay store is made (with CDS_AUTH=jwt): it writes what waits before the store closes. */
  let closeReplays: (() => Promise<void>) | undefined;
  app.addHook('onClose', async () => {
    closing = true;
    clearInterval(purge);
    await purging;
    await closeReplays?.();
    await audit.close();
    if (!options.store) await store.close();
  });
  const metrics = new Metrics(rules, () => audit.dropped, { up: () => store.state === 'up', auditQueued: () => audit.queued });
  registry.onChange((next) => metrics.rulesChanged(next));
  if (options.watchRules ?? (!options.rules && config.rulesWatch)) {
    const stop = watchRules(config.rulesDir, registry, app.log);
    app.addHook('onClose', async () => stop());
  }
  app.decorate('rules', registry);
  app.decorate('audit', audit);
  app.decorate('store', store);
  app.decorate('metrics', metrics);
  // Draining (SIGTERM): readiness fails so the load balancer stops sending, and every response closes its connection,
  // so no keep-alive socket is left idle for a request to race the close.
  app.decorate('draining', false);
  app.addHook('onSend', async function closeWhenDraining(_request, reply) {
    if (app.draining) void reply.header('connection', 'close');
  });

  await app.register(healthRoutes, { rules: registry, auth: config.auth, store, draining: () => app.draining });
  await app.register(metricsRoutes, { metrics });
  await app.register(handoutRoutes, { rules: registry });
  await app.register(evidenceRoutes, { rules: registry });
  const deps: HookDeps = {
    // Read per call: a reload takes effect on the next call, never halfway through one.
    get rules() {
      return registry.current;
    },
    now,
    newId: options.newId ?? randomUUID,
    baseUrl: config.publicBaseUrl,
    deadlineMs: config.deadlineMs,
    fhirMaxPages: config.fhirMaxPages,
    fhirMaxResponseBytes: config.fhirMaxResponseBytes,
    fhirMaxEntries: config.fhirMaxEntries,
    // The CDS Hooks spec requires TLS in production: with JWT auth on, an http: fhirServer needs FHIR_ALLOW_HTTP=true.
    fhirServers: { httpsOnly: config.auth === 'jwt' && !config.fhirAllowHttp, origins: config.fhirServerAllowlist },
  };

  // Everything under /cds-services: a CDS Hooks JWT on every route of the scope (CDS_AUTH=jwt), then a JSON body.
  const cdsChecks = [];
  if (config.auth === 'jwt') {
    const issuers = options.trustedIssuers ?? (await loadTrustedIssuers(config.trustedIssuersFile));
    // Several replicas share PostgreSQL, so a token used on one is refused by the others.
    // One instance on SQLite checks them in memory and keeps them in its file, so a restart does not forget them.
    const replays = store.kind === 'postgres' ? new DatabaseReplayStore(store, app.log) : await PersistedReplayStore.open(store, app.log);
    if (replays instanceof PersistedReplayStore) closeReplays = () => replays.close();
    const verifier = new CdsJwtVerifier(issuers, { jwksCooldownMs: options.jwksCooldownMs, replays, maxTokenLifetimeS: config.maxTokenLifetimeS });
    cdsChecks.push(cdsAuthHook({ verifier, publicBaseUrl: config.publicBaseUrl, deadlineMs: config.deadlineMs, limitPerIssuer, limitFailuresPerAddress }));
  }
  cdsChecks.push(requireJsonBody);
  await registerInScope(app, 'cds-hooks', cdsChecks, async (scope) => {
    await scope.register(discoveryRoutes, { catalog, rules: registry });
    await scope.register(feedbackRoutes, { catalog, store, now, metrics });
    await scope.register(hookRoutes, { catalog, metrics, audit: (record) => audit.enqueue(record), auditUnhashable: () => audit.dropUnhashable(), hash: (value) => store.hash(value), deps, followUp: storeFollowUpMemory(store) });
  });

  // The admin pages (/analytics*, /playground*): ADMIN_TOKEN on every route of the scope when CDS_AUTH=jwt.
  const adminChecks = config.auth === 'jwt' ? [adminAuthHook(config.adminToken), requireJsonBody] : [requireJsonBody];
  await registerInScope(app, 'admin', adminChecks, async (scope) => {
    await scope.register(analyticsRoutes, { store, rules: registry });
    await scope.register(playgroundRoutes, {
      catalog,
      deps,
      assetsDir: PLAYGROUND_DIR,
      scenariosDir: SCENARIOS_DIR,
      compareRulesDir: config.playgroundCompareRulesDir,
    });
  });
  return app;
}
