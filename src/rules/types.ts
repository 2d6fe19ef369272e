/**
 * The shape of the clinical content in RULES_DIR, as the loader hands it to the rest of the service.
 * The JSON Schemas in rules/schemas/ are the authority on the files; these types mirror them.
 */

export type Normalisation = 'exact' | 'uppercase' | 'strip-dots-uppercase';

export interface CodeSystemDef {
  uris: string[];
  /** URIs that start with one of these mean this system too (SNOMED CT editions). */
  uriPrefixes?: string[];
  normalise: Normalisation;
}

export interface ValueSetCode {
  code: string;
  display?: string;
}

export interface ValueSetPart {
  system: string;
  codes?: Array<string | ValueSetCode>;
  prefixes?: string[];
  ranges?: Array<{ from: string; to: string }>;
}

export interface ValueSetDef {
  id: string;
  title: string;
  description?: string;
  sources: string[];
  notes?: string[];
  include: ValueSetPart[];
  exclude?: ValueSetPart[];
  text?: { anyOf: string[]; wholeWords?: string[]; noneOf?: string[] };
  /** Value sets of opposite meaning: no listed code may be in both. */
  disjointWith?: string[];
}

export interface SiteMapping {
  orders: Array<{ system: string; code: string; display?: string; modality: Modality }>;
  diagnoses: Array<{ system: string; code: string; display?: string; valueSets: string[] }>;
}

/** A comparison on a number; every bound given must hold. */
export interface NumberTest {
  gt?: number;
  gte?: number;
  lt?: number;
  lte?: number;
}

/** How recent a coded finding must be to count (S6: new bladder symptoms, not chronic incontinence). */
export interface RecencyTest {
  /** Counts when it started on or after the onset of the current low back pain episode. */
  withinEpisode?: boolean;
  /** Counts when it started within this many days before the request. */
  days?: number;
}

export type Criterion =
  | { all: Criterion[] }
  | { any: Criterion[] }
  | { not: Criterion }
  | { condition: { valueSet: string; anyClinicalStatus?: boolean; recent?: RecencyTest } }
  | { observation: { valueSet: string; withinDays: number; value: NumberTest & { unit: string } } }
  | { medication: { valueSet: string; minDays: number; withinDays: number; refillGapDays: number } }
  | { use: string }
  | { age: NumberTest }
  | { ageBySex: { male: NumberTest; female: NumberTest; otherwise: NumberTest } }
  | { lasting: { valueSet: string; minDays: number } };

export interface RedFlagCategoryDef {
  id: string;
  label: string;
  /** major: imaging now; the other tiers feed the deferral and X-ray-first rules. */
  tier: 'major' | 'fracture-risk' | 'weaker' | 'radicular';
  /** What imaging fits when this category is found (shown in the card). */
  imagingAdvice: string;
  /** Raises the card's indicator when found: emergencies are critical. */
  indicator?: Indicator;
  evidence: string[];
}

export interface RedFlagDef {
  id: string;
  category: string;
  label: string;
  criteria: Criterion;
  /** What to ask or examine when the record cannot show it. */
  ask?: string;
  evidence: string[];
  notes?: string[];
}

export interface RedFlagsFile {
  /** Named criteria that several flags share ({ "use": "<name>" }). */
  definitions: Record<string, Criterion>;
  categories: RedFlagCategoryDef[];
  flags: RedFlagDef[];
  /** Questions that no record can answer; always shown when imaging is not advised now. */
  alwaysAsk: string[];
}

/** The recommendation codes, in their order of precedence (first wins). */
export const RECOMMENDATION_CODES = [
  'imaging-urgent',
  'imaging-appropriate',
  'red-flags-unverified',
  'imaging-xray-first',
  'imaging-deferred',
  'imaging-not-indicated',
] as const;
export type RecommendationCode = (typeof RECOMMENDATION_CODES)[number];

export type PamaRating = 'appropriate' | 'not-appropriate' | 'no-criteria-apply';
export type Indicator = 'info' | 'warning' | 'critical';

export interface RecommendationDef {
  indicator: Indicator;
  pamaRating: PamaRating;
  /** The card advises against imaging now: the safety guard never lets such a card through when a major red flag is found. */
  advisesAgainstImaging: boolean;
  /** Add the patient-conversation card beside this one. */
  conversation: boolean;
  /** List what to ask and examine that the record cannot show. */
  askAtBedside: boolean;
  /** Suggestion ids from cards text (suggestions section) offered on this card. */
  suggestions: string[];
  evidence: string[];
}

export interface EngineRule {
  name: string;
  conditions: Record<string, unknown>;
  event: { type: string; params?: Record<string, unknown> };
  priority?: number;
}

export interface RecommendationsFile {
  /** First wins when several rules fire. */
  precedence: RecommendationCode[];
  /** Used when no rule fires. */
  default: RecommendationCode;
  recommendations: Record<RecommendationCode, RecommendationDef>;
  rules: EngineRule[];
}

export interface EvidenceDef {
  id: string;
  short: string;
  citation: string;
  doi?: string;
  url?: string;
  finding: string;
  confirmed?: boolean;
}

export type Modality = 'xray' | 'ct' | 'mri';

export interface ScopeFile {
  /** Which value set makes a draft ServiceRequest a lumbar X-ray, CT or MRI. */
  orders: Array<{ modality: Modality; valueSet: string }>;
  /** Low back pain as the order's reason or an active condition of the patient. */
  indicationValueSets: string[];
  /** Conditions whose earliest start marks the start of the current episode. */
  episodeValueSets: string[];
  /** Whole years from which a patient is an adult: the guidelines are adult guidelines, so a younger patient gets no card. */
  adultAgeYears: number;
  /** The follow-up services speak when a back pain condition began within this many days (an open episode). */
  followUpWindowDays: number;
  /** The order the playground and rule tests place per modality, and the reason they give it. */
  testOrders: Record<Modality, { system: string; code: string; display?: string }>;
  testReason: { coding: Array<{ system: string; code: string; display?: string }> };
  /** How far back a finding may have begun and still be new to the current episode (S6). */
  newFindingWindowDays: number;
}

export interface OrderTemplate {
  resourceType: 'ServiceRequest';
  code: { coding: Array<{ system: string; code: string; display?: string }>; text: string };
  [key: string]: unknown;
}

export type SuggestionAction = { type: 'delete' } | { type: 'create'; order: string };

export interface SuggestionsFile {
  suggestions: Record<string, { actions: SuggestionAction[]; notForModalities?: Modality[] }>;
  orders: Record<string, OrderTemplate>;
}

export interface CardText {
  source: { label: string; url: string; topicDisplay: Record<string, string> };
  modalityNames: Record<Modality, string>;
  recommendations: Record<RecommendationCode, { summary: string; advice: string }>;
  detail: {
    checkedHeading: string;
    status: Record<'found' | 'not-found' | 'unknown', string>;
    unreadableNote: string;
    undatedNote: string;
    askHeading: string;
    adviceHeading: string;
    evidenceHeading: string;
    maxSourcesShown: number;
  };
  dataKinds: Record<string, string>;
  sources: Record<'condition' | 'order-reason' | 'measurement' | 'medication-course' | 'age' | 'lasting' | 'unnamed', string>;
  summaryMore: string;
  startBack: { line: string; groups: Record<'low' | 'medium' | 'high', { name: string; advice: string }> };
  suggestions: Record<string, { label: string; descriptions: string[] }>;
  systemAction: { description: string };
  overrideReasons: Array<{ code: string; display: string }>;
}

export interface ScriptStrings {
  language: string;
  title: string;
  summary: string;
  intro: string;
  and: string;
  evidenceHeading: string;
  otherLanguages: string;
  handoutLink: string;
  checkedGroups: Record<string, string>;
  ageWords: Record<string, string>;
  safetyNet: { bladderBowel: string; saddle: string; legWeakness: string; fever: string };
  handoutTitle: string;
  followUp: {
    title: string;
    intro: string;
    summary: string;
    summaryReconsidering: string;
    taskLabel: string;
    taskDescription: string;
    taskText: string;
    groups: Record<'low' | 'medium' | 'high', { name: string; advice: string }>;
  };
}

/** One language of the patient-conversation card and handout: markdown templates and their words. */
export interface ScriptLanguage {
  code: string;
  name: string;
  reviewed: boolean;
  strings: ScriptStrings;
  conversation: string;
  handout: string;
  /** The follow-up visit script (follow-up-reassurance card). */
  followup: string;
  /** Words patient-facing text must not use (rules/language/<code>.json). */
  guide: LanguageGuide;
}

export interface LanguageGuide {
  language: string;
  sources: string[];
  terms: Array<{ avoid: string; match: string[]; instead: string }>;
}

export interface PrevalenceData {
  evidence: string;
  finding: string;
  bands: Array<{ band: string; from: number; to: number; percent: number }>;
}

export interface PrognosisData {
  evidence: string[];
  phases: Array<{ id: 'early' | 'subacute' | 'persistent'; maxDays?: number }>;
  figures: Record<string, number>;
  sources: Record<string, string>;
  reviewWeeks: number;
}

export interface Scripts {
  defaultLanguage: string;
  languages: Map<string, ScriptLanguage>;
  prevalence: PrevalenceData;
  prognosis: PrognosisData;
  /** Evidence cited on the conversation card. */
  evidence: string[];
  /** Evidence cited on the follow-up card. */
  followUpEvidence: string[];
}

export interface QuestionnaireScoring {
  id: string;
  evidence: string[];
  canonicals: string[];
  positive: { codes: string[]; booleans: boolean[]; strings: string[] };
  items: string[];
  psychosocialItems: string[];
  scoring: { lowMaxTotal: number; highMinPsychosocial: number };
  maxAgeDays: number;
  questionnaire: { resourceType: 'Questionnaire'; url: string; title?: string; item: unknown[] };
}

export interface Rules {
  version: string;
  name: string;
  hash: string;
  codeSystems: Record<string, CodeSystemDef>;
  valueSets: Map<string, ValueSetDef>;
  redFlags: RedFlagsFile;
  recommendations: RecommendationsFile;
  evidence: Map<string, EvidenceDef>;
  scope: ScopeFile;
  suggestions: SuggestionsFile;
  cards: CardText;
  scripts: Scripts;
  siteMapping: SiteMapping;
  questionnaires: { startBack: QuestionnaireScoring };
}
