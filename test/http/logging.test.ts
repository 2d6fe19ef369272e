import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.js';
import { loggerOptions } from '../../src/observability/logging.js';
import { loadConfig } from '../../src/config.js';
import { realRules, RULES_DIR, tempDataDir } from '../support/app.js';
import { condition } from '../support/records.js';
import { FIXTURE_CLOCK, requestFor } from '../support/scenarios.js';

describe('logs', () => {
  it('carry one summary per hook call, without tokens or patient data', async () => {
    const lines: string[] = [];
    const stream = new Writable({ write(chunk, _enc, cb) { lines.push(String(chunk)); cb(); } });
    const config = loadConfig({ DATA_DIR: tempDataDir(), CDS_AUTH: 'off', LOG_LEVEL: 'trace', RULES_DIR });
    const app = await buildApp({ config, rules: await realRules(), now: () => FIXTURE_CLOCK, logger: { ...(loggerOptions(config) as object), stream } });

    const patient = { resourceType: 'Patient', id: 'pt-8675309', gender: 'female', birthDate: '1961-04-12', name: [{ family: 'Zyxwvut' }] };
    const req = requestFor('order-sign', { resourceType: 'Bundle', type: 'collection', entry: [{ resource: patient }, { resource: { ...condition('Z85.3'), subject: { reference: 'Patient/pt-8675309' } } }] } as any, [
      { resourceType: 'ServiceRequest', id: 'sr-1', status: 'draft', intent: 'order', subject: { reference: 'Patient/pt-8675309' }, code: { coding: [{ system: 'http://www.ama-assn.org/go/cpt', code: '72148' }] }, reasonCode: [{ text: 'back pain', coding: [{ system: 'http://snomed.info/sct', code: '279039007' }] }] } as any,
    ]) as any;
    req.fhirServer = 'https://ehr.example.org/fhir';
    req.fhirAuthorization = { access_token: 'tok-SECRET-123', token_type: 'Bearer', expires_in: 60, scope: 'patient/*.read', subject: 'cds' };
    const res = await app.inject({ method: 'POST', url: '/cds-services/lbp-imaging-order-sign', payload: req, headers: { authorization: 'Bearer jwt-SECRET-456' } });
    expect(res.statusCode).toBe(200);
    // A refused request is logged too.
    await app.inject({ method: 'POST', url: '/cds-services/lbp-imaging-order-sign', payload: { ...req, hook: 'order-select' }, headers: { authorization: 'Bearer jwt-SECRET-456' } });
    await app.close();

    const all = lines.join('');
    for (const secret of ['tok-SECRET-123', 'jwt-SECRET-456', 'pt-8675309', '1961-04-12', 'Zyxwvut', 'Z85.3']) expect(all).not.toContain(secret);
    const summaries = lines.map((l) => JSON.parse(l)).filter((l) => l.msg === 'hook call');
    expect(summaries).toHaveLength(1);
    expect(summaries[0]).toMatchObject({ service: 'lbp-imaging-order-sign', orders: 1, recommendations: ['imaging-urgent'], durationMs: expect.any(Number) });
  });
});

describe('logs of FHIR queries', () => {
  it('count the calls with their durations and outcomes, without URLs, tokens or data', async () => {
    const { TestFhirServer } = await import('../support/fhir-server.js');
    const fhir = new TestFhirServer();
    await fhir.start();
    const lines: string[] = [];
    const stream = new Writable({ write(chunk, _enc, cb) { lines.push(String(chunk)); cb(); } });
    const config = loadConfig({ DATA_DIR: tempDataDir(), CDS_AUTH: 'off', LOG_LEVEL: 'info', RULES_DIR });
    const app = await buildApp({ config, rules: await realRules(), now: () => FIXTURE_CLOCK, logger: { ...(loggerOptions(config) as object), stream } });
    try {
      await fhir.load([{ resourceType: 'Patient', id: 'pt-5551212', birthDate: '1970-02-03', gender: 'male' }, { ...condition('M54.50', { onsetDaysAgo: 4 }), subject: { reference: 'Patient/pt-5551212' } }] as any);
      fhir.fault('/Observation', { kind: 'status', status: 500 });
      const req = requestFor('order-sign', { resourceType: 'Bundle', type: 'collection', entry: [{ resource: { resourceType: 'Patient', id: 'pt-5551212' } }] } as any, [
        { resourceType: 'ServiceRequest', id: 'sr-1', status: 'draft', intent: 'order', subject: { reference: 'Patient/pt-5551212' }, code: { coding: [{ system: 'http://www.ama-assn.org/go/cpt', code: '72148' }] } } as any,
      ]) as any;
      delete req.prefetch;
      req.fhirServer = fhir.baseUrl;
      req.fhirAuthorization = { access_token: 'fhir-TOKEN-789', token_type: 'Bearer', expires_in: 60, scope: 'patient/*.read', subject: 'cds' };
      const res = await app.inject({ method: 'POST', url: '/cds-services/lbp-imaging-order-sign', payload: req });
      expect(res.statusCode).toBe(200);
    } finally {
      await app.close();
      await fhir.stop();
    }
    const all = lines.join('');
    for (const secret of ['fhir-TOKEN-789', 'pt-5551212', '1970-02-03', '127.0.0.1', 'M54.50']) expect(all).not.toContain(secret);
    const summary = lines.map((l) => JSON.parse(l)).find((l) => l.msg === 'hook call');
    expect(summary.fhirCalls).toHaveLength(5);
    expect(summary.fhirCalls.find((c: any) => c.key === 'temperature')).toMatchObject({ outcome: 'http-5xx', status: 500, ms: expect.any(Number) });
    expect(summary.fhirCalls.filter((c: any) => c.outcome === 'ok')).toHaveLength(4);
  });
});
