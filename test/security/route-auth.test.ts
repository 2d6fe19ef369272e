import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { requiredScope } from '../../src/http/plugins/auth-scopes.js';
import { realRules, RULES_DIR, tempDataDir } from '../support/app.js';
import { FIXTURE_CLOCK } from '../support/scenarios.js';
import { patient } from '../support/records.js';
import { rawRequest, routesFromPrintout } from '../support/raw-http.js';
import { lumbarMriRequest, testIssuer, type TestIssuer } from '../support/requests.js';

/**
 * Authentication is decided by the route, not by the text of the URL: every route under /cds-services and the admin
 * prefixes refuses a request without valid credentials, whatever the spelling of the request target. The routes come from
 * the running app's own route table, so a route added later is covered without touching this file.
 */
const BASE = 'https://cds.example.org';
const EHR = 'https://ehr.example.org/fhir';
const ADMIN = 'admin-token-for-tests-0123456789';
const SEED = Number(process.env.FC_SEED) || 20261201;

let app: FastifyInstance;
let port: number;
let ehr: TestIssuer;

const token = (aud: string) => ehr.token(aud);

const SERVICE = 'lbp-imaging-order-sign';
/** A value for each route parameter that names something that exists, so that only authentication can refuse. */
const PARAMS: Record<string, string> = { id: SERVICE, file: 'app.js', language: 'en', band: 'any' };
const concrete = (pattern: string) => pattern.replace(/:([A-Za-z]+)/g, (_m, name: string) => PARAMS[name] ?? 'x');

const hookBody = () => JSON.stringify(lumbarMriRequest());
const feedbackBody = () => JSON.stringify({ feedback: [{ card: randomUUID(), outcome: 'overridden', outcomeTimestamp: new Date().toISOString() }] });
const playgroundBody = () => JSON.stringify({ bundle: { resourceType: 'Bundle', type: 'collection', entry: [{ resource: patient(40) }] }, order: { modality: 'mri', lowBackPainReason: true } });
function bodyFor(path: string): string {
  if (path.endsWith('/feedback')) return feedbackBody();
  if (path.startsWith('/cds-services/')) return hookBody();
  return playgroundBody();
}

type Route = { path: string; method: string; scope: 'cds-hooks' | 'admin' };
let protectedRoutes: Route[] = [];

beforeAll(async () => {
  ehr = await testIssuer(EHR);
  const config = loadConfig({
    DATA_DIR: tempDataDir(),
    CDS_AUTH: 'jwt',
    PUBLIC_BASE_URL: BASE,
    ADMIN_TOKEN: ADMIN,
    LOG_LEVEL: 'silent',
    RULES_DIR,
    // Hundreds of refused calls from one address: the failure limit is tested on its own below.
    RATE_LIMIT_AUTH_FAILURES_PER_ADDRESS: '0',
  });
  app = await buildApp({ config, rules: await realRules(), now: () => FIXTURE_CLOCK, logger: false, trustedIssuers: [{ iss: EHR, jwks: { keys: [ehr.jwk] } }] });
  await app.listen({ port: 0, host: '127.0.0.1' });
  port = (app.server.address() as AddressInfo).port;
  protectedRoutes = routesFromPrintout(app.printRoutes({ commonPrefix: false })).flatMap(({ path, methods }) => {
    const scope = requiredScope(path);
    return scope ? methods.filter((m) => m !== 'OPTIONS').map((method) => ({ path, method, scope })) : [];
  });
});
afterAll(async () => {
  await app?.close();
});

/** Percent-encodes the characters at the chosen positions (never '/', which would make another path), in either hex case. */
function encode(path: string, positions: number[], upper: boolean): string {
  const chosen = new Set(positions.map((p) => p % path.length));
  let out = '';
  for (let i = 0; i < path.length; i++) {
    const c = path[i]!;
    if (!chosen.has(i) || c === '/') out += c;
    else {
      const hex = c.charCodeAt(0).toString(16).padStart(2, '0');
      out += `%${upper ? hex.toUpperCase() : hex}`;
    }
  }
  return out;
}

function randomCase(text: string, flips: number[]): string {
  const chosen = new Set(flips.map((p) => p % text.length));
  return [...text].map((c, i) => (chosen.has(i) ? (c === c.toLowerCase() ? c.toUpperCase() : c.toLowerCase()) : c)).join('');
}

/** A spelling of the route's path: `routes` says whether the router still reaches the route with it (then only 401 is right). */
const spelling = (path: string) =>
  fc
    .record({
      encodeAt: fc.array(fc.nat(), { maxLength: 6 }),
      upperHex: fc.boolean(),
      form: fc.constantFrom('origin', 'absolute-ours', 'absolute-other'),
      schemeCase: fc.array(fc.nat(), { maxLength: 5 }),
      hostCase: fc.array(fc.nat(), { maxLength: 8 }),
      explicitPort: fc.boolean(),
      query: fc.constantFrom('', '?', '?x=1', '?_format=json&a=%2F'),
      mangle: fc.constantFrom('none', 'none', 'double-slash', 'dot-segment', 'dot-dot', 'trailing-slash', 'case', 'semicolon'),
      caseAt: fc.array(fc.nat(), { minLength: 1, maxLength: 4 }),
    })
    .map((s) => {
      let p = encode(path, s.encodeAt, s.upperHex);
      switch (s.mangle) {
        case 'double-slash':
          p = `/${p}`;
          break;
        case 'dot-segment':
          p = `/.${p}`;
          break;
        case 'dot-dot':
          p = `/x/..${p}`;
          break;
        case 'trailing-slash':
          p = `${p}/`;
          break;
        case 'case':
          p = randomCase(p, s.caseAt);
          break;
        case 'semicolon':
          p = `${p};jsessionid=1`;
          break;
      }
      const scheme = randomCase('https', s.schemeCase);
      const host = randomCase('cds.example.org', s.hostCase) + (s.explicitPort ? ':443' : '');
      const target =
        s.form === 'origin' ? `${p}${s.query}` : s.form === 'absolute-ours' ? `${scheme}://${host}${p}${s.query}` : `${scheme}://evil.example.net${p}${s.query}`;
      return { target, form: s.form, routes: s.form !== 'absolute-other' && (s.mangle === 'none' || (s.mangle === 'case' && p === path)) };
    });

describe('every protected route refuses an unauthenticated request, whatever the spelling', () => {
  it('the route table is read: discovery, hooks, feedback and the admin pages are all there', () => {
    const listed = protectedRoutes.map((r) => `${r.method} ${r.path}`);
    for (const r of ['GET /cds-services', 'POST /cds-services/:id', 'POST /cds-services/:id/feedback', 'GET /analytics', 'GET /analytics/summary', 'GET /playground', 'POST /playground/evaluate']) {
      expect(listed).toContain(r);
    }
  });

  it('each route answers 2xx with valid credentials at its plain path (so the refusals below are authentication)', async () => {
    for (const route of protectedRoutes) {
      const path = concrete(route.path);
      const authorization = route.scope === 'admin' ? `Bearer ${ADMIN}` : `Bearer ${await token(`${BASE}${path}`)}`;
      const body = route.method === 'POST' ? bodyFor(path) : '';
      const res = await rawRequest(port, route.method, path, { authorization, ...(body ? { 'content-type': 'application/json' } : {}) }, body);
      expect({ route: `${route.method} ${route.path}`, status: res.status }).toEqual({ route: `${route.method} ${route.path}`, status: 200 });
    }
  });

  it('no spelling and no wrong credential gets 2xx; spellings the router still reaches get 401', async () => {
    for (const route of protectedRoutes) {
      const path = concrete(route.path);
      const credentials = fc.constantFrom<'none' | 'empty-bearer' | 'garbage' | 'alg-none' | 'wrong-audience' | 'wrong-admin' | 'other-scope'>(
        'none',
        'empty-bearer',
        'garbage',
        'alg-none',
        'wrong-audience',
        'wrong-admin',
        'other-scope',
      );
      await fc.assert(
        fc.asyncProperty(spelling(path), credentials, async (s, credential) => {
          let authorization: string | undefined;
          switch (credential) {
            case 'empty-bearer':
              authorization = 'Bearer';
              break;
            case 'garbage':
              authorization = 'Bearer not.a.token';
              break;
            case 'alg-none': {
              const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
              const now = Math.floor(Date.now() / 1000);
              authorization = `Bearer ${b64({ alg: 'none', typ: 'JWT' })}.${b64({ iss: EHR, aud: `${BASE}${path}`, exp: now + 300, iat: now, jti: randomUUID() })}.`;
              break;
            }
            case 'wrong-audience':
              authorization = `Bearer ${await token(`${BASE}/cds-services/some-other-service`)}`;
              break;
            case 'wrong-admin':
              authorization = `Basic ${Buffer.from(`admin:${ADMIN}x`).toString('base64')}`;
              break;
            case 'other-scope':
              // The admin token is no CDS Hooks JWT, and a CDS Hooks JWT is no admin token.
              authorization = route.scope === 'admin' ? `Bearer ${await token(`${BASE}${path}`)}` : `Bearer ${ADMIN}`;
              break;
          }
          const body = route.method === 'POST' ? bodyFor(path) : '';
          const headers: Record<string, string> = { ...(authorization ? { authorization } : {}), ...(body ? { 'content-type': 'application/json' } : {}) };
          const res = await rawRequest(port, route.method, s.target, headers, body);
          const seen = { route: `${route.method} ${route.path}`, target: s.target, credential, status: res.status };
          expect(res.status, JSON.stringify(seen)).toBeGreaterThanOrEqual(400);
          if (s.form === 'absolute-other') expect(res.status, JSON.stringify(seen)).toBe(400);
          if (s.routes) expect(res.status, JSON.stringify(seen)).toBe(401);
        }),
        { numRuns: 40, seed: SEED },
      );
    }
  });
});

describe('the request target', () => {
  it('in absolute form with another authority is refused with 400 on every route, public ones too', async () => {
    for (const target of ['http://evil.example.net/healthz', 'https://cds.example.org.evil.net/cds-services', 'https://cds.example.org:8443/cds-services', 'http://cds.example.org:443/readyz']) {
      const res = await rawRequest(port, 'GET', target);
      expect({ target, status: res.status }).toEqual({ target, status: 400 });
      expect(JSON.parse(res.body).resourceType).toBe('OperationOutcome');
    }
  });

  it('in absolute form with this service’s authority, or percent-encoded, works with a token for the route', async () => {
    const path = `/cds-services/${SERVICE}`;
    for (const target of [`HTTPS://CDS.Example.ORG${path}`, `https://cds.example.org:443${path}?x=1`, `/%63ds-services/${SERVICE.replace('-', '%2d')}`]) {
      const res = await rawRequest(port, 'POST', target, { authorization: `Bearer ${await token(`${BASE}${path}`)}`, 'content-type': 'application/json' }, hookBody());
      expect({ target, status: res.status }).toEqual({ target, status: 200 });
    }
  });

  it('is checked before authentication: a valid token does not carry a request for another host', async () => {
    const path = `/cds-services/${SERVICE}`;
    const res = await rawRequest(port, 'POST', `https://evil.example.net${path}`, { authorization: `Bearer ${await token(`${BASE}${path}`)}`, 'content-type': 'application/json' }, hookBody());
    expect(res.status).toBe(400);
  });
});

describe('a route registered outside its scope', () => {
  it('stops the service from starting', async () => {
    for (const path of ['/cds-services/debug', '/Analytics-export', '/playground2']) {
      const config = loadConfig({ DATA_DIR: tempDataDir(), CDS_AUTH: 'jwt', LOG_LEVEL: 'silent', RULES_DIR });
      const a = await buildApp({ config, rules: await realRules(), logger: false, trustedIssuers: [] });
      a.get(path, async () => ({ open: true }));
      await expect(a.ready()).rejects.toThrow(/must be registered in the (cds-hooks|admin) scope/);
      await a.close().catch(() => undefined);
    }
  });

  it('cannot pass the check by saying it belongs to the scope', async () => {
    const config = loadConfig({ DATA_DIR: tempDataDir(), CDS_AUTH: 'jwt', LOG_LEVEL: 'silent', RULES_DIR });
    const a = await buildApp({ config, rules: await realRules(), logger: false, trustedIssuers: [] });
    a.get('/cds-services/debug', { config: { authScope: 'cds-hooks' } as never }, async () => ({ open: true }));
    await expect(a.ready()).rejects.toThrow(/GET \/cds-services\/debug must be registered in the cds-hooks scope/);
    await a.close().catch(() => undefined);
  });
});
