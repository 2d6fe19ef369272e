import type { LoadedRules } from '../rules/load-rules.js';
import { Errors } from '../errors.js';
import { deriveFacts, patientFacts, type PatientFacts } from '../facts/derive-facts.js';
import { lowBackPainOrders, lumbarImagingOrders } from '../facts/order-scope.js';
import type { Assessment } from '../facts/types.js';
import { recommend } from '../decision/recommend.js';
import { inSpan } from '../observability/tracing.js';
import { applySafetyGuard } from '../decision/safety-guard.js';
import { recommendationCard } from '../cards/recommendation-card.js';
import { conversationCard } from '../cards/conversation-card.js';
import { ratingAction } from '../cards/system-actions.js';
import type { CardContext } from '../cards/card-context.js';
import { conditionsInDraftOrders } from './prefetch.js';
import { readRecord } from './read-record.js';
import type { FhirCall } from '../fhir/fhir-fetch.js';
import type { CatalogEntry } from './service-catalog.js';
import type { CdsAction, CdsCard, CdsResponse, HookRequest } from './types.js';
import { validateHookRequest, type FhirServerPolicy } from './validate-request.js';

export interface HookDeps {
  rules: LoadedRules;
  now: () => Date;
  newId: () => string;
  baseUrl: string;
  /** CDS_DEADLINE_MS: the most time one call may take, FHIR queries included. */
  deadlineMs: number;
  /** Pages of one search the service follows on the EHR's FHIR server. */
  fhirMaxPages: number;
  /** Bytes one search may bring from the FHIR server, all pages together, on the wire and decompressed. */
  fhirMaxResponseBytes: number;
  /** Entries one search (or one prefetch Bundle) may bring; more makes that data unreadable. */
  fhirMaxEntries: number;
  /** Which fhirServer values a request may name. */
  fhirServers: FhirServerPolicy;
}


/** What the log may say about a call: counts and codes, never patient data. */
export interface HookSummary {
  orders: number;
  recommendations: string[];
  unreadableKeys: Array<{ key: string; reason: string }>;
  overruled: string[];
  fhirCalls: FhirCall[];
}

export interface HookResult {
  response: CdsResponse;
  assessments: Assessment[];
  summary: HookSummary;
  /** Suggestion uuid -> suggestion kind (remove-order, replace-with-xray...). */
  suggestionKinds: Map<string, string>;
}

/** Whether the record says the patient is younger than the age from which the guidelines apply. */
export function isChild(patient: Pick<PatientFacts, 'age'>, rules: LoadedRules): boolean {
  return patient.age !== undefined && patient.age < rules.scope.adultAgeYears;
}

/** One hook call, from a validated request to the response: CDS Hooks protocol -> FHIR data -> facts -> rules -> cards. */
export async function handleHook(request: HookRequest, service: CatalogEntry, deps: HookDeps, startedAt = performance.now()): Promise<HookResult> {
  validateHookRequest(request, service, deps.fhirServers);
  const { rules } = deps;
  const context = request.context;
  const selections = service.definition.hook === 'order-select' ? context.selections : undefined;
  const summary: HookSummary = { orders: 0, recommendations: [], unreadableKeys: [], overruled: [], fhirCalls: [] };

  const imaging = lumbarImagingOrders(context.draftOrders, selections, rules, rules.terminology);
  const suggestionKinds = new Map<string, string>();
  if (imaging.length === 0) return { response: { cards: [] }, assessments: [], summary, suggestionKinds };

  const prefetch = await readRecord(request, service, deps, startedAt, summary);
  // Conditions the EHR sends beside the orders (diagnoses entered with them) are part of the record.
  const bundled = conditionsInDraftOrders(context.draftOrders, context.patientId);
  if (bundled.length > 0) prefetch.data.Condition.items.push(...bundled);
  const orders = lowBackPainOrders(imaging, prefetch.data, rules, rules.terminology);
  if (orders.length === 0) return { response: { cards: [] }, assessments: [], summary, suggestionKinds };
  const now = deps.now();
  // Adult guidelines: a child gets no card. An age that cannot be known counts as an adult's (the rules then treat it as unknown).
  const patient = patientFacts(prefetch.data, rules, rules.terminology, now);
  if (isChild(patient, rules)) return { response: { cards: [] }, assessments: [], summary, suggestionKinds };
  const assessments: Assessment[] = [];
  // What the record shows is worked out once per call, whatever the number of orders.
  const memo = new Map();
  for (const order of orders) {
    const facts = deriveFacts(prefetch.data, order, rules, rules.terminology, now, memo, patient);
    const decision = await inSpan('rules.evaluate', { 'cds.modality': order.modality }, async (set) => {
      const d = recommend(facts, order, rules);
      set({ 'cds.recommendation': d.recommendation, 'cds.fired_rules': d.firedRules.join(',') });
      return d;
    });
    const guarded = applySafetyGuard(decision.recommendation, facts, rules);
    if (guarded.overruled) summary.overruled.push(guarded.overruled);
    assessments.push({
      order,
      facts,
      recommendation: guarded.recommendation,
      firedRules: decision.firedRules,
      guardNote: guarded.overruled,
    });
  }

  const ctx: CardContext = {
    patientId: context.patientId,
    userId: context.userId,
    encounterId: context.encounterId,
    baseUrl: deps.baseUrl,
    rulesVersion: rules.label,
    newId: deps.newId,
    noteSuggestion: (uuid, kind) => suggestionKinds.set(uuid, kind),
  };
  const cards: CdsCard[] = [];
  const systemActions: CdsAction[] = [];
  for (const a of assessments) {
    cards.push(recommendationCard(a, rules, ctx));
    systemActions.push(ratingAction(a, rules));
  }
  // One script per call is enough, even when several orders would each earn one.
  const talk = assessments.find((a) => rules.recommendations.recommendations[a.recommendation].conversation);
  if (talk) cards.push(conversationCard(talk, rules, ctx));
  summary.orders = assessments.length;
  summary.recommendations = assessments.map((a) => a.recommendation);

  const response: CdsResponse = { cards };
  if (systemActions.length > 0) {
    response.systemActions = systemActions;
    // The CDS Hooks sandbox reads system actions only from the pre-2.0 place (README, Connecting an EHR).
    response.extension = { systemActions };
  }
  return { response, assessments, summary, suggestionKinds };
}
