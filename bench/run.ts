/**
 * npm run bench: the service against bare fastify on the same machine and the same request, interleaved A/B/A/B so drift
 * cancels out. Measures per-call latency (sequential, one connection), throughput at 50 connections (auth off, and with
 * JWT on), p99 at a steady 200 requests/s, scaling (ten times the rules; records of 250 to 2,000 Conditions and
 * Observations) and the FHIR fallback path against a stub with a fixed latency per query. Prints a markdown table and
 * writes JSON to bench/results/.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { recordOfSize, scaledRecord, scaledRulesDir } from './scale.js';

const ROOT = new URL('..', import.meta.url).pathname;
const FIXTURE = join(ROOT, 'fixtures/requests/order-select-uncomplicated-mri.json');
const FIXTURE_BODY = readFileSync(FIXTURE, 'utf8');
// The issue's realistic request: about 20 KB with full prefetch (the fixture's patient with a longer problem list and
// more temperature readings), the same bytes for the service and for bare fastify.
const BODY_BYTES = Number(process.env.BENCH_BODY_BYTES ?? 20_000);
const BODY = JSON.stringify(recordOfSize(JSON.parse(FIXTURE_BODY), BODY_BYTES));
const PATH = '/cds-services/lbp-imaging-order-select';
const SEQUENTIAL = Number(process.env.BENCH_SEQUENTIAL ?? 1500);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const SCALE_CALLS = Number(process.env.BENCH_SCALE_CALLS ?? 300);
const RECORD_SIZES = [250, 500, 1000, 2000];
const FHIR_LATENCY_MS = Number(process.env.BENCH_FHIR_LATENCY_MS ?? 20);
const ISSUER = 'https://ehr.bench.example';

interface Server {
  url: string;
  child: ChildProcess;
  /** Headers each call needs (a fresh token when JWT is on). */
  headers: () => Record<string, string>;
  /** With JWT on: a file of this many fresh tokens for one load run. */
  loadTokens?: (count: number) => Promise<string>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function waitReady(url: string, name: string): Promise<void> {
  for (let i = 0; i < 150; i++) {
    try {
      if ((await fetch(url)).status < 500) return;
    } catch {
      /* not up yet */
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${name} did not start`);
}

async function startService(env: Record<string, string> = {}, headers: (base: string) => () => Record<string, string> = () => () => ({})): Promise<Server> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(process.execPath, ['dist/server.js'], {
    cwd: ROOT,
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      PUBLIC_BASE_URL: url,
      CDS_AUTH: 'off',
      LOG_LEVEL: 'error',
      RATE_LIMIT_PER_ADDRESS: '0',
      RATE_LIMIT_PER_ISSUER: '0',
      CDS_BODY_LIMIT: String(16 * 1024 * 1024),
      DATA_DIR: mkdtempSync(join(tmpdir(), 'lbp-bench-data-')),
      ...env,
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  await waitReady(`${url}/readyz`, 'service');
  return { url, child, headers: headers(url) };
}

async function startScript(script: string, args: string[] = [], env: Record<string, string> = {}): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const child = spawn(process.execPath, [script, ...args], { cwd: ROOT, env: { ...process.env, PORT: String(port), ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
  return { url: `http://127.0.0.1:${port}`, child };
}

/**
 * A trusted issuer with an ES256 key, and a pool of tokens signed before the run (each with its own `jti`, as an EHR
 * sends them) so the load generator measures the service's verification, not its own signing.
 */
async function jwtIssuer(): Promise<{ issuersFile: string; sign: (base: string, count: number) => Promise<string[]>; headersFrom: (pool: string[]) => () => Record<string, string> }> {
  const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid: 'bench', alg: 'ES256', use: 'sig' };
  const issuersFile = join(mkdtempSync(join(tmpdir(), 'lbp-bench-iss-')), 'issuers.json');
  writeFileSync(issuersFile, JSON.stringify([{ iss: ISSUER, jwks: { keys: [jwk] } }]));
  return {
    issuersFile,
    async sign(base, count) {
      const now = Math.floor(Date.now() / 1000);
      const tokens: string[] = [];
      for (let i = 0; i < count; i++) {
        tokens.push(
          await new SignJWT({})
            .setProtectedHeader({ alg: 'ES256', kid: 'bench', typ: 'JWT' })
            .setIssuer(ISSUER)
            .setAudience(`${base}${PATH}`)
            .setIssuedAt(now)
            .setExpirationTime(now + 300)
            .setJti(randomUUID())
            .sign(privateKey),
        );
      }
      return tokens;
    },
    headersFrom(pool) {
      let next = 0;
      return () => {
        if (next >= pool.length) throw new Error('token pool exhausted; raise the pool size');
        return { authorization: `Bearer ${pool[next++]}` };
      };
    },
  };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

// node:http with keep-alive rather than fetch: at these latencies the client's own cost is part of every figure, and
// undici's fetch costs several times more per call (and more garbage) than a plain request.
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

/** One hook call; resolves with the status once the whole answer has arrived. */
function post(server: Pick<Server, 'url' | 'headers'>, body: string): Promise<number> {
  const url = new URL(`${server.url}${PATH}`);
  const payload = Buffer.from(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: url.hostname, port: url.port, path: url.pathname, method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': payload.length, ...server.headers() } },
      (res) => {
        res.on('data', () => {});
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

async function sequential(server: Pick<Server, 'url' | 'headers'>, n: number, body = BODY): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const status = await post(server, body);
    if (status !== 200) throw new Error(`status ${status}`);
    times.push(performance.now() - t0);
  }
  return times;
}

/** n calls to each of a and b, one after the other in turn; both lists sorted. */
async function alternate(a: Pick<Server, 'url' | 'headers'>, b: Pick<Server, 'url' | 'headers'>, n: number, body: string): Promise<[number[], number[]]> {
  const ta: number[] = [];
  const tb: number[] = [];
  for (let i = 0; i < n; i++) {
    ta.push(...(await sequential(a, 1, body)));
    tb.push(...(await sequential(b, 1, body)));
  }
  return [ta.sort((x, y) => x - y), tb.sort((x, y) => x - y)];
}

interface Load {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
}

const WORK = mkdtempSync(join(tmpdir(), 'lbp-bench-'));
const BODY_FILE = join(WORK, 'body.json');
writeFileSync(BODY_FILE, BODY);

/** One saturating run at 50 connections, by bench/load.mjs in a process of its own. */
async function load(server: Pick<Server, 'url' | 'loadTokens'>, connections = 50): Promise<Load> {
  const config = join(WORK, `load-${randomUUID()}.json`);
  const tokensFile = server.loadTokens ? await server.loadTokens(SECONDS * 8000) : undefined;
  writeFileSync(config, JSON.stringify({ url: `${server.url}${PATH}`, bodyFile: BODY_FILE, connections, seconds: SECONDS, tokensFile }));
  const child = spawn(process.execPath, [join(ROOT, 'bench/load.mjs'), config], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  if (code !== 0) throw new Error(`load run failed (${code})`);
  return JSON.parse(out) as Load;
}

/**
 * Open-loop load at a steady rate: one call every 1000/rate ms whether or not earlier ones have answered, as an EHR's
 * clinicians would send them. (autocannon's rate limit sends each second's quota in a burst, which measures queueing.)
 */
async function paced(server: Pick<Server, 'url' | 'headers'>, rate: number, seconds: number): Promise<Load> {
  const interval = 1000 / rate;
  const times: number[] = [];
  let errors = 0;
  const calls: Array<Promise<void>> = [];
  // One uncounted second first: opening connections and warming the JIT are not the steady state.
  const warmUp = rate;
  const t0 = performance.now();
  let measuredFrom = t0;
  for (let i = 0; i < rate * seconds + warmUp; i++) {
    const wait = t0 + i * interval - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const sent = performance.now();
    if (i === warmUp) measuredFrom = sent;
    const counted = i >= warmUp;
    calls.push(
      post(server, BODY)
        .then((status) => {
          if (status !== 200) errors++;
          if (counted) times.push(performance.now() - sent);
        })
        .catch(() => {
          errors++;
        }),
    );
  }
  await Promise.all(calls);
  const sorted = times.sort((a, b) => a - b);
  return { rps: sorted.length / ((performance.now() - measuredFrom) / 1000), p50: percentile(sorted, 50), p99: percentile(sorted, 99), errors };
}

const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
const fmt = (n: number, d = 2) => n.toFixed(d);

function summarise(times: number[], runs: Load[]) {
  const sorted = [...times].sort((a, b) => a - b);
  return {
    sequential: { n: sorted.length, p50: percentile(sorted, 50), p90: percentile(sorted, 90), p99: percentile(sorted, 99) },
    load50: { rps: mean(runs.map((r) => r.rps)), p50: mean(runs.map((r) => r.p50)), p99: mean(runs.map((r) => r.p99)), errors: runs.reduce((s, r) => s + r.errors, 0) },
  };
}

async function main(): Promise<void> {
  const issuer = await jwtIssuer();
  const service = await startService();
  const jwtProcess = await startService({ CDS_AUTH: 'jwt', CDS_TRUSTED_ISSUERS: issuer.issuersFile });
  // Tokens are signed before each run (one jti per call, as an EHR sends them), so the runs measure the service's
  // verification, not the generator's signing; load runs get a rate well above what they reach.
  const jwtService: Server = {
    ...jwtProcess,
    headers: issuer.headersFrom(await issuer.sign(jwtProcess.url, SEQUENTIAL + 400)),
    loadTokens: async (count) => {
      const file = join(WORK, `tokens-${randomUUID()}.json`);
      writeFileSync(file, JSON.stringify(await issuer.sign(jwtProcess.url, count)));
      return file;
    },
  };
  const bareProcess = await startScript('bench/bare-server.mjs');
  const bare: Server = { ...bareProcess, headers: () => ({}) };
  // The same bare server answering with one of the service's own answers, byte for byte.
  const answerFile = join(mkdtempSync(join(tmpdir(), 'lbp-bench-answer-')), 'answer.json');
  const answer = await (await fetch(`${service.url}${PATH}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: BODY })).text();
  writeFileSync(answerFile, answer);
  const bareFullProcess = await startScript('bench/bare-server.mjs', [], { ANSWER_FILE: answerFile });
  const bareFull: Server = { ...bareFullProcess, headers: () => ({}) };
  const children = [service.child, jwtService.child, bare.child, bareFull.child];
  try {
    // Throughput and latency, interleaved.
    const contenders = { service, jwt: jwtService, bare, bareFull } as const;
    type Name = keyof typeof contenders;
    const seq: Record<Name, number[]> = { service: [], jwt: [], bare: [], bareFull: [] };
    const tput: Record<Name, Load[]> = { service: [], jwt: [], bare: [], bareFull: [] };
    for (const s of Object.values(contenders)) await sequential(s, 300);
    for (let round = 0; round < ROUNDS; round++) {
      for (const [name, s] of Object.entries(contenders) as Array<[Name, Server]>) seq[name].push(...(await sequential(s, SEQUENTIAL / ROUNDS)));
      for (const [name, s] of Object.entries(contenders) as Array<[Name, Server]>) tput[name].push(await load(s));
    }
    const summary = {
      service: summarise(seq.service, tput.service),
      jwt: summarise(seq.jwt, tput.jwt),
      bare: summarise(seq.bare, tput.bare),
      bareFull: summarise(seq.bareFull, tput.bareFull),
    };
    const { service: s, jwt: j, bare: b, bareFull: bf } = summary;

    // A steady 200 requests/s, the load of a large hospital's order entry, well below saturation. Each run starts with a
    // second that is not counted (connections, JIT), and service and bare alternate twice: the p99 of one short run is
    // the tenth-slowest call, so a single pause of the machine moves it.
    const steadyRuns: Load[] = [];
    const steadyBareRuns: Load[] = [];
    // The saturating runs leave work behind (thousands of audit rows to commit, old-generation garbage): let it settle.
    await new Promise((r) => setTimeout(r, 3000));
    for (let round = 0; round < 2; round++) {
      steadyRuns.push(await paced(service, 200, SECONDS));
      steadyBareRuns.push(await paced(bare, 200, SECONDS));
    }
    const meanLoad = (runs: Load[]): Load => ({ rps: mean(runs.map((r) => r.rps)), p50: mean(runs.map((r) => r.p50)), p99: mean(runs.map((r) => r.p99)), errors: runs.reduce((n, r) => n + r.errors, 0) });
    const steady = meanLoad(steadyRuns);
    const steadyBare = meanLoad(steadyBareRuns);

    // Scaling: ten times the rules (a separate process on a generated rules folder), and larger records. Calls alternate
    // one by one between the two sides, so a pause of the machine falls on both alike.
    const rules10 = await startService({ RULES_DIR: scaledRulesDir(join(ROOT, 'rules'), 10) });
    await alternate(service, rules10, 200, BODY);
    const [baseTimes, rules10Times] = await alternate(service, rules10, SCALE_CALLS, BODY).finally(() => rules10.child.kill('SIGTERM'));
    // Records of 250 to 2,000 Conditions + Observations, with bare fastify parsing the same body for reference. Linear
    // means each added resource costs the same however large the record: the service's cost per added resource between
    // 1,000 and 2,000 stays near its cost between 250 and 500 (quadratic work would make it about four times as much).
    const records: Array<{ resources: number; bytes: number; service: number; bare: number; ours: number }> = [];
    for (const resources of RECORD_SIZES) {
      const body = JSON.stringify(scaledRecord(JSON.parse(FIXTURE_BODY), resources));
      await alternate(service, bare, 10, body);
      const [sv, bv] = await alternate(service, bare, Math.max(60, Math.round((SCALE_CALLS * 100) / resources)), body);
      const service50 = percentile(sv, 50);
      const bare50 = percentile(bv, 50);
      records.push({ resources, bytes: body.length, service: service50, bare: bare50, ours: service50 - bare50 });
    }
    const slopes = records.slice(1).map((r, i) => (r.service - records[i]!.service) / (r.resources - records[i]!.resources));
    const slopeRatio = slopes[slopes.length - 1]! / slopes[0]!;

    // The fallback path: no prefetch, five FHIR queries to a stub answering each after FHIR_LATENCY_MS.
    const stub = await startScript('bench/fhir-stub.mjs', [FIXTURE], { LATENCY_MS: String(FHIR_LATENCY_MS) });
    const noPrefetch = JSON.parse(FIXTURE_BODY) as Record<string, unknown>;
    delete noPrefetch.prefetch;
    noPrefetch.fhirServer = `${stub.url}/fhir`;
    const fallbackBody = JSON.stringify(noPrefetch);
    await sequential(service, 30, fallbackBody);
    const fallback = (await sequential(service, 200, fallbackBody)).sort((x, y) => x - y);
    stub.child.kill('SIGTERM');

    const mark = (ok: boolean) => (ok ? 'met' : 'not met');
    const lines = [
      `Request: fixtures/requests/order-select-uncomplicated-mri.json grown to ${BODY.length} bytes (full prefetch). Node ${process.version}, ${ROUNDS} interleaved rounds.`,
      '',
      '| measure | service, auth off | service, JWT on | bare fastify | ratio (off / on vs bare) |',
      '|---|---|---|---|---|',
      `| sequential p50 (ms) | ${fmt(s.sequential.p50)} | ${fmt(j.sequential.p50)} | ${fmt(b.sequential.p50)} | ${fmt(s.sequential.p50 / b.sequential.p50)} / ${fmt(j.sequential.p50 / b.sequential.p50)} |`,
      `| sequential p99 (ms) | ${fmt(s.sequential.p99)} | ${fmt(j.sequential.p99)} | ${fmt(b.sequential.p99)} | ${fmt(s.sequential.p99 / b.sequential.p99)} / ${fmt(j.sequential.p99 / b.sequential.p99)} |`,
      `| 50 connections, req/s | ${fmt(s.load50.rps, 0)} | ${fmt(j.load50.rps, 0)} | ${fmt(b.load50.rps, 0)} | ${fmt(s.load50.rps / b.load50.rps)} / ${fmt(j.load50.rps / b.load50.rps)} |`,
      `| 50 connections, p50 (ms) | ${fmt(s.load50.p50, 1)} | ${fmt(j.load50.p50, 1)} | ${fmt(b.load50.p50, 1)} | |`,
      `| 50 connections, p99 (ms) | ${fmt(s.load50.p99, 1)} | ${fmt(j.load50.p99, 1)} | ${fmt(b.load50.p99, 1)} | |`,
      `| errors | ${s.load50.errors} | ${j.load50.errors} | ${b.load50.errors} | |`,
      '',
      `Bare fastify answering the service's own answer (${answer.length} bytes) instead of a small card: sequential p50 ${fmt(bf.sequential.p50)} ms, ${fmt(bf.load50.rps, 0)} req/s at 50 connections; service/that ${fmt(s.load50.rps / bf.load50.rps)}. The rest of the gap is the clinical work, the audit and the security headers.`,
      '',
      '| target | measured | |',
      '|---|---|---|',
      `| throughput with prefetch >= 50% of bare | ${fmt((100 * s.load50.rps) / b.load50.rps, 0)}% | ${mark(s.load50.rps >= 0.5 * b.load50.rps)} |`,
      `| throughput with JWT >= 40% of bare | ${fmt((100 * j.load50.rps) / b.load50.rps, 0)}% | ${mark(j.load50.rps >= 0.4 * b.load50.rps)} |`,
      `| steady 200 req/s: p99 < 5 ms | ${fmt(steady.p99, 2)} ms (runs ${steadyRuns.map((r) => fmt(r.p99, 2)).join(', ')}; p50 ${fmt(steady.p50, 2)} ms, ${fmt(steady.rps, 0)} req/s, ${steady.errors} errors; bare fastify p99 ${fmt(steadyBare.p99, 2)} ms) | ${mark(steady.p99 < 5 && steady.errors === 0)} |`,
      `| 10x rules (${SCALE_CALLS} calls, p50) | ${fmt(percentile(rules10Times, 50))} ms vs ${fmt(percentile(baseTimes, 50))} ms | ratio ${fmt(percentile(rules10Times, 50) / percentile(baseTimes, 50))} |`,
      ...records.map((r) => `| record of ${r.resources} Conditions + Observations (${fmt(r.bytes / 1024, 0)} KB, p50) | service ${fmt(r.service)} ms, bare ${fmt(r.bare)} ms: ours ${fmt(r.ours)} ms (${fmt((r.ours * 1000) / r.resources, 1)} µs per resource) | |`),
      `| service's cost per added resource (250-500, 500-1,000, 1,000-2,000) | ${slopes.map((x) => fmt(x * 1000, 1)).join(' µs, ')} µs: last / first ${fmt(slopeRatio)} | ${slopes[0]! > 0 ? mark(slopeRatio <= 2) : 'not measured (noise: the first slope is not positive)'} (linear: about 1; quadratic: about 4) |`,
      `| fallback, 5 parallel queries of ${FHIR_LATENCY_MS} ms: p50 < ${FHIR_LATENCY_MS + 10} ms | p50 ${fmt(percentile(fallback, 50))} ms, p90 ${fmt(percentile(fallback, 90))} ms, p99 ${fmt(percentile(fallback, 99))} ms | ${mark(percentile(fallback, 50) < FHIR_LATENCY_MS + 10)} |`,
    ];
    console.log(lines.join('\n'));
    const results = {
      ...summary,
      steady200: steadyRuns,
      steady200Bare: steadyBareRuns,
      rules10x: { baseP50: percentile(baseTimes, 50), p50: percentile(rules10Times, 50) },
      records,
      slopes,
      fallback: { latencyMs: FHIR_LATENCY_MS, p50: percentile(fallback, 50), p90: percentile(fallback, 90), p99: percentile(fallback, 99) },
    };
    const file = join(ROOT, 'bench/results', `bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), node: process.version, bodyBytes: BODY.length, answerBytes: answer.length, results }, null, 2));
    console.log(`\nwrote ${file}`);
  } finally {
    agent.destroy();
    for (const c of children) c.kill('SIGTERM');
  }
}

void main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
