import { isAbsolute, resolve } from 'node:path';

/** The service's configuration (README, Configuration), read and checked once at start. */
export interface Config {
  port: number;
  host: string;
  publicBaseUrl: string;
  auth: 'jwt' | 'off';
  trustedIssuersFile?: string;
  databaseUrl?: string;
  dataDir: string;
  rulesDir: string;
  deadlineMs: number;
  /** Pages of one search followed on the EHR's FHIR server (FHIR_MAX_PAGES). */
  fhirMaxPages: number;
  /** Bytes one FHIR search may bring, all pages together, on the wire and again decompressed (FHIR_MAX_RESPONSE_BYTES). */
  fhirMaxResponseBytes: number;
  /** Entries one FHIR search (or one prefetch Bundle) may bring, all pages together (FHIR_MAX_ENTRIES). */
  fhirMaxEntries: number;
  /** Accept an http: fhirServer when CDS_AUTH=jwt (FHIR_ALLOW_HTTP; with auth off, http: is always accepted). */
  fhirAllowHttp: boolean;
  /** Origins fhirServer may have (FHIR_SERVER_ALLOWLIST, comma-separated); empty: any. */
  fhirServerAllowlist: string[];
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  adminToken?: string;
  /** Browser origins allowed to call /cds-services (CDS_CORS_ORIGINS, comma-separated; "*" for any). */
  corsOrigins: string[];
  /** Requests per minute from one address (all routes), and from one JWT issuer (/cds-services); 0 turns a limit off. */
  rateLimitPerAddress: number;
  rateLimitPerIssuer: number;
  /** Refused CDS Hooks JWTs per minute from one address before it gets 429 (RATE_LIMIT_AUTH_FAILURES_PER_ADDRESS; 0: off). */
  rateLimitAuthFailuresPerAddress: number;
  /**
   * Which proxies in front may say who the client is (TRUST_PROXY: `true`, a number of hops, or comma-separated addresses
   * or CIDR ranges); off by default, so X-Forwarded-For is ignored and the rate limits key on the connection's address.
   */
  trustProxy: boolean | number | string[];
  bodyLimitBytes: number;
  /** The longest CDS Hooks JWT accepted, `exp - iat` in seconds (CDS_MAX_TOKEN_LIFETIME_S). */
  maxTokenLifetimeS: number;
  /** PostgreSQL schema for the store (DATABASE_SCHEMA; default: the connection's own). */
  databaseSchema?: string;
  /** Days audit records and feedback are kept (AUDIT_RETENTION_DAYS). */
  auditRetentionDays: number;
  /** Secret of the keyed hashes of patient and user ids (AUDIT_HASH_SECRET; default: one generated and kept in the store). */
  auditHashSecret?: string;
  /** Reload valid changes to RULES_DIR while running (RULES_WATCH, default true). */
  rulesWatch: boolean;
  /** On SIGTERM, how long to keep answering (readiness failing) before closing (SHUTDOWN_DRAIN_MS). */
  shutdownDrainMs: number;
  /** An edited copy of the rules that /playground shows beside the live ones (PLAYGROUND_COMPARE_RULES_DIR). */
  playgroundCompareRulesDir?: string;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n- ${problems.join('\n- ')}`);
    this.name = 'ConfigError';
  }
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number, problems: string[]): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    problems.push(`${name} must be an integer from ${min} to ${max} (got "${raw}")`);
    return fallback;
  }
  return n;
}

function boolean(env: NodeJS.ProcessEnv, name: string, fallback: boolean, problems: string[]): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const v = raw.toLowerCase();
  if (v === 'true') return true;
  if (v === 'false') return false;
  problems.push(`${name} must be "true" or "false" (got "${raw}")`);
  return fallback;
}

function path(value: string, cwd: string): string {
  return isAbsolute(value) ? value : resolve(cwd, value);
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Config {
  const problems: string[] = [];
  const port = integer(env, 'PORT', 3000, 0, 65535, problems);
  const deadlineMs = integer(env, 'CDS_DEADLINE_MS', 1500, 50, 60_000, problems);
  const fhirMaxPages = integer(env, 'FHIR_MAX_PAGES', 10, 1, 100, problems);
  const fhirMaxResponseBytes = integer(env, 'FHIR_MAX_RESPONSE_BYTES', 4 * 1024 * 1024, 64 * 1024, 256 * 1024 * 1024, problems);
  const fhirMaxEntries = integer(env, 'FHIR_MAX_ENTRIES', 5000, 1, 100_000, problems);
  const fhirAllowHttp = boolean(env, 'FHIR_ALLOW_HTTP', false, problems);
  const rulesWatch = boolean(env, 'RULES_WATCH', true, problems);
  let trustProxy: boolean | number | string[] = false;
  const rawProxy = (env.TRUST_PROXY ?? '').trim();
  if (/^(true|false)$/i.test(rawProxy)) trustProxy = rawProxy.toLowerCase() === 'true';
  else if (/^\d+$/.test(rawProxy)) trustProxy = Number(rawProxy);
  else if (rawProxy) {
    trustProxy = rawProxy.split(',').map((x) => x.trim()).filter(Boolean);
    for (const a of trustProxy) if (!/^[0-9a-fA-F:.]+(\/\d{1,3})?$/.test(a)) problems.push(`TRUST_PROXY: "${a}" is not an address or CIDR range (or use true, or a number of hops)`);
  }
  const fhirServerAllowlist: string[] = [];
  for (const o of (env.FHIR_SERVER_ALLOWLIST ?? '').split(',').map((x) => x.trim()).filter(Boolean)) {
    let origin: string | undefined;
    try {
      if (/^https?:\/\/[^/?#@\s]+$/i.test(o)) origin = new URL(o).origin;
    } catch {
      origin = undefined;
    }
    if (origin) fhirServerAllowlist.push(origin);
    else problems.push(`FHIR_SERVER_ALLOWLIST: "${o}" is not an origin (scheme://host[:port])`);
  }
  const rateLimitPerAddress = integer(env, 'RATE_LIMIT_PER_ADDRESS', 12_000, 0, 10_000_000, problems);
  const rateLimitPerIssuer = integer(env, 'RATE_LIMIT_PER_ISSUER', 30_000, 0, 10_000_000, problems);
  const rateLimitAuthFailuresPerAddress = integer(env, 'RATE_LIMIT_AUTH_FAILURES_PER_ADDRESS', 600, 0, 10_000_000, problems);
  const bodyLimitBytes = integer(env, 'CDS_BODY_LIMIT', 1024 * 1024, 1024, 64 * 1024 * 1024, problems);
  const maxTokenLifetimeS = integer(env, 'CDS_MAX_TOKEN_LIFETIME_S', 300, 30, 3600, problems);
  const auditRetentionDays = integer(env, 'AUDIT_RETENTION_DAYS', 365, 1, 36_500, problems);
  const shutdownDrainMs = integer(env, 'SHUTDOWN_DRAIN_MS', 1000, 0, 8000, problems);
  if (env.DATABASE_SCHEMA && !/^[a-z_][a-z0-9_]*$/.test(env.DATABASE_SCHEMA)) problems.push('DATABASE_SCHEMA must be a plain lower-case identifier');
  if (env.AUDIT_HASH_SECRET !== undefined && env.AUDIT_HASH_SECRET.length < 16) problems.push('AUDIT_HASH_SECRET must be at least 16 characters');
  const corsOrigins = (env.CDS_CORS_ORIGINS ?? 'https://sandbox.cds-hooks.org').split(',').map((o) => o.trim()).filter(Boolean);
  for (const o of corsOrigins) if (o !== '*' && !/^https?:\/\/[^/]+$/.test(o)) problems.push(`CDS_CORS_ORIGINS: "${o}" is not an origin (scheme://host[:port])`);

  let publicBaseUrl = env.PUBLIC_BASE_URL || `http://localhost:${port}`;
  try {
    const url = new URL(publicBaseUrl);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') problems.push('PUBLIC_BASE_URL must be an http(s) URL');
    publicBaseUrl = publicBaseUrl.replace(/\/+$/, '');
  } catch {
    problems.push(`PUBLIC_BASE_URL is not a URL (got "${publicBaseUrl}")`);
  }

  const auth = (env.CDS_AUTH || 'jwt').toLowerCase();
  if (auth !== 'jwt' && auth !== 'off') problems.push(`CDS_AUTH must be "jwt" or "off" (got "${env.CDS_AUTH}")`);

  const logLevel = (env.LOG_LEVEL || 'info').toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) problems.push(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}`);

  if (env.DATABASE_URL && !/^postgres(ql)?:\/\//.test(env.DATABASE_URL)) problems.push('DATABASE_URL must be a postgres:// URL');

  if (problems.length > 0) throw new ConfigError(problems);
  return {
    port,
    host: env.HOST || '127.0.0.1',
    publicBaseUrl,
    auth: auth as Config['auth'],
    trustedIssuersFile: env.CDS_TRUSTED_ISSUERS ? path(env.CDS_TRUSTED_ISSUERS, cwd) : undefined,
    databaseUrl: env.DATABASE_URL || undefined,
    dataDir: path(env.DATA_DIR || './data', cwd),
    rulesDir: path(env.RULES_DIR || './rules', cwd),
    deadlineMs,
    fhirMaxPages,
    fhirMaxResponseBytes,
    fhirMaxEntries,
    fhirAllowHttp,
    fhirServerAllowlist,
    logLevel: logLevel as Config['logLevel'],
    adminToken: env.ADMIN_TOKEN || undefined,
    corsOrigins,
    rateLimitPerAddress,
    rateLimitPerIssuer,
    rateLimitAuthFailuresPerAddress,
    trustProxy,
    bodyLimitBytes,
    maxTokenLifetimeS,
    databaseSchema: env.DATABASE_SCHEMA || undefined,
    auditRetentionDays,
    auditHashSecret: env.AUDIT_HASH_SECRET || undefined,
    shutdownDrainMs,
    rulesWatch,
    playgroundCompareRulesDir: env.PLAYGROUND_COMPARE_RULES_DIR ? path(env.PLAYGROUND_COMPARE_RULES_DIR, cwd) : undefined,
  };
}
