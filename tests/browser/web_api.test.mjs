// The page's API client (web/api.js) in plain Node, no browser, against a
// fake fetch: every request relies on the session cookie (credentials
// 'same-origin', no Authorization header); the token goes only into the one
// sign-in request, as a header, never into a URL; errors become ApiError with
// chatd's code; the stream request carries Last-Event-ID.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError, createApiClient, newIdempotencyKey } from '../../web/api.js';
import { fakeFetch, json } from './support/fakes.mjs';

const TOKEN = 'eyJhbGciOiJIUzI1NiJ9.e30.SECRET';

test('chat requests carry the cookie and no Authorization header', async () => {
  const { fetch, requests } = fakeFetch(() => json(200, { sessions: [] }));
  const api = createApiClient({ fetch });
  await api.chat('GET', '/sessions?limit=50');
  await api.chat('POST', '/sessions', { body: { title: 't' }, headers: { 'Idempotency-Key': 'k1' } });
  await api.history('ses_1');
  await api.content('msg_1');
  await api.poll('ses_1', 'c 1');
  await api.whoAmI();
  await api.signOut();
  assert.deepEqual(requests.map((r) => `${r.method} ${r.url}`), [
    'GET /api/v1/chat/sessions?limit=50',
    'POST /api/v1/chat/sessions',
    'GET /api/v1/chat/sessions/ses_1/messages',
    'GET /api/v1/chat/messages/msg_1/content',
    'GET /api/v1/chat/messages/ses_1/poll?since=c%201',
    'GET /api/v1/auth/session',
    'DELETE /api/v1/auth/session',
  ]);
  for (const r of requests) {
    assert.equal(r.credentials, 'same-origin', `${r.url}: cookie credentials`);
    assert.equal(r.headers.Authorization, undefined, `${r.url}: no Authorization header`);
  }
  assert.equal(requests[1].headers['Content-Type'], 'application/json');
  assert.equal(requests[1].headers['Idempotency-Key'], 'k1');
  assert.equal(requests[1].body, '{"title":"t"}');
});

test('signIn sends the token once, as a Bearer header, and returns who signed in', async () => {
  const { fetch, requests } = fakeFetch(() => json(200, { user_id: 'alice', expires_at: '2026-12-01T09:00:00.000Z' }));
  const api = createApiClient({ fetch });
  const who = await api.signIn(TOKEN);
  assert.deepEqual(who, { user_id: 'alice', expires_at: '2026-12-01T09:00:00.000Z' });
  assert.equal(requests.length, 1);
  assert.equal(requests[0].method, 'POST');
  assert.equal(requests[0].url, '/api/v1/auth/session');
  assert.equal(requests[0].headers.Authorization, `Bearer ${TOKEN}`);
  assert.equal(requests[0].body, undefined);
  assert.equal(requests[0].credentials, 'same-origin');
  await api.whoAmI();
  await api.chat('GET', '/sessions');
  assert.ok(!requests.slice(1).some((r) => JSON.stringify(r.headers).includes(TOKEN)), 'later requests do not carry it');
  assert.ok(!requests.some((r) => r.url.includes(TOKEN)), 'never in a URL');
});

test('failures become ApiError with the status and chatd\'s code; 204 is null', async () => {
  const answers = [
    json(401, { error: { code: 'unauthorized', message: 'sign in' } }, { 'www-authenticate': 'Bearer' }),
    new Response('<html>bad gateway</html>', { status: 502 }),
    new Response(null, { status: 204 }),
  ];
  const { fetch } = fakeFetch(() => answers.shift());
  const api = createApiClient({ fetch });
  await assert.rejects(api.whoAmI(), (err) => err instanceof ApiError && err.status === 401 &&
    err.code === 'unauthorized' && err.message === 'sign in');
  await assert.rejects(api.chat('GET', '/sessions'), (err) => err instanceof ApiError && err.status === 502 &&
    err.code === 'http_502');
  assert.equal(await api.signOut(), null);
});

test('the stream request: session id in the query, Last-Event-ID header, raw response', async () => {
  const { fetch, requests } = fakeFetch(() => new Response('', { status: 200, headers: { 'content-type': 'text/event-stream' } }));
  const api = createApiClient({ fetch });
  const ctrl = new AbortController();
  const res = await api.openStream({ sessionId: 'ses_1', lastEventId: 'msg_1.42', signal: ctrl.signal });
  assert.equal(res.headers.get('content-type'), 'text/event-stream');
  await api.openStream({ sessionId: 'ses_1', signal: ctrl.signal });
  assert.equal(requests[0].url, '/api/v1/chat/messages/stream?session_id=ses_1');
  assert.equal(requests[0].headers['Last-Event-ID'], 'msg_1.42');
  assert.equal(requests[0].headers.Accept, 'text/event-stream');
  assert.equal(requests[0].signal, ctrl.signal);
  assert.equal(requests[1].headers['Last-Event-ID'], undefined);
  for (const r of requests) {
    assert.equal(r.credentials, 'same-origin');
    assert.equal(r.headers.Authorization, undefined);
  }
});

test('idempotency keys are fresh each time', () => {
  const keys = new Set(Array.from({ length: 100 }, () => newIdempotencyKey()));
  assert.equal(keys.size, 100);
  const fallback = newIdempotencyKey({ getRandomValues: (a) => a.fill(171) });
  assert.equal(fallback, 'ab'.repeat(16));
});
