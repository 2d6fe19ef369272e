import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { testApp } from '../support/app.js';

let app: FastifyInstance;
beforeAll(async () => { app = await testApp(); });
afterAll(async () => { await app.close(); });

/** CDS Hooks 2.0 prefetch: read, or search by patient reference, token equality, date prefixes, _count and _sort. */
const ALLOWED_PARAMS = new Set(['patient', 'subject', 'category', 'code', 'status', 'clinical-status', '_count', '_sort']);
// STarT Back responses are read too (for the risk group), beside the red-flag data.

describe('GET /cds-services', () => {
  it('lists order-select and order-sign services, and the follow-up services, with different ids', async () => {
    const res = await app.inject({ method: 'GET', url: '/cds-services' });
    expect(res.statusCode).toBe(200);
    const { services } = res.json();
    expect(services.map((s: any) => s.hook).sort()).toEqual(['encounter-start', 'order-select', 'order-sign', 'patient-view']);
    expect(new Set(services.map((s: any) => s.id)).size).toBe(4);
    for (const s of services) {
      expect(s.title).toBeTruthy();
      expect(s.description).toBeTruthy();
      expect(s.usageRequirements).toBeTruthy();
      expect(s.extension['lbp-imaging-cds'].rulesVersion).toMatch(/^\d+\.\d+\.\d+\+[0-9a-f]{12}$/);
    }
  });

  it('asks for the Patient, conditions, temperature, medications and STarT Back with 2.0 tokens and query forms only', async () => {
    const { services } = (await app.inject({ method: 'GET', url: '/cds-services' })).json();
    for (const s of services.filter((x: any) => x.hook.startsWith('order-'))) {
      const templates = Object.values(s.prefetch) as string[];
      expect(templates.map((t) => t.split(/[/?]/)[0]).sort()).toEqual(['Condition', 'MedicationRequest', 'Observation', 'Patient', 'QuestionnaireResponse']);
      for (const t of templates) {
        for (const [, token] of t.matchAll(/\{\{\s*([^}]+?)\s*\}\}/g)) expect(token).toMatch(/^context\.(patientId|userId|encounterId)$/);
        const query = t.split('?')[1];
        if (!query) {
          expect(t).toMatch(/^Patient\/\{\{context\.patientId\}\}$/);
          continue;
        }
        for (const [name, value] of new URLSearchParams(query)) {
          expect(ALLOWED_PARAMS.has(name), `${name} in ${t}`).toBe(true);
          expect(name.includes(':'), `modifier in ${t}`).toBe(false);
          if (name === '_count') expect(value).toMatch(/^\d+$/);
        }
      }
      // Every category (problem list, encounter diagnoses, health concerns, medical history): a red flag can be filed anywhere.
      const conditions = templates.find((t) => t.startsWith('Condition?'))!;
      expect(conditions).not.toMatch(/category=/);
    }
  });
});

describe('health', () => {
  it('answers /healthz and /readyz with the rules version and the auth mode', async () => {
    expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    const ready = await app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toMatchObject({ status: 'ready', auth: 'off', rulesVersion: expect.stringMatching(/\+/) });
  });

  it('serves the evidence library that cards point to', async () => {
    const res = await app.inject({ method: 'GET', url: '/evidence' });
    expect(res.statusCode).toBe(200);
    expect(res.json().evidence.find((e: any) => e.id === 'acp-2011')).toMatchObject({ short: expect.any(String), link: expect.stringMatching(/^https:/) });
  });
});
