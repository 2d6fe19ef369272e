import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { FhirCall } from '../fhir/fhir-fetch.js';

/**
 * The service's Prometheus metrics, in a registry of its own (several apps in one test process must not share one).
 * Labels carry codes and outcomes only: no patient, user or order identifiers.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly hookCalls = new Counter({ name: 'lbp_cds_hook_calls_total', help: 'Hook calls by service, recommendation code and HTTP status', labelNames: ['service', 'recommendation', 'status'], registers: [this.registry] });
  readonly hookDuration = new Histogram({
    name: 'lbp_cds_hook_duration_seconds',
    help: 'Whole hook call, from arrival to response',
    labelNames: ['service'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 1.5, 2.5, 5],
    registers: [this.registry],
  });
  readonly fhirDuration = new Histogram({
    name: 'lbp_cds_fhir_query_duration_seconds',
    help: "Queries to the EHR's FHIR server for missing prefetch, by prefetch key and outcome",
    labelNames: ['key', 'outcome'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 1.5, 2.5],
    registers: [this.registry],
  });
  readonly fhirErrors = new Counter({ name: 'lbp_cds_fhir_errors_total', help: 'FHIR queries that failed, by key and outcome (timeout, http-5xx, connection-failed...)', labelNames: ['key', 'outcome'], registers: [this.registry] });
  readonly cards = new Counter({ name: 'lbp_cds_cards_total', help: 'Cards returned, by recommendation code', labelNames: ['code'], registers: [this.registry] });
  readonly feedback = new Counter({ name: 'lbp_cds_feedback_total', help: 'Feedback items received, by outcome', labelNames: ['outcome'], registers: [this.registry] });
  readonly safetyOverrules = new Counter({ name: 'lbp_cds_safety_guard_overrules_total', help: 'Times the safety guard overruled the rules (each one means the rules need fixing)', registers: [this.registry] });
  readonly rulesInfo = new Gauge({ name: 'lbp_cds_rules_info', help: 'The active rules version (value 1)', labelNames: ['version', 'hash'], registers: [this.registry] });
  readonly auditDropped: Gauge;
  readonly auditQueued: Gauge;
  readonly storeUp: Gauge;

  constructor(rules: { version: string; hash: string }, auditDropped: () => number, store: { up: () => boolean; auditQueued: () => number }) {
    collectDefaultMetrics({ register: this.registry });
    this.rulesInfo.set({ version: rules.version, hash: rules.hash }, 1);
    this.auditDropped = new Gauge({
      name: 'lbp_cds_audit_dropped_records',
      help: 'Audit records dropped because the queue was full or the store failed',
      registers: [this.registry],
      collect() {
        this.set(auditDropped());
      },
    });
    this.auditQueued = new Gauge({
      name: 'lbp_cds_audit_queued_records',
      help: 'Audit records waiting to be written (they wait while the store is down, up to the queue bound)',
      registers: [this.registry],
      collect() {
        this.set(store.auditQueued());
      },
    });
    this.storeUp = new Gauge({
      name: 'lbp_cds_store_up',
      help: 'Whether the feedback and audit store is up (1) or down or still starting (0); the service answers degraded meanwhile',
      registers: [this.registry],
      collect() {
        this.set(store.up() ? 1 : 0);
      },
    });
  }

  rulesChanged(rules: { version: string; hash: string }): void {
    this.rulesInfo.reset();
    this.rulesInfo.set({ version: rules.version, hash: rules.hash }, 1);
  }

  fhirCalls(calls: FhirCall[]): void {
    for (const c of calls) {
      this.fhirDuration.observe({ key: c.key, outcome: c.outcome }, c.ms / 1000);
      if (c.outcome !== 'ok') this.fhirErrors.inc({ key: c.key, outcome: c.outcome });
    }
  }
}
