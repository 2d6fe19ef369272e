import type { Bundle, FhirResource } from 'fhir/r4.js';

/** CDS Hooks 2.0 wire types (https://cds-hooks.hl7.org/2.0/). */

export interface CdsCoding {
  system: string;
  code: string;
  display?: string;
}

export interface CdsAction {
  type: 'create' | 'update' | 'delete';
  description: string;
  resource?: FhirResource;
  resourceId?: string;
}

export interface CdsSuggestion {
  label: string;
  uuid: string;
  isRecommended?: boolean;
  actions: CdsAction[];
}

export interface CdsLink {
  label: string;
  url: string;
  type: 'absolute' | 'smart';
  appContext?: string;
}

export interface CdsCard {
  uuid: string;
  summary: string;
  detail?: string;
  indicator: 'info' | 'warning' | 'critical';
  source: { label: string; url?: string; icon?: string; topic?: CdsCoding };
  suggestions?: CdsSuggestion[];
  selectionBehavior?: 'at-most-one' | 'any';
  overrideReasons?: CdsCoding[];
  links?: CdsLink[];
  extension?: Record<string, unknown>;
}

export interface CdsResponse {
  cards: CdsCard[];
  systemActions?: CdsAction[];
  extension?: Record<string, unknown>;
}

export interface FhirAuthorization {
  access_token: string;
  token_type: string;
  expires_in: number;
  scope: string;
  subject: string;
  patient?: string;
}

export interface HookRequest {
  hook: string;
  hookInstance: string;
  fhirServer?: string;
  fhirAuthorization?: FhirAuthorization;
  context: {
    userId: string;
    patientId: string;
    encounterId?: string;
    selections?: string[];
    draftOrders: Bundle;
    [key: string]: unknown;
  };
  prefetch?: Record<string, FhirResource | null>;
  extension?: Record<string, unknown>;
}

export interface ServiceDefinition {
  id: string;
  hook: string;
  title: string;
  description: string;
  prefetch: Record<string, string>;
  usageRequirements?: string;
  extension?: Record<string, unknown>;
}
