import { stdSerializers } from 'pino';
import type { FastifyServerOptions } from 'fastify';
import type { Config } from '../config.js';

/** What the log keeps of an error at info and above: its type, code and message (status for HTTP errors), never the stack. */
export function errorWithoutStack(err: unknown): Record<string, unknown> {
  if (typeof err !== 'object' || err === null) return { message: String(err) };
  const { name, message, code, statusCode } = err as { name?: unknown; message?: unknown; code?: unknown; statusCode?: unknown };
  return {
    ...(err instanceof Error ? { type: name } : {}),
    message: String(message),
    ...(code !== undefined ? { code } : {}),
    ...(statusCode !== undefined ? { statusCode } : {}),
  };
}

/** Logs never carry tokens or patient data: auth headers and FHIR tokens are redacted wherever they appear. */
export function loggerOptions(config: Config): FastifyServerOptions['logger'] {
  const verbose = config.logLevel === 'debug' || config.logLevel === 'trace';
  return {
    level: config.logLevel,
    // An error is logged as its code and message; its stack only when debugging (a stack names files and can hold data).
    serializers: { err: verbose ? stdSerializers.err : (errorWithoutStack as unknown as typeof stdSerializers.err) },
    // Nothing logs request bodies or FHIR data; these paths are a second line of defence if something ever does.
    redact: {
      paths: [
        'req.headers.authorization',
        'headers.authorization',
        'authorization',
        'fhirAuthorization',
        '*.fhirAuthorization',
        '*.access_token',
        'body',
        'req.body',
        'prefetch',
        '*.prefetch',
        'context',
        '*.context',
        '*.name',
        '*.birthDate',
        '*.identifier',
        '*.text',
        '*.note',
      ],
      censor: '[redacted]',
    },
  };
}
