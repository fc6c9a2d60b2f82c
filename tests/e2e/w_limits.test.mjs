// Scenario w: limits. Each one, reached, answers as specified — 429 with
// Retry-After for a user's own limits, 503 with Retry-After for the server's —
// stores nothing for the refused request, and leaves other users served:
// concurrent generations per user, live generations in all, requests per
// user per second, open streams per user (a closed connection gives its slot
// back at once, long before the next heartbeat), sessions per user, and the
// models a session may name.

import test from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { waitFor } from './support/chatd.mjs';
import { withAuthChatd, asUser, authHeaders, makeJwt, claims, randomSecret } from './support/auth.mjs';

const SECRET = randomSecret(32);
const ENV = { CHATD_JWT_SECRET: SECRET };
const SLOW = ['--auth', 'jwt', '--sim-tokens-per-second', '5', '--sim-min-tokens', '200', '--sim-max-tokens', '200'];
const user = (srv, name) => asUser(srv, authHeaders(makeJwt(claims(name), { alg: 'HS256', key: SECRET })));

function assertLimited(r, status, code, label) {
  assert.equal(r.status, status, `${label}: expected ${status}, got ${r.status} ${r.text}`);
  assert.equal(r.json?.error?.code, code, `${label}: error code`);
  const retry = Number(r.headers.get('retry-after'));
  assert.ok(Number.isInteger(retry) && retry >= 1, `${label}: Retry-After ${r.headers.get('retry-after')}`);
}

test('w: generations per user: 429 beyond the limit, nothing stored, others served', { timeout: 60000 }, async () => {
  await withAuthChatd({ args: [...SLOW, '--max-generations-per-user', '2'], env: ENV, name: 'chatd-w1' }, async (srv) => {
    const alice = user(srv, 'alice');
    const bob = user(srv, 'bob');
    const sessions = [];
    for (let i = 0; i < 3; i++) sessions.push(await alice.createSession({ title: `s${i}` }));
    const first = await alice.send(sessions[0].id, 'one');
    await alice.send(sessions[1].id, 'two');
    const third = await alice.api('POST', `/sessions/${sessions[2].id}/messages`, { content: 'three' });
    assertLimited(third, 429, 'too_many_generations', 'third generation');
    const history = await alice.api('GET', `/sessions/${sessions[2].id}/messages`);
    assert.deepEqual(history.json.messages, [], 'the refused send stored nothing');
    const bobs = await bob.createSession({});
    await bob.send(bobs.id, 'bob is served');
    // A slot comes back when a generation ends.
    assert.equal((await alice.api('POST', `/messages/${first.assistant_message.id}/cancel`)).status, 200);
    await waitFor(async () => (await alice.api('POST', `/sessions/${sessions[2].id}/messages`, { content: 'three' })).status === 202,
      { timeoutMs: 10000, message: 'alice to get her slot back' });
  });
});

test('w: live generations in all: 503 overloaded beyond the server limit', { timeout: 60000 }, async () => {
  await withAuthChatd({ args: [...SLOW, '--max-live-generations', '2'], env: ENV, name: 'chatd-w2' }, async (srv) => {
    for (const name of ['alice', 'bob']) {
      const u = user(srv, name);
      await u.send((await u.createSession({})).id, 'hello');
    }
    const carol = user(srv, 'carol');
    const s = await carol.createSession({});
    assertLimited(await carol.api('POST', `/sessions/${s.id}/messages`, { content: 'hello' }), 503, 'overloaded', 'third live generation');
    // Reads go on.
    assert.equal((await carol.api('GET', '/sessions')).status, 200);
  });
});

test('w: requests per user per second: a token bucket per user', { timeout: 60000 }, async () => {
  await withAuthChatd({ args: ['--auth', 'jwt', '--rate-limit-rps', '0.5', '--rate-limit-burst', '3'], env: ENV, name: 'chatd-w3' }, async (srv) => {
    const alice = user(srv, 'alice');
    const bob = user(srv, 'bob');
    for (let i = 0; i < 3; i++) assert.equal((await alice.api('GET', '/sessions')).status, 200, `burst request ${i}`);
    const limited = await alice.api('GET', '/sessions');
    assertLimited(limited, 429, 'rate_limited', 'fourth request at once');
    assert.ok(Number(limited.headers.get('retry-after')) <= 2, 'Retry-After says when a token is back');
    assert.equal((await bob.api('GET', '/sessions')).status, 200, 'bob has his own bucket');
    // Health checks are not rate limited.
    assert.equal((await srv.http('GET', '/healthz')).status, 200);
  });
});

/** Opens a session stream on a raw socket; resolves { socket, status } once the head arrived. */
function openRawStream(srv, path, headers) {
  const { hostname, port } = new URL(srv.baseUrl);
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: hostname, port: Number(port) }, () => {
      const lines = Object.entries({ Host: `${hostname}:${port}`, Accept: 'text/event-stream', ...headers }).map(([k, v]) => `${k}: ${v}\r\n`).join('');
      socket.write(`GET /api/v1/chat${path} HTTP/1.1\r\n${lines}\r\n`);
    });
    let text = '';
    const timer = setTimeout(() => { socket.destroy(); reject(new Error(`no answer head for ${path}`)); }, 10000);
    socket.on('data', (d) => {
      text += d.toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      if (m && text.includes('\r\n\r\n')) {
        clearTimeout(timer);
        resolve({ socket, status: Number(m[1]), text: () => text });
      }
    });
    socket.on('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

test('w: open streams per user: a closed connection frees its slot at once', { timeout: 60000 }, async () => {
  // Heartbeats every 60 s: a slot that came back only at a heartbeat write would time the test out.
  await withAuthChatd({ args: ['--auth', 'jwt', '--max-streams-per-user', '1', '--heartbeat-ms', '60000'], env: ENV, name: 'chatd-w4' }, async (srv) => {
    const alice = user(srv, 'alice');
    const bob = user(srv, 'bob');
    const s = await alice.createSession({});
    const b = await bob.createSession({});
    const first = await openRawStream(srv, `/messages/stream?session_id=${s.id}`, alice.headers);
    assert.equal(first.status, 200);
    const second = await alice.api('GET', `/messages/stream?session_id=${s.id}`);
    assertLimited(second, 429, 'too_many_streams', 'second stream');
    const bobs = await openRawStream(srv, `/messages/stream?session_id=${b.id}`, bob.headers);
    assert.equal(bobs.status, 200, 'bob has his own slots');
    // The page reloads: its old connection closes, and the new one gets the slot.
    const closedAt = Date.now();
    first.socket.destroy();
    const again = await waitFor(async () => {
      const r = await openRawStream(srv, `/messages/stream?session_id=${s.id}`, alice.headers);
      if (r.status === 200) return r;
      r.socket.destroy();
      return null;
    }, { timeoutMs: 5000, intervalMs: 50, message: 'alice\'s stream slot to come back' });
    assert.ok(Date.now() - closedAt < 5000);
    again.socket.destroy();
    bobs.socket.destroy();
  });
});

test('w: sessions per user: 429 at the limit until one is deleted', { timeout: 60000 }, async () => {
  await withAuthChatd({ args: ['--auth', 'jwt', '--max-sessions-per-user', '2'], env: ENV, name: 'chatd-w5' }, async (srv) => {
    const alice = user(srv, 'alice');
    const a = await alice.createSession({ title: 'a' });
    await alice.createSession({ title: 'b' });
    assertLimited(await alice.api('POST', '/sessions', { title: 'c' }), 429, 'too_many_sessions', 'third session');
    assert.equal((await alice.api('GET', '/sessions')).json.sessions.length, 2, 'nothing stored');
    await user(srv, 'bob').createSession({ title: 'bob is served' });
    assert.equal((await alice.api('DELETE', `/sessions/${a.id}`)).status, 204);
    await alice.createSession({ title: 'c' });
  });
});

test('w: models: only the configured ones, on the operator\'s key', { timeout: 60000 }, async () => {
  await withAuthChatd({ args: ['--auth', 'jwt'], env: ENV, name: 'chatd-w6' }, async (srv) => {
    const alice = user(srv, 'alice');
    const r = await alice.api('POST', '/sessions', { model: 'gpt-4o' });
    assert.equal(r.status, 400);
    assert.equal(r.json.error.code, 'model_not_allowed');
    assert.equal((await alice.api('POST', '/sessions', { model: 'simulated' })).status, 201);
  });
  await withAuthChatd({ args: ['--auth', 'jwt', '--allowed-models', 'simulated,house-model'], env: ENV, name: 'chatd-w7' }, async (srv) => {
    const alice = user(srv, 'alice');
    assert.equal((await alice.api('POST', '/sessions', { model: 'house-model' })).status, 201);
    assert.equal((await alice.api('POST', '/sessions', { model: 'gpt-4o' })).json.error.code, 'model_not_allowed');
  });
});
