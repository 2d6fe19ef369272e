import { SpanStatusCode, trace, type Attributes } from '@opentelemetry/api';

/**
 * Spans for the hook call, each FHIR query and each rule evaluation. Without an OpenTelemetry SDK (the default) the API
 * is a no-op. Attributes are codes, counts and outcomes: never patient data, ids, URLs or tokens.
 */
const tracer = trace.getTracer('lbp-imaging-cds');

export async function inSpan<T>(name: string, attributes: Attributes, work: (set: (a: Attributes) => void) => Promise<T>): Promise<T> {
  return tracer.startActiveSpan(name, { attributes }, async (span) => {
    try {
      return await work((a) => span.setAttributes(a));
    } catch (err) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: (err as { code?: string }).code ?? 'error' });
      throw err;
    } finally {
      span.end();
    }
  });
}
