import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { realRules, RULES_DIR, tempDataDir } from '../support/app.js';
import { FIXTURE_CLOCK } from '../support/scenarios.js';

/**
 * The per-issuer limit counts only tokens whose signature verified: tokens that merely claim an EHR's `iss` cannot spend
 * that EHR's allowance (a denial of service on the real EHR). Refused tokens count against the sender's address instead.
 */
const BASE = 'https://cds.example.org';
const EHR = 'https://ehr.example.org/fhir';
let trusted: { privateKey: CryptoKey; jwk: JWK };
let forger: { privateKey: CryptoKey };

async function token(privateKey: CryptoKey): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ iss: EHR, aud: `${BASE}/cds-services`, exp: now + 300, iat: now, jti: randomUUID() }).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).sign(privateKey);
}

async function makeApp(env: Record<string, string>): Promise<FastifyInstance> {
  const config = loadConfig({ DATA_DIR: tempDataDir(), CDS_AUTH: 'jwt', PUBLIC_BASE_URL: BASE, LOG_LEVEL: 'silent', RULES_DIR, RATE_LIMIT_PER_ADDRESS: '0', ...env });
  const app = await buildApp({ config, rules: await realRules(), now: () => FIXTURE_CLOCK, logger: false, trustedIssuers: [{ iss: EHR, jwks: { keys: [trusted.jwk] } }] });
  await app.ready();
  return app;
}

const discovery = async (app: FastifyInstance, key: CryptoKey, ip = '10.0.0.1', forwardedFor?: string) =>
  (await app.inject({ method: 'GET', url: '/cds-services', remoteAddress: ip, headers: { authorization: `Bearer ${await token(key)}`, ...(forwardedFor ? { 'x-forwarded-for': forwardedFor } : {}) } })).statusCode;
/** The statuses of `n` calls made one after another. */
async function statuses(n: number, call: () => Promise<number>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(await call());
  return out;
}

beforeAll(async () => {
  const a = await generateKeyPair('ES256', { extractable: true });
  trusted = { privateKey: a.privateKey, jwk: { ...(await exportJWK(a.publicKey)), kid: 'k1', alg: 'ES256' } };
  forger = { privateKey: (await generateKeyPair('ES256')).privateKey };
});

describe('rate limits and authentication', () => {
  it('behind a trusted proxy, refused tokens count against the client it names, not the proxy', async () => {
    const app = await makeApp({ RATE_LIMIT_PER_ISSUER: '1000', RATE_LIMIT_AUTH_FAILURES_PER_ADDRESS: '2', TRUST_PROXY: '10.0.0.1' });
    try {
      expect(await statuses(3, () => discovery(app, forger.privateKey, '10.0.0.1', '203.0.113.9'))).toEqual([401, 401, 429]);
      // Another client behind the same proxy is not held to the first one's refusals.
      expect(await discovery(app, forger.privateKey, '10.0.0.1', '198.51.100.7')).toBe(401);
      // Without TRUST_PROXY the header is ignored: a client cannot pick its own address.
      const direct = await makeApp({ RATE_LIMIT_PER_ISSUER: '1000', RATE_LIMIT_AUTH_FAILURES_PER_ADDRESS: '2' });
      try {
        let n = 0;
        expect(await statuses(3, () => discovery(direct, forger.privateKey, '10.9.9.9', `192.0.2.${++n}`))).toEqual([401, 401, 429]);
      } finally {
        await direct.close();
      }
    } finally {
      await app.close();
    }
  });

  it('forged tokens claiming an issuer do not spend its allowance', async () => {
    const app = await makeApp({ RATE_LIMIT_PER_ISSUER: '3', RATE_LIMIT_AUTH_FAILURES_PER_ADDRESS: '1000' });
    try {
      expect(await statuses(10, () => discovery(app, forger.privateKey, '10.6.6.6'))).toEqual(Array(10).fill(401));
      expect(await statuses(4, () => discovery(app, trusted.privateKey))).toEqual([200, 200, 200, 429]);
    } finally {
      await app.close();
    }
  });

  it('refused tokens count against the sender’s address: 429 past the limit, other addresses unaffected', async () => {
    const app = await makeApp({ RATE_LIMIT_PER_ISSUER: '1000', RATE_LIMIT_AUTH_FAILURES_PER_ADDRESS: '4' });
    try {
      expect(await statuses(6, () => discovery(app, forger.privateKey, '10.6.6.6'))).toEqual([401, 401, 401, 401, 429, 429]);
      const limited = await app.inject({ method: 'GET', url: '/cds-services', remoteAddress: '10.6.6.6' });
      expect(limited.json()).toMatchObject({ resourceType: 'OperationOutcome', issue: [{ code: 'throttled' }] });
      expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
      expect(Number(limited.headers['retry-after'])).toBeLessThanOrEqual(60);
      // A valid token from that address still passes: behind a proxy every EHR may share it.
      expect(await discovery(app, trusted.privateKey, '10.6.6.6')).toBe(200);
      expect(await discovery(app, forger.privateKey, '10.6.6.6')).toBe(429);
      expect(await discovery(app, forger.privateKey, '10.7.7.7')).toBe(401);
      expect(await discovery(app, trusted.privateKey, '10.7.7.7')).toBe(200);
    } finally {
      await app.close();
    }
  });
});
