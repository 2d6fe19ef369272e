import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { requestFor } from './scenarios.js';
import { condition, patient } from './records.js';

/** An order-sign call for a lumbar MRI, a 40-year-old with three days of low back pain, full prefetch: it gets cards. */
export function lumbarMriRequest() {
  return requestFor('order-sign', { resourceType: 'Bundle', type: 'collection', entry: [{ resource: patient(40) }, { resource: condition('M54.50', { onsetDaysAgo: 3 }) }] } as any, [
    { resourceType: 'ServiceRequest', id: 'mri-1', status: 'draft', intent: 'order', subject: { reference: 'Patient/p1' }, code: { coding: [{ system: 'http://www.ama-assn.org/go/cpt', code: '72148' }] } } as any,
  ]);
}

/** An EHR's ES256 signing key made for the test, its public JWK (kid k1) and fresh CDS Hooks JWTs from it. */
export interface TestIssuer {
  iss: string;
  jwk: JWK;
  privateKey: CryptoKey;
  /** A token for `aud` living 300 s with a new jti; `claims` override or add. */
  token(aud: string, claims?: Record<string, unknown>): Promise<string>;
}

export async function testIssuer(iss: string): Promise<TestIssuer> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
  return {
    iss,
    jwk,
    privateKey,
    async token(aud, claims = {}) {
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({ iss, aud, exp: now + 300, iat: now, jti: randomUUID(), ...claims }).setProtectedHeader({ alg: 'ES256', kid: 'k1', typ: 'JWT' }).sign(privateKey);
    },
  };
}
