import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { realRules, RULES_DIR, tempDataDir } from '../support/app.js';
import { FIXTURE_CLOCK } from '../support/scenarios.js';

/**
 * A JWT is used once, also across a restart: with the embedded store (SQLite, the default), a token accepted before the
 * service restarted is refused after it, as PostgreSQL does for its replicas.
 */
const BASE = 'https://cds.example.org';
const EHR = 'https://ehr.example.org/fhir';

describe('JWT replay across a restart on the embedded store', () => {
  it('a token accepted before a restart is refused after it', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({ iss: EHR, aud: `${BASE}/cds-services`, exp: now + 300, iat: now, jti: randomUUID() })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1', typ: 'JWT' })
      .sign(privateKey);
    const dataDir = tempDataDir();
    const start = async () => {
      const config = loadConfig({ DATA_DIR: dataDir, CDS_AUTH: 'jwt', PUBLIC_BASE_URL: BASE, LOG_LEVEL: 'silent', RULES_DIR });
      return buildApp({ config, rules: await realRules(), now: () => FIXTURE_CLOCK, logger: false, trustedIssuers: [{ iss: EHR, jwks: { keys: [jwk] } }] });
    };
    const call = (app: Awaited<ReturnType<typeof start>>) => app.inject({ method: 'GET', url: '/cds-services', headers: { authorization: `Bearer ${token}` } });

    const first = await start();
    expect((await call(first)).statusCode).toBe(200);
    expect((await call(first)).statusCode).toBe(401);
    await first.close();

    const restarted = await start();
    try {
      expect((await call(restarted)).statusCode).toBe(401);
    } finally {
      await restarted.close();
    }
  });
});
