import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { loadRules, type LoadedRules } from '../../src/rules/load-rules.js';
import { FIXTURE_CLOCK } from './scenarios.js';

export const RULES_DIR = new URL('../../rules/', import.meta.url).pathname;

import { tempDataDir } from './temp-dirs.js';

export { tempDataDir, removeTempDataDirs } from './temp-dirs.js';

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
