import type { OperationOutcome } from 'fhir/r4.js';

/**
 * The service's errors, one code each, as fastify does it: callers and tests match on `code`, never on text.
 * Every error reaches the client as a FHIR OperationOutcome (CDS Hooks 3.0 ballot, "Returning OperationOutcome").
 */
export type IssueType = 'invalid' | 'not-found' | 'processing' | 'too-long' | 'exception' | 'security' | 'not-supported' | 'throttled' | 'transient';

export class CdsError extends Error {
  constructor(
    readonly code: string,
    readonly statusCode: number,
    message: string,
    readonly issue: IssueType,
  ) {
    super(message);
    this.name = 'CdsError';
  }
}

export const Errors = {
  invalidRequest: (detail: string) => new CdsError('CDS_ERR_INVALID_REQUEST', 400, detail, 'invalid'),
  unknownService: (id: string) => new CdsError('CDS_ERR_UNKNOWN_SERVICE', 404, `No CDS service with id "${id}"`, 'not-found'),
  unauthorized: () => new CdsError('CDS_ERR_UNAUTHORIZED', 401, 'Unauthorized', 'security'),
  rateLimited: () => new CdsError('CDS_ERR_RATE_LIMITED', 429, 'Too many requests', 'throttled'),
  prefetchMissing: (keys: string[]) =>
    new CdsError(
      'CDS_ERR_PREFETCH_MISSING',
      412,
      `Prefetch key${keys.length > 1 ? 's' : ''} ${keys.map((k) => `'${k}'`).join(', ')} absent and no fhirServer to fetch from`,
      'processing',
    ),
  bodyTooLarge: () => new CdsError('CDS_ERR_BODY_TOO_LARGE', 413, 'Request body too large', 'too-long'),
  unsupportedMediaType: () => new CdsError('CDS_ERR_MEDIA_TYPE', 415, 'Send application/json', 'not-supported'),
  notFound: () => new CdsError('CDS_ERR_NOT_FOUND', 404, 'Not found', 'not-found'),
  internal: () => new CdsError('CDS_ERR_INTERNAL', 500, 'Internal error', 'exception'),
  storeUnavailable: () => new CdsError('CDS_ERR_STORE_UNAVAILABLE', 503, 'The store is unavailable; try again later', 'transient'),
} as const;

export function operationOutcome(issue: IssueType, diagnostics: string): OperationOutcome {
  return { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: issue, diagnostics }] };
}
