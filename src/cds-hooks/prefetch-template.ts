import { isFhirId } from '../fhir/shape.js';
import type { HookRequest } from './types.js';

/** A CDS Hooks prefetch token, `{{context.patientId}}`: one pattern for the start-up check and the renderer. */
export const TOKEN = /\{\{\s*([^}]+?)\s*\}\}/g;

/** An id that may go into a URL; anything else (the request validation refuses it first) is no value. */
const id = (value: string | undefined) => (isFhirId(value) ? value : undefined);

/** The values of CDS Hooks 2.0 prefetch tokens for one request: context fields and the user tokens derived from userId. */
function tokenValues(request: HookRequest): Record<string, string | undefined> {
  const { userId, patientId, encounterId } = request.context;
  const slash = (userId ?? '').indexOf('/');
  const userType = slash > 0 ? userId.slice(0, slash) : undefined;
  const userRef = slash > 0 ? id(userId.slice(slash + 1)) : undefined;
  return {
    'context.patientId': id(patientId),
    'context.userId': userType && userRef ? userId : undefined,
    'context.encounterId': id(encounterId),
    userPractitionerId: userType === 'Practitioner' ? userRef : undefined,
    userPractitionerRoleId: userType === 'PractitionerRole' ? userRef : undefined,
    userPatientId: userType === 'Patient' ? userRef : undefined,
    userRelatedPersonId: userType === 'RelatedPerson' ? userRef : undefined,
  };
}

/**
 * Fills a prefetch template for a request, as the EHR would have; undefined when a token has no value here
 * (an encounter token with no encounterId), in which case the query cannot be run.
 */
export function renderPrefetchTemplate(template: string, request: HookRequest): string | undefined {
  const values = tokenValues(request);
  let missing = false;
  const rendered = template.replace(TOKEN, (_m, token: string) => {
    const value = values[token];
    if (value === undefined || value === '') {
      missing = true;
      return '';
    }
    return encodeURIComponent(value);
  });
  return missing ? undefined : rendered;
}
