import type { Bundle, FhirResource } from 'fhir/r4.js';
import type { ClinicalData, DataKind } from '../facts/types.js';
import { isResource } from '../fhir/resources.js';
import type { CatalogEntry } from './service-catalog.js';
import type { HookRequest } from './types.js';

export interface PrefetchResult {
  data: ClinicalData;
  /** Keys the request lacks (absent, not null). */
  absentKeys: string[];
  /** Keys whose data could not be read, with the reason, for the log (never the data itself). */
  unreadableKeys: Array<{ key: string; reason: string }>;
}

function emptyData(): ClinicalData {
  return {
    Patient: { items: [], complete: true },
    Condition: { items: [], complete: true },
    Observation: { items: [], complete: true },
    MedicationRequest: { items: [], complete: true },
  };
}

/** An OperationOutcome that reports a failure (information-only outcomes are harmless). */
function isFailure(r: FhirResource): boolean {
  return r.resourceType === 'OperationOutcome' && r.issue.some((i) => i.severity === 'error' || i.severity === 'fatal');
}

/**
 * Turns one prefetch value into resources of the expected kind.
 * `null` is "no data" (CDS Hooks 2.0); an OperationOutcome is "could not be read"; a search page with a
 * `next` link is incomplete until it can be followed.
 */
function readValue(value: unknown, kind: DataKind): { items: FhirResource[]; problem?: string } {
  if (value === null) return { items: [] };
  if (!isResource(value)) return { items: [], problem: 'not a FHIR resource' };
  if (value.resourceType === 'OperationOutcome') return { items: [], problem: 'OperationOutcome from the client' };
  if (value.resourceType === kind) return { items: [value] };
  if (value.resourceType !== 'Bundle') return { items: [], problem: `unexpected ${value.resourceType}` };
  const bundle = value as Bundle;
  const items: FhirResource[] = [];
  let problem: string | undefined;
  for (const entry of bundle.entry ?? []) {
    const r = entry.resource;
    if (!r) continue;
    if (r.resourceType === kind) items.push(r);
    else if (isFailure(r)) problem = 'OperationOutcome in the search results';
  }
  if (bundle.link?.some((l) => l.relation === 'next')) problem ??= 'more pages than were sent';
  return { items, problem };
}

/** Sorts the request's prefetch into record data by kind, remembering what could not be read. */
export function resolvePrefetch(request: HookRequest, service: CatalogEntry): PrefetchResult {
  const data = emptyData();
  const absentKeys: string[] = [];
  const unreadableKeys: Array<{ key: string; reason: string }> = [];
  const prefetch = request.prefetch ?? {};
  for (const [key, kind] of Object.entries(service.prefetchKinds)) {
    const slice = data[kind] as { items: FhirResource[]; complete: boolean };
    if (!Object.prototype.hasOwnProperty.call(prefetch, key) || prefetch[key] === undefined) {
      absentKeys.push(key);
      // Fetching from fhirServer is its own feature; until then the key is unreadable.
      slice.complete = false;
      unreadableKeys.push({ key, reason: 'absent from prefetch' });
      continue;
    }
    const { items, problem } = readValue(prefetch[key], kind);
    slice.items.push(...items);
    if (problem) {
      slice.complete = false;
      unreadableKeys.push({ key, reason: problem });
    }
  }
  // The same resource can come through two keys (problem list and encounter diagnoses).
  for (const kind of Object.keys(data) as DataKind[]) {
    const seen = new Set<string>();
    const slice = data[kind] as { items: FhirResource[] };
    slice.items = slice.items.filter((r) => {
      if (!r.id) return true;
      if (seen.has(r.id)) return false;
      seen.add(r.id);
      return true;
    });
  }
  return { data, absentKeys, unreadableKeys };
}
