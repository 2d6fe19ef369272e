import { describe, expect, it } from 'vitest';
import { tempDataDir } from './support/app.js';
import { startServer } from './support/server-process.js';

/** SIGTERM under load: stop accepting, answer every call already accepted, flush the audit, exit within 10 s. */
describe('graceful shutdown', () => {
  it('answers every accepted call and exits cleanly within 10 s', async () => {
    const server = await startServer({ CDS_AUTH: 'off', DATA_DIR: tempDataDir(), LOG_LEVEL: 'info' });
    const body = JSON.stringify(JSON.parse(await (await import('node:fs/promises')).readFile(new URL('../fixtures/requests/order-sign-osteoporosis-xray-and-mri.json', import.meta.url), 'utf8')));
    const outcomes: string[] = [];
    const call = async () => {
      try {
        const res = await fetch(`${server.url}/cds-services/lbp-imaging-order-sign`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
        await res.text();
        outcomes.push(String(res.status));
      } catch (err) {
        // Refused before it was accepted is fine; cut off after it was accepted is not.
        const code = (err as { cause?: { code?: string } }).cause?.code ?? 'unknown';
        outcomes.push(code);
      }
    };
    const inFlight: Array<Promise<void>> = [];
    for (let i = 0; i < 40; i++) inFlight.push(call());
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
    const unexpected = outcomes.filter((o) => !['200', '503', 'ECONNREFUSED'].includes(o));
    expect(unexpected).toEqual([]);
    expect(outcomes.filter((o) => o === '200').length).toBeGreaterThan(40);
    expect(outcomes).toContain('ECONNREFUSED');
  }, 30_000);
});
