import type { CodeableConcept, Condition } from 'fhir/r4.js';
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

/** The record's name and code for a concept, or the value set's display when the record has no name. */
export function conceptName(concept: CodeableConcept | undefined, terminology: Terminology, valueSet: string): { name?: string; code?: string } {
  const coding = concept?.coding?.find((c) => c.code);
  const name = concept?.text ?? concept?.coding?.find((c) => c.display)?.display ?? (coding ? terminology.displayOf(valueSet, coding) : undefined);
  return { name, code: coding?.code };
}
