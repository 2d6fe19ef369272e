import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { context, trace } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { tracingRequested } from '../src/telemetry.js';
import { testApp } from './support/app.js';
import { TestFhirServer } from './support/fhir-server.js';
import { loadScenarios, scenarioRequest, SERVICE_IDS } from './support/scenarios.js';

const exporter = new InMemorySpanExporter();
const fhir = new TestFhirServer();
let app: FastifyInstance;

beforeAll(async () => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
  await fhir.start();
  app = await testApp();
});
afterAll(async () => {
  await app.close();
  await fhir.stop();
  trace.disable();
  context.disable();
});

const scenario = (id: string) => loadScenarios().find((s) => s.id === id)!;

async function callWithoutPrefetch(id: string) {
  const s = scenario(id);
  await fhir.load((s.patient.entry ?? []).map((e) => e.resource as any));
  const request = scenarioRequest(s) as any;
  delete request.prefetch;
  request.fhirServer = fhir.baseUrl;
  request.fhirAuthorization = { access_token: 'trace-token-xyz', token_type: 'Bearer', expires_in: 60, scope: 'patient/*.read', subject: 'cds' };
  return app.inject({ method: 'POST', url: `/cds-services/${SERVICE_IDS[s.hook]}`, payload: request });
}

describe('/metrics', () => {
  it('shows hook calls, durations, FHIR errors, cards, feedback, the rules version and process metrics', async () => {
    fhir.reset();
    fhir.fault('/MedicationRequest', { kind: 'status', status: 503 });
    expect((await callWithoutPrefetch('acute-lbp-mri-not-indicated')).statusCode).toBe(200);
    const s = scenario('resolved-breast-cancer-urgent');
    const urgent = await app.inject({ method: 'POST', url: `/cds-services/${SERVICE_IDS[s.hook]}`, payload: scenarioRequest(s) as any });
    const card = urgent.json().cards[0];
    await app.inject({ method: 'POST', url: `/cds-services/${SERVICE_IDS[s.hook]}/feedback`, payload: { feedback: [{ card: card.uuid, outcome: 'overridden', overrideReason: { userComment: 'x' }, outcomeTimestamp: new Date().toISOString() }] } });
    await app.inject({ method: 'POST', url: '/cds-services/nope', payload: {} });

    const res = await app.inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/text\/plain/);
    const text = res.body;
    expect(text).toMatch(/lbp_cds_hook_calls_total\{service="lbp-imaging-order-select",recommendation="red-flags-unverified",status="200"\} 1/);
    expect(text).toMatch(/lbp_cds_hook_calls_total\{service="lbp-imaging-order-select",recommendation="imaging-urgent",status="200"\} 1/);
    expect(text).toMatch(/lbp_cds_hook_calls_total\{service="unknown",recommendation="error",status="404"\} 1/);
    expect(text).toMatch(/lbp_cds_hook_duration_seconds_bucket\{le="[\d.]+",service="lbp-imaging-order-select"\} \d/);
    expect(text).toMatch(/lbp_cds_fhir_query_duration_seconds_count\{key="conditions",outcome="ok"\} 1/);
    expect(text).toMatch(/lbp_cds_fhir_errors_total\{key="medications",outcome="http-5xx"\} 1/);
    expect(text).toMatch(/lbp_cds_cards_total\{code="imaging-urgent"\} 1/);
    expect(text).toMatch(/lbp_cds_feedback_total\{outcome="overridden"\} 1/);
    expect(text).toMatch(/lbp_cds_rules_info\{version="\d+\.\d+\.\d+",hash="[0-9a-f]{12}"\} 1/);
    expect(text).toMatch(/process_cpu_user_seconds_total/);
    expect(text).not.toMatch(/pat-|Patient\/|trace-token/);
  });
});

describe('tracing', () => {
  it('has spans for the hook call, each FHIR query and each rule evaluation, without patient data', async () => {
    fhir.reset();
    exporter.reset();
    expect((await callWithoutPrefetch('fever-opioid-use-disorder-urgent')).statusCode).toBe(200);
    const spans = exporter.getFinishedSpans();
    const hook = spans.find((s) => s.name === 'cds.hook')!;
    expect(hook.attributes).toMatchObject({ 'cds.service': 'lbp-imaging-order-select', 'cds.recommendations': 'imaging-urgent' });
    const queries = spans.filter((s) => s.name === 'fhir.query');
    expect(queries.map((q) => q.attributes['fhir.prefetch_key']).sort()).toEqual(['conditions', 'medications', 'patient', 'startBack', 'temperature']);
    for (const q of queries) expect(q.parentSpanContext?.spanId).toBe(hook.spanContext().spanId);
    expect(spans.some((s) => s.name === 'rules.evaluate' && s.attributes['cds.recommendation'] === 'imaging-urgent')).toBe(true);
    const everything = JSON.stringify(spans.map((s) => s.attributes));
    const patientId = scenario('fever-opioid-use-disorder-urgent').patient.entry![0]!.resource!.id!;
    for (const secret of [patientId, 'trace-token-xyz', '127.0.0.1', 'F11']) expect(everything).not.toContain(secret);
  });

  it('is off unless OTEL_* variables ask for it', () => {
    expect(tracingRequested({})).toBe(false);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' })).toBe(true);
    expect(tracingRequested({ OTEL_TRACES_EXPORTER: 'otlp' })).toBe(true);
    expect(tracingRequested({ OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' })).toBe(false);
    expect(tracingRequested({ OTEL_SDK_DISABLED: 'true', OTEL_TRACES_EXPORTER: 'otlp' })).toBe(false);
  });
});
