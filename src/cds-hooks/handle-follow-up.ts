import type { ServiceRequest, Task } from 'fhir/r4.js';
import { Errors } from '../errors.js';
import { episodeFacts, languagesOf } from '../facts/derive-facts.js';
import { scoreStartBack } from '../facts/start-back.js';
import { addDays, ageInYears, daysBetween, parseFhirDate } from '../fhir/dates.js';
import { conditionStart, isCountableCondition } from '../fhir/resources.js';
import { RECOMMENDATION_SYSTEM } from '../cards/recommendation-card.js';
import { evidenceSection } from '../cards/evidence-links.js';
import { fill, renderMarkdown } from '../cards/template.js';
import { chooseLanguage, prognosisPhase } from '../scripts/script-view.js';
import type { FollowUpMemory } from '../store/follow-up.js';
import { isChild, type HookDeps, type HookResult, type HookSummary } from './handle-hook.js';
import { readRecord } from './read-record.js';
import { validateRequestBasics } from './validate-request.js';
import type { CatalogEntry } from './service-catalog.js';
import type { CdsCard, CdsSuggestion, HookRequest } from './types.js';

export interface FollowUpDeps extends HookDeps {
  /** The store's memory; it answers even when the store is down (see storeFollowUpMemory), within a bounded wait. */
  memory: FollowUpMemory;
}

const quiet = (summary: HookSummary): HookResult => ({ response: { cards: [] }, assessments: [], summary, suggestionKinds: new Map() });

/**
 * patient-view and encounter-start: for a patient with an open low back pain episode, one short info card that repeats the
 * reassurance, asks again about warning signs, and notes when an earlier scan was advised against and not done. Quiet by
 * design: nothing without an open episode, and at most once per encounter (or per patient and day without one).
 */
export async function handleFollowUp(request: HookRequest, service: CatalogEntry, deps: FollowUpDeps, startedAt = performance.now()): Promise<HookResult> {
  const hook = service.definition.hook;
  if (request.hook !== hook) throw Errors.invalidRequest(`Service "${service.definition.id}" answers the ${hook} hook, not "${request.hook}"`);
  validateRequestBasics(request, deps.fhirServers);
  if (hook === 'encounter-start' && !request.context.encounterId) throw Errors.invalidRequest('encounter-start needs context.encounterId');

  const summary: HookSummary = { orders: 0, recommendations: [], unreadableKeys: [], overruled: [], fhirCalls: [] };
  const { rules } = deps;
  const now = deps.now();
  const { data } = await readRecord(request, service, deps, startedAt, summary);
  // Adult guidelines: a child gets no card (an unknown age counts as an adult's).
  if (isChild({ age: ageInYears(data.Patient.items[0]?.birthDate, now) }, rules)) return quiet(summary);

  // An open episode: a back pain condition that began within the window.
  const since = addDays(now, -rules.scope.followUpWindowDays);
  const recent = data.Condition.items.filter((c) => {
    if (!isCountableCondition(c, false)) return false;
    if (!rules.scope.episodeValueSets.some((vs) => rules.terminology.matchConcept(vs, c.code))) return false;
    const start = conditionStart(c);
    return start !== undefined && start >= since;
  });
  if (recent.length === 0) return quiet(summary);
  const episode = episodeFacts({ ...data, Condition: { items: recent, complete: true } }, rules, rules.terminology, now);

  const key = request.context.encounterId ? `encounter|${request.context.encounterId}` : `patient|${request.context.patientId}|${now.toISOString().slice(0, 10)}`;
  if (!(await deps.memory.firstTime(key, now))) return quiet(summary);

  // An earlier lumbar imaging order that was withdrawn (in the record), or advice against imaging that was acted on (in our audit).
  const withdrawn = data.ServiceRequest.items.some((o: ServiceRequest) => {
    if (o.status !== 'revoked') return false;
    const when = parseFhirDate(o.authoredOn);
    return (!when || when >= since) && rules.scope.orders.some((s) => rules.terminology.matchConcept(s.valueSet, o.code));
  });
  const reconsidering = withdrawn || (await deps.memory.imagingAdviceActedOn(request.context.patientId, since));

  const language = chooseLanguage(languagesOf(data.Patient.items[0]), rules.scripts);
  const fu = language.strings.followUp;
  const startBack = scoreStartBack(data.QuestionnaireResponse.items, rules.questionnaires.startBack, now);
  const days = episode.durationDays ?? 0;
  const weeks = Math.max(1, Math.floor(days / 7) + 1);
  const phase = prognosisPhase(days, rules.scripts);
  const view = {
    strings: language.strings,
    weeks,
    early: phase?.id === 'early',
    subacute: phase?.id === 'subacute',
    persistent: phase?.id === 'persistent',
    figures: rules.scripts.prognosis.figures,
    reviewWeeks: rules.scripts.prognosis.reviewWeeks,
    reconsidering,
    startBack: startBack ? { groupName: fu.groups[startBack.group].name, advice: fu.groups[startBack.group].advice } : undefined,
  };
  const evidence = evidenceSection([...rules.scripts.followUpEvidence, ...(startBack ? rules.questionnaires.startBack.evidence : [])], rules.evidence);

  const suggestions: CdsSuggestion[] = [];
  const suggestionKinds = new Map<string, string>();
  if (!startBack) {
    const questionnaire = rules.questionnaires.startBack.questionnaire;
    const task: Task = {
      resourceType: 'Task',
      id: deps.newId(),
      status: 'requested',
      intent: 'order',
      code: { text: fu.taskText },
      description: fu.taskText,
      for: { reference: `Patient/${request.context.patientId}` },
      ...(request.context.encounterId ? { encounter: { reference: `Encounter/${request.context.encounterId}` } } : {}),
      ...(/^(Practitioner|PractitionerRole)\//.test(request.context.userId) ? { requester: { reference: request.context.userId } } : {}),
      authoredOn: now.toISOString(),
      input: [{ type: { text: 'questionnaire' }, valueCanonical: questionnaire.url }],
    };
    const uuid = deps.newId();
    suggestionKinds.set(uuid, 'request-start-back');
    suggestions.push({ label: fu.taskLabel, uuid, actions: [{ type: 'create', description: fu.taskDescription, resource: task }] });
  }

  const card: CdsCard = {
    uuid: deps.newId(),
    summary: fill(reconsidering ? fu.summaryReconsidering : fu.summary, { weeks }),
    detail: [renderMarkdown(language.followup, view), '', `**${language.strings.evidenceHeading}**`, ...evidence.lines].join('\n'),
    indicator: 'info',
    source: {
      label: rules.cards.source.label,
      url: fill(rules.cards.source.url, { baseUrl: deps.baseUrl }),
      topic: { system: RECOMMENDATION_SYSTEM, code: 'follow-up-reassurance', display: rules.cards.source.topicDisplay['follow-up-reassurance'] ?? 'follow-up-reassurance' },
    },
    links: evidence.links,
    extension: { 'lbp-imaging-cds': { rulesVersion: rules.label, language: language.code, episodeDays: days, reconsidering } },
  };
  if (suggestions.length > 0) {
    card.suggestions = suggestions;
    card.selectionBehavior = 'at-most-one';
  }
  summary.recommendations = ['follow-up-reassurance'];
  return { response: { cards: [card] }, assessments: [], summary, suggestionKinds };
}
