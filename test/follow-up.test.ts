import { randomUUID } from 'node:crypto';
import type { QuestionnaireResponse } from 'fhir/r4.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { scoreStartBack } from '../src/facts/start-back.js';
import { fearTermsIn, spokenLines } from './support/language-check.js';
import { realRules, testApp } from './support/app.js';
import { cardRuleViolations } from './support/card-rules.js';
import { condition, daysAgo, patient } from './support/records.js';
import { FIXTURE_CLOCK, requestFor } from './support/scenarios.js';

/** The follow-up visit services (patient-view, encounter-start) and STarT Back. */
const rules = await realRules();
let app: FastifyInstance;
beforeAll(async () => { app = await testApp(); });
afterAll(async () => { await app.close(); });

const searchset = (resources: unknown[]) => ({ resourceType: 'Bundle', type: 'searchset', entry: resources.map((resource) => ({ resource })) });

function startBackResponse(positive: string[], opts: { authoredDaysAgo?: number; status?: QuestionnaireResponse['status']; item9?: string; skip?: string } = {}): QuestionnaireResponse {
  const items = ['1', '2', '3', '4', '5', '6', '7', '8'].filter((l) => l !== opts.skip).map((linkId) => ({
    linkId,
    answer: [{ valueCoding: { system: 'urn:lbp-imaging-cds:start-back-answer', code: positive.includes(linkId) ? 'agree' : 'disagree' } }],
  }));
  const item9 = opts.item9 ?? (positive.includes('9') ? 'very-much' : 'slightly');
  return {
    resourceType: 'QuestionnaireResponse',
    id: `qr-${randomUUID().slice(0, 8)}`,
    questionnaire: 'urn:lbp-imaging-cds:Questionnaire/start-back',
    status: opts.status ?? 'completed',
    subject: { reference: 'Patient/p1' },
    authored: daysAgo(opts.authoredDaysAgo ?? 3),
    item: [...items, ...(opts.skip === '9' ? [] : [{ linkId: '9', answer: [{ valueCoding: { system: 'urn:lbp-imaging-cds:start-back-answer', code: item9 } }] }])],
  };
}

function followUpRequest(opts: { hook?: 'patient-view' | 'encounter-start'; encounterId?: string; onsetDaysAgo?: number; language?: string; revokedDaysAgo?: number; startBack?: QuestionnaireResponse[]; noBackPain?: boolean } = {}) {
  const hook = opts.hook ?? 'patient-view';
  const p = { ...patient(45), ...(opts.language ? { communication: [{ language: { coding: [{ code: opts.language }] }, preferred: true }] } : {}) };
  const conditions = opts.noBackPain ? [condition('I10', { onsetDaysAgo: 30 })] : [condition('M54.50', { onsetDaysAgo: opts.onsetDaysAgo ?? 20 })];
  const orders = opts.revokedDaysAgo !== undefined
    ? [{ resourceType: 'ServiceRequest', id: 'old-mri', status: 'revoked', intent: 'order', subject: { reference: 'Patient/p1' }, authoredOn: daysAgo(opts.revokedDaysAgo), code: { coding: [{ system: 'http://www.ama-assn.org/go/cpt', code: '72148' }] } }]
    : [];
  return {
    hook,
    hookInstance: randomUUID(),
    context: { userId: 'Practitioner/example', patientId: 'p1', ...(opts.encounterId ? { encounterId: opts.encounterId } : {}) },
    prefetch: { patient: p, conditions: searchset(conditions), startBack: searchset(opts.startBack ?? []), imagingOrders: searchset(orders) },
  };
}

async function call(body: any) {
  const id = body.hook === 'patient-view' ? 'lbp-follow-up' : 'lbp-follow-up-encounter';
  const res = await app.inject({ method: 'POST', url: `/cds-services/${id}`, payload: body });
  const json = res.json();
  if (res.statusCode === 200) expect(cardRuleViolations(json)).toEqual([]);
  return { status: res.statusCode, cards: json.cards as any[] };
}

describe('the follow-up service', () => {
  it('speaks once for an open episode, with one short info card', async () => {
    const r = await call(followUpRequest({ encounterId: `enc-${randomUUID()}`, hook: 'encounter-start', onsetDaysAgo: 100 }));
    expect(r.cards).toHaveLength(1);
    expect(r.cards[0]).toMatchObject({ indicator: 'info', source: { topic: { code: 'follow-up-reassurance' } } });
    expect(r.cards[0].summary).toMatch(/week 15/);
    expect(r.cards[0].detail).toMatch(/Ask again about new warning signs/);
  });

  it('is quiet outside the window (6 months) and without back pain', async () => {
    expect((await call(followUpRequest({ encounterId: `enc-${randomUUID()}`, hook: 'encounter-start', onsetDaysAgo: 200 }))).cards).toEqual([]);
    expect((await call(followUpRequest({ encounterId: `enc-${randomUUID()}`, hook: 'encounter-start', noBackPain: true }))).cards).toEqual([]);
  });

  it('a patient whose imaging order was withdrawn three weeks ago gets the follow-up script once per encounter', async () => {
    const encounterId = `enc-${randomUUID()}`;
    const first = await call(followUpRequest({ hook: 'encounter-start', encounterId, onsetDaysAgo: 40, revokedDaysAgo: 21 }));
    expect(first.cards).toHaveLength(1);
    expect(first.cards[0].summary).toMatch(/may be reconsidering/);
    expect(first.cards[0].detail).toMatch(/You may be wondering about a scan again/);
    expect((await call(followUpRequest({ hook: 'encounter-start', encounterId, onsetDaysAgo: 40, revokedDaysAgo: 21 }))).cards).toEqual([]);
    // A new encounter is a new visit.
    expect((await call(followUpRequest({ hook: 'encounter-start', encounterId: `enc-${randomUUID()}`, onsetDaysAgo: 40 }))).cards).toHaveLength(1);
  });

  it('knows from its own audit when earlier advice against imaging was acted on', async () => {
    const order = { resourceType: 'ServiceRequest', id: 'mri-9', status: 'draft', intent: 'order', subject: { reference: 'Patient/p1' }, code: { coding: [{ system: 'http://www.ama-assn.org/go/cpt', code: '72148' }] } };
    const req = requestFor('order-select', { resourceType: 'Bundle', type: 'collection', entry: [{ resource: patient(45) }, { resource: condition('M54.50', { onsetDaysAgo: 20 }) }] } as any, [order as any]);
    const res = await app.inject({ method: 'POST', url: '/cds-services/lbp-imaging-order-select', payload: req as any });
    const card = res.json().cards.find((c: any) => c.source.topic.code === 'imaging-not-indicated');
    await app.inject({ method: 'POST', url: '/cds-services/lbp-imaging-order-select/feedback', payload: { feedback: [{ card: card.uuid, outcome: 'accepted', acceptedSuggestions: [{ id: card.suggestions[0].uuid }], outcomeTimestamp: FIXTURE_CLOCK.toISOString() }] } });
    await app.audit.flush();
    const r = await call(followUpRequest({ hook: 'encounter-start', encounterId: `enc-${randomUUID()}`, onsetDaysAgo: 20 }));
    expect(r.cards[0].extension['lbp-imaging-cds'].reconsidering).toBe(true);
  });

  it('on patient-view, speaks at most once a day for a patient', async () => {
    const body = followUpRequest({ onsetDaysAgo: 10 });
    body.context.patientId = `p-${randomUUID()}`;
    (body.prefetch.patient as any).id = body.context.patientId;
    for (const e of (body.prefetch.conditions as any).entry) e.resource.subject.reference = `Patient/${body.context.patientId}`;
    expect((await call(body)).cards).toHaveLength(1);
    expect((await call({ ...body, hookInstance: randomUUID() })).cards).toEqual([]);
  });

  it('needs an encounterId on encounter-start', async () => {
    expect((await call(followUpRequest({ hook: 'encounter-start' }))).status).toBe(400);
  });

  it('offers a Task for STarT Back when it is missing, and gives the group when it is known', async () => {
    const missing = await call(followUpRequest({ hook: 'encounter-start', encounterId: `enc-${randomUUID()}` }));
    const task = missing.cards[0].suggestions[0].actions[0].resource;
    expect(task).toMatchObject({ resourceType: 'Task', status: 'requested', intent: 'order', for: { reference: 'Patient/p1' } });
    expect(task.input[0].valueCanonical).toBe(rules.questionnaires.startBack.questionnaire.url);
    const known = await call(followUpRequest({ hook: 'encounter-start', encounterId: `enc-${randomUUID()}`, startBack: [startBackResponse(['5', '6', '7', '8'])] }));
    expect(known.cards[0].suggestions).toBeUndefined();
    expect(known.cards[0].detail).toMatch(/STarT Back: high risk/);
  });

  it.each(['en', 'da', 'fr-CA'])('has a follow-up script in %s with every placeholder filled and no frightening words', async (language) => {
    const r = await call(followUpRequest({ hook: 'encounter-start', encounterId: `enc-${randomUUID()}`, language, revokedDaysAgo: 21, startBack: [startBackResponse(['1', '2', '3', '4', '5'])] }));
    const card = r.cards[0];
    const lang = rules.scripts.languages.get(language)!;
    expect(card.extension['lbp-imaging-cds'].language).toBe(language);
    expect(card.detail).not.toMatch(/\{\{|\}\}/);
    expect(card.summary.length).toBeLessThan(140);
    for (const item of Object.values(lang.strings.safetyNet)) expect(card.detail).toContain(item);
    expect(card.detail).toContain(lang.strings.followUp.groups.medium.name);
    expect(fearTermsIn(spokenLines(card.detail).join('\n'), lang.guide)).toEqual([]);
  });
});

describe('STarT Back scoring at every boundary', () => {
  const def = rules.questionnaires.startBack;
  const group = (positive: string[], opts = {}) => scoreStartBack([startBackResponse(positive, opts)], def, FIXTURE_CLOCK)?.group;
  it.each([
    [[], 'low'],
    [['1', '2', '3'], 'low'],
    [['5', '6', '7'], 'low'],
    [['1', '5', '6', '7'], 'medium'],
    [['1', '2', '5', '6', '9'], 'medium'],
    [['5', '6', '7', '8'], 'high'],
    [['1', '5', '6', '7', '9'], 'high'],
    [['1', '2', '3', '4', '5', '6', '7', '8', '9'], 'high'],
    [['1', '2', '3', '4'], 'medium'],
  ] as Array<[string[], string]>)('positive items %j: %s', (positive, expected) => {
    expect(group(positive)).toBe(expected);
  });

  it('counts item 9 only for "very much" or "extremely"', () => {
    expect(scoreStartBack([startBackResponse(['1', '5', '6'], { item9: 'extremely' })], def, FIXTURE_CLOCK)).toMatchObject({ total: 4, psychosocial: 3, group: 'medium' });
    expect(scoreStartBack([startBackResponse(['1', '5', '6'], { item9: 'moderately' })], def, FIXTURE_CLOCK)).toMatchObject({ total: 3, group: 'low' });
  });

  it('uses no incomplete, unfinished or stale response', () => {
    expect(scoreStartBack([startBackResponse(['5', '6', '7', '8'], { skip: '4' })], def, FIXTURE_CLOCK)).toBeUndefined();
    expect(scoreStartBack([startBackResponse(['5', '6', '7', '8'], { status: 'in-progress' })], def, FIXTURE_CLOCK)).toBeUndefined();
    expect(scoreStartBack([startBackResponse(['5', '6', '7', '8'], { authoredDaysAgo: def.maxAgeDays + 1 })], def, FIXTURE_CLOCK)).toBeUndefined();
  });

  it('takes the newest response', () => {
    const older = startBackResponse(['5', '6', '7', '8'], { authoredDaysAgo: 30 });
    const newer = startBackResponse([], { authoredDaysAgo: 2 });
    expect(scoreStartBack([older, newer], def, FIXTURE_CLOCK)?.group).toBe('low');
  });

  it('is mentioned on the order cards when it is known', async () => {
    const order = { resourceType: 'ServiceRequest', id: 'mri-1', status: 'draft', intent: 'order', subject: { reference: 'Patient/p1' }, code: { coding: [{ system: 'http://www.ama-assn.org/go/cpt', code: '72148' }] } };
    const req = requestFor('order-sign', { resourceType: 'Bundle', type: 'collection', entry: [{ resource: patient(40) }, { resource: condition('M54.50', { onsetDaysAgo: 10 }) }, { resource: startBackResponse(['1', '2', '3', '4']) }] } as any, [order as any]);
    const res = await app.inject({ method: 'POST', url: '/cds-services/lbp-imaging-order-sign', payload: req as any });
    const card = res.json().cards.find((c: any) => c.source.topic.code === 'imaging-not-indicated');
    expect(card.detail).toMatch(/\*\*STarT Back \(2026-11-12\)\*\*: medium risk/);
  });

  it('shows only a date that reads as one: record text in authored never reaches the card', async () => {
    const order = { resourceType: 'ServiceRequest', id: 'mri-1', status: 'draft', intent: 'order', subject: { reference: 'Patient/p1' }, code: { coding: [{ system: 'http://www.ama-assn.org/go/cpt', code: '72148' }] } };
    const response = { ...startBackResponse(['1', '2', '3', '4']), authored: '<img src=x>' };
    const req = requestFor('order-sign', { resourceType: 'Bundle', type: 'collection', entry: [{ resource: patient(40) }, { resource: condition('M54.50', { onsetDaysAgo: 10 }) }, { resource: response }] } as any, [order as any]);
    const res = await app.inject({ method: 'POST', url: '/cds-services/lbp-imaging-order-sign', payload: req as any });
    const card = res.json().cards.find((c: any) => c.source.topic.code === 'imaging-not-indicated');
    expect(card.detail).toMatch(/STarT Back.*medium risk/);
    expect(card.detail).not.toContain('<img');
  });
});
