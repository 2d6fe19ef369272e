import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { fitSummary } from '../../src/cards/template.js';
import { testApp } from '../support/app.js';
import { cardRuleViolations } from '../support/card-rules.js';
import { condition, patient, temperature } from '../support/records.js';
import { requestFor } from '../support/scenarios.js';

let app: FastifyInstance;
beforeAll(async () => { app = await testApp(); });
afterAll(async () => { await app.close(); });

const mri = { resourceType: 'ServiceRequest', id: 'mri-1', status: 'draft', intent: 'order', subject: { reference: 'Patient/p1' }, code: { coding: [{ system: 'http://www.ama-assn.org/go/cpt', code: '72148' }] } } as any;
const xray = { ...mri, id: 'xr-1', code: { coding: [{ system: 'http://www.ama-assn.org/go/cpt', code: '72100' }] } };

async function cardsFor(resources: any[], orders = [mri], hook: 'order-select' | 'order-sign' = 'order-sign') {
  const req = requestFor(hook, { resourceType: 'Bundle', type: 'collection', entry: resources.map((resource) => ({ resource })) } as any, orders);
  const res = await app.inject({ method: 'POST', url: `/cds-services/lbp-imaging-${hook}`, payload: req as any });
  const body = res.json();
  expect(cardRuleViolations(body)).toEqual([]);
  return body.cards as any[];
}
const byTopic = (cards: any[], code: string) => cards.find((c) => c.source.topic.code === code);

describe('recommendation cards', () => {
  it('make cauda equina critical and a history of cancer a warning', async () => {
    const ces = await cardsFor([patient(40), condition('M54.50', { onsetDaysAgo: 3 }), condition('G83.4', { onsetDaysAgo: 1 })]);
    expect(byTopic(ces, 'imaging-urgent').indicator).toBe('critical');
    const cancer = await cardsFor([patient(40), condition('M54.50', { onsetDaysAgo: 3 }), condition('Z85.3')]);
    expect(byTopic(cancer, 'imaging-urgent').indicator).toBe('warning');
  });

  it('say what was found and where, and which data could not be read', async () => {
    const cards = await cardsFor([patient(40), condition('M54.50', { onsetDaysAgo: 3 }), condition('F11.20'), temperature(38.9, 'Cel')]);
    const card = byTopic(cards, 'imaging-urgent');
    expect(card.summary).toMatch(/fever/i);
    expect(card.detail).toMatch(/Risk of spinal infection: \*\*found\*\*.*F11\.20/);
    expect(card.detail).toMatch(/38\.9 Cel/);
  });

  it('offer MRI instead of an X-ray for an urgent flag, and nothing to delete', async () => {
    const cards = await cardsFor([patient(40), condition('M54.50', { onsetDaysAgo: 3 }), condition('G83.4')], [xray]);
    const card = byTopic(cards, 'imaging-urgent');
    expect(card.suggestions).toHaveLength(1);
    expect(card.suggestions[0].actions.map((a: any) => a.type)).toEqual(['delete', 'create']);
    expect(card.suggestions[0].actions[1].resource.code.coding[0].code).toBe('72148');
    expect(card.overrideReasons).toBeUndefined();
  });

  it('list what to ask at the bedside, saddle anaesthesia first, when advising against imaging', async () => {
    const cards = await cardsFor([patient(35), condition('M54.50', { onsetDaysAgo: 3 })]);
    const card = byTopic(cards, 'imaging-not-indicated');
    const ask = card.detail.split('**Ask or examine')[1];
    expect(ask.split('\n')[1]).toMatch(/saddle/);
    expect(card.suggestions[0].label).toMatch(/no red flags on history and examination/);
    expect(card.suggestions[1].actions[1].resource).toMatchObject({ resourceType: 'ServiceRequest', status: 'draft', subject: { reference: 'Patient/p1' } });
  });
});

describe('the patient-conversation card', () => {
  it('uses the prevalence for the patient’s age band and the prognosis for the episode length', async () => {
    const young = byTopic(await cardsFor([patient(34), condition('M54.50', { onsetDaysAgo: 10 })]), 'patient-conversation');
    expect(young.detail).toMatch(/About 5 in 10 people in their thirties/);
    expect(young.detail).toMatch(/within a few weeks/);
    const older = byTopic(await cardsFor([patient(45), condition('M54.50', { onsetDaysAgo: 200 })]), 'patient-conversation');
    expect(older.detail).toMatch(/About 7 in 10 people in their forties/);
    expect(older.detail).toMatch(/lasted a while/);
  });

  it('reassures only with what was checked and found absent', async () => {
    const card = byTopic(await cardsFor([patient(40), condition('M54.50', { onsetDaysAgo: 10 })]), 'patient-conversation');
    expect(card.detail).toMatch(/warning signs doctors look for: .*cancer.*infection/);
    // The words said to the patient avoid frightening labels (O'Keeffe 2022); the evidence notes are for the clinician.
    const spoken = card.detail.split('\n').filter((l: string) => l.startsWith('- "')).join('\n');
    expect(spoken.length).toBeGreaterThan(500);
    expect(spoken).not.toMatch(/degenerat|wear and tear|slipped|bone on bone|arthritis/i);
  });

  it('comes once per call, even for several orders', async () => {
    const cards = await cardsFor([patient(40), condition('M54.50', { onsetDaysAgo: 10 })], [mri, xray]);
    expect(cards.filter((c) => c.source.topic.code === 'patient-conversation')).toHaveLength(1);
    expect(cards.filter((c) => c.source.topic.code === 'imaging-not-indicated')).toHaveLength(2);
  });
});

describe('summaries', () => {
  it('drop list items until the summary is under 140 characters, keeping the first', () => {
    const items = ['cancer now or in the past', 'new urinary retention or bladder or bowel incontinence', 'fever with injection drug use, immunosuppression or a recent infection'];
    const s = fitSummary('Red flag in the record ({{flags}}): imaging is indicated now.', {}, 'flags', items, (n) => ` and ${n} more`);
    expect(s.length).toBeLessThan(140);
    expect(s).toMatch(/^Red flag in the record \(cancer now or in the past/);
    expect(s).toMatch(/more\)/);
  });
});
