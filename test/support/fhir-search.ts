import type { Bundle, FhirResource } from 'fhir/r4.js';

/**
 * Runs a rendered prefetch query against a set of resources, as an EHR would: the read and search forms CDS Hooks 2.0
 * allows (read; search by patient, token equality, _sort, _count). Tests use it to turn a patient into a request, so
 * the fixtures exercise the real prefetch templates.
 */
function subjectOf(r: FhirResource): string | undefined {
  const any = r as { subject?: { reference?: string }; patient?: { reference?: string } };
  return any.subject?.reference ?? any.patient?.reference;
}

function tokenMatches(value: unknown, wanted: string): boolean {
  const [system, code] = wanted.includes('|') ? wanted.split('|', 2) : [undefined, wanted];
  const concepts = Array.isArray(value) ? value : [value];
  return concepts.some((c) => {
    if (typeof c === 'string') return c === code;
    const codings = (c as { coding?: Array<{ system?: string; code?: string }> } | undefined)?.coding ?? [];
    return codings.some((cd) => cd.code === code && (system === undefined || system === '' || cd.system === system));
  });
}

const SORT_FIELDS: Record<string, (r: FhirResource) => string | undefined> = {
  date: (r) => (r as { effectiveDateTime?: string }).effectiveDateTime,
  'recorded-date': (r) => (r as { recordedDate?: string }).recordedDate,
  authoredon: (r) => (r as { authoredOn?: string }).authoredOn,
};

const PARAM_FIELDS: Record<string, string> = { category: 'category', code: 'code', status: 'status', 'clinical-status': 'clinicalStatus' };

export function runQuery(query: string, resources: FhirResource[]): FhirResource | Bundle | null {
  const [path, search] = query.split('?', 2) as [string, string | undefined];
  const [type, id] = path.split('/');
  if (id !== undefined) return resources.find((r) => r.resourceType === type && r.id === id) ?? null;
  const params = new URLSearchParams(search ?? '');
  let hits = resources.filter((r) => r.resourceType === type);
  let count: number | undefined;
  for (const [name, value] of params) {
    if (name === 'patient' || name === 'subject') {
      const ref = value.includes('/') ? value : `Patient/${value}`;
      hits = hits.filter((r) => subjectOf(r) === ref);
    } else if (name === '_count') {
      count = Number(value);
    } else if (name === '_sort') {
      const desc = value.startsWith('-');
      const field = SORT_FIELDS[value.replace(/^-/, '')];
      if (field) hits = [...hits].sort((a, b) => (field(a) ?? '').localeCompare(field(b) ?? '') * (desc ? -1 : 1));
    } else if (PARAM_FIELDS[name]) {
      const field = PARAM_FIELDS[name]!;
      const wanted = value.split(',');
      hits = hits.filter((r) => wanted.some((w) => tokenMatches((r as unknown as Record<string, unknown>)[field], w)));
    } else {
      throw new Error(`test FHIR search does not support ${name}`);
    }
  }
  if (count !== undefined) hits = hits.slice(0, count);
  return { resourceType: 'Bundle', type: 'searchset', total: hits.length, entry: hits.map((resource) => ({ resource })) };
}

export function renderTemplate(template: string, context: Record<string, unknown>): string {
  return template.replace(/\{\{\s*context\.(\w+)\s*\}\}/g, (_m, field: string) => String(context[field] ?? ''));
}
