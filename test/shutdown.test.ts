import { describe, expect, it } from 'vitest';
import { tempDataDir } from './support/app.js';
import { startServer } from './support/server-process.js';

/** SIGTERM under load: stop accepting, answer every call already accepted, flush the audit, exit within 10 s. */
describe('graceful shutdown', () => {
  it('answers every accepted call and exits cleanly within 10 s', async () => {
    const server = await startServer({ CDS_AUTH: 'off', DATA_DIR: tempDataDir(), LOG_LEVEL: 'info' });
    const body = JSON.stringify(JSON.parse(await (await import('node:fs/promises')).readFile(new URL('../fixtures/requests/order-sign-osteoporosis-xray-and-mri.json', import.meta.url), 'utf8')));
    const outcomes: string[] = [];
    const inFlightOutcomes: string[] = [];
    const call = async (record: string[] = outcomes) => {
      try {
        const res = await fetch(`${server.url}/cds-services/lbp-imaging-order-sign`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
        await res.text();
        record.push(String(res.status));
      } catch (err) {
        record.push((err as { cause?: { code?: string } }).cause?.code ?? 'unknown');
      }
    };
    const inFlight: Array<Promise<void>> = [];
    // These calls are under way when SIGTERM arrives: every one must be answered.
    for (let i = 0; i < 40; i++) inFlight.push(call(inFlightOutcomes));
    await new Promise((r) => setTimeout(r, 30));
    const exited = new Promise<{ code: number | null; ms: number }>((resolve) => {
      const t0 = performance.now();
      server.child.once('exit', (code) => resolve({ code, ms: performance.now() - t0 }));
    });
    server.child.kill('SIGTERM');
    // Calls keep coming through the drain (1 s) and after the server stops listening.
    for (let i = 0; i < 30; i++) {
      inFlight.push(call());
      await new Promise((r) => setTimeout(r, 60));
    }
    await Promise.all(inFlight);
    const { code, ms } = await exited;
    expect(code).toBe(0);
    expect(ms).toBeLessThan(10_000);
    expect(inFlightOutcomes).toEqual(Array(40).fill('200'));
    // Calls after SIGTERM are answered during the drain, then refused. A connection the client opens at the very moment the
    // server stops can be reset before any request on it is accepted (HTTP/1.1 keep-alive has no way to avoid that race).
    const unexpected = outcomes.filter((o) => !['200', '503', 'ECONNREFUSED', 'ECONNRESET'].includes(o));
    expect(unexpected).toEqual([]);
    expect(outcomes.filter((o) => o === '200').length).toBeGreaterThan(0);
    expect(outcomes).toContain('ECONNREFUSED');
  }, 30_000);
});
