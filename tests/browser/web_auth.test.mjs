// The page's sign-in state (web/auth.js) in plain Node, no browser, against a
// fake fetch and a fake clock: what the load-time check decides for each
// answer (200, 401, 404, unreachable: retried with backoff), signing in (the
// token sent once, refusals explained), signing out, a later 401 ending the
// session, and local mode.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createApiClient } from '../../web/api.js';
import { RECHECK_MAX_MS, RECHECK_MIN_MS, SignIn, isLocal } from '../../web/auth.js';
import { FakeClock, fakeFetch, json } from './support/fakes.mjs';

function setup(respond) {
  const clock = new FakeClock();
  const { fetch, requests } = fakeFetch(respond, clock);
  const events = [];
  const auth = new SignIn({
    api: createApiClient({ fetch }),
    clock,
    onSignedIn: (who) => events.push(['in', who && who.user_id]),
    onSignedOut: (why) => events.push(['out', why]),
    onUnreachable: (err) => events.push(['unreachable', err.message]),
  });
  return { auth, clock, requests, events };
}

const unauthorized = () => json(401, { error: { code: 'unauthorized', message: 'sign in' } },
                                { 'www-authenticate': 'Bearer realm="chatd"' });

test('on load: a user means signed in, 401 means signed out; one request either way', async () => {
  const a = setup(() => json(200, { user_id: 'alice', expires_at: '2026-12-01T09:00:00.000Z' }));
  assert.equal(a.auth.state, 'checking');
  await a.auth.check();
  assert.equal(a.auth.state, 'signed-in');
  assert.deepEqual(a.auth.who, { user_id: 'alice', expires_at: '2026-12-01T09:00:00.000Z' });
  assert.deepEqual(a.events, [['in', 'alice']]);
  assert.deepEqual(a.requests.map((r) => `${r.method} ${r.url}`), ['GET /api/v1/auth/session']);
  assert.equal(isLocal(a.auth.who), false);

  const b = setup(unauthorized);
  await b.auth.check();
  assert.equal(b.auth.state, 'signed-out');
  assert.deepEqual(b.events, [['out', 'not-signed-in']]);
  await b.clock.advance(10 * RECHECK_MAX_MS);
  assert.equal(b.requests.length, 1, 'signed out: no retry, no other request');
});

test('local mode: the local user with no expiry', async () => {
  const a = setup(() => json(200, { user_id: 'usr_local', expires_at: null }));
  await a.auth.check();
  assert.equal(a.auth.state, 'signed-in');
  assert.equal(isLocal(a.auth.who), true);
  assert.equal(isLocal({ user_id: 'usr_local', expires_at: '2026-12-01T09:00:00.000Z' }), false);
  assert.equal(isLocal(null), false);
});

test('a chatd without the sign-in endpoint (404): go on, the API decides', async () => {
  const a = setup(() => json(404, { error: { code: 'not_found', message: 'no such endpoint' } }));
  await a.auth.check();
  assert.equal(a.auth.state, 'signed-in');
  assert.equal(a.auth.who, null);
});

test('chatd unreachable: the check is retried with growing delays until it answers', async () => {
  let n = 0;
  const a = setup(() => {
    n += 1;
    if (n <= 5) throw new TypeError('Failed to fetch');
    return json(200, { user_id: 'alice', expires_at: '2026-12-01T09:00:00.000Z' });
  });
  await a.auth.check();
  assert.equal(a.auth.state, 'checking');
  assert.deepEqual(a.clock.pending(), [RECHECK_MIN_MS]);
  await a.clock.advance(2000 + 4000 + 8000 + 16000 + 30000);
  assert.deepEqual(a.requests.map((r) => r.at), [0, 2000, 6000, 14000, 30000, 60000]);
  assert.equal(a.auth.state, 'signed-in');
  assert.equal(a.events.filter(([e]) => e === 'unreachable').length, 5);
  assert.deepEqual(a.clock.pending(), []);
});

test('sign in: the token goes once, in the Authorization header of POST /auth/session', async () => {
  const TOKEN = 'key-0123456789abcdef';
  const a = setup((req) => {
    if (req.method === 'POST') {
      return req.headers.Authorization === `Bearer ${TOKEN}`
        ? json(200, { user_id: 'bob', expires_at: '2026-12-01T09:00:00.000Z' }) : unauthorized();
    }
    return unauthorized();
  });
  await a.auth.check();
  assert.equal(await a.auth.signIn('wrong'), 'That token was not accepted. Check it and try again.');
  assert.equal(a.auth.state, 'signed-out');
  assert.equal(await a.auth.signIn(''), '', 'an empty field sends nothing');
  assert.equal(a.requests.length, 2);
  assert.equal(await a.auth.signIn(TOKEN), '');
  assert.equal(a.auth.state, 'signed-in');
  assert.equal(a.auth.who.user_id, 'bob');
  assert.deepEqual(a.events, [['out', 'not-signed-in'], ['in', 'bob']]);
  const withToken = a.requests.filter((r) => JSON.stringify(r).includes(TOKEN));
  assert.deepEqual(withToken.map((r) => `${r.method} ${r.url}`), ['POST /api/v1/auth/session']);
  assert.equal(await a.auth.signIn(TOKEN), '', 'already signed in: nothing sent');
  assert.equal(a.requests.length, 3);
});

test('sign-in failures other than a refusal are explained', async () => {
  const answers = [json(404, { error: { code: 'not_found', message: 'no such endpoint' } }),
                   json(503, { error: { code: 'unavailable', message: 'busy' } })];
  const a = setup(() => answers.shift());
  assert.equal(await a.auth.signIn('t'), 'This chatd has no browser sign-in.');
  assert.equal(await a.auth.signIn('t'), 'Could not sign in: busy');
  assert.notEqual(a.auth.state, 'signed-in');
});

test('sign out: DELETE, then signed out; a failed DELETE keeps the state and says why', async () => {
  const answers = [json(200, { user_id: 'alice', expires_at: 'x' }), json(503, { error: { code: 'unavailable', message: 'busy' } }),
                   new Response(null, { status: 204 })];
  const a = setup(() => answers.shift());
  await a.auth.check();
  assert.equal(await a.auth.signOut(), 'Could not sign out: busy');
  assert.equal(a.auth.state, 'signed-in');
  assert.equal(await a.auth.signOut(), '');
  assert.equal(a.auth.state, 'signed-out');
  assert.deepEqual(a.requests.map((r) => r.method), ['GET', 'DELETE', 'DELETE']);
  assert.deepEqual(a.events, [['in', 'alice'], ['out', 'signed-out']]);
});

test('a later 401 ends the session once', async () => {
  const a = setup(() => json(200, { user_id: 'alice', expires_at: 'x' }));
  await a.auth.check();
  a.auth.ended();
  a.auth.ended();
  assert.equal(a.auth.state, 'signed-out');
  assert.deepEqual(a.events, [['in', 'alice'], ['out', 'ended']]);
});
