/** Unit conversion for the few quantities the red-flag checks compare. Unknown units give undefined: unknown, not normal. */

type Converter = { toBase: (v: number) => number; fromBase: (v: number) => number; base: string };

const UNITS: Record<string, Converter> = {
  cel: { base: 'cel', toBase: (v) => v, fromBase: (v) => v },
  c: { base: 'cel', toBase: (v) => v, fromBase: (v) => v },
  '°c': { base: 'cel', toBase: (v) => v, fromBase: (v) => v },
  '[degf]': { base: 'cel', toBase: (v) => ((v - 32) * 5) / 9, fromBase: (v) => (v * 9) / 5 + 32 },
  degf: { base: 'cel', toBase: (v) => ((v - 32) * 5) / 9, fromBase: (v) => (v * 9) / 5 + 32 },
  f: { base: 'cel', toBase: (v) => ((v - 32) * 5) / 9, fromBase: (v) => (v * 9) / 5 + 32 },
  '°f': { base: 'cel', toBase: (v) => ((v - 32) * 5) / 9, fromBase: (v) => (v * 9) / 5 + 32 },
  kg: { base: 'kg', toBase: (v) => v, fromBase: (v) => v },
  g: { base: 'kg', toBase: (v) => v / 1000, fromBase: (v) => v * 1000 },
  '[lb_av]': { base: 'kg', toBase: (v) => v * 0.45359237, fromBase: (v) => v / 0.45359237 },
  lb: { base: 'kg', toBase: (v) => v * 0.45359237, fromBase: (v) => v / 0.45359237 },
};

export function toUnit(value: number, from: string | undefined, to: string): number | undefined {
  if (!from) return undefined;
  const src = UNITS[from.trim().toLowerCase()];
  const dst = UNITS[to.trim().toLowerCase()];
  if (!src || !dst || src.base !== dst.base) return undefined;
  return Math.round(dst.fromBase(src.toBase(value)) * 1000) / 1000;
}
