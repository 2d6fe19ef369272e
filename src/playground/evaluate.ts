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

const ORDER_CODES: Record<Modality, { system: string; code: string; display: string }> = {
  xray: { system: 'http://www.ama-assn.org/go/cpt', code: '72100', display: 'Radiologic examination, spine, lumbosacral; 2 or 3 views' },
  ct: { system: 'http://www.ama-assn.org/go/cpt', code: '72131', display: 'Computed tomography, lumbar spine; without contrast material' },
  mri: { system: 'http://www.ama-assn.org/go/cpt', code: '72148', display: 'Magnetic resonance imaging, spinal canal and contents, lumbar; without contrast material' },
};

/**
 * A patient Bundle and an order through the real hook path, as an order-sign call with every prefetch key filled from
 * the Bundle: the playground shows exactly what an EHR would get, plus the facts behind it.
 */
export async function evaluateForPlayground(bundle: Bundle, order: PlaygroundOrder, service: CatalogEntry, deps: HookDeps): Promise<HookResult> {
  const resources = (bundle.entry ?? []).map((e) => e.resource).filter((r): r is FhirResource => Boolean(r?.resourceType));
  const patient = resources.find((r) => r.resourceType === 'Patient');
  const patientId = patient?.id ?? 'playground-patient';
  const draft: ServiceRequest = {
    resourceType: 'ServiceRequest',
    id: 'playground-order',
    status: 'draft',
    intent: 'order',
    subject: { reference: `Patient/${patientId}` },
    code: { coding: [ORDER_CODES[order.modality]] },
    ...(order.lowBackPainReason ? { reasonCode: [{ coding: [{ system: 'http://snomed.info/sct', code: '279039007', display: 'Low back pain' }] }] } : {}),
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
