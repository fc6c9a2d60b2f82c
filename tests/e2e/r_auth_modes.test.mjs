// Scenario r: authentication modes (--auth jwt | api-keys | trusted-header)
// and the start-up refusals.
//
// - jwt HS256 (secret in $CHATD_JWT_SECRET, --jwt-issuer/--jwt-audience set):
//   a table of tokens: valid ones (aud array, no exp, exp/nbf within the 30 s
//   leeway, 255-character sub, 8100-byte token) answer 200; every bad one
//   (expired, not yet valid, non-numeric exp/nbf, wrong signature or
//   algorithm, alg none/None/NONE, wrong iss/aud, bad sub, malformed, 9000
//   bytes, no or non-Bearer Authorization) answers the one 401: same status,
//   WWW-Authenticate: Bearer realm="chatd", JSON, the same body bytes. sub
//   is the user. /healthz, /readyz and the UI need no credentials; every
//   /api/v1/chat/ endpoint does, and a refused request changes nothing.
// - jwt RS256/ES256 with a PEM public key and with a JWKS (key by kid), the
//   algorithm fixed by configuration (HS256 signed with the public key's PEM
//   bytes is refused; ES256 signatures must be JOSE r||s).
// - api-keys: two keys, two isolated users; SIGHUP re-reads the file (a
//   removed key gets 401, a new one works); a malformed file on reload keeps
//   the old keys.
// - trusted-header: shared secret and/or trusted proxy addresses.
// - chatd refuses to start with unsafe or incomplete configurations, and
//   starts with the same flags fixed (so each refusal is for that reason).
//
// Every case is a subtest with a clear label; every wait has a deadline.

import test from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { writeFile } from 'node:fs/promises';
import { waitFor, delay, mutateId, request } from './support/chatd.mjs';
import {
  withAuthChatd, asUser, makeJwt, jwsSignature, claims, nowS, b64url, b64urlJson, tokenOfLength, randomSecret,
  rsaKeyPair, ecKeyPair, writePublicKeyPem, publicJwk, writeJwks, tempDir, newApiKey, sha256Hex, writeApiKeysFile,
  assertUnauthorized, UNAUTHORIZED_BODY, rawHttp, startOutcome, assertRefused, assertStarted, headerLines,
} from './support/auth.mjs';

const ISS = 'https://issuer.example';
const AUD = 'chatd-api';
const SIM = ['--sim-tokens-per-second', '20', '--sim-min-tokens', '300', '--sim-max-tokens', '400'];

async function webDir() {
  const dir = await tempDir('chatd-web-');
  await writeFile(path.join(dir, 'index.html'), '<!doctype html><title>chat</title>');
  await writeFile(path.join(dir, 'app.js'), 'export const x = 1;');
  return dir;
}

/** /healthz, /readyz, / and /app.js answer 200 with no credentials. */
async function assertOpenEndpoints(srv, label) {
  for (const p of ['/healthz', '/readyz', '/', '/app.js']) {
    const r = await request(srv.baseUrl, 'GET', p);
    assert.equal(r.status, 200, `${label}: GET ${p} without credentials: ${r.text.slice(0, 200)}`);
  }
}

/**
 * Runs `cases` ({ name, expect: 200|401, req: () => answer }) as subtests; 401
 * answers must be the one 401. Returns the number of failed cases.
 */
async function runTable(t, cases) {
  let failures = 0;
  for (const c of cases) {
    failures += 1;
    await t.test(c.name, async () => {
      const r = await c.req();
      if (c.expect === 401) {
        assertUnauthorized(r, c.name);
      } else {
        assert.equal(r.status, c.expect, `${c.name}: expected ${c.expect}, got ${r.status}: ${r.text.slice(0, 300)}`);
        if (c.check) c.check(r);
      }
      failures -= 1;
    });
  }
  return failures;
}

/**
 * An HS256 token whose payload segment is standard base64 (with '+' or '/',
 * not in the base64url alphabet) and whose signature is right for exactly
 * those bytes: only a lenient decoder would accept it.
 */
function standardBase64Token(payload, secret) {
  const headerSeg = b64urlJson({ alg: 'HS256', typ: 'JWT' });
  for (let i = 1; i < 16; i++) {
    const seg = Buffer.from(JSON.stringify({ ...payload, pad: '>?~'.repeat(i) })).toString('base64').replace(/=+$/, '');
    if (/[+/]/.test(seg)) {
      const input = `${headerSeg}.${seg}`;
      return `${input}.${b64url(jwsSignature('HS256', input, secret))}`;
    }
  }
  throw new Error('could not make a payload whose base64 has + or /');
}

/** GET /sessions with exactly these headers. */
const listWith = (srv, headers) => () => srv.api('GET', '/sessions', undefined, headers);
const bearer = (tok) => ({ Authorization: `Bearer ${tok}` });
const isList = (r) => assert.ok(Array.isArray(r.json?.sessions), `a session list: ${r.text.slice(0, 200)}`);

// ---------------------------------------------------------------------------

test('r: jwt HS256: valid tokens are accepted, every bad one gets the same 401', { timeout: 120000 }, async (t) => {
  const SECRET = randomSecret(32);
  const web = await webDir();
  const args = ['--auth', 'jwt', '--jwt-issuer', ISS, '--jwt-audience', AUD, '--web-dir', web, ...SIM];
  await withAuthChatd({ args, env: { CHATD_JWT_SECRET: SECRET }, name: 'chatd-r-hs256' }, async (srv) => {
    const now = nowS();
    const good = (extra = {}) => claims('alice', { iss: ISS, aud: AUD, ...extra });
    const hs = (payload, opts = {}) => makeJwt(payload, { alg: 'HS256', key: SECRET, ...opts });
    const valid = hs(good());
    const [vh, vp, vs] = valid.split('.');
    const printable = Array.from({ length: 255 }, (_, i) => String.fromCharCode(0x21 + (i % 94))).join('');
    const list = (tok) => listWith(srv, bearer(tok));

    const cases = [
      // accepted
      { name: 'valid token', expect: 200, req: list(valid), check: isList },
      { name: 'aud an array containing the audience', expect: 200, req: list(hs(good({ aud: ['someone-else', AUD] }))) },
      { name: 'no exp claim (exp is optional)', expect: 200, req: list(hs(good({ exp: undefined }))) },
      { name: 'exp 10 s ago, within the 30 s leeway', expect: 200, req: list(hs(good({ exp: now - 10 }))) },
      { name: 'nbf 10 s ahead, within the 30 s leeway', expect: 200, req: list(hs(good({ nbf: now + 10 }))) },
      { name: 'nbf in the past', expect: 200, req: list(hs(good({ nbf: now - 600 }))) },
      { name: 'sub of 255 printable ASCII characters', expect: 200, req: list(hs(claims(printable, { iss: ISS, aud: AUD }))) },
      { name: 'token of 8100 bytes', expect: 200, req: list(tokenOfLength(8100, (pad) => hs(good({ pad })))) },
      // time
      { name: 'expired 120 s ago', expect: 401, req: list(hs(good({ exp: now - 120 }))) },
      { name: 'not yet valid: nbf in 600 s', expect: 401, req: list(hs(good({ nbf: now + 600 }))) },
      { name: 'exp a string', expect: 401, req: list(hs(good({ exp: String(now + 600) }))) },
      { name: 'exp a boolean', expect: 401, req: list(hs(good({ exp: true }))) },
      { name: 'nbf a string', expect: 401, req: list(hs(good({ nbf: String(now - 600) }))) },
      // signature and algorithm
      { name: 'signed with another secret', expect: 401, req: list(makeJwt(good(), { alg: 'HS256', key: randomSecret(32) })) },
      { name: 'payload changed after signing (sub bob, alice\'s signature)', expect: 401, req: list(`${vh}.${b64urlJson(claims('bob', { iss: ISS, aud: AUD }))}.${vs}`) },
      { name: 'signature removed', expect: 401, req: list(`${vh}.${vp}.`) },
      { name: 'signature of another token', expect: 401, req: list(`${vh}.${vp}.${hs(good({ jti: 'x' })).split('.')[2]}`) },
      ...['none', 'None', 'NONE'].map((alg) => (
        { name: `alg ${alg} with an empty signature`, expect: 401, req: list(makeJwt(good(), { alg: 'none', header: { alg } })) })),
      { name: 'alg none carrying the valid HS256 signature', expect: 401, req: list(`${b64urlJson({ alg: 'none', typ: 'JWT' })}.${vp}.${vs}`) },
      { name: 'alg HS512 (not the configured HS256), signed with the secret', expect: 401, req: list(makeJwt(good(), { alg: 'HS512', key: SECRET })) },
      { name: 'header alg RS256, HMAC-signed with the secret', expect: 401, req: list(hs(good(), { header: { alg: 'RS256' } })) },
      { name: 'header without alg', expect: 401, req: list(hs(good(), { rawHeader: '{"typ":"JWT"}' })) },
      // issuer and audience
      { name: 'wrong iss', expect: 401, req: list(hs(good({ iss: 'https://evil.example' }))) },
      { name: 'missing iss', expect: 401, req: list(hs(good({ iss: undefined }))) },
      { name: 'wrong aud', expect: 401, req: list(hs(good({ aud: 'other-api' }))) },
      { name: 'aud an array without the audience', expect: 401, req: list(hs(good({ aud: ['a', 'b'] }))) },
      { name: 'missing aud', expect: 401, req: list(hs(good({ aud: undefined }))) },
      // subject
      { name: 'missing sub', expect: 401, req: list(hs(good({ sub: undefined }))) },
      { name: 'empty sub', expect: 401, req: list(hs(good({ sub: '' }))) },
      { name: 'sub a number', expect: 401, req: list(hs(good({ sub: 42 }))) },
      { name: 'sub of 256 characters', expect: 401, req: list(hs(good({ sub: `${printable}x` }))) },
      { name: 'sub with a space', expect: 401, req: list(hs(good({ sub: 'alice smith' }))) },
      { name: 'sub with a control character', expect: 401, req: list(hs(good({ sub: 'alice\u0001' }))) },
      { name: 'sub with a non-ASCII character', expect: 401, req: list(hs(good({ sub: 'álice' }))) },
      // malformed
      { name: 'payload a JSON string (signed)', expect: 401, req: list(hs('"alice"')) },
      { name: 'payload not JSON (signed)', expect: 401, req: list(hs('alice')) },
      { name: 'header a JSON array (signed)', expect: 401, req: list(hs(good(), { rawHeader: '[]' })) },
      { name: 'header not JSON (signed)', expect: 401, req: list(hs(good(), { rawHeader: 'garbage' })) },
      { name: 'malformed base64url', expect: 401, req: list('!!!.@@@.###') },
      { name: 'payload in standard base64 (+ and /), correctly signed', expect: 401, req: list(standardBase64Token(good(), SECRET)) },
      { name: 'three segments of garbage', expect: 401, req: list('abc.def.ghi') },
      { name: 'one segment', expect: 401, req: list('notajwt') },
      { name: 'two segments', expect: 401, req: list(`${vh}.${vp}`) },
      { name: 'four segments', expect: 401, req: list(`${valid}.${vs}`) },
      { name: 'empty bearer token', expect: 401, req: listWith(srv, { Authorization: 'Bearer ' }) },
      { name: 'oversized 9000-byte token with a valid signature', expect: 401, req: list(tokenOfLength(9000, (pad) => hs(good({ pad })))) },
      // how the token is presented
      { name: 'no Authorization header', expect: 401, req: listWith(srv, {}) },
      { name: 'Authorization: Basic', expect: 401, req: listWith(srv, { Authorization: `Basic ${Buffer.from('alice:password').toString('base64')}` }) },
      { name: 'valid token under another scheme (Token)', expect: 401, req: listWith(srv, { Authorization: `Token ${valid}` }) },
      { name: 'valid token in an access_token query parameter (tokens stay out of URLs)', expect: 401, req: () => srv.api('GET', `/sessions?access_token=${valid}`) },
    ];
    let failures = await runTable(t, cases);

    failures += 1;
    await t.test('a request head over --max-header-bytes still answers 431, not 401', async () => {
      const huge = tokenOfLength(20000, (pad) => hs(good({ pad })));
      const r = await rawHttp(srv.baseUrl, { path: '/api/v1/chat/sessions', host: new URL(srv.baseUrl).host, headers: bearer(huge) });
      assert.equal(r.status, 431, r.raw.slice(0, 300));
      failures -= 1;
    });

    failures += 1;
    await t.test('sub is the user: two tokens of alice share sessions, bob sees none of them', async () => {
      const alice1 = asUser(srv, bearer(hs(good({ jti: 'one' }))));
      const alice2 = asUser(srv, bearer(hs(claims('alice', { iss: ISS, aud: AUD, exp: now + 900, jti: 'two' }))));
      const bob = asUser(srv, bearer(hs(claims('bob', { iss: ISS, aud: AUD }))));
      const s = await alice1.createSession({ title: 'alice in jwt mode' });
      const seen = await alice2.api('GET', `/sessions/${s.id}`);
      assert.equal(seen.status, 200, seen.text);
      assert.ok((await alice2.api('GET', '/sessions')).json.sessions.some((x) => x.id === s.id));
      assert.ok(!(await bob.api('GET', '/sessions')).json.sessions.some((x) => x.id === s.id));
      const real = await bob.api('GET', `/sessions/${s.id}`);
      const missing = await bob.api('GET', `/sessions/${mutateId(s.id)}`);
      assert.equal(real.status, 404);
      assert.equal(real.text, missing.text);
      assert.deepEqual(headerLines(real.headers), headerLines(missing.headers));
      failures -= 1;
    });

    failures += 1;
    await t.test('health, readiness and the UI need no credentials; every API endpoint does, and nothing changes', async () => {
      await assertOpenEndpoints(srv, 'jwt mode');
      const alice = asUser(srv, bearer(valid));
      const s = await alice.createSession({ title: 'untouchable' });
      const { user_message: um, assistant_message: am } = await alice.send(s.id, 'keep generating please');
      await waitFor(async () => (await alice.content(am.id)).content.length > 0, { message: 'alice\'s answer to start' });
      const before = { list: (await alice.api('GET', '/sessions?limit=200')).json, history: (await alice.api('GET', `/sessions/${s.id}/messages`)).json.messages.map((m) => m.id) };
      const noCreds = (method, p, body, headers = {}) => () => srv.api(method, p, body, headers);
      const sse = (method, p, body) => () => asUser(srv, {}).rawSse(p, { method, body, headers: body ? { 'Content-Type': 'application/json' } : {} });
      const endpoints = [
        ['GET /sessions', noCreds('GET', '/sessions')],
        ['POST /sessions', noCreds('POST', '/sessions', { title: 'intruder' })],
        ['GET /sessions/{id}', noCreds('GET', `/sessions/${s.id}`)],
        ['DELETE /sessions/{id}', noCreds('DELETE', `/sessions/${s.id}`)],
        ['GET /sessions/{id}/messages', noCreds('GET', `/sessions/${s.id}/messages`)],
        ['POST /sessions/{id}/messages', noCreds('POST', `/sessions/${s.id}/messages`, { content: 'intruder' })],
        ['POST /sessions/{id}/messages with Accept: text/event-stream', sse('POST', `/sessions/${s.id}/messages`, JSON.stringify({ content: 'intruder' }))],
        ['GET /messages/{session}/status', noCreds('GET', `/messages/${s.id}/status`)],
        ['GET /messages/{id}/content', noCreds('GET', `/messages/${am.id}/content`)],
        ['GET /messages/{user message}/content', noCreds('GET', `/messages/${um.id}/content`)],
        ['POST /messages/{id}/cancel', noCreds('POST', `/messages/${am.id}/cancel`)],
        ['GET /messages/{session}/poll', noCreds('GET', `/messages/${s.id}/poll`)],
        ['GET /messages/{id}/stream', sse('GET', `/messages/${am.id}/stream`)],
        ['GET /messages/stream?session_id=', sse('GET', `/messages/stream?session_id=${s.id}`)],
        ['a nonexistent session', noCreds('GET', `/sessions/${mutateId(s.id)}`)],
        ['a nonexistent message', noCreds('GET', `/messages/${mutateId(am.id)}/content`)],
      ];
      const bodies = new Set();
      const problems = [];
      for (const [name, req] of endpoints) {
        const r = await req();
        bodies.add(r.text);
        try { assertUnauthorized(r, `${name} without credentials`); } catch (err) { problems.push(err.message.split('\n')[0]); }
      }
      assert.deepEqual(problems, [], 'endpoints that did not answer the one 401 without credentials');
      assert.deepEqual([...bodies], [UNAUTHORIZED_BODY]);
      const after = { list: (await alice.api('GET', '/sessions?limit=200')).json, history: (await alice.api('GET', `/sessions/${s.id}/messages`)).json.messages.map((m) => m.id) };
      assert.deepEqual(after, before, 'refused requests changed the store');
      assert.equal((await alice.content(am.id)).status, 'generating', 'a refused cancel stopped the generation');
      failures -= 1;
    });
    failures += 1;
    await t.test('route errors under /api/v1/chat/ also need credentials (no 404/405 before 401)', async () => {
      const problems = [];
      for (const [name, r] of [
        ['unknown API path', await srv.api('GET', '/nope')],
        ['unknown sub-path of a session', await srv.api('GET', '/sessions/ses_x/nope')],
        ['wrong method on an API path', await srv.api('PUT', '/sessions', { title: 'x' })],
      ]) {
        try { assertUnauthorized(r, `${name} without credentials`); } catch (err) { problems.push(err.message.split('\n')[0]); }
      }
      assert.deepEqual(problems, []);
      failures -= 1;
    });
    if (failures > 0) srv.dumpStderr(`${failures} jwt HS256 case(s) failed`);
  });
});

// ---------------------------------------------------------------------------

test('r: jwt RS256 with a PEM public key: the algorithm is fixed by configuration', { timeout: 60000 }, async (t) => {
  const dir = await tempDir();
  const { publicKey, privateKey } = rsaKeyPair();
  const other = rsaKeyPair();
  const ec = ecKeyPair();
  const { file, pem } = await writePublicKeyPem(dir, 'rs256.pem', publicKey);
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const web = await webDir();
  const args = ['--auth', 'jwt', '--jwt-alg', 'RS256', '--jwt-public-key', file, '--web-dir', web, ...SIM];
  await withAuthChatd({ args, env: { CHATD_JWT_SECRET: undefined }, name: 'chatd-r-rs256' }, async (srv) => {
    const list = (tok) => listWith(srv, bearer(tok));
    const rs = (payload, opts = {}) => makeJwt(payload, { alg: 'RS256', key: privateKey, ...opts });
    const valid = rs(claims('alice'));
    const [, vp, vs] = valid.split('.');
    const cases = [
      { name: 'valid RS256 token', expect: 200, req: list(valid), check: isList },
      { name: 'RS256 signed by another key', expect: 401, req: list(makeJwt(claims('alice'), { alg: 'RS256', key: other.privateKey })) },
      { name: 'payload changed after signing', expect: 401, req: list(`${valid.split('.')[0]}.${b64urlJson(claims('bob'))}.${vs}`) },
      { name: 'HS256 signed with the public key\'s PEM bytes as HMAC secret', expect: 401, req: list(makeJwt(claims('alice'), { alg: 'HS256', key: pem })) },
      { name: 'HS256 signed with the PEM bytes without the final newline', expect: 401, req: list(makeJwt(claims('alice'), { alg: 'HS256', key: pem.trimEnd() })) },
      { name: 'HS256 signed with the public key\'s DER bytes', expect: 401, req: list(makeJwt(claims('alice'), { alg: 'HS256', key: spki })) },
      ...['none', 'None', 'NONE'].map((alg) => (
        { name: `alg ${alg} with an empty signature`, expect: 401, req: list(makeJwt(claims('alice'), { alg: 'none', header: { alg } })) })),
      { name: 'alg none carrying the valid RS256 signature', expect: 401, req: list(`${b64urlJson({ alg: 'none', typ: 'JWT' })}.${vp}.${vs}`) },
      { name: 'ES256 token (another algorithm)', expect: 401, req: list(makeJwt(claims('alice'), { alg: 'ES256', key: ec.privateKey })) },
      { name: 'expired RS256 token', expect: 401, req: list(rs(claims('alice', { exp: nowS() - 120 }))) },
      { name: 'RS256 token without sub', expect: 401, req: list(rs(claims('alice', { sub: undefined }))) },
      { name: 'no Authorization header', expect: 401, req: listWith(srv, {}) },
    ];
    let failures = await runTable(t, cases);
    failures += 1;
    await t.test('RS256 identities: sub is the user', async () => {
      const alice = asUser(srv, bearer(valid));
      const s = await alice.createSession({ title: 'rs256' });
      const again = asUser(srv, bearer(rs(claims('alice', { jti: 'again' }))));
      assert.equal((await again.api('GET', `/sessions/${s.id}`)).status, 200);
      const bob = asUser(srv, bearer(rs(claims('bob'))));
      assert.equal((await bob.api('GET', `/sessions/${s.id}`)).status, 404);
      await assertOpenEndpoints(srv, 'jwt RS256');
      failures -= 1;
    });
    if (failures > 0) srv.dumpStderr(`${failures} RS256 case(s) failed`);
  });
});

test('r: jwt ES256 with a PEM public key: JOSE (r||s) signatures only', { timeout: 60000 }, async (t) => {
  const dir = await tempDir();
  const { publicKey, privateKey } = ecKeyPair();
  const other = ecKeyPair();
  const rsa = rsaKeyPair();
  const { file, pem } = await writePublicKeyPem(dir, 'es256.pem', publicKey);
  const args = ['--auth', 'jwt', '--jwt-alg', 'ES256', '--jwt-public-key', file, ...SIM];
  await withAuthChatd({ args, env: { CHATD_JWT_SECRET: undefined }, name: 'chatd-r-es256' }, async (srv) => {
    const list = (tok) => listWith(srv, bearer(tok));
    const valid = makeJwt(claims('alice'), { alg: 'ES256', key: privateKey });
    assert.equal(Buffer.from(valid.split('.')[2], 'base64url').length, 64, 'ES256 JOSE signature is 64 bytes');
    const cases = [
      { name: 'valid ES256 token', expect: 200, req: list(valid), check: isList },
      { name: 'ES256 with a DER-encoded signature (not JOSE)', expect: 401, req: list(makeJwt(claims('alice'), { alg: 'ES256-DER', key: privateKey })) },
      { name: 'ES256 signed by another key', expect: 401, req: list(makeJwt(claims('alice'), { alg: 'ES256', key: other.privateKey })) },
      { name: 'RS256 token (another algorithm)', expect: 401, req: list(makeJwt(claims('alice'), { alg: 'RS256', key: rsa.privateKey })) },
      { name: 'HS256 signed with the public key\'s PEM bytes', expect: 401, req: list(makeJwt(claims('alice'), { alg: 'HS256', key: pem })) },
      ...['none', 'None', 'NONE'].map((alg) => (
        { name: `alg ${alg} with an empty signature`, expect: 401, req: list(makeJwt(claims('alice'), { alg: 'none', header: { alg } })) })),
      { name: 'a zero signature', expect: 401, req: list(`${valid.split('.').slice(0, 2).join('.')}.${b64url(Buffer.alloc(64))}`) },
    ];
    const failures = await runTable(t, cases);
    if (failures > 0) srv.dumpStderr(`${failures} ES256 case(s) failed`);
  });
});

test('r: jwt RS256 with a JWKS of two keys: the key is chosen by kid', { timeout: 60000 }, async (t) => {
  const dir = await tempDir();
  const k1 = rsaKeyPair();
  const k2 = rsaKeyPair();
  const file = await writeJwks(dir, 'jwks.json', [
    publicJwk(k1.publicKey, { kid: 'k1', alg: 'RS256' }),
    publicJwk(k2.publicKey, { kid: 'k2', alg: 'RS256' }),
  ]);
  const args = ['--auth', 'jwt', '--jwt-alg', 'RS256', '--jwt-jwks-file', file, ...SIM];
  await withAuthChatd({ args, env: { CHATD_JWT_SECRET: undefined }, name: 'chatd-r-jwks-rs' }, async (srv) => {
    const list = (tok) => listWith(srv, bearer(tok));
    const tok = (key, kid, sub = 'alice') => makeJwt(claims(sub), { alg: 'RS256', key: key.privateKey, kid });
    const cases = [
      { name: 'kid k1 signed with key 1', expect: 200, req: list(tok(k1, 'k1')), check: isList },
      { name: 'kid k2 signed with key 2', expect: 200, req: list(tok(k2, 'k2')), check: isList },
      { name: 'kid k1 signed with key 2', expect: 401, req: list(tok(k2, 'k1')) },
      { name: 'kid k2 signed with key 1', expect: 401, req: list(tok(k1, 'k2')) },
      { name: 'unknown kid k3 (signed with key 1)', expect: 401, req: list(tok(k1, 'k3')) },
      { name: 'kid of the wrong type (a number)', expect: 401, req: list(makeJwt(claims('alice'), { alg: 'RS256', key: k1.privateKey, header: { kid: 1 } })) },
    ];
    let failures = await runTable(t, cases);
    failures += 1;
    await t.test('tokens of either key with the same sub are the same user', async () => {
      const viaK1 = asUser(srv, bearer(tok(k1, 'k1')));
      const viaK2 = asUser(srv, bearer(tok(k2, 'k2')));
      const s = await viaK1.createSession({ title: 'jwks' });
      assert.equal((await viaK2.api('GET', `/sessions/${s.id}`)).status, 200);
      assert.equal((await asUser(srv, bearer(tok(k2, 'k2', 'bob'))).api('GET', `/sessions/${s.id}`)).status, 404);
      failures -= 1;
    });
    if (failures > 0) srv.dumpStderr(`${failures} JWKS RS256 case(s) failed`);
  });
});

test('r: jwt ES256 with a JWKS of one key: a token without kid uses it', { timeout: 60000 }, async (t) => {
  const dir = await tempDir();
  const k = ecKeyPair();
  const other = ecKeyPair();
  const jwk = publicJwk(k.publicKey, { kid: 'only', alg: 'ES256' });
  assert.equal(jwk.kty, 'EC');
  assert.equal(jwk.crv, 'P-256');
  const file = await writeJwks(dir, 'jwks.json', [jwk]);
  const args = ['--auth', 'jwt', '--jwt-alg', 'ES256', '--jwt-jwks-file', file, ...SIM];
  await withAuthChatd({ args, env: { CHATD_JWT_SECRET: undefined }, name: 'chatd-r-jwks-es' }, async (srv) => {
    const list = (tok) => listWith(srv, bearer(tok));
    const es = (key, kid) => makeJwt(claims('alice'), { alg: 'ES256', key: key.privateKey, kid });
    const cases = [
      { name: 'no kid: the single key is used', expect: 200, req: list(es(k)), check: isList },
      { name: 'kid of the key', expect: 200, req: list(es(k, 'only')), check: isList },
      { name: 'unknown kid (signed with the right key)', expect: 401, req: list(es(k, 'other')) },
      { name: 'no kid, signed with another key', expect: 401, req: list(es(other)) },
      { name: 'alg none', expect: 401, req: list(makeJwt(claims('alice'), { alg: 'none' })) },
    ];
    const failures = await runTable(t, cases);
    if (failures > 0) srv.dumpStderr(`${failures} JWKS ES256 case(s) failed`);
  });
});

test('r: jwt: --jwt-secret-env names the variable, and CHATD_AUTH sets the mode', { timeout: 60000 }, async (t) => {
  const SECRET = randomSecret(32);
  const env = { CHATD_AUTH: 'jwt', E2E_JWT_SECRET: SECRET, CHATD_JWT_SECRET: undefined };
  await withAuthChatd({ args: ['--jwt-secret-env', 'E2E_JWT_SECRET', ...SIM], env, name: 'chatd-r-secret-env' }, async (srv) => {
    const list = (tok) => listWith(srv, bearer(tok));
    const failures = await runTable(t, [
      { name: 'token signed with $E2E_JWT_SECRET', expect: 200, req: list(makeJwt(claims('alice'), { alg: 'HS256', key: SECRET })), check: isList },
      { name: 'token signed with another secret', expect: 401, req: list(makeJwt(claims('alice'), { alg: 'HS256', key: randomSecret(32) })) },
      { name: 'no credentials (CHATD_AUTH=jwt is in force)', expect: 401, req: listWith(srv, {}) },
    ]);
    if (failures > 0) srv.dumpStderr(`${failures} case(s) failed`);
  });
});

// ---------------------------------------------------------------------------

test('r: api-keys: two isolated users; SIGHUP reloads the file; a malformed file keeps the old keys', { timeout: 120000 }, async (t) => {
  const dir = await tempDir();
  const file = path.join(dir, 'api-keys.txt');
  const aliceKey = newApiKey();
  const bobKey = newApiKey();
  const carolKey = newApiKey();
  await writeApiKeysFile(file, [{ key: aliceKey, user: 'alice' }, { key: bobKey, user: 'bob' }],
    ['# chatd api keys: sha256 user', '', '   ', '# another comment']);
  const web = await webDir();
  const args = ['--auth', 'api-keys', '--api-keys-file', file, '--web-dir', web, ...SIM];
  await withAuthChatd({ args, name: 'chatd-r-apikeys' }, async (srv) => {
    const alice = asUser(srv, bearer(aliceKey));
    const bob = asUser(srv, bearer(bobKey));
    const carol = asUser(srv, bearer(carolKey));
    const statusOf = async (u) => (await u.api('GET', '/sessions')).status;
    const list = (key) => listWith(srv, bearer(key));

    let failures = await runTable(t, [
      { name: 'alice\'s key', expect: 200, req: list(aliceKey), check: isList },
      { name: 'bob\'s key', expect: 200, req: list(bobKey), check: isList },
      { name: 'an unknown key', expect: 401, req: list(newApiKey()) },
      { name: 'the SHA-256 of alice\'s key instead of the key', expect: 401, req: list(sha256Hex(aliceKey)) },
      { name: 'alice\'s key with a character more', expect: 401, req: list(`${aliceKey}x`) },
      { name: 'alice\'s key upper-cased', expect: 401, req: list(aliceKey.toUpperCase()) },
      { name: 'alice\'s key under Basic', expect: 401, req: listWith(srv, { Authorization: `Basic ${Buffer.from(`alice:${aliceKey}`).toString('base64')}` }) },
      { name: 'no Authorization header', expect: 401, req: listWith(srv, {}) },
      { name: 'empty bearer', expect: 401, req: listWith(srv, { Authorization: 'Bearer ' }) },
    ]);

    failures += 1;
    await t.test('the two keys are two isolated users', async () => {
      await assertOpenEndpoints(srv, 'api-keys mode');
      const s = await alice.createSession({ title: 'alice via api key' });
      const { assistant_message: am } = await alice.send(s.id, 'hello from alice');
      assert.ok(!(await bob.api('GET', '/sessions')).json.sessions.some((x) => x.id === s.id));
      for (const [p, missingP] of [
        [`/sessions/${s.id}`, `/sessions/${mutateId(s.id)}`],
        [`/sessions/${s.id}/messages`, `/sessions/${mutateId(s.id)}/messages`],
        [`/messages/${am.id}/content`, `/messages/${mutateId(am.id)}/content`],
      ]) {
        const real = await bob.api('GET', p);
        const missing = await bob.api('GET', missingP);
        assert.equal(real.status, 404, `bob GET ${p}: ${real.text}`);
        assert.equal(real.text, missing.text);
        assert.deepEqual(headerLines(real.headers), headerLines(missing.headers));
      }
      const cancel = await bob.api('POST', `/messages/${am.id}/cancel`);
      assert.equal(cancel.status, 404);
      assert.equal((await alice.content(am.id)).status, 'generating');
      failures -= 1;
    });

    failures += 1;
    await t.test('SIGHUP: a removed key stops working, a new key works, the others keep working', async () => {
      await writeApiKeysFile(file, [{ key: aliceKey, user: 'alice' }, { key: carolKey, user: 'carol' }]);
      process.kill(srv.proc.pid, 'SIGHUP');
      await waitFor(async () => (await statusOf(bob)) === 401, { timeoutMs: 10000, intervalMs: 50, message: 'bob\'s removed key to answer 401 after SIGHUP' });
      assertUnauthorized(await bob.api('GET', '/sessions'), 'bob after his key was removed');
      assert.equal(await statusOf(alice), 200, 'alice\'s key survives the reload');
      await waitFor(async () => (await statusOf(carol)) === 200, { timeoutMs: 5000, intervalMs: 50, message: 'carol\'s new key to work' });
      const cs = await carol.createSession({ title: 'carol' });
      assert.equal((await alice.api('GET', `/sessions/${cs.id}`)).status, 404, 'carol is a user of her own');
      assert.equal(srv.proc.exitCode, null, 'chatd still runs after SIGHUP');
      failures -= 1;
    });

    failures += 1;
    await t.test('SIGHUP with a malformed file keeps the old keys, and a later good file still loads', async () => {
      // bob's line is well-formed: a reload that applied the good lines of a bad file would let him in.
      await writeFile(file, `${sha256Hex(bobKey)} bob\nthis line is not a key\n`);
      process.kill(srv.proc.pid, 'SIGHUP');
      // Absence of change: a short bounded watch while the reload is attempted.
      const until = Date.now() + 1500;
      while (Date.now() < until) {
        assert.equal(await statusOf(alice), 200, 'alice lost access after a malformed reload');
        assert.equal(await statusOf(carol), 200, 'carol lost access after a malformed reload');
        assert.equal(await statusOf(bob), 401, 'bob got in from a malformed file');
        await delay(50);
      }
      assert.equal(srv.proc.exitCode, null, 'chatd still runs after a malformed reload');
      await writeApiKeysFile(file, [{ key: aliceKey, user: 'alice' }]);
      process.kill(srv.proc.pid, 'SIGHUP');
      await waitFor(async () => (await statusOf(carol)) === 401, { timeoutMs: 10000, intervalMs: 50, message: 'carol\'s key to stop working after the next good reload' });
      assert.equal(await statusOf(alice), 200);
      assert.equal(await statusOf(bob), 401);
      failures -= 1;
    });
    if (failures > 0) srv.dumpStderr(`${failures} api-keys case(s) failed`);
  });
});

// ---------------------------------------------------------------------------

test('r: trusted-header with a shared secret', { timeout: 60000 }, async (t) => {
  const secret = randomSecret(24);
  const web = await webDir();
  const args = ['--auth', 'trusted-header', '--trusted-secret-env', 'E2E_PROXY_SECRET', '--web-dir', web, ...SIM];
  await withAuthChatd({ args, env: { E2E_PROXY_SECRET: secret }, name: 'chatd-r-trusted-secret' }, async (srv) => {
    const h = (user, sec) => ({ ...(user !== undefined ? { 'X-Chatd-User': user } : {}), ...(sec !== undefined ? { 'X-Chatd-Proxy-Secret': sec } : {}) });
    let failures = await runTable(t, [
      { name: 'correct secret and user header', expect: 200, req: listWith(srv, h('alice', secret)), check: isList },
      { name: 'wrong secret', expect: 401, req: listWith(srv, h('alice', randomSecret(24))) },
      { name: 'secret with a character more', expect: 401, req: listWith(srv, h('alice', `${secret}x`)) },
      { name: 'missing secret', expect: 401, req: listWith(srv, h('alice')) },
      { name: 'empty secret', expect: 401, req: listWith(srv, h('alice', '')) },
      { name: 'secret but no user header', expect: 401, req: listWith(srv, h(undefined, secret)) },
      { name: 'secret and an empty user header', expect: 401, req: listWith(srv, h('', secret)) },
      { name: 'the secret as a bearer token', expect: 401, req: listWith(srv, { 'X-Chatd-User': 'alice', Authorization: `Bearer ${secret}` }) },
      { name: 'nothing', expect: 401, req: listWith(srv, {}) },
    ]);
    failures += 1;
    await t.test('the user header names the user: alice and bob are isolated', async () => {
      await assertOpenEndpoints(srv, 'trusted-header mode');
      const alice = asUser(srv, h('alice', secret));
      const bob = asUser(srv, h('bob', secret));
      const s = await alice.createSession({ title: 'behind the gateway' });
      assert.equal((await alice.api('GET', `/sessions/${s.id}`)).status, 200);
      const real = await bob.api('GET', `/sessions/${s.id}`);
      const missing = await bob.api('GET', `/sessions/${mutateId(s.id)}`);
      assert.equal(real.status, 404);
      assert.equal(real.text, missing.text);
      assert.ok(!(await bob.api('GET', '/sessions')).json.sessions.some((x) => x.id === s.id));
      failures -= 1;
    });
    if (failures > 0) srv.dumpStderr(`${failures} trusted-header case(s) failed`);
  });
});

test('r: trusted-header with --trusted-proxies: the TCP peer must be a trusted proxy', { timeout: 90000 }, async (t) => {
  const user = { 'X-Chatd-User': 'alice' };
  const secret = randomSecret(24);
  const configs = [
    {
      label: 'proxies 10.0.0.0/8 only (the test client is 127.0.0.1)',
      args: ['--trusted-proxies', '10.0.0.0/8'],
      cases: (srv) => [
        { name: 'user header from an untrusted peer', expect: 401, req: listWith(srv, user) },
        { name: 'X-Forwarded-For naming a trusted address does not help', expect: 401, req: listWith(srv, { ...user, 'X-Forwarded-For': '10.1.2.3' }) },
      ],
    },
    {
      label: 'proxies 127.0.0.1/32',
      args: ['--trusted-proxies', '127.0.0.1/32'],
      cases: (srv) => [
        { name: 'user header from the trusted peer', expect: 200, req: listWith(srv, user), check: isList },
        { name: 'no user header', expect: 401, req: listWith(srv, {}) },
        { name: 'empty user header', expect: 401, req: listWith(srv, { 'X-Chatd-User': '' }) },
      ],
    },
    {
      label: 'a list with an address: 10.0.0.0/8,127.0.0.1',
      args: ['--trusted-proxies', '10.0.0.0/8,127.0.0.1'],
      cases: (srv) => [{ name: 'user header from 127.0.0.1', expect: 200, req: listWith(srv, user), check: isList }],
    },
    {
      label: 'custom --trusted-user-header X-Remote-User',
      args: ['--trusted-proxies', '127.0.0.1/32', '--trusted-user-header', 'X-Remote-User'],
      cases: (srv) => [
        { name: 'X-Remote-User', expect: 200, req: listWith(srv, { 'X-Remote-User': 'alice' }), check: isList },
        { name: 'only the default X-Chatd-User', expect: 401, req: listWith(srv, user) },
      ],
    },
    {
      label: 'both checks: proxies 127.0.0.1/32 and a secret in a custom header',
      args: ['--trusted-proxies', '127.0.0.1/32', '--trusted-secret-env', 'E2E_PROXY_SECRET', '--trusted-secret-header', 'X-Gateway-Key'],
      cases: (srv) => [
        { name: 'user and secret', expect: 200, req: listWith(srv, { ...user, 'X-Gateway-Key': secret }), check: isList },
        { name: 'user without the secret (the peer alone is not enough)', expect: 401, req: listWith(srv, user) },
        { name: 'secret in the default header name', expect: 401, req: listWith(srv, { ...user, 'X-Chatd-Proxy-Secret': secret }) },
      ],
    },
    {
      label: 'both checks, the peer untrusted: proxies 10.0.0.0/8 and a secret',
      args: ['--trusted-proxies', '10.0.0.0/8', '--trusted-secret-env', 'E2E_PROXY_SECRET'],
      cases: (srv) => [
        { name: 'user and the right secret from an untrusted peer', expect: 401, req: listWith(srv, { ...user, 'X-Chatd-Proxy-Secret': secret }) },
      ],
    },
  ];
  for (const c of configs) {
    await t.test(c.label, async (tt) => {
      await withAuthChatd({ args: ['--auth', 'trusted-header', ...c.args, ...SIM], env: { E2E_PROXY_SECRET: secret }, name: 'chatd-r-trusted' }, async (srv) => {
        const failures = await runTable(tt, c.cases(srv));
        if (failures > 0) srv.dumpStderr(`${failures} case(s) failed`);
        assert.equal(failures, 0, `${failures} case(s) failed`);
      });
    });
  }
});

// ---------------------------------------------------------------------------

async function ipv6LoopbackWorks() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(0, '::1', () => s.close(() => resolve(true)));
  });
}

test('r: chatd refuses to start with an unsafe or incomplete auth configuration', { timeout: 180000 }, async (t) => {
  const dir = await tempDir();
  const goodKeys = path.join(dir, 'good-keys.txt');
  await writeApiKeysFile(goodKeys, [{ key: newApiKey(), user: 'alice' }]);
  const badKeys = path.join(dir, 'bad-keys.txt');
  await writeFile(badKeys, 'not-a-sha256 alice\n');
  const noUserKeys = path.join(dir, 'no-user-keys.txt');
  await writeFile(noUserKeys, `${sha256Hex(newApiKey())}\n`);
  const v6 = await ipv6LoopbackWorks();
  const secret32 = 'x'.repeat(32);

  const cases = [
    {
      name: '--auth none --host 0.0.0.0', refuse: true, args: ['--auth', 'none', '--host', '0.0.0.0'],
      check: (o) => {
        assert.match(o.stderr, /--auth none/, `stderr names --auth none: ${o.stderr.slice(-500)}`);
        assert.match(o.stderr, /loopback/i, `stderr mentions loopback: ${o.stderr.slice(-500)}`);
      },
    },
    { name: 'control: --auth jwt --host 0.0.0.0 starts (only none is loopback-only)', refuse: false, args: ['--auth', 'jwt', '--host', '0.0.0.0'], env: { CHATD_JWT_SECRET: secret32 } },
    { name: 'control: --auth none --host 127.0.0.1 starts', refuse: false, args: ['--auth', 'none', '--host', '127.0.0.1'] },
    { name: 'control: --auth none --host 127.0.0.2 starts (127.0.0.0/8 is loopback)', refuse: false, args: ['--auth', 'none', '--host', '127.0.0.2'] },
    { name: 'control: --auth none --host ::1 starts', refuse: false, args: ['--auth', 'none', '--host', '::1'], skip: v6 ? false : 'no IPv6 loopback here' },
    { name: 'jwt HS256 with a 10-byte secret', refuse: true, args: ['--auth', 'jwt'], env: { CHATD_JWT_SECRET: '0123456789' } },
    { name: 'jwt HS256 with a 31-byte secret', refuse: true, args: ['--auth', 'jwt'], env: { CHATD_JWT_SECRET: 'x'.repeat(31) } },
    { name: 'jwt HS256 with the secret variable unset', refuse: true, args: ['--auth', 'jwt'] },
    { name: 'jwt HS256 with --jwt-secret-env naming an unset variable', refuse: true, args: ['--auth', 'jwt', '--jwt-secret-env', 'E2E_NO_SUCH_SECRET'], env: { CHATD_JWT_SECRET: secret32, E2E_NO_SUCH_SECRET: undefined } },
    { name: 'control: jwt HS256 with a 32-byte secret starts', refuse: false, args: ['--auth', 'jwt'], env: { CHATD_JWT_SECRET: secret32 } },
    { name: 'api-keys with a missing file', refuse: true, args: ['--auth', 'api-keys', '--api-keys-file', path.join(dir, 'missing.txt')] },
    { name: 'api-keys with a malformed file (hash not hex)', refuse: true, args: ['--auth', 'api-keys', '--api-keys-file', badKeys] },
    { name: 'api-keys with a malformed file (no user id)', refuse: true, args: ['--auth', 'api-keys', '--api-keys-file', noUserKeys] },
    { name: 'control: api-keys with a good file starts', refuse: false, args: ['--auth', 'api-keys', '--api-keys-file', goodKeys] },
    { name: 'trusted-header with neither --trusted-proxies nor --trusted-secret-env', refuse: true, args: ['--auth', 'trusted-header'] },
    { name: 'control: trusted-header with --trusted-proxies 127.0.0.1/32 starts', refuse: false, args: ['--auth', 'trusted-header', '--trusted-proxies', '127.0.0.1/32'] },
    { name: 'control: trusted-header with --trusted-secret-env starts', refuse: false, args: ['--auth', 'trusted-header', '--trusted-secret-env', 'E2E_PROXY_SECRET'], env: { E2E_PROXY_SECRET: randomSecret(24) } },
    { name: 'an unknown --auth mode', refuse: true, args: ['--auth', 'magic'] },
  ];
  for (const c of cases) {
    await t.test(c.name, { skip: c.skip || false }, async () => {
      const o = await startOutcome({ args: c.args, env: c.env || {}, timeoutMs: 20000 });
      if (c.refuse) assertRefused(o, c.name); else assertStarted(o, c.name);
      if (c.check) c.check(o);
    });
  }
});
