import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import Fastify, { LogController, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { Config } from './config.js';
import { loadRules, type LoadedRules } from './rules/load-rules.js';
import { RulesRegistry, watchRules } from './rules/rules-registry.js';
import { loadServiceCatalog, type ServiceCatalog } from './cds-hooks/service-catalog.js';
import { installErrorHandling } from './http/error-handler.js';
import { installSecurityHeaders } from './http/security-headers.js';
import { discoveryRoutes } from './http/routes/discovery.js';
import { hookRoutes } from './http/routes/hook.js';
import { healthRoutes } from './http/routes/health.js';
import { evidenceRoutes } from './http/routes/evidence.js';
import cors from '@fastify/cors';
import rateLimit from '@fastify/rate-limit';
import { decodeJwt } from 'jose';
import { loadTrustedIssuers, type TrustedIssuer } from './auth/trusted-issuers.js';
import { CdsJwtVerifier } from './auth/jwt-verifier.js';
import { bearerToken, installCdsAuth } from './http/plugins/cds-auth.js';
import { Errors } from './errors.js';
import { openStore, type Store } from './store/database.js';
import { AuditWriter } from './store/audit-writer.js';
import { purgeOlderThan } from './store/analytics.js';
import { DatabaseReplayStore } from './store/replay-store.js';
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
}

/** The issuer a request claims, unverified: only to key the per-issuer rate limit (verification comes after). */
function claimedIssuer(request: Parameters<typeof bearerToken>[0]): string | undefined {
  const token = bearerToken(request);
  if (!token) return undefined;
  try {
    const iss = decodeJwt(token).iss;
    return typeof iss === 'string' ? iss.slice(0, 256) : undefined;
  } catch {
    return undefined;
  }
}

/** Logs never carry tokens or patient data: auth headers and FHIR tokens are redacted wherever they appear. */
export function loggerOptions(config: Config): FastifyServerOptions['logger'] {
  return {
    level: config.logLevel,
    // Nothing logs request bodies or FHIR data; these paths are a second line of defence if something ever does.
    redact: {
      paths: [
        'req.headers.authorization',
        'headers.authorization',
        'authorization',
        'fhirAuthorization',
        '*.fhirAuthorization',
        '*.access_token',
        'body',
        'req.body',
        'prefetch',
        '*.prefetch',
        'context',
        '*.context',
        '*.name',
        '*.birthDate',
        '*.identifier',
        '*.text',
        '*.note',
      ],
      censor: '[redacted]',
    },
  };
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
    // One summary line per hook call instead of two lines per request (engineering.md section 3).
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.bodyLimitBytes,
    requestTimeout: Math.max(config.deadlineMs * 4, 10_000),
    connectionTimeout: 30_000,
    keepAliveTimeout: 72_000,
    return503OnClosing: true,
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
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
  // Browser CDS clients (the CDS Hooks sandbox) need CORS; preflights are answered before authentication.
  await app.register(cors, {
    origin: config.corsOrigins.includes('*') ? true : config.corsOrigins,
    methods: ['GET', 'POST', 'OPTIONS'],
    allowedHeaders: ['Authorization', 'Content-Type'],
    maxAge: 600,
  });
  installSecurityHeaders(app);
  if (config.rateLimitPerAddress > 0) {
    await app.register(rateLimit, {
      global: true,
      max: config.rateLimitPerAddress,
      timeWindow: 60_000,
      errorResponseBuilder: () => Errors.rateLimited(),
    });
  }
  if (config.rateLimitPerIssuer > 0) {
    if (config.rateLimitPerAddress === 0) await app.register(rateLimit, { global: false });
    const byIssuer = app.createRateLimit({
      max: config.rateLimitPerIssuer,
      timeWindow: 60_000,
      keyGenerator: (request) => `iss:${claimedIssuer(request) ?? request.ip}`,
    });
    app.addHook('onRequest', async function limitPerIssuer(request, reply) {
      if (!request.url.startsWith('/cds-services') || request.method === 'OPTIONS') return;
      const limit = await byIssuer(request);
      if (limit.isAllowed || !limit.isExceeded) return;
      void reply.header('retry-after', limit.ttlInSeconds);
      throw Errors.rateLimited();
    });
  }
  const store = options.store ?? (await openStore({ databaseUrl: config.databaseUrl, databaseSchema: config.databaseSchema, dataDir: config.dataDir, hashSecret: config.auditHashSecret }));
  const audit = new AuditWriter(store, app.log);
  const now = options.now ?? (() => new Date());
  // Retention: old audit and feedback go, hourly; the timer must not keep the process alive. One purge at a time, and
  // shutdown stops it between chunks and waits for the chunk under way before the store closes.
  let purging: Promise<unknown> | undefined;
  let closing = false;
  const purge = setInterval(() => {
    purging ??= purgeOlderThan(store, new Date(Date.now() - config.auditRetentionDays * 86_400_000), { stopped: () => closing })
      .catch((err: Error) => app.log.error({ err: { message: err.message } }, 'retention purge failed'))
      .finally(() => {
        purging = undefined;
      });
  }, 3_600_000);
  purge.unref();
  app.addHook('onClose', async () => {
    closing = true;
    clearInterval(purge);
    await purging;
    await audit.close();
    if (!options.store) await store.close();
  });
  const metrics = new Metrics(rules, () => audit.dropped);
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

  if (config.auth === 'jwt') {
    const issuers = options.trustedIssuers ?? (await loadTrustedIssuers(config.trustedIssuersFile));
    // Several replicas share PostgreSQL, so a token used on one is refused by the others; one instance keeps them in memory.
    const replays = store.kind === 'postgres' ? new DatabaseReplayStore(store) : undefined;
    installCdsAuth(app, { verifier: new CdsJwtVerifier(issuers, { jwksCooldownMs: options.jwksCooldownMs, replays }), publicBaseUrl: config.publicBaseUrl });
  }
  await app.register(healthRoutes, { rules: registry, auth: config.auth, store, draining: () => app.draining });
  await app.register(feedbackRoutes, { catalog, store, now, metrics });
  await app.register(metricsRoutes, { metrics });
  await app.register(handoutRoutes, { rules: registry });
  await app.register(analyticsRoutes, { store, rules: registry, requireToken: config.auth === 'jwt', adminToken: config.adminToken });
  await app.register(evidenceRoutes, { rules: registry });
  await app.register(discoveryRoutes, { catalog, rules: registry });
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
  await app.register(hookRoutes, { catalog, metrics, audit: (record) => audit.enqueue(record), hash: store.hash, deps, followUp: storeFollowUpMemory(store) });
  await app.register(playgroundRoutes, {
    catalog,
    deps,
    assetsDir: PLAYGROUND_DIR,
    scenariosDir: SCENARIOS_DIR,
    requireToken: config.auth === 'jwt',
    adminToken: config.adminToken,
    compareRulesDir: config.playgroundCompareRulesDir,
  });
  return app;
}
