import type { Bundle, FhirResource, ServiceRequest } from 'fhir/r4.js';
import { handleHook, type HookDeps, type HookResult } from '../cds-hooks/handle-hook.js';
import type { CatalogEntry } from '../cds-hooks/service-catalog.js';
import type { HookRequest } from '../cds-hooks/types.js';
import type { Modality } from '../rules/types.js';

export interface PlaygroundOrder {
  modality: Modality;
  /** Put low back pain on the order as its reason (as the CDS Hooks sandbox does). */
  lowBackPainReason: boolean;
}

/**
 * A patient Bundle and an order through the real hook path, as an order-sign call with every prefetch key filled from
 * the Bundle: the playground shows exactly what an EHR would get, plus the facts behind it.
 */
export async function evaluateForPlayground(bundle: Bundle, order: PlaygroundOrder, service: CatalogEntry, deps: HookDeps): Promise<HookResult> {
  const resources = (bundle.entry ?? []).map((e) => e?.resource).filter((r): r is FhirResource => Boolean(r?.resourceType));
  const patient = resources.find((r) => r.resourceType === 'Patient');
  const patientId = patient?.id ?? 'playground-patient';
  const draft: ServiceRequest = {
    resourceType: 'ServiceRequest',
    id: 'playground-order',
    status: 'draft',
    intent: 'order',
    subject: { reference: `Patient/${patientId}` },
    code: { coding: [deps.rules.scope.testOrders[order.modality]] },
    ...(order.lowBackPainReason ? { reasonCode: [deps.rules.scope.testReason] } : {}),
  };
  const prefetch: Record<string, FhirResource | null> = {};
  for (const [key, kind] of Object.entries(service.prefetchKinds)) {
    if (kind === 'Patient') prefetch[key] = patient ?? null;
    else prefetch[key] = { resourceType: 'Bundle', type: 'searchset', entry: resources.filter((r) => r.resourceType === kind).map((resource) => ({ resource })) };
  }
  const request: HookRequest = {
    hook: service.definition.hook,
    hookInstance: `playground-${Date.now()}`,
    context: { userId: 'Practitioner/playground', patientId, draftOrders: { resourceType: 'Bundle', type: 'collection', entry: [{ resource: draft }] } },
    prefetch,
  };
  return handleHook(request, service, deps);
}
