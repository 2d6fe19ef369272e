import http from 'node:http';
import https from 'node:https';
import zlib from 'node:zlib';
import type { Bundle, BundleEntry, BundleLink } from 'fhir/r4.js';
import { inSpan } from '../observability/tracing.js';
import { jsonBoundsProblem, JsonBoundsScanner } from './shape.js';

/** How one prefetch query fared against the EHR's FHIR server; what the log may say (no URL, no data, no token). */
export interface FhirCall {
  key: string;
  ms: number;
  outcome:
    | 'ok'
    | 'timeout'
    | 'http-4xx'
    | 'http-5xx'
    | 'redirect'
    | 'too-large'
    | 'connection-failed'
    | 'malformed'
    | 'not-a-resource'
    | 'bad-url'
    | 'no-token-value';
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

/** What one search may bring, all its pages together; past any of these its data is unreadable. */
export interface FhirAnswerLimits {
  /** Bytes, counted on the wire and again after decompression. */
  maxBytes: number;
  /** Bundle entries. */
  maxEntries: number;
  /** JSON nesting and array length of each page, as for request bodies. */
  maxDepth: number;
  maxArray: number;
}

export interface FhirFetchRequest {
  fhirServer: string;
  accessToken?: string;
  /** Rendered queries by prefetch key; undefined when a token had no value. */
  queries: Record<string, string | undefined>;
  /** Aborts every query when the call's deadline comes; reading and parsing the answers count against it too. */
  signal: AbortSignal;
  maxPages: number;
  limits: FhirAnswerLimits;
}

/** Connections to EHR FHIR servers are kept open between calls; each call's deadline still bounds every request. */
const AGENT_OPTIONS = { keepAlive: true, maxSockets: 256, maxFreeSockets: 64, scheduling: 'lifo' as const };
const httpAgent = new http.Agent(AGENT_OPTIONS);
const httpsAgent = new https.Agent(AGENT_OPTIONS);

/** A failed read: the outcome for the log, and the fixed reason the key is unreadable. */
class Unreadable {
  constructor(
    readonly outcome: Exclude<FhirCall['outcome'], 'ok' | 'no-token-value'>,
    readonly status?: number,
    readonly detail?: string,
  ) {}
}

/** What is left of one search's limits for its next page. */
interface Budget {
  wire: number;
  decoded: number;
  entries: number;
}

type RawAnswer = { body: Buffer; wire: number; status: number } | { failed: Unreadable; retry?: boolean };

function decoderFor(encoding: string, first: Buffer): zlib.Gunzip | zlib.Inflate | zlib.InflateRaw | zlib.BrotliDecompress {
  if (encoding === 'gzip' || encoding === 'x-gzip') return zlib.createGunzip();
  if (encoding === 'br') return zlib.createBrotliDecompress();
  // "deflate" should be zlib-wrapped, but some servers send raw deflate: a zlib stream starts with method 8 in its low bits.
  return (first[0]! & 0x0f) === 0x08 ? zlib.createInflate() : zlib.createInflateRaw();
}

const ENCODINGS = new Set(['identity', 'gzip', 'x-gzip', 'deflate', 'br']);

/**
 * One GET, read by hand: no redirect is followed, a Content-Length over the budget is refused before reading, and the
 * body is counted as it arrives and again as it is decompressed (streaming), so neither a large body nor a small one
 * that inflates past the budget is ever held in full. The decoded bytes go through the JSON bounds scanner as they come,
 * so nesting, arrays and entries past the limits stop the read before anything is parsed. Resolves; never rejects.
 */
function getOnce(url: URL, headers: Record<string, string>, signal: AbortSignal, budget: Budget, limits: FhirAnswerLimits): Promise<RawAnswer> {
  return new Promise<RawAnswer>((resolve) => {
    if (signal.aborted) return resolve({ failed: new Unreadable('timeout') });
    let settled = false;
    let decoder: ReturnType<typeof decoderFor> | undefined;
    const transport = url.protocol === 'https:' ? https : http;
    const req = transport.request(url, { method: 'GET', headers, agent: url.protocol === 'https:' ? httpsAgent : httpAgent });
    const settle = (answer: RawAnswer, discard: boolean) => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      if (discard) {
        decoder?.destroy();
        req.destroy();
      }
      resolve(answer);
    };
    const onAbort = () => settle({ failed: new Unreadable('timeout') }, true);
    signal.addEventListener('abort', onAbort, { once: true });
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (signal.aborted) return settle({ failed: new Unreadable('timeout') }, true);
      // A kept-alive connection the server had just closed: the GET never reached it, so it can be sent once more.
      settle({ failed: new Unreadable('connection-failed'), retry: req.reusedSocket && err.code === 'ECONNRESET' }, true);
    });
    req.on('response', (res) => {
      const status = res.statusCode ?? 0;
      res.on('error', () => settle({ failed: new Unreadable(signal.aborted ? 'timeout' : 'connection-failed', status) }, true));
      if (status >= 300 && status < 400) return settle({ failed: new Unreadable('redirect', status) }, true);
      if (status >= 400) return settle({ failed: new Unreadable(status >= 500 ? 'http-5xx' : 'http-4xx', status) }, true);
      if (status < 200) return settle({ failed: new Unreadable('malformed', status) }, true);
      const length = res.headers['content-length'];
      if (length !== undefined && !(Number(length) <= budget.wire)) return settle({ failed: new Unreadable('too-large', status, 'answer larger than the limit') }, true);
      const encoding = (res.headers['content-encoding'] ?? 'identity').trim().toLowerCase() || 'identity';
      if (!ENCODINGS.has(encoding)) return settle({ failed: new Unreadable('malformed', status, 'unsupported content encoding') }, true);

      const chunks: Buffer[] = [];
      const scanner = new JsonBoundsScanner(limits.maxDepth, limits.maxArray, budget.entries);
      let wire = 0;
      let decoded = 0;
      const tooLarge = () => settle({ failed: new Unreadable('too-large', status, 'answer larger than the limit') }, true);
      const done = () => settle({ body: Buffer.concat(chunks, decoded), wire, status }, false);
      const onDecoded = (chunk: Buffer) => {
        if (settled) return;
        decoded += chunk.length;
        if (decoded > budget.decoded) return tooLarge();
        const bounds = scanner.push(chunk);
        if (bounds) return settle({ failed: new Unreadable('too-large', status, bounds.startsWith('more than') ? `more than ${limits.maxEntries} entries` : `answer ${bounds}`) }, true);
        chunks.push(chunk);
      };
      res.on('data', (chunk: Buffer) => {
        if (settled) return;
        wire += chunk.length;
        if (wire > budget.wire) return tooLarge();
        if (encoding === 'identity') return onDecoded(chunk);
        if (!decoder) {
          decoder = decoderFor(encoding, chunk);
          decoder.on('data', onDecoded);
          decoder.on('error', () => settle({ failed: new Unreadable('malformed', status, 'body does not decompress') }, true));
          decoder.on('end', done);
        }
        decoder.write(chunk);
      });
      res.on('end', () => {
        if (settled) return;
        if (encoding === 'identity') return done();
        if (!decoder) return settle({ failed: new Unreadable('malformed', status, 'empty body') }, true);
        decoder.end();
      });
      // The server closed the connection before the body ended.
      res.on('close', () => {
        if (!res.complete) settle({ failed: new Unreadable(signal.aborted ? 'timeout' : 'connection-failed', status) }, true);
      });
    });
    req.end();
  });
}

function isResource(value: unknown): value is { resourceType: string } {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && typeof (value as { resourceType?: unknown }).resourceType === 'string';
}

/** Reads one page: a FHIR resource within the bounds, or why not. The deadline counts the parse too. */
async function getPage(url: URL, headers: Record<string, string>, signal: AbortSignal, budget: Budget, limits: FhirAnswerLimits): Promise<{ value: { resourceType: string }; wire: number; decoded: number }> {
  let raw = await getOnce(url, headers, signal, budget, limits);
  if ('retry' in raw && raw.retry) raw = await getOnce(url, headers, signal, budget, limits);
  if ('failed' in raw) throw raw.failed;
  let value: unknown;
  try {
    const text = raw.body.toString('utf8');
    value = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch {
    throw new Unreadable('malformed', raw.status, 'body is not JSON');
  }
  if (signal.aborted) throw new Unreadable('timeout');
  if (!isResource(value)) throw new Unreadable('not-a-resource', raw.status);
  const entries = (value as { entry?: unknown }).entry;
  // The scanner counted them already, unless the key was written with escapes.
  if (Array.isArray(entries) && entries.length > budget.entries) throw new Unreadable('too-large', raw.status, `more than ${limits.maxEntries} entries`);
  const bounds = jsonBoundsProblem(value, limits.maxDepth, limits.maxArray);
  if (bounds) throw new Unreadable('too-large', raw.status, `answer ${bounds}`);
  return { value, wire: raw.wire, decoded: raw.body.length };
}

/**
 * Runs the queries for the prefetch keys the EHR did not send, all at once, against fhirServer with the EHR's token, and
 * follows `next` links of search results up to maxPages, only on the same server (the token must not leave it).
 * Redirects are never followed. Every failure (timeout, refused connection, 3xx/4xx/5xx, malformed JSON, an answer past
 * the limits) makes its key unreadable; nothing throws.
 */
export async function fetchFromFhirServer(req: FhirFetchRequest): Promise<FhirFetchResult> {
  const result: FhirFetchResult = { values: {}, failures: {}, calls: [] };
  let base: URL | undefined;
  try {
    base = new URL(req.fhirServer);
    if (base.protocol !== 'http:' && base.protocol !== 'https:') base = undefined;
  } catch {
    base = undefined;
  }
  const baseHref = base ? `${base.origin}${base.pathname.replace(/\/+$/, '')}/` : '';
  const headers: Record<string, string> = { accept: 'application/fhir+json', 'accept-encoding': 'gzip, deflate, br' };
  if (req.accessToken) headers.authorization = `Bearer ${req.accessToken}`;
  const { limits, signal } = req;

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
        // The query must stay under fhirServer: the token goes nowhere else.
        const first = base ? new URL(query, baseHref) : undefined;
        if (!base || !first || !first.href.startsWith(baseHref)) throw new Unreadable('bad-url');
        const budget: Budget = { wire: limits.maxBytes, decoded: limits.maxBytes, entries: limits.maxEntries };
        const read = async (url: URL) => {
          const page = await getPage(url, headers, signal, budget, limits);
          budget.wire -= page.wire;
          budget.decoded -= page.decoded;
          const entries = (page.value as { entry?: unknown }).entry;
          if (Array.isArray(entries)) budget.entries -= entries.length;
          call.pages += 1;
          return page.value;
        };
        let value: unknown = await read(first);
        if ((value as { resourceType: string }).resourceType === 'Bundle') {
          const firstPage = value as Bundle;
          const entries: BundleEntry[] = [...(firstPage.entry ?? [])];
          let next = firstPage.link?.find((l) => l.relation === 'next')?.url;
          while (next && call.pages < req.maxPages) {
            let nextUrl: URL;
            try {
              nextUrl = new URL(next, baseHref);
            } catch {
              break;
            }
            if (nextUrl.origin !== base.origin) break;
            const page = await read(nextUrl);
            if (page.resourceType !== 'Bundle') throw new Unreadable('not-a-resource');
            for (const entry of (page as Bundle).entry ?? []) entries.push(entry);
            if (entries.length > limits.maxEntries) throw new Unreadable('too-large', undefined, `more than ${limits.maxEntries} entries`);
            next = (page as Bundle).link?.find((l) => l.relation === 'next')?.url;
          }
          // Pages left unread stay visible as a `next` link, so the data counts as incomplete.
          const link: BundleLink[] | undefined = next ? [{ relation: 'next', url: next }] : undefined;
          value = { resourceType: 'Bundle', type: firstPage.type ?? 'searchset', ...(firstPage.total !== undefined ? { total: firstPage.total } : {}), entry: entries, ...(link ? { link } : {}) };
        }
        if (signal.aborted) throw new Unreadable('timeout');
        result.values[key] = value;
      } catch (err) {
        // Only Unreadable is expected here; anything else is a defect, and still only makes the key unreadable.
        const failed = err instanceof Unreadable ? err : new Unreadable(signal.aborted ? 'timeout' : 'malformed');
        call.outcome = failed.outcome;
        if (failed.status !== undefined) call.status = failed.status;
        result.failures[key] = `FHIR server: ${failed.outcome}${call.status ? ` ${call.status}` : ''}${failed.detail ? ` (${failed.detail})` : ''}`;
      } finally {
        call.ms = Math.round((performance.now() - started) * 10) / 10;
        result.calls.push(call);
        setSpan({ 'fhir.outcome': call.outcome, 'fhir.pages': call.pages, ...(call.status ? { 'http.response.status_code': call.status } : {}) });
      }
    })),
  );
  return result;
}
