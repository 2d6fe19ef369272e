import type { CodeableConcept, Coding } from 'fhir/r4.js';
import type { CodeSystemDef, Normalisation, ValueSetDef, ValueSetPart } from './types.js';

/** Answers "is this coding in that value set?" for the value sets of one rules version. */
export interface Terminology {
  matchCoding(valueSetId: string, coding: Coding): boolean;
  /** The first coding of the concept that is in the value set; with `useText`, a text match yields a synthetic coding. */
  matchConcept(valueSetId: string, concept: CodeableConcept | undefined, useText?: boolean): Coding | undefined;
  /** The display the value set gives for a code, if any. */
  displayOf(valueSetId: string, coding: Coding): string | undefined;
  has(valueSetId: string): boolean;
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

function wordPattern(words: string[]): RegExp {
  const escaped = words.map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`\\b(?:${escaped.join('|')})`, 'i');
}

export function createTerminology(codeSystems: Record<string, CodeSystemDef>, valueSets: Iterable<ValueSetDef>): Terminology {
  const systemByUri = new Map<string, string>();
  const normalise = new Map<string, (code: string) => string>();
  for (const [key, def] of Object.entries(codeSystems)) {
    normalise.set(key, normaliser(def.normalise));
    for (const uri of def.uris) systemByUri.set(uri, key);
  }
  // A value set may name a system by its full URI; an unknown URI is compared exactly.
  const systemKey = (system: string): string => systemByUri.get(system) ?? system;
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
        ? { anyOf: wordPattern(vs.text.anyOf), noneOf: vs.text.noneOf?.length ? wordPattern(vs.text.noneOf) : undefined }
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

  return {
    matchCoding,
    matchConcept(valueSetId, concept, useText = false) {
      if (!concept) return undefined;
      const text = get(valueSetId).text;
      const names = [concept.text, ...(concept.coding ?? []).map((c) => c.display)].filter(
        (t): t is string => typeof t === 'string' && t.length > 0,
      );
      for (const coding of concept.coding ?? []) if (matchCoding(valueSetId, coding)) return coding;
      if (!useText || !text) return undefined;
      // A code in the set wins over words; words alone must not be vetoed ("cream", "inhaler").
      if (text.noneOf && names.some((t) => text.noneOf!.test(t))) return undefined;
      for (const t of names) if (text.anyOf.test(t)) return { display: t };
      return undefined;
    },
    displayOf(valueSetId, coding) {
      if (!coding.system || !coding.code) return undefined;
      const key = systemKey(coding.system);
      return get(valueSetId).displays.get(`${key}|${norm(key, coding.code)}`);
    },
    has: (id) => compiled.has(id),
  };
}
