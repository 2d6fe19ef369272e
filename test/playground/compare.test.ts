import { cpSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { RULES_DIR, testApp } from '../support/app.js';
import { loadScenarios } from '../support/scenarios.js';

/**
 * The playground's side-by-side view: the live rules and an edited copy (PLAYGROUND_COMPARE_RULES_DIR) answer the same
 * patient and order, with what changed between them. The copy raises the fever threshold from 38.0 to 39.0 °C, so a
 * patient at 38.6 °C with opioid use disorder is urgent under the live rules and not under the copy.
 */
const copyDir = mkdtempSync(join(tmpdir(), 'lbp-playground-copy-'));
cpSync(RULES_DIR, copyDir, { recursive: true });
const redFlagsFile = join(copyDir, 'red-flags.json');
const original = readFileSync(redFlagsFile, 'utf8');
const raised = original.replace('"gte": 38.0,', '"gte": 39.0,');

const fever = loadScenarios().find((s) => s.id === 'fever-opioid-use-disorder-urgent')!;
const payload = { bundle: fever.patient, order: { modality: 'mri', lowBackPainReason: true } };

let app: FastifyInstance;
let plain: FastifyInstance;
beforeAll(async () => {
  app = await testApp({ PLAYGROUND_COMPARE_RULES_DIR: copyDir });
  plain = await testApp();
});
afterAll(async () => {
  await app.close();
  await plain.close();
});

const evaluate = async (on = app) => {
  const res = await on.inject({ method: 'POST', url: '/playground/evaluate', payload: payload as any });
  expect(res.statusCode).toBe(200);
  return res.json();
};

describe('the playground beside an edited copy of the rules', () => {
  it('answers with both, and names the recommendation, rules and red flags that changed', async () => {
    expect(raised).not.toBe(original);
    writeFileSync(redFlagsFile, raised);
    const body = await evaluate().finally(() => writeFileSync(redFlagsFile, original));
    expect(body.assessments[0].recommendation).toBe('imaging-urgent');
    expect(body.compare.rulesDir).toBe(copyDir);
    expect(body.compare.rulesVersion).not.toBe(body.rulesVersion);
    expect(body.compare.assessments[0].recommendation).not.toBe('imaging-urgent');
    const kinds = body.compare.changes.map((c: any) => c.kind);
    expect(body.compare.changes).toContainEqual({ kind: 'recommendation', order: body.assessments[0].order, live: 'imaging-urgent', copy: body.compare.assessments[0].recommendation });
    expect(kinds).toContain('rule-fired');
    expect(body.compare.changes.find((c: any) => c.kind === 'category' && c.live === 'found' && c.copy === 'not-found')).toBeDefined();
    expect(kinds).toContain('card-summary');
    expect(body.compare.cards[0].detailHtml).toMatch(/<strong>|<ul>/);
  });

  it('reads the copy afresh: an edit shows on the next evaluation, and identical rules show no change', async () => {
    writeFileSync(redFlagsFile, raised);
    expect((await evaluate()).compare.changes.length).toBeGreaterThan(0);
    writeFileSync(redFlagsFile, original);
    const body = await evaluate();
    expect(body.compare.rulesVersion).toBe(body.rulesVersion);
    expect(body.compare.changes).toEqual([]);
    expect(body.compare.assessments[0].recommendation).toBe('imaging-urgent');
  });

  it('shows why a copy that does not load was refused, beside the live answer', async () => {
    const schemaFile = join(copyDir, 'schemas', readdirSync(join(copyDir, 'schemas')).find((f) => f.endsWith('.json'))!);
    const schema = readFileSync(schemaFile, 'utf8');
    try {
      writeFileSync(redFlagsFile, '{ "flags": [ oops');
      let body = await evaluate();
      expect(body.assessments[0].recommendation).toBe('imaging-urgent');
      expect(body.compare.problems.join('\n')).toMatch(/red-flags\.json/);
      expect(body.compare.cards).toBeUndefined();
      // A broken schema fails in another part of the loader: still a reason beside the live answer, not a 500.
      writeFileSync(redFlagsFile, original);
      writeFileSync(schemaFile, '{ not json');
      body = await evaluate();
      expect(body.assessments[0].recommendation).toBe('imaging-urgent');
      expect(body.compare.problems.length).toBeGreaterThan(0);
    } finally {
      writeFileSync(redFlagsFile, original);
      writeFileSync(schemaFile, schema);
    }
    expect((await evaluate()).compare.changes).toEqual([]);
  });

  it('answers the live rules alone when no copy is configured', async () => {
    const body = await evaluate(plain);
    expect(body.compare).toBeUndefined();
    expect(body.assessments[0].recommendation).toBe('imaging-urgent');
  });
});
