import { cp, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { RULES_DIR, tempDataDir } from '../support/app.js';
import { FIXTURE_CLOCK, loadScenarios, scenarioRequest, SERVICE_IDS } from '../support/scenarios.js';

/** RULES_DIR is watched: a valid change is live within 2 s, an invalid one is refused and the last good rules stay. */
let dir: string;
let app: FastifyInstance;
const logs: string[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rules-live-'));
  await cp(RULES_DIR, dir, { recursive: true });
  const config = loadConfig({ CDS_AUTH: 'off', RULES_DIR: dir, DATA_DIR: tempDataDir(), LOG_LEVEL: 'info' });
  app = await buildApp({ config, now: () => FIXTURE_CLOCK, logger: { level: 'info', stream: { write: (l: string) => void logs.push(l) } } as any });
  await app.ready();
});
afterAll(async () => {
  await app.close();
});

const scenario = loadScenarios().find((s) => s.id === 'age-51-deferred')!;
async function recommendation(): Promise<string> {
  const res = await app.inject({ method: 'POST', url: `/cds-services/${SERVICE_IDS[scenario.hook]}`, payload: scenarioRequest(scenario) as any });
  return res.json().cards.find((c: any) => c.source.topic.code !== 'patient-conversation').source.topic.code;
}
const version = async () => (await app.inject({ method: 'GET', url: '/readyz' })).json().rulesVersion as string;

async function within(ms: number, check: () => Promise<boolean>): Promise<number> {
  const t0 = performance.now();
  while (performance.now() - t0 < ms) {
    if (await check()) return performance.now() - t0;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`not within ${ms} ms`);
}

describe('hot reload of the rules', () => {
  it('puts a threshold change live within 2 s, with a new version', async () => {
    expect(await recommendation()).toBe('imaging-deferred');
    const before = await version();
    const file = join(dir, 'red-flags.json');
    const json = JSON.parse(await readFile(file, 'utf8'));
    json.flags.find((f: any) => f.id === 'age-over-50').criteria = { age: { gt: 55 } };
    await writeFile(file, JSON.stringify(json, null, 2));
    await within(2000, async () => (await recommendation()) === 'imaging-not-indicated');
    expect(await version()).not.toBe(before);
    const discovery = (await app.inject({ method: 'GET', url: '/cds-services' })).json();
    expect(discovery.services[0].extension['lbp-imaging-cds'].rulesVersion).toBe(await version());
  });

  it('refuses an invalid change with a clear log line and keeps the last good rules', async () => {
    const good = await version();
    await writeFile(join(dir, 'recommendations.json'), '{ "precedence": [ broken');
    await within(2000, async () => logs.some((l) => l.includes('rules change refused')));
    expect(await version()).toBe(good);
    expect(await recommendation()).toBe('imaging-not-indicated');
    const refused = logs.map((l) => JSON.parse(l)).find((l) => l.msg?.includes('rules change refused'));
    expect(refused.problems.join('\n')).toMatch(/recommendations\.json: not valid JSON/);
  });
});
