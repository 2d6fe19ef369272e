import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { testApp } from '../support/app.js';
import { cardRuleViolations } from '../support/card-rules.js';
import { condition, patient, steroid, temperature } from '../support/records.js';
import { requestFor } from '../support/scenarios.js';

let app: FastifyInstance;
beforeAll(async () => { app = await testApp(); });
afterAll(async () => { await app.close(); });

const URL = '/cds-services/lbp-imaging-order-sign';
const ADVISES_AGAINST = new Set(['imaging-not-indicated', 'imaging-deferred', 'imaging-xray-first']);
const mri = () => ({ resourceType: 'ServiceRequest', id: 'mri-1', status: 'draft', intent: 'order', subject: { reference: 'Patient/p1' }, code: { coding: [{ system: 'http://www.ama-assn.org/go/cpt', code: '72148' }] }, reasonCode: [{ coding: [{ system: 'http://snomed.info/sct', code: '279039007' }] }] });
const base = () => requestFor('order-sign', { resourceType: 'Bundle', type: 'collection', entry: [patient(40), condition('M54.50', { onsetDaysAgo: 5 }), temperature(37, 'Cel'), steroid('prednisone 5 MG Oral Tablet', 10, 5)].map((resource) => ({ resource })) } as any, [mri() as any]) as any;

async function send(body: unknown) {
  const res = await app.inject({ method: 'POST', url: URL, payload: body as any });
  return { status: res.statusCode, body: res.json() };
}

describe('malformed FHIR never crashes the call', () => {
  it.each([
    ['order code.coding an object', (b: any) => { b.context.draftOrders.entry[0].resource.code.coding = { code: '72148' }; }, 400],
    ['order code.coding [null]', (b: any) => { b.context.draftOrders.entry[0].resource.code.coding = [null]; }, 400],
    ['order coding.code a number', (b: any) => { b.context.draftOrders.entry[0].resource.code.coding[0].code = 72148; }, 400],
    ['order reasonReference not an array', (b: any) => { b.context.draftOrders.entry[0].resource.reasonReference = { reference: 'Condition/1' }; }, 400],
    ['order extension not an array', (b: any) => { b.context.draftOrders.entry[0].resource.extension = {}; }, 400],
    ['draftOrders entry without resource', (b: any) => { b.context.draftOrders.entry.push({}); }, 400],
  ])('%s: 400', async (_name, mutate, status) => {
    const b = base();
    mutate(b);
    const r = await send(b);
    expect(r.status).toBe(status);
    expect(r.body.resourceType).toBe('OperationOutcome');
  });

  it('400 for a body nested 5000 deep, without walking it recursively', async () => {
    const body = JSON.stringify(base()).replace('"status":"draft"', `"status":"draft","note":${'{"v":'.repeat(5000)}1${'}'.repeat(5000)}`);
    const res = await app.inject({ method: 'POST', url: URL, payload: body, headers: { 'content-type': 'application/json' } });
    expect(res.statusCode).toBe(400);
    expect(res.json().issue[0].diagnostics).toMatch(/deeper than/);
  });

  it.each([
    ['Bundle.entry an object', (b: any) => { b.prefetch.conditions.entry = {}; }],
    ['Bundle.link an object', (b: any) => { b.prefetch.conditions.link = { relation: 'next' }; }],
    ['OperationOutcome without issue', (b: any) => { b.prefetch.conditions = { resourceType: 'OperationOutcome' }; }],
    ['clinicalStatus.coding an object', (b: any) => { b.prefetch.conditions.entry[0].resource.clinicalStatus.coding = {}; }],
    ['condition code.coding a string', (b: any) => { b.prefetch.conditions.entry[0].resource.code.coding = 'M54.50'; }],
    ['birthDate a number', (b: any) => { b.prefetch.patient.birthDate = 1986; }],
    ['dosageInstruction not an array', (b: any) => { b.prefetch.medications.entry[0].resource.dosageInstruction = {}; }],
    ['valueQuantity.code a number', (b: any) => { b.prefetch.temperature.entry[0].resource.valueQuantity.code = 5; }],
    ['a Patient for another patient', (b: any) => { b.prefetch.patient.id = 'someone-else'; }],
    ['an entry without resource', (b: any) => { b.prefetch.medications.entry.push({ fullUrl: 'x' }); }],
    ['a warning OperationOutcome entry', (b: any) => { b.prefetch.conditions.entry.push({ resource: { resourceType: 'OperationOutcome', issue: [{ severity: 'warning', code: 'incomplete' }] } }); }],
    ['fewer entries than the total', (b: any) => { b.prefetch.conditions.total = 250; }],
    ['a batch-response wrapper', (b: any) => { b.prefetch.conditions = { resourceType: 'Bundle', type: 'batch-response', entry: [{ resource: b.prefetch.conditions }] }; }],
    ['an unexpected resource type', (b: any) => { b.prefetch.temperature = { resourceType: 'Jane Doe DOB 1960' }; }],
  ])('%s: 200, and never advice against imaging', async (_name, mutate) => {
    const b = base();
    mutate(b);
    const r = await send(b);
    expect(r.status).toBe(200);
    expect(cardRuleViolations(r.body)).toEqual([]);
    const codes = r.body.cards.map((c: any) => c.source.topic.code);
    expect(codes).toContain('red-flags-unverified');
    for (const code of codes) expect(ADVISES_AGAINST.has(code)).toBe(false);
  });

  it('answers 200, 400 or 412 whatever JSON replaces any part of a valid request', async () => {
    const paths: string[][] = [];
    const walk = (v: any, path: string[]) => {
      paths.push(path);
      if (v && typeof v === 'object') for (const [k, child] of Object.entries(v)) walk(child, [...path, k]);
    };
    walk(base(), []);
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...paths.filter((p) => p.length > 0)), fc.jsonValue({ maxDepth: 3 }), async (path, value) => {
        const b = base();
        let target = b;
        for (const k of path.slice(0, -1)) target = target[k];
        target[path[path.length - 1]!] = value;
        const r = await send(b);
        expect([200, 400, 412], `${path.join('.')} = ${JSON.stringify(value)}`).toContain(r.status);
        if (r.status === 200) expect(cardRuleViolations(r.body)).toEqual([]);
      }),
      { numRuns: 400 },
    );
  });
});
