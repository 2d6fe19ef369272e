import type { Bundle, CodeableConcept, Condition, ServiceRequest } from 'fhir/r4.js';
import type { Rules } from '../rules/types.js';
import type { Terminology } from '../rules/terminology.js';
import { isCountableCondition } from '../fhir/resources.js';
import { hasReadableShape } from '../fhir/shape.js';
import type { ClinicalData, InScopeOrder } from './types.js';

const NOT_AN_ORDER = new Set(['entered-in-error', 'revoked', 'completed']);

/** "ServiceRequest/<id>" for a draft order, as `selections` and `resourceId` name it. */
export function orderReference(resource: ServiceRequest, fullUrl: string | undefined): string | undefined {
  if (resource.id) return `ServiceRequest/${resource.id}`;
  return fullUrl;
}

/**
 * The order's reasons: its codes, and the conditions it points to (contained, in the draft orders Bundle, or in the record).
 * A reference that cannot be followed is read by its display; without one, the order hides a reason the check cannot see.
 */
function orderReasons(order: ImagingOrder, data: ClinicalData): { reasons: CodeableConcept[]; hidden: boolean } {
  const reasons: CodeableConcept[] = [...(order.resource.reasonCode ?? [])];
  let hidden = false;
  for (const ref of order.resource.reasonReference ?? []) {
    const target = ref.reference;
    let condition: Condition | undefined;
    if (target?.startsWith('#')) {
      const c = order.resource.contained?.find((r) => r.id === target.slice(1));
      if (c?.resourceType === 'Condition' && hasReadableShape(c)) condition = c;
    } else if (target) {
      condition = order.bundled.get(target) ?? data.Condition.items.find((c) => `Condition/${c.id}` === target.split('/').slice(-2).join('/'));
    }
    if (condition) {
      // The criteria judge clinical status (a resolved cancer still counts); only errors are dropped here.
      if (condition.code && isCountableCondition(condition, true)) reasons.push(condition.code);
    } else if (ref.display) {
      reasons.push({ text: ref.display });
    } else {
      hidden = true;
    }
  }
  return { reasons, hidden };
}

export type ImagingOrder = Omit<InScopeOrder, 'reasons' | 'hiddenReason'> & {
  /** Conditions sent beside the order in draftOrders, by fullUrl and "Condition/<id>". */
  bundled: Map<string, Condition>;
};

/**
 * Draft lumbar spine X-ray, CT or MRI orders (the scope in docs: the order's code). Needs no record data, so a call
 * without such an order is answered before prefetch is looked at. `selections` limits order-select to what
 * the clinician just picked.
 */
export function lumbarImagingOrders(
  draftOrders: Bundle,
  selections: string[] | undefined,
  rules: Rules,
  terminology: Terminology,
): ImagingOrder[] {
  const bundled = new Map<string, Condition>();
  for (const entry of draftOrders.entry ?? []) {
    const r = entry.resource;
    if (r?.resourceType !== 'Condition' || !hasReadableShape(r)) continue;
    if (entry.fullUrl) bundled.set(entry.fullUrl, r);
    if (r.id) bundled.set(`Condition/${r.id}`, r);
  }
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
    orders.push({ reference, resource, modality: scope.modality, bundled });
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
    const { reasons, hidden } = orderReasons(order, data);
    // Unknown is not absent: with unreadable conditions and no stated reason, back pain may be the indication.
    const indicationUnknown = (!data.Condition.complete && reasons.length === 0) || hidden;
    if (reasons.some(indicated) || patientHasBackPain || indicationUnknown) {
      inScope.push({ reference: order.reference, resource: order.resource, modality: order.modality, reasons, hiddenReason: hidden });
    }
  }
  return inScope;
}
