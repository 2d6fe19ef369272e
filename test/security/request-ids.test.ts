import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { testApp, realRules, RULES_DIR, tempDataDir } from '../support/app.js';
import { TestFhirServer } from '../support/fhir-server.js';
import { condition, patient } from '../support/records.js';
import { FIXTURE_CLOCK, requestFor } from '../support/scenarios.js';

/**
 * What goes into a URL or a reference is checked first: the ids of the context and of the draft orders must be FHIR
 * ids, and fhirServer a plain http(s) base URL on an allowed origin. Anything else is a 400 with an OperationOutcome
 * that names the field, never a 500, and no query leaves for the FHIR server.
 */
const FHIR_ID = /^[A-Za-z0-9\-.]{1,64}$/;
const isFhirId = (s: string) => FHIR_ID.test(s) && s !== '.' && s !== '..';
const SELECT = '/cds-services/lbp-imaging-order-select';
const SIGN = '/cds-services/lbp-imaging-order-sign';

const server = new TestFhirServer();
let app: FastifyInstance;
beforeAll(async () => {
  await server.start();
  app = await testApp({ RATE_LIMIT_PER_ADDRESS: '0', RATE_LIMIT_PER_ISSUER: '0' });
});
afterAll(async () => {
  await app.close();
  await server.stop();
});
beforeEach(() => server.reset());

const order = (id = 'mri-1') => ({ resourceType: 'ServiceRequest', id, status: 'draft', intent: 'order', subject: { reference: 'Patient/p1' }, code: { coding: [{ system: 'http://www.ama-assn.org/go/cpt', code: '72148' }] }, reasonCode: [{ text: 'low back pain', coding: [{ system: 'http://snomed.info/sct', code: '279039007' }] }] }) as any;
const record = { resourceType: 'Bundle', type: 'collection', entry: [{ resource: patient(40) }, { resource: condition('M54.50', { onsetDaysAgo: 3 }) }] } as any;

/** An order-select call with no prefetch: every key would be fetched from the test FHIR server. */
function fetching(hook: 'order-select' | 'order-sign' = 'order-select'): any {
  const r = requestFor(hook, record, [order()]) as any;
  delete r.prefetch;
  r.fhirServer = server.baseUrl;
  return r;
}

async function post(body: unknown, target = app, url = SELECT, headers: Record<string, string> = {}) {
  const res = await target.inject({ method: 'POST', url, payload: body as any, headers });
  return { status: res.statusCode, body: res.json() as any, raw: res.body };
}

function expectRefused(r: { status: number; body: any; raw: string }, field: RegExp) {
  expect(r.status, r.raw.slice(0, 300)).toBe(400);
  expect(r.body.resourceType).toBe('OperationOutcome');
  expect(r.body.issue[0]).toMatchObject({ severity: 'error', code: 'invalid' });
  expect(r.body.issue[0].diagnostics).toMatch(field);
  expect(r.raw).not.toMatch(/\bat [^\n]*\.(ts|js):\d+/);
  expect(server.requests).toEqual([]);
}

/** Strings that are not FHIR ids: path tricks, separators, spaces, non-ASCII, too long, anything. */
const badId = fc.oneof(
  fc.constantFrom('', '.', '..', '../Patient', 'p1/../../x', 'p1/', '/p1', 'p1?_format=xml', 'p1#x', 'p 1', 'p1\n', 'p%2F1', 'p\u0000', 'é', 'p1&patient=p2', 'a'.repeat(65), '..\\..\\x'),
  fc.string({ maxLength: 80 }).filter((s) => !isFhirId(s)),
  fc.string({ unit: 'binary', maxLength: 20 }).filter((s) => !isFhirId(s)),
);
const goodId = fc.stringMatching(/^[A-Za-z0-9\-.]{1,64}$/).filter(isFhirId);

describe('context.patientId', () => {
  it('that is not a FHIR id is a 400 naming it, and nothing is fetched', async () => {
    await fc.assert(
      fc.asyncProperty(badId, async (id) => {
        server.requests.length = 0;
        const r = fetching();
        r.context.patientId = id;
        expectRefused(await post(r), /context\.patientId/);
      }),
      { numRuns: 150 },
    );
  });

  it('is checked with the full prefetch too, where nothing would be fetched', async () => {
    const r = requestFor('order-select', record, [order()]) as any;
    r.context.patientId = '../Patient/p2';
    expectRefused(await post(r), /context\.patientId must be a FHIR id/);
  });

  it('that is a FHIR id goes into the queries as itself, under fhirServer only', async () => {
    await fc.assert(
      fc.asyncProperty(goodId, async (id) => {
        server.requests.length = 0;
        const r = fetching();
        r.context.patientId = id;
        r.context.draftOrders.entry[0].resource.subject.reference = `Patient/${id}`;
        const res = await post(r);
        expect(res.status).toBe(200);
        // The record is not on the server: nothing proves the absence of red flags.
        expect(res.body.cards[0].source.topic.code).toBe('red-flags-unverified');
        expect(server.requests.length).toBe(5);
        for (const q of server.requests) expect(q.url === `/Patient/${id}` || q.url.includes(`patient=${id}&`)).toBe(true);
      }),
      { numRuns: 40 },
    );
  });

  it('like the CDS Hooks sandbox sends them (SMART-1288992, a uuid) is read', async () => {
    for (const id of ['SMART-1288992', randomUUID(), 'p1', 'a.b-C9']) {
      server.requests.length = 0;
      const r = fetching();
      r.context.patientId = id;
      expect((await post(r)).status).toBe(200);
      expect(server.requests.some((q) => q.url === `/Patient/${id}`)).toBe(true);
    }
  });
});

describe('context.encounterId, context.userId and the draft orders', () => {
  it('an encounterId that is not a FHIR id is a 400 naming it', async () => {
    await fc.assert(
      fc.asyncProperty(badId, async (id) => {
        server.requests.length = 0;
        const r = fetching('order-sign');
        r.context.encounterId = id;
        expectRefused(await post(r, app, SIGN), /context\.encounterId/);
      }),
      { numRuns: 60 },
    );
  });

  it('a userId of a user type whose id is not a FHIR id is a 400 naming it', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('Practitioner', 'PractitionerRole', 'Patient', 'RelatedPerson'), badId.filter((s) => s !== ''), async (type, id) => {
        server.requests.length = 0;
        const r = fetching();
        r.context.userId = `${type}/${id}`;
        expectRefused(await post(r), /context\.userId/);
      }),
      { numRuns: 60 },
    );
  });

  it('a draft order whose id is not a FHIR id is a 400 naming it', async () => {
    await fc.assert(
      fc.asyncProperty(badId.filter((s) => s !== ''), fc.boolean(), async (id, select) => {
        server.requests.length = 0;
        const r = fetching(select ? 'order-select' : 'order-sign');
        r.context.draftOrders.entry[0].resource.id = id;
        if (select) r.context.selections = [`ServiceRequest/${id}`];
        expectRefused(await post(r, app, select ? SELECT : SIGN), /context\.draftOrders\.entry\[0\]\.resource\.id/);
      }),
      { numRuns: 80 },
    );
  });

  it('valid ids are accepted', async () => {
    const r = fetching('order-sign');
    r.context.encounterId = 'enc-1';
    r.context.userId = 'PractitionerRole/COREPRACTITIONER1';
    r.context.draftOrders.entry[0].resource.id = 'mri-1.v2';
    expect((await post(r, app, SIGN)).status).toBe(200);
  });
});

describe('fhirServer', () => {
  /** The test server's own address, spoiled: a defect would send the query (and the token) to a live socket. */
  const badServer = () =>
    fc.oneof(
      fc.constantFrom('ftp:', 'file:', 'javascript:', 'data:', 'ws:', 'wss:', 'gopher:', 'blob:', 'httpx:').map((scheme) => server.baseUrl.replace(/^http:/, scheme)),
      fc.tuple(fc.stringMatching(/^[a-z0-9]{1,8}$/), fc.option(fc.stringMatching(/^[a-z0-9]{0,8}$/))).map(([u, p]) => server.baseUrl.replace('://', `://${u}${p === null ? '' : `:${p}`}@`)),
      fc.stringMatching(/^[a-z0-9=&]{0,12}$/).map((q) => `${server.baseUrl}?${q}`),
      fc.stringMatching(/^[a-z0-9]{0,12}$/).map((f) => `${server.baseUrl}#${f}`),
      fc.tuple(fc.constantFrom(' ', '\t', '\n', '\r', '\u0000', '\u001f', '\u007f', '\\'), fc.nat()).map(([c, at]) => {
        const i = at % (server.baseUrl.length + 1);
        return `${server.baseUrl.slice(0, i)}${c}${server.baseUrl.slice(i)}`;
      }),
    );

  it('that is not a plain http(s) base URL is a 400 naming it, and nothing is fetched', async () => {
    await fc.assert(
      fc.asyncProperty(badServer(), async (url) => {
        server.requests.length = 0;
        const r = fetching();
        r.fhirServer = url;
        const res = await post(r);
        expectRefused(res, /fhirServer/);
      }),
      { numRuns: 200 },
    );
  });

  it('http: is accepted with auth off', async () => {
    expect((await post(fetching())).status).toBe(200);
    expect(server.requests.length).toBe(5);
  });

  it('FHIR_SERVER_ALLOWLIST refuses any other origin with a 400, and lets its own through', async () => {
    const listed = await testApp({ FHIR_SERVER_ALLOWLIST: 'https://ehr.example.org, http://127.0.0.2:1' });
    const ours = await testApp({ FHIR_SERVER_ALLOWLIST: `https://ehr.example.org,${new URL(server.baseUrl).origin}` });
    try {
      expectRefused(await post(fetching(), listed), /fhirServer is not one of the FHIR servers/);
      // Another port of an allowed host is another origin.
      const r = fetching();
      r.fhirServer = server.baseUrl.replace('127.0.0.1', '127.0.0.2');
      expectRefused(await post(r, listed), /fhirServer is not one/);
      expect((await post(fetching(), ours)).status).toBe(200);
      expect(server.requests.length).toBe(5);
    } finally {
      await listed.close();
      await ours.close();
    }
  });
});

describe('fhirServer with CDS_AUTH=jwt', () => {
  const BASE = 'https://cds.example.org';
  const ISS = 'https://ehr.example.org/fhir';
  let key: { privateKey: CryptoKey; publicJwk: JWK };

  async function jwtApp(env: Record<string, string> = {}) {
    const config = loadConfig({ DATA_DIR: tempDataDir(), CDS_AUTH: 'jwt', PUBLIC_BASE_URL: BASE, LOG_LEVEL: 'silent', RULES_DIR, RATE_LIMIT_PER_ADDRESS: '0', RATE_LIMIT_PER_ISSUER: '0', ...env });
    const a = await buildApp({ config, rules: await realRules(), now: () => FIXTURE_CLOCK, logger: false, trustedIssuers: [{ iss: ISS, jwks: { keys: [key.publicJwk] } }] });
    await a.ready();
    return a;
  }
  const token = async () => {
    const now = Math.floor(Date.now() / 1000);
    const jwt = await new SignJWT({ iss: ISS, sub: 'ehr-client', aud: `${BASE}${SELECT}`, exp: now + 300, iat: now, jti: randomUUID() })
      .setProtectedHeader({ alg: 'ES384', kid: 'k-1', typ: 'JWT' })
      .sign(key.privateKey);
    return { authorization: `Bearer ${jwt}` };
  };

  beforeAll(async () => {
    const pair = await generateKeyPair('ES384', { extractable: true });
    key = { privateKey: pair.privateKey, publicJwk: { ...(await exportJWK(pair.publicKey)), kid: 'k-1', alg: 'ES384', use: 'sig' } };
  });

  it('an http: fhirServer is a 400 (TLS is required), unless FHIR_ALLOW_HTTP=true', async () => {
    const strict = await jwtApp();
    const relaxed = await jwtApp({ FHIR_ALLOW_HTTP: 'true' });
    try {
      expectRefused(await post(fetching(), strict, SELECT, await token()), /fhirServer must be an https: URL/);
      const ok = await post(fetching(), relaxed, SELECT, await token());
      expect(ok.status).toBe(200);
      expect(server.requests.length).toBe(5);
    } finally {
      await strict.close();
      await relaxed.close();
    }
  });

  it('an https: fhirServer is accepted', async () => {
    const strict = await jwtApp();
    try {
      // Full prefetch: nothing needs fetching, so no TLS server is needed to see the URL accepted.
      const r = requestFor('order-select', record, [order()]) as any;
      r.fhirServer = 'https://ehr.example.org/fhir/R4';
      expect((await post(r, strict, SELECT, await token())).status).toBe(200);
    } finally {
      await strict.close();
    }
  });
});
