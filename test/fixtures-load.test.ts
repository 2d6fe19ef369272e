import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestFhirServer } from './support/fhir-server.js';
import { loadScenarios } from './support/scenarios.js';

const run = promisify(execFile);
const server = new TestFhirServer();
beforeAll(async () => { await server.start(); });
afterAll(async () => { await server.stop(); });

describe('npm run fixtures:load', () => {
  it('loads every fixture patient into a FHIR server with PUT, twice without change', async () => {
    const script = new URL('../scripts/load-fixtures.mjs', import.meta.url).pathname;
    const first = await run(process.execPath, [script, `${server.baseUrl}/`]);
    expect(first.stdout).toMatch(/loaded (\d+) of \1 resources/);
    await run(process.execPath, [script, server.baseUrl]);
    const s = loadScenarios()[0]!;
    const patient = s.patient.entry!.find((e) => e.resource?.resourceType === 'Patient')!.resource!;
    const res = await fetch(`${server.baseUrl}/Patient/${patient.id}`);
    expect(res.status).toBe(200);
    const conditions = (await (await fetch(`${server.baseUrl}/Condition?patient=${patient.id}`)).json()) as { entry: unknown[] };
    expect(conditions.entry.length).toBe(s.patient.entry!.filter((e) => e.resource?.resourceType === 'Condition').length);
  });

  it('refuses to run without a URL', async () => {
    const script = new URL('../scripts/load-fixtures.mjs', import.meta.url).pathname;
    await expect(run(process.execPath, [script])).rejects.toMatchObject({ code: 2 });
  });
});
