import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { realRules, RULES_DIR, tempDataDir } from '../support/app.js';
import { FIXTURE_CLOCK } from '../support/scenarios.js';
import { rawRequest } from '../support/raw-http.js';
import { lumbarMriRequest, testIssuer, type TestIssuer } from '../support/requests.js';

/**
 * A token opens only the route its `aud` names. The route the router reaches decides: neither the URL as a WHATWG parser
 * reads it (a backslash is a slash there, and `..` then removes a segment) nor a parameter whose decoded value holds a
 * slash may make the token's `aud` look like the route called. Such a token is refused with 401 before the route runs,
 * and its `jti` stays unspent.
 */
const BASE = 'https://cds.example.org';
const EHR = 'https://ehr.example.org/fhir';
const SIGN = 'lbp-imaging-order-sign';
const SELECT = 'lbp-imaging-order-select';

let app: FastifyInstance;
let port: number;
let ehr: TestIssuer;

const token = (aud: string) => ehr.token(aud);

const hookBody = () => JSON.stringify(lumbarMriRequest());
const json = { 'content-type': 'application/json' };

beforeAll(async () => {
  ehr = await testIssuer(EHR);
  const config = loadConfig({ DATA_DIR: tempDataDir(), CDS_AUTH: 'jwt', PUBLIC_BASE_URL: BASE, LOG_LEVEL: 'silent', RULES_DIR, RATE_LIMIT_AUTH_FAILURES_PER_ADDRESS: '0' });
  app = await buildApp({ config, rules: await realRules(), now: () => FIXTURE_CLOCK, logger: false, trustedIssuers: [{ iss: EHR, jwks: { keys: [ehr.jwk] } }] });
  await app.listen({ port: 0, host: '127.0.0.1' });
  port = (app.server.address() as AddressInfo).port;
});
afterAll(async () => {
  await app?.close();
});

describe('a token for one route does not authenticate a call that reaches another', () => {
  it('the plain calls work (so the refusals below are the audience check)', async () => {
    const res = await rawRequest(port, 'POST', `/cds-services/${SIGN}`, { authorization: `Bearer ${await token(`${BASE}/cds-services/${SIGN}`)}`, ...json }, hookBody());
    expect(res.status).toBe(200);
  });

  // The router reaches POST /cds-services/:id with id `lbp-imaging-order-select\..\lbp-imaging-order-sign`; new URL() reads
  // the same target as /cds-services/lbp-imaging-order-sign, and that form is offered as an audience.
  const confusions: Array<{ name: string; target: string; aud: string }> = [
    { name: 'backslashes and a dot segment (WHATWG reading)', target: `/cds-services/${SELECT}\\..\\${SIGN}`, aud: `${BASE}/cds-services/${SIGN}` },
    { name: 'backslashes to discovery', target: '/cds-services/x\\..\\..\\cds-services', aud: `${BASE}/cds-services` },
    { name: 'backslashes to feedback', target: `/cds-services/${SELECT}\\..\\${SIGN}\\feedback`, aud: `${BASE}/cds-services/${SIGN}/feedback` },
    { name: 'an encoded slash in the id (decoded into the canonical path)', target: `/cds-services/${SIGN}%2Ffeedback`, aud: `${BASE}/cds-services/${SIGN}/feedback` },
  ];
  for (const { name, target, aud } of confusions) {
    it(`${name}: 401, and the token is still good for the route it names`, async () => {
      const t = await token(aud);
      const confused = await rawRequest(port, 'POST', target, { authorization: `Bearer ${t}`, ...json }, hookBody());
      expect({ target, status: confused.status }).toEqual({ target, status: 401 });
      // Refused on the audience, the jti was never spent: the EHR's call to the route it meant still goes through.
      const path = new URL(aud).pathname;
      const body = path.endsWith('/feedback') ? JSON.stringify({ feedback: [{ card: randomUUID(), outcome: 'overridden', outcomeTimestamp: new Date().toISOString() }] }) : hookBody();
      const method = path === '/cds-services' ? 'GET' : 'POST';
      const meant = await rawRequest(port, method, path, { authorization: `Bearer ${t}`, ...(method === 'POST' ? json : {}) }, method === 'POST' ? body : '');
      expect({ path, status: meant.status }).toEqual({ path, status: 200 });
    });
  }
});
