// Scenario q: two users on one chatd (I6 isolation). chatd runs with
// --auth jwt (HS256, the secret in $CHATD_JWT_SECRET); alice and bob hold
// tokens made by support/auth.mjs.
//
// alice owns a session with a completed answer and a live generation (sent
// with an Idempotency-Key). bob then tries every endpoint with alice's ids
// (sessions, user and assistant messages, cursors, next_since, the
// Idempotency-Key): each answer must be exactly what the same request with
// a well-formed but nonexistent id answers (status, body bytes, headers but
// Date), nothing of alice's changes (her generation keeps going, her history
// keeps exactly her messages), bob's own session stream carries nothing of
// hers, and no answer bob ever receives contains one of alice's ids or any
// 20-byte piece of her text. The reverse direction is checked too.
//
// The simulated model runs with --sim-tokens-per-second 0 for the first
// (completed) answer, then chatd is restarted on the same data dir at 20
// tokens per second with 300-400 tokens, so the second answer stays live for
// 15 s or more while bob probes. --sim-stamp-tokens makes every token unique
// (time + random hex), so a 20-byte piece of alice's text cannot appear in
// bob's own answers by chance.

import test from 'node:test';
import assert from 'node:assert/strict';
import { waitFor, mutateId, utf8 } from './support/chatd.mjs';
import { withAuthChatd, asUser, authHeaders, makeJwt, claims, randomSecret, headerLines } from './support/auth.mjs';

const SECRET = randomSecret(32);
const ENV = { CHATD_JWT_SECRET: SECRET };
const COMMON = ['--auth', 'jwt', '--sim-stamp-tokens', '--sim-min-tokens', '300', '--sim-max-tokens', '400', '--heartbeat-ms', '500'];
const FAST = [...COMMON, '--sim-tokens-per-second', '0'];
const LIVE = [...COMMON, '--sim-tokens-per-second', '20'];

const token = (sub) => makeJwt(claims(sub), { alg: 'HS256', key: SECRET });

/** Replaces every occurrence of each key of `map` in `s` by its value (longest keys first). */
function substitute(s, map) {
  let out = s;
  for (const [from, to] of [...map].sort((a, b) => b[0].length - a[0].length)) out = out.split(from).join(to);
  return out;
}

/**
 * One request as `user`, its ids passed through `swap`: method, path, headers,
 * body (JSON value or string), stream (read as a raw stream request).
 */
async function run(user, p, swap = (s) => s) {
  const path = swap(p.path);
  const headers = Object.fromEntries(Object.entries(p.headers || {}).map(([k, v]) => [k, swap(v)]));
  let body;
  if (p.body !== undefined) body = swap(typeof p.body === 'string' ? p.body : JSON.stringify(p.body));
  if (p.stream) {
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    return user.rawSse(path, { method: p.method, headers, body });
  }
  return user.api(p.method, path, body, headers);
}

function assertSameAsMissing(real, missing, label) {
  assert.equal(real.status, 404, `${label}: expected 404 (as for a nonexistent id), got ${real.status}: ${real.text.slice(0, 300)}`);
  assert.equal(real.status, missing.status, `${label}: status differs from a nonexistent id's`);
  assert.equal(real.text, missing.text, `${label}: body differs from a nonexistent id's`);
  assert.deepEqual(headerLines(real.headers), headerLines(missing.headers), `${label}: headers (but Date) differ from a nonexistent id's`);
}

/** Every 20-byte window of the UTF-8 bytes of each text, as latin1 strings. */
function windows(texts, n = 20) {
  const out = new Set();
  for (const t of texts) {
    const b = utf8(t).toString('latin1');
    for (let i = 0; i + n <= b.length; i++) out.add(b.slice(i, i + n));
  }
  return out;
}

/** Asserts no recorded answer mentions any of `ids` or any 20-byte window of `texts`. */
function assertNoLeak(record, ids, texts, who) {
  for (const r of record) {
    for (const id of ids) {
      assert.ok(!r.text.includes(id) && !r.headers.includes(id), `${who}: answer to "${r.what}" contains the other user's id ${id}: ${r.text.slice(0, 300)}`);
    }
  }
  const secret = windows(texts);
  assert.ok(secret.size > 100, 'the other user\'s text is long enough for the window scan to mean something');
  for (const r of record) {
    const seen = windows([r.text, r.headers]);
    for (const w of seen) {
      assert.ok(!secret.has(w), `${who}: answer to "${r.what}" contains a 20-byte piece of the other user's text: ${JSON.stringify(w)}`);
    }
  }
}

test('q: another user\'s ids answer exactly like missing ones, and nothing of theirs leaks or changes', { timeout: 180000 }, async (t) => {
  await withAuthChatd({ args: FAST, env: ENV, name: 'chatd-q' }, async (srv) => {
    const bobRecord = [];
    const aliceRecord = [];
    const alice = asUser(srv, authHeaders(token('alice')), { record: aliceRecord });
    const bob = asUser(srv, authHeaders(token('bob')), { record: bobRecord });

    // --- alice: a completed answer (fast model) ------------------------------
    const aSession = await alice.createSession({ title: 'alice private harbour notes', system_prompt: 'alice-system-prompt-7f3e1c do not share' });
    const q1 = `alice-first-question-${randomSecret(8)} about the harbour at dawn`;
    const first = await alice.send(aSession.id, q1);
    const u1 = first.user_message;
    const a1 = first.assistant_message;
    const a1Final = await alice.waitTerminal(a1.id);
    assert.equal(a1Final.status, 'completed');

    // --- same data dir, slow model: alice's second answer stays live -------------
    await srv.restart({ args: LIVE });
    const bSession = await bob.createSession({ title: 'bob idle' });
    const bSession2 = await bob.createSession({ title: 'bob idempotent' });

    // bob's own session stream, open before alice starts generating.
    const bobStream = bob.stream(`/messages/stream?session_id=${bSession.id}`);
    await bobStream.opened();

    const idemKey = `idem-${randomSecret(8)}`;
    const q2 = `alice-second-question-${randomSecret(8)} about lighthouses`;
    const secondRes = await alice.api('POST', `/sessions/${aSession.id}/messages`, { content: q2 }, { 'Idempotency-Key': idemKey });
    assert.equal(secondRes.status, 202, secondRes.text);
    const second = secondRes.json;
    const u2 = second.user_message;
    const a2 = second.assistant_message;
    const a2Started = await waitFor(async () => {
      const c = await alice.content(a2.id);
      return utf8(c.content).length > 0 ? c : null;
    }, { timeoutMs: 15000, message: 'alice\'s live answer to commit its first text' });
    assert.equal(a2Started.status, 'generating');
    const a1Content = await alice.content(a1.id);
    const u1Content = await alice.content(u1.id);
    const poll = await alice.api('GET', `/messages/${aSession.id}/poll`);
    assert.equal(poll.status, 200, poll.text);
    const nextSince = poll.json.next_since;
    assert.equal(typeof nextSince, 'string');
    const aliceStatus = await alice.api('GET', `/messages/${aSession.id}/status`);
    assert.equal(aliceStatus.json.has_active_generation, true);
    const aliceHistoryBefore = (await alice.api('GET', `/sessions/${aSession.id}/messages`)).json.messages.map((m) => m.id);
    assert.deepEqual(aliceHistoryBefore, [u1.id, a1.id, u2.id, a2.id]);

    const liveCursor = a2Started.cursor;
    const doneCursor = a1Content.cursor;
    const aliceIds = [aSession.id, u1.id, a1.id, u2.id, a2.id];
    const fake = new Map(aliceIds.map((id) => [id, mutateId(id)]));
    for (const [real, f] of fake) {
      assert.notEqual(real, f);
      assert.ok(!aliceIds.includes(f), `mutated id ${f} collides with a real id`);
    }
    const toMissing = (s) => substitute(s, fake);
    // Subtests do not throw into this body: count failures to print chatd's stderr once.
    let failures = 0;
    const check = async (name, fn) => {
      failures += 1;
      await t.test(name, async () => { await fn(); failures -= 1; });
    };
    const S = aSession.id;
    const enc = encodeURIComponent;

    // --- bob against every endpoint with alice's ids: reads --------------------
    const reads = [
      { name: 'GET /sessions/{alice session}', method: 'GET', path: `/sessions/${S}` },
      { name: 'GET /sessions/{alice session}/messages', method: 'GET', path: `/sessions/${S}/messages` },
      { name: 'GET /messages/{alice session}/status', method: 'GET', path: `/messages/${S}/status` },
      { name: 'GET /messages/{alice live message}/status', method: 'GET', path: `/messages/${a2.id}/status` },
      { name: 'GET content of alice\'s user message', method: 'GET', path: `/messages/${u1.id}/content` },
      { name: 'GET content of alice\'s completed answer', method: 'GET', path: `/messages/${a1.id}/content` },
      { name: 'GET content of alice\'s live answer', method: 'GET', path: `/messages/${a2.id}/content` },
      { name: 'GET content of alice\'s live user message', method: 'GET', path: `/messages/${u2.id}/content` },
      { name: 'stream of alice\'s live answer, no cursor', method: 'GET', path: `/messages/${a2.id}/stream`, stream: true },
      { name: 'stream of alice\'s completed answer, no cursor', method: 'GET', path: `/messages/${a1.id}/stream`, stream: true },
      { name: 'stream of alice\'s user message', method: 'GET', path: `/messages/${u1.id}/stream`, stream: true },
      { name: 'stream of alice\'s live answer, her cursor as Last-Event-ID', method: 'GET', path: `/messages/${a2.id}/stream`, headers: { 'Last-Event-ID': liveCursor }, stream: true },
      { name: 'stream of alice\'s live answer, her cursor as last_event_id', method: 'GET', path: `/messages/${a2.id}/stream?last_event_id=${enc(liveCursor)}`, stream: true },
      { name: 'stream of alice\'s completed answer, its end cursor as Last-Event-ID', method: 'GET', path: `/messages/${a1.id}/stream`, headers: { 'Last-Event-ID': doneCursor }, stream: true },
      { name: 'stream of alice\'s completed answer, its end cursor as last_event_id', method: 'GET', path: `/messages/${a1.id}/stream?last_event_id=${enc(doneCursor)}`, stream: true },
      { name: 'session stream of alice\'s session, no cursor', method: 'GET', path: `/messages/stream?session_id=${S}`, stream: true },
      { name: 'session stream of alice\'s session, her cursor as Last-Event-ID', method: 'GET', path: `/messages/stream?session_id=${S}`, headers: { 'Last-Event-ID': liveCursor }, stream: true },
      { name: 'session stream of alice\'s session, her cursor as last_event_id', method: 'GET', path: `/messages/stream?session_id=${S}&last_event_id=${enc(doneCursor)}`, stream: true },
      { name: 'poll alice\'s session, no since', method: 'GET', path: `/messages/${S}/poll` },
      { name: 'poll alice\'s session with her next_since', method: 'GET', path: `/messages/${S}/poll?since=${enc(nextSince)}` },
      { name: 'poll alice\'s session with an ISO time', method: 'GET', path: `/messages/${S}/poll?since=${enc('2020-01-01T00:00:00.000Z')}` },
    ];
    for (const p of reads) {
      await check(`bob: ${p.name}`, async () => {
        const real = await run(bob, p);
        const missing = await run(bob, p, toMissing);
        assertSameAsMissing(real, missing, p.name);
      });
    }

    // bob's own list has none of alice's sessions.
    await check('bob: GET /sessions lists only bob\'s sessions', async () => {
      const r = await bob.api('GET', '/sessions?limit=200');
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.json.sessions.map((s) => s.id).sort(), [bSession.id, bSession2.id].sort());
      const a = await alice.api('GET', '/sessions?limit=200');
      assert.deepEqual(a.json.sessions.map((s) => s.id), [S], 'alice\'s list has exactly her session');
    });

    // --- bob against alice's ids: attempts to change things -----------------
    const a2LenBefore = utf8((await alice.content(a2.id)).content).length;
    const writes = [
      { name: 'POST /messages/{alice live answer}/cancel', method: 'POST', path: `/messages/${a2.id}/cancel` },
      { name: 'POST /messages/{alice live answer}/cancel with a JSON body', method: 'POST', path: `/messages/${a2.id}/cancel`, body: {} },
      { name: 'POST /messages/{alice completed answer}/cancel', method: 'POST', path: `/messages/${a1.id}/cancel` },
      { name: 'POST /messages/{alice user message}/cancel', method: 'POST', path: `/messages/${u1.id}/cancel` },
      { name: 'POST /sessions/{alice session}/messages (continue her chat while she generates)', method: 'POST', path: `/sessions/${S}/messages`, body: { content: 'bob writes into alice\'s chat' } },
      { name: 'POST /sessions/{alice session}/messages with Accept: text/event-stream', method: 'POST', path: `/sessions/${S}/messages`, body: { content: 'bob streams into alice\'s chat' }, stream: true },
      { name: 'POST /sessions/{alice session}/messages with alice\'s Idempotency-Key and body', method: 'POST', path: `/sessions/${S}/messages`, body: { content: q2 }, headers: { 'Idempotency-Key': idemKey } },
      { name: 'DELETE /sessions/{alice session}', method: 'DELETE', path: `/sessions/${S}` },
    ];
    for (const p of writes) {
      await check(`bob: ${p.name}`, async () => {
        const real = await run(bob, p);
        const missing = await run(bob, p, toMissing);
        assertSameAsMissing(real, missing, p.name);
      });
    }

    await check('alice\'s session is untouched: same messages, her generation keeps going', async () => {
      const s = await alice.api('GET', `/sessions/${S}`);
      assert.equal(s.status, 200, `alice's session still exists: ${s.text}`);
      const h = await alice.api('GET', `/sessions/${S}/messages`);
      assert.equal(h.status, 200);
      assert.deepEqual(h.json.messages.map((m) => m.id), [u1.id, a1.id, u2.id, a2.id], 'alice\'s history has exactly her messages');
      assert.deepEqual(h.json.messages.filter((m) => m.role === 'user').map((m) => m.content), [q1, q2]);
      // Still generating, and growing past what it had when bob tried to cancel.
      const grown = await waitFor(async () => {
        const c = await alice.content(a2.id);
        assert.equal(c.status, 'generating', 'alice\'s generation must not be cancelled by bob');
        return utf8(c.content).length > a2LenBefore + 100 ? c : null;
      }, { timeoutMs: 15000, message: 'alice\'s live answer to keep growing after bob\'s cancel' });
      assert.equal(grown.status, 'generating');
      const st = await alice.api('GET', `/messages/${S}/status`);
      assert.equal(st.json.has_active_generation, true);
      assert.equal(st.json.generating_message_id, a2.id);
    });

    await check('bob\'s session stream carried nothing while alice generated', async () => {
      assert.ok(bobStream.opens >= 1 && !bobStream.closed);
      assert.deepEqual(bobStream.events.map((e) => `${e.type} ${e.raw}`), [], 'bob\'s session stream received events');
    });

    // --- Idempotency keys are per user ---------------------------------------
    await check('bob reusing alice\'s Idempotency-Key (same body) in his own session gets his own fresh 202', async () => {
      const r = await bob.api('POST', `/sessions/${bSession2.id}/messages`, { content: q2 }, { 'Idempotency-Key': idemKey });
      assert.equal(r.status, 202, `expected a fresh 202, got ${r.status}: ${r.text.slice(0, 300)}`);
      assert.equal(r.json.user_message.session_id, bSession2.id);
      assert.equal(r.json.assistant_message.session_id, bSession2.id);
      for (const id of aliceIds) assert.ok(!r.text.includes(id), `bob's answer names alice's id ${id}`);
      assert.notDeepEqual(r.json, second);
      // bob's retry replays bob's answer; alice's retry still replays hers.
      const again = await bob.api('POST', `/sessions/${bSession2.id}/messages`, { content: q2 }, { 'Idempotency-Key': idemKey });
      assert.equal(again.status, 202, again.text);
      assert.deepEqual(again.json, r.json, 'bob\'s retry answers bob\'s first answer');
      const aliceAgain = await alice.api('POST', `/sessions/${S}/messages`, { content: q2 }, { 'Idempotency-Key': idemKey });
      assert.equal(aliceAgain.status, 202, aliceAgain.text);
      assert.deepEqual(aliceAgain.json, second, 'alice\'s retry still answers her own first answer');
      const h = await bob.api('GET', `/sessions/${bSession2.id}/messages`);
      assert.deepEqual(h.json.messages.map((m) => m.id), [r.json.user_message.id, r.json.assistant_message.id]);
    });

    // --- the reverse direction: alice against bob's ids ----------------------
    const bobMsgs = (await bob.api('GET', `/sessions/${bSession2.id}/messages`)).json.messages;
    assert.equal(bobMsgs.length, 2, `bob's idempotent send left ${bobMsgs.length} messages in his session`);
    const [bu, ba] = bobMsgs;
    const bobStarted = await waitFor(async () => {
      const c = await bob.content(ba.id);
      return utf8(c.content).length > 0 ? c : null;
    }, { timeoutMs: 15000, message: 'bob\'s answer to commit its first text' });
    const bobIds = [bSession.id, bSession2.id, bu.id, ba.id];
    const fakeBob = new Map(bobIds.map((id) => [id, mutateId(id)]));
    const toMissingBob = (s) => substitute(s, fakeBob);
    const B = bSession2.id;
    const reverse = [
      { name: 'GET /sessions/{bob session}', method: 'GET', path: `/sessions/${B}` },
      { name: 'GET /sessions/{bob session}/messages', method: 'GET', path: `/sessions/${B}/messages` },
      { name: 'GET /messages/{bob session}/status', method: 'GET', path: `/messages/${B}/status` },
      { name: 'GET /messages/{bob session}/poll', method: 'GET', path: `/messages/${B}/poll` },
      { name: 'GET content of bob\'s answer', method: 'GET', path: `/messages/${ba.id}/content` },
      { name: 'GET content of bob\'s user message', method: 'GET', path: `/messages/${bu.id}/content` },
      { name: 'stream of bob\'s answer with his cursor', method: 'GET', path: `/messages/${ba.id}/stream`, headers: { 'Last-Event-ID': bobStarted.cursor }, stream: true },
      { name: 'session stream of bob\'s session', method: 'GET', path: `/messages/stream?session_id=${B}`, stream: true },
      { name: 'POST /messages/{bob answer}/cancel', method: 'POST', path: `/messages/${ba.id}/cancel` },
      { name: 'POST /sessions/{bob idle session}/messages', method: 'POST', path: `/sessions/${bSession.id}/messages`, body: { content: 'alice writes into bob\'s chat' } },
      { name: 'DELETE /sessions/{bob idle session}', method: 'DELETE', path: `/sessions/${bSession.id}` },
    ];
    for (const p of reverse) {
      await check(`alice: ${p.name}`, async () => {
        const real = await run(alice, p);
        const missing = await run(alice, p, toMissingBob);
        assertSameAsMissing(real, missing, p.name);
      });
    }
    await check('bob\'s sessions are untouched by alice', async () => {
      const h = await bob.api('GET', `/sessions/${bSession.id}/messages`);
      assert.equal(h.status, 200, h.text);
      assert.deepEqual(h.json.messages, []);
      const c = await bob.content(ba.id);
      assert.equal(c.status, 'generating', 'alice\'s cancel must not reach bob\'s generation');
    });

    // --- end both generations (their owners can), then scan for leaks ----------
    const aliceCancel = await alice.api('POST', `/messages/${a2.id}/cancel`);
    assert.equal(aliceCancel.status, 200, `alice cancels her own generation (still running after bob's cancel): ${aliceCancel.text}`);
    // bob's answer long enough for the reverse scan, then bob ends it.
    await waitFor(async () => utf8((await bob.content(ba.id)).content).length > 400,
      { timeoutMs: 20000, message: 'bob\'s answer to reach 400 bytes' });
    const bobCancel = await bob.api('POST', `/messages/${ba.id}/cancel`);
    assert.equal(bobCancel.status, 200, bobCancel.text);
    // bob's session stream stays silent to the end.
    bobStream.close();
    assert.deepEqual(bobStream.events.map((e) => `${e.type} ${e.raw}`), []);

    await check('no answer to bob contains alice\'s ids or a 20-byte piece of her text', async () => {
      const a2Final = await alice.content(a2.id);
      const texts = [a1Final.content, a2Final.content, q1, u1Content.content, 'alice-system-prompt-7f3e1c do not share'];
      assert.ok(utf8(a2Final.content).length > 200 && utf8(a1Final.content).length > 200);
      // q2 is excluded: bob sent those very bytes himself (the Idempotency-Key case).
      assertNoLeak(bobRecord, [...aliceIds, liveCursor, doneCursor], texts, 'bob');
    });
    await check('no answer to alice contains bob\'s ids', async () => {
      const bobFinal = await bob.content(ba.id);
      assertNoLeak(aliceRecord, bobIds, [bobFinal.content], 'alice');
    });
    if (failures > 0) srv.dumpStderr(`${failures} isolation check(s) failed`);
  });
});
