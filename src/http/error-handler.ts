import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { CdsError, Errors, operationOutcome } from '../errors.js';
import { errSummary } from '../store/supervisor.js';

/** Sends an error as the OperationOutcome every error leaves as. */
export function sendOutcome(reply: FastifyReply, err: CdsError): FastifyReply {
  return reply.code(err.statusCode).header('content-type', 'application/fhir+json; charset=utf-8').send(operationOutcome(err.issue, err.message));
}

/**
 * 503 with an OperationOutcome (CDS_ERR_STORE_UNAVAILABLE, issue `transient`) and a Retry-After. Sent by the route rather
 * than thrown: a store outage is expected, and is logged at info with the store's code and message, not as a fault.
 */
export function storeUnavailable(request: FastifyRequest, reply: FastifyReply, err?: unknown): FastifyReply {
  const e = Errors.storeUnavailable();
  request.log.info({ code: e.code, ...(err === undefined ? {} : { err: errSummary(err) }) }, 'store unavailable: request refused');
  return sendOutcome(reply.header('retry-after', '5'), e);
}

function toCdsError(err: FastifyError): CdsError {
  if (err instanceof CdsError) return err;
  if (err.validation) {
    const first = err.validation[0];
    const where = first?.instancePath ? `${err.validationContext ?? 'body'}${first.instancePath.replaceAll('/', '.')}` : (err.validationContext ?? 'body');
    return Errors.invalidRequest(`${where} ${first?.message ?? 'is invalid'}`);
  }
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return Errors.bodyTooLarge();
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return Errors.unsupportedMediaType();
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return Errors.invalidRequest('Body must not be empty');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return Errors.invalidRequest('Body is not valid JSON');
  }
  if (err instanceof SyntaxError || err.statusCode === 400) return Errors.invalidRequest('Body is not valid JSON');
  if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
    return new CdsError('CDS_ERR_CLIENT', err.statusCode, 'Request refused', 'invalid');
  }
  return Errors.internal();
}

/** Every error leaves as an OperationOutcome with a stable code; 5xx never says more than "Internal error". */
export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    const cds = toCdsError(err);
    if (cds.statusCode >= 500) {
      // The code and message at error; the stack only at debug (the logger's error serializer drops it otherwise).
      request.log.error({ err: { code: (err as { code?: string }).code ?? cds.code, message: err.message } }, 'unhandled error');
      request.log.debug({ err }, 'unhandled error, with its stack');
    }
    else request.log.info({ code: cds.code, status: cds.statusCode }, 'request refused');
    void sendOutcome(reply, cds);
  });
  app.setNotFoundHandler((_request, reply) => {
    void sendOutcome(reply, Errors.notFound());
  });
}
