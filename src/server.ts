import closeWithGrace from 'close-with-grace';
import { pino } from 'pino';
import { buildApp, loggerOptions } from './app.js';
import { ConfigError, loadConfig } from './config.js';
import { RulesError } from './rules/load-rules.js';

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

  if (config.auth === 'jwt') {
    // JWT verification is its own feature; until it lands, refusing to start is the only safe answer.
    log.fatal('CDS_AUTH=jwt is not available in this version: set CDS_AUTH=off behind a trusted network, or upgrade');
    process.exit(1);
  }
  log.warn('CDS_AUTH=off: hook calls are not authenticated; run only on a trusted network');

  let app;
  try {
    app = await buildApp({ config, logger: loggerOptions(config) });
  } catch (err) {
    if (err instanceof RulesError) {
      log.fatal({ problems: err.problems }, `rules in ${config.rulesDir} are invalid`);
      process.exit(1);
    }
    throw err;
  }

  closeWithGrace({ delay: 10_000 }, async ({ signal, err }) => {
    if (err) app.log.error({ err }, 'shutting down after an error');
    else app.log.info({ signal }, 'shutting down');
    await app.close();
  });

  await app.listen({ port: config.port, host: config.host });
}

void main();
