// A FHIR server stand-in for the fallback benchmark: answers each search with the resources of one example request's
// prefetch, after a fixed delay (LATENCY_MS), so the cost of the service's parallel queries can be read against it.
import { readFileSync } from 'node:fs';
import Fastify from 'fastify';

const request = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const latency = Number(process.env.LATENCY_MS ?? 20);
const byType = {
  Patient: request.prefetch.patient,
  Condition: request.prefetch.conditions,
  Observation: request.prefetch.temperature,
  MedicationRequest: request.prefetch.medications,
  QuestionnaireResponse: request.prefetch.startBack,
};
const app = Fastify({ logger: false });
app.get('/fhir/*', async (req, reply) => {
  const type = req.url.slice('/fhir/'.length).split(/[/?]/)[0];
  await new Promise((r) => setTimeout(r, latency));
  const body = byType[type];
  if (!body) return reply.code(404).send({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'not-found' }] });
  return reply.type('application/fhir+json').send(body);
});
await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' });
process.stdout.write('ready\n');
