/**
 * A copy without null, empty strings, arrays or objects, which neither FHIR nor CDS Hooks allow (the CDS Hooks sandbox
 * sends `reasonCode: []`). Request depth is bounded before this runs. One pass with loops, not map/filter/fromEntries:
 * it copies every draft order of every call.
 */
export function withoutEmpty<T>(value: T): T | undefined {
  if (value === null || value === '') return undefined;
  if (Array.isArray(value)) {
    const items: unknown[] = [];
    for (const item of value) {
      const kept = withoutEmpty(item);
      if (kept !== undefined) items.push(kept);
    }
    return (items.length > 0 ? items : undefined) as T | undefined;
  }
  if (typeof value === 'object') {
    const copy: Record<string, unknown> = {};
    let any = false;
    for (const [key, item] of Object.entries(value as object)) {
      const kept = withoutEmpty(item);
      if (kept === undefined) continue;
      // An own "__proto__" stays data: assigning it would set the copy's prototype instead.
      if (key === '__proto__') Object.defineProperty(copy, key, { value: kept, enumerable: true, writable: true, configurable: true });
      else copy[key] = kept;
      any = true;
    }
    return (any ? copy : undefined) as T | undefined;
  }
  return value;
}
