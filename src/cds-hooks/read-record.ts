import { Errors } from '../errors.js';
import { fetchFromFhirServer } from '../fhir/fhir-fetch.js';
import type { HookDeps, HookSummary } from './handle-hook.js';
import { absentPrefetchKeys, resolvePrefetch, type FetchedPrefetch, type PrefetchResult } from './prefetch.js';
import { renderPrefetchTemplate } from './prefetch-template.js';
import { MAX_JSON_ARRAY, MAX_JSON_DEPTH } from './request-schema.js';
import type { CatalogEntry } from './service-catalog.js';
import type { HookRequest } from './types.js';

/**
 * Time kept back from the deadline for the work after the FHIR queries (facts, rules, cards): a share of the deadline,
 * from 50 to 300 ms. The answers are bounded in bytes and entries, so reading what arrived in time fits in it.
 */
const reserveMs = (deadlineMs: number) => Math.min(300, Math.max(50, Math.round(deadlineMs * 0.15)));

/**
 * The record for a call: prefetch, and for each absent key a query to fhirServer within the deadline (which runs from
 * the request's arrival and covers reading and parsing the answers); 412 when a key is absent and there is no fhirServer.
 * Both paths go through one reader, under the same bounds.
 */
export async function readRecord(request: HookRequest, service: CatalogEntry, deps: HookDeps, startedAt: number, summary: HookSummary): Promise<PrefetchResult> {
  const { rules } = deps;
  const absent = absentPrefetchKeys(request, service);
  if (absent.length > 0 && !request.fhirServer) throw Errors.prefetchMissing(absent);
  let fetched: FetchedPrefetch | undefined;
  if (absent.length > 0 && request.fhirServer) {
    const budget = Math.max(1, Math.floor(deps.deadlineMs - (performance.now() - startedAt) - reserveMs(deps.deadlineMs)));
    const result = await fetchFromFhirServer({
      fhirServer: request.fhirServer,
      accessToken: request.fhirAuthorization?.access_token,
      queries: Object.fromEntries(absent.map((key) => [key, renderPrefetchTemplate(service.definition.prefetch[key]!, request)])),
      signal: AbortSignal.timeout(budget),
      maxPages: deps.fhirMaxPages,
      limits: { maxBytes: deps.fhirMaxResponseBytes, maxEntries: deps.fhirMaxEntries, maxDepth: MAX_JSON_DEPTH, maxArray: MAX_JSON_ARRAY },
    });
    fetched = result;
    summary.fhirCalls = result.calls;
  }
  const prefetch = resolvePrefetch(request, service, (concept) => rules.terminology.isInterpretable(concept), deps.fhirMaxEntries, fetched);
  summary.unreadableKeys = prefetch.unreadableKeys;
  return prefetch;
}
