import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { openStore, type Store } from '../../src/store/database.js';
import { analytics, purgeOlderThan, PURGE_CHUNK } from '../../src/store/analytics.js';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { realRules, RULES_DIR, tempDataDir } from '../support/app.js';
import { loadScenarios, scenarioRequest, SERVICE_IDS } from '../support/scenarios.js';
import { startServer } from '../support/server-process.js';

/**
 * The feedback and audit store, on SQLite always and on PostgreSQL when DATABASE_URL is set (CI sets
 * it). Each PostgreSQL run works in a schema of its own, dropped at the end.
 */
const PG_URL = process.env.DATABASE_URL;
const backends: Array<{ name: string; env: () => Record<string, string> }> = [{ name: 'SQLite', env: () => ({ DATA_DIR: tempDataDir() }) }];
const schemas: string[] = [];
if (PG_URL) {
  backends.push({
    name: 'PostgreSQL',
    env: () => {
      const schema = `t_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
      schemas.push(schema);
      return { DATABASE_URL: PG_URL, DATABASE_SCHEMA: schema, DATA_DIR: tempDataDir() };
    },
  });
} else {
  it('PostgreSQL suite skipped: set DATABASE_URL=postgres://… to run it (CI does)', () => {
    expect(PG_URL).toBeUndefined();
  });
}

afterAll(async () => {
  if (!PG_URL || schemas.length === 0) return;
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  for (const s of schemas) await client.query(`drop schema if exists ${s} cascade`);
  await client.end();
});

const byId = new Map(loadScenarios().map((s) => [s.id, s]));
const scenario = (id: string) => byId.get(id)!;

describe.each(backends)('store on $name', ({ env }) => {
  let app: FastifyInstance;
  let storeEnv: Record<string, string>;

  beforeAll(async () => {
    storeEnv = env();
    const config = loadConfig({ CDS_AUTH: 'off', LOG_LEVEL: 'silent', RULES_DIR, ...storeEnv });
    app = await buildApp({ config, rules: await realRules(), now: () => new Date(), logger: false });
    await app.ready();
  });
  afterAll(async () => {
    await app.close();
  });

  async function hook(id: string) {
    const s = scenario(id);
    const res = await app.inject({ method: 'POST', url: `/cds-services/${SERVICE_IDS[s.hook]}`, payload: scenarioRequest(s) as any });
    expect(res.statusCode).toBe(200);
    return { scenario: s, body: res.json() };
  }
  const feedback = (service: string, items: unknown[]) => app.inject({ method: 'POST', url: `/cds-services/${service}/feedback`, payload: { feedback: items } as any });

  it('keeps an audit record of each call with cards, with identities only as keyed hashes', async () => {
    const { scenario: s, body } = await hook('resolved-breast-cancer-urgent');
    await app.audit.flush();
    const card = await app.store.db.selectFrom('audit_card').selectAll().where('card_uuid', '=', body.cards[0].uuid).executeTakeFirstOrThrow();
    expect(card.recommendation).toBe('imaging-urgent');
    expect(JSON.parse(card.red_flags)['cancer-history']).toBe('found');
    expect(JSON.parse(card.fired_rules)).toContain('major-red-flag-found');
    expect(card.rules_version).toMatch(/\+/);
    const call = await app.store.db.selectFrom('audit_hook_call').selectAll().where('hook_instance', '=', card.hook_instance).executeTakeFirstOrThrow();
    const patientId = s.patient.entry!.find((e) => e.resource?.resourceType === 'Patient')!.resource!.id!;
    expect(call.patient_hash).toMatch(/^[0-9a-f]{32}$/);
    expect(call.patient_hash).toBe(app.store.hash(`Patient/${patientId}`));
    const everything = JSON.stringify([await app.store.db.selectFrom('audit_card').selectAll().execute(), await app.store.db.selectFrom('audit_hook_call').selectAll().execute()]);
    expect(everything).not.toContain(patientId);
    expect(everything).not.toMatch(/19\d\d-\d\d-\d\d/);
  });


  it('commits audit batches once each (a repeat is kept as it was); a batch that cannot be written fails and the next one lands', async () => {
    const instance = randomUUID();
    const at = new Date().toISOString();
    const call = { hook_instance: instance, service: 's', at, rules_version: '1+x', duration_ms: 1.5, patient_hash: 'p', user_hash: 'u', orders: 1 };
    const card = (uuid: string, recommendation: string, hook = instance) => ({
      card_uuid: uuid,
      hook_instance: hook,
      service: 's',
      at,
      day: at.slice(0, 10),
      recommendation,
      order_ref: 'ServiceRequest/1',
      red_flags: '{}',
      fired_rules: '[]',
      suggestions: '[]',
      rules_version: '1+x',
    });
    const uuid = randomUUID();
    await app.store.writeAudit([{ call, cards: [card(uuid, 'first')] }]);
    await app.store.writeAudit([{ call: { ...call, orders: 9 }, cards: [card(uuid, 'second')] }]);
    // A card without its required columns: the whole batch is refused, nothing of it is half-written.
    const other = randomUUID();
    const broken = { call: { ...call, hook_instance: randomUUID() }, cards: [{ card_uuid: other } as never] };
    await expect(app.store.writeAudit([broken])).rejects.toThrow();
    const later = randomUUID();
    await app.store.writeAudit([{ call: { ...call, hook_instance: later }, cards: [card(randomUUID(), 'after', later)] }]);
    const cards = await app.store.db.selectFrom('audit_card').select(['card_uuid', 'recommendation']).where('hook_instance', '=', instance).execute();
    expect(cards).toEqual([{ card_uuid: uuid, recommendation: 'first' }]);
    expect((await app.store.db.selectFrom('audit_hook_call').select('orders').where('hook_instance', '=', instance).executeTakeFirstOrThrow()).orders).toBe(1);
    expect(await app.store.db.selectFrom('audit_card').select('card_uuid').where('card_uuid', '=', other).executeTakeFirst()).toBeUndefined();
    expect(await app.store.db.selectFrom('audit_hook_call').select('hook_instance').where('hook_instance', '=', broken.call.hook_instance).executeTakeFirst()).toBeUndefined();
    expect(await app.store.db.selectFrom('audit_card').select('recommendation').where('hook_instance', '=', later).execute()).toEqual([{ recommendation: 'after' }]);
  });
  it('stores feedback once however often it is sent, and only after commit answers 200', async () => {
    const { body } = await hook('acute-lbp-mri-not-indicated');
    const card = body.cards.find((c: any) => c.source.topic.code === 'imaging-not-indicated');
    const item = { card: card.uuid, outcome: 'accepted', acceptedSuggestions: [{ id: card.suggestions[0].uuid }], outcomeTimestamp: new Date().toISOString() };
    expect((await feedback('lbp-imaging-order-select', [item])).statusCode).toBe(200);
    expect((await feedback('lbp-imaging-order-select', [item, item])).statusCode).toBe(200);
    const rows = await app.store.db.selectFrom('feedback').selectAll().where('card_uuid', '=', card.uuid).execute();
    expect(rows).toHaveLength(1);
  });

  it.each([
    ['no feedback array', {}],
    ['an empty feedback array', { feedback: [] }],
    ['an unknown outcome', { feedback: [{ card: 'c', outcome: 'ignored', outcomeTimestamp: '2026-11-29T00:00:00Z' }] }],
    ['accepted without acceptedSuggestions (cds-fb-2)', { feedback: [{ card: 'c', outcome: 'accepted', outcomeTimestamp: '2026-11-29T00:00:00Z' }] }],
    ['an overrideReason with neither reason nor comment (cds-fb-3)', { feedback: [{ card: 'c', outcome: 'overridden', overrideReason: {}, outcomeTimestamp: '2026-11-29T00:00:00Z' }] }],
    ['a timestamp that is not a date-time', { feedback: [{ card: 'c', outcome: 'overridden', outcomeTimestamp: 'yesterday' }] }],
  ])('400 with an OperationOutcome for %s', async (_name, payload) => {
    const res = await app.inject({ method: 'POST', url: '/cds-services/lbp-imaging-order-sign/feedback', payload: payload as any });
    expect(res.statusCode).toBe(400);
    expect(res.json().resourceType).toBe('OperationOutcome');
  });

  it('404 for feedback to an unknown service', async () => {
    expect((await feedback('nope', [{ card: 'c', outcome: 'overridden', outcomeTimestamp: '2026-11-29T00:00:00Z' }])).statusCode).toBe(404);
  });

  it('keeps no free text: only that a comment was written', async () => {
    const { body } = await hook('age-51-deferred');
    const card = body.cards.find((c: any) => c.source.topic.code === 'imaging-deferred');
    const item = { card: card.uuid, outcome: 'overridden', overrideReason: { userComment: 'Mrs Jane Example insists, DOB 1975-11-15' }, outcomeTimestamp: new Date().toISOString() };
    expect((await feedback('lbp-imaging-order-select', [item])).statusCode).toBe(200);
    const row = await app.store.db.selectFrom('feedback').selectAll().where('card_uuid', '=', card.uuid).executeTakeFirstOrThrow();
    expect(row.has_comment).toBe(1);
    expect(JSON.stringify(row)).not.toContain('Jane');
  });

  it('counts in the summary what was shown and what was said of it', async () => {
    await app.audit.flush();
    const before = (await app.inject({ method: 'GET', url: '/analytics/summary' })).json();
    const base = (code: string) => before.byRecommendation[code] ?? { cards: 0, accepted: 0, overridden: 0, overrideReasons: {} };
    const notIndicated = base('imaging-not-indicated');
    const urgent = base('imaging-urgent');
    const sent: string[] = [];
    for (let i = 0; i < 3; i++) {
      const { body } = await hook('acute-lbp-mri-not-indicated');
      const card = body.cards.find((c: any) => c.source.topic.code === 'imaging-not-indicated');
      sent.push(card.uuid);
      if (i === 0) await feedback('lbp-imaging-order-select', [{ card: card.uuid, outcome: 'accepted', acceptedSuggestions: [{ id: card.suggestions[1].uuid }], outcomeTimestamp: new Date().toISOString() }]);
      if (i === 1) await feedback('lbp-imaging-order-select', [{ card: card.uuid, outcome: 'overridden', overrideReason: { reason: { system: 'urn:lbp-imaging-cds:override-reason', code: 'patient-preference', display: 'Patient preference after discussion' } }, outcomeTimestamp: new Date().toISOString() }]);
    }
    await hook('vertebral-osteomyelitis-urgent');
    await app.audit.flush();
    const after = (await app.inject({ method: 'GET', url: '/analytics/summary' })).json();
    expect(after.rulesVersion).toMatch(/\+/);
    expect(after.byRecommendation['imaging-not-indicated']).toEqual({
      cards: notIndicated.cards + 3,
      accepted: notIndicated.accepted + 1,
      overridden: notIndicated.overridden + 1,
      overrideReasons: { ...notIndicated.overrideReasons, 'patient-preference': (notIndicated.overrideReasons['patient-preference'] ?? 0) + 1 },
    });
    expect(after.byRecommendation['imaging-urgent'].cards).toBe(urgent.cards + 1);
    const page = await app.inject({ method: 'GET', url: '/analytics' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/text\/html/);
    expect(page.body).toMatch(/<svg[^>]*aria-label="Cards, accepted and overridden by recommendation"/);
    expect(page.body).toMatch(/<rect[^>]*><title>accepted: \d+<\/title>/);
    expect(page.body).toContain('remove-and-refer-physiotherapy');
    expect(page.body).not.toMatch(/<script|https?:\/\/cdn/i);
  });

  it('counts, for a window, only the cards shown in it and their feedback', async () => {
    const code = `window-test-${randomUUID().slice(0, 8)}`;
    const card = (at: string) => ({
      card_uuid: randomUUID(), hook_instance: randomUUID(), service: 's', at, day: at.slice(0, 10), recommendation: code,
      order_ref: 'ServiceRequest/x', red_flags: '[]', fired_rules: '[]', suggestions: '[]', rules_version: 'v',
    });
    const old = card('2019-06-01T00:00:00.000Z');
    const recent = card(new Date().toISOString());
    await app.store.db.insertInto('audit_card').values([old, recent]).execute();
    const accepted = (uuid: string) => ({
      feedback_key: randomUUID(), card_uuid: uuid, service: 's', outcome: 'accepted', accepted_suggestions: '[]',
      override_reason_system: null, override_reason_code: null, has_comment: 0, outcome_at: new Date().toISOString(), received_at: new Date().toISOString(),
    });
    await app.store.db.insertInto('feedback').values([accepted(old.card_uuid), accepted(recent.card_uuid)]).execute();
    expect((await analytics(app.store, 'v')).byRecommendation[code]).toMatchObject({ cards: 2, accepted: 2 });
    expect((await analytics(app.store, 'v', '2020-01-01')).byRecommendation[code]).toMatchObject({ cards: 1, accepted: 1 });
  });

  it('deletes audit and feedback past the retention period', async () => {
    const at = new Date('2020-01-01T00:00:00Z').toISOString();
    await app.store.db.insertInto('audit_hook_call').values({ hook_instance: `old-${randomUUID()}`, service: 's', at, rules_version: 'v', duration_ms: 1, patient_hash: 'h', user_hash: 'h', orders: 1 }).execute();
    const deleted = await purgeOlderThan(app.store, new Date('2021-01-01T00:00:00Z'));
    expect(deleted).toBeGreaterThanOrEqual(1);
    expect(await app.store.db.selectFrom('audit_hook_call').select('hook_instance').where('at', '<', '2021-01-01').execute()).toHaveLength(0);
  });

  it('purges a backlog larger than one chunk, keeping what is inside the retention period', async () => {
    const tag = randomUUID().slice(0, 8);
    const row = (i: number, at: string) => ({ hook_instance: `bulk-${tag}-${i}`, service: 's', at, rules_version: 'v', duration_ms: 1, patient_hash: 'h', user_hash: 'h', orders: 1 });
    const old = Array.from({ length: 2 * PURGE_CHUNK + 7 }, (_, i) => row(i, '2019-06-01T00:00:00.000Z'));
    for (let i = 0; i < old.length; i += 500) await app.store.db.insertInto('audit_hook_call').values(old.slice(i, i + 500)).execute();
    const recent = new Date().toISOString();
    await app.store.db.insertInto('audit_hook_call').values([row(-1, recent), row(-2, recent)]).execute();
    const deleted = await purgeOlderThan(app.store, new Date('2021-01-01T00:00:00Z'));
    expect(deleted).toBeGreaterThanOrEqual(old.length);
    const left = await app.store.db.selectFrom('audit_hook_call').select('hook_instance').where('hook_instance', 'like', `bulk-${tag}-%`).execute();
    expect(left.map((r) => r.hook_instance).sort()).toEqual([`bulk-${tag}--1`, `bulk-${tag}--2`]);
  });

  it('keeps every acknowledged feedback through a kill -9', async () => {
    const server = await startServer({ CDS_AUTH: 'off', ...storeEnv });
    const cards = Array.from({ length: 40 }, () => randomUUID());
    const results = await Promise.all(
      cards.map((card) =>
        fetch(`${server.url}/cds-services/lbp-imaging-order-sign/feedback`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ feedback: [{ card, outcome: 'overridden', overrideReason: { reason: { system: 'urn:x', code: 'specialist-request' } }, outcomeTimestamp: new Date().toISOString() }] }),
        }).then((r) => r.status),
      ),
    );
    await server.kill('SIGKILL');
    const acknowledged = cards.filter((_, i) => results[i] === 200);
    expect(acknowledged.length).toBe(40);
    const reopened: Store = await openStore({ databaseUrl: storeEnv.DATABASE_URL, databaseSchema: storeEnv.DATABASE_SCHEMA, dataDir: storeEnv.DATA_DIR! });
    try {
      const rows = await reopened.db.selectFrom('feedback').select('card_uuid').where('card_uuid', 'in', acknowledged).execute();
      expect(rows).toHaveLength(acknowledged.length);
    } finally {
      await reopened.close();
    }
  }, 60_000);

  it('answers 503 on /readyz when the store does not answer', async () => {
    const config = loadConfig({ CDS_AUTH: 'off', LOG_LEVEL: 'silent', RULES_DIR, ...env() });
    const store = await openStore({ databaseUrl: config.databaseUrl, databaseSchema: config.databaseSchema, dataDir: config.dataDir });
    const broken = await buildApp({ config, rules: await realRules(), logger: false, store });
    expect((await broken.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
    await store.close();
    expect((await broken.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(503);
    await broken.close().catch(() => undefined);
  });
});

describe('analytics need ADMIN_TOKEN when auth is on', () => {
  it('refuses without it, or with another token, and serves with it', async () => {
    const config = loadConfig({ CDS_AUTH: 'jwt', ADMIN_TOKEN: 'admin-secret-token', LOG_LEVEL: 'silent', RULES_DIR, DATA_DIR: tempDataDir() });
    const app = await buildApp({ config, rules: await realRules(), logger: false, trustedIssuers: [] });
    try {
      expect((await app.inject({ method: 'GET', url: '/analytics/summary' })).statusCode).toBe(401);
      expect((await app.inject({ method: 'GET', url: '/analytics/summary', headers: { authorization: 'Bearer nope' } })).statusCode).toBe(401);
      const ok = await app.inject({ method: 'GET', url: '/analytics/summary', headers: { authorization: 'Bearer admin-secret-token' } });
      expect(ok.statusCode).toBe(200);
      expect(ok.json()).toMatchObject({ rulesVersion: expect.any(String), byRecommendation: {} });
      expect((await app.inject({ method: 'GET', url: '/analytics', headers: { authorization: 'Bearer admin-secret-token' } })).statusCode).toBe(200);
    } finally {
      await app.close();
    }
  });
});
