import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { PAMA_RATING_EXTENSION } from '../../src/cards/system-actions.js';
import { testApp } from '../support/app.js';
import { cardRuleViolations } from '../support/card-rules.js';
import { FIXTURES_DIR, loadScenarios, scenarioRequest, SERVICE_IDS } from '../support/scenarios.js';

let app: FastifyInstance;
beforeAll(async () => { app = await testApp(); });
afterAll(async () => { await app.close(); });

const scenarios = loadScenarios();
const CONVERSATION_WITH = new Set(['imaging-not-indicated', 'imaging-deferred', 'imaging-xray-first']);
const DELETE_REQUIRED = new Set(['imaging-not-indicated', 'imaging-deferred']);

describe('fixture scenarios', () => {
  it('cover every recommendation, out-of-scope calls, 412 and both hooks', () => {
    expect(scenarios.length).toBeGreaterThanOrEqual(15);
    const expected = new Set(scenarios.flatMap((s) => Object.values(s.expect.recommendations ?? {})));
    for (const code of ['imaging-urgent', 'imaging-appropriate', 'red-flags-unverified', 'imaging-xray-first', 'imaging-deferred', 'imaging-not-indicated']) {
      expect(expected.has(code), code).toBe(true);
    }
    expect(scenarios.some((s) => s.expect.status === 412)).toBe(true);
    expect(scenarios.some((s) => s.expect.status === 200 && Object.keys(s.expect.recommendations ?? {}).length === 0)).toBe(true);
    expect(new Set(scenarios.map((s) => s.hook))).toEqual(new Set(['order-select', 'order-sign']));
  });

  it.each(scenarios.map((s) => [s.id, s] as const))('%s', async (_id, s) => {
    const res = await app.inject({ method: 'POST', url: `/cds-services/${SERVICE_IDS[s.hook]}`, payload: scenarioRequest(s) as any });
    expect(res.statusCode, s.description).toBe(s.expect.status);
    const body = res.json();
    if (s.expect.status !== 200) {
      expect(body.resourceType).toBe('OperationOutcome');
      return;
    }
    expect(cardRuleViolations(body)).toEqual([]);

    const recommendationCards = body.cards.filter((c: any) => c.source.topic.code !== 'patient-conversation');
    const got = Object.fromEntries(recommendationCards.map((c: any) => [c.extension['lbp-imaging-cds'].order, c.source.topic.code]));
    expect(got, s.description).toEqual(s.expect.recommendations ?? {});

    for (const card of recommendationCards) {
      const code = card.source.topic.code;
      const order = card.extension['lbp-imaging-cds'].order;
      if (DELETE_REQUIRED.has(code)) {
        const deletes = card.suggestions.flatMap((sg: any) => sg.actions).filter((a: any) => a.type === 'delete');
        expect(deletes.length).toBeGreaterThan(0);
        for (const d of deletes) expect(d.resourceId).toBe(order);
        expect(card.overrideReasons.length).toBeGreaterThanOrEqual(4);
      }
      if (code === 'imaging-xray-first') {
        const creates = card.suggestions.flatMap((sg: any) => sg.actions).filter((a: any) => a.type === 'create');
        expect(creates.some((a: any) => a.resource.code.coding.some((c: any) => c.code === '72100'))).toBe(true);
      }
      if (code === 'imaging-not-indicated') expect(card.summary).toMatch(/in the record/);
    }
    const needsConversation = recommendationCards.some((c: any) => CONVERSATION_WITH.has(c.source.topic.code));
    expect(body.cards.filter((c: any) => c.source.topic.code === 'patient-conversation').length).toBe(needsConversation ? 1 : 0);

    // A rating per in-scope order: 2.0 systemActions, mirrored where the CDS Hooks sandbox reads them.
    expect((body.systemActions ?? []).length).toBe(recommendationCards.length);
    for (const action of body.systemActions ?? []) {
      expect(action.type).toBe('update');
      expect(action.resource.extension.find((e: any) => e.url === PAMA_RATING_EXTENSION).valueCodeableConcept.coding[0].code).toMatch(/^(appropriate|not-appropriate|no-criteria-apply)$/);
    }
    if (body.systemActions) expect(body.extension.systemActions).toEqual(body.systemActions);
  });
});

describe('complete request examples in fixtures/requests', () => {
  const dir = join(FIXTURES_DIR, 'requests');
  const files = readdirSync(dir).filter((f) => f.endsWith('.json'));

  it('has examples for both hooks', () => {
    expect(files.some((f) => f.startsWith('order-select'))).toBe(true);
    expect(files.some((f) => f.startsWith('order-sign'))).toBe(true);
  });

  it.each(files)('%s answers with valid cards', async (file) => {
    const request = JSON.parse(readFileSync(join(dir, file), 'utf8'));
    const res = await app.inject({ method: 'POST', url: `/cds-services/${SERVICE_IDS[request.hook]}`, payload: request });
    expect(res.statusCode).toBe(200);
    expect(cardRuleViolations(res.json())).toEqual([]);
    expect(res.json().cards.length).toBeGreaterThan(0);
  });
});
