/**
 * npm run bench: the service against bare fastify on the same machine and the same request, interleaved A/B/A/B so
 * drift cancels out. Reports per-call latency (sequential, one connection) and throughput at 50 connections, and the
 * ratios service/bare measured in this run. Writes JSON to bench/results/.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import autocannon from 'autocannon';

const ROOT = new URL('..', import.meta.url).pathname;
const BODY = readFileSync(join(ROOT, 'fixtures/requests/order-select-uncomplicated-mri.json'), 'utf8');
const PATH = '/cds-services/lbp-imaging-order-select';
const SEQUENTIAL = Number(process.env.BENCH_SEQUENTIAL ?? 1500);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function start(kind: 'service' | 'bare' | 'fhir-stub'): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const args = kind === 'service' ? ['dist/server.js'] : kind === 'bare' ? ['bench/bare-server.mjs'] : ['bench/fhir-stub.mjs', join(ROOT, 'fixtures/requests/order-select-uncomplicated-mri.json')];
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', CDS_AUTH: 'off', LOG_LEVEL: 'warn', RATE_LIMIT_PER_ADDRESS: '0', RATE_LIMIT_PER_ISSUER: '0' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  if (kind === 'fhir-stub') {
    await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
    return { url: `${url}/fhir`, child };
  }
  for (let i = 0; i < 100; i++) {
    try {
      const r = await fetch(`${url}${PATH}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: BODY });
      if (r.ok) return { url, child };
    } catch {
      /* not up yet */
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${kind} did not start`);
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function sequential(url: string, n: number, body = BODY): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const r = await fetch(`${url}${PATH}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    await r.arrayBuffer();
    if (!r.ok) throw new Error(`status ${r.status}`);
    times.push(performance.now() - t0);
  }
  return times;
}

async function load(url: string): Promise<{ rps: number; p50: number; p99: number; errors: number }> {
  const result = await autocannon({
    url: `${url}${PATH}`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: BODY,
    connections: 50,
    duration: SECONDS,
  });
  return { rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, errors: result.errors + result.non2xx };
}

const fmt = (n: number, d = 2) => n.toFixed(d);

async function main(): Promise<void> {
  const service = await start('service');
  const bare = await start('bare');
  try {
    const seq: Record<string, number[]> = { service: [], bare: [] };
    const tput: Record<string, Array<Awaited<ReturnType<typeof load>>>> = { service: [], bare: [] };
    await sequential(service.url, 300);
    await sequential(bare.url, 300);
    for (let round = 0; round < ROUNDS; round++) {
      for (const [name, s] of [['service', service], ['bare', bare]] as const) seq[name]!.push(...(await sequential(s.url, SEQUENTIAL / ROUNDS)));
      for (const [name, s] of [['service', service], ['bare', bare]] as const) tput[name]!.push(await load(s.url));
    }
    const summary = Object.fromEntries(
      (['service', 'bare'] as const).map((name) => {
        const sorted = [...seq[name]!].sort((a, b) => a - b);
        const runs = tput[name]!;
        return [
          name,
          {
            sequential: { n: sorted.length, p50: percentile(sorted, 50), p90: percentile(sorted, 90), p99: percentile(sorted, 99) },
            load50: {
              rps: runs.reduce((s, r) => s + r.rps, 0) / runs.length,
              p50: runs.reduce((s, r) => s + r.p50, 0) / runs.length,
              p99: runs.reduce((s, r) => s + r.p99, 0) / runs.length,
              errors: runs.reduce((s, r) => s + r.errors, 0),
            },
          },
        ];
      }),
    ) as Record<'service' | 'bare', { sequential: { n: number; p50: number; p90: number; p99: number }; load50: { rps: number; p50: number; p99: number; errors: number } }>;
    const s = summary.service;
    const b = summary.bare;
    const lines = [
      `Request: fixtures/requests/order-select-uncomplicated-mri.json (${BODY.length} bytes, full prefetch), auth off.`,
      '',
      '| measure | service | bare fastify | ratio service/bare |',
      '|---|---|---|---|',
      `| sequential p50 (ms) | ${fmt(s.sequential.p50)} | ${fmt(b.sequential.p50)} | ${fmt(s.sequential.p50 / b.sequential.p50)} |`,
      `| sequential p90 (ms) | ${fmt(s.sequential.p90)} | ${fmt(b.sequential.p90)} | ${fmt(s.sequential.p90 / b.sequential.p90)} |`,
      `| sequential p99 (ms) | ${fmt(s.sequential.p99)} | ${fmt(b.sequential.p99)} | ${fmt(s.sequential.p99 / b.sequential.p99)} |`,
      `| 50 connections, req/s | ${fmt(s.load50.rps, 0)} | ${fmt(b.load50.rps, 0)} | ${fmt(s.load50.rps / b.load50.rps)} |`,
      `| 50 connections, p50 (ms) | ${fmt(s.load50.p50, 1)} | ${fmt(b.load50.p50, 1)} | |`,
      `| 50 connections, p99 (ms) | ${fmt(s.load50.p99, 1)} | ${fmt(b.load50.p99, 1)} | |`,
      `| errors | ${s.load50.errors} | ${b.load50.errors} | |`,
    ];
    // The fallback path: no prefetch, five FHIR queries to a stub that answers each after LATENCY_MS. In parallel, the call
    // should cost about one round trip, not five.
    const latency = Number(process.env.BENCH_FHIR_LATENCY_MS ?? 20);
    process.env.LATENCY_MS = String(latency);
    const stub = await start('fhir-stub');
    const noPrefetch = JSON.parse(BODY) as Record<string, unknown>;
    delete noPrefetch.prefetch;
    noPrefetch.fhirServer = stub.url;
    const fallbackBody = JSON.stringify(noPrefetch);
    await sequential(service.url, 30, fallbackBody);
    const fallback = (await sequential(service.url, 200, fallbackBody)).sort((x, y) => x - y);
    stub.child.kill('SIGTERM');
    lines.push(
      '',
      `Fallback (no prefetch, 5 parallel FHIR queries, each answered after ${latency} ms): p50 ${fmt(percentile(fallback, 50))} ms, p90 ${fmt(percentile(fallback, 90))} ms, p99 ${fmt(percentile(fallback, 99))} ms; target: under the slowest query + 10 ms (${latency + 10} ms) at p50.`,
    );
    (summary as Record<string, unknown>).fallback = { latencyMs: latency, p50: percentile(fallback, 50), p90: percentile(fallback, 90), p99: percentile(fallback, 99) };
    console.log(lines.join('\n'));
    const file = join(ROOT, 'bench/results', `bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), node: process.version, bodyBytes: BODY.length, summary }, null, 2));
    console.log(`\nwrote ${file}`);
  } finally {
    service.child.kill('SIGTERM');
    bare.child.kill('SIGTERM');
  }
}

void main();
