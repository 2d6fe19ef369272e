import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { realRules, RULES_DIR, testApp, tempDataDir } from '../support/app.js';
import { condition, patient } from '../support/records.js';
import { requestFor } from '../support/scenarios.js';

let app: FastifyInstance;
beforeAll(async () => { app = await testApp(); });
afterAll(async () => { await app.close(); });

const SELECT = '/cds-services/lbp-imaging-order-select';
const SIGN = '/cds-services/lbp-imaging-order-sign';
const bundle = { resourceType: 'Bundle', type: 'collection', entry: [{ resource: patient(40) }, { resource: condition('M54.50', { onsetDaysAgo: 5 }) }] } as any;
const mri = { resourceType: 'ServiceRequest', id: 'mri-1', status: 'draft', intent: 'order', subject: { reference: 'Patient/p1' }, code: { coding: [{ system: 'http://www.ama-assn.org/go/cpt', code: '72148' }] } } as any;
const valid = () => requestFor('order-select', bundle, [mri]) as any;

async function post(url: string, payload: unknown, headers: Record<string, string> = {}) {
  const res = await app.inject({ method: 'POST', url, payload: payload as any, headers });
  return { status: res.statusCode, body: res.json(), type: res.headers['content-type'] };
}

function expectOutcome(body: any, pattern?: RegExp) {
  expect(body.resourceType).toBe('OperationOutcome');
  expect(body.issue[0].severity).toBe('error');
  if (pattern) expect(body.issue[0].diagnostics).toMatch(pattern);
  expect(JSON.stringify(body)).not.toMatch(/\bat .*\.(ts|js):\d+/);
}

describe('bad requests get a clear OperationOutcome and the right status', () => {
  it('404 for an unknown service', async () => {
    const r = await post('/cds-services/nope', valid());
    expect(r.status).toBe(404);
    expectOutcome(r.body, /nope/);
  });

  it.each([
    ['no hook', (b: any) => { delete b.hook; }, /hook/],
    ['no hookInstance', (b: any) => { delete b.hookInstance; }, /hookInstance/],
    ['no context', (b: any) => { delete b.context; }, /context/],
    ['no patientId', (b: any) => { delete b.context.patientId; }, /patientId/],
    ['draftOrders not a Bundle', (b: any) => { b.context.draftOrders = { resourceType: 'List' }; }, /draftOrders|Bundle|constant/],
    ['draftOrders a string', (b: any) => { b.context.draftOrders = 'orders'; }, /draftOrders/],
    ['a selection not in draftOrders', (b: any) => { b.context.selections = ['ServiceRequest/other']; }, /ServiceRequest\/other/],
    ['no selections on order-select', (b: any) => { delete b.context.selections; }, /selections/],
    ['the wrong hook for the service', (b: any) => { b.hook = 'order-sign'; }, /order-select/],
    ['fhirAuthorization without fhirServer', (b: any) => { b.fhirAuthorization = { access_token: 'secret-token', token_type: 'Bearer', expires_in: 60, scope: 'patient/*.read', subject: 'cds' }; }, /fhirServer/],
    ['a prefetch value that is a string', (b: any) => { b.prefetch.patient = 'Patient/1'; }, /prefetch/],
  ])('400 for %s', async (_name, mutate, pattern) => {
    const body = valid();
    mutate(body);
    const r = await post(SELECT, body);
    expect(r.status).toBe(400);
    expectOutcome(r.body, pattern);
    expect(JSON.stringify(r.body)).not.toContain('secret-token');
  });

  it('400 for a body that is not JSON', async () => {
    const res = await app.inject({ method: 'POST', url: SELECT, payload: '{"hook": ', headers: { 'content-type': 'application/json' } });
    expect(res.statusCode).toBe(400);
    expectOutcome(res.json());
  });

  it('accepts application/fhir+json bodies', async () => {
    const res = await app.inject({ method: 'POST', url: SELECT, payload: JSON.stringify(valid()), headers: { 'content-type': 'application/fhir+json' } });
    expect(res.statusCode).toBe(200);
  });

  it('415 for a body in a media type it does not read', async () => {
    const res = await app.inject({ method: 'POST', url: SELECT, payload: '<hook>order-select</hook>', headers: { 'content-type': 'application/xml' } });
    expect(res.statusCode).toBe(415);
    expectOutcome(res.json());
  });

  it('413 for a body over 1 MiB', async () => {
    const body = valid();
    body.extension = { padding: 'x'.repeat(1024 * 1024 + 10) };
    const r = await post(SELECT, body);
    expect(r.status).toBe(413);
    expectOutcome(r.body);
  });

  it('412 when a needed prefetch key is absent and there is no fhirServer', async () => {
    const body = valid();
    delete body.prefetch.conditions;
    const r = await post(SELECT, body);
    expect(r.status).toBe(412);
    expectOutcome(r.body, /conditions/);
  });

  it('200 with an unverified card when the key is absent but a fhirServer is given', async () => {
    const body = valid();
    delete body.prefetch.conditions;
    body.fhirServer = 'https://ehr.example.org/fhir';
    const r = await post(SELECT, body);
    expect(r.status).toBe(200);
    expect(r.body.cards[0].source.topic.code).toBe('red-flags-unverified');
  });

  it('no 412 when no draft order is lumbar imaging: nothing needs the data', async () => {
    const body = requestFor('order-sign', bundle, [{ ...mri, code: { coding: [{ system: 'http://www.ama-assn.org/go/cpt', code: '71046' }] } }]) as any;
    delete body.prefetch;
    const r = await post(SIGN, body);
    expect(r).toMatchObject({ status: 200, body: { cards: [] } });
  });

  it('404 with an OperationOutcome for unknown paths', async () => {
    const res = await app.inject({ method: 'GET', url: '/nothing-here' });
    expect(res.statusCode).toBe(404);
    expectOutcome(res.json());
  });
});

describe('an internal failure', () => {
  it('answers 500 "Internal error" without the message or a stack trace', async () => {
    const config = loadConfig({ DATA_DIR: tempDataDir(), CDS_AUTH: 'off', LOG_LEVEL: 'silent', RULES_DIR });
    const broken = await buildApp({ config, rules: await realRules(), logger: false, now: () => { throw new Error('secret detail at /srv/app.js:12'); } });
    const res = await broken.inject({ method: 'POST', url: SELECT, payload: valid() });
    expect(res.statusCode).toBe(500);
    expect(res.json()).toEqual({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'exception', diagnostics: 'Internal error' }] });
    await broken.close();
  });
});

describe('the playground API', () => {
  it('needs ADMIN_TOKEN when auth is on', async () => {
    const config = loadConfig({ DATA_DIR: tempDataDir(), CDS_AUTH: 'jwt', ADMIN_TOKEN: 'playground-admin', LOG_LEVEL: 'silent', RULES_DIR });
    const secured = await buildApp({ config, rules: await realRules(), logger: false, trustedIssuers: [] });
    const payload = { bundle: { resourceType: 'Bundle', type: 'collection', entry: [{ resource: patient(40) }] }, order: { modality: 'mri', lowBackPainReason: true } };
    expect((await secured.inject({ method: 'POST', url: '/playground/evaluate', payload })).statusCode).toBe(401);
    const ok = await secured.inject({ method: 'POST', url: '/playground/evaluate', payload, headers: { authorization: 'Bearer playground-admin' } });
    expect(ok.statusCode).toBe(200);
    expect(ok.json().assessments[0].recommendation).toBe('imaging-not-indicated');
    // The page too, and a browser can open it: the challenge is Basic, and the admin token as its password is accepted.
    const page = await secured.inject({ method: 'GET', url: '/playground' });
    expect(page.statusCode).toBe(401);
    expect(page.headers['www-authenticate']).toMatch(/^Basic realm=/);
    const basic = `Basic ${Buffer.from('guideline-team:playground-admin').toString('base64')}`;
    expect((await secured.inject({ method: 'GET', url: '/playground', headers: { authorization: basic } })).statusCode).toBe(200);
    const wrong = `Basic ${Buffer.from('guideline-team:not-the-token').toString('base64')}`;
    expect((await secured.inject({ method: 'GET', url: '/playground', headers: { authorization: wrong } })).statusCode).toBe(401);
    await secured.close();
  });
});

describe('security headers', () => {
  it('are on answers, refusals and errors alike', async () => {
    const answers = [
      await app.inject({ method: 'POST', url: SELECT, payload: valid() }),
      await app.inject({ method: 'POST', url: SELECT, payload: '{"hookInstance":', headers: { 'content-type': 'application/json' } }),
      await app.inject({ method: 'POST', url: '/cds-services/no-such-service', payload: valid() }),
      await app.inject({ method: 'GET', url: '/cds-services' }),
    ];
    expect(answers.map((r) => r.statusCode)).toEqual([200, 400, 404, 200]);
    for (const res of answers) {
      expect(res.headers['content-security-policy']).toMatch(/default-src 'self'/);
      expect(res.headers['strict-transport-security']).toMatch(/max-age=\d+/);
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.headers['x-frame-options']).toBe('SAMEORIGIN');
      expect(res.headers['referrer-policy']).toBe('no-referrer');
      expect(res.headers['x-powered-by']).toBeUndefined();
    }
  });
});
