import type { Bundle, CodeableConcept, Condition, ServiceRequest } from 'fhir/r4.js';
import type { Rules } from '../rules/types.js';
import type { Terminology } from '../rules/terminology.js';
import { isCountableCondition } from '../fhir/resources.js';
import type { ClinicalData, InScopeOrder } from './types.js';

const NOT_AN_ORDER = new Set(['entered-in-error', 'revoked', 'completed']);

/** "ServiceRequest/<id>" for a draft order, as `selections` and `resourceId` name it. */
export function orderReference(resource: ServiceRequest, fullUrl: string | undefined): string | undefined {
  if (resource.id) return `ServiceRequest/${resource.id}`;
  return fullUrl;
}

/** The order's reasons: its codes, and the conditions it points to (contained or in the record). */
function orderReasons(order: ServiceRequest, data: ClinicalData): CodeableConcept[] {
  const reasons: CodeableConcept[] = [...(order.reasonCode ?? [])];
  for (const ref of order.reasonReference ?? []) {
    const target = ref.reference;
    if (!target) continue;
    let condition: Condition | undefined;
    if (target.startsWith('#')) {
      const c = order.contained?.find((r) => r.id === target.slice(1));
      if (c?.resourceType === 'Condition') condition = c;
    } else {
      const id = target.split('/').pop();
      condition = data.Condition.items.find((c) => c.id === id);
    }
    if (condition?.code && isCountableCondition(condition, false)) reasons.push(condition.code);
  }
  return reasons;
}

export type ImagingOrder = Omit<InScopeOrder, 'reasons'>;

/**
 * Draft lumbar spine X-ray, CT or MRI orders (CONTRACT section 3, first half). Needs no record data, so a call
 * without such an order is answered before prefetch is looked at. `selections` limits order-select to what
 * the clinician just picked.
 */
export function lumbarImagingOrders(
  draftOrders: Bundle,
  selections: string[] | undefined,
  rules: Rules,
  terminology: Terminology,
): ImagingOrder[] {
  const orders: ImagingOrder[] = [];
  for (const entry of draftOrders.entry ?? []) {
    const resource = entry.resource;
    if (resource?.resourceType !== 'ServiceRequest') continue;
    if (NOT_AN_ORDER.has(resource.status)) continue;
    const reference = orderReference(resource, entry.fullUrl);
    if (!reference) continue;
    if (selections && !selections.includes(reference) && !(entry.fullUrl && selections.includes(entry.fullUrl))) continue;
    const scope = rules.scope.orders.find((o) => terminology.matchConcept(o.valueSet, resource.code) !== undefined);
    if (!scope) continue;
    orders.push({ reference, resource, modality: scope.modality });
  }
  return orders;
}

/** Of those, the ones for low back pain: a back pain reason on the order, or an active back pain condition. */
export function lowBackPainOrders(orders: ImagingOrder[], data: ClinicalData, rules: Rules, terminology: Terminology): InScopeOrder[] {
  const indicated = (concept: CodeableConcept | undefined) =>
    rules.scope.indicationValueSets.some((vs) => terminology.matchConcept(vs, concept) !== undefined);
  const patientHasBackPain = data.Condition.items.some((c) => isCountableCondition(c, false) && indicated(c.code));
  const inScope: InScopeOrder[] = [];
  for (const order of orders) {
    const reasons = orderReasons(order.resource, data);
    // Unknown is not absent: with unreadable conditions and no stated reason, back pain may be the indication.
    const indicationUnknown = !data.Condition.complete && reasons.length === 0 && (order.resource.reasonReference ?? []).length === 0;
    if (reasons.some(indicated) || patientHasBackPain || indicationUnknown) inScope.push({ ...order, reasons });
  }
  return inScope;
}
