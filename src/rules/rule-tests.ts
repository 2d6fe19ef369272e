import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Bundle, FhirResource, ServiceRequest } from 'fhir/r4.js';
import { deriveFacts } from '../facts/derive-facts.js';
import { lowBackPainOrders, lumbarImagingOrders } from '../facts/order-scope.js';
import { DATA_KINDS, type ClinicalData } from '../facts/types.js';
import { recommend } from '../decision/recommend.js';
import { applySafetyGuard } from '../decision/safety-guard.js';
import type { LoadedRules } from './load-rules.js';
import type { Modality } from './types.js';

/** A guideline team's test case (rules/tests/*.json), as rules-tests.schema.json describes it. */
export interface RuleTestCase {
  name: string;
  today?: string;
  patient: { fixture: string } | { bundle: Bundle };
  order?: { modality?: Modality; code?: { system: string; code: string }; withoutReason?: boolean };
  expect: string;
}

export interface RuleTestResult {
  file: string;
  name: string;
  expected: string;
  got: string;
  pass: boolean;
  firedRules: string[];
}


/** The record as if fully read: what the patient Bundle holds is all there is. */
function recordOf(resources: FhirResource[]): ClinicalData {
  const data = { referenced: new Map() } as unknown as ClinicalData;
  for (const kind of DATA_KINDS) (data as unknown as Record<string, unknown>)[kind] = { items: resources.filter((r) => r.resourceType === kind), complete: true };
  return data;
}

async function patientOf(c: RuleTestCase, fixturesDir: string): Promise<{ resources: FhirResource[]; order?: ServiceRequest }> {
  if ('bundle' in c.patient) return { resources: (c.patient.bundle.entry ?? []).map((e) => e.resource!).filter(Boolean) };
  const scenario = JSON.parse(await readFile(join(fixturesDir, 'scenarios', `${c.patient.fixture}.json`), 'utf8')) as {
    patient: Bundle;
    draftOrders: FhirResource[];
  };
  return {
    resources: (scenario.patient.entry ?? []).map((e) => e.resource!).filter(Boolean),
    order: scenario.draftOrders.find((r): r is ServiceRequest => r.resourceType === 'ServiceRequest'),
  };
}

/** One case through the same facts, rules and safety guard as a hook call (without the HTTP and prefetch layers). */
export async function runRuleTest(c: RuleTestCase, rules: LoadedRules, fixturesDir: string): Promise<Omit<RuleTestResult, 'file'>> {
  const { resources, order: fixtureOrder } = await patientOf(c, fixturesDir);
  const patientId = resources.find((r) => r.resourceType === 'Patient')?.id ?? 'patient';
  const code = c.order?.code ?? (c.order?.modality ? rules.scope.testOrders[c.order.modality] : undefined);
  const order: ServiceRequest = {
    ...(fixtureOrder ?? { resourceType: 'ServiceRequest', status: 'draft', intent: 'order', subject: { reference: `Patient/${patientId}` } }),
    id: fixtureOrder?.id ?? 'rule-test-order',
    ...(code || !fixtureOrder ? { code: { coding: [code ?? rules.scope.testOrders.mri] } } : {}),
    ...(c.order?.withoutReason ? { reasonCode: undefined } : !fixtureOrder ? { reasonCode: [rules.scope.testReason] } : {}),
  };
  const data = recordOf(resources);
  const imaging = lumbarImagingOrders({ resourceType: 'Bundle', type: 'collection', entry: [{ resource: order }] }, undefined, rules, rules.terminology);
  const [inScope] = lowBackPainOrders(imaging, data, rules, rules.terminology);
  if (!inScope) return { name: c.name, expected: c.expect, got: 'out-of-scope', pass: c.expect === 'out-of-scope', firedRules: [] };
  const now = new Date(`${c.today ?? '2026-11-15'}T12:00:00Z`);
  const facts = deriveFacts(data, inScope, rules, rules.terminology, now);
  const decision = recommend(facts, inScope, rules);
  const got = applySafetyGuard(decision.recommendation, facts, rules).recommendation;
  return { name: c.name, expected: c.expect, got, pass: got === c.expect, firedRules: decision.firedRules };
}

/** Every case of every file in <rulesDir>/tests, in file order. */
export async function runRuleTests(rules: LoadedRules, rulesDir: string, fixturesDir: string): Promise<RuleTestResult[]> {
  const dir = join(rulesDir, 'tests');
  const files = (await readdir(dir).catch(() => [] as string[])).filter((f) => f.endsWith('.json')).sort();
  const results: RuleTestResult[] = [];
  for (const file of files) {
    const { cases } = JSON.parse(await readFile(join(dir, file), 'utf8')) as { cases: RuleTestCase[] };
    for (const c of cases) results.push({ file, ...(await runRuleTest(c, rules, fixturesDir)) });
  }
  return results;
}
