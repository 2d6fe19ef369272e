import type { CodeableConcept, Condition, FhirResource } from 'fhir/r4.js';
import type { Terminology } from '../rules/terminology.js';
import { parseFhirDate } from './dates.js';

export function referenceOf(resource: { resourceType: string; id?: string }): string | undefined {
  return resource.id ? `${resource.resourceType}/${resource.id}` : undefined;
}

const STATUS_SYSTEMS = ['http://terminology.hl7.org/CodeSystem/condition-clinical', 'http://terminology.hl7.org/CodeSystem/condition-ver-status'];

/** The status code from the HL7 code system when present, else the first code given. */
function statusCode(concept: CodeableConcept | undefined): string | undefined {
  const codings = concept?.coding ?? [];
  return (codings.find((c) => c.code && c.system && STATUS_SYSTEMS.includes(c.system)) ?? codings.find((c) => c.code))?.code;
}

const INACTIVE = new Set(['inactive', 'remission', 'resolved']);
const NEVER_COUNTS = new Set(['entered-in-error', 'refuted']);

/**
 * Entered-in-error and refuted conditions never count. Resolved ones count only where a rule says any
 * clinical status will do (a history of malignancy). A condition without a clinical status may be active.
 */
export function isCountableCondition(c: Condition, anyClinicalStatus: boolean): boolean {
  const verification = statusCode(c.verificationStatus);
  if (verification && NEVER_COUNTS.has(verification)) return false;
  if (anyClinicalStatus) return true;
  const clinical = statusCode(c.clinicalStatus);
  return !(clinical && INACTIVE.has(clinical));
}

/** When a condition began, as well as the record tells: onset, else when it was recorded. */
export function conditionStart(c: Condition): Date | undefined {
  return parseFhirDate(conditionStartText(c));
}

export function conditionStartText(c: Condition): string | undefined {
  return c.onsetDateTime ?? c.onsetPeriod?.start ?? c.recordedDate;
}

/** A short human label for a coded concept: its text, a display, or the value set's display. */
export function conceptLabel(concept: CodeableConcept | undefined, terminology: Terminology, valueSet: string): string {
  if (!concept) return 'unnamed entry';
  const coding = concept.coding?.find((c) => c.code);
  const display = concept.text ?? concept.coding?.find((c) => c.display)?.display ?? (coding ? terminology.displayOf(valueSet, coding) : undefined);
  const code = coding?.code;
  if (display && code) return `${display} (${code})`;
  return display ?? code ?? 'unnamed entry';
}

export function isResource(value: unknown): value is FhirResource {
  return typeof value === 'object' && value !== null && typeof (value as { resourceType?: unknown }).resourceType === 'string';
}
