import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { brotliCompressSync, constants, deflateRawSync, deflateSync, gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import type { Bundle, Condition } from 'fhir/r4.js';
import { buildApp } from '../../src/app.js';
import { loggerOptions } from '../../src/observability/logging.js';
import { loadConfig } from '../../src/config.js';
import { fetchFromFhirServer } from '../../src/fhir/fhir-fetch.js';
import { jsonBoundsProblem, JsonBoundsScanner } from '../../src/fhir/shape.js';
import { realRules, RULES_DIR, tempDataDir } from '../support/app.js';
import { ICD } from '../support/records.js';
import { FIXTURE_CLOCK, loadScenarios, scenarioRequest, SERVICE_IDS } from '../support/scenarios.js';

/**
 * Everything a FHIR server sends is hostile until bounded. A real node:http server here answers the service's Condition
 * search with a bomb, an oversized or endless body, JSON too deep or too wide, a search too long, a redirect...; each
 * makes the conditions unreadable, so an order that the full record shows as imaging-not-indicated gets
 * red-flags-unverified, with a 200, in time, and the log line says why.
 */
type Handler = (req: IncomingMessage, res: ServerResponse, url: URL) => void;

class HostileServer {
  private server?: Server;
  readonly requests: Array<{ url: string; authorization?: string }> = [];
  handler: Handler = (_req, res) => res.end();
  origin = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      this.requests.push({ url: req.url ?? '', authorization: req.headers.authorization });
      this.handler(req, res, new URL(req.url ?? '/', this.origin));
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.origin = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

const DEADLINE_MS = 800;
const TOKEN = 'fhir-token-SECRET-42';
const MiB = 1024 * 1024;

const scenario = loadScenarios().find((s) => s.id === 'acute-lbp-mri-not-indicated')!;
const patientId = scenario.patient.entry![0]!.resource!.id!;
/** The conditions the record has: what a well-behaved server answers. */
const conditions = scenarioRequest(scenario).prefetch!.conditions as Bundle;
const BASE = conditions.entry?.length ?? 0;

/** A harmless condition (essential hypertension) that changes nothing in the advice: padding for long searches. */
const pad = (i: number): { resource: Condition; search: { mode: 'match' } } => ({
  resource: { resourceType: 'Condition', id: `pad-${i}`, subject: { reference: `Patient/${patientId}` }, code: { coding: [{ system: ICD, code: 'I10' }] } },
  search: { mode: 'match' },
});
const searchset = (entry: unknown[], link?: unknown[]) => ({ resourceType: 'Bundle', type: 'searchset', entry, ...(link ? { link } : {}) });
const paddedConditions = (n: number) => searchset([...(conditions.entry ?? []), ...Array.from({ length: n }, (_, i) => pad(i))]);

const fhir = new HostileServer();
const elsewhere = new HostileServer();
const lines: string[] = [];

async function appWith(env: Record<string, string>): Promise<FastifyInstance> {
  const config = loadConfig({ DATA_DIR: tempDataDir(), CDS_AUTH: 'off', LOG_LEVEL: 'info', RULES_DIR, CDS_DEADLINE_MS: String(DEADLINE_MS), RATE_LIMIT_PER_ADDRESS: '0', RATE_LIMIT_PER_ISSUER: '0', ...env });
  const stream = new Writable({ write(chunk, _enc, cb) { lines.push(String(chunk)); cb(); } });
  const app = await buildApp({ config, rules: await realRules(), now: () => FIXTURE_CLOCK, logger: { ...(loggerOptions(config) as object), stream } });
  await app.ready();
  return app;
}

let app: FastifyInstance;
beforeAll(async () => {
  await fhir.start();
  await elsewhere.start();
  app = await appWith({});
});
afterAll(async () => {
  await app.close();
  await fhir.stop();
  await elsewhere.stop();
});
beforeEach(() => {
  fhir.requests.length = 0;
  elsewhere.requests.length = 0;
});

/** The scenario's request with every prefetch key but `conditions`, which the service must fetch from the server. */
function request(): any {
  const r = scenarioRequest(scenario) as any;
  delete r.prefetch.conditions;
  r.fhirServer = `${fhir.origin}/fhir`;
  r.fhirAuthorization = { access_token: TOKEN, token_type: 'Bearer', expires_in: 300, scope: 'patient/*.read', subject: 'lbp-imaging-cds' };
  return r;
}

async function call(target: FastifyInstance = app, body: any = request()) {
  const started = performance.now();
  const res = await target.inject({ method: 'POST', url: `/cds-services/${SERVICE_IDS[scenario.hook]}`, payload: body });
  const ms = performance.now() - started;
  const json = res.json();
  const summary = lines.map((l) => JSON.parse(l)).find((l) => l.msg === 'hook call' && l.hookInstance === body.hookInstance);
  const recommendations = (json.cards ?? []).filter((c: any) => c.source?.topic?.code !== 'patient-conversation').map((c: any) => c.source.topic.code);
  return { status: res.statusCode, json, ms, summary, recommendations, conditionsCall: summary?.fhirCalls?.find((c: any) => c.key === 'conditions') };
}

const sendJson = (res: ServerResponse, body: unknown, headers: Record<string, string> = {}) => {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(200, { 'content-type': 'application/fhir+json', ...headers });
  res.end(text);
};
const sendBytes = (res: ServerResponse, bytes: Buffer, encoding: string) => {
  res.writeHead(200, { 'content-type': 'application/fhir+json', 'content-encoding': encoding, 'content-length': String(bytes.length) });
  res.end(bytes);
};

/** 10 MB of zeros: about 10 KB compressed. */
const ZEROS = Buffer.alloc(10 * 1000 * 1000);
const GZIP_BOMB = gzipSync(ZEROS, { level: 9 });
/** A valid Bundle that is mostly padding: JSON all the way, so only the byte count can refuse it. */
const jsonBomb = () => Buffer.from(JSON.stringify({ ...searchset(conditions.entry ?? []), meta: { tag: [{ display: ' '.repeat(10 * 1000 * 1000) }] } }));

describe('a well-behaved server (the same request, so the refusals below are the bounds at work)', () => {
  it.each([
    ['plain JSON', (res: ServerResponse) => sendJson(res, conditions)],
    ['gzip', (res: ServerResponse) => sendBytes(res, gzipSync(JSON.stringify(conditions)), 'gzip')],
    ['deflate (zlib)', (res: ServerResponse) => sendBytes(res, deflateSync(JSON.stringify(conditions)), 'deflate')],
    ['deflate (raw)', (res: ServerResponse) => sendBytes(res, deflateRawSync(JSON.stringify(conditions)), 'deflate')],
    ['brotli', (res: ServerResponse) => sendBytes(res, brotliCompressSync(JSON.stringify(conditions)), 'br')],
    ['chunked, no Content-Length', (res: ServerResponse) => {
      res.writeHead(200, { 'content-type': 'application/fhir+json' });
      const text = JSON.stringify(conditions);
      for (let i = 0; i < text.length; i += 100) res.write(text.slice(i, i + 100));
      res.end();
    }],
    ['5,000 entries (the limit) over two pages', (res: ServerResponse, url: URL) => {
      if (url.searchParams.get('page') === '2') return sendJson(res, searchset(Array.from({ length: 2500 }, (_, i) => pad(10_000 + i))));
      sendJson(res, searchset([...(conditions.entry ?? []), ...Array.from({ length: 2500 - BASE }, (_, i) => pad(i))], [{ relation: 'next', url: `${fhir.origin}/fhir/Condition?page=2` }]));
    }],
  ])('%s: imaging-not-indicated', async (_name, handler) => {
    fhir.handler = (_req, res, url) => handler(res, url);
    const r = await call();
    expect(r.status).toBe(200);
    expect(r.recommendations).toEqual(['imaging-not-indicated']);
    expect(r.conditionsCall).toMatchObject({ outcome: 'ok' });
    expect(fhir.requests.every((q) => q.authorization === `Bearer ${TOKEN}`)).toBe(true);
  });
});

describe('a hostile answer makes the conditions unreadable: 200, red-flags-unverified, within the deadline', () => {
  async function expectUnreadable(outcome: string, target?: FastifyInstance) {
    const r = await call(target);
    expect(r.status).toBe(200);
    expect(r.recommendations).toEqual(['red-flags-unverified']);
    expect(r.conditionsCall, JSON.stringify(r.summary?.fhirCalls)).toMatchObject({ outcome });
    expect(r.summary.unreadable).toContainEqual({ key: 'conditions', reason: expect.stringContaining(`FHIR server: ${outcome}`) });
    expect(r.ms).toBeLessThan(DEADLINE_MS + 100);
    expect(JSON.stringify(r.json)).not.toMatch(/\bat [^\n]*\.(ts|js):\d+/);
    return r;
  }

  it('a gzip bomb (10 MB of zeros in 10 KB) is cut once it inflates past the limit', async () => {
    expect(GZIP_BOMB.length).toBeLessThan(20_000);
    fhir.handler = (_req, res) => sendBytes(res, GZIP_BOMB, 'gzip');
    await expectUnreadable('too-large');
  });

  it('a gzip bomb that is valid JSON once inflated is cut too', async () => {
    const bytes = gzipSync(jsonBomb());
    fhir.handler = (_req, res) => sendBytes(res, bytes, 'gzip');
    await expectUnreadable('too-large');
  });

  it('a deflate bomb is cut', async () => {
    const bytes = deflateSync(ZEROS);
    fhir.handler = (_req, res) => sendBytes(res, bytes, 'deflate');
    await expectUnreadable('too-large');
  });

  it('a brotli bomb is cut', async () => {
    const bytes = brotliCompressSync(ZEROS, { params: { [constants.BROTLI_PARAM_QUALITY]: 5 } });
    fhir.handler = (_req, res) => sendBytes(res, bytes, 'br');
    await expectUnreadable('too-large');
  });

  it('a Content-Length over the limit is refused before the body is read', async () => {
    fhir.handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/fhir+json', 'content-length': String(5 * MiB) });
      // Only the start of the body, then nothing: waiting for the rest would run into the deadline instead.
      res.write('{"resourceType":"Bundle","type":"searchset","entry":[');
    };
    const r = await expectUnreadable('too-large');
    expect(r.conditionsCall.ms).toBeLessThan(DEADLINE_MS - 100);
  });

  it('a chunked body with no Content-Length is cut once past the limit', async () => {
    const text = jsonBomb();
    fhir.handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/fhir+json' });
      for (let i = 0; i < text.length; i += 64 * 1024) res.write(text.subarray(i, i + 64 * 1024));
      res.end();
    };
    await expectUnreadable('too-large');
  });

  it('JSON nested deeper than the request bounds', async () => {
    const deep = `{"resourceType":"Bundle","type":"searchset","entry":[{"resource":{"resourceType":"Condition","id":"x","subject":{"reference":"Patient/${patientId}"},"extension":${'['.repeat(100)}${']'.repeat(100)}}}]}`;
    fhir.handler = (_req, res) => sendJson(res, deep);
    const r = await expectUnreadable('too-large');
    expect(r.summary.unreadable[0].reason).toMatch(/deeper than 64 levels/);
  });

  it('an array longer than the request bounds', async () => {
    fhir.handler = (_req, res) => sendJson(res, searchset([...(conditions.entry ?? []), { resource: { ...pad(0).resource, extension: Array.from({ length: 20_001 }, () => ({})) } }]));
    const r = await expectUnreadable('too-large');
    expect(r.summary.unreadable[0].reason).toMatch(/array longer than 20000/);
  });

  it('a Bundle of 100,000 entries (over the byte limit) answers within the deadline plus 100 ms', async () => {
    const body = JSON.stringify(paddedConditions(100_000));
    expect(body.length).toBeGreaterThan(4 * MiB);
    fhir.handler = (_req, res) => sendJson(res, body);
    await expectUnreadable('too-large');
  });

  it('a Bundle of 100,000 entries within a larger byte limit is refused by its entry count, within the deadline plus 100 ms', async () => {
    const roomy = await appWith({ FHIR_MAX_RESPONSE_BYTES: String(64 * MiB) });
    try {
      const body = JSON.stringify(paddedConditions(100_000));
      fhir.handler = (_req, res) => sendJson(res, body);
      const r = await expectUnreadable('too-large', roomy);
      expect(r.summary.unreadable[0].reason).toMatch(/more than 5000 entries/);
    } finally {
      await roomy.close();
    }
  });

  it('a slow drip (headers at once, then a byte at a time) is cut at the deadline', async () => {
    fhir.handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/fhir+json' });
      const text = JSON.stringify(conditions);
      let i = 0;
      const drip = setInterval(() => (i < text.length ? res.write(text[i++]) : clearInterval(drip)), 20);
      res.on('close', () => clearInterval(drip));
    };
    await expectUnreadable('timeout');
  });

  it.each([301, 302, 303, 307, 308])('a %i to another server is not followed, and the token goes nowhere', async (status) => {
    fhir.handler = (_req, res) => {
      res.writeHead(status, { location: `${elsewhere.origin}/fhir/Condition?patient=${patientId}` });
      res.end();
    };
    elsewhere.handler = (_req, res) => sendJson(res, conditions);
    const r = await expectUnreadable('redirect');
    expect(r.conditionsCall.status).toBe(status);
    expect(elsewhere.requests).toHaveLength(0);
    expect(fhir.requests).toHaveLength(1);
  });

  it('a redirect on the same server is not followed either', async () => {
    fhir.handler = (req, res) => {
      if (req.url?.includes('moved')) return sendJson(res, conditions);
      res.writeHead(302, { location: '/fhir/moved' });
      res.end();
    };
    await expectUnreadable('redirect');
    expect(fhir.requests).toHaveLength(1);
  });

  it('a next page that is a gzip bomb', async () => {
    fhir.handler = (_req, res, url) => {
      if (url.searchParams.get('page') === '2') return sendBytes(res, GZIP_BOMB, 'gzip');
      sendJson(res, searchset(conditions.entry ?? [], [{ relation: 'next', url: `${fhir.origin}/fhir/Condition?page=2` }]));
    };
    await expectUnreadable('too-large');
    expect(fhir.requests).toHaveLength(2);
  });

  it('pages that pass one by one but not together: entries', async () => {
    fhir.handler = (_req, res, url) => {
      if (url.searchParams.get('page') === '2') return sendJson(res, searchset(Array.from({ length: 2501 }, (_, i) => pad(10_000 + i))));
      sendJson(res, searchset([...(conditions.entry ?? []), ...Array.from({ length: 2500 - BASE }, (_, i) => pad(i))], [{ relation: 'next', url: `${fhir.origin}/fhir/Condition?page=2` }]));
    };
    const r = await expectUnreadable('too-large');
    expect(r.summary.unreadable[0].reason).toMatch(/more than 5000 entries/);
  });

  it('pages that pass one by one but not together: bytes', async () => {
    const padding = ' '.repeat(2.5 * MiB);
    fhir.handler = (_req, res, url) => {
      if (url.searchParams.get('page') === '2') return sendJson(res, { ...searchset([]), meta: { tag: [{ display: padding }] } });
      sendJson(res, { ...searchset(conditions.entry ?? [], [{ relation: 'next', url: `${fhir.origin}/fhir/Condition?page=2` }]), meta: { tag: [{ display: padding }] } });
    };
    await expectUnreadable('too-large');
    expect(fhir.requests).toHaveLength(2);
  });

  it('an unknown content encoding', async () => {
    fhir.handler = (_req, res) => sendBytes(res, Buffer.from(JSON.stringify(conditions)), 'compress');
    await expectUnreadable('malformed');
  });

  it('a body that claims gzip but does not inflate', async () => {
    fhir.handler = (_req, res) => sendBytes(res, Buffer.from(JSON.stringify(conditions)), 'gzip');
    await expectUnreadable('malformed');
  });

  it('a connection closed halfway through the body', async () => {
    fhir.handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/fhir+json', 'content-length': '5000' });
      res.write('{"resourceType":"Bundle",');
      setTimeout(() => res.destroy(), 20);
    };
    await expectUnreadable('connection-failed');
  });
});

describe('the same bounds on prefetch sent in the request', () => {
  it('a prefetch Bundle with more entries than FHIR_MAX_ENTRIES is unreadable; one at the limit is read', async () => {
    const small = await appWith({ FHIR_MAX_ENTRIES: '300' });
    try {
      const withConditions = (n: number) => {
        const r = scenarioRequest(scenario) as any;
        r.prefetch.conditions = paddedConditions(n - BASE);
        return r;
      };
      const atLimit = await call(small, withConditions(300));
      expect(atLimit.recommendations).toEqual(['imaging-not-indicated']);
      const over = await call(small, withConditions(301));
      expect(over.status).toBe(200);
      expect(over.recommendations).toEqual(['red-flags-unverified']);
      expect(over.summary.unreadable).toEqual([{ key: 'conditions', reason: 'more than 300 entries' }]);
    } finally {
      await small.close();
    }
  });

  it('a prefetch value nested deeper than the bounds is a 400 (the whole body is checked before the handler)', async () => {
    const r = scenarioRequest(scenario) as any;
    r.prefetch.conditions = JSON.parse(`{"resourceType":"Bundle","type":"searchset","entry":[{"resource":{"resourceType":"Condition","extension":${'['.repeat(80)}${']'.repeat(80)}}}]}`);
    const res = await call(app, r);
    expect(res.status).toBe(400);
    expect(res.json).toMatchObject({ resourceType: 'OperationOutcome', issue: [{ code: 'invalid', diagnostics: expect.stringMatching(/deeper than 64/) }] });
  });

  it('a prefetch value with an array longer than the bounds is a 400', async () => {
    const r = scenarioRequest(scenario) as any;
    r.prefetch.conditions = searchset([{ resource: { ...pad(0).resource, extension: Array.from({ length: 20_001 }, () => 0) } }]);
    const res = await call(app, r);
    expect(res.status).toBe(400);
    expect(res.json).toMatchObject({ resourceType: 'OperationOutcome', issue: [{ diagnostics: expect.stringMatching(/array longer than 20000/) }] });
  });
});

describe('the transport', () => {
  it('inflates a 1 GB gzip bomb only as far as the limit: memory stays far below its size', async () => {
    // Gzip members concatenate: 100 of the 10 MB bomb are 1 GB inflated, about 1 MB on the wire.
    const bomb = Buffer.concat(Array.from({ length: 100 }, () => GZIP_BOMB));
    fhir.handler = (_req, res) => sendBytes(res, bomb, 'gzip');
    const before = process.memoryUsage().arrayBuffers;
    let peak = before;
    const sampler = setInterval(() => { peak = Math.max(peak, process.memoryUsage().arrayBuffers); }, 1);
    try {
      const result = await fetchFromFhirServer({
        fhirServer: `${fhir.origin}/fhir`,
        queries: { conditions: `Condition?patient=${patientId}` },
        signal: AbortSignal.timeout(20_000),
        maxPages: 10,
        limits: { maxBytes: 4 * MiB, maxEntries: 5000, maxDepth: 64, maxArray: 20_000 },
      });
      expect(result.calls[0]).toMatchObject({ outcome: 'too-large' });
      expect(result.values).toEqual({});
    } finally {
      clearInterval(sampler);
    }
    peak = Math.max(peak, process.memoryUsage().arrayBuffers);
    expect(peak - before).toBeLessThan(64 * MiB);
  });

  it('keeps connections alive between calls', async () => {
    const ports = new Set<number>();
    fhir.handler = (req, res) => {
      ports.add(req.socket.remotePort!);
      sendJson(res, conditions);
    };
    for (let i = 0; i < 3; i++) expect((await call()).recommendations).toEqual(['imaging-not-indicated']);
    expect(ports.size).toBe(1);
  });
});

describe('the JSON bounds scanner (on the bytes as they arrive, before any parse)', () => {
  /** The text cut into pieces at random places, as a socket would deliver it. */
  const chunked = (text: string, cuts: number[]) => {
    const bytes = Buffer.from(text);
    const at = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
    return [...at, bytes.length].map((end, i) => bytes.subarray(i === 0 ? 0 : at[i - 1]!, end));
  };
  const scan = (chunks: Buffer[], depth: number, array: number, entries = Infinity) => {
    const scanner = new JsonBoundsScanner(depth, array, entries);
    for (const c of chunks) {
      const problem = scanner.push(c);
      if (problem) return problem;
    }
    return undefined;
  };

  it('finds a breach exactly when jsonBoundsProblem finds one in the parsed value, however the bytes are cut', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 0, max: 4 }), fc.array(fc.nat(), { maxLength: 8 }), fc.constantFrom(0, 1, '\t'), (value, depth, array, cuts, indent) => {
        const text = JSON.stringify(value, null, indent as never);
        const expected = jsonBoundsProblem(JSON.parse(text), depth, array);
        const found = scan(chunked(text, cuts), depth, array);
        expect(found !== undefined, `${text} -> ${found} / ${expected}`).toBe(expected !== undefined);
        // One breach at a time names the same bound.
        if (expected && found && (expected.startsWith('nests') === found.startsWith('nests'))) expect(found).toBe(expected);
      }),
      { numRuns: 2000 },
    );
  });

  it('counts the entries of a Bundle, and only those', () => {
    fc.assert(
      fc.property(fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 12 }), fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 12 }), fc.nat({ max: 12 }), fc.array(fc.nat(), { maxLength: 8 }), (entry, other, max, cuts) => {
        const text = JSON.stringify({ resourceType: 'Bundle', link: other, entry, nested: { entry: other } });
        const found = scan(chunked(text, cuts), 64, 1000, max);
        expect(found).toBe(entry.length > max ? `more than ${max} entries` : undefined);
      }),
      { numRuns: 1000 },
    );
  });

  it('is not fooled by brackets, quotes and backslashes inside strings', () => {
    const text = JSON.stringify({ resourceType: 'Bundle', entry: [{ a: '[[[[{{{{\\"]]]]", ' }, { b: '\\' }], note: '"entry":[1,2,3,4]' });
    expect(scan([Buffer.from(text)], 3, 2, 2)).toBeUndefined();
    expect(scan([Buffer.from(text)], 3, 2, 1)).toBe('more than 1 entries');
    expect(scan([Buffer.from(text)], 2, 2, 2)).toBe('nests deeper than 2 levels');
  });
});
