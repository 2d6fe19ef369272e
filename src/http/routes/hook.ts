import type { FastifyPluginAsync } from 'fastify';
import { Errors } from '../../errors.js';
import { handleHook, type HookDeps } from '../../cds-hooks/handle-hook.js';
import { handleFollowUp } from '../../cds-hooks/handle-follow-up.js';
import type { FollowUpMemory } from '../../store/follow-up.js';
import { hookRequestSchema, MAX_JSON_ARRAY, MAX_JSON_DEPTH } from '../../cds-hooks/request-schema.js';
import { jsonBoundsProblem } from '../../fhir/shape.js';
import type { ServiceCatalog } from '../../cds-hooks/service-catalog.js';
import type { HookRequest } from '../../cds-hooks/types.js';
import { auditRecord } from '../../store/audit-record.js';
import type { Metrics } from '../../observability/metrics.js';
import { inSpan } from '../../observability/tracing.js';
import type { AuditRecord } from '../../store/audit-writer.js';
import { StoreUnavailableError } from '../../store/supervisor.js';

export interface HookRouteOptions {
  catalog: ServiceCatalog;
  metrics: Metrics;
  deps: HookDeps;
  /** Queues the audit record of a call that returned cards; never waits for the store. */
  audit: (record: AuditRecord) => void;
  /** A call with cards whose record could not be made (the store's hash secret is not known yet): counted, never queued raw. */
  auditUnhashable?: () => void;
  /** Keyed hash of identities; throws StoreUnavailableError while its secret is not known. */
  hash: (value: string) => string;
  /** What the follow-up service already said, and earlier imaging advice (the store). */
  followUp: FollowUpMemory;
}

const FOLLOW_UP_HOOKS = new Set(['patient-view', 'encounter-start']);

/** POST /cds-services/{id}: thin; the protocol and the clinical work live in cds-hooks/handle-hook.ts. */
export const hookRoutes: FastifyPluginAsync<HookRouteOptions> = async (app, opts) => {
  const outcomes = new WeakMap<object, string[]>();
  // Every call is counted, refused ones too: by service, recommendation (or "none", or "error") and status.
  app.addHook('onResponse', async function countHookCall(request, reply) {
    const service = opts.catalog.has((request.params as { id?: string }).id ?? '') ? (request.params as { id: string }).id : 'unknown';
    const recommendations = outcomes.get(request) ?? [reply.statusCode >= 400 ? 'error' : 'none'];
    for (const recommendation of recommendations) opts.metrics.hookCalls.inc({ service, recommendation, status: String(reply.statusCode) });
    if (request.arrivedAt > 0) opts.metrics.hookDuration.observe({ service }, (performance.now() - request.arrivedAt) / 1000);
  });
  app.post<{ Params: { id: string }; Body: HookRequest }>(
    '/cds-services/:id',
    {
      schema: { body: hookRequestSchema },
      // 404 for an unknown service comes before body validation.
      preValidation: async (request) => {
        if (!opts.catalog.has(request.params.id)) throw Errors.unknownService(request.params.id);
        const bounds = jsonBoundsProblem(request.body, MAX_JSON_DEPTH, MAX_JSON_ARRAY);
        if (bounds) throw Errors.invalidRequest(`Body ${bounds}`);
      },
    },
    async (request, reply) => {
      // The deadline runs from the request's arrival (set before anything else), authentication and parsing included.
      const started = request.arrivedAt || performance.now();
      const service = opts.catalog.get(request.params.id)!;
      const result = await inSpan('cds.hook', { 'cds.service': service.definition.id, 'cds.hook': service.definition.hook }, async (set) => {
        const r = FOLLOW_UP_HOOKS.has(service.definition.hook)
          ? await handleFollowUp(request.body, service, { ...opts.deps, rules: opts.deps.rules, memory: opts.followUp }, started)
          : await handleHook(request.body, service, opts.deps, started);
        set({ 'cds.orders': r.summary.orders, 'cds.recommendations': r.summary.recommendations.join(','), 'cds.fhir_calls': r.summary.fhirCalls.length });
        return r;
      });
      outcomes.set(request, result.summary.recommendations.length > 0 ? result.summary.recommendations : ['none']);
      opts.metrics.fhirCalls(result.summary.fhirCalls);
      for (const card of result.response.cards) opts.metrics.cards.inc({ code: card.source.topic?.code ?? 'unknown' });
      if (result.summary.overruled.length > 0) opts.metrics.safetyOverrules.inc(result.summary.overruled.length);
      request.log.info(
        {
          service: service.definition.id,
          hookInstance: request.body.hookInstance,
          durationMs: Math.round((performance.now() - started) * 100) / 100,
          orders: result.summary.orders,
          recommendations: result.summary.recommendations,
          rulesVersion: opts.deps.rules.label,
          unreadable: result.summary.unreadableKeys,
          ...(result.summary.fhirCalls.length > 0 ? { fhirCalls: result.summary.fhirCalls } : {}),
        },
        'hook call',
      );
      for (const note of result.summary.overruled) request.log.error({ service: service.definition.id }, `safety guard: ${note}`);
      let record: AuditRecord | undefined;
      try {
        record = auditRecord({
          request: request.body,
          service: service.definition.id,
          result,
          rulesVersion: opts.deps.rules.label,
          durationMs: performance.now() - started,
          at: opts.deps.now(),
          hash: opts.hash,
        });
      } catch (err) {
        // The answer goes out whatever the store can do; only its audit record is lost, and counted.
        if (!(err instanceof StoreUnavailableError)) throw err;
        opts.auditUnhashable?.();
      }
      if (record) opts.audit(record);
      return reply.type('application/json; charset=utf-8').send(result.response);
    },
  );
};
