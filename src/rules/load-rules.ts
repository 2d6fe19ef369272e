import { createHash } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { createTerminology, type Terminology } from './terminology.js';
import { crossCheck } from './cross-check.js';
import { compiledRules } from '../decision/compile-rules.js';
import type {
  CardText,
  CodeSystemDef,
  LanguageGuide,
  PrevalenceData,
  PrognosisData,
  ScriptLanguage,
  ScriptStrings,
  SiteMapping,
  QuestionnaireScoring,
  EvidenceDef,
  RecommendationsFile,
  RedFlagsFile,
  Rules,
  ScopeFile,
  SuggestionsFile,
  ValueSetDef,
} from './types.js';

export interface LoadedRules extends Rules {
  terminology: Terminology;
  /** "<version>+<hash>": what cards, logs, the audit and /readyz call this rules version. */
  label: string;
  /** red-flags.json's categories by id. */
  categoryById: Map<string, Rules['redFlags']['categories'][number]>;
}

/** The site's local codes join the value sets they are mapped to (a copy: the files stay as written). */
function applySiteMapping(rules: Rules): string[] {
  const problems: string[] = [];
  const add = (where: string, vsId: string, entry: { system: string; code: string; display?: string }) => {
    const vs = rules.valueSets.get(vsId);
    if (!vs) return problems.push(`${where}: unknown value set "${vsId}"`);
    rules.valueSets.set(vsId, { ...vs, include: [...vs.include, { system: entry.system, codes: [{ code: entry.code, display: entry.display }] }] });
  };
  rules.siteMapping.orders.forEach((o, i) => {
    const scope = rules.scope.orders.find((s) => s.modality === o.modality);
    if (scope) add(`site-mapping.json at /orders/${i}`, scope.valueSet, o);
  });
  rules.siteMapping.diagnoses.forEach((d, i) => d.valueSets.forEach((vs) => add(`site-mapping.json at /diagnoses/${i}/valueSets`, vs, d)));
  return problems;
}

/** Every problem found in a rules folder, each naming its file and JSON path, so a guideline team can fix them all at once. */
export class RulesError extends Error {
  constructor(readonly problems: string[]) {
    super(`rules are invalid:\n- ${problems.join('\n- ')}`);
    this.name = 'RulesError';
  }
}

/** Which schema checks which file. Value sets are every file in value-sets/. */
const FILES = {
  manifest: { file: 'manifest.json', schema: 'manifest.schema.json' },
  codeSystems: { file: 'code-systems.json', schema: 'code-systems.schema.json' },
  redFlags: { file: 'red-flags.json', schema: 'red-flags.schema.json' },
  recommendations: { file: 'recommendations.json', schema: 'recommendations.schema.json' },
  evidence: { file: 'evidence.json', schema: 'evidence.schema.json' },
  scope: { file: 'scope.json', schema: 'scope.schema.json' },
  suggestions: { file: 'suggestions.json', schema: 'suggestions.schema.json' },
  cards: { file: 'cards/en.json', schema: 'cards.schema.json' },
  languages: { file: 'scripts/languages.json', schema: 'languages.schema.json' },
  siteMapping: { file: 'site-mapping.json', schema: 'site-mapping.schema.json' },
  startBack: { file: 'questionnaires/start-back.json', schema: 'questionnaire-scoring.schema.json' },
  prevalence: { file: 'data/prevalence.json', schema: 'prevalence.schema.json' },
  prognosis: { file: 'data/prognosis.json', schema: 'prognosis.schema.json' },
} as const;

const VALUE_SET_SCHEMA = 'value-set.schema.json';

function describe(file: string, errors: ErrorObject[] | null | undefined): string[] {
  return (errors ?? []).map((e) => {
    const where = e.instancePath || '/';
    const extra = e.keyword === 'additionalProperties' ? ` (${String(e.params.additionalProperty)})` : '';
    const allowed = e.keyword === 'enum' ? ` (one of ${JSON.stringify(e.params.allowedValues)})` : '';
    return `${file} at ${where}: ${e.message ?? 'is invalid'}${extra}${allowed}`;
  });
}

async function readJson(dir: string, file: string, problems: string[], hash: ReturnType<typeof createHash>): Promise<unknown> {
  const path = join(dir, file);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    problems.push(`${file}: missing (expected at ${path})`);
    return undefined;
  }
  hash.update(file).update('\0').update(text).update('\0');
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    problems.push(`${file}: not valid JSON (${(err as Error).message})`);
    return undefined;
  }
}

async function readText(dir: string, file: string, problems: string[], hash: ReturnType<typeof createHash>): Promise<string | undefined> {
  try {
    const text = await readFile(join(dir, file), 'utf8');
    hash.update(file).update('\0').update(text).update('\0');
    return text;
  } catch {
    problems.push(`${file}: missing`);
    return undefined;
  }
}

async function compileSchemas(dir: string): Promise<Map<string, ValidateFunction>> {
  const ajv = new Ajv({ allErrors: true, strict: false });
  const addFormats = (addFormatsModule as unknown as { default: (a: Ajv) => void }).default ?? addFormatsModule;
  (addFormats as (a: Ajv) => void)(ajv);
  const schemaDir = join(dir, 'schemas');
  const validators = new Map<string, ValidateFunction>();
  const names = await readdir(schemaDir).catch(() => {
    throw new RulesError([`${dir} is not a rules folder: ${schemaDir} is missing`]);
  });
  for (const name of names.filter((f) => f.endsWith('.schema.json'))) {
    const schema = JSON.parse(await readFile(join(schemaDir, name), 'utf8')) as object;
    validators.set(name, ajv.compile(schema));
  }
  return validators;
}

/**
 * Reads and checks a rules folder. Every file is validated against its schema in rules/schemas/,
 * then references between files are checked; any problem refuses the whole folder.
 */
export async function loadRules(dir: string): Promise<LoadedRules> {
  const problems: string[] = [];
  const hash = createHash('sha256');
  const validators = await compileSchemas(dir);

  const raw: Record<string, unknown> = {};
  for (const [key, { file, schema }] of Object.entries(FILES)) {
    const data = await readJson(dir, file, problems, hash);
    if (data === undefined) continue;
    const validate = validators.get(schema);
    if (!validate) {
      problems.push(`schemas/${schema}: missing`);
      continue;
    }
    if (!validate(data)) problems.push(...describe(file, validate.errors));
    raw[key] = data;
  }

  const valueSets = new Map<string, ValueSetDef>();
  const vsDir = join(dir, 'value-sets');
  const vsFiles = (await readdir(vsDir).catch(() => [] as string[])).filter((f) => f.endsWith('.json')).sort();
  const validateVs = validators.get(VALUE_SET_SCHEMA);
  for (const name of vsFiles) {
    const file = relative(dir, join(vsDir, name));
    const data = await readJson(dir, file, problems, hash);
    if (data === undefined) continue;
    if (validateVs && !validateVs(data)) {
      problems.push(...describe(file, validateVs.errors));
      continue;
    }
    const vs = data as ValueSetDef;
    if (vs.id !== name.replace(/\.json$/, '')) problems.push(`${file} at /id: "${vs.id}" must equal the file name without .json`);
    if (valueSets.has(vs.id)) problems.push(`${file}: duplicate value set id "${vs.id}"`);
    valueSets.set(vs.id, vs);
  }

  // Each script language: its words, its two markdown templates and its language guide.
  const languages = new Map<string, ScriptLanguage>();
  const listed = (raw.languages as { languages?: Array<{ code: string; name: string; reviewed: boolean }> } | undefined)?.languages ?? [];
  for (const lang of listed) {
    const strings = await readJson(dir, `scripts/${lang.code}/strings.json`, problems, hash);
    const guide = await readJson(dir, `language/${lang.code}.json`, problems, hash);
    const conversation = await readText(dir, `scripts/${lang.code}/conversation.md`, problems, hash);
    const handout = await readText(dir, `scripts/${lang.code}/handout.md`, problems, hash);
    const followup = await readText(dir, `scripts/${lang.code}/followup.md`, problems, hash);
    for (const [file, data, schema] of [[`scripts/${lang.code}/strings.json`, strings, 'script-strings.schema.json'], [`language/${lang.code}.json`, guide, 'language-guide.schema.json']] as const) {
      const validate = validators.get(schema);
      if (data !== undefined && validate && !validate(data)) problems.push(...describe(file, validate.errors));
    }
    if (strings && guide && conversation !== undefined && handout !== undefined && followup !== undefined) {
      languages.set(lang.code, { ...lang, strings: strings as ScriptStrings, guide: guide as LanguageGuide, conversation, handout, followup });
    }
  }

  if (problems.length > 0) throw new RulesError(problems);

  const manifest = raw.manifest as { name: string; version: string };
  const codeSystems = (raw.codeSystems as { systems: Record<string, CodeSystemDef> }).systems;
  const evidence = new Map((raw.evidence as { evidence: EvidenceDef[] }).evidence.map((e) => [e.id, e]));
  const rules: Rules = {
    name: manifest.name,
    version: manifest.version,
    hash: hash.digest('hex').slice(0, 12),
    codeSystems,
    valueSets,
    redFlags: raw.redFlags as RedFlagsFile,
    recommendations: raw.recommendations as RecommendationsFile,
    evidence,
    scope: raw.scope as ScopeFile,
    suggestions: raw.suggestions as SuggestionsFile,
    cards: raw.cards as CardText,
    siteMapping: raw.siteMapping as SiteMapping,
    questionnaires: { startBack: raw.startBack as QuestionnaireScoring },
    scripts: {
      defaultLanguage: (raw.languages as { default: string }).default,
      languages,
      prevalence: raw.prevalence as PrevalenceData,
      prognosis: raw.prognosis as PrognosisData,
      evidence: (raw.languages as { evidence: string[] }).evidence,
      followUpEvidence: (raw.languages as { followUpEvidence: string[] }).followUpEvidence,
    },
  };
  problems.push(...applySiteMapping(rules));
  const terminology = createTerminology(codeSystems, valueSets.values());
  problems.push(...crossCheck(rules, terminology));
  // Compiled now, once for this rules version, so a rule that cannot run is a load error and not a failed hook call.
  try {
    compiledRules(rules.recommendations.rules);
  } catch (err) {
    problems.push((err as Error).message);
  }
  if (problems.length > 0) throw new RulesError(problems);
  return {
    ...rules,
    terminology,
    label: `${rules.version}+${rules.hash}`,
    categoryById: new Map(rules.redFlags.categories.map((c) => [c.id, c])),
  };
}
