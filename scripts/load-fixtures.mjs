#!/usr/bin/env node
// Loads the fixture patients (fixtures/scenarios/*.json) into any FHIR R4 server, so the service can be tried without
// prefetch: npm run fixtures:load -- http://localhost:8080/fhir   (FHIR_TOKEN=... adds a bearer token)
// Each resource is PUT with its own id, so running it twice changes nothing. Uses only Node's built-in fetch.
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';

const base = (process.argv[2] ?? '').replace(/\/+$/, '');
if (!/^https?:\/\//.test(base)) {
  console.error('usage: npm run fixtures:load -- <fhir-base-url>');
  process.exit(2);
}
const dir = new URL('../fixtures/scenarios/', import.meta.url).pathname;
const headers = { 'content-type': 'application/fhir+json', accept: 'application/fhir+json' };
if (process.env.FHIR_TOKEN) headers.authorization = `Bearer ${process.env.FHIR_TOKEN}`;

const resources = new Map();
for (const file of (await readdir(dir)).filter((f) => f.endsWith('.json')).sort()) {
  const scenario = JSON.parse(await readFile(join(dir, file), 'utf8'));
  for (const entry of scenario.patient?.entry ?? []) {
    const r = entry.resource;
    if (r?.resourceType && r.id) resources.set(`${r.resourceType}/${r.id}`, r);
  }
}
// Patients first, so references to them resolve on servers that check.
const ordered = [...resources.entries()].sort(([a], [b]) => Number(!a.startsWith('Patient/')) - Number(!b.startsWith('Patient/')));
let failed = 0;
for (const [ref, resource] of ordered) {
  const res = await fetch(`${base}/${ref}`, { method: 'PUT', headers, body: JSON.stringify(resource) });
  if (!res.ok) {
    failed++;
    console.error(`${ref}: HTTP ${res.status} ${(await res.text()).slice(0, 200)}`);
  }
}
console.log(`loaded ${ordered.length - failed} of ${ordered.length} resources into ${base}`);
process.exit(failed > 0 ? 1 : 0);
