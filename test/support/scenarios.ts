import { randomUUID } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Bundle, FhirResource, Patient, ServiceRequest } from 'fhir/r4.js';
import type { HookRequest, ServiceDefinition } from '../../src/cds-hooks/types.js';
import { renderTemplate, runQuery } from './fhir-search.js';

export const FIXTURES_DIR = new URL('../../fixtures/', import.meta.url).pathname;
export const SERVICE_IDS: Record<string, string> = {
  'order-select': 'lbp-imaging-order-select',
  'order-sign': 'lbp-imaging-order-sign',
};
/** The moment every fixture is dated against. */
export const FIXTURE_CLOCK = new Date('2026-11-15T12:00:00Z');

export interface Scenario {
  id: string;
  description: string;
  hook: 'order-select' | 'order-sign';
  patient: Bundle;
  draftOrders: ServiceRequest[] | FhirResource[];
  selections?: string[];
  prefetch?: Record<string, 'absent' | 'null' | FhirResource>;
  fhirServer?: string;
  expect: { status: number; recommendations?: Record<string, string> };
}

export function loadScenarios(): Scenario[] {
  const dir = join(FIXTURES_DIR, 'scenarios');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as Scenario);
}

export function loadServiceDefinition(hook: string): ServiceDefinition {
  const file = new URL(`../../cds-hooks/${hook}.json`, import.meta.url);
  return JSON.parse(readFileSync(file, 'utf8')) as ServiceDefinition;
}

/** A complete hook request for a patient: the EHR side of the call, prefetch filled from the real templates. */
export function requestFor(
  hook: 'order-select' | 'order-sign',
  patientBundle: Bundle,
  draftOrders: FhirResource[],
  opts: { selections?: string[]; prefetch?: Scenario['prefetch']; fhirServer?: string } = {},
): HookRequest {
  const resources = (patientBundle.entry ?? []).map((e) => e.resource).filter((r): r is FhirResource => Boolean(r));
  const patient = resources.find((r): r is Patient => r.resourceType === 'Patient');
  const patientId = patient?.id ?? 'unknown';
  const context: HookRequest['context'] = {
    userId: 'Practitioner/example',
    patientId,
    draftOrders: { resourceType: 'Bundle', type: 'collection', entry: draftOrders.map((resource) => ({ resource })) },
  };
  if (hook === 'order-select') {
    context.selections =
      opts.selections ?? draftOrders.filter((r) => r.resourceType === 'ServiceRequest').map((r) => `ServiceRequest/${r.id}`);
  }
  const prefetch: Record<string, FhirResource | null> = {};
  for (const [key, template] of Object.entries(loadServiceDefinition(hook).prefetch)) {
    const override = opts.prefetch?.[key];
    if (override === 'absent') continue;
    if (override === 'null') prefetch[key] = null;
    else if (override) prefetch[key] = override;
    else prefetch[key] = runQuery(renderTemplate(template, context), resources);
  }
  const request: HookRequest = { hook, hookInstance: randomUUID(), context, prefetch };
  if (opts.fhirServer) request.fhirServer = opts.fhirServer;
  return request;
}

export function scenarioRequest(s: Scenario): HookRequest {
  return requestFor(s.hook, s.patient, s.draftOrders as FhirResource[], {
    selections: s.selections,
    prefetch: s.prefetch,
    fhirServer: s.fhirServer,
  });
}
