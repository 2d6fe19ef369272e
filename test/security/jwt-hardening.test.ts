import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { CdsJwtVerifier, DEFAULT_MAX_TOKEN_LIFETIME_S, type Verdict, type VerifierOptions } from '../../src/auth/jwt-verifier.js';
import { loadTrustedIssuers, TrustedIssuersError, type TrustedIssuer } from '../../src/auth/trusted-issuers.js';
import type { ReplayStore } from '../../src/store/replay-store.js';
import { behaviours, JwksServer } from '../support/jwks-server.js';
import { tempDataDir } from '../support/app.js';

/**
 * The JWT verifier against hostile tokens and hostile key servers: real keys and tokens (jose), real key set servers on
 * loopback that hang, stall, redirect, answer garbage or too much. Deadlines are performance.now() times, as the hook passes them.
 */
const AUD = 'https://cds.example.org/cds-services/lbp-imaging-order-sign';
const EHR = 'https://ehr.example.org/fhir';
const SANDBOX = 'https://sandbox.cds-hooks.org';
const SANDBOX_JKU = 'https://sandbox.cds-hooks.org/.well-known/jwks.json';
/** Slack on a deadline bound: timers and the event loop, never the server. */
const SLACK_MS = 250;

type Key = { privateKey: CryptoKey; publicJwk: JWK; alg: string; kid: string };
async function key(alg: string, kid: string): Promise<Key> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' }, alg, kid };
}

const nowS = () => Math.floor(Date.now() / 1000);
async function sign(k: Key, claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}, signOptions?: { crit?: Record<string, boolean> }): Promise<string> {
  const iat = nowS();
  const body: Record<string, unknown> = { iss: EHR, aud: AUD, exp: iat + 300, iat, jti: randomUUID(), ...claims };
  for (const [name, v] of Object.entries(body)) if (v === undefined) delete body[name];
  const protectedHeader: Record<string, unknown> = { alg: k.alg, kid: k.kid, typ: 'JWT', ...header };
  for (const [name, v] of Object.entries(protectedHeader)) if (v === undefined) delete protectedHeader[name];
  return new SignJWT(body).setProtectedHeader(protectedHeader as { alg: string }).sign(k.privateKey, signOptions);
}

const servers: JwksServer[] = [];
async function server(keys: JWK[] = []): Promise<JwksServer> {
  const s = await new JwksServer().start();
  s.keys = keys;
  servers.push(s);
  return s;
}
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.stop()));
});

/** A verifier for one issuer whose keys are at `url` (its jwks_uri); short windows so that tests can wait them out. */
function remoteVerifier(url: string, options: VerifierOptions = {}): CdsJwtVerifier {
  return new CdsJwtVerifier([{ iss: EHR, jwks_uri: url }], { jwksCooldownMs: 0, jwksFailureMs: 400, ...options });
}

async function timed(p: Promise<Verdict>): Promise<{ verdict: Verdict; ms: number }> {
  const start = performance.now();
  const verdict = await p;
  return { verdict, ms: performance.now() - start };
}
const refused = (reason: string | RegExp) => ({ ok: false, reason: typeof reason === 'string' ? reason : expect.stringMatching(reason) });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let es384: Key, es384b: Key, rs256: Key, ps256: Key, es256: Key;
beforeAll(async () => {
  [es384, es384b, rs256, ps256, es256] = await Promise.all([key('ES384', 'e-1'), key('ES384', 'e-2'), key('RS256', 'r-1'), key('PS256', 'p-1'), key('ES256', 'e256-1')]);
});

describe('inline keys are an issuer’s only keys: a jku is then ignored, never fetched', () => {
  it('a token whose jku names a live server is verified with the inline key, and the server is never contacted', async () => {
    const counter = await server([es384b.publicJwk]);
    const v = new CdsJwtVerifier([{ iss: EHR, jwks: { keys: [es384.publicJwk] } }]);
    expect(await v.verify(await sign(es384, {}, { jku: counter.url }), AUD)).toMatchObject({ ok: true, iss: EHR });
    // A key held only at that jku does not sign for the issuer.
    expect(await v.verify(await sign(es384b, {}, { jku: counter.url }), AUD)).toMatchObject(refused('no key of the issuer matches'));
    expect(counter.requests).toBe(0);
  });

  it('the CDS Hooks sandbox pinned with inline keys: ES384, its iss and its jku, accepted offline', async () => {
    const sandboxKey = await key('ES384', 'sandbox-1');
    const v = new CdsJwtVerifier([{ iss: SANDBOX, jwks: { keys: [sandboxKey.publicJwk] } }]);
    // Were the jku fetched, the call would fail offline, and online the sandbox's real keys would not hold this kid.
    const verdict = await v.verify(await sign(sandboxKey, { iss: SANDBOX }, { jku: SANDBOX_JKU }), AUD, { deadline: performance.now() + 1000 });
    expect(verdict).toEqual({ ok: true, iss: SANDBOX, jti: expect.any(String) });
  });

  it('without inline keys, a jku must be on the issuer’s list or be its jwks_uri; any other is refused unfetched', async () => {
    const listed = await server([es384.publicJwk]);
    const unlisted = await server([es384.publicJwk]);
    const v = new CdsJwtVerifier([{ iss: EHR, jku: [listed.url] }]);
    expect(await v.verify(await sign(es384, {}, { jku: listed.url }), AUD)).toMatchObject({ ok: true });
    expect(await v.verify(await sign(es384, {}, { jku: unlisted.url }), AUD)).toMatchObject(refused('jku not on the issuer allow-list'));
    expect(await v.verify(await sign(es384, {}, { jku: 42 }), AUD)).toMatchObject(refused('jku not on the issuer allow-list'));
    expect(await v.verify(await sign(es384), AUD)).toMatchObject(refused('no keys for the issuer without a jku'));
    expect([listed.requests, unlisted.requests]).toEqual([1, 0]);
  });
});

describe('key set fetches are bounded by the call’s deadline, and a failure is remembered', () => {
  it('a server that never answers: refused by the deadline; the next call in the window is refused at once, unsent; after it, tried again', async () => {
    const s = await server([es384.publicJwk]);
    s.respond = behaviours.hang;
    const v = remoteVerifier(s.url, { jwks: { timeoutMs: 600 } });
    const first = await timed(v.verify(await sign(es384), AUD, { deadline: performance.now() + 300 }));
    expect(first.verdict).toMatchObject(refused('key set fetch timed out'));
    expect(first.ms).toBeLessThan(300 + SLACK_MS);
    expect(s.requests).toBe(1);

    const second = await timed(v.verify(await sign(es384), AUD, { deadline: performance.now() + 2000 }));
    expect(second.verdict).toMatchObject(refused('key set unavailable (recent failure)'));
    expect(second.ms).toBeLessThan(SLACK_MS);
    expect(s.requests).toBe(1);

    // Past the fetch's own cap (which fails it again) and the failure window after it.
    await sleep(900);
    s.respond = behaviours.keys;
    expect(await v.verify(await sign(es384), AUD, { deadline: performance.now() + 2000 })).toMatchObject({ ok: true });
    expect(s.requests).toBe(2);
  });

  it('without a deadline, a fetch is still cut at its cap', async () => {
    const s = await server();
    s.respond = behaviours.hang;
    const v = remoteVerifier(s.url, { jwks: { timeoutMs: 300 } });
    const { verdict, ms } = await timed(v.verify(await sign(es384), AUD));
    expect(verdict).toMatchObject(refused('key set fetch timed out'));
    expect(ms).toBeLessThan(300 + SLACK_MS);
  });

  it('the cap applies when it comes before the deadline', async () => {
    const s = await server();
    s.respond = behaviours.hang;
    const v = remoteVerifier(s.url, { jwks: { timeoutMs: 200 } });
    const { verdict, ms } = await timed(v.verify(await sign(es384), AUD, { deadline: performance.now() + 5000 }));
    expect(verdict).toMatchObject(refused('key set fetch timed out'));
    expect(ms).toBeLessThan(200 + SLACK_MS);
  });

  it('a server that sends its headers and then stalls mid-body: refused by the deadline', async () => {
    const s = await server();
    s.respond = behaviours.stall;
    const { verdict, ms } = await timed(remoteVerifier(s.url).verify(await sign(es384), AUD, { deadline: performance.now() + 300 }));
    expect(verdict).toMatchObject(refused('key set fetch timed out'));
    expect(ms).toBeLessThan(300 + SLACK_MS);
  });

  it('a slow server: refused when it is slower than the deadline, accepted when it is not', async () => {
    const s = await server([es384.publicJwk]);
    s.respond = behaviours.slow(600);
    const tooSlow = await timed(remoteVerifier(s.url).verify(await sign(es384), AUD, { deadline: performance.now() + 200 }));
    expect(tooSlow.verdict).toMatchObject(refused('key set fetch timed out'));
    expect(tooSlow.ms).toBeLessThan(200 + SLACK_MS);
    expect(await remoteVerifier(s.url).verify(await sign(es384), AUD, { deadline: performance.now() + 2000 })).toMatchObject({ ok: true });
  });

  it('a server slower than one call’s deadline still fills the cache: the fetch runs on to its cap, and later calls use its keys', async () => {
    const s = await server([es384.publicJwk]);
    s.respond = behaviours.slow(700);
    const v = remoteVerifier(s.url, { jwks: { timeoutMs: 2000 } });
    expect(await v.verify(await sign(es384), AUD, { deadline: performance.now() + 300 })).toMatchObject(refused('key set fetch timed out'));
    // Meanwhile no call waits on the slow server.
    const meanwhile = await timed(v.verify(await sign(es384), AUD, { deadline: performance.now() + 1500 }));
    expect(meanwhile.verdict).toMatchObject(refused('key set unavailable (recent failure)'));
    expect(meanwhile.ms).toBeLessThan(SLACK_MS);
    await sleep(700);
    expect(await v.verify(await sign(es384), AUD, { deadline: performance.now() + 300 })).toMatchObject({ ok: true });
    expect(s.requests).toBe(1);
  });

  it('a deadline already past: refused without contacting the server, and no failure is remembered', async () => {
    const s = await server([es384.publicJwk]);
    const v = remoteVerifier(s.url);
    expect(await v.verify(await sign(es384), AUD, { deadline: performance.now() - 1 })).toMatchObject(refused(/^deadline reached/));
    expect(s.requests).toBe(0);
    expect(await v.verify(await sign(es384), AUD, { deadline: performance.now() + 2000 })).toMatchObject({ ok: true });
  });

  it('calls at once share one fetch, each bounded by its own deadline', async () => {
    const s = await server([es384.publicJwk]);
    s.respond = behaviours.slow(400);
    const v = remoteVerifier(s.url);
    const start = performance.now();
    const [short, long1, long2] = await Promise.all([
      timed(v.verify(await sign(es384), AUD, { deadline: start + 150 })),
      timed(v.verify(await sign(es384), AUD, { deadline: start + 3000 })),
      timed(v.verify(await sign(es384), AUD, { deadline: start + 3000 })),
    ]);
    expect(short.verdict).toMatchObject(refused('key set fetch timed out'));
    expect(short.ms).toBeLessThan(150 + SLACK_MS);
    // The caller that gave up did not take the others' fetch with it.
    expect(long1.verdict).toMatchObject({ ok: true });
    expect(long2.verdict).toMatchObject({ ok: true });
    expect(s.requests).toBe(1);
  });

  it('a failed refetch for an unknown kid leaves the keys already fetched in use', async () => {
    const s = await server([es384.publicJwk]);
    const v = remoteVerifier(s.url);
    expect(await v.verify(await sign(es384), AUD)).toMatchObject({ ok: true });
    s.respond = behaviours.body(500, 'down');
    expect(await v.verify(await sign(es384b), AUD)).toMatchObject(refused('key set answered HTTP 500'));
    expect(await v.verify(await sign(es384b), AUD)).toMatchObject(refused('key set unavailable (recent failure)'));
    expect(await v.verify(await sign(es384), AUD)).toMatchObject({ ok: true });
    expect(s.requests).toBe(2);
  });
});

describe('a key set answer must be a small JSON set of public keys, fetched without redirects', () => {
  it('10 MB with its Content-Length: refused', async () => {
    const s = await server();
    s.respond = behaviours.huge(10 * 1024 * 1024, true);
    expect(await remoteVerifier(s.url).verify(await sign(es384), AUD, { deadline: performance.now() + 2000 })).toMatchObject(refused('key set too large'));
  });

  it('a Content-Length over the cap is refused on the header, before any body is waited for', async () => {
    const s = await server();
    s.respond = behaviours.declared(10 * 1024 * 1024);
    expect(await remoteVerifier(s.url).verify(await sign(es384), AUD, { deadline: performance.now() + 2000 })).toMatchObject(refused('key set too large'));
  });

  it('10 MB streamed without a length: refused once the bytes read pass the cap', async () => {
    const s = await server();
    s.respond = behaviours.huge(10 * 1024 * 1024, false);
    expect(await remoteVerifier(s.url).verify(await sign(es384), AUD, { deadline: performance.now() + 2000 })).toMatchObject(refused('key set too large'));
  });

  it('an endless answer: the reader stops and drops the connection, the server writes only a fraction', async () => {
    const s = await server();
    const total = 1024 * 1024 * 1024;
    s.respond = behaviours.huge(total, false);
    expect(await remoteVerifier(s.url).verify(await sign(es384), AUD, { deadline: performance.now() + 5000 })).toMatchObject(refused('key set too large'));
    await s.lastClosed;
    expect(s.bytesWritten).toBeLessThan(total / 8);
  });

  it('exactly the cap is read; one byte over is refused', async () => {
    const s = await server([es384.publicJwk]);
    const body = JSON.stringify({ keys: s.keys });
    s.respond = behaviours.body(200, body, { 'content-type': 'application/json' });
    expect(await remoteVerifier(s.url, { jwks: { maxBytes: Buffer.byteLength(body) } }).verify(await sign(es384), AUD)).toMatchObject({ ok: true });
    expect(await remoteVerifier(s.url, { jwks: { maxBytes: Buffer.byteLength(body) - 1 } }).verify(await sign(es384), AUD)).toMatchObject(refused('key set too large'));
  });

  it('a redirect is not followed, and the failure is remembered', async () => {
    const target = await server([es384.publicJwk]);
    const s = await server();
    s.respond = behaviours.redirect(target.url);
    const v = remoteVerifier(s.url);
    expect(await v.verify(await sign(es384), AUD)).toMatchObject(refused('key set answered HTTP 302'));
    expect(await v.verify(await sign(es384), AUD)).toMatchObject(refused('key set unavailable (recent failure)'));
    expect([s.requests, target.requests]).toEqual([1, 0]);
  });

  it.each([
    ['an error status', behaviours.body(500, JSON.stringify({ keys: [] })), 'key set answered HTTP 500'],
    ['a 2xx other than 200', behaviours.body(203, '{"keys":[]}'), 'key set answered HTTP 203'],
    ['garbage', behaviours.body(200, '\u0000\u00ff<html>not json', { 'content-type': 'text/html' }), 'key set not JSON'],
    ['JSON that is not a key set', behaviours.body(200, '{"hello":"world"}'), /^key set refused: not a JWKS/],
    ['keys that are not JWKs', behaviours.body(200, '{"keys":[1,2]}'), /^key set refused: key 0 is not a JWK/],
  ])('%s: refused', async (_name, respond, reason) => {
    const s = await server();
    s.respond = respond;
    expect(await remoteVerifier(s.url).verify(await sign(es384), AUD)).toMatchObject(refused(reason));
  });

  it('more keys than the cap: refused', async () => {
    const s = await server([...Array.from({ length: 101 }, (_, i): JWK => ({ ...es384b.publicJwk, kid: `k-${i}` })), es384.publicJwk]);
    expect(await remoteVerifier(s.url).verify(await sign(es384), AUD)).toMatchObject(refused(/^key set refused: more than 100 keys/));
    s.keys = s.keys.slice(-100);
    expect(await remoteVerifier(s.url).verify(await sign(es384), AUD)).toMatchObject({ ok: true });
  });

  it('a set that publishes a private key is never used, not even its public keys', async () => {
    const { privateKey } = await generateKeyPair('ES384', { extractable: true });
    const leaked = { ...(await exportJWK(privateKey)), kid: 'leaked' };
    const s = await server([es384.publicJwk, leaked]);
    expect(await remoteVerifier(s.url).verify(await sign(es384), AUD)).toMatchObject(refused(/^key set refused: key 1 holds private key material \("d"\)/));
  });
});

describe('token lifetime and replay ids', () => {
  it(`exp - iat over the cap is refused (a signed token: the issuer's doing), at the cap accepted; default ${DEFAULT_MAX_TOKEN_LIFETIME_S} s`, async () => {
    const v = new CdsJwtVerifier([{ iss: EHR, jwks: { keys: [es384.publicJwk] } }]);
    const iat = nowS();
    expect(await v.verify(await sign(es384, { iat, exp: iat + 300 }), AUD)).toMatchObject({ ok: true });
    expect(await v.verify(await sign(es384, { iat, exp: iat + 301 }), AUD)).toEqual({ ok: false, reason: 'token lifetime too long', iss: EHR, signatureVerified: true });
  });

  it('any cap: a token is accepted exactly when its lifetime is within it', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 30, max: 3600 }), fc.integer({ min: 1, max: 4000 }), async (cap, lifetime) => {
        const v = new CdsJwtVerifier([{ iss: EHR, jwks: { keys: [es256.publicJwk] } }], { maxTokenLifetimeS: cap });
        const iat = nowS() - Math.min(lifetime - 1, 30);
        const verdict = await v.verify(await sign(es256, { iat, exp: iat + lifetime }), AUD);
        expect(verdict.ok).toBe(lifetime <= cap);
        if (!verdict.ok) expect(verdict.reason).toBe('token lifetime too long');
      }),
      { numRuns: 40 },
    );
  });

  it('a replay id is kept until the token could no longer be accepted (exp plus the skew), and never longer than the cap allows', async () => {
    const kept: Array<{ until: number; at: number }> = [];
    const recording: ReplayStore = { remember: async (_k, until, at) => (kept.push({ until, at }), true) };
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: -59, max: 60 }), fc.integer({ min: 1, max: 300 }), async (iatOffset, lifetime) => {
        kept.length = 0;
        const v = new CdsJwtVerifier([{ iss: EHR, jwks: { keys: [es256.publicJwk] } }], { replays: recording });
        const iat = nowS() + iatOffset;
        const verdict = await v.verify(await sign(es256, { iat, exp: iat + lifetime }), AUD);
        expect(verdict.ok).toBe(true);
        expect(kept).toHaveLength(1);
        expect(kept[0]!.until).toBe((iat + lifetime + 60) * 1000);
        expect(kept[0]!.until).toBeLessThanOrEqual(kept[0]!.at + (DEFAULT_MAX_TOKEN_LIFETIME_S + 2 * 60 + 1) * 1000);
      }),
      { numRuns: 40 },
    );
  });

  it('a replay just before exp plus the skew is still refused', async () => {
    let clock = Date.now();
    const v = new CdsJwtVerifier([{ iss: EHR, jwks: { keys: [es384.publicJwk] } }], { now: () => clock });
    const iat = Math.floor(clock / 1000);
    const token = await sign(es384, { iat, exp: iat + 300 });
    expect(await v.verify(token, AUD)).toMatchObject({ ok: true });
    clock = (iat + 300 + 59) * 1000;
    expect(await v.verify(token, AUD)).toEqual({ ok: false, reason: 'jti replayed', iss: EHR, signatureVerified: true });
    clock = (iat + 300 + 61) * 1000;
    expect(await v.verify(token, AUD)).toMatchObject(refused('token expired'));
  });

  it('a replay store that does not answer by the deadline refuses the token', async () => {
    const stuck: ReplayStore = { remember: () => new Promise(() => undefined) };
    const failing: ReplayStore = { remember: async () => Promise.reject(new Error('connection refused')) };
    const { verdict, ms } = await timed(
      new CdsJwtVerifier([{ iss: EHR, jwks: { keys: [es384.publicJwk] } }], { replays: stuck }).verify(await sign(es384), AUD, { deadline: performance.now() + 200 }),
    );
    expect(verdict).toMatchObject(refused('replay store unavailable'));
    expect(ms).toBeLessThan(200 + SLACK_MS);
    expect(await new CdsJwtVerifier([{ iss: EHR, jwks: { keys: [es384.publicJwk] } }], { replays: failing }).verify(await sign(es384), AUD)).toMatchObject(
      refused('replay store unavailable'),
    );
  });
});

describe('headers, keys and sizes', () => {
  const inline = (...keys: JWK[]) => new CdsJwtVerifier([{ iss: EHR, jwks: { keys } }]);

  it('typ, when present, is JWT', async () => {
    const v = inline(es384.publicJwk);
    expect(await v.verify(await sign(es384, {}, { typ: 'JWT' }), AUD)).toMatchObject({ ok: true });
    expect(await v.verify(await sign(es384, {}, { typ: 'application/jwt' }), AUD)).toMatchObject({ ok: true });
    expect(await v.verify(await sign(es384, {}, { typ: undefined }), AUD)).toMatchObject({ ok: true });
    expect(await v.verify(await sign(es384, {}, { typ: 'at+jwt' }), AUD)).toMatchObject(refused('typ not JWT'));
    expect(await v.verify(await sign(es384, {}, { typ: 7 }), AUD)).toMatchObject(refused('typ not JWT'));
  });

  it('aud may be an array holding the URL called, and only then', async () => {
    const v = inline(es384.publicJwk);
    expect(await v.verify(await sign(es384, { aud: ['https://other.example.org', AUD] }), AUD)).toMatchObject({ ok: true });
    expect(await v.verify(await sign(es384, { aud: ['https://other.example.org'] }), AUD)).toMatchObject({ ok: false, signatureVerified: true });
  });

  it('no kid: accepted with a single key, refused when several keys could sign', async () => {
    expect(await inline(es384.publicJwk).verify(await sign(es384, {}, { kid: undefined }), AUD)).toMatchObject({ ok: true });
    expect(await inline(es384.publicJwk, es384b.publicJwk).verify(await sign(es384, {}, { kid: undefined }), AUD)).toMatchObject(
      refused('several keys of the issuer match and the token names no kid'),
    );
  });

  it('a key is used only for the algorithms of its type', async () => {
    // An EC token naming an RSA key's kid, an RSA token naming an EC key's kid, PS256 with a key pinned to RS256.
    const v = inline(rs256.publicJwk, es384.publicJwk, { ...ps256.publicJwk, alg: 'RS256' });
    expect(await v.verify(await sign(es384, {}, { kid: 'r-1' }), AUD)).toMatchObject(refused('no key of the issuer matches'));
    expect(await v.verify(await sign(rs256, {}, { kid: 'e-1' }), AUD)).toMatchObject(refused('no key of the issuer matches'));
    expect(await v.verify(await sign(ps256), AUD)).toMatchObject(refused('no key of the issuer matches'));
    expect(await v.verify(await sign(rs256), AUD)).toMatchObject({ ok: true });
  });

  it('a crit header is refused', async () => {
    const token = await sign(es384, {}, { crit: ['x-ehr'], 'x-ehr': true }, { crit: { 'x-ehr': true } });
    expect(await inline(es384.publicJwk).verify(token, AUD)).toEqual({ ok: false, reason: 'crit header not understood', iss: EHR, signatureVerified: false });
  });

  it('jti is a string of 1 to 256 characters', async () => {
    const v = inline(es384.publicJwk);
    expect(await v.verify(await sign(es384, { jti: 'j'.repeat(256) }), AUD)).toMatchObject({ ok: true });
    for (const jti of ['j'.repeat(257), '', 42, { id: 1 }]) {
      expect(await v.verify(await sign(es384, { jti }), AUD)).toEqual({ ok: false, reason: 'jti not a string of 1 to 256 characters', iss: EHR, signatureVerified: true });
    }
  });

  it('a token longer than 16 KiB is refused before it is decoded; a long one under it is verified', async () => {
    const v = inline(es384.publicJwk);
    expect(await v.verify(await sign(es384, { pad: 'x'.repeat(11_000) }), AUD)).toMatchObject({ ok: true });
    expect(await v.verify(await sign(es384, { pad: 'x'.repeat(13_000) }), AUD)).toMatchObject(refused('token too large'));
    expect(await v.verify(`${'a'.repeat(20_000)}.${'b'.repeat(20_000)}.c`, AUD)).toMatchObject(refused('token too large'));
  });

  it('says whether the signature verified: failures before it count against the sender, after it against the issuer', async () => {
    const v = inline(es384.publicJwk);
    const before = [
      await sign(es384, { iss: 'https://unknown.example.org' }),
      await sign(es384b, {}, { kid: 'e-1' }),
      'not-a-token',
      (await sign(es384)).slice(0, -6) + 'AAAAAA',
    ];
    for (const t of before) expect(await v.verify(t, AUD)).toMatchObject({ ok: false, signatureVerified: false });
    const after = [await sign(es384, { exp: nowS() - 120, iat: nowS() - 200 }), await sign(es384, { aud: 'https://elsewhere.example.org' }), await sign(es384, { nbf: nowS() + 300 })];
    for (const t of after) expect(await v.verify(t, AUD)).toMatchObject({ ok: false, signatureVerified: true });
  });
});

describe('the trusted issuers file', () => {
  const file = (issuers: unknown) => {
    const path = join(tempDataDir(), 'issuers.json');
    writeFileSync(path, JSON.stringify(issuers));
    return path;
  };

  it('key set URLs are https, or http on the loopback interface only', async () => {
    const ok: TrustedIssuer[] = [
      { iss: 'a', jwks_uri: 'https://ehr.example.org/jwks' },
      { iss: 'b', jwks_uri: 'http://127.0.0.1:8080/jwks' },
      { iss: 'c', jku: ['http://localhost/jwks', 'http://[::1]:9/jwks', 'https://x.example.org/jwks'] },
    ];
    expect(await loadTrustedIssuers(file(ok))).toEqual(ok);
    for (const bad of [
      { iss: 'a', jwks_uri: 'http://ehr.example.org/jwks' },
      { iss: 'a', jku: ['https://ok.example.org/jwks', 'http://10.0.0.1/jwks'] },
      { iss: 'a', jwks_uri: 'http://127.0.0.1.example.org/jwks' },
    ]) {
      await expect(loadTrustedIssuers(file([bad]))).rejects.toThrow(/must be https \(http only on 127\.0\.0\.1, localhost or \[::1\]\)/);
    }
  });

  it('inline keys must be public, asymmetric, at most 100, and exclude jwks_uri and jku', async () => {
    const { privateKey } = await generateKeyPair('ES384', { extractable: true });
    const cases: Array<[unknown, RegExp]> = [
      [{ keys: [es384.publicJwk, await exportJWK(privateKey)] }, /key 1 holds private key material \("d"\)/],
      [{ keys: [{ kty: 'oct', k: 'c2VjcmV0' }] }, /symmetric key/],
      [{ keys: Array.from({ length: 101 }, () => es384.publicJwk) }, /more than 100 keys/],
    ];
    for (const [jwks, message] of cases) {
      await expect(loadTrustedIssuers(file([{ iss: 'a', jwks }]))).rejects.toThrow(message);
      expect(() => new CdsJwtVerifier([{ iss: 'a', jwks: jwks as never }])).toThrow(TrustedIssuersError);
    }
    await expect(loadTrustedIssuers(file([{ iss: 'a', jwks: { keys: [es384.publicJwk] }, jku: ['https://x.example.org/jwks'] }]))).rejects.toThrow(
      /inline jwks are the issuer’s only keys/,
    );
    expect(await loadTrustedIssuers(file([{ iss: SANDBOX, jwks: { keys: [es384.publicJwk] } }]))).toHaveLength(1);
  });
});
