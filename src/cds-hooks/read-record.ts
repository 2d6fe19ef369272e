import { Errors } from '../errors.js';
import { fetchFromFhirServer } from '../fhir/fhir-fetch.js';
import type { HookDeps, HookSummary } from './handle-hook.js';
import { absentPrefetchKeys, resolvePrefetch, type FetchedPrefetch, type PrefetchResult } from './prefetch.js';
import { renderPrefetchTemplate } from './prefetch-template.js';
import type { CatalogEntry } from './service-catalog.js';
import type { HookRequest } from './types.js';

/** Time kept back from the deadline for the work after the FHIR queries (facts, rules, cards). */
const DEADLINE_RESERVE_MS = 50;

/**
 * The record for a call (CONTRACT section 5): prefetch, and for each absent key a query to fhirServer within the
 * deadline; 412 when a key is absent and there is no fhirServer. Both paths go through one reader.
 */
export async function readRecord(request: HookRequest, service: CatalogEntry, deps: HookDeps, startedAt: number, summary: HookSummary): Promise<PrefetchResult> {
  const { rules } = deps;
  const absent = absentPrefetchKeys(request, service);
  if (absent.length > 0 && !request.fhirServer) throw Errors.prefetchMissing(absent);
  let fetched: FetchedPrefetch | undefined;
  if (absent.length > 0 && request.fhirServer) {
    const budget = Math.max(1, Math.floor(deps.deadlineMs - (performance.now() - startedAt) - DEADLINE_RESERVE_MS));
    const result = await fetchFromFhirServer({
      fhirServer: request.fhirServer,
      accessToken: request.fhirAuthorization?.access_token,
      queries: Object.fromEntries(absent.map((key) => [key, renderPrefetchTemplate(service.definition.prefetch[key]!, request)])),
      signal: AbortSignal.timeout(budget),
      maxPages: deps.fhirMaxPages,
    });
    fetched = result;
    summary.fhirCalls = result.calls;
  }
  const prefetch = resolvePrefetch(request, service, (concept) => rules.terminology.isInterpretable(concept), fetched);
  summary.unreadableKeys = prefetch.unreadableKeys;
  return prefetch;
}
