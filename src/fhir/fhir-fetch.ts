import { Client } from 'fhir-kit-client';
import type { Bundle, BundleEntry, BundleLink } from 'fhir/r4.js';
import { inSpan } from '../observability/tracing.js';

/** How one prefetch query fared against the EHR's FHIR server; what the log may say (no URL, no data, no token). */
export interface FhirCall {
  key: string;
  ms: number;
  outcome: 'ok' | 'timeout' | 'http-4xx' | 'http-5xx' | 'connection-failed' | 'malformed' | 'not-a-resource' | 'no-token-value';
  status?: number;
  pages: number;
}

export interface FhirFetchResult {
  /** What each key brought, as a prefetch value would be. */
  values: Record<string, unknown>;
  /** Keys that could not be read, with a fixed reason. */
  failures: Record<string, string>;
  calls: FhirCall[];
}

export interface FhirFetchRequest {
  fhirServer: string;
  accessToken?: string;
  /** Rendered queries by prefetch key; undefined when a token had no value. */
  queries: Record<string, string | undefined>;
  /** Aborts every query when the call's deadline comes. */
  signal: AbortSignal;
  maxPages: number;
}

/** One client per FHIR server, so calls reuse its connections; the token goes on each request, never on the client. */
const clients = new Map<string, Client>();
const MAX_CLIENTS = 64;

function clientFor(baseUrl: string): Client {
  let client = clients.get(baseUrl);
  if (!client) {
    if (clients.size >= MAX_CLIENTS) clients.delete(clients.keys().next().value!);
    client = new Client({ baseUrl });
    clients.set(baseUrl, client);
  }
  return client;
}

function classify(err: unknown, signal: AbortSignal): Pick<FhirCall, 'outcome' | 'status'> {
  if (signal.aborted) return { outcome: 'timeout' };
  const status = (err as { response?: { status?: number; data?: unknown } }).response?.status;
  if (typeof status === 'number') {
    // fhir-kit-client reports a body it could not parse as an error carrying the raw text.
    if (status < 400) return { outcome: 'malformed', status };
    return { outcome: status >= 500 ? 'http-5xx' : 'http-4xx', status };
  }
  return { outcome: 'connection-failed' };
}

function isResource(value: unknown): value is { resourceType: string } {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && typeof (value as { resourceType?: unknown }).resourceType === 'string';
}

/**
 * Runs the queries for the prefetch keys the EHR did not send, all at once, against fhirServer with the EHR's token, and
 * follows `next` links of search results up to maxPages, only on the same server (the token must not leave it).
 * Every failure (timeout, refused connection, 4xx/5xx, malformed JSON) makes its key unreadable; nothing throws.
 */
export async function fetchFromFhirServer(req: FhirFetchRequest): Promise<FhirFetchResult> {
  const baseUrl = req.fhirServer.replace(/\/+$/, '');
  const origin = new URL(baseUrl).origin;
  const client = clientFor(baseUrl);
  const headers: Record<string, string> = { accept: 'application/fhir+json' };
  if (req.accessToken) headers.authorization = `Bearer ${req.accessToken}`;
  const options = { headers, signal: req.signal };

  const result: FhirFetchResult = { values: {}, failures: {}, calls: [] };
  await Promise.all(
    Object.entries(req.queries).map(([key, query]) => inSpan('fhir.query', { 'fhir.prefetch_key': key }, async (setSpan) => {
      const started = performance.now();
      const call: FhirCall = { key, ms: 0, outcome: 'ok', pages: 0 };
      try {
        if (query === undefined) {
          call.outcome = 'no-token-value';
          result.failures[key] = 'a prefetch token has no value in this request';
          return;
        }
        let value: unknown = await client.request(query, { options });
        call.pages = 1;
        if (!isResource(value)) throw Object.assign(new Error('not a resource'), { notResource: true });
        if (value.resourceType === 'Bundle') {
          const first = value as Bundle;
          const entries: BundleEntry[] = [...(first.entry ?? [])];
          let next = first.link?.find((l) => l.relation === 'next')?.url;
          while (next && call.pages < req.maxPages && new URL(next, baseUrl).origin === origin) {
            const page = (await client.request(new URL(next, `${baseUrl}/`).toString(), { options })) as unknown;
            if (!isResource(page) || page.resourceType !== 'Bundle') throw Object.assign(new Error('not a Bundle'), { notResource: true });
            call.pages += 1;
            entries.push(...((page as Bundle).entry ?? []));
            next = (page as Bundle).link?.find((l) => l.relation === 'next')?.url;
          }
          // Pages left unread stay visible as a `next` link, so the data counts as incomplete.
          const link: BundleLink[] | undefined = next ? [{ relation: 'next', url: next }] : undefined;
          value = { resourceType: 'Bundle', type: first.type ?? 'searchset', ...(first.total !== undefined ? { total: first.total } : {}), entry: entries, ...(link ? { link } : {}) };
        }
        result.values[key] = value;
      } catch (err) {
        const { outcome, status } = (err as { notResource?: boolean }).notResource ? { outcome: 'not-a-resource' as const, status: undefined } : classify(err, req.signal);
        call.outcome = outcome;
        if (status !== undefined) call.status = status;
        result.failures[key] = `FHIR server: ${outcome}${status ? ` ${status}` : ''}`;
      } finally {
        call.ms = Math.round((performance.now() - started) * 10) / 10;
        result.calls.push(call);
        setSpan({ 'fhir.outcome': call.outcome, 'fhir.pages': call.pages, ...(call.status ? { 'http.response.status_code': call.status } : {}) });
      }
    })),
  );
  return result;
}
