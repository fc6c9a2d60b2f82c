// Scenario v: browser sessions. EventSource cannot send an Authorization
// header, so a browser trades its token once (POST /api/v1/auth/session) for
// an HttpOnly, SameSite=Strict cookie and uses that for every request and
// stream. The cookie: works for the API and SSE (the `eventsource` client
// sending it as a browser would); cannot renew itself; ends with the token's
// exp; ends when its API key is revoked; cannot be forged or altered; is
// Secure unless the Host is loopback; and DELETE clears it.

import test from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { waitFor, TERMINAL } from './support/chatd.mjs';
import {
  withAuthChatd, makeJwt, claims, randomSecret, authHeaders, authStream, assertUnauthorized,
  newApiKey, writeApiKeysFile, tempDir, rawHttp, nowS,
} from './support/auth.mjs';

const SECRET = randomSecret(32);
const JWT_ARGS = ['--auth', 'jwt', '--sim-tokens-per-second', '50', '--sim-min-tokens', '60', '--sim-max-tokens', '80'];
const ENV = { CHATD_JWT_SECRET: SECRET };

/** Trades a credential for the session cookie; returns { res, cookie (name=value), attributes }. */
async function signIn(srv, headers) {
  const res = await srv.http('POST', '/api/v1/auth/session', undefined, headers);
  const set = res.headers.get('set-cookie') || '';
  const [pair, ...attributes] = set.split(';').map((s) => s.trim());
  return { res, cookie: pair, attributes };
}

test('v: a token buys a cookie that works for the API and for streams', { timeout: 60000 }, async () => {
  await withAuthChatd({ args: JWT_ARGS, env: ENV, name: 'chatd-v1' }, async (srv) => {
    const exp = nowS() + 3600;
    const token = makeJwt(claims('alice', { exp }), { alg: 'HS256', key: SECRET });
    const { res, cookie, attributes } = await signIn(srv, authHeaders(token));
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.user_id, 'alice');
    assert.equal(Date.parse(res.json.expires_at), exp * 1000, 'the session ends with the token');
    assert.match(cookie, /^chatd_session=[A-Za-z0-9_.-]+$/);
    for (const a of ['HttpOnly', 'SameSite=Strict', 'Path=/api/']) assert.ok(attributes.includes(a), `${a} in ${attributes}`);
    const maxAge = Number(attributes.find((a) => a.startsWith('Max-Age=')).slice(8));
    assert.ok(maxAge > 3500 && maxAge <= 3600, `Max-Age ${maxAge}`);
    assert.ok(!attributes.includes('Secure'), 'no Secure on loopback, where there is no TLS');
    assert.ok(!cookie.includes(token) && !cookie.includes(token.split('.')[2]), 'the cookie does not carry the token');

    const withCookie = { Cookie: cookie };
    const who = await srv.http('GET', '/api/v1/auth/session', undefined, withCookie);
    assert.equal(who.status, 200);
    assert.equal(who.json.user_id, 'alice');
    const s = await srv.api('POST', '/sessions', { title: 'by cookie' }, withCookie);
    assert.equal(s.status, 201, s.text);
    const sent = await srv.api('POST', `/sessions/${s.json.id}/messages`, { content: 'hello' }, withCookie);
    assert.equal(sent.status, 202, sent.text);
    const m = sent.json.assistant_message;
    // The SSE stream, authenticated by nothing but the cookie, as a browser's EventSource.
    const stream = authStream(srv.url(`/api/v1/chat/messages/stream?session_id=${s.json.id}`), { headers: withCookie });
    await stream.opened();
    const done = await stream.waitForTerminal();
    assert.ok(TERMINAL.has(done.data.status));
    const text = stream.deltas().map((d) => d.data.text).join('');
    const stored = await srv.api('GET', `/messages/${m.id}/content`, undefined, withCookie);
    assert.equal(text, stored.json.content);
    stream.close();
  });
});

test('v: a cookie cannot renew itself, be altered, or outlive its token', { timeout: 60000 }, async () => {
  await withAuthChatd({ args: [...JWT_ARGS, '--jwt-leeway-s', '0'], env: ENV, name: 'chatd-v2' }, async (srv) => {
    const long = makeJwt(claims('alice', { exp: nowS() + 3600 }), { alg: 'HS256', key: SECRET });
    const { cookie } = await signIn(srv, authHeaders(long));
    // Only the credential makes a session.
    assertUnauthorized(await srv.http('POST', '/api/v1/auth/session', undefined, { Cookie: cookie }), 'renewal by cookie');
    // Altered: another user's name, a changed signature, garbage.
    const [name, value] = cookie.split('=');
    const [claimsPart, sig] = value.split('.');
    const asBob = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(claimsPart, 'base64url')), u: 'bob' })).toString('base64url');
    for (const bad of [`${name}=${asBob}.${sig}`, `${name}=${claimsPart}.${sig.slice(0, -2)}AA`, `${name}=garbage`, `${name}=`]) {
      assertUnauthorized(await srv.api('GET', '/sessions', undefined, { Cookie: bad }), bad);
    }
    // A token that expires in 2 s makes a cookie that ends with it.
    const short = makeJwt(claims('alice', { exp: nowS() + 2 }), { alg: 'HS256', key: SECRET });
    const brief = await signIn(srv, authHeaders(short));
    assert.equal(brief.res.status, 200, brief.res.text);
    assert.equal((await srv.api('GET', '/sessions', undefined, { Cookie: brief.cookie })).status, 200);
    const expired = await waitFor(async () => {
      const r = await srv.api('GET', '/sessions', undefined, { Cookie: brief.cookie });
      return r.status === 401 ? r : null;
    }, { timeoutMs: 10000, intervalMs: 200, message: 'the cookie to end with its token' });
    assertUnauthorized(expired, 'expired cookie');
    // The long one still works, and an Authorization header wins over a cookie.
    assert.equal((await srv.api('GET', '/sessions', undefined, { Cookie: cookie })).status, 200);
    assertUnauthorized(await srv.api('GET', '/sessions', undefined, { Cookie: cookie, Authorization: 'Bearer nope' }), 'bad header beside a good cookie');
  });
});

test('v: sign-out clears the cookie; Secure is set when the Host is not loopback', { timeout: 60000 }, async () => {
  await withAuthChatd({ args: JWT_ARGS, env: ENV, name: 'chatd-v3' }, async (srv) => {
    const token = makeJwt(claims('alice', { exp: nowS() + 3600 }), { alg: 'HS256', key: SECRET });
    const out = await srv.http('DELETE', '/api/v1/auth/session');
    assert.equal(out.status, 204);
    assert.match(out.headers.get('set-cookie'), /^chatd_session=; Path=\/api\/; Max-Age=0; HttpOnly; SameSite=Strict/);
    // Behind a TLS-terminating proxy the Host is the public name.
    const r = await rawHttp(srv.baseUrl, {
      method: 'POST', path: '/api/v1/auth/session', host: 'chat.example.com',
      headers: { Authorization: `Bearer ${token}` },
    });
    assert.equal(r.status, 200, r.text);
    assert.match(r.headers.get('set-cookie'), /; Secure$/);
  });
});

test('v: revoking an API key ends the sessions made from it', { timeout: 60000 }, async () => {
  const dir = await tempDir();
  const file = path.join(dir, 'keys.txt');
  const alice = newApiKey();
  const bob = newApiKey();
  await writeApiKeysFile(file, [{ key: alice, user: 'alice' }, { key: bob, user: 'bob' }]);
  await withAuthChatd({ args: ['--auth', 'api-keys', '--api-keys-file', file], name: 'chatd-v4' }, async (srv) => {
    const a = await signIn(srv, authHeaders(alice));
    const b = await signIn(srv, authHeaders(bob));
    assert.equal(a.res.json.user_id, 'alice');
    assert.equal(a.res.json.expires_at !== null, true, 'a key session still ends after --session-max-age-s');
    assert.equal((await srv.api('GET', '/sessions', undefined, { Cookie: a.cookie })).status, 200);
    await writeApiKeysFile(file, [{ key: bob, user: 'bob' }]);
    process.kill(srv.proc.pid, 'SIGHUP');
    const revoked = await waitFor(async () => {
      const r = await srv.api('GET', '/sessions', undefined, { Cookie: a.cookie });
      return r.status === 401 ? r : null;
    }, { timeoutMs: 10000, message: 'alice\'s session to end with her key' });
    assertUnauthorized(revoked, 'session of a revoked key');
    assert.equal((await srv.api('GET', '/sessions', undefined, { Cookie: b.cookie })).status, 200);
  });
});

test('v: in none mode the session endpoint names the local user and sets no cookie', { timeout: 30000 }, async () => {
  await withAuthChatd({ args: [], name: 'chatd-v5' }, async (srv) => {
    const r = await srv.http('POST', '/api/v1/auth/session');
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { user_id: 'usr_local', expires_at: null });
    assert.equal(r.headers.get('set-cookie'), null);
  });
});
