import closeWithGrace from 'close-with-grace';
import { pino } from 'pino';
import { buildApp } from './app.js';
import { loggerOptions } from './observability/logging.js';
import { ConfigError, loadConfig } from './config.js';
import { RulesError } from './rules/load-rules.js';
import { TrustedIssuersError } from './auth/trusted-issuers.js';
import { startTracing, tracingRequested } from './telemetry.js';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  const log = pino(loggerOptions(config) as object);

  if (config.auth === 'off') log.warn('CDS_AUTH=off: hook calls are not authenticated; run only on a trusted network');
  else if (!config.trustedIssuersFile) log.warn('CDS_AUTH=jwt and no CDS_TRUSTED_ISSUERS: every call to /cds-services will be refused until issuers are configured');

  const stopTracing = tracingRequested() ? await startTracing() : undefined;
  if (stopTracing) log.info('OpenTelemetry tracing on (OTEL_* variables)');

  let app;
  try {
    app = await buildApp({ config, logger: loggerOptions(config) });
  } catch (err) {
    if (err instanceof RulesError) {
      log.fatal({ problems: err.problems }, `rules in ${config.rulesDir} are invalid`);
      process.exit(1);
    }
    if (err instanceof TrustedIssuersError) {
      log.fatal(err.message);
      process.exit(1);
    }
    // Anything else (a database that answers but refuses the migrations): one clear line, no stack trace.
    log.fatal({ code: (err as { code?: string }).code }, `cannot start: ${(err as Error).message}`);
    process.exit(1);
  }

  // SIGTERM: drain (readiness fails, connections close after their response), then stop accepting, finish the calls in
  // flight, flush the audit queue and close the store; close-with-grace exits anyway after 10 s.
  closeWithGrace({ delay: 10_000 }, async ({ signal, err }) => {
    if (err) app.log.error({ err: { code: (err as { code?: string }).code, message: err.message } }, 'shutting down after an error');
    else app.log.info({ signal, drainMs: config.shutdownDrainMs }, 'shutting down');
    app.draining = true;
    await new Promise((r) => setTimeout(r, config.shutdownDrainMs));
    await app.close();
    await stopTracing?.();
  });

  try {
    await app.listen({ port: config.port, host: config.host });
  } catch (err) {
    // A port in use, or a route registered outside its authenticated scope (checked when the app gets ready).
    log.fatal({ code: (err as { code?: string }).code }, `cannot start: ${(err as Error).message}`);
    process.exit(1);
  }
}

void main();
