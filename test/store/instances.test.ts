import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDataDir } from '../support/app.js';
import { loadScenarios, scenarioRequest, SERVICE_IDS } from '../support/scenarios.js';
import { startServer, type ServerProcess } from '../support/server-process.js';

/**
 * Two service processes on one PostgreSQL, as replicas behind a load balancer: they share feedback, audit and the JWT
 * replay store. Runs where DATABASE_URL is set (CI sets it); skipped elsewhere, saying so.
 */
const PG_URL = process.env.DATABASE_URL;
const BASE = 'https://cds.example.org';
const ISS = 'https://ehr.example.org/fhir';
const ADMIN = 'admin-token-for-instances';

describe.skipIf(!PG_URL)('two instances on PostgreSQL (skipped without DATABASE_URL)', () => {
  const schema = `t_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
  let a: ServerProcess;
  let b: ServerProcess;
  let sign: (aud: string) => Promise<string>;

  beforeAll(async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES384', { extractable: true });
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES384' };
    const dir = tempDataDir();
    const issuers = join(dir, 'issuers.json');
    writeFileSync(issuers, JSON.stringify([{ iss: ISS, jwks: { keys: [jwk] } }]));
    sign = (aud) => {
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({ iss: ISS, aud, exp: now + 300, iat: now, jti: randomUUID() }).setProtectedHeader({ alg: 'ES384', kid: 'k1', typ: 'JWT' }).sign(privateKey);
    };
    const env = { CDS_AUTH: 'jwt', CDS_TRUSTED_ISSUERS: issuers, PUBLIC_BASE_URL: BASE, DATABASE_URL: PG_URL!, DATABASE_SCHEMA: schema, ADMIN_TOKEN: ADMIN, LOG_LEVEL: 'info' };
    // Both start at once: the migrations must not trip over each other.
    [a, b] = await Promise.all([startServer({ ...env, DATA_DIR: tempDataDir() }), startServer({ ...env, DATA_DIR: tempDataDir() })]);
  }, 60_000);

  afterAll(async () => {
    await Promise.all([a?.kill(), b?.kill()]);
    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    await client.query(`drop schema if exists ${schema} cascade`);
    await client.end();
  });

  it('refuse on one a token already used on the other', async () => {
    const s = loadScenarios().find((x) => x.id === 'acute-lbp-mri-not-indicated')!;
    const path = `/cds-services/${SERVICE_IDS[s.hook]}`;
    const token = await sign(`${BASE}${path}`);
    const call = (server: ServerProcess) =>
      fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify(scenarioRequest(s)) });
    expect((await call(a)).status).toBe(200);
    expect((await call(b)).status).toBe(401);
  });

  it('share feedback and audit: what one stored, the other counts', async () => {
    const s = loadScenarios().find((x) => x.id === 'age-51-deferred')!;
    const path = `/cds-services/${SERVICE_IDS[s.hook]}`;
    const res = await fetch(`${a.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${await sign(`${BASE}${path}`)}` },
      body: JSON.stringify(scenarioRequest(s)),
    });
    const card = ((await res.json()) as any).cards.find((c: any) => c.source.topic.code === 'imaging-deferred');
    const fb = await fetch(`${b.url}${path}/feedback`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${await sign(`${BASE}${path}/feedback`)}` },
      body: JSON.stringify({ feedback: [{ card: card.uuid, outcome: 'overridden', overrideReason: { reason: { system: 'urn:lbp-imaging-cds:override-reason', code: 'specialist-request' } }, outcomeTimestamp: new Date().toISOString() }] }),
    });
    expect(fb.status).toBe(200);
    let summary: any;
    for (let i = 0; i < 40; i++) {
      summary = await (await fetch(`${b.url}/analytics/summary`, { headers: { authorization: `Bearer ${ADMIN}` } })).json();
      if (summary.byRecommendation['imaging-deferred']?.overridden) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(summary.byRecommendation['imaging-deferred']).toMatchObject({ cards: 1, overridden: 1, overrideReasons: { 'specialist-request': 1 } });
  });
});
