// The physical limit for comparison: fastify parsing the same hook request and answering one fixed card: a small one, or
// (ANSWER_FILE) a saved answer of the service, to tell the cost of the answer's size from the cost of the clinical work.
import { readFileSync } from 'node:fs';
import Fastify from 'fastify';

const app = Fastify({ logger: false, bodyLimit: 16 * 1024 * 1024 });
const card = process.env.ANSWER_FILE
  ? JSON.parse(readFileSync(process.env.ANSWER_FILE, 'utf8'))
  : { cards: [{ uuid: '00000000-0000-4000-8000-000000000000', summary: 'fixed', indicator: 'info', source: { label: 'bare' } }] };
app.post('/cds-services/:id', async (request) => {
  if (!request.body || typeof request.body !== 'object') throw new Error('no body');
  return card;
});
await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' });
process.stdout.write('ready\n');
