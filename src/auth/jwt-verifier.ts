import { createLocalJWKSet, createRemoteJWKSet, decodeJwt, decodeProtectedHeader, errors, jwtVerify, type JWTVerifyGetKey } from 'jose';
import type { TrustedIssuer } from './trusted-issuers.js';
import { MemoryReplayStore, type ReplayStore } from '../store/replay-store.js';

/** CDS Hooks 2.0: asymmetric signatures only; `none` and HMAC are refused before any key is looked at. */
const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512'];
const SKEW_SECONDS = 60;
/** How long a remote key set is trusted, and how soon an unknown `kid` may trigger a new fetch (the refresh rate limit). */
const JWKS_CACHE_MS = 10 * 60_000;
const JWKS_COOLDOWN_MS = 30_000;
const JWKS_TIMEOUT_MS = 3_000;

export type Verdict = { ok: true; iss: string; jti: string } | { ok: false; reason: string; iss?: string };

/**
 * Verifies CDS Hooks JWTs (CDS Hooks 2.0 "Trusting CDS Clients" and its best practices): a trusted `iss`, a signature by
 * one of its keys, `aud` equal to the URL called, `exp` ahead, `iat` not ahead, `nbf` passed, a fresh `jti`, the issuer's
 * `tenant`. Reasons are for the log only; the client gets a bare 401.
 */
export class CdsJwtVerifier {
  private readonly issuers: Map<string, TrustedIssuer>;
  private readonly localSets = new Map<string, JWTVerifyGetKey>();
  private readonly remoteSets = new Map<string, JWTVerifyGetKey>();

  private readonly now: () => number;
  private readonly cooldownMs: number;

  private readonly replays: ReplayStore;

  constructor(issuers: TrustedIssuer[], options: { now?: () => number; jwksCooldownMs?: number; replays?: ReplayStore } = {}) {
    this.issuers = new Map(issuers.map((i) => [i.iss, i]));
    this.now = options.now ?? Date.now;
    this.cooldownMs = options.jwksCooldownMs ?? JWKS_COOLDOWN_MS;
    // Seen `jti`s are kept until their token expires: in memory for one instance, in the shared store for several.
    this.replays = options.replays ?? new MemoryReplayStore();
  }

  private remote(url: string): JWTVerifyGetKey {
    let set = this.remoteSets.get(url);
    if (!set) {
      set = createRemoteJWKSet(new URL(url), { cacheMaxAge: JWKS_CACHE_MS, cooldownDuration: this.cooldownMs, timeoutDuration: JWKS_TIMEOUT_MS });
      this.remoteSets.set(url, set);
    }
    return set;
  }

  private keysFor(issuer: TrustedIssuer, jku: string | undefined): JWTVerifyGetKey | string {
    if (jku !== undefined) {
      const allowed = [...(issuer.jku ?? []), ...(issuer.jwks_uri ? [issuer.jwks_uri] : [])];
      if (!allowed.includes(jku)) return 'jku not on the issuer allow-list';
      return this.remote(jku);
    }
    if (issuer.jwks) {
      let set = this.localSets.get(issuer.iss);
      if (!set) {
        set = createLocalJWKSet(issuer.jwks);
        this.localSets.set(issuer.iss, set);
      }
      return set;
    }
    if (issuer.jwks_uri) return this.remote(issuer.jwks_uri);
    return 'no keys for the issuer without a jku';
  }

  async verify(token: string, audience: string | string[], _options: { deadline?: number } = {}): Promise<Verdict> {
    let alg: string | undefined;
    let jku: string | undefined;
    let iss: string | undefined;
    try {
      ({ alg, jku } = decodeProtectedHeader(token));
      iss = decodeJwt(token).iss;
    } catch {
      return { ok: false, reason: 'not a JWT' };
    }
    if (!alg || !ALGORITHMS.includes(alg)) return { ok: false, reason: `algorithm ${String(alg)} not allowed`, iss };
    const issuer = iss ? this.issuers.get(iss) : undefined;
    if (!issuer) return { ok: false, reason: 'issuer not trusted', iss };
    const keys = this.keysFor(issuer, jku);
    if (typeof keys === 'string') return { ok: false, reason: keys, iss };
    try {
      const { payload } = await jwtVerify(token, keys, {
        algorithms: ALGORITHMS,
        issuer: issuer.iss,
        audience,
        clockTolerance: SKEW_SECONDS,
        currentDate: new Date(this.now()),
        requiredClaims: ['iss', 'aud', 'exp', 'iat', 'jti'],
      });
      if (typeof payload.iat !== 'number' || payload.iat > this.now() / 1000 + SKEW_SECONDS) return { ok: false, reason: 'iat in the future', iss };
      if (issuer.tenant !== undefined && payload.tenant !== issuer.tenant) return { ok: false, reason: 'tenant not allowed', iss };
      const jti = String(payload.jti);
      if (!(await this.replays.remember(`${issuer.iss}|${jti}`, payload.exp! * 1000, this.now()))) return { ok: false, reason: 'jti replayed', iss };
      return { ok: true, iss: issuer.iss, jti };
    } catch (err) {
      return { ok: false, reason: describe(err), iss };
    }
  }
}

function describe(err: unknown): string {
  if (err instanceof errors.JWTExpired) return 'token expired';
  if (err instanceof errors.JWTClaimValidationFailed) return `claim ${err.claim} ${err.reason}`;
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'signature invalid';
  if (err instanceof errors.JWKSNoMatchingKey) return 'no key of the issuer matches';
  if (err instanceof errors.JWKSTimeout) return 'key set fetch timed out';
  if (err instanceof errors.JOSEAlgNotAllowed) return 'algorithm not allowed';
  if (err instanceof errors.JOSEError) return err.code;
  return 'key set unavailable';
}
