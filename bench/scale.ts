/**
 * Inputs for the scaling rows of the benchmark: a rules folder with N times the red flags and recommendation rules, and a
 * hook request whose record holds many Conditions and Observations. The copies are clinically inert (same criteria, same
 * outcomes), so the answer stays the same and only the cost moves.
 */
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

interface Named {
  id?: string;
  name?: string;
}

/** Copies `rulesDir` to a temporary folder and repeats every red flag and every recommendation rule `factor` times. */
export function scaledRulesDir(rulesDir: string, factor: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'lbp-bench-rules-'));
  cpSync(rulesDir, dir, { recursive: true });
  const redFlagsFile = join(dir, 'red-flags.json');
  const redFlags = JSON.parse(readFileSync(redFlagsFile, 'utf8')) as { flags: Named[] };
  redFlags.flags = redFlags.flags.flatMap((f) => Array.from({ length: factor }, (_, k) => (k === 0 ? f : { ...f, id: `${f.id}-copy-${k}` })));
  writeFileSync(redFlagsFile, JSON.stringify(redFlags));
  const recommendationsFile = join(dir, 'recommendations.json');
  const recommendations = JSON.parse(readFileSync(recommendationsFile, 'utf8')) as { rules: Named[] };
  recommendations.rules = recommendations.rules.flatMap((r) => Array.from({ length: factor }, (_, k) => (k === 0 ? r : { ...r, name: `${r.name}-copy-${k}` })));
  writeFileSync(recommendationsFile, JSON.stringify(recommendations));
  return dir;
}

interface HookRequest {
  context: { patientId: string };
  prefetch: Record<string, { entry?: Array<{ resource: unknown }>; total?: number }>;
}

/**
 * Adds `resources` entries to the request's record, half Conditions (long-standing problems that are no red flag) and
 * half body-temperature Observations without fever, spread over the last five years.
 */
export function scaledRecord(request: HookRequest, resources: number): HookRequest {
  const copy = structuredClone(request);
  const patient = `Patient/${copy.context.patientId}`;
  const day = 86_400_000;
  const conditions = Array.from({ length: Math.floor(resources / 2) }, (_, i) => ({
    resource: {
      resourceType: 'Condition',
      id: `bench-cond-${i}`,
      clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: i % 3 === 0 ? 'resolved' : 'active' }] },
      verificationStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-ver-status', code: 'confirmed' }] },
      category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-category', code: 'problem-list-item' }] }],
      code: { coding: [{ system: 'http://snomed.info/sct', code: String(100_000 + i), display: `Bench problem ${i}` }], text: `Bench problem ${i}` },
      subject: { reference: patient },
      onsetDateTime: new Date(Date.now() - (i % 1800) * day).toISOString().slice(0, 10),
    },
  }));
  const observations = Array.from({ length: resources - conditions.length }, (_, i) => ({
    resource: {
      resourceType: 'Observation',
      id: `bench-temp-${i}`,
      status: 'final',
      category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'vital-signs' }] }],
      code: { coding: [{ system: 'http://loinc.org', code: '8310-5', display: 'Body temperature' }] },
      subject: { reference: patient },
      effectiveDateTime: new Date(Date.now() - (i % 1800) * day).toISOString(),
      valueQuantity: { value: 36.4 + (i % 7) / 10, unit: 'Cel', system: 'http://unitsofmeasure.org', code: 'Cel' },
    },
  }));
  const add = (key: string, entries: Array<{ resource: unknown }>) => {
    const bundle = copy.prefetch[key]!;
    bundle.entry = [...(bundle.entry ?? []), ...entries];
    bundle.total = bundle.entry.length;
  };
  add('conditions', conditions);
  add('temperature', observations);
  return copy;
}

/** The request with as many added resources as take it to at least `bytes` of JSON. */
export function recordOfSize(request: HookRequest, bytes: number): HookRequest {
  let resources = 0;
  let grown = request;
  while (JSON.stringify(grown).length < bytes) grown = scaledRecord(request, (resources += 2));
  return grown;
}
