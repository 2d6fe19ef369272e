import type { HookResult } from '../cds-hooks/handle-hook.js';
import type { HookRequest } from '../cds-hooks/types.js';
import type { AuditRecord } from './audit-writer.js';

/** The keyed hash that stands for a patient in the audit; the follow-up hook finds earlier calls by it, so both use this. */
export function patientHash(hash: (value: string) => string, patientId: string): string {
  return hash(`Patient/${patientId}`);
}

/**
 * What the audit keeps of a hook call that returned cards: when, which service, the cards with their recommendations,
 * red-flag statuses, fired rules and suggestions, the rules version and the duration. Identities only as keyed hashes;
 * no names, dates of birth or free text.
 */
export function auditRecord(args: {
  request: HookRequest;
  service: string;
  result: HookResult;
  rulesVersion: string;
  durationMs: number;
  at: Date;
  hash: (value: string) => string;
}): AuditRecord | undefined {
  const { request, result, at } = args;
  if (result.response.cards.length === 0) return undefined;
  const iso = at.toISOString();
  const byOrder = new Map(result.assessments.map((a) => [a.order.reference, a]));
  return {
    call: {
      hook_instance: request.hookInstance,
      service: args.service,
      at: iso,
      rules_version: args.rulesVersion,
      duration_ms: Math.round(args.durationMs * 100) / 100,
      patient_hash: patientHash(args.hash, request.context.patientId),
      user_hash: args.hash(request.context.userId),
      orders: result.assessments.length,
    },
    cards: result.response.cards.map((card) => {
      const order = String((card.extension?.['lbp-imaging-cds'] as { order?: string } | undefined)?.order ?? '');
      const assessment = byOrder.get(order);
      return {
        card_uuid: card.uuid,
        hook_instance: request.hookInstance,
        service: args.service,
        at: iso,
        day: iso.slice(0, 10),
        recommendation: card.source.topic?.code ?? 'unknown',
        order_ref: order,
        red_flags: JSON.stringify(Object.fromEntries((assessment?.facts.categories ?? []).map((c) => [c.id, c.status]))),
        fired_rules: JSON.stringify(card.source.topic?.code === 'patient-conversation' ? [] : (assessment?.firedRules ?? [])),
        suggestions: JSON.stringify((card.suggestions ?? []).map((s) => ({ uuid: s.uuid, kind: result.suggestionKinds.get(s.uuid) ?? 'unknown' }))),
        rules_version: args.rulesVersion,
      };
    }),
  };
}
