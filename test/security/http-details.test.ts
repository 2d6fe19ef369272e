import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.js';
import { loggerOptions } from '../../src/observability/logging.js';
import { loadConfig } from '../../src/config.js';
import { realRules, RULES_DIR, tempDataDir, testApp } from '../support/app.js';
import { FIXTURE_CLOCK } from '../support/scenarios.js';
import { patient } from '../support/records.js';
import { lumbarMriRequest } from '../support/requests.js';

/** Media types: a JSON body must say it is JSON (415 otherwise, as an OperationOutcome); any charset parameter is fine. */
const SIGN = '/cds-services/lbp-imaging-order-sign';
const hookBody = () => JSON.stringify(lumbarMriRequest());
const feedbackBody = JSON.stringify({ feedback: [{ card: 'c-1', outcome: 'overridden', outcomeTimestamp: '2026-11-15T12:00:00Z' }] });
const playgroundBody = JSON.stringify({ bundle: { resourceType: 'Bundle', type: 'collection', entry: [{ resource: patient(40) }] }, order: { modality: 'mri', lowBackPainReason: true } });
const POSTS: Array<[string, () => string]> = [
  [SIGN, hookBody],
  [`${SIGN}/feedback`, () => feedbackBody],
  ['/playground/evaluate', () => playgroundBody],
];

let app: FastifyInstance;
beforeAll(async () => {
  app = await testApp();
});
afterAll(async () => {
  await app.close();
});

describe('media types', () => {
  it('text/plain, other types and no media type get 415 with an OperationOutcome on every POST route', async () => {
    for (const [url, body] of POSTS) {
      for (const type of ['text/plain', 'text/plain; charset=utf-8', 'application/x-www-form-urlencoded', 'application/xml', 'multipart/form-data; boundary=x', undefined]) {
        const res = await app.inject({ method: 'POST', url, payload: body(), headers: type ? { 'content-type': type } : {} });
        expect({ url, type, status: res.statusCode }).toEqual({ url, type, status: 415 });
        expect(res.json()).toMatchObject({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'not-supported' }] });
      }
      const empty = await app.inject({ method: 'POST', url });
      expect({ url, status: empty.statusCode }).toEqual({ url, status: 415 });
    }
  });

  it('a compressed body (Content-Encoding) is refused with 415, never inflated', async () => {
    const { gzipSync } = await import('node:zlib');
    for (const coding of ['gzip', 'deflate', 'br', 'GZIP']) {
      const res = await app.inject({ method: 'POST', url: SIGN, payload: gzipSync(hookBody()), headers: { 'content-type': 'application/json', 'content-encoding': coding } });
      expect({ coding, status: res.statusCode }).toEqual({ coding, status: 415 });
    }
    const identity = await app.inject({ method: 'POST', url: SIGN, payload: hookBody(), headers: { 'content-type': 'application/json', 'content-encoding': 'identity' } });
    expect(identity.statusCode).toBe(200);
  });

  it('application/json with any charset, and application/fhir+json, are read', async () => {
    for (const type of ['application/json', 'application/json; charset=utf-8', 'application/json;charset="UTF-8"', 'APPLICATION/JSON; Charset=utf-8', 'application/fhir+json', 'application/fhir+json; charset=utf-8', 'application/json+fhir']) {
      const res = await app.inject({ method: 'POST', url: SIGN, payload: hookBody(), headers: { 'content-type': type } });
      expect({ type, status: res.statusCode }).toEqual({ type, status: 200 });
      expect(res.json().cards.length).toBeGreaterThan(0);
    }
  });

  it('with auth on, authentication comes first: no token and text/plain is 401, not 415', async () => {
    const config = loadConfig({ DATA_DIR: tempDataDir(), CDS_AUTH: 'jwt', LOG_LEVEL: 'silent', RULES_DIR });
    const secured = await buildApp({ config, rules: await realRules(), logger: false, trustedIssuers: [] });
    const res = await secured.inject({ method: 'POST', url: SIGN, payload: hookBody(), headers: { 'content-type': 'text/plain' } });
    expect(res.statusCode).toBe(401);
    await secured.close();
  });
});

describe('request targets the router cannot decode', () => {
  it('get 400 with an OperationOutcome that does not echo the target', async () => {
    for (const url of ['/%zz', '/cds-services/%zz<script>', '/cds-services/lbp-imaging-order-sign%E0%A4%A']) {
      const res = await app.inject({ method: 'GET', url });
      expect({ url, status: res.statusCode }).toEqual({ url, status: 400 });
      expect(res.json()).toMatchObject({ resourceType: 'OperationOutcome', issue: [{ code: 'invalid' }] });
      expect(res.body).not.toContain('%zz');
      expect(res.body).not.toContain('script');
    }
  });
});

describe('errors in the log', () => {
  async function logsOf(level: string): Promise<string[]> {
    const lines: string[] = [];
    const config = loadConfig({ DATA_DIR: tempDataDir(), CDS_AUTH: 'off', LOG_LEVEL: level, RULES_DIR });
    const a = await buildApp({ config, rules: await realRules(), now: () => FIXTURE_CLOCK, logger: { ...(loggerOptions(config) as object), stream: { write: (l: string) => void lines.push(l) } } as any });
    a.get('/test-failure', async () => {
      throw Object.assign(new Error('disk on fire at /var/lib/secret-path'), { code: 'E_TEST_FAILURE' });
    });
    const res = await a.inject({ method: 'GET', url: '/test-failure' });
    expect(res.statusCode).toBe(500);
    expect(res.json()).toEqual({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'exception', diagnostics: 'Internal error' }] });
    expect(res.body).not.toMatch(/disk on fire|at .*\.ts/);
    await a.close();
    return lines;
  }

  it('at info, warn or error an error is its code and message, never a stack', async () => {
    for (const level of ['info', 'warn', 'error']) {
      const lines = await logsOf(level);
      const failure = lines.find((l) => l.includes('E_TEST_FAILURE'));
      expect(failure, `${level}: the failure is logged: ${lines.join('')}`).toBeDefined();
      for (const l of lines) {
        expect(l).not.toMatch(/"stack"/);
        expect(l).not.toMatch(/\\n\s+at /);
      }
    }
  });

  it('at debug the stack is there for whoever debugs', async () => {
    const lines = await logsOf('debug');
    expect(lines.some((l) => /"stack":".*\\n\s+at /.test(l))).toBe(true);
  });
});
