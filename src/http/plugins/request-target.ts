import type { FastifyInstance, onRequestHookHandler } from 'fastify';
import { Errors } from '../../errors.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** performance.now() when the request arrived: the call's deadline runs from here, authentication included. */
    arrivedAt: number;
  }
}

/**
 * A request target in absolute form (`POST http://host/cds-services/...`, RFC 9112 section 3.2.2) is accepted only when
 * its authority is PUBLIC_BASE_URL's; any other is refused with 400 before anything else runs. Origin-form targets pass.
 */
export function requestTargetCheck(publicBaseUrl: string): onRequestHookHandler {
  const expected = new URL(publicBaseUrl).host;
  return async function checkRequestTarget(request) {
    request.arrivedAt = performance.now();
    const target = request.raw.url ?? '';
    if (target.startsWith('/')) return;
    if (target === '*' && request.method === 'OPTIONS') return;
    let host: string;
    try {
      host = new URL(target).host;
    } catch {
      throw Errors.invalidRequest('The request target is not a path or an absolute URL');
    }
    if (host !== expected) throw Errors.invalidRequest('The request target names another host than this service');
  };
}

/** Media types a JSON body may come as: JSON and FHIR JSON, with any parameters (charset...). */
const JSON_MEDIA_TYPES = new Set(['application/json', 'application/fhir+json', 'application/json+fhir']);

/**
 * A request that carries a body must say it is JSON; anything else (text/plain, no media type) is 415. Bodies are read as
 * sent: a content coding (gzip...) is refused with 415 too (RFC 7694), so no body is ever inflated past the body limit.
 */
export const requireJsonBody: onRequestHookHandler = async function requireJsonBody(request) {
  if (request.method !== 'POST' && request.method !== 'PUT' && request.method !== 'PATCH') return;
  const type = (request.headers['content-type'] ?? '').split(';', 1)[0]!.trim().toLowerCase();
  if (!JSON_MEDIA_TYPES.has(type)) throw Errors.unsupportedMediaType();
  const coding = request.headers['content-encoding']?.trim().toLowerCase();
  if (coding && coding !== 'identity') throw Errors.unsupportedMediaType();
};

/** Installs the request-target check first of all hooks, and drops fastify's text/plain parser (no route reads text). */
export function installRequestTargetCheck(app: FastifyInstance, publicBaseUrl: string): void {
  app.decorateRequest('arrivedAt', 0);
  app.addHook('onRequest', requestTargetCheck(publicBaseUrl));
  app.removeContentTypeParser('text/plain');
}
