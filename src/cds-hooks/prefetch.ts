import type { Bundle, CodeableConcept, Condition, FhirResource } from 'fhir/r4.js';
import { DATA_KINDS, type ClinicalData, type DataKind } from '../facts/types.js';
import { hasReadableShape } from '../fhir/shape.js';
import type { CatalogEntry } from './service-catalog.js';
import type { HookRequest } from './types.js';

export interface PrefetchResult {
  data: ClinicalData;
  /** Keys the request lacks (absent, not null). */
  absentKeys: string[];
  /** Keys whose data could not be fully read, with a fixed reason for the log (never data from the request). */
  unreadableKeys: Array<{ key: string; reason: string }>;
}

function emptyData(): ClinicalData {
  return {
    Patient: { items: [], complete: true },
    Condition: { items: [], complete: true },
    Observation: { items: [], complete: true },
    MedicationRequest: { items: [], complete: true },
    QuestionnaireResponse: { items: [], complete: true },
    ServiceRequest: { items: [], complete: true },
    referenced: new Map(),
  };
}

/** An OperationOutcome entry that says the results are incomplete or failed; information-only outcomes are harmless. */
function reportsProblem(r: FhirResource): boolean {
  return r.resourceType === 'OperationOutcome' && r.issue.some((i) => i.severity !== 'information');
}

function belongsTo(r: FhirResource, patientId: string): boolean {
  if (r.resourceType === 'Patient') return r.id === patientId;
  const subject = (r as { subject?: { reference?: string } }).subject?.reference;
  // No subject to compare: the search was by patient, so trust it.
  if (!subject) return true;
  return subject === `Patient/${patientId}` || subject.endsWith(`/Patient/${patientId}`);
}

type Reading = { items: FhirResource[]; included: FhirResource[]; problem?: string };

/** Whether a condition says what it is in a way the service can read: a known code system or a name. */
export type Interpretable = (concept: CodeableConcept | undefined) => boolean;

/** Accepts one resource of the expected kind, or says why not. */
function accept(r: FhirResource, kind: DataKind, patientId: string, out: Reading, interpretable: Interpretable): void {
  if (!hasReadableShape(r)) out.problem ??= `malformed ${kind}`;
  else if (!belongsTo(r, patientId)) out.problem ??= 'data for another patient';
  else {
    out.items.push(r);
    // A condition coded only in a system the service does not know (ICD-9, a bare code) could be anything.
    if (r.resourceType === 'Condition' && !interpretable(r.code)) out.problem ??= 'condition without a code or name the service can read';
  }
}

/**
 * Turns one prefetch value into resources of the expected kind.
 * `null` is "no data" (CDS Hooks 2.0); an OperationOutcome is "could not be read". Anything the service cannot read in
 * full (a malformed entry, an unexpected resource, a page it cannot follow, fewer entries than the total) makes the key
 * incomplete: what was read still counts, but absence proves nothing.
 */
function readValue(value: unknown, kind: DataKind, patientId: string, interpretable: Interpretable, maxEntries: number): Reading {
  const out: Reading = { items: [], included: [] };
  if (value === null) return out;
  if (typeof value !== 'object' || Array.isArray(value) || typeof (value as { resourceType?: unknown }).resourceType !== 'string') {
    return { ...out, problem: 'not a FHIR resource' };
  }
  const resource = value as FhirResource;
  if (resource.resourceType === 'OperationOutcome') return { ...out, problem: 'OperationOutcome from the client' };
  if (resource.resourceType === kind) {
    accept(resource, kind, patientId, out, interpretable);
    return out;
  }
  if (resource.resourceType !== 'Bundle') return { ...out, problem: 'unexpected resource type' };
  // Counted before anything walks the entries: past the cap the whole search is unreadable, not half-read.
  const count = (resource as { entry?: unknown }).entry;
  if (Array.isArray(count) && count.length > maxEntries) return { ...out, problem: `more than ${maxEntries} entries` };
  if (!hasReadableShape(resource)) return { ...out, problem: 'malformed Bundle' };
  const bundle = resource as Bundle;
  if (bundle.type && bundle.type !== 'searchset' && bundle.type !== 'collection') return { ...out, problem: 'unexpected Bundle type' };
  let matches = 0;
  for (const entry of bundle.entry ?? []) {
    const r = entry.resource;
    if (!r || typeof r.resourceType !== 'string') {
      out.problem ??= 'entry without a resource';
    } else if (r.resourceType === kind) {
      matches++;
      accept(r, kind, patientId, out, interpretable);
    } else if (r.resourceType === 'OperationOutcome') {
      if (!hasReadableShape(r) || reportsProblem(r)) out.problem ??= 'OperationOutcome in the search results';
    } else if (entry.search?.mode === 'include' && hasReadableShape(r)) {
      out.included.push(r);
    } else {
      out.problem ??= 'unexpected resource type';
    }
  }
  if (bundle.link?.some((l) => l.relation === 'next')) out.problem ??= 'more pages than were sent';
  if (bundle.type === 'searchset' && typeof bundle.total === 'number' && bundle.total > matches) out.problem ??= 'fewer entries than the total';
  return out;
}

/** The prefetch keys the request lacks (absent, not null): the service must fetch them or answer 412. */
export function absentPrefetchKeys(request: HookRequest, service: CatalogEntry): string[] {
  const prefetch = request.prefetch ?? {};
  return Object.keys(service.prefetchKinds).filter((key) => !Object.prototype.hasOwnProperty.call(prefetch, key) || prefetch[key] === undefined);
}

/** Data fetched from the EHR's FHIR server for absent keys, in the same form as prefetch values. */
export interface FetchedPrefetch {
  values: Record<string, unknown>;
  failures: Record<string, string>;
}

/**
 * Sorts the request's prefetch, and what was fetched for the keys it lacked, into record data by kind, remembering what
 * could not be read (a search of more than maxEntries entries among it). Both paths go through the same reader, so the facts see the same data either way.
 */
export function resolvePrefetch(request: HookRequest, service: CatalogEntry, interpretable: Interpretable, maxEntries: number, fetched?: FetchedPrefetch): PrefetchResult {
  const data = emptyData();
  const absentKeys = absentPrefetchKeys(request, service);
  const unreadableKeys: Array<{ key: string; reason: string }> = [];
  const prefetch: Record<string, unknown> = { ...(request.prefetch ?? {}), ...(fetched?.values ?? {}) };
  const patientId = request.context.patientId;
  for (const [key, kind] of Object.entries(service.prefetchKinds)) {
    const slice = data[kind] as { items: FhirResource[]; complete: boolean };
    const failure = fetched?.failures[key];
    if (failure || !Object.prototype.hasOwnProperty.call(prefetch, key) || prefetch[key] === undefined) {
      slice.complete = false;
      unreadableKeys.push({ key, reason: failure ?? 'absent from prefetch' });
      continue;
    }
    const { items, included, problem } = readValue(prefetch[key], kind, patientId, interpretable, maxEntries);
    slice.items.push(...items);
    for (const r of included) if (r.id) data.referenced.set(`${r.resourceType}/${r.id}`, r);
    if (problem) {
      slice.complete = false;
      unreadableKeys.push({ key, reason: problem });
    }
  }
  return { data, absentKeys, unreadableKeys };
}

/** Conditions sent in context.draftOrders for this patient, readable ones only. */
export function conditionsInDraftOrders(draftOrders: Bundle, patientId: string): Condition[] {
  return (draftOrders.entry ?? [])
    .map((e) => e.resource)
    .filter((r): r is Condition => r?.resourceType === 'Condition' && hasReadableShape(r) && belongsTo(r, patientId));
}
