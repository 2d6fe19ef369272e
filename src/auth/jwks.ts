import { performance } from 'node:perf_hooks';
import { createLocalJWKSet, errors, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';

/** The most keys one set may hold, inline or fetched: an EHR publishes a handful, and each is a candidate to import. */
export const JWKS_MAX_KEYS = 100;
/** The most bytes a key set fetch reads (counted as they stream in, after any content decoding). */
export const JWKS_MAX_BYTES = 64 * 1024;
/** How long a fetched key set is trusted; how long a fetch may take at most, whatever the call's deadline. */
export const JWKS_CACHE_MS = 10 * 60_000;
export const JWKS_TIMEOUT_MS = 3_000;
/** How soon an unknown `kid` may trigger a new fetch (the refresh rate limit). */
export const JWKS_COOLDOWN_MS = 30_000;
/** How long a failed fetch is remembered: calls in that window are refused at once instead of waiting on the server again. */
export const JWKS_FAILURE_MS = 5_000;

/** JWK members that only private or symmetric keys have: a set that holds one is a leaked secret, never a key to trust. */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

/** Why a key set cannot be used; the text is a log reason. */
export class KeySetError extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'KeySetError';
  }
}

/** What is wrong with a JWKS (a JSON value from a file or a server), or undefined when it holds only public keys. */
export function keySetProblem(value: unknown, maxKeys = JWKS_MAX_KEYS): string | undefined {
  if (typeof value !== 'object' || value === null || !Array.isArray((value as { keys?: unknown }).keys)) return 'not a JWKS ({ "keys": [...] })';
  const keys = (value as { keys: unknown[] }).keys;
  if (keys.length > maxKeys) return `more than ${maxKeys} keys`;
  for (const [i, k] of keys.entries()) {
    if (typeof k !== 'object' || k === null || Array.isArray(k) || typeof (k as { kty?: unknown }).kty !== 'string') return `key ${i} is not a JWK (no kty)`;
    const jwk = k as Record<string, unknown>;
    if (jwk.kty === 'oct') return `key ${i} is a symmetric key (kty oct)`;
    const secret = PRIVATE_MEMBERS.find((m) => m in jwk);
    if (secret) return `key ${i} holds private key material ("${secret}")`;
  }
  return undefined;
}

/** Key set URLs are https, except on the loopback interface (a sidecar, or a test server). */
export function keySetUrlProblem(url: string): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'is not a URL';
  }
  if (u.protocol === 'https:') return undefined;
  if (u.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname)) return undefined;
  return 'must be https (http only on 127.0.0.1, localhost or [::1])';
}

export interface RemoteKeySetOptions {
  cacheMs?: number;
  cooldownMs?: number;
  failureMs?: number;
  timeoutMs?: number;
  maxBytes?: number;
  maxKeys?: number;
}

type Fetching = { promise: Promise<void> };

/**
 * The keys at one URL: fetched when first needed, kept for `cacheMs`, fetched again for an unknown `kid` at most once per
 * `cooldownMs`. A fetch follows no redirect, reads at most `maxBytes` of JSON holding at most `maxKeys` public keys, and is
 * aborted after `timeoutMs`; each call waits for it only until its own deadline, and the fetch runs on to its cap for the
 * calls after. Concurrent calls share one fetch. A failed fetch, or one a call gave up on, is remembered for `failureMs`:
 * calls that need the server in that window are refused at once (until a late answer fills the cache).
 */
export class RemoteKeySet {
  private local?: JWTVerifyGetKey;
  private fetchedAt = -Infinity;
  private failedAt = -Infinity;
  private fetching?: Fetching;
  private readonly cacheMs: number;
  private readonly cooldownMs: number;
  private readonly failureMs: number;
  private readonly timeoutMs: number;
  private readonly maxBytes: number;
  private readonly maxKeys: number;

  constructor(
    readonly url: string,
    options: RemoteKeySetOptions = {},
  ) {
    this.cacheMs = options.cacheMs ?? JWKS_CACHE_MS;
    this.cooldownMs = options.cooldownMs ?? JWKS_COOLDOWN_MS;
    this.failureMs = options.failureMs ?? JWKS_FAILURE_MS;
    this.timeoutMs = options.timeoutMs ?? JWKS_TIMEOUT_MS;
    this.maxBytes = options.maxBytes ?? JWKS_MAX_BYTES;
    this.maxKeys = options.maxKeys ?? JWKS_MAX_KEYS;
  }

  /** The key lookup for one call that must end by `deadline` (performance.now() ms; none: only the fetch cap applies). */
  forCall(deadline = Infinity): JWTVerifyGetKey {
    return async (header, token) => {
      const startedAt = performance.now();
      if (!this.local || startedAt - this.fetchedAt >= this.cacheMs) await this.refresh(deadline);
      try {
        return await this.local!(header, token);
      } catch (err) {
        if (!(err instanceof errors.JWKSNoMatchingKey) || startedAt - this.fetchedAt < this.cooldownMs) throw err;
        await this.refresh(deadline);
        return this.local!(header, token);
      }
    };
  }

  private async refresh(deadline: number): Promise<void> {
    const now = performance.now();
    if (now < this.failedAt + this.failureMs) throw new KeySetError('key set unavailable (recent failure)');
    if (now >= deadline) throw new KeySetError('deadline reached before the key set could be fetched');
    const fetching = (this.fetching ??= this.start());
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        fetching.promise,
        new Promise<never>((_resolve, reject) => {
          if (deadline === Infinity) return;
          timer = setTimeout(() => {
            // Remembered as a failure, so that the next calls do not wait on the same slow server; if the fetch still
            // answers within its cap, its keys are kept and the failure is forgotten.
            this.failedAt = performance.now();
            reject(new KeySetError('key set fetch timed out'));
          }, Math.max(0, deadline - performance.now()));
        }),
      ]);
    } finally {
      clearTimeout(timer);
      // A call that gives up at its deadline only stops waiting: the fetch runs on to its own cap, so a key server slower
      // than one call's deadline still fills the cache for the next calls (one fetch at a time per URL, bounded by the cap).
    }
  }

  private start(): Fetching {
    const controller = new AbortController();
    const cap = setTimeout(() => controller.abort(), this.timeoutMs).unref();
    const fetching: Fetching = {
      promise: this.load(controller.signal)
        .then(
          (local) => {
            this.local = local;
            this.fetchedAt = performance.now();
            this.failedAt = -Infinity;
          },
          (err: unknown) => {
            this.failedAt = performance.now();
            throw controller.signal.aborted ? new KeySetError('key set fetch timed out') : err instanceof KeySetError ? err : new KeySetError('key set unreachable');
          },
        )
        .finally(() => {
          clearTimeout(cap);
          if (this.fetching === fetching) this.fetching = undefined;
        }),
    };
    // Every waiter may have left (deadline) before the fetch settles; its failure is remembered, never unhandled.
    fetching.promise.catch(() => undefined);
    return fetching;
  }

  private async load(signal: AbortSignal): Promise<JWTVerifyGetKey> {
    const res = await fetch(this.url, { method: 'GET', redirect: 'manual', signal, headers: { accept: 'application/json, application/jwk-set+json' } });
    const body = res.body;
    const drop = () => body?.cancel().catch(() => undefined);
    if (res.status !== 200) {
      void drop();
      throw new KeySetError(`key set answered HTTP ${res.status}`);
    }
    const declared = Number(res.headers.get('content-length') ?? NaN);
    if (declared > this.maxBytes) {
      void drop();
      throw new KeySetError('key set too large');
    }
    const chunks: Uint8Array[] = [];
    let size = 0;
    if (body) {
      const reader = body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        size += value.byteLength;
        if (size > this.maxBytes) {
          void reader.cancel().catch(() => undefined);
          throw new KeySetError('key set too large');
        }
        chunks.push(value);
      }
    }
    let json: unknown;
    try {
      json = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      throw new KeySetError('key set not JSON');
    }
    const problem = keySetProblem(json, this.maxKeys);
    if (problem) throw new KeySetError(`key set refused: ${problem}`);
    return createLocalJWKSet(json as JSONWebKeySet);
  }
}
