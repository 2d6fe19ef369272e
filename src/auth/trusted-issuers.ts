import { readFile } from 'node:fs/promises';
import { Ajv } from 'ajv';
import type { JSONWebKeySet } from 'jose';
import { keySetProblem, keySetUrlProblem } from './jwks.js';

/**
 * An EHR the site trusts (CDS_TRUSTED_ISSUERS): its `iss`, where its keys are (inline `jwks`, or a `jwks_uri` and the `jku`
 * URLs its tokens may point to), and the `tenant` its tokens must carry. Inline keys are the issuer's only keys: a token's
 * `jku` is then ignored, so they exclude `jwks_uri` and `jku`.
 */
export interface TrustedIssuer {
  iss: string;
  jwks_uri?: string;
  /** Public keys only (no `d` or other private member, no symmetric key), at most 100. */
  jwks?: JSONWebKeySet;
  tenant?: string;
  /** URLs a token's `jku` header may name; `jwks_uri` is always allowed. Any other `jku` is refused. */
  jku?: string[];
}

const url = { type: 'string', pattern: '^https?://' } as const;
const schema = {
  type: 'array',
  items: {
    type: 'object',
    required: ['iss'],
    additionalProperties: false,
    anyOf: [{ required: ['jwks'] }, { required: ['jwks_uri'] }, { required: ['jku'] }],
    properties: {
      iss: { type: 'string', minLength: 1 },
      jwks_uri: url,
      jwks: { type: 'object', required: ['keys'], properties: { keys: { type: 'array', items: { type: 'object', required: ['kty'] } } } },
      tenant: { type: 'string', minLength: 1 },
      jku: { type: 'array', items: url },
    },
  },
} as const;
/**
 * What is wrong with an issuer beyond its shape, or undefined: key set URLs must be https (http only on the loopback
 * interface), inline keys must be public ones and exclude remote ones.
 */
export function trustedIssuerProblem(issuer: TrustedIssuer): string | undefined {
  for (const [name, url] of [['jwks_uri', issuer.jwks_uri], ...(issuer.jku ?? []).map((u) => ['jku', u])] as Array<[string, string | undefined]>) {
    const problem = url === undefined ? undefined : keySetUrlProblem(url);
    if (problem) return `${name} "${url}" ${problem}`;
  }
  if (issuer.jwks) {
    if (issuer.jwks_uri !== undefined || issuer.jku !== undefined) return 'inline jwks are the issuer’s only keys: drop jwks_uri and jku, or drop jwks';
    const problem = keySetProblem(issuer.jwks);
    if (problem) return `jwks: ${problem}`;
  }
  return undefined;
}

const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);

export class TrustedIssuersError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TrustedIssuersError';
  }
}

/** Reads and checks the trusted issuers file; no file means no issuer is trusted (every call is refused with CDS_AUTH=jwt). */
export async function loadTrustedIssuers(path: string | undefined): Promise<TrustedIssuer[]> {
  if (!path) return [];
  let data: unknown;
  try {
    data = JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    throw new TrustedIssuersError(`CDS_TRUSTED_ISSUERS ${path}: ${(err as Error).message}`);
  }
  if (!validate(data)) {
    const e = validate.errors?.[0];
    throw new TrustedIssuersError(`CDS_TRUSTED_ISSUERS ${path} at ${e?.instancePath || '/'}: ${e?.message ?? 'is invalid'} (expected an array of { iss, jwks_uri | jwks | jku, tenant? })`);
  }
  const issuers = data as TrustedIssuer[];
  const seen = new Set<string>();
  for (const i of issuers) {
    const problem = trustedIssuerProblem(i);
    if (problem) throw new TrustedIssuersError(`CDS_TRUSTED_ISSUERS ${path}: "${i.iss}": ${problem}`);
    if (seen.has(i.iss)) throw new TrustedIssuersError(`CDS_TRUSTED_ISSUERS ${path}: "${i.iss}" is listed twice`);
    seen.add(i.iss);
  }
  return issuers;
}
