import type { CodeableConcept, Coding } from 'fhir/r4.js';
import type { CodeSystemDef, Normalisation, ValueSetDef, ValueSetPart } from './types.js';

/** Answers "is this coding in that value set?" for the value sets of one rules version. */
export interface Terminology {
  matchCoding(valueSetId: string, coding: Coding): boolean;
  /**
   * The first coding of the concept that is in the value set. With `byName`, a value set that has `text` also matches the
   * concept's text and displays (codes it does not list: SNOMED CT descendants, local codes, text-only entries).
   */
  matchConcept(valueSetId: string, concept: CodeableConcept | undefined, options?: { byName?: boolean; names?: ConceptNames }): Coding | undefined;
  /** The display the value set gives for a code, if any. */
  displayOf(valueSetId: string, coding: Coding): string | undefined;
  /** Whether the concept says anything the service can read: a coding in a known code system, or a name. */
  isInterpretable(concept: CodeableConcept | undefined): boolean;
}

interface CompiledPart {
  codes: Set<string>;
  prefixes: string[];
  ranges: Array<{ from: string; to: string }>;
}

interface CompiledValueSet {
  include: Map<string, CompiledPart>;
  exclude: Map<string, CompiledPart>;
  displays: Map<string, string>;
  text?: { anyOf: RegExp; noneOf?: RegExp };
}

/** A concept's names (text and codings' displays), each with its normalised form. */
export type ConceptNames = ReadonlyArray<readonly [name: string, normalised: string]>;

/**
 * A concept is matched against every value set that reads names, so a caller that matches many concepts against many
 * value sets works these out once per concept and passes them in. (Per call: a cache across calls would hold record text.)
 */
export function conceptNames(concept: CodeableConcept): ConceptNames {
  const names: Array<[string, string]> = [];
  if (typeof concept.text === 'string' && concept.text.length > 0) names.push([concept.text, normaliseName(concept.text)]);
  for (const c of concept.coding ?? []) if (typeof c.display === 'string' && c.display.length > 0) names.push([c.display, normaliseName(c.display)]);
  return names;
}

/** Names are compared in lower case with hyphens and runs of spaces as one space: "Foot-drop" reads as "foot drop". */
function normaliseName(name: string): string {
  return name.toLowerCase().replace(/[-\s]+/g, ' ').trim();
}

function normaliser(kind: Normalisation): (code: string) => string {
  switch (kind) {
    case 'exact':
      return (c) => c.trim();
    case 'uppercase':
      return (c) => c.trim().toUpperCase();
    case 'strip-dots-uppercase':
      return (c) => c.trim().replaceAll('.', '').toUpperCase();
  }
}

/**
 * Words match anywhere in a name ("carcinoma" finds "adenocarcinoma"); `wholeWords` only as whole words ("ca", "mets").
 */
function namePattern(words: string[], wholeWords: string[] = []): RegExp | undefined {
  const escape = (w: string) => normaliseName(w).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const parts = [...words.map(escape), ...wholeWords.map((w) => `\\b${escape(w)}\\b`)];
  return parts.length > 0 ? new RegExp(parts.join('|'), 'i') : undefined;
}

export function createTerminology(codeSystems: Record<string, CodeSystemDef>, valueSets: Iterable<ValueSetDef>): Terminology {
  const systemByUri = new Map<string, string>();
  const normalise = new Map<string, (code: string) => string>();
  for (const [key, def] of Object.entries(codeSystems)) {
    normalise.set(key, normaliser(def.normalise));
    for (const uri of def.uris) systemByUri.set(uri, key);
  }
  const prefixes = Object.entries(codeSystems).flatMap(([key, def]) => (def.uriPrefixes ?? []).map((p) => [p, key] as const));
  // A value set may name a system by its full URI. Coding systems are matched exactly, without a trailing slash, or by a
  // declared prefix (SNOMED CT editions: http://snomed.info/sct/731000124108); an unknown URI stays itself.
  const systemKey = (system: string): string => {
    const known = systemKeys.get(system);
    if (known !== undefined) return known;
    const key = findSystemKey(system);
    // Bounded: the systems come from the records, and a hostile record could send many.
    if (systemKeys.size < 1000) systemKeys.set(system, key);
    return key;
  };
  const systemKeys = new Map<string, string>();
  const findSystemKey = (system: string): string => {
    const exact = systemByUri.get(system) ?? systemByUri.get(system.replace(/\/+$/, ''));
    if (exact) return exact;
    return prefixes.find(([p]) => system.startsWith(p))?.[1] ?? system;
  };
  const knownSystem = (system: string | undefined): boolean => Boolean(system) && Boolean(codeSystems[systemKey(system!)]);
  const norm = (key: string, code: string): string => (normalise.get(key) ?? normaliser('exact'))(code);

  function compileParts(parts: ValueSetPart[] | undefined, displays?: Map<string, string>): Map<string, CompiledPart> {
    const out = new Map<string, CompiledPart>();
    for (const part of parts ?? []) {
      const key = systemKey(part.system);
      let compiled = out.get(key);
      if (!compiled) {
        compiled = { codes: new Set(), prefixes: [], ranges: [] };
        out.set(key, compiled);
      }
      for (const entry of part.codes ?? []) {
        const code = typeof entry === 'string' ? entry : entry.code;
        const n = norm(key, code);
        compiled.codes.add(n);
        if (displays && typeof entry !== 'string' && entry.display) displays.set(`${key}|${n}`, entry.display);
      }
      for (const p of part.prefixes ?? []) compiled.prefixes.push(norm(key, p));
      for (const r of part.ranges ?? []) compiled.ranges.push({ from: norm(key, r.from), to: norm(key, r.to) });
    }
    return out;
  }

  const compiled = new Map<string, CompiledValueSet>();
  for (const vs of valueSets) {
    const displays = new Map<string, string>();
    compiled.set(vs.id, {
      include: compileParts(vs.include, displays),
      exclude: compileParts(vs.exclude),
      displays,
      text: vs.text
        ? { anyOf: namePattern(vs.text.anyOf, vs.text.wholeWords)!, noneOf: vs.text.noneOf?.length ? namePattern(vs.text.noneOf) : undefined }
        : undefined,
    });
  }

  function inPart(part: CompiledPart | undefined, code: string): boolean {
    if (!part) return false;
    if (part.codes.has(code)) return true;
    for (const p of part.prefixes) if (code.startsWith(p)) return true;
    for (const r of part.ranges) {
      if (code.slice(0, r.from.length) >= r.from && code.slice(0, r.to.length) <= r.to) return true;
    }
    return false;
  }

  function get(valueSetId: string): CompiledValueSet {
    const vs = compiled.get(valueSetId);
    // The loader checks every reference, so this is a programming error, not bad data.
    if (!vs) throw new Error(`unknown value set ${valueSetId}`);
    return vs;
  }

  function matchCoding(valueSetId: string, coding: Coding): boolean {
    if (!coding.system || !coding.code) return false;
    const vs = get(valueSetId);
    const key = systemKey(coding.system);
    const code = norm(key, coding.code);
    return inPart(vs.include.get(key), code) && !inPart(vs.exclude.get(key), code);
  }

  /** Whether the value set excludes this coding by name: its code says what it is, so its name is not read instead. */
  function excludedCoding(valueSetId: string, coding: Coding): boolean {
    if (!coding.system || !coding.code) return false;
    const key = systemKey(coding.system);
    return inPart(get(valueSetId).exclude.get(key), norm(key, coding.code));
  }

  return {
    matchCoding,
    matchConcept(valueSetId, concept, options = {}) {
      if (!concept) return undefined;
      for (const coding of concept.coding ?? []) if (matchCoding(valueSetId, coding)) return coding;
      const text = get(valueSetId).text;
      if (!options.byName || !text) return undefined;
      // An excluded code is the value set's own answer ("Basal cell carcinoma of skin", C44.91): its name does not overrule it.
      if ((concept.coding ?? []).some((coding) => excludedCoding(valueSetId, coding))) return undefined;
      // A veto word cancels only the name it appears in ("CES - rule out" does not cancel "Cauda equina syndrome").
      for (const [name, n] of options.names ?? conceptNames(concept)) {
        if (text.anyOf.test(n) && !text.noneOf?.test(n)) return { display: name };
      }
      return undefined;
    },
    displayOf(valueSetId, coding) {
      if (!coding.system || !coding.code) return undefined;
      const key = systemKey(coding.system);
      return get(valueSetId).displays.get(`${key}|${norm(key, coding.code)}`);
    },
    isInterpretable(concept) {
      if (!concept) return false;
      if (concept.text?.trim()) return true;
      return (concept.coding ?? []).some((c) => (c.code && knownSystem(c.system)) || Boolean(c.display?.trim()));
    },
  };
}
