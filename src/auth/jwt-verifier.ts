import { performance } from 'node:perf_hooks';
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, errors, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { trustedIssuerProblem, TrustedIssuersError, type TrustedIssuer } from './trusted-issuers.js';
import { JWKS_COOLDOWN_MS, KeySetError, RemoteKeySet, type RemoteKeySetOptions } from './jwks.js';
import { MemoryReplayStore, type ReplayStore } from '../store/replay-store.js';

/** CDS Hooks 2.0: asymmetric signatures only; `none` and HMAC are refused before any key is looked at. */
const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512'];
const SKEW_SECONDS = 60;
/** A CDS Hooks JWT is a few hundred bytes; anything far longer is refused before it is decoded. */
export const MAX_TOKEN_CHARS = 16 * 1024;
export const MAX_JTI_CHARS = 256;
/** The longest `exp - iat` accepted (CDS_MAX_TOKEN_LIFETIME_S): CDS Hooks recommends tokens that live five minutes. */
export const DEFAULT_MAX_TOKEN_LIFETIME_S = 300;

export type Verdict =
  | { ok: true; iss: string; jti: string }
  /** `signatureVerified`: whether the issuer's key verified the signature (the refusal is then the issuer's doing, not the sender's). */
  | { ok: false; reason: string; iss?: string; signatureVerified?: boolean };

export interface VerifierOptions {
  now?: () => number;
  jwksCooldownMs?: number;
  /** How long a failed key set fetch is remembered (tests shorten it). */
  jwksFailureMs?: number;
  /** Bounds of a key set fetch (tests change them); see RemoteKeySet. */
  jwks?: Omit<RemoteKeySetOptions, 'cooldownMs' | 'failureMs'>;
  replays?: ReplayStore;
  maxTokenLifetimeS?: number;
}

/**
 * Verifies CDS Hooks JWTs (CDS Hooks 2.0 "Trusting CDS Clients" and its best practices): a trusted `iss`, a signature by
 * one of its keys, `aud` equal to the URL called, `exp` ahead, `iat` not ahead, `nbf` passed, a lifetime within the cap, a
 * fresh `jti`, the issuer's `tenant`. An issuer's inline keys are its only keys (a token's `jku` is then ignored, never
 * fetched); otherwise a `jku` must be on its list or be its `jwks_uri`. Reasons are for the log only; the client gets a bare 401.
 */
export class CdsJwtVerifier {
  private readonly issuers: Map<string, TrustedIssuer>;
  private readonly localSets = new Map<string, JWTVerifyGetKey>();
  private readonly remoteSets = new Map<string, RemoteKeySet>();

  private readonly now: () => number;
  private readonly remoteOptions: RemoteKeySetOptions;
  private readonly maxLifetimeS: number;

  private readonly replays: ReplayStore;

  constructor(issuers: TrustedIssuer[], options: VerifierOptions = {}) {
    for (const i of issuers) {
      const problem = trustedIssuerProblem(i);
      if (problem) throw new TrustedIssuersError(`trusted issuer "${i.iss}": ${problem}`);
    }
    this.issuers = new Map(issuers.map((i) => [i.iss, i]));
    for (const i of issuers) if (i.jwks) this.localSets.set(i.iss, createLocalJWKSet(i.jwks));
    this.now = options.now ?? Date.now;
    this.remoteOptions = { ...options.jwks, cooldownMs: options.jwksCooldownMs ?? JWKS_COOLDOWN_MS, failureMs: options.jwksFailureMs };
    this.maxLifetimeS = options.maxTokenLifetimeS ?? DEFAULT_MAX_TOKEN_LIFETIME_S;
    // Seen `jti`s are kept while their token could still be accepted: in memory for one instance, in the shared store for several.
    this.replays = options.replays ?? new MemoryReplayStore();
  }

  private remote(url: string, deadline: number): JWTVerifyGetKey {
    let set = this.remoteSets.get(url);
    if (!set) {
      set = new RemoteKeySet(url, this.remoteOptions);
      this.remoteSets.set(url, set);
    }
    return set.forCall(deadline);
  }

  private keysFor(issuer: TrustedIssuer, jku: unknown, deadline: number): JWTVerifyGetKey | string {
    const inline = this.localSets.get(issuer.iss);
    if (inline) return inline;
    if (jku !== undefined) {
      const allowed = [...(issuer.jku ?? []), ...(issuer.jwks_uri ? [issuer.jwks_uri] : [])];
      if (typeof jku !== 'string' || !allowed.includes(jku)) return 'jku not on the issuer allow-list';
      return this.remote(jku, deadline);
    }
    if (issuer.jwks_uri) return this.remote(issuer.jwks_uri, deadline);
    return 'no keys for the issuer without a jku';
  }

  /** `deadline`: the performance.now() time by which the call must be answered; a key set fetch never outlasts it. */
  async verify(token: string, audience: string | string[], options: { deadline?: number } = {}): Promise<Verdict> {
    const deadline = options.deadline ?? Infinity;
    const refuse = (reason: string, iss?: string, signatureVerified = false): Verdict => ({ ok: false, reason, iss, signatureVerified });
    if (token.length > MAX_TOKEN_CHARS) return refuse('token too large');
    let header: ReturnType<typeof decodeProtectedHeader>;
    let claimed: unknown;
    try {
      header = decodeProtectedHeader(token);
      claimed = decodeJwt(token).iss;
    } catch {
      return refuse('not a JWT');
    }
    const iss = typeof claimed === 'string' ? claimed.slice(0, 256) : undefined;
    const { alg, typ } = header;
    if (!alg || !ALGORITHMS.includes(alg)) return refuse(`algorithm ${String(alg).slice(0, 20)} not allowed`, iss);
    if (typ !== undefined && !(typeof typ === 'string' && ['jwt', 'application/jwt'].includes(typ.toLowerCase()))) return refuse('typ not JWT', iss);
    // No extension this verifier understands may be made critical (jose refuses them too; this names the reason).
    if (header.crit !== undefined) return refuse('crit header not understood', iss);
    const issuer = typeof claimed === 'string' ? this.issuers.get(claimed) : undefined;
    if (!issuer) return refuse('issuer not trusted', iss);
    const keys = this.keysFor(issuer, header.jku, deadline);
    if (typeof keys === 'string') return refuse(keys, iss);
    let payload;
    try {
      ({ payload } = await jwtVerify(token, keys, {
        algorithms: ALGORITHMS,
        issuer: issuer.iss,
        audience,
        clockTolerance: SKEW_SECONDS,
        currentDate: new Date(this.now()),
        requiredClaims: ['iss', 'aud', 'exp', 'iat', 'jti'],
      }));
    } catch (err) {
      return refuse(describe(err), iss, signedButInvalid(err));
    }
    const nowS = this.now() / 1000;
    const exp = payload.exp!;
    if (typeof payload.iat !== 'number' || payload.iat > nowS + SKEW_SECONDS) return refuse('iat in the future', iss, true);
    if (exp - payload.iat > this.maxLifetimeS) return refuse('token lifetime too long', iss, true);
    if (issuer.tenant !== undefined && payload.tenant !== issuer.tenant) return refuse('tenant not allowed', iss, true);
    // The id is a key in the replay store (an index entry in PostgreSQL): a string, and a short one.
    if (typeof payload.jti !== 'string' || payload.jti.length === 0 || payload.jti.length > MAX_JTI_CHARS) return refuse('jti not a string of 1 to 256 characters', iss, true);
    const jti = payload.jti;
    // The id is kept as long as the token could be accepted (exp plus the skew), which the lifetime cap bounds: iat is at
    // most now + skew, so exp + skew is at most now + the cap + twice the skew.
    const fresh = await withDeadline(this.replays.remember(`${issuer.iss}|${jti}`, (exp + SKEW_SECONDS) * 1000, this.now()), deadline);
    if (fresh === 'unavailable') return refuse('replay store unavailable', iss, true);
    if (!fresh) return refuse('jti replayed', iss, true);
    return { ok: true, iss: issuer.iss, jti };
  }
}

/** The replay check, bounded by the call's deadline; a store that fails or does not answer in time refuses the token. */
async function withDeadline(remembered: Promise<boolean>, deadline: number): Promise<boolean | 'unavailable'> {
  let timer: NodeJS.Timeout | undefined;
  const settled = remembered.then(
    (fresh) => fresh,
    () => 'unavailable' as const,
  );
  if (deadline === Infinity) return settled;
  try {
    return await Promise.race([settled, new Promise<'unavailable'>((r) => (timer = setTimeout(() => r('unavailable'), Math.max(0, deadline - performance.now()))))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Errors jose raises only once the signature has verified: the claims of a token the issuer really signed. */
function signedButInvalid(err: unknown): boolean {
  return err instanceof errors.JWTExpired || err instanceof errors.JWTClaimValidationFailed || err instanceof errors.JWTInvalid;
}

function describe(err: unknown): string {
  if (err instanceof KeySetError) return err.reason;
  if (err instanceof errors.JWTExpired) return 'token expired';
  if (err instanceof errors.JWTClaimValidationFailed) return `claim ${err.claim} ${err.reason}`;
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'signature invalid';
  if (err instanceof errors.JWKSNoMatchingKey) return 'no key of the issuer matches';
  if (err instanceof errors.JWKSMultipleMatchingKeys) return 'several keys of the issuer match and the token names no kid';
  if (err instanceof errors.JOSEAlgNotAllowed) return 'algorithm not allowed';
  if (err instanceof errors.JOSEError) return err.code;
  return 'key set unavailable';
}
