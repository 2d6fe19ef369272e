import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { testApp } from './support/app.js';
import { loadScenarios, scenarioRequest, SERVICE_IDS } from './support/scenarios.js';

/**
 * The FHIR fallback against HAPI FHIR, the server most EHR integrations are tried with, in a container. It needs a Docker
 * engine: where none answers (as on this project's build machines) the suite reports itself skipped, and the same behaviour
 * is covered without Docker by test/http/fhir-server.test.ts.
 */
function dockerAnswers(): boolean {
  try {
    execFileSync('docker', ['version', '--format', '{{.Server.Version}}'], { stdio: 'ignore', timeout: 5000 });
    return true;
  } catch {
    return false;
  }
}

const HAPI_IMAGE = 'hapiproject/hapi:v7.4.0';
const run = promisify(execFile);

describe.skipIf(!dockerAnswers())('HAPI FHIR in Docker (skipped when no Docker engine answers)', () => {
  let container: { stop: () => Promise<unknown>; getHost: () => string; getMappedPort: (p: number) => number } | undefined;
  let baseUrl = '';
  let app: FastifyInstance;

  beforeAll(async () => {
    const { GenericContainer, Wait } = await import('testcontainers');
    container = await new GenericContainer(HAPI_IMAGE)
      .withExposedPorts(8080)
      .withWaitStrategy(Wait.forHttp('/fhir/metadata', 8080).forStatusCode(200))
      .withStartupTimeout(240_000)
      .start();
    baseUrl = `http://${container.getHost()}:${container.getMappedPort(8080)}/fhir`;
    await run(process.execPath, [new URL('../scripts/load-fixtures.mjs', import.meta.url).pathname, baseUrl]);
    app = await testApp();
  }, 300_000);

  afterAll(async () => {
    await app?.close();
    await container?.stop();
  });

  const scenarios = loadScenarios().filter((s) => s.expect.status === 200 && !s.prefetch && !s.fhirServer);

  it.each(scenarios.map((s) => [s.id, s] as const))('%s gives the same recommendation from HAPI FHIR', async (_id, s) => {
    const request = scenarioRequest(s) as any;
    delete request.prefetch;
    request.fhirServer = baseUrl;
    const res = await app.inject({ method: 'POST', url: `/cds-services/${SERVICE_IDS[s.hook]}`, payload: request });
    expect(res.statusCode).toBe(200);
    const got = Object.fromEntries(
      res.json().cards.filter((c: any) => c.source.topic.code !== 'patient-conversation').map((c: any) => [c.extension['lbp-imaging-cds'].order, c.source.topic.code]),
    );
    expect(got).toEqual(s.expect.recommendations ?? {});
  });
});
