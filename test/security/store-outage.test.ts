import { createHmac, randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import pg from 'pg';
import type { FastifyInstance } from 'fastify';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { realRules, RULES_DIR, tempDataDir } from '../support/app.js';
import { loadScenarios, scenarioRequest, SERVICE_IDS } from '../support/scenarios.js';
import { startServer, type ServerProcess } from '../support/server-process.js';
import { openStore } from '../../src/store/database.js';
import { DatabaseReplayStore } from '../../src/store/replay-store.js';
import { storeFollowUpMemory } from '../../src/store/follow-up.js';
import { TcpProxy } from '../support/tcp-proxy.js';
import { watchProcessFailures } from '../support/process-failures.js';

/**
 * A database that goes away never takes the service down: PostgreSQL behind a TCP proxy that the test cuts and
 * restores, and a database of the test's own dropped under load and re-created. Hook calls keep answering 200, feedback
 * gets 503 (never a 200 that was not committed), /readyz says why, the audit waits within its bound and counts what it
 * drops, and the service is ready again within 10 s of the database's return, without a restart. Runs where
 * DATABASE_URL is set (CI sets it); skipped elsewhere, saying so.
 */
const PG_URL = process.env.DATABASE_URL;
if (!PG_URL) {
  it('store outage suite skipped: set DATABASE_URL=postgres://… to run it (CI does)', () => {
    expect(PG_URL).toBeUndefined();
  });
}

const scenario = loadScenarios().find((s) => s.id === 'acute-lbp-mri-not-indicated')!;
const HOOK = `/cds-services/${SERVICE_IDS[scenario.hook]}`;
const FEEDBACK = `${HOOK}/feedback`;
const RECOVERY_BOUND_MS = 10_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Process-level failures seen while a test ran: none may happen. */
const { failures: processFailures } = watchProcessFailures();

/** Databases of this file's own, each dropped at the end. */
const databases: string[] = [];
async function admin<T>(run: (client: pg.Client) => Promise<T>, database?: string): Promise<T> {
  const url = new URL(PG_URL!);
  if (database) url.pathname = `/${database}`;
  const client = new pg.Client({ connectionString: url.toString() });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await run(client);
  } finally {
    await client.end();
  }
}
async function ownDatabase(): Promise<string> {
  const name = `lbp_outage_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
  await admin((c) => c.query(`create database ${name}`));
  databases.push(name);
  return name;
}
afterAll(async () => {
  if (!PG_URL) return;
  for (const name of databases) await admin((c) => c.query(`drop database if exists ${name} with (force)`));
});

function urlFor(database: string, proxy?: TcpProxy): string {
  const url = new URL(PG_URL!);
  url.pathname = `/${database}`;
  if (proxy) url.host = `127.0.0.1:${proxy.port}`;
  return url.toString();
}
function proxyFor(): TcpProxy {
  const url = new URL(PG_URL!);
  return new TcpProxy(url.hostname, Number(url.port || 5432));
}

/** Log lines the app wrote (info and above), parsed. */
function logSink(): { stream: Writable; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { stream, lines };
}

async function app(env: Record<string, string>, stream: Writable, auditQueueMax = 5): Promise<FastifyInstance> {
  const config = loadConfig({ CDS_AUTH: 'off', LOG_LEVEL: 'info', RULES_DIR, DATA_DIR: tempDataDir(), RATE_LIMIT_PER_ADDRESS: '0', RATE_LIMIT_PER_ISSUER: '0', ...env });
  const built = await buildApp({ config, rules: await realRules(), logger: { level: 'info', stream }, auditQueueMax });
  await built.ready();
  return built;
}

type Phase = 'up' | 'cut' | 'restored';
interface Sent {
  phase: Phase;
  status: number;
  body: any;
}
interface FeedbackSent extends Sent {
  card: string;
}

/** A steady stream of hook calls, each followed by feedback on its card, from a few concurrent clients. */
function load(target: FastifyInstance, phase: () => Phase) {
  const hooks: Array<Sent & { hookInstance: string; cards: number }> = [];
  const feedback: FeedbackSent[] = [];
  let running = true;
  const client = async () => {
    while (running) {
      const request = scenarioRequest(scenario);
      const at = phase();
      const res = await target.inject({ method: 'POST', url: HOOK, payload: request as any });
      const body = res.json();
      hooks.push({ phase: at, status: res.statusCode, body, hookInstance: request.hookInstance, cards: body.cards?.length ?? 0 });
      const card = body.cards?.find((c: any) => c.source.topic.code === 'imaging-not-indicated');
      if (card) {
        const fbAt = phase();
        const item = { card: card.uuid, outcome: 'overridden', overrideReason: { reason: { system: 'urn:lbp-imaging-cds:override-reason', code: 'patient-preference' } }, outcomeTimestamp: new Date().toISOString() };
        const fb = await target.inject({ method: 'POST', url: FEEDBACK, payload: { feedback: [item] } as any });
        feedback.push({ phase: fbAt, status: fb.statusCode, body: fb.json(), card: card.uuid });
      }
      await sleep(15);
    }
  };
  const clients = [client(), client(), client()];
  return {
    hooks,
    feedback,
    stop: async () => {
      running = false;
      await Promise.all(clients);
    },
  };
}

async function readyz(target: FastifyInstance) {
  const res = await target.inject({ method: 'GET', url: '/readyz' });
  return { status: res.statusCode, body: res.json() as { status: string; storeState: string } };
}
/** Polls /readyz until it answers `want`; returns how long that took. */
async function until(target: FastifyInstance, want: number, boundMs: number): Promise<number> {
  const t0 = performance.now();
  while (performance.now() - t0 < boundMs) {
    if ((await readyz(target)).status === want) return performance.now() - t0;
    await sleep(50);
  }
  throw new Error(`/readyz did not answer ${want} within ${boundMs} ms`);
}
async function metric(target: FastifyInstance, name: string): Promise<number> {
  const text = (await target.inject({ method: 'GET', url: '/metrics' })).body;
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  if (!line) throw new Error(`metric ${name} missing`);
  return Number(line.split(' ')[1]);
}

/** What a 503 for feedback must be: an OperationOutcome of issue type transient. */
function expectStoreUnavailable(sent: Sent): void {
  expect(sent.status).toBe(503);
  expect(sent.body).toMatchObject({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'transient' }] });
}

/** Every feedback that was answered 200 is in the database. */
async function expectAcknowledgedStored(database: string, feedback: FeedbackSent[], schema?: string): Promise<void> {
  const acknowledged = feedback.filter((f) => f.status === 200).map((f) => f.card);
  expect(acknowledged.length).toBeGreaterThan(0);
  const stored = await admin(async (c) => {
    const { rows } = await c.query(`select card_uuid from ${schema ? `${schema}.` : ''}feedback where card_uuid = any($1)`, [acknowledged]);
    return new Set(rows.map((r: { card_uuid: string }) => r.card_uuid));
  }, database);
  expect(acknowledged.filter((card) => !stored.has(card))).toEqual([]);
}

/** No log line carries a stack; errors are `{ code, message }`. */
function expectNoStacks(lines: Array<Record<string, unknown>>): void {
  // (pino's error serializer gives every `err` a "stack" key; it must stay empty.)
  expect(JSON.stringify(lines)).not.toMatch(/"stack":"[^"]|\\n\s+at /);
}

describe.skipIf(!PG_URL)('a database that goes away (PostgreSQL; skipped without DATABASE_URL)', () => {
  const opened: FastifyInstance[] = [];
  const proxies: TcpProxy[] = [];
  afterEach(async () => {
    for (const a of opened.splice(0)) await a.close();
    for (const p of proxies.splice(0)) await p.close();
    expect(processFailures).toEqual([]);
  });

  it('cut under load: hook calls answer 200 throughout, feedback 503, audit bounded and counted; restored: ready within 10 s, nothing acknowledged lost', async () => {
    const database = await ownDatabase();
    const proxy = proxyFor();
    proxies.push(proxy);
    await proxy.start();
    const logs = logSink();
    const target = await app({ DATABASE_URL: urlFor(database, proxy) }, logs.stream);
    opened.push(target);
    expect((await readyz(target)).status).toBe(200);
    expect(await metric(target, 'lbp_cds_store_up')).toBe(1);

    let phase: Phase = 'up';
    const traffic = load(target, () => phase);
    await sleep(600);

    phase = 'cut';
    await proxy.cut();
    // The store notices at the first query that fails (or the pool's error event), without waiting for /readyz.
    await until(target, 503, 5_000);
    const degraded = await readyz(target);
    expect(degraded.body.status).toBe('store unavailable');
    expect(degraded.body.storeState).toBe('down');
    const sentWhileDown = traffic.feedback.length;
    await sleep(1_500);
    expect(await metric(target, 'lbp_cds_store_up')).toBe(0);
    // Queue bound 5: the calls with cards past it are dropped and counted.
    expect(await metric(target, 'lbp_cds_audit_queued_records')).toBe(5);
    expect(await metric(target, 'lbp_cds_audit_dropped_records')).toBeGreaterThan(0);
    const analyticsDown = await target.inject({ method: 'GET', url: '/analytics/summary' });
    expect(analyticsDown.statusCode).toBe(503);

    phase = 'restored';
    const restoredAt = performance.now();
    await proxy.restore();
    await until(target, 200, RECOVERY_BOUND_MS);
    expect(performance.now() - restoredAt).toBeLessThan(RECOVERY_BOUND_MS);
    await sleep(600);
    await traffic.stop();

    // Hook calls: every one answered 200, with cards, before, during and after the outage.
    expect(traffic.hooks.filter((h) => h.phase === 'cut').length).toBeGreaterThan(10);
    expect(traffic.hooks.filter((h) => h.status !== 200 || h.cards === 0)).toEqual([]);
    // Feedback: 200 or 503, never anything else; every one sent once the store was known down, until it was back, 503.
    expect(traffic.feedback.filter((f) => f.status !== 200 && f.status !== 503)).toEqual([]);
    const down = traffic.feedback.slice(sentWhileDown).filter((f) => f.phase === 'cut');
    expect(down.length).toBeGreaterThan(5);
    for (const f of down) expectStoreUnavailable(f);
    expect(traffic.feedback.filter((f) => f.phase === 'restored' && f.status === 200).length).toBeGreaterThan(0);
    expect(traffic.feedback.filter((f) => f.phase === 'up' && f.status === 200).length).toBeGreaterThan(0);
    await expectAcknowledgedStored(database, traffic.feedback);

    // Audit: every call with cards is either stored or counted as dropped.
    await target.audit.flush();
    const dropped = await metric(target, 'lbp_cds_audit_dropped_records');
    const instances = traffic.hooks.map((h) => h.hookInstance);
    const stored = await admin(async (c) => Number((await c.query('select count(*) as n from audit_hook_call where hook_instance = any($1)', [instances])).rows[0].n), database);
    expect(stored + dropped).toBeGreaterThanOrEqual(instances.length);
    expect(stored).toBeGreaterThan(0);

    // The outage was logged as such, once, with the error's code and message and no stack.
    const outage = logs.lines.filter((l) => l.msg === 'store unavailable; the service answers degraded and retries');
    expect(outage).toHaveLength(1);
    expect(outage[0]!.err).toMatchObject({ message: expect.any(String) });
    expect(logs.lines.some((l) => l.msg === 'store available again')).toBe(true);
    expectNoStacks(logs.lines);
  }, 60_000);

  it('starts with the database unreachable: degraded and saying so, then ready without a restart once it is back', async () => {
    const database = await ownDatabase();
    const proxy = proxyFor();
    proxies.push(proxy);
    await proxy.start();
    await proxy.cut();
    const logs = logSink();
    const t0 = performance.now();
    const target = await app({ DATABASE_URL: urlFor(database, proxy) }, logs.stream);
    opened.push(target);
    // Starting does not wait for the database.
    expect(performance.now() - t0).toBeLessThan(5_000);
    const starting = await readyz(target);
    expect(starting.status).toBe(503);
    expect(starting.body).toMatchObject({ status: 'store starting: migrations pending, retrying', storeState: 'starting' });
    expect(logs.lines.some((l) => l.msg === 'store starting: migrations pending, retrying')).toBe(true);

    // Hook calls are answered; without the hash secret their audit records cannot be made, and are counted as dropped.
    const hook = await target.inject({ method: 'POST', url: HOOK, payload: scenarioRequest(scenario) as any });
    expect(hook.statusCode).toBe(200);
    const card = hook.json().cards.find((c: any) => c.source.topic.code === 'imaging-not-indicated');
    expect(await metric(target, 'lbp_cds_audit_dropped_records')).toBe(1);
    expect(await metric(target, 'lbp_cds_audit_queued_records')).toBe(0);
    const item = { card: card.uuid, outcome: 'overridden', overrideReason: { reason: { system: 'urn:x', code: 'patient-preference' } }, outcomeTimestamp: new Date().toISOString() };
    const refused = await target.inject({ method: 'POST', url: FEEDBACK, payload: { feedback: [item] } as any });
    expectStoreUnavailable({ phase: 'cut', status: refused.statusCode, body: refused.json() });
    expect(refused.headers['retry-after']).toBe('5');

    await sleep(1_200);
    const restoredAt = performance.now();
    await proxy.restore();
    await until(target, 200, RECOVERY_BOUND_MS);
    expect(performance.now() - restoredAt).toBeLessThan(RECOVERY_BOUND_MS);
    expect((await readyz(target)).body.status).toBe('ready');

    const accepted = await target.inject({ method: 'POST', url: FEEDBACK, payload: { feedback: [item] } as any });
    expect(accepted.statusCode).toBe(200);
    await expectAcknowledgedStored(database, [{ phase: 'restored', status: 200, body: {}, card: card.uuid }]);
    const again = scenarioRequest(scenario);
    expect((await target.inject({ method: 'POST', url: HOOK, payload: again as any })).statusCode).toBe(200);
    await target.audit.flush();
    const row = await admin(async (c) => (await c.query('select patient_hash from audit_hook_call where hook_instance = $1', [again.hookInstance])).rows[0], database);
    expect(row?.patient_hash).toBe(target.store.hash(`Patient/${again.context.patientId}`));
    expectNoStacks(logs.lines);
  }, 60_000);

  it('a database dropped under load and re-created: the tables and the hash secret come back, and so does the service', async () => {
    const database = await ownDatabase();
    const schema = `s_${randomUUID().replaceAll('-', '').slice(0, 8)}`;
    const logs = logSink();
    const target = await app({ DATABASE_URL: urlFor(database), DATABASE_SCHEMA: schema }, logs.stream);
    opened.push(target);
    const secretOf = () => admin(async (c) => (await c.query(`select value from ${schema}.setting where key = 'hash_secret'`)).rows[0]?.value as string | undefined, database);
    const secret = await secretOf();
    expect(secret).toMatch(/^[0-9a-f]{64}$/);
    const hashBefore = target.store.hash('Patient/p1');

    let phase: Phase = 'up';
    const traffic = load(target, () => phase);
    await sleep(600);
    phase = 'cut';
    await admin((c) => c.query(`drop database ${database} with (force)`));
    await until(target, 503, 5_000);
    const sentWhileDown = traffic.feedback.length;
    await sleep(1_000);
    expect((await readyz(target)).body.status).toBe('store unavailable');

    phase = 'restored';
    const restoredAt = performance.now();
    await admin((c) => c.query(`create database ${database}`));
    await until(target, 200, RECOVERY_BOUND_MS);
    expect(performance.now() - restoredAt).toBeLessThan(RECOVERY_BOUND_MS);
    await sleep(600);
    await traffic.stop();

    expect(traffic.hooks.filter((h) => h.phase === 'cut').length).toBeGreaterThan(5);
    expect(traffic.hooks.filter((h) => h.status !== 200 || h.cards === 0)).toEqual([]);
    expect(traffic.feedback.filter((f) => f.status !== 200 && f.status !== 503)).toEqual([]);
    for (const f of traffic.feedback.slice(sentWhileDown).filter((f) => f.phase === 'cut')) expectStoreUnavailable(f);
    // The re-created database got the schema, the tables and the secret in use back: hashes stay what they were.
    expect(await secretOf()).toBe(secret);
    expect(target.store.hash('Patient/p1')).toBe(hashBefore);
    expect(hashBefore).toBe(createHmac('sha256', secret!).update('Patient/p1').digest('hex').slice(0, 32));
    // Only what was acknowledged after the drop can be in the new database; all of that is.
    await expectAcknowledgedStored(database, traffic.feedback.filter((f) => f.phase === 'restored'), schema);
    expectNoStacks(logs.lines);
  }, 60_000);
});

describe.skipIf(!PG_URL)('what hook calls ask the store while it is down (skipped without DATABASE_URL)', () => {
  it('JWT replay: kept in memory during the outage, and a token seen then is still refused once the database is back', async () => {
    const database = await ownDatabase();
    const proxy = proxyFor();
    await proxy.start();
    const store = await openStore({ databaseUrl: urlFor(database, proxy), dataDir: tempDataDir() });
    try {
      const replays = new DatabaseReplayStore(store);
      const now = Date.now();
      const exp = now + 300_000;
      expect(await replays.remember('iss|before', exp, now)).toBe(true);
      await proxy.cut();
      // The first check meets the cut (and marks the store down); none waits more than the bound.
      const t0 = performance.now();
      expect(await replays.remember('iss|during', exp, now)).toBe(true);
      expect(await replays.remember('iss|during', exp, now)).toBe(false);
      expect(performance.now() - t0).toBeLessThan(2_500);
      expect(store.state).toBe('down');
      await proxy.restore();
      for (const t1 = performance.now(); store.state !== 'up'; await sleep(50)) expect(performance.now() - t1).toBeLessThan(RECOVERY_BOUND_MS);
      // Back: the one seen in memory is still a replay (the database never heard of it), the one before too, a new one is new.
      expect(await replays.remember('iss|during', exp, now + 1_000)).toBe(false);
      expect(await replays.remember('iss|before', exp, now + 1_000)).toBe(false);
      expect(await replays.remember('iss|after', exp, now + 1_000)).toBe(true);
      const kept = await admin(async (c) => (await c.query('select jti_key from jti_seen order by jti_key')).rows.map((r: { jti_key: string }) => r.jti_key), database);
      expect(kept).toEqual(['iss|after', 'iss|before']);
      // Once the token has expired, memory forgets it and the id may be used again.
      expect(await replays.remember('iss|during', exp + 300_000, exp + 61_000)).toBe(true);
    } finally {
      await store.close();
      await proxy.close();
    }
  }, 30_000);

  it('follow-up memory: once per key from memory while down, no claim about earlier advice, and never a long wait', async () => {
    const database = await ownDatabase();
    const proxy = proxyFor();
    await proxy.start();
    const store = await openStore({ databaseUrl: urlFor(database, proxy), dataDir: tempDataDir() });
    try {
      const memory = storeFollowUpMemory(store);
      const at = new Date();
      expect(await memory.firstTime('encounter|e1', at)).toBe(true);
      expect(await memory.firstTime('encounter|e1', at)).toBe(false);
      await proxy.cut();
      const t0 = performance.now();
      expect(await memory.firstTime('encounter|e2', at)).toBe(true);
      expect(await memory.firstTime('encounter|e2', at)).toBe(false);
      expect(await memory.imagingAdviceActedOn('p1', new Date(0))).toBe(false);
      expect(performance.now() - t0).toBeLessThan(2_500);
      await proxy.restore();
      for (const t1 = performance.now(); store.state !== 'up'; await sleep(50)) expect(performance.now() - t1).toBeLessThan(RECOVERY_BOUND_MS);
      // Shown while the store was down: not again now that it is back, though the store never heard of it.
      expect(await memory.firstTime('encounter|e2', at)).toBe(false);
      expect(await memory.firstTime('encounter|e3', at)).toBe(true);
    } finally {
      await store.close();
      await proxy.close();
    }
  }, 30_000);
});

describe.skipIf(!PG_URL)('the service process when its database connection is cut (skipped without DATABASE_URL)', () => {
  let server: ServerProcess | undefined;
  let proxy: TcpProxy | undefined;
  afterAll(async () => {
    await server?.kill();
    await proxy?.close();
  });

  it('stays alive and answering, and is ready again once the database is back', async () => {
    const database = await ownDatabase();
    proxy = proxyFor();
    await proxy.start();
    server = await startServer({ CDS_AUTH: 'off', DATABASE_URL: urlFor(database, proxy), DATA_DIR: tempDataDir(), LOG_LEVEL: 'info' });
    let output = '';
    server.child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    server.child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const hook = async () => (await fetch(`${server!.url}${HOOK}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(scenarioRequest(scenario)) })).status;
    const ready = async () => (await fetch(`${server!.url}/readyz`)).status;
    expect(await hook()).toBe(200);
    expect(await ready()).toBe(200);

    // Idle connections in the pool are cut too: the pool's error event must not end the process.
    await proxy.cut();
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) {
      statuses.push(await hook());
      await sleep(50);
    }
    expect(statuses).toEqual(Array(20).fill(200));
    expect(await ready()).toBe(503);
    await sleep(1_000);
    expect(server.child.exitCode).toBeNull();
    expect(server.child.signalCode).toBeNull();

    const restoredAt = performance.now();
    await proxy.restore();
    while ((await ready()) !== 200) {
      expect(performance.now() - restoredAt).toBeLessThan(RECOVERY_BOUND_MS);
      await sleep(100);
    }
    expect(await hook()).toBe(200);
    expect(server.child.exitCode).toBeNull();
    expect(output).toContain('store unavailable');
    expect(output).not.toMatch(/"stack":"[^"]|\\n\s+at /);
  }, 60_000);
});
