import type { Extension, ServiceRequest } from 'fhir/r4.js';
import type { LoadedRules } from '../rules/load-rules.js';
import type { Assessment } from '../facts/types.js';
import type { CdsAction } from '../cds-hooks/types.js';
import { withoutEmpty } from '../fhir/without-empty.js';

/** Argonaut CDS Hooks for PAMA: the rating extension the CDS Hooks sandbox reads. */
export const PAMA_RATING_EXTENSION = 'http://fhir.org/argonaut/Extension/pama-rating';
export const PAMA_RATING_SYSTEM = 'http://fhir.org/argonaut/CodeSystem/pama-rating';

/** An `update` of the draft order that records the appropriateness rating. */
export function ratingAction(a: Assessment, rules: LoadedRules): CdsAction {
  const rating = rules.recommendations.recommendations[a.recommendation].pamaRating;
  const order = (withoutEmpty(a.order.resource) ?? { resourceType: 'ServiceRequest' }) as ServiceRequest;
  const extension: Extension = {
    url: PAMA_RATING_EXTENSION,
    valueCodeableConcept: { coding: [{ system: PAMA_RATING_SYSTEM, code: rating }] },
  };
  order.extension = [...(order.extension ?? []).filter((e) => e.url !== PAMA_RATING_EXTENSION), extension];
  return { type: 'update', description: rules.cards.systemAction.description, resource: order };
}
