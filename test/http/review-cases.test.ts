import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { testApp } from '../support/app.js';
import { cardRuleViolations } from '../support/card-rules.js';
import { condition, patient } from '../support/records.js';
import { requestFor } from '../support/scenarios.js';

/** Cases a review found: red flags that arrive in shapes the first version did not read. */
let app: FastifyInstance;
beforeAll(async () => { app = await testApp(); });
afterAll(async () => { await app.close(); });

const LBP = { coding: [{ system: 'http://snomed.info/sct', code: '279039007', display: 'Low back pain' }] };
const mri = (extra: Record<string, unknown> = {}) => ({ resourceType: 'ServiceRequest', id: 'mri-1', status: 'draft', intent: 'order', subject: { reference: 'Patient/p1' }, code: { coding: [{ system: 'http://www.ama-assn.org/go/cpt', code: '72148' }] }, reasonCode: [LBP], ...extra });

async function recommendation(resources: any[], orders: any[]) {
  const req = requestFor('order-sign', { resourceType: 'Bundle', type: 'collection', entry: resources.map((resource) => ({ resource })) } as any, orders);
  const res = await app.inject({ method: 'POST', url: '/cds-services/lbp-imaging-order-sign', payload: req as any });
  expect(res.statusCode).toBe(200);
  const body = res.json();
  expect(cardRuleViolations(body)).toEqual([]);
  const card = body.cards.find((c: any) => c.source.topic.code !== 'patient-conversation');
  return { code: card?.source.topic.code, card, body };
}

describe('red flags on the order itself', () => {
  it('reads a reason given only as text', async () => {
    const r = await recommendation([patient(40)], [mri({ reasonCode: [LBP, { text: 'cauda equina syndrome, saddle anaesthesia' }] })]);
    expect(r.code).toBe('imaging-urgent');
  });

  it('follows a reasonReference to a Condition sent beside the order', async () => {
    const ces = { ...condition('G83.4'), id: 'ces-1' };
    const req = requestFor('order-sign', { resourceType: 'Bundle', type: 'collection', entry: [{ resource: patient(40) }] } as any, [mri({ reasonReference: [{ reference: 'urn:uuid:c1' }] }) as any]) as any;
    req.context.draftOrders.entry.push({ fullUrl: 'urn:uuid:c1', resource: ces });
    const res = await app.inject({ method: 'POST', url: '/cds-services/lbp-imaging-order-sign', payload: req });
    expect(res.json().cards[0].source.topic.code).toBe('imaging-urgent');
  });

  it('reads an unresolvable reasonReference by its display', async () => {
    const r = await recommendation([patient(40)], [mri({ reasonReference: [{ reference: 'Condition/elsewhere', display: 'Cauda equina syndrome' }] })]);
    expect(r.code).toBe('imaging-urgent');
  });

  it('never advises against imaging when the order points to a reason it cannot read', async () => {
    const r = await recommendation([patient(40)], [mri({ reasonReference: [{ reference: 'Condition/elsewhere' }] })]);
    expect(r.code).toBe('red-flags-unverified');
  });
});

describe('conditions in every US Core category', () => {
  it('finds a red flag recorded as a health concern', async () => {
    const r = await recommendation([patient(40), condition('M54.50', { onsetDaysAgo: 5 }), condition('C50.911', { category: 'health-concern' })], [mri()]);
    expect(r.code).toBe('imaging-urgent');
  });
});

describe('codes outside the value sets', () => {
  it('finds cancer named in a SNOMED CT display the value set does not list', async () => {
    const prostate = { ...condition('399068003', { system: 'http://snomed.info/sct' }), code: { coding: [{ system: 'http://snomed.info/sct', code: '399068003', display: 'Malignant tumor of prostate' }] } };
    expect((await recommendation([patient(40), prostate], [mri()])).code).toBe('imaging-urgent');
  });

  it('does not take a family history or a negative screen for cancer', async () => {
    const family = { ...condition('x'), code: { text: 'Family history of breast cancer' } };
    const screen = { ...condition('y'), code: { text: 'Colon cancer screening negative' } };
    expect((await recommendation([patient(40), family, screen], [mri()])).code).toBe('imaging-not-indicated');
  });
});

describe('card text from the record', () => {
  it('escapes markdown in record text', async () => {
    const evil = { ...condition('Z85.3'), code: { text: 'x](javascript:alert(1)) ![img](https://evil.example/p.png?pid=1)', coding: [{ system: 'http://hl7.org/fhir/sid/icd-10-cm', code: 'Z85.3' }] } };
    const r = await recommendation([patient(40), evil], [mri()]);
    expect(r.card.detail).not.toMatch(/\]\(javascript/);
    expect(r.card.detail).not.toMatch(/!\[img\]\(/);
  });

  it('does not copy an empty reasonCode into the orders it creates', async () => {
    const r = await recommendation([patient(40), condition('M54.50', { onsetDaysAgo: 5 })], [mri({ reasonCode: [] })]);
    expect(r.code).toBe('imaging-not-indicated');
    for (const s of r.card.suggestions) for (const a of s.actions) if (a.resource) expect(a.resource.reasonCode).toBeUndefined();
  });
});

describe('second review', () => {
  const named = (text: string, extra: Record<string, unknown> = {}) => ({ ...condition('x'), code: { text }, onsetDateTime: '2026-11-12', ...extra });

  it.each([
    ['Adenocarcinoma of prostate'],
    ['Hx breast ca'],
    ['Bone mets'],
    ['Hodgkin’s disease'],
  ])('finds cancer named "%s"', async (text) => {
    expect((await recommendation([patient(40), condition('M54.50', { onsetDaysAgo: 5 }), named(text)], [mri()])).code).toBe('imaging-urgent');
  });

  it('reads "Foot-drop" as foot drop, and a veto only in the name it is in', async () => {
    expect((await recommendation([patient(40), named('Foot-drop')], [mri()])).code).toBe('imaging-urgent');
    const ces = { ...condition('x'), code: { text: 'Cauda equina syndrome', coding: [{ system: 'urn:local', code: 'ces', display: 'CES - rule out' }] } };
    expect((await recommendation([patient(40), ces], [mri()])).code).toBe('imaging-urgent');
  });

  it('counts a new retention already marked resolved, and a resolved cancer given as the order’s reason', async () => {
    expect((await recommendation([patient(40), condition('R33.9', { onsetDaysAgo: 3, clinical: 'resolved' })], [mri()])).code).toBe('imaging-urgent');
    const contained = { ...condition('C50.911', { clinical: 'resolved' }), id: 'ca' };
    expect((await recommendation([patient(40)], [mri({ contained: [contained], reasonReference: [{ reference: '#ca' }] })])).code).toBe('imaging-urgent');
  });

  it('reads SNOMED CT edition URIs and system URIs with a trailing slash', async () => {
    const edition = { ...condition('266987004', { system: 'http://snomed.info/sct/731000124108' }) };
    expect((await recommendation([patient(40), edition], [mri()])).code).toBe('imaging-urgent');
    const slash = { ...condition('Z85.3', { system: 'http://hl7.org/fhir/sid/icd-10-cm/' }) };
    expect((await recommendation([patient(40), slash], [mri()])).code).toBe('imaging-urgent');
  });

  it('says unverified for a condition it cannot read (no system, no name)', async () => {
    const bare = { ...condition('x'), code: { coding: [{ code: 'C50.911' }] } };
    expect((await recommendation([patient(40), condition('M54.50', { onsetDaysAgo: 5 }), bare], [mri()])).code).toBe('red-flags-unverified');
  });

  it('reads conditions sent beside the order in draftOrders', async () => {
    const req = requestFor('order-sign', { resourceType: 'Bundle', type: 'collection', entry: [{ resource: patient(40) }] } as any, [mri() as any]) as any;
    req.context.draftOrders.entry.push({ resource: { ...condition('G83.4'), id: 'ces-today' } });
    const res = await app.inject({ method: 'POST', url: '/cds-services/lbp-imaging-order-sign', payload: req });
    expect(res.json().cards[0].source.topic.code).toBe('imaging-urgent');
  });
});
