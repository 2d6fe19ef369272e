import type { ScriptLanguage } from '../../src/rules/types.js';

/** Patient-facing lines of a rendered script: the quoted sentences a clinician says. */
export function spokenLines(script: string): string[] {
  return script.split('\n').filter((l) => l.startsWith('- "')).map((l) => l.slice(3, -1));
}

/** Words of a language guide found in a text (matched at the start of a word, any case). */
export function fearTermsIn(text: string, guide: ScriptLanguage['guide']): string[] {
  const found: string[] = [];
  for (const term of guide.terms) {
    for (const m of term.match) {
      const escaped = m.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      if (new RegExp(`(?<![\\p{L}\\p{N}])${escaped}`, 'iu').test(text)) found.push(`"${m}" (${term.avoid}: say "${term.instead}")`);
    }
  }
  return found;
}
