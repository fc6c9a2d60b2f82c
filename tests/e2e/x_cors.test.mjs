// Scenario x: CORS for browser apps on other origins. Nothing is allowed by
// default; with --cors-origins the listed origins get answers that name them
// exactly with credentials allowed (never `*`), preflights are answered for
// the methods a path takes, event streams carry the same headers, and every
// other origin gets no grant and cannot change anything.

import test from 'node:test';
import assert from 'node:assert/strict';
import { withAuthChatd, authHeaders, makeJwt, claims, randomSecret, rawSseRequest, startOutcome, assertRefused } from './support/auth.mjs';

const SECRET = randomSecret(32);
const ENV = { CHATD_JWT_SECRET: SECRET };
const APP = 'https://app.example.com';
const token = makeJwt(claims('alice'), { alg: 'HS256', key: SECRET });
const preflight = (srv, path, origin, method, requestHeaders = 'authorization, content-type') =>
  srv.http('OPTIONS', path, undefined, { Origin: origin, 'Access-Control-Request-Method': method, 'Access-Control-Request-Headers': requestHeaders });

test('x: nothing is allowed by default', { timeout: 30000 }, async () => {
  await withAuthChatd({ args: ['--auth', 'jwt'], env: ENV, name: 'chatd-x1' }, async (srv) => {
    const pre = await preflight(srv, '/api/v1/chat/sessions', APP, 'POST');
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get('access-control-allow-origin'), null);
    const get = await srv.api('GET', '/sessions', undefined, { ...authHeaders(token), Origin: APP });
    assert.equal(get.status, 200);
    assert.equal(get.headers.get('access-control-allow-origin'), null);
    const post = await srv.api('POST', '/sessions', {}, { ...authHeaders(token), Origin: APP });
    assert.equal(post.status, 403);
    assert.equal(post.json.error.code, 'cross_origin');
  });
});

test('x: a listed origin is granted, with credentials, streams included', { timeout: 30000 }, async () => {
  await withAuthChatd({ args: ['--auth', 'jwt', '--cors-origins', `${APP},http://localhost:5173`], env: ENV, name: 'chatd-x2' }, async (srv) => {
    const pre = await preflight(srv, '/api/v1/chat/sessions', APP, 'POST');
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get('access-control-allow-origin'), APP);
    assert.equal(pre.headers.get('access-control-allow-credentials'), 'true');
    assert.match(pre.headers.get('access-control-allow-methods'), /\bPOST\b/);
    assert.match(pre.headers.get('access-control-allow-headers'), /Authorization/);
    assert.match(pre.headers.get('access-control-allow-headers'), /Last-Event-ID/);
    assert.match(pre.headers.get('vary'), /Origin/);
    // A method the path does not take gets no grant.
    const wrong = await preflight(srv, '/api/v1/chat/sessions', APP, 'DELETE');
    assert.equal(wrong.headers.get('access-control-allow-origin'), null);

    const created = await srv.api('POST', '/sessions', { title: 'from the app' }, { ...authHeaders(token), Origin: APP });
    assert.equal(created.status, 201, created.text);
    assert.equal(created.headers.get('access-control-allow-origin'), APP);
    assert.match(created.headers.get('access-control-expose-headers'), /Retry-After/);
    // The app can read a 401 too.
    const denied = await srv.api('GET', '/sessions', undefined, { Origin: APP });
    assert.equal(denied.status, 401);
    assert.equal(denied.headers.get('access-control-allow-origin'), APP);
    // Event streams carry the grant in their hand-written head.
    const stream = await rawSseRequest(srv.url(`/api/v1/chat/messages/stream?session_id=${created.json.id}`),
      { headers: { ...authHeaders(token), Origin: APP } });
    assert.equal(stream.status, 200);
    assert.equal(stream.headers.get('access-control-allow-origin'), APP);
    assert.equal(stream.headers.get('access-control-allow-credentials'), 'true');

    // Another origin: no grant, no change.
    const evil = 'https://evil.example';
    const pre2 = await preflight(srv, '/api/v1/chat/sessions', evil, 'POST');
    assert.equal(pre2.headers.get('access-control-allow-origin'), null);
    const post2 = await srv.api('POST', '/sessions', {}, { ...authHeaders(token), Origin: evil });
    assert.equal(post2.status, 403);
    const list = await srv.api('GET', '/sessions', undefined, { ...authHeaders(token), Origin: evil });
    assert.equal(list.headers.get('access-control-allow-origin'), null);
    assert.equal(list.json.sessions.length, 1);
  });
});

test('x: a wildcard or a URL is not an origin', { timeout: 30000 }, async () => {
  for (const bad of ['*', 'https://app.example.com/path', 'app.example.com']) {
    assertRefused(await startOutcome({ args: ['--auth', 'jwt', '--cors-origins', bad], env: ENV }), `--cors-origins ${bad}`);
  }
});
