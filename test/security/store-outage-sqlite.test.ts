import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { sql } from 'kysely';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { openStore, type Store } from '../../src/store/database.js';
import { AuditRetryError } from '../../src/store/audit-retry-error.js';
import { isStoreOutage } from '../../src/store/supervisor.js';
import { realRules, RULES_DIR, tempDataDir } from '../support/app.js';
import { loadScenarios, scenarioRequest, SERVICE_IDS } from '../support/scenarios.js';
import { watchProcessFailures } from '../support/process-failures.js';

/**
 * The embedded store (SQLite) that cannot be written: a read-only connection, a file that is full. The service keeps
 * answering hook calls, refuses feedback with 503 rather than acknowledging what was not committed, says so on /readyz,
 * keeps the audit within its bound (the SQLite audit thread meets the same errors), and comes back by itself once a
 * write succeeds again. Tests may run as root, where chmod does not stop a write: the file is made read-only with
 * `PRAGMA query_only` on the service's own connection, and full with `PRAGMA max_page_count` (SQLite's real SQLITE_FULL).
 */
const FILE = 'lbp-imaging-cds.sqlite';
const scenario = loadScenarios().find((s) => s.id === 'acute-lbp-mri-not-indicated')!;
const HOOK = `/cds-services/${SERVICE_IDS[scenario.hook]}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Process-level failures seen while a test ran: none may happen. */
const { failures: processFailures } = watchProcessFailures();

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
  expect(processFailures).toEqual([]);
});

async function appOn(dataDir: string, store?: Store, auditQueueMax?: number): Promise<FastifyInstance> {
  const config = loadConfig({ CDS_AUTH: 'off', LOG_LEVEL: 'silent', RULES_DIR, DATA_DIR: dataDir, RATE_LIMIT_PER_ADDRESS: '0', RATE_LIMIT_PER_ISSUER: '0' });
  const app = await buildApp({ config, rules: await realRules(), logger: false, ...(store ? { store } : {}), ...(auditQueueMax ? { auditQueueMax } : {}) });
  await app.ready();
  cleanup.push(() => app.close());
  return app;
}

async function hook(app: FastifyInstance): Promise<{ status: number; card?: string }> {
  const res = await app.inject({ method: 'POST', url: HOOK, payload: scenarioRequest(scenario) as any });
  return { status: res.statusCode, card: res.json().cards?.find((c: any) => c.source.topic.code === 'imaging-not-indicated')?.uuid };
}
async function feedback(app: FastifyInstance, card: string) {
  const item = { card, outcome: 'overridden', overrideReason: { reason: { system: 'urn:x', code: 'patient-preference' } }, outcomeTimestamp: new Date().toISOString() };
  const res = await app.inject({ method: 'POST', url: `${HOOK}/feedback`, payload: { feedback: [item] } as any });
  return { status: res.statusCode, body: res.json() };
}
const readyz = async (app: FastifyInstance) => {
  const res = await app.inject({ method: 'GET', url: '/readyz' });
  return { status: res.statusCode, body: res.json() as { status: string } };
};
async function readyWithin(app: FastifyInstance, boundMs: number): Promise<void> {
  const t0 = performance.now();
  while ((await readyz(app)).status !== 200) {
    if (performance.now() - t0 > boundMs) throw new Error(`not ready within ${boundMs} ms`);
    await sleep(50);
  }
}
async function metric(app: FastifyInstance, name: string): Promise<number> {
  const line = (await app.inject({ method: 'GET', url: '/metrics' })).body.split('\n').find((l) => l.startsWith(`${name} `));
  return Number(line!.split(' ')[1]);
}
function storedFeedback(dataDir: string, cards: string[]): Set<string> {
  const db = new BetterSqlite3(join(dataDir, FILE), { readonly: true });
  try {
    const rows = db.prepare(`select card_uuid from feedback where card_uuid in (${cards.map(() => '?').join(',') || "''"})`).all(...cards) as Array<{ card_uuid: string }>;
    return new Set(rows.map((r) => r.card_uuid));
  } finally {
    db.close();
  }
}

describe('an SQLite store that cannot be written', () => {
  it('read-only: feedback 503 and /readyz 503 while it lasts, hook calls 200; writable again: back by itself', async () => {
    const dataDir = tempDataDir();
    const app = await appOn(dataDir);
    const before = await hook(app);
    expect((await feedback(app, before.card!)).status).toBe(200);

    // The service's own connection refuses writes from now on (SQLITE_READONLY), as a file remounted read-only would.
    await sql`pragma query_only = 1`.execute(app.store.db);
    const during = await hook(app);
    expect(during.status).toBe(200);
    const refused = await feedback(app, during.card!);
    expect(refused.status).toBe(503);
    expect(refused.body).toMatchObject({ resourceType: 'OperationOutcome', issue: [{ code: 'transient' }] });
    expect(await readyz(app)).toMatchObject({ status: 503, body: { status: 'store unavailable' } });
    // The load balancer's probe keeps the replica in service: it still answers hook calls.
    const traffic = await app.inject({ method: 'GET', url: '/readyz?store=optional' });
    expect({ status: traffic.statusCode, body: traffic.json().status }).toEqual({ status: 200, body: 'degraded: store unavailable' });
    // The recovery's probe write keeps failing while the file is read-only: still degraded a few attempts later.
    await sleep(1_600);
    expect((await readyz(app)).status).toBe(503);
    expect((await hook(app)).status).toBe(200);
    expect((await feedback(app, during.card!)).status).toBe(503);
    expect(await metric(app, 'lbp_cds_store_up')).toBe(0);

    await sql`pragma query_only = 0`.execute(app.store.db);
    await readyWithin(app, 10_000);
    expect((await feedback(app, during.card!)).status).toBe(200);
    expect(storedFeedback(dataDir, [before.card!, during.card!])).toEqual(new Set([before.card!, during.card!]));
  }, 30_000);

  it('full (SQLITE_FULL on the service and its audit thread): audit bounded and counted, feedback never acknowledged unstored; space freed: back by itself', async () => {
    const dataDir = tempDataDir();
    // The file's size once migrated, then a cap a little above it on every connection: SQLite's real "database or disk is full".
    const fresh = await openStore({ dataDir });
    const pages = Number((await sql<{ page_count: number }>`pragma page_count`.execute(fresh.db)).rows[0]!.page_count);
    await fresh.close();
    const maxPages = pages + 40;
    const store = await openStore({ dataDir, sqliteMaxPageCount: maxPages });
    cleanup.push(() => store.close());
    const app = await appOn(dataDir, store, 20);

    const acknowledged: string[] = [];
    const statuses = new Set<number>();
    for (let i = 0; i < 3_000 && store.state === 'up'; i++) {
      const h = await hook(app);
      expect(h.status).toBe(200);
      if (i % 5 === 0) {
        const f = await feedback(app, h.card!);
        statuses.add(f.status);
        if (f.status === 200) acknowledged.push(h.card!);
      }
      if (i % 25 === 0) await app.audit.flush();
    }
    expect(store.state).toBe('down');

    // What room the failed batch left is taken too, so no write can succeed until space is freed.
    const filler = new BetterSqlite3(join(dataDir, FILE));
    cleanup.push(() => void filler.close());
    filler.pragma(`max_page_count = ${maxPages}`);
    filler.pragma('busy_timeout = 5000');
    try {
      for (let i = 0; i < 100_000; i++) filler.prepare("insert into setting (key, value) values (?, hex(zeroblob(2000)))").run(`filler-${i}`);
      throw new Error('the file filled up without SQLITE_FULL');
    } catch (err) {
      expect((err as { code?: string }).code).toBe('SQLITE_FULL');
    }

    const whileFull: number[] = [];
    for (let i = 0; i < 30; i++) {
      const h = await hook(app);
      whileFull.push(h.status);
      const f = await feedback(app, h.card!);
      statuses.add(f.status);
      if (f.status === 200) acknowledged.push(h.card!);
      else expect(f.body).toMatchObject({ resourceType: 'OperationOutcome', issue: [{ code: 'transient' }] });
    }
    expect(whileFull).toEqual(Array(30).fill(200));
    await sleep(1_600);
    expect(await readyz(app)).toMatchObject({ status: 503, body: { status: 'store unavailable' } });
    expect(await metric(app, 'lbp_cds_audit_queued_records')).toBe(20);
    expect(await metric(app, 'lbp_cds_audit_dropped_records')).toBeGreaterThan(0);
    expect([...statuses].filter((s) => s !== 200 && s !== 503)).toEqual([]);

    // Space freed (what an operator does): the store comes back by itself, and what waited in the queue is written.
    filler.prepare("delete from setting where key like 'filler-%'").run();
    filler.prepare('delete from audit_card').run();
    await readyWithin(app, 10_000);
    const after = await hook(app);
    const f = await feedback(app, after.card!);
    expect(f.status).toBe(200);
    acknowledged.push(after.card!);
    await app.audit.flush();
    expect(app.audit.queued).toBe(0);
    expect(storedFeedback(dataDir, acknowledged).size).toBe(acknowledged.length);
  }, 60_000);

  it('the audit thread meeting SQLITE_FULL marks the store down and asks for a retry, never drops the batch as bad', async () => {
    const dataDir = tempDataDir();
    const fresh = await openStore({ dataDir });
    const pages = Number((await sql<{ page_count: number }>`pragma page_count`.execute(fresh.db)).rows[0]!.page_count);
    await fresh.close();
    const store = await openStore({ dataDir, sqliteMaxPageCount: pages + 5 });
    cleanup.push(() => store.close());
    const filler = new BetterSqlite3(join(dataDir, FILE));
    cleanup.push(() => void filler.close());
    filler.pragma(`max_page_count = ${pages + 5}`);
    expect(() => {
      for (let i = 0; i < 100_000; i++) filler.prepare('insert into setting (key, value) values (?, hex(zeroblob(2000)))').run(`filler-${i}`);
    }).toThrow(expect.objectContaining({ code: 'SQLITE_FULL' }));
    const at = new Date().toISOString();
    const record = {
      call: { hook_instance: 'full-1', service: 's', at, rules_version: 'v', duration_ms: 1, patient_hash: 'p', user_hash: 'u', orders: 1 },
      cards: [{ card_uuid: 'full-1-card', hook_instance: 'full-1', service: 's', at, day: at.slice(0, 10), recommendation: 'r', order_ref: 'o', red_flags: '{}', fired_rules: '[]', suggestions: '[]', rules_version: 'v' }],
    };
    // More than the room left on any page: the batch needs new pages, and there are none.
    const large = Array.from({ length: 20 }, (_, i) => ({
      call: { ...record.call, hook_instance: `large-${i}` },
      cards: [{ ...record.cards[0]!, card_uuid: `large-${i}-card`, hook_instance: `large-${i}`, red_flags: 'x'.repeat(3_000) }],
    }));
    expect(store.state).toBe('up');
    await expect(store.writeAudit(large)).rejects.toBeInstanceOf(AuditRetryError);
    expect(store.state).toBe('down');
    filler.prepare("delete from setting where key like 'filler-%'").run();
    for (let t0 = performance.now(); store.state !== 'up'; await sleep(50)) expect(performance.now() - t0).toBeLessThan(10_000);
    await store.writeAudit([record]);
    expect(filler.prepare("select count(*) as n from audit_card where card_uuid = 'full-1-card'").get()).toEqual({ n: 1 });
  }, 30_000);
});

describe('which errors are an outage (the store degrades and retries) and which are a fault of one query', () => {
  const withCode = (code: string, message = 'x') => Object.assign(new Error(message), { code });
  it.each([
    ['a refused connection', withCode('ECONNREFUSED')],
    ['a reset connection', withCode('ECONNRESET')],
    ['PostgreSQL shutting down', withCode('57P01', 'terminating connection due to administrator command')],
    ['a connection exception (class 08)', withCode('08006')],
    ['the database gone', withCode('3D000')],
    ['a table gone (database re-created empty)', withCode('42P01')],
    ['a connection ended mid-query', new Error('Connection terminated unexpectedly')],
    ['no pool connection within the timeout', new Error('timeout exceeded when trying to connect')],
    ['a migration that met one', new Error('store migration failed', { cause: withCode('ECONNREFUSED') })],
    ['SQLite disk full', withCode('SQLITE_FULL')],
    ['SQLite read-only', withCode('SQLITE_READONLY_DBMOVED')],
    ['SQLite I/O error', withCode('SQLITE_IOERR_WRITE')],
    ['SQLite cannot open', withCode('SQLITE_CANTOPEN')],
  ])('outage: %s', (_name, err) => {
    expect(isStoreOutage(err)).toBe(true);
  });
  it.each([
    ['a duplicate key', withCode('23505')],
    ['a missing column value', withCode('23502')],
    ['an SQLite constraint', withCode('SQLITE_CONSTRAINT_NOTNULL')],
    ['a syntax error', withCode('42601')],
    ['a plain error', new Error('boom')],
    ['not an error at all', 'boom'],
  ])('not an outage: %s', (_name, err) => {
    expect(isStoreOutage(err)).toBe(false);
  });
});
