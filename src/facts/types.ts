import type { CodeableConcept, Condition, FhirResource, MedicationRequest, Observation, Patient, QuestionnaireResponse, ServiceRequest } from 'fhir/r4.js';
import type { Modality, RecommendationCode } from '../rules/types.js';

/** The kinds of record data the red-flag check reads: data of these kinds that cannot be read makes a check unknown. */
export const RED_FLAG_KINDS = ['Patient', 'Condition', 'Observation', 'MedicationRequest'] as const;
/** Every kind the services read: the red-flag kinds, STarT Back responses and earlier imaging orders. */
export const DATA_KINDS = [...RED_FLAG_KINDS, 'QuestionnaireResponse', 'ServiceRequest'] as const;
export type DataKind = (typeof DATA_KINDS)[number];

/**
 * Resources of one kind, and whether they are the whole story.
 * `complete: false` means some of this data could not be read (an OperationOutcome in prefetch,
 * a FHIR error, a page we could not follow): what is present still counts, but absence proves nothing.
 */
export interface DataSlice<T> {
  items: T[];
  complete: boolean;
}

export interface ClinicalData {
  Patient: DataSlice<Patient>;
  Condition: DataSlice<Condition>;
  Observation: DataSlice<Observation>;
  MedicationRequest: DataSlice<MedicationRequest>;
  QuestionnaireResponse: DataSlice<QuestionnaireResponse>;
  ServiceRequest: DataSlice<ServiceRequest>;
  /** Resources the others point to (a Medication included with its MedicationRequest), by "Type/id". */
  referenced: Map<string, FhirResource>;
}

export type FlagStatus = 'found' | 'not-found' | 'unknown';

/** A resource (or the order itself) that shows a finding, as data: the card puts it into words (rules/cards). */
export interface FindingSource {
  reference?: string;
  kind: 'condition' | 'order-reason' | 'measurement' | 'medication-course' | 'age' | 'lasting';
  /** The record's own name for it (text or display), and its code. */
  name?: string;
  code?: string;
  /** A measured value with its unit, as recorded. */
  value?: string;
  /** YYYY-MM-DD: when measured, when a course or condition began. */
  date?: string;
  days?: number;
  age?: number;
  sex?: string;
}

export interface CriterionResult {
  status: FlagStatus;
  /** Why it is found (when found). */
  sources: FindingSource[];
  /** Data kinds that could not be read and could have changed the answer (when unknown). */
  unreadable: DataKind[];
}

export interface RedFlagResult extends CriterionResult {
  id: string;
  category: string;
  label: string;
}

export interface CategoryResult {
  id: string;
  label: string;
  tier: string;
  status: FlagStatus;
  flags: RedFlagResult[];
}

export type Sex = 'male' | 'female' | 'other' | 'unknown';

export interface EpisodeFacts {
  /** Earliest recorded start of the current low back pain episode. */
  onset?: string;
  durationDays?: number;
}

/** A draft order the service has an opinion on. */
export interface InScopeOrder {
  /** "ServiceRequest/<id>", as the EHR knows it. */
  reference: string;
  resource: ServiceRequest;
  modality: Modality;
  /** The order's own reasons; they count as current diagnoses. */
  reasons: CodeableConcept[];
  /** The order points to a reason the check could not read: its conditions are then not the whole story. */
  hiddenReason?: boolean;
}

export interface ClinicalFacts {
  age?: number;
  sex: Sex;
  /** The patient's languages (BCP-47), preferred first, from Patient.communication. */
  languages: string[];
  episode: EpisodeFacts;
  redFlags: RedFlagResult[];
  categories: CategoryResult[];
  /** Red-flag data kinds that could not be fully read. */
  unreadable: DataKind[];
  /** The newest scored STarT Back, when the record has one. */
  startBack?: StartBackResult;
}

export type StartBackGroup = 'low' | 'medium' | 'high';
export interface StartBackResult {
  group: StartBackGroup;
  total: number;
  psychosocial: number;
  authored?: string;
  reference?: string;
}

export interface Assessment {
  order: InScopeOrder;
  facts: ClinicalFacts;
  recommendation: RecommendationCode;
  /** Names of the rules that fired, for audit and the playground. */
  firedRules: string[];
  /** Set when the safety guard had to overrule the rules. */
  guardNote?: string;
}
