import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Errors } from '../../errors.js';
import type { CdsJwtVerifier, Verdict } from '../../auth/jwt-verifier.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The verified issuer of the call's CDS Hooks JWT. */
    cdsIssuer?: string;
  }
}

export interface CdsAuthOptions {
  verifier: CdsJwtVerifier;
  publicBaseUrl: string;
}

export function bearerToken(request: FastifyRequest): string | undefined {
  return /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? '')?.[1];
}

/** Whether the call carries `Authorization: Bearer <expected>`, compared in constant time. No expected token: never. */
export function tokenMatches(request: FastifyRequest, expected: string | undefined): boolean {
  const given = bearerToken(request);
  if (!given || !expected) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * CDS Hooks 2.0 authentication on everything under /cds-services (discovery, hook calls, feedback): a JWT from a trusted
 * EHR whose `aud` is the exact URL called. CORS preflights pass (browsers send them without credentials). Every refusal is
 * a bare 401; the reason goes to the log, never the token.
 */
export function installCdsAuth(app: FastifyInstance, opts: CdsAuthOptions): void {
  app.addHook('onRequest', async function verifyCdsJwt(request, reply) {
    if (request.method === 'OPTIONS' || !request.url.startsWith('/cds-services')) return;
    const token = bearerToken(request);
    const verdict: Verdict = token
      ? await opts.verifier.verify(token, `${opts.publicBaseUrl}${request.url.split('?')[0]}`)
      : { ok: false, reason: 'no bearer token' };
    if (!verdict.ok) {
      request.log.warn({ reason: verdict.reason, iss: verdict.iss, path: request.routeOptions.url ?? 'unknown' }, 'CDS Hooks JWT refused');
      void reply.header('www-authenticate', 'Bearer');
      throw Errors.unauthorized();
    }
    request.cdsIssuer = verdict.iss;
  });
}
