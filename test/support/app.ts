import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { loadRules, type LoadedRules } from '../../src/rules/load-rules.js';
import { FIXTURE_CLOCK } from './scenarios.js';

export const RULES_DIR = new URL('../../rules/', import.meta.url).pathname;

/** A fresh folder for one app's embedded store, so test files never share a database. */
export function tempDataDir(): string {
  return mkdtempSync(join(tmpdir(), 'lbp-cds-test-'));
}

let rules: Promise<LoadedRules> | undefined;
/** The project's real rules, loaded once per test file. */
export function realRules(): Promise<LoadedRules> {
  rules ??= loadRules(RULES_DIR);
  return rules;
}

/** The app as deployed, with auth off, the fixture clock and no log output. */
export async function testApp(env: Record<string, string> = {}): Promise<FastifyInstance> {
  const config = loadConfig({ CDS_AUTH: 'off', LOG_LEVEL: 'silent', RULES_DIR, DATA_DIR: tempDataDir(), ...env });
  const app = await buildApp({ config, rules: await realRules(), now: () => FIXTURE_CLOCK, logger: false });
  await app.ready();
  return app;
}
