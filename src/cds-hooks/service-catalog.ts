import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { DATA_KINDS, type DataKind } from '../facts/types.js';
import type { ServiceDefinition } from './types.js';
import { TOKEN } from './prefetch-template.js';

const SUPPORTED_HOOKS = new Set(['order-select', 'order-sign', 'patient-view', 'encounter-start']);
/** CDS Hooks 2.0 prefetch tokens: root-level context fields and the user tokens. */
const ALLOWED_TOKENS = /^(context\.(patientId|userId|encounterId)|userPractitionerId|userPractitionerRoleId|userPatientId|userRelatedPersonId)$/;

export interface CatalogEntry {
  definition: ServiceDefinition;
  /** Which kind of record data each prefetch key brings. */
  prefetchKinds: Record<string, DataKind>;
}

export type ServiceCatalog = Map<string, CatalogEntry>;

export function prefetchKind(template: string): DataKind | undefined {
  const type = /^([A-Za-z]+)[/?]/.exec(template)?.[1];
  return DATA_KINDS.find((k) => k === type);
}

/** Reads the service definitions in cds-hooks/ and refuses any that a CDS Hooks 2.0 client could not use. */
export async function loadServiceCatalog(dir: string): Promise<ServiceCatalog> {
  const catalog: ServiceCatalog = new Map();
  const problems: string[] = [];
  for (const name of (await readdir(dir)).filter((f) => f.endsWith('.json')).sort()) {
    const def = JSON.parse(await readFile(join(dir, name), 'utf8')) as ServiceDefinition;
    for (const field of ['id', 'hook', 'title', 'description'] as const) {
      if (typeof def[field] !== 'string' || def[field].length === 0) problems.push(`${name}: "${field}" is required`);
    }
    if (!SUPPORTED_HOOKS.has(def.hook)) problems.push(`${name}: hook "${def.hook}" is not one this service handles`);
    if (catalog.has(def.id)) problems.push(`${name}: duplicate service id "${def.id}"`);
    const prefetchKinds: Record<string, DataKind> = {};
    for (const [key, template] of Object.entries(def.prefetch ?? {})) {
      for (const [, token] of template.matchAll(TOKEN)) {
        if (!ALLOWED_TOKENS.test(token ?? '')) problems.push(`${name}: prefetch "${key}" uses "{{${token}}}", not a CDS Hooks 2.0 token`);
      }
      const kind = prefetchKind(template);
      if (!kind) problems.push(`${name}: prefetch "${key}" asks for data the red-flag check does not read`);
      else prefetchKinds[key] = kind;
    }
    catalog.set(def.id, { definition: def, prefetchKinds });
  }
  if (problems.length > 0) throw new Error(`invalid CDS service definitions:\n- ${problems.join('\n- ')}`);
  return catalog;
}
