import { Errors } from '../errors.js';
import { isFhirId, shapeProblem } from '../fhir/shape.js';
import type { CatalogEntry } from './service-catalog.js';
import type { HookRequest } from './types.js';

/** Which fhirServer values a request may name. */
export interface FhirServerPolicy {
  /** Only https: (JWT auth on, without FHIR_ALLOW_HTTP). */
  httpsOnly: boolean;
  /** Allowed origins (FHIR_SERVER_ALLOWLIST); empty: any. */
  origins: readonly string[];
}

const FHIR_ID_RULE = "a FHIR id (1 to 64 letters, digits, '-' or '.')";
/** The user types whose id becomes a prefetch token or a reference in a suggestion. */
const USER_TYPES = new Set(['Practitioner', 'PractitionerRole', 'Patient', 'RelatedPerson']);

/** fhirServer is where the token goes: a plain http(s) base URL, on an allowed origin. Throws a 400 CdsError. */
function checkFhirServer(value: string, policy: FhirServerPolicy): void {
  // The WHATWG parser silently drops tabs and newlines, trims spaces and reads a backslash as a slash: refuse them rather than guess.
  if (/[\s\u0000-\u001f\u007f\\]/.test(value)) throw Errors.invalidRequest('fhirServer must not contain spaces, backslashes or control characters');
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw Errors.invalidRequest('fhirServer is not a URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw Errors.invalidRequest('fhirServer must be an http: or https: URL');
  if (policy.httpsOnly && url.protocol !== 'https:') throw Errors.invalidRequest('fhirServer must be an https: URL');
  if (url.username || url.password || /^[^:]*:\/*[^/?#]*@/.test(value)) throw Errors.invalidRequest('fhirServer must not carry a user name or password');
  if (value.includes('?') || value.includes('#')) throw Errors.invalidRequest('fhirServer must be a base URL, without a query or fragment');
  if (policy.origins.length > 0 && !policy.origins.includes(url.origin)) throw Errors.invalidRequest('fhirServer is not one of the FHIR servers this service may query');
}

/**
 * What every hook call must satisfy before anything of it goes into a URL or a reference: fhirServer (when given), and
 * the ids of the context. Throws a 400 CdsError naming the field.
 */
export function validateRequestBasics(request: HookRequest, policy: FhirServerPolicy): void {
  if (request.fhirAuthorization && !request.fhirServer) {
    throw Errors.invalidRequest('fhirAuthorization requires fhirServer');
  }
  if (request.fhirServer !== undefined) checkFhirServer(request.fhirServer, policy);
  const { patientId, encounterId, userId } = request.context;
  if (!isFhirId(patientId)) throw Errors.invalidRequest(`context.patientId must be ${FHIR_ID_RULE}`);
  if (encounterId !== undefined && !isFhirId(encounterId)) throw Errors.invalidRequest(`context.encounterId must be ${FHIR_ID_RULE}`);
  const user = /^([A-Za-z]+)\/(.*)$/s.exec(userId);
  if (user && USER_TYPES.has(user[1]!) && !isFhirId(user[2])) throw Errors.invalidRequest(`context.userId must be ${user[1]}/ followed by ${FHIR_ID_RULE}`);
}

/** Rules of a hook call that the JSON Schema cannot express; throws a 400 CdsError. */
export function validateHookRequest(request: HookRequest, service: CatalogEntry, policy: FhirServerPolicy): void {
  const hook = service.definition.hook;
  if (request.hook !== hook) {
    throw Errors.invalidRequest(`Service "${service.definition.id}" answers the ${hook} hook, not "${request.hook}"`);
  }
  validateRequestBasics(request, policy);
  const { selections, draftOrders } = request.context;
  if (!draftOrders || draftOrders.resourceType !== 'Bundle') throw Errors.invalidRequest(`${hook} needs context.draftOrders, a Bundle`);
  (draftOrders.entry ?? []).forEach((entry, i) => {
    if (entry.resource?.resourceType !== 'ServiceRequest') return;
    // Draft orders are what the clinician is signing: a malformed one is the client's error, not unreadable data.
    const problem = shapeProblem(entry.resource);
    if (problem) throw Errors.invalidRequest(`context.draftOrders.entry[${i}].resource (ServiceRequest) ${problem}`);
    // Its id goes into the suggestions' references and resource ids.
    const id = entry.resource.id;
    if (id !== undefined && !isFhirId(id)) throw Errors.invalidRequest(`context.draftOrders.entry[${i}].resource.id must be ${FHIR_ID_RULE}`);
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
