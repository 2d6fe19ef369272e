import { Errors } from '../errors.js';
import { shapeProblem } from '../fhir/shape.js';
import type { CatalogEntry } from './service-catalog.js';
import type { HookRequest } from './types.js';

/** Rules of a hook call that the JSON Schema cannot express; throws a 400 CdsError. */
export function validateHookRequest(request: HookRequest, service: CatalogEntry): void {
  const hook = service.definition.hook;
  if (request.hook !== hook) {
    throw Errors.invalidRequest(`Service "${service.definition.id}" answers the ${hook} hook, not "${request.hook}"`);
  }
  if (request.fhirAuthorization && !request.fhirServer) {
    throw Errors.invalidRequest('fhirAuthorization requires fhirServer');
  }
  const { selections, draftOrders } = request.context;
  if (!draftOrders || draftOrders.resourceType !== 'Bundle') throw Errors.invalidRequest(`${hook} needs context.draftOrders, a Bundle`);
  (draftOrders.entry ?? []).forEach((entry, i) => {
    // Draft orders are what the clinician is signing: a malformed one is the client's error, not unreadable data.
    const problem = entry.resource?.resourceType === 'ServiceRequest' ? shapeProblem(entry.resource) : undefined;
    if (problem) throw Errors.invalidRequest(`context.draftOrders.entry[${i}].resource (ServiceRequest) ${problem}`);
  });
  if (hook === 'order-select') {
    if (!Array.isArray(selections) || selections.length === 0) {
      throw Errors.invalidRequest('order-select needs context.selections');
    }
    const known = new Set<string>();
    for (const entry of draftOrders.entry ?? []) {
      const r = entry.resource;
      if (r?.id) known.add(`${r.resourceType}/${r.id}`);
      if (entry.fullUrl) known.add(entry.fullUrl);
    }
    const stray = selections.filter((s) => !known.has(s));
    if (stray.length > 0) {
      throw Errors.invalidRequest(`context.selections ${stray.map((s) => `"${s}"`).join(', ')} not found in context.draftOrders`);
    }
  }
}
