// One saturating load run (autocannon), in a process of its own so the garbage of 50 connections stays out of the process
// that times the sequential and steady-rate calls. Config: a JSON file named by the first argument:
// { url, bodyFile, connections, seconds, tokensFile? } (tokensFile: a JSON array of bearer tokens, one per call).
// Prints { rps, p50, p99, errors } as JSON.
import { readFileSync } from 'node:fs';
import autocannon from 'autocannon';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const body = readFileSync(config.bodyFile, 'utf8');
const tokens = config.tokensFile ? JSON.parse(readFileSync(config.tokensFile, 'utf8')) : undefined;
let next = 0;
const result = await autocannon({
  url: config.url,
  method: 'POST',
  connections: config.connections,
  duration: config.seconds,
  requests: [
    {
      method: 'POST',
      body,
      setupRequest: (req) => {
        const headers = { ...req.headers, 'content-type': 'application/json' };
        if (tokens) {
          if (next >= tokens.length) throw new Error('token pool exhausted; raise the pool size');
          headers.authorization = `Bearer ${tokens[next++]}`;
        }
        return { ...req, headers };
      },
    },
  ],
});
process.stdout.write(JSON.stringify({ rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, errors: result.errors + result.non2xx }));
