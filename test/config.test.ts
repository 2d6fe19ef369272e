import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';
import { tempDataDir } from './support/app.js';

describe('configuration', () => {
  it('has the contract defaults', () => {
    const c = loadConfig({}, '/srv/app');
    expect(c).toMatchObject({
      port: 3000,
      host: '127.0.0.1',
      publicBaseUrl: 'http://localhost:3000',
      auth: 'jwt',
      dataDir: '/srv/app/data',
      rulesDir: '/srv/app/rules',
      deadlineMs: 1500,
      logLevel: 'info',
    });
    expect(c.databaseUrl).toBeUndefined();
  });

  it('derives PUBLIC_BASE_URL from PORT and drops a trailing slash', () => {
    expect(loadConfig({ PORT: '8080' }).publicBaseUrl).toBe('http://localhost:8080');
    expect(loadConfig({ PUBLIC_BASE_URL: 'https://cds.example.org/' }).publicBaseUrl).toBe('https://cds.example.org');
  });

  it('caps the lifetime of a CDS Hooks JWT at 300 s unless CDS_MAX_TOKEN_LIFETIME_S says otherwise, from 30 to 3600', () => {
    expect(loadConfig({}).maxTokenLifetimeS).toBe(300);
    expect(loadConfig({ CDS_MAX_TOKEN_LIFETIME_S: '30' }).maxTokenLifetimeS).toBe(30);
    expect(loadConfig({ CDS_MAX_TOKEN_LIFETIME_S: '3600' }).maxTokenLifetimeS).toBe(3600);
    for (const bad of ['29', '3601', '300.5', 'five minutes']) {
      expect(() => loadConfig({ CDS_MAX_TOKEN_LIFETIME_S: bad })).toThrow(/CDS_MAX_TOKEN_LIFETIME_S must be an integer from 30 to 3600/);
    }
  });

  it('reads true and false, in any case, and refuses anything else rather than guessing (RULES_WATCH, FHIR_ALLOW_HTTP)', () => {
    expect(loadConfig({ RULES_WATCH: 'FALSE' }).rulesWatch).toBe(false);
    expect(loadConfig({ RULES_WATCH: 'true' }).rulesWatch).toBe(true);
    expect(loadConfig({}).rulesWatch).toBe(true);
    expect(() => loadConfig({ RULES_WATCH: 'flase' })).toThrow(/RULES_WATCH must be "true" or "false" \(got "flase"\)/);
    expect(() => loadConfig({ FHIR_ALLOW_HTTP: 'yes' })).toThrow(/FHIR_ALLOW_HTTP must be "true" or "false"/);
  });

  it('trusts no proxy unless TRUST_PROXY names them (true, hops, or addresses and CIDR ranges)', () => {
    expect(loadConfig({}).trustProxy).toBe(false);
    expect(loadConfig({ TRUST_PROXY: 'true' }).trustProxy).toBe(true);
    expect(loadConfig({ TRUST_PROXY: '2' }).trustProxy).toBe(2);
    expect(loadConfig({ TRUST_PROXY: '10.0.0.0/8, 127.0.0.1' }).trustProxy).toEqual(['10.0.0.0/8', '127.0.0.1']);
    expect(() => loadConfig({ TRUST_PROXY: 'my-ingress' })).toThrow(/TRUST_PROXY: "my-ingress" is not an address/);
  });

  it('reports every bad value at once', () => {
    try {
      loadConfig({ PORT: 'eighty', CDS_AUTH: 'maybe', LOG_LEVEL: 'loud', CDS_DEADLINE_MS: '-1', PUBLIC_BASE_URL: 'not a url', DATABASE_URL: 'mysql://x' });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).problems).toHaveLength(6);
    }
  });
});

describe('bounds on what the FHIR server sends', () => {
  it('have defaults: 4 MiB and 5,000 entries per search, https only with JWT, any origin', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({ fhirMaxResponseBytes: 4 * 1024 * 1024, fhirMaxEntries: 5000, fhirAllowHttp: false, fhirServerAllowlist: [] });
  });

  it('read FHIR_MAX_RESPONSE_BYTES, FHIR_MAX_ENTRIES and FHIR_ALLOW_HTTP', () => {
    const c = loadConfig({ FHIR_MAX_RESPONSE_BYTES: '1048576', FHIR_MAX_ENTRIES: '250', FHIR_ALLOW_HTTP: 'TRUE' });
    expect(c).toMatchObject({ fhirMaxResponseBytes: 1_048_576, fhirMaxEntries: 250, fhirAllowHttp: true });
    expect(loadConfig({ FHIR_ALLOW_HTTP: 'false' }).fhirAllowHttp).toBe(false);
    expect(loadConfig({ FHIR_ALLOW_HTTP: '' }).fhirAllowHttp).toBe(false);
  });

  it.each([
    ['FHIR_MAX_RESPONSE_BYTES', '1000', /FHIR_MAX_RESPONSE_BYTES must be an integer from 65536 to 268435456/],
    ['FHIR_MAX_RESPONSE_BYTES', '1e12', /FHIR_MAX_RESPONSE_BYTES/],
    ['FHIR_MAX_RESPONSE_BYTES', 'lots', /FHIR_MAX_RESPONSE_BYTES/],
    ['FHIR_MAX_ENTRIES', '0', /FHIR_MAX_ENTRIES must be an integer from 1 to 100000/],
    ['FHIR_MAX_ENTRIES', '100001', /FHIR_MAX_ENTRIES/],
    ['FHIR_MAX_ENTRIES', '2.5', /FHIR_MAX_ENTRIES/],
    ['FHIR_ALLOW_HTTP', 'yes', /FHIR_ALLOW_HTTP must be "true" or "false"/],
    ['FHIR_SERVER_ALLOWLIST', 'ehr.example.org', /FHIR_SERVER_ALLOWLIST: "ehr.example.org" is not an origin/],
    ['FHIR_SERVER_ALLOWLIST', 'https://ehr.example.org/fhir', /is not an origin/],
    ['FHIR_SERVER_ALLOWLIST', 'https://user@ehr.example.org', /is not an origin/],
    ['FHIR_SERVER_ALLOWLIST', 'ftp://ehr.example.org', /is not an origin/],
    ['FHIR_SERVER_ALLOWLIST', '*', /is not an origin/],
  ])('refuse %s=%s', (name, value, message) => {
    expect(() => loadConfig({ [name]: value })).toThrow(message);
  });

  it('keep FHIR_SERVER_ALLOWLIST as normalised origins', () => {
    const c = loadConfig({ FHIR_SERVER_ALLOWLIST: ' https://EHR.example.org:443 , http://127.0.0.1:8080,https://b.example.org ' });
    expect(c.fhirServerAllowlist).toEqual(['https://ehr.example.org', 'http://127.0.0.1:8080', 'https://b.example.org']);
  });
});

describe('starting the service', () => {
  const run = (env: Record<string, string>) =>
    spawnSync(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
      cwd: new URL('..', import.meta.url).pathname,
      env: { PATH: process.env.PATH ?? '', PORT: '0', DATA_DIR: tempDataDir(), ...env },
      encoding: 'utf8',
      timeout: 15_000,
    });

  it('refuses to start with a trusted issuers file it cannot read', () => {
    const r = run({ CDS_TRUSTED_ISSUERS: '/nonexistent/issuers.json' });
    expect(r.status).toBe(1);
    expect(r.stdout + r.stderr).toMatch(/CDS_TRUSTED_ISSUERS \/nonexistent\/issuers\.json/);
  });

  it('refuses to start on invalid configuration, naming the variable', () => {
    const r = run({ CDS_AUTH: 'off', PORT: 'abc' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/PORT must be an integer/);
  });

  it('refuses to start on invalid rules, naming the file', () => {
    const r = run({ CDS_AUTH: 'off', RULES_DIR: '/nonexistent-rules' });
    expect(r.status).toBe(1);
    expect(r.stdout + r.stderr).toMatch(/nonexistent-rules is not a rules folder/);
    expect(r.stdout + r.stderr).not.toMatch(/\n\s+at /);
  });
});
