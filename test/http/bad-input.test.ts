import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { testApp } from '../support/app.js';
import { condition, patient } from '../support/records.js';
import { requestFor } from '../support/scenarios.js';

/** Whatever it is sent, the service answers 4xx with an OperationOutcome or 200 with cards: never 500, never a crash. */
let app: FastifyInstance;
beforeAll(async () => { app = await testApp({ RATE_LIMIT_PER_ADDRESS: '0', RATE_LIMIT_PER_ISSUER: '0' }); });
afterAll(async () => { await app.close(); });

const URL = '/cds-services/lbp-imaging-order-select';
const valid = () =>
  requestFor('order-select', { resourceType: 'Bundle', type: 'collection', entry: [{ resource: patient(40) }, { resource: condition('M54.50', { onsetDaysAgo: 3 }) }] } as any, [
    { resourceType: 'ServiceRequest', id: 'mri-1', status: 'draft', intent: 'order', subject: { reference: 'Patient/p1' }, code: { coding: [{ system: 'http://www.ama-assn.org/go/cpt', code: '72148' }] } } as any,
  ]) as any;

async function raw(payload: string | Buffer, contentType = 'application/json') {
  const res = await app.inject({ method: 'POST', url: URL, payload, headers: { 'content-type': contentType } });
  return { status: res.statusCode, body: res.body };
}

function expectHandled(r: { status: number; body: string }) {
  expect(r.status, r.body.slice(0, 200)).not.toBe(500);
  expect([200, 400, 404, 412, 413, 415]).toContain(r.status);
  const body = JSON.parse(r.body);
  if (r.status === 200) expect(Array.isArray(body.cards)).toBe(true);
  else expect(body.resourceType).toBe('OperationOutcome');
  expect(r.body).not.toMatch(/\bat [^\n]*\.(ts|js):\d+/);
}

const json = (v: unknown) => JSON.stringify(v);
const CORPUS: Array<[string, string | Buffer, string?]> = [
  ['an empty body', ''],
  ['null', 'null'],
  ['an array', '[]'],
  ['a number', '42'],
  ['a string', '"order-select"'],
  ['truncated JSON', json(valid()).slice(0, 200)],
  ['a __proto__ key', json(valid()).replace('{', '{"__proto__":{"polluted":true},')],
  ['a constructor.prototype key', json(valid()).replace('{', '{"constructor":{"prototype":{"polluted":true}},')],
  ['__proto__ inside context', json(valid()).replace('"context":{', '"context":{"__proto__":{"isAdmin":true},')],
  ['a huge hook string', json({ ...valid(), hook: 'x'.repeat(900_000) })],
  ['a huge patientId', json({ ...valid(), context: { ...valid().context, patientId: 'p'.repeat(500_000) } })],
  ['non-UTF-8 bytes in a string', Buffer.concat([Buffer.from(json(valid()).slice(0, 20)), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from(json(valid()).slice(20))])],
  ['a lone surrogate', json(valid()).replace('"p1"', '"\\ud800"')],
  ['a NUL in the hook', json({ ...valid(), hook: 'order-select\u0000' })],
  ['deep nesting', `{"hook":${'['.repeat(10_000)}${']'.repeat(10_000)}}`],
  ['a long array', json({ ...valid(), extension: { list: Array.from({ length: 30_000 }, () => 1) } })],
  ['the wrong hook', json({ ...valid(), hook: 'patient-view' })],
  ['the wrong content type', json(valid()), 'text/plain'],
  ['form encoding', 'hook=order-select', 'application/x-www-form-urlencoded'],
  ['invalid FHIR in draftOrders', json({ ...valid(), context: { ...valid().context, draftOrders: { resourceType: 'Bundle', entry: [{ resource: { resourceType: 'ServiceRequest', id: 'mri-1', code: 'MRI' } }] } } })],
  ['selections of the wrong type', json({ ...valid(), context: { ...valid().context, selections: 'ServiceRequest/mri-1' } })],
  ['fhirServer that is not a URL', json({ ...valid(), fhirServer: 'not a url' })],
  ['fhirServer with a javascript: scheme', json({ ...valid(), fhirServer: 'javascript:alert(1)', prefetch: undefined })],
];

describe('a corpus of malformed requests', () => {
  it.each(CORPUS)('%s', async (_name, payload, type) => {
    expectHandled(await raw(payload, type));
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
  });
});

describe('a fuzzer over the request shape', () => {
  const key = fc.oneof(fc.constantFrom('__proto__', 'constructor', 'prototype', 'hook', 'context', 'prefetch', 'resourceType', 'entry'), fc.string({ maxLength: 12 }));
  const value = fc.letrec((tie) => ({
    any: fc.oneof(
      { depthSize: 'small' },
      fc.constant(null),
      fc.boolean(),
      fc.double(),
      fc.integer(),
      fc.string({ maxLength: 40 }),
      fc.string({ unit: 'binary', maxLength: 20 }),
      fc.array(tie('any'), { maxLength: 4 }),
      fc.dictionary(key, tie('any'), { maxKeys: 4 }),
    ),
  })).any;

  it('never answers 500 to any shape at the top or inside the context', async () => {
    await fc.assert(
      fc.asyncProperty(fc.dictionary(key, value, { maxKeys: 6 }), fc.dictionary(key, value, { maxKeys: 6 }), async (top, ctx) => {
        const base = valid();
        const body = { ...base, ...top, context: { ...base.context, ...ctx } };
        expectHandled(await raw(JSON.stringify(body)));
      }),
      { numRuns: 300 },
    );
  });

  it('never answers 500 to random bytes', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 300 }), async (bytes) => {
        expectHandled(await raw(Buffer.from(bytes)));
      }),
      { numRuns: 200 },
    );
  });
});

describe('10,000 bad requests', () => {
  it('leave the process up and its memory flat', async () => {
    const payloads = CORPUS.filter(([, p]) => p.length < 100_000).map(([, p, t]) => [p, t ?? 'application/json'] as const);
    const send = async (n: number) => {
      for (let i = 0; i < n; i++) {
        const [payload, type] = payloads[i % payloads.length]!;
        const res = await app.inject({ method: 'POST', url: URL, payload, headers: { 'content-type': type } });
        if (res.statusCode >= 500) throw new Error(`500 on request ${i}`);
      }
    };
    const gc = (globalThis as { gc?: () => void }).gc;
    await send(1000);
    gc?.();
    const before = process.memoryUsage().heapUsed;
    await send(10_000);
    gc?.();
    const grown = (process.memoryUsage().heapUsed - before) / 1024 / 1024;
    expect(grown).toBeLessThan(gc ? 20 : 80);
    expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
  }, 120_000);
});
