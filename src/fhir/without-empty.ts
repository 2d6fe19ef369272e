/**
 * A copy without null, empty strings, arrays or objects, which neither FHIR nor CDS Hooks allow (the CDS Hooks sandbox
 * sends `reasonCode: []`). Request depth is bounded before this runs.
 */
export function withoutEmpty<T>(value: T): T | undefined {
  if (value === null || value === '') return undefined;
  if (Array.isArray(value)) {
    const items = value.map(withoutEmpty).filter((v) => v !== undefined);
    return (items.length > 0 ? items : undefined) as T | undefined;
  }
  if (typeof value === 'object') {
    const entries = Object.entries(value as object)
      .map(([k, v]) => [k, withoutEmpty(v)] as const)
      .filter(([, v]) => v !== undefined);
    return (entries.length > 0 ? Object.fromEntries(entries) : undefined) as T | undefined;
  }
  return value;
}
