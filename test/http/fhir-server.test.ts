import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import type { FhirResource } from 'fhir/r4.js';
import { TestFhirServer } from '../support/fhir-server.js';
import { testApp } from '../support/app.js';
import { cardRuleViolations } from '../support/card-rules.js';
import { loadScenarios, scenarioRequest, SERVICE_IDS, type Scenario } from '../support/scenarios.js';

/**
 * The second data path: no prefetch, the service queries the EHR's FHIR server itself.
 * The server is a real FHIR R4 server in this process (medplum's router over its in-memory repository, on a loopback port).
 */
const server = new TestFhirServer();
let app: FastifyInstance;
const TOKEN = 'test-access-token-123';

beforeAll(async () => {
  await server.start();
  app = await testApp();
});
afterAll(async () => {
  await app.close();
  await server.stop();
});
beforeEach(() => server.reset());

function withoutPrefetch(s: Scenario) {
  const request = scenarioRequest(s) as any;
  delete request.prefetch;
  request.fhirServer = server.baseUrl;
  request.fhirAuthorization = { access_token: TOKEN, token_type: 'Bearer', expires_in: 300, scope: 'patient/*.read', subject: 'lbp-imaging-cds' };
  return request;
}

async function loadPatient(s: Scenario): Promise<void> {
  await server.load((s.patient.entry ?? []).map((e) => e.resource as FhirResource));
}

function recommendations(body: any): Record<string, string> {
  return Object.fromEntries(
    body.cards.filter((c: any) => c.source.topic.code !== 'patient-conversation').map((c: any) => [c.extension['lbp-imaging-cds'].order, c.source.topic.code]),
  );
}

// Scenarios that describe what the EHR sent (OperationOutcomes, nulls, absent keys) only exist on the prefetch path.
const served = loadScenarios().filter((s) => s.expect.status === 200 && !s.prefetch && !s.fhirServer);

describe('every fixture, with no prefetch at all, from the FHIR server', () => {
  it('covers most scenarios', () => {
    expect(served.length).toBeGreaterThanOrEqual(40);
  });

  it.each(served.map((s) => [s.id, s] as const))('%s', async (_id, s) => {
    await loadPatient(s);
    const res = await app.inject({ method: 'POST', url: `/cds-services/${SERVICE_IDS[s.hook]}`, payload: withoutPrefetch(s) });
    expect(res.statusCode).toBe(200);
    expect(cardRuleViolations(res.json())).toEqual([]);
    expect(recommendations(res.json()), s.description).toEqual(s.expect.recommendations ?? {});
    if (Object.keys(s.expect.recommendations ?? {}).length > 0) {
      expect(server.requests.length).toBeGreaterThanOrEqual(4);
      for (const r of server.requests) expect(r.authorization).toBe(`Bearer ${TOKEN}`);
    }
  });
});

describe('faults on the FHIR server: the call still answers in time, and never advises against imaging', () => {
  const base = () => loadScenarios().find((s) => s.id === 'acute-lbp-mri-not-indicated')!;
  const cancer = () => loadScenarios().find((s) => s.id === 'resolved-breast-cancer-urgent')!;
  let fast: FastifyInstance;
  beforeAll(async () => { fast = await testApp({ CDS_DEADLINE_MS: '500', FHIR_MAX_PAGES: '3' }); });
  afterAll(async () => { await fast.close(); });

  async function call(s: Scenario, mutate?: (r: any) => void) {
    await loadPatient(s);
    const request = withoutPrefetch(s);
    mutate?.(request);
    const started = performance.now();
    const res = await fast.inject({ method: 'POST', url: `/cds-services/${SERVICE_IDS[s.hook]}`, payload: request });
    return { status: res.statusCode, body: res.json(), ms: performance.now() - started };
  }

  it('a server that never answers holds the response no longer than the deadline plus 100 ms', async () => {
    server.fault('/Condition', { kind: 'hang' });
    const r = await call(base());
    expect(r.status).toBe(200);
    expect(r.ms).toBeLessThan(500 + 100);
    expect(Object.values(recommendations(r.body))).toEqual(['red-flags-unverified']);
  });

  it.each([
    ['a 500', { kind: 'status', status: 500 } as const],
    ['a 401', { kind: 'status', status: 401 } as const],
    ['a garbage body', { kind: 'garbage' } as const],
    ['an answer after the deadline', { kind: 'delay', ms: 800 } as const],
  ])('%s on one query gives red-flags-unverified', async (_name, fault) => {
    server.fault('/MedicationRequest', fault);
    const r = await call(base());
    expect(r.status).toBe(200);
    expect(cardRuleViolations(r.body)).toEqual([]);
    expect(Object.values(recommendations(r.body))).toEqual(['red-flags-unverified']);
    expect(r.body.cards[0].detail).toMatch(/medications/);
  });

  it('a red flag found in the data that did arrive still gives imaging-urgent', async () => {
    server.fault('/Observation', { kind: 'status', status: 503 });
    server.fault('/MedicationRequest', { kind: 'hang' });
    const r = await call(cancer());
    expect(Object.values(recommendations(r.body))).toEqual(['imaging-urgent']);
  });

  it('an answer just under the deadline is used in full', async () => {
    server.fault('/Condition', { kind: 'delay', ms: 300 });
    const r = await call(base());
    expect(Object.values(recommendations(r.body))).toEqual(['imaging-not-indicated']);
    expect(r.ms).toBeLessThan(600);
  });

  it('follows next links of paged search results', async () => {
    server.fault('/Condition', { kind: 'page', size: 1 });
    const s = loadScenarios().find((x) => x.id === 'entered-in-error-lung-cancer-not-indicated')!;
    const r = await call(s);
    expect(Object.values(recommendations(r.body))).toEqual(['imaging-not-indicated']);
    expect(server.requests.filter((q) => q.url.startsWith('/Condition')).length).toBeGreaterThan(1);
  });

  it('treats pages beyond the limit as data it could not read', async () => {
    server.fault('/Condition', { kind: 'page', size: 1 });
    const s = base();
    await server.load(['J45.909', 'E11.9', 'I10', 'K21.9'].map((code, i) => ({ resourceType: 'Condition', id: `extra-${i}`, subject: { reference: `Patient/${s.patient.entry![0]!.resource!.id}` }, code: { coding: [{ system: 'http://hl7.org/fhir/sid/icd-10-cm', code }] } }) as FhirResource));
    const r = await call(s);
    expect(Object.values(recommendations(r.body))).toEqual(['red-flags-unverified']);
    expect(server.requests.filter((q) => q.url.startsWith('/Condition')).length).toBe(3);
  });

  it('accepts fhirServer with a trailing slash', async () => {
    const r = await call(base(), (req) => { req.fhirServer = `${server.baseUrl}/`; });
    expect(Object.values(recommendations(r.body))).toEqual(['imaging-not-indicated']);
  });

  it('answers 412 only when a key is absent and there is no fhirServer', async () => {
    const r = await call(base(), (req) => { delete req.fhirServer; delete req.fhirAuthorization; });
    expect(r.status).toBe(412);
    expect(r.body.resourceType).toBe('OperationOutcome');
  });
});

describe('the token', () => {
  it('is never sent to a server other than fhirServer, even when a next link points there', async () => {
    const other = new TestFhirServer();
    await other.start();
    try {
      const s = loadScenarios().find((x) => x.id === 'acute-lbp-mri-not-indicated')!;
      await loadPatient(s);
      // A first page whose next link points at another origin.
      server.fault('/Condition', { kind: 'page', size: 1 });
      const foreign = server.baseUrl.replace(/:\d+/, `:${new URL(other.baseUrl).port}`);
      const original = server.baseUrl;
      server.baseUrl = foreign; // the wrapper builds next links from baseUrl
      const res = await app.inject({ method: 'POST', url: `/cds-services/${SERVICE_IDS[s.hook]}`, payload: { ...withoutPrefetch(s), fhirServer: original } });
      server.baseUrl = original;
      expect(res.statusCode).toBe(200);
      expect(other.requests).toHaveLength(0);
    } finally {
      await other.stop();
    }
  });
});
