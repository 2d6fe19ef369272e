import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { testApp } from '../support/app.js';

/** The admin pages take hostile input too: a malformed playground Bundle is a 400 (or evaluated), never a 500. */
let app: FastifyInstance;
beforeAll(async () => {
  app = await testApp();
});
afterAll(async () => {
  await app?.close();
});

describe('POST /playground/evaluate', () => {
  for (const entry of [[null], [null, { resource: { resourceType: 'Patient', id: 'p1' } }]]) {
    it(`a Bundle whose entry holds ${JSON.stringify(entry)} is not a 500`, async () => {
      const res = await app.inject({
        method: 'POST',
        url: '/playground/evaluate',
        headers: { 'content-type': 'application/json' },
        payload: { bundle: { resourceType: 'Bundle', type: 'collection', entry }, order: { modality: 'mri', lowBackPainReason: true } },
      });
      expect(res.statusCode).toBeLessThan(500);
      if (res.statusCode >= 400) expect(res.json().resourceType).toBe('OperationOutcome');
    });
  }
});
