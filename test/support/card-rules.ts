/**
 * The CDS Hooks 2.0 response rules a machine can check (spec invariants cds-resp-1..6 and the JSON rules),
 * plus this project's contract. Returns every violation, so a failing test shows all of them.
 */
import { RECOMMENDATION_CODES } from '../../src/rules/types.js';

const RECOMMENDATION_SYSTEM = 'urn:lbp-imaging-cds:recommendation';
const CODES = new Set<string>([...RECOMMENDATION_CODES, 'patient-conversation', 'follow-up-reassurance']);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function emptyValues(value: unknown, path: string, out: string[]): void {
  if (value === null || value === '') out.push(`${path} is null or empty (CDS Hooks JSON rules)`);
  else if (Array.isArray(value)) {
    if (value.length === 0 && path !== '$.cards') out.push(`${path} is an empty array`);
    value.forEach((v, i) => emptyValues(v, `${path}[${i}]`, out));
  } else if (typeof value === 'object') {
    const entries = Object.entries(value as object);
    if (entries.length === 0) out.push(`${path} is an empty object`);
    for (const [k, v] of entries) emptyValues(v, `${path}.${k}`, out);
  }
}

function isAbsoluteUrl(u: unknown): boolean {
  try {
    return typeof u === 'string' && Boolean(new URL(u).protocol);
  } catch {
    return false;
  }
}

export function cardRuleViolations(response: unknown): string[] {
  const out: string[] = [];
  const r = response as { cards?: unknown[]; systemActions?: unknown[] };
  if (!r || !Array.isArray(r.cards)) return ['response has no cards array'];
  emptyValues(response, '$', out);
  const uuids = new Set<string>();
  r.cards.forEach((raw, i) => {
    const c = raw as Record<string, any>;
    const at = `cards[${i}]`;
    if (typeof c.summary !== 'string' || c.summary.length === 0) out.push(`${at}.summary missing`);
    else if (c.summary.length >= 140) out.push(`${at}.summary is ${c.summary.length} characters (must be < 140)`);
    if (!['info', 'warning', 'critical'].includes(c.indicator)) out.push(`${at}.indicator invalid: ${c.indicator}`);
    if (!c.source || typeof c.source.label !== 'string') out.push(`${at}.source.label missing`);
    if (c.source?.url !== undefined && !isAbsoluteUrl(c.source.url)) out.push(`${at}.source.url not absolute`);
    const topic = c.source?.topic;
    if (!topic || topic.system !== RECOMMENDATION_SYSTEM || !CODES.has(topic.code)) out.push(`${at}.source.topic must be a recommendation Coding`);
    if (topic && (typeof topic.code !== 'string' || typeof topic.system !== 'string')) out.push(`${at}.source.topic needs code and system`);
    if (typeof c.uuid !== 'string' || !UUID.test(c.uuid)) out.push(`${at}.uuid missing or not a UUID`);
    else if (uuids.has(c.uuid)) out.push(`${at}.uuid repeated`);
    else uuids.add(c.uuid);
    if (c.detail !== undefined && typeof c.detail !== 'string') out.push(`${at}.detail not a string`);
    if (c.suggestions !== undefined) {
      if (!['at-most-one', 'any'].includes(c.selectionBehavior)) out.push(`${at}: suggestions need selectionBehavior (cds-resp-6)`);
      const recommended = (c.suggestions as any[]).filter((s) => s.isRecommended).length;
      if (c.selectionBehavior === 'at-most-one' && recommended > 1) out.push(`${at}: more than one isRecommended with at-most-one (cds-resp-1)`);
      (c.suggestions as any[]).forEach((s, j) => {
        if (typeof s.label !== 'string' || !s.label) out.push(`${at}.suggestions[${j}].label missing`);
        if (typeof s.uuid !== 'string' || !UUID.test(s.uuid)) out.push(`${at}.suggestions[${j}].uuid missing`);
        else if (uuids.has(s.uuid)) out.push(`${at}.suggestions[${j}].uuid repeated`);
        else uuids.add(s.uuid);
        (s.actions ?? []).forEach((a: any, k: number) => {
          const where = `${at}.suggestions[${j}].actions[${k}]`;
          if (!['create', 'update', 'delete'].includes(a.type)) out.push(`${where}.type invalid`);
          if (typeof a.description !== 'string' || !a.description) out.push(`${where}.description missing (cds-resp-5)`);
          if (a.type === 'delete' && (typeof a.resourceId !== 'string' || a.resource)) out.push(`${where}: delete needs resourceId and no resource (cds-resp-2)`);
          if ((a.type === 'create' || a.type === 'update') && !a.resource?.resourceType) out.push(`${where}: ${a.type} needs a resource`);
        });
      });
    }
    (c.overrideReasons ?? []).forEach((o: any, j: number) => {
      if (!o.code || !o.system || !o.display) out.push(`${at}.overrideReasons[${j}] needs code, system and display (cds-resp-4)`);
    });
    (c.links ?? []).forEach((l: any, j: number) => {
      if (!l.label || !isAbsoluteUrl(l.url) || !['absolute', 'smart'].includes(l.type)) out.push(`${at}.links[${j}] needs label, absolute url and type`);
      if (l.appContext !== undefined && l.type !== 'smart') out.push(`${at}.links[${j}]: appContext only on smart links (cds-resp-3)`);
    });
    // Links in markdown must also be in `links` (not every client renders markdown links).
    for (const m of String(c.detail ?? '').matchAll(/\]\((https?:[^)\s]+)\)/g)) {
      if (!(c.links ?? []).some((l: any) => l.url === m[1])) out.push(`${at}: detail link ${m[1]} missing from links`);
    }
  });
  (r.systemActions ?? []).forEach((a: any, i: number) => {
    if (!['create', 'update', 'delete'].includes(a.type)) out.push(`systemActions[${i}].type invalid`);
    if (a.type === 'update' && !a.resource?.resourceType) out.push(`systemActions[${i}]: update needs the whole resource`);
  });
  return out;
}
