
/**
 * OpenTelemetry tracing, off unless the standard variables ask for it (OTEL_TRACES_EXPORTER, or an OTLP endpoint).
 * The SDK reads OTEL_* itself (exporter, endpoint, headers, service name, sampler). Spans: the fastify request, the hook
 * call, each FHIR query and each rule evaluation, with codes and outcomes as attributes, never patient data.
 */
export function tracingRequested(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.OTEL_SDK_DISABLED === 'true' || env.OTEL_TRACES_EXPORTER === 'none') return false;
  return Boolean(env.OTEL_TRACES_EXPORTER || env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
}

export async function startTracing(): Promise<() => Promise<void>> {
  // Loaded only when asked for: the SDK is large and most sites do not trace.
  const { NodeSDK } = await import('@opentelemetry/sdk-node');
  const { FastifyOtelInstrumentation } = await import('@fastify/otel');
  const sdk = new NodeSDK({
    serviceName: process.env.OTEL_SERVICE_NAME ?? 'lbp-imaging-cds',
    instrumentations: [
      new FastifyOtelInstrumentation({
        registerOnInitialization: true,
        // Probes and scrapes are noise in a trace store.
        ignorePaths: (route) => ['/healthz', '/readyz', '/metrics'].includes(route.url),
      }),
    ],
  });
  sdk.start();
  return () => sdk.shutdown();
}
