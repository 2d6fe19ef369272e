import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { exportJWK, generateKeyPair, SignJWT, type JWK, type CryptoKey } from 'jose';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import type { TrustedIssuer } from '../../src/auth/trusted-issuers.js';
import { realRules, RULES_DIR, tempDataDir } from '../support/app.js';
import { FIXTURE_CLOCK, requestFor } from '../support/scenarios.js';
import { condition, patient } from '../support/records.js';

/** Real tokens, signed with keys made here, against the service with CDS_AUTH=jwt (CDS Hooks 2.0 "Trusting CDS Clients"). */
const BASE = 'https://cds.example.org';
const DISCOVERY = `${BASE}/cds-services`;
const HOOK_PATH = '/cds-services/lbp-imaging-order-sign';
const EHR_A = 'https://ehr-a.example.org/fhir';
const EHR_B = 'https://ehr-b.example.org/fhir';
const SANDBOX = 'https://sandbox.example.org';

type Key = { privateKey: CryptoKey; publicJwk: JWK; alg: string; kid: string };
async function key(alg: string, kid: string): Promise<Key> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' }, alg, kid };
}

/** A JWKS served on loopback, whose keys the test can rotate; it counts the fetches. */
class JwksServer {
  keys: JWK[] = [];
  fetches = 0;
  private server?: Server;
  url = '';
  async start(): Promise<void> {
    this.server = createServer((_req, res) => {
      this.fetches++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: this.keys }));
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/jwks.json`;
  }
  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((r) => this.server!.close(() => r()));
  }
}

let es384: Key, rs384: Key, rs256: Key, rotated: Key, foreign: Key, sandboxKey: Key;
const jwksB = new JwksServer();
const jwksSandbox = new JwksServer();
const jwksUnlisted = new JwksServer();
let app: FastifyInstance;
const logs: string[] = [];

async function sign(k: Key, claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const body = { iss: EHR_A, aud: `${BASE}${HOOK_PATH}`, exp: now + 300, iat: now, jti: randomUUID(), ...claims };
  for (const [k2, v] of Object.entries(body)) if (v === undefined) delete (body as Record<string, unknown>)[k2];
  return new SignJWT(body).setProtectedHeader({ alg: k.alg, kid: k.kid, typ: 'JWT', ...header }).sign(k.privateKey);
}

const hookBody = () =>
  requestFor('order-sign', { resourceType: 'Bundle', type: 'collection', entry: [{ resource: patient(40) }, { resource: condition('M54.50', { onsetDaysAgo: 3 }) }] } as any, [
    { resourceType: 'ServiceRequest', id: 'mri-1', status: 'draft', intent: 'order', subject: { reference: 'Patient/p1' }, code: { coding: [{ system: 'http://www.ama-assn.org/go/cpt', code: '72148' }] } } as any,
  ]);

async function callHook(token?: string, target: FastifyInstance = app) {
  const res = await target.inject({ method: 'POST', url: HOOK_PATH, payload: hookBody() as any, headers: token ? { authorization: `Bearer ${token}` } : {} });
  return { status: res.statusCode, body: res.body, headers: res.headers };
}

async function makeApp(env: Record<string, string> = {}, cooldown = 0): Promise<FastifyInstance> {
  const issuers: TrustedIssuer[] = [
    { iss: EHR_A, jwks: { keys: [es384.publicJwk] } },
    { iss: EHR_B, jwks_uri: jwksB.url, tenant: 'tenant-b' },
    { iss: SANDBOX, jku: [jwksSandbox.url] },
  ];
  const config = loadConfig({ DATA_DIR: tempDataDir(), CDS_AUTH: 'jwt', PUBLIC_BASE_URL: BASE, LOG_LEVEL: 'info', RULES_DIR, ...env });
  const stream = { write: (l: string) => void logs.push(l) };
  const a = await buildApp({ config, rules: await realRules(), now: () => FIXTURE_CLOCK, trustedIssuers: issuers, jwksCooldownMs: cooldown, logger: { level: 'info', stream } as any });
  await a.ready();
  return a;
}

beforeAll(async () => {
  [es384, rs384, rs256, rotated, foreign, sandboxKey] = await Promise.all([
    key('ES384', 'a-1'),
    key('RS384', 'b-1'),
    key('RS256', 'b-2'),
    key('RS384', 'b-3'),
    key('ES384', 'a-1'),
    key('ES384', 's-1'),
  ]);
  await Promise.all([jwksB.start(), jwksSandbox.start(), jwksUnlisted.start()]);
  jwksB.keys = [rs384.publicJwk, rs256.publicJwk];
  jwksSandbox.keys = [sandboxKey.publicJwk];
  jwksUnlisted.keys = [sandboxKey.publicJwk];
  app = await makeApp();
});
afterAll(async () => {
  await app.close();
  await Promise.all([jwksB.stop(), jwksSandbox.stop(), jwksUnlisted.stop()]);
});

describe('valid tokens are let in', () => {
  it('ES384 with an inline JWKS, on a hook call and on discovery (aud = the exact URL called)', async () => {
    expect((await callHook(await sign(es384))).status).toBe(200);
    const res = await app.inject({ method: 'GET', url: '/cds-services', headers: { authorization: `Bearer ${await sign(es384, { aud: DISCOVERY })}` } });
    expect(res.statusCode).toBe(200);
  });

  it('RS384 and RS256 from a jwks_uri, with the issuer’s tenant, and Epic’s nbf and sub', async () => {
    const now = Math.floor(Date.now() / 1000);
    expect((await callHook(await sign(rs384, { iss: EHR_B, tenant: 'tenant-b', nbf: now - 300, sub: 'client-id' }))).status).toBe(200);
    expect((await callHook(await sign(rs256, { iss: EHR_B, tenant: 'tenant-b' }))).status).toBe(200);
  });

  it('aud as an array that holds the URL called', async () => {
    expect((await callHook(await sign(es384, { aud: ['https://other.example.org', `${BASE}${HOOK_PATH}`] }))).status).toBe(200);
  });

  it('a jku on the issuer’s allow-list', async () => {
    expect((await callHook(await sign(sandboxKey, { iss: SANDBOX }, { jku: jwksSandbox.url }))).status).toBe(200);
  });

  it('a key rotation: a new kid makes the service fetch the issuer’s keys again', async () => {
    jwksB.keys = [rs384.publicJwk, rotated.publicJwk];
    expect((await callHook(await sign(rotated, { iss: EHR_B, tenant: 'tenant-b' }))).status).toBe(200);
    jwksB.keys = [rs384.publicJwk, rs256.publicJwk];
  });
});

describe('every refusal is a bare 401', () => {
  const now = () => Math.floor(Date.now() / 1000);
  const cases: Array<[string, () => Promise<string | undefined>]> = [
    ['no token', async () => undefined],
    ['an expired token', () => sign(es384, { exp: now() - 120, iat: now() - 600 })],
    ['iat in the future', () => sign(es384, { iat: now() + 300 })],
    ['nbf ahead', () => sign(es384, { nbf: now() + 300 })],
    ['the wrong aud (the discovery URL on a hook call)', () => sign(es384, { aud: DISCOVERY })],
    ['an aud on another host', () => sign(es384, { aud: `https://evil.example.org${HOOK_PATH}` })],
    ['an unknown iss', () => sign(es384, { iss: 'https://unknown.example.org' })],
    ['a trusted iss with a foreign key (same kid)', () => sign(foreign)],
    ['a kid not in the JWKS', () => sign(es384, {}, { kid: 'a-9' })],
    ['no jti', () => sign(es384, { jti: undefined })],
    ['no exp', () => sign(es384, { exp: undefined })],
    ['the wrong tenant', () => sign(rs384, { iss: EHR_B, tenant: 'tenant-x' })],
    ['no tenant where the issuer names one', () => sign(rs384, { iss: EHR_B })],
    ['a jku not on the allow-list', () => sign(sandboxKey, { iss: SANDBOX }, { jku: jwksUnlisted.url })],
    ['a jku for an issuer with an inline JWKS, signed by a key only that jku holds', () => sign(sandboxKey, {}, { jku: jwksUnlisted.url })],
    ['alg none', async () => {
      const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
      return `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ iss: EHR_A, aud: `${BASE}${HOOK_PATH}`, exp: now() + 300, iat: now(), jti: randomUUID() })}.`;
    }],
    ['HS256 signed with the issuer’s public key as the secret', async () => {
      const secret = new TextEncoder().encode(JSON.stringify(es384.publicJwk));
      return new SignJWT({ iss: EHR_A, aud: `${BASE}${HOOK_PATH}`, exp: now() + 300, iat: now(), jti: randomUUID() }).setProtectedHeader({ alg: 'HS256', kid: 'a-1' }).sign(secret);
    }],
    ['a tampered signature', async () => {
      const t = await sign(es384);
      const [h, p, s] = t.split('.');
      return `${h}.${p}.${s!.slice(0, -4)}${s!.slice(-4) === 'AAAA' ? 'BBBB' : 'AAAA'}`;
    }],
    ['a tampered payload', async () => {
      const [h, , s] = (await sign(es384)).split('.');
      const forged = Buffer.from(JSON.stringify({ iss: EHR_A, aud: `${BASE}${HOOK_PATH}`, exp: now() + 9999, iat: now(), jti: 'x' })).toString('base64url');
      return `${h}.${forged}.${s}`;
    }],
    ['not a JWT', async () => 'not-a-token'],
  ];

  it.each(cases)('%s', async (_name, make) => {
    const r = await callHook(await make());
    expect(r.status).toBe(401);
    expect(JSON.parse(r.body)).toEqual({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'security', diagnostics: 'Unauthorized' }] });
    expect(r.headers['www-authenticate']).toBe('Bearer');
  });

  it('a replayed jti', async () => {
    const token = await sign(es384);
    expect((await callHook(token)).status).toBe(200);
    expect((await callHook(token)).status).toBe(401);
  });

  it('logs the reason, never the token', async () => {
    const token = await sign(es384, { exp: now() - 120, iat: now() - 600 });
    logs.length = 0;
    await callHook(token);
    const refused = logs.map((l) => JSON.parse(l)).find((l) => l.msg === 'CDS Hooks JWT refused');
    expect(refused).toMatchObject({ reason: 'token expired', iss: EHR_A });
    expect(logs.join('')).not.toContain(token.split('.')[2]);
  });

  it('fetches a jwks_uri at most once per cooldown, however many unknown kids arrive', async () => {
    const strict = await makeApp({}, 30_000);
    try {
      const before = jwksB.fetches;
      expect((await callHook(await sign(rs384, { iss: EHR_B, tenant: 'tenant-b' }), strict)).status).toBe(200);
      for (let i = 0; i < 5; i++) expect((await callHook(await sign(rs384, { iss: EHR_B, tenant: 'tenant-b' }, { kid: `unknown-${i}` }), strict)).status).toBe(401);
      expect(jwksB.fetches - before).toBe(1);
    } finally {
      await strict.close();
    }
  });
});

describe('what needs no token', () => {
  it('health and readiness, and CORS preflights from an allowed origin', async () => {
    expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    const ready = await app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.json()).toMatchObject({ status: 'ready', auth: 'jwt' });
    const preflight = await app.inject({
      method: 'OPTIONS',
      url: HOOK_PATH,
      headers: { origin: 'https://sandbox.cds-hooks.org', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' },
    });
    expect(preflight.statusCode).toBe(204);
    expect(preflight.headers['access-control-allow-origin']).toBe('https://sandbox.cds-hooks.org');
    expect(String(preflight.headers['access-control-allow-headers']).toLowerCase()).toContain('authorization');
  });

  it('no CORS grant for an origin that is not configured', async () => {
    const preflight = await app.inject({ method: 'OPTIONS', url: HOOK_PATH, headers: { origin: 'https://evil.example.org', 'access-control-request-method': 'POST' } });
    expect(preflight.headers['access-control-allow-origin']).toBeUndefined();
  });
});

describe('rate limits', () => {
  it('per issuer, and per address, answer 429 with an OperationOutcome', async () => {
    const limited = await makeApp({ RATE_LIMIT_PER_ISSUER: '3', RATE_LIMIT_PER_ADDRESS: '0' });
    try {
      const statuses = [];
      for (let i = 0; i < 5; i++) statuses.push((await callHook(await sign(es384), limited)).status);
      expect(statuses).toEqual([200, 200, 200, 429, 429]);
      // Another issuer has its own allowance.
      expect((await callHook(await sign(rs384, { iss: EHR_B, tenant: 'tenant-b' }), limited)).status).toBe(200);
    } finally {
      await limited.close();
    }
    const byAddress = await makeApp({ RATE_LIMIT_PER_ADDRESS: '2', RATE_LIMIT_PER_ISSUER: '0' });
    try {
      const statuses = [];
      for (let i = 0; i < 3; i++) statuses.push((await byAddress.inject({ method: 'GET', url: '/healthz' })).statusCode);
      expect(statuses).toEqual([200, 200, 429]);
      const r = await byAddress.inject({ method: 'GET', url: '/healthz' });
      expect(r.json()).toMatchObject({ resourceType: 'OperationOutcome', issue: [{ code: 'throttled' }] });
    } finally {
      await byAddress.close();
    }
  });
});
