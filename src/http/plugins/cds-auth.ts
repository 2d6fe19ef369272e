import { timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify';
import { Errors } from '../../errors.js';
import type { CdsJwtVerifier, Verdict } from '../../auth/jwt-verifier.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The verified issuer of the call's CDS Hooks JWT. */
    cdsIssuer?: string;
  }
}

/** A rate limit as @fastify/rate-limit's `createRateLimit` gives it: counts the request and says whether it is over. */
export type RateLimitCheck = (request: FastifyRequest) => Promise<{ isAllowed: true } | { isAllowed: false; isExceeded: boolean; ttlInSeconds: number }>;

export interface CdsAuthOptions {
  verifier: CdsJwtVerifier;
  publicBaseUrl: string;
  /** CDS_DEADLINE_MS: key-set fetches during verification end by the call's deadline. */
  deadlineMs: number;
  /** Counted only for tokens whose signature verified, keyed by their issuer (a forged `iss` cannot spend an EHR's budget). */
  limitPerIssuer?: RateLimitCheck;
  /** Counted for refused tokens, keyed by the sender's address. */
  limitFailuresPerAddress?: RateLimitCheck;
}

export function bearerToken(request: FastifyRequest): string | undefined {
  return /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? '')?.[1];
}

function sameInConstantTime(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Whether the call carries `Authorization: Bearer <expected>`, compared in constant time. No expected token: never. */
export function tokenMatches(request: FastifyRequest, expected: string | undefined): boolean {
  const given = bearerToken(request);
  return !!given && !!expected && sameInConstantTime(given, expected);
}

/**
 * The admin token as a bearer token, or as the password of HTTP Basic authentication (any user name), so that a browser
 * can open the admin pages: it asks for the password itself and sends it again with the page's own requests.
 */
export function adminCredentialsMatch(request: FastifyRequest, expected: string | undefined): boolean {
  if (!expected) return false;
  if (tokenMatches(request, expected)) return true;
  const basic = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(request.headers.authorization ?? '')?.[1];
  if (!basic) return false;
  const decoded = Buffer.from(basic, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon >= 0 && sameInConstantTime(decoded.slice(colon + 1), expected);
}

/**
 * The route's own path with its parameters filled in (decoded): the same whatever spelling reached it. Undefined when a
 * parameter holds a slash or a backslash: filled in, it would read as another route's path.
 */
export function canonicalPath(request: FastifyRequest): string | undefined {
  const pattern = request.routeOptions.url ?? '';
  const params = (request.params ?? {}) as Record<string, string>;
  let unsafe = false;
  const path = pattern.replace(/:([A-Za-z0-9_]+)/g, (_m, name: string) => {
    const value = params[name] ?? '';
    if (/[/\\]/.test(value)) unsafe = true;
    return value;
  });
  return unsafe ? undefined : path;
}

/** Counts the request against a limit; over it, the seconds until its window ends (and the reply carries Retry-After). */
async function overLimit(limit: RateLimitCheck | undefined, request: FastifyRequest, reply: FastifyReply): Promise<number | undefined> {
  if (!limit) return undefined;
  const state = await limit(request);
  if (state.isAllowed || !state.isExceeded) return undefined;
  void reply.header('retry-after', state.ttlInSeconds);
  return state.ttlInSeconds;
}

/**
 * CDS Hooks 2.0 authentication for every route of the CDS Hooks scope (discovery, hook calls, feedback): a JWT from a
 * trusted EHR whose `aud` is the URL of the route called. Every refusal is a bare 401; the reason goes to the log, never
 * the token. Installed on the scope, so it runs for the route whatever the spelling of the request target. Past its limit
 * of refused tokens an address gets 429 for each further refusal; a valid token from it still passes (behind a proxy
 * without TRUST_PROXY every EHR shares one address, and one misbehaving client must not lock them all out).
 */
export function cdsAuthHook(opts: CdsAuthOptions): onRequestHookHandler {
  return async function verifyCdsJwt(request, reply) {
    const token = bearerToken(request);
    const deadline = request.arrivedAt + opts.deadlineMs;
    // The token's aud must be the URL of the route the router reached, never the URL as some other parser reads the target.
    const path = canonicalPath(request);
    const verdict: Verdict = !token
      ? { ok: false, reason: 'no bearer token' }
      : path === undefined
        ? { ok: false, reason: 'a path parameter holds a slash' }
        : await opts.verifier.verify(token, `${opts.publicBaseUrl}${path}`, { deadline });
    if (!verdict.ok) {
      request.log.warn(
        { reason: verdict.reason, iss: verdict.iss, signatureVerified: verdict.signatureVerified ?? false, path: request.routeOptions.url ?? 'unknown' },
        'CDS Hooks JWT refused',
      );
      // Refusals count against the sender's address, never an issuer's allowance (a forged `iss` must not spend it).
      if ((await overLimit(opts.limitFailuresPerAddress, request, reply)) !== undefined) throw Errors.rateLimited();
      void reply.header('www-authenticate', 'Bearer');
      throw Errors.unauthorized();
    }
    request.cdsIssuer = verdict.iss;
    if ((await overLimit(opts.limitPerIssuer, request, reply)) !== undefined) throw Errors.rateLimited();
  };
}

/** The admin pages (analytics, playground): ADMIN_TOKEN as a bearer token or a Basic password; without ADMIN_TOKEN, refused. */
export function adminAuthHook(adminToken: string | undefined): onRequestHookHandler {
  return async function verifyAdmin(request, reply) {
    if (adminCredentialsMatch(request, adminToken)) return;
    void reply.header('www-authenticate', 'Basic realm="lbp-imaging-cds admin", charset="UTF-8"');
    throw Errors.unauthorized();
  };
}
