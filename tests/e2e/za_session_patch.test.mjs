// Scenario za: a session's title, system prompt and model change with
// PATCH /api/v1/chat/sessions/{id} (issue 9 point 7).
//
// - za1 (simulated provider): each field alone, all at once, absent and null
//   fields unchanged, the limits of POST /sessions, last_updated bumped and
//   the answer equal to a later GET; the next send's assistant message names
//   the new model while older ones keep theirs; the list order (by creation)
//   does not move.
// - za2: every error in the order chatd checks it (403 cross_origin, 415, 404
//   for a malformed id, 400 invalid_json / invalid_request, 400
//   model_not_allowed, 404 for a missing id), the session unchanged after
//   each; OPTIONS of the path and `OPTIONS *` list PATCH, the collection does
//   not take it (405).
// - za3 (--auth api-keys, two users, --cors-origins): the other user's id
//   answers exactly the bytes and headers (but Date) of a missing id, for
//   every body; 401 without or with a wrong key; a PATCH preflight is granted
//   to the listed origin only.
// - za4 (the scenario, OpenAI wire against the fake upstream, which
//   knows only m-new and refuses anything else like OpenAI: 404
//   model_not_found): the answer in a session of m-old ends
//   error/upstream_bad_request naming "m-old", after one request; PATCH to
//   m-new; the next send carries "model":"m-new" and completes.
// - za5 (the same on the Anthropic wire).
// - za6 (switching --provider on one data dir): a session made under
//   `simulated` refuses sends under `--provider openai` (model_not_allowed,
//   nothing sent upstream) until PATCH names the new --model; then its
//   history goes upstream with the new model.
// - za7: a PATCH while an answer generates (the fake upstream holds it at a
//   gate) answers 200; the running answer, also its continuation after a
//   dropped stream, keeps the model it started with; the next one uses the
//   new model and system prompt.
//
// Every wait is for a condition with a deadline; the only fixed wait is
// assertRequestCount's short watch for the absence of a retry.

import test from 'node:test';
import assert from 'node:assert/strict';
import {
  withChatd, createSession, send, waitTerminal, waitFor, getContent, mutateId,
} from './support/chatd.mjs';
import {
  withAuthChatd, asUser, authHeaders, newApiKey, writeApiKeysFile, tempDir, assertUnauthorized, rawHttp, headerLines,
} from './support/auth.mjs';
import {
  withProvider, startFakeUpstream, newSession, turn, getMessage, assertCompleted, assertError, assertRequestCount,
  assertScriptUsed, openaiEvents, anthropicEvents, FAST_RETRY, FAKE_KEY, NO_PROXY_ENV,
} from './support/provider.mjs';
import { readRawSse, parseSse } from './support/sse.mjs';
import path from 'node:path';

const JSON_TYPE = { 'Content-Type': 'application/json' };
const FAST_SIM = ['--sim-tokens-per-second', '0', '--sim-min-tokens', '5', '--sim-max-tokens', '10'];
const LONG_MODEL = 'm'.repeat(200);

const patch = (srv, id, body, headers) => srv.api('PATCH', `/sessions/${id}`, body, headers);
const sessionText = async (srv, id, headers) => {
  const r = await srv.api('GET', `/sessions/${id}`, undefined, headers);
  assert.equal(r.status, 200, `GET /sessions/${id}: ${r.text}`);
  return r.text;
};

/** Waits until this host's clock is past `iso` (so the next change gets a later millisecond). */
async function clockPast(iso) {
  const t = Date.parse(iso);
  await waitFor(() => Date.now() > t, { timeoutMs: 2000, intervalMs: 1, message: `the clock to pass ${iso}` });
}

function without(obj, ...keys) {
  const out = { ...obj };
  for (const k of keys) delete out[k];
  return out;
}

function expectError(r, status, code, label) {
  assert.equal(r.status, status, `${label}: expected ${status}, got ${r.status}: ${r.text.slice(0, 300)}`);
  assert.match(r.headers.get('content-type') || '', /^application\/json/, `${label}: error body is JSON`);
  assert.equal(r.json?.error?.code, code, `${label}: error.code in ${r.text.slice(0, 300)}`);
  assert.equal(typeof r.json.error.message, 'string');
  assert.ok(r.json.error.message.length > 0, `${label}: error.message is empty`);
}

/**
 * PATCH `body`, expect 200 with `before` changed by `changes` (and last_updated
 * later than before's); a GET right after answers the same bytes. Returns the session.
 */
async function expectPatched(srv, before, body, changes, label, headers) {
  await clockPast(before.last_updated);
  const r = await patch(srv, before.id, body, headers);
  assert.equal(r.status, 200, `${label}: ${r.text}`);
  assert.match(r.headers.get('content-type') || '', /^application\/json/, `${label}: Content-Type`);
  assert.deepEqual(Object.keys(r.json), Object.keys(before), `${label}: the answer is a session object, same fields in the same order`);
  assert.deepEqual(without(r.json, 'last_updated'), { ...without(before, 'last_updated'), ...changes }, `${label}: fields`);
  assert.ok(Date.parse(r.json.last_updated) > Date.parse(before.last_updated),
    `${label}: last_updated bumped (${before.last_updated} -> ${r.json.last_updated})`);
  assert.equal(await sessionText(srv, before.id, headers), r.text, `${label}: GET answers what PATCH answered`);
  return r.json;
}

function allowList(r) {
  return (r.headers.get('allow') || '').split(',').map((m) => m.trim()).filter(Boolean);
}

// ---------------------------------------------------------------------------

test('za1: PATCH changes title, system prompt and model; absent and null fields stay; the next send uses the new model', { timeout: 60000 }, async () => {
  const args = [...FAST_SIM, '--allowed-models', `simulated,sim-large,${LONG_MODEL}`];
  await withChatd({ args, name: 'chatd-za1' }, async (srv) => {
    const older = await createSession(srv, { title: 'Original', system_prompt: 'Be brief.' });
    const newer = await createSession(srv, { title: 'Newer' });
    assert.equal(older.model, 'simulated');

    // A first answer under the session's first model.
    const first = await send(srv, older.id, 'Hello');
    assert.equal(first.assistant_message.model, 'simulated');
    assert.equal((await waitTerminal(srv, first.assistant_message.id)).status, 'completed');
    let s = JSON.parse(await sessionText(srv, older.id));

    s = await expectPatched(srv, s, { title: 'Renamed' }, { title: 'Renamed' }, 'title alone');
    s = await expectPatched(srv, s, { system_prompt: 'Be verbose.' }, { system_prompt: 'Be verbose.' }, 'system_prompt alone');
    s = await expectPatched(srv, s, { model: 'sim-large' }, { model: 'sim-large' }, 'model alone');
    s = await expectPatched(srv, s, {}, {}, 'an empty object: nothing but last_updated');
    s = await expectPatched(srv, s, { title: null, system_prompt: null, model: null }, {}, 'null fields count as absent');
    s = await expectPatched(srv, s, { title: 'Story time', unknown: 1, id: newer.id, created_at: '2020-01-01T00:00:00.000Z' },
      { title: 'Story time' }, 'other fields (id, created_at, unknown ones) are ignored');
    assert.equal(await sessionText(srv, newer.id), JSON.stringify(newer), 'the session named in an ignored `id` field is untouched');

    // The next send uses the new model; the earlier answer keeps its own.
    const second = await send(srv, older.id, 'Tell me more');
    assert.equal(second.assistant_message.model, 'sim-large', 'the 202 answer names the new model');
    assert.equal((await waitTerminal(srv, second.assistant_message.id)).status, 'completed');
    const history = (await srv.api('GET', `/sessions/${older.id}/messages`)).json.messages;
    assert.deepEqual(history.map((m) => [m.role, m.model]),
      [['user', ''], ['assistant', 'simulated'], ['user', ''], ['assistant', 'sim-large']],
      'each assistant message records the model that answered it');
    s = JSON.parse(await sessionText(srv, older.id));

    // All three at once; empty strings are values (an empty title, no system prompt).
    s = await expectPatched(srv, s, { title: '', system_prompt: '', model: 'simulated' },
      { title: '', system_prompt: '', model: 'simulated' }, 'all three at once, empty strings');

    // The limits of POST /sessions: title 200 characters (not bytes, not UTF-16 units),
    // system_prompt 256 KiB, model 200 bytes.
    const title200 = '😀'.repeat(200);
    s = await expectPatched(srv, s, { title: title200 }, { title: title200 }, '200-character title (800 bytes)');
    const prompt = 'p'.repeat(256 * 1024);
    s = await expectPatched(srv, s, { system_prompt: prompt }, { system_prompt: prompt }, '256 KiB system prompt');
    s = await expectPatched(srv, s, { model: LONG_MODEL }, { model: LONG_MODEL }, '200-byte model');
    const before = await sessionText(srv, older.id);
    expectError(await patch(srv, older.id, { title: '😀'.repeat(201) }), 400, 'invalid_request', '201-character title');
    expectError(await patch(srv, older.id, { system_prompt: 'p'.repeat(256 * 1024 + 1) }), 400, 'invalid_request', 'system prompt over 256 KiB');
    expectError(await patch(srv, older.id, { model: `${LONG_MODEL}m` }), 400, 'invalid_request', '201-byte model');
    assert.equal(await sessionText(srv, older.id), before, 'refused PATCHes change nothing');

    // The list stays ordered by creation, and shows the session as PATCH left it.
    const list = (await srv.api('GET', '/sessions')).json;
    assert.deepEqual(list.sessions.map((x) => x.id), [newer.id, older.id], 'a PATCH does not reorder the list');
    assert.deepEqual(list.sessions[1], s);
  });
});

test('za2: PATCH errors, in the order they are checked; the session unchanged after each', { timeout: 60000 }, async () => {
  await withChatd({ args: [...FAST_SIM, '--allowed-models', 'simulated,sim-large'], name: 'chatd-za2' }, async (srv) => {
    const s = await createSession(srv, { title: 'Keep me', system_prompt: 'Unchanged.' });
    const id = s.id;
    const missing = mutateId(id);
    const host = new URL(srv.baseUrl).host;
    const P = `/sessions/${id}`;
    const before = await sessionText(srv, id);

    const cases = [
      // 403 cross_origin: before anything else (also before a 415 or a 404).
      { name: 'Origin of another site', req: () => patch(srv, id, { title: 'x' }, { Origin: 'https://evil.example' }), status: 403, code: 'cross_origin' },
      { name: 'Origin of another site, text/plain, malformed id', req: () => srv.api('PATCH', '/sessions/ses_nope', 'x', { 'Content-Type': 'text/plain', Origin: 'https://evil.example' }), status: 403, code: 'cross_origin' },
      { name: 'no Origin but Sec-Fetch-Site: cross-site', req: () => patch(srv, id, { title: 'x' }, { 'Sec-Fetch-Site': 'cross-site' }), status: 403, code: 'cross_origin' },
      { name: 'no Origin but Sec-Fetch-Site: same-site', req: () => patch(srv, id, { title: 'x' }, { 'Sec-Fetch-Site': 'same-site' }), status: 403, code: 'cross_origin' },
      // 415: a non-empty body that is not application/json (before the id is looked at).
      { name: 'text/plain body', req: () => srv.api('PATCH', P, '{"title":"x"}', { 'Content-Type': 'text/plain' }), status: 415, code: 'unsupported_media_type' },
      { name: 'form body', req: () => srv.api('PATCH', P, 'title=x', { 'Content-Type': 'application/x-www-form-urlencoded' }), status: 415, code: 'unsupported_media_type' },
      { name: 'a body without Content-Type', req: () => rawHttp(srv.baseUrl, { method: 'PATCH', path: `/api/v1/chat${P}`, host, body: '{"title":"x"}' }), status: 415, code: 'unsupported_media_type' },
      { name: 'text/plain body, malformed id', req: () => srv.api('PATCH', '/sessions/ses_nope', '{"title":"x"}', { 'Content-Type': 'text/plain' }), status: 415, code: 'unsupported_media_type' },
      // 404 for a malformed id: before the body is parsed.
      { name: 'malformed id', req: () => patch(srv, 'ses_nope', { title: 'x' }), status: 404, code: 'not_found' },
      { name: 'a message id', req: () => patch(srv, `msg_${id.slice(4)}`, { title: 'x' }), status: 404, code: 'not_found' },
      { name: 'malformed id, malformed JSON', req: () => srv.api('PATCH', '/sessions/ses_nope', '{"title":', JSON_TYPE), status: 404, code: 'not_found' },
      // 400 invalid_json.
      { name: 'malformed JSON', req: () => srv.api('PATCH', P, '{"title":', JSON_TYPE), status: 400, code: 'invalid_json' },
      { name: 'trailing garbage', req: () => srv.api('PATCH', P, '{"title":"x"} x', JSON_TYPE), status: 400, code: 'invalid_json' },
      { name: 'JSON array', req: () => srv.api('PATCH', P, '[{"title":"x"}]', JSON_TYPE), status: 400, code: 'invalid_json' },
      { name: 'JSON string', req: () => srv.api('PATCH', P, '"x"', JSON_TYPE), status: 400, code: 'invalid_json' },
      { name: 'JSON null', req: () => srv.api('PATCH', P, 'null', JSON_TYPE), status: 400, code: 'invalid_json' },
      { name: 'empty body', req: () => srv.api('PATCH', P, '', JSON_TYPE), status: 400, code: 'invalid_json' },
      { name: 'empty body without Content-Type', req: () => srv.api('PATCH', P), status: 400, code: 'invalid_json' },
      { name: 'missing id, malformed JSON (the body before the lookup)', req: () => srv.api('PATCH', `/sessions/${missing}`, '{', JSON_TYPE), status: 400, code: 'invalid_json' },
      // 400 invalid_request: a field of the wrong type or out of its limits.
      { name: 'title a number', req: () => patch(srv, id, { title: 5 }), status: 400, code: 'invalid_request' },
      { name: 'system_prompt a boolean', req: () => patch(srv, id, { system_prompt: true }), status: 400, code: 'invalid_request' },
      { name: 'model an object', req: () => patch(srv, id, { model: { name: 'sim-large' } }), status: 400, code: 'invalid_request' },
      { name: 'model empty', req: () => patch(srv, id, { model: '' }), status: 400, code: 'invalid_request' },
      { name: 'a good title and a bad model type', req: () => patch(srv, id, { title: 'x', model: 7 }), status: 400, code: 'invalid_request' },
      { name: 'model 201 bytes (the limit before the allowed list)', req: () => patch(srv, id, { model: 'm'.repeat(201) }), status: 400, code: 'invalid_request' },
      // 400 model_not_allowed: before the session is looked up.
      { name: 'a model outside --allowed-models', req: () => patch(srv, id, { model: 'gpt-4o' }), status: 400, code: 'model_not_allowed' },
      { name: 'a good title and a model not allowed', req: () => patch(srv, id, { title: 'x', model: 'Simulated' }), status: 400, code: 'model_not_allowed' },
      { name: 'missing id, model not allowed', req: () => patch(srv, missing, { model: 'gpt-4o' }), status: 400, code: 'model_not_allowed' },
      // 404 for a well-formed id that does not exist.
      { name: 'missing id', req: () => patch(srv, missing, { title: 'x' }), status: 404, code: 'not_found' },
      { name: 'missing id, empty object', req: () => patch(srv, missing, {}), status: 404, code: 'not_found' },
    ];
    const notFound = [];
    for (const c of cases) {
      const r = await c.req();
      expectError(r, c.status, c.code, c.name);
      if (c.status === 404) notFound.push([c.name, r.text]);
      assert.equal(await sessionText(srv, id), before, `${c.name}: the session changed`);
    }
    for (const [name, text] of notFound) assert.equal(text, notFound[0][1], `${name}: every 404 is the same bytes`);

    // Same-origin requests and Content-Type parameters are fine.
    let cur = s;
    cur = await expectPatched(srv, cur, { title: 'Same origin' }, { title: 'Same origin' }, 'Origin of this server', { Origin: srv.baseUrl });
    cur = await expectPatched(srv, cur, { title: 'Same origin 2' }, { title: 'Same origin 2' }, 'Sec-Fetch-Site: same-origin', { 'Sec-Fetch-Site': 'same-origin' });
    cur = await expectPatched(srv, cur, { title: 'With charset' }, { title: 'With charset' }, 'application/json; charset=utf-8', { 'Content-Type': 'application/json; charset=utf-8' });
    await expectPatched(srv, cur, { title: 'Upper case' }, { title: 'Upper case' }, 'APPLICATION/JSON', { 'Content-Type': 'APPLICATION/JSON' });

    // OPTIONS and 405.
    const opt = await srv.http('OPTIONS', `/api/v1/chat${P}`);
    assert.equal(opt.status, 204);
    for (const m of ['GET', 'PATCH', 'DELETE', 'OPTIONS']) assert.ok(allowList(opt).includes(m), `OPTIONS /sessions/{id}: Allow ${opt.headers.get('allow')} lists ${m}`);
    const star = await rawHttp(srv.baseUrl, { method: 'OPTIONS', path: '*', host });
    assert.equal(star.status, 204, star.raw);
    assert.ok(allowList(star).includes('PATCH'), `OPTIONS *: Allow ${star.headers.get('allow')} lists PATCH`);
    const coll = await srv.http('OPTIONS', '/api/v1/chat/sessions');
    assert.ok(!allowList(coll).includes('PATCH'), `OPTIONS /sessions: Allow ${coll.headers.get('allow')} does not list PATCH`);
    for (const p of ['/sessions', `/sessions/${id}/messages`]) {
      const r = await srv.api('PATCH', p, { title: 'x' });
      expectError(r, 405, 'method_not_allowed', `PATCH ${p}`);
      assert.ok(!allowList(r).includes('PATCH'), `PATCH ${p}: Allow ${r.headers.get('allow')}`);
    }
  });
});

test('za3: another user\'s session answers PATCH exactly as a missing one; 401 without credentials; CORS preflight for PATCH', { timeout: 60000 }, async () => {
  const dir = await tempDir('chatd-za3-');
  const file = path.join(dir, 'api-keys.txt');
  const aliceKey = newApiKey();
  const bobKey = newApiKey();
  await writeApiKeysFile(file, [{ key: aliceKey, user: 'alice' }, { key: bobKey, user: 'bob' }]);
  const APP = 'https://app.example.com';
  const EVIL = 'https://evil.example';
  const args = ['--auth', 'api-keys', '--api-keys-file', file, '--cors-origins', APP, '--allowed-models', 'simulated,sim-large', ...FAST_SIM];
  await withAuthChatd({ args, name: 'chatd-za3' }, async (srv) => {
    const alice = asUser(srv, authHeaders(aliceKey));
    const bob = asUser(srv, authHeaders(bobKey));
    const s = await alice.createSession({ title: 'alice only', system_prompt: 'alice-secret-prompt' });
    const aliceView = async () => {
      const r = await alice.api('GET', `/sessions/${s.id}`);
      assert.equal(r.status, 200, r.text);
      return r.text;
    };
    const before = await aliceView();
    const missing = mutateId(s.id);

    // bob, with alice's id and with a missing one: the same answer, whatever the body.
    const bodies = [
      { title: 'bob was here' }, { model: 'sim-large' }, { system_prompt: 'bob prompt' }, {},
      { model: 'gpt-4o' }, '{"title":', { title: 5 },
    ];
    for (const body of bodies) {
      const label = `bob PATCHes alice's session with ${typeof body === 'string' ? body : JSON.stringify(body)}`;
      const real = await bob.api('PATCH', `/sessions/${s.id}`, body, JSON_TYPE);
      const miss = await bob.api('PATCH', `/sessions/${missing}`, body, JSON_TYPE);
      assert.equal(real.status, miss.status, `${label}: status differs from a missing id's (${real.status} vs ${miss.status})`);
      assert.equal(real.text, miss.text, `${label}: body differs from a missing id's`);
      assert.deepEqual(headerLines(real.headers), headerLines(miss.headers), `${label}: headers (but Date) differ from a missing id's`);
      assert.ok(!real.text.includes('alice'), `${label}: the answer mentions alice`);
      assert.equal(await aliceView(), before, `${label}: alice's session changed`);
    }
    const foreign = await bob.api('PATCH', `/sessions/${s.id}`, { title: 'bob was here' });
    expectError(foreign, 404, 'not_found', 'bob PATCHes alice\'s session');
    const malformed = await bob.api('PATCH', '/sessions/ses_nope', { title: 'bob was here' });
    assert.equal(foreign.text, malformed.text, 'the 404 for another user\'s id is the same bytes as for a malformed id');
    assert.deepEqual((await bob.api('GET', '/sessions')).json, { sessions: [], next: null }, 'bob has no session');

    // 401: no credentials, a wrong key; the same bytes for a real, a missing and a malformed id.
    for (const [label, headers] of [['no credentials', {}], ['a wrong key', authHeaders(newApiKey())]]) {
      for (const target of [s.id, missing, 'ses_nope']) {
        assertUnauthorized(await srv.api('PATCH', `/sessions/${target}`, { title: 'anonymous' }, headers), `PATCH ${target} with ${label}`);
        assertUnauthorized(await srv.api('PATCH', `/sessions/${target}`, 'x', { ...headers, 'Content-Type': 'text/plain' }),
          `PATCH ${target} with ${label} and a text/plain body (401 before 415)`);
      }
    }
    assert.equal(await aliceView(), before, 'alice\'s session unchanged after the 401s');

    // CORS: a preflight for PATCH is granted to the listed origin only.
    const preflight = (origin, method, p = `/api/v1/chat/sessions/${s.id}`) => srv.http('OPTIONS', p, undefined,
      { Origin: origin, 'Access-Control-Request-Method': method, 'Access-Control-Request-Headers': 'authorization, content-type' });
    const pre = await preflight(APP, 'PATCH');
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get('access-control-allow-origin'), APP);
    assert.equal(pre.headers.get('access-control-allow-credentials'), 'true');
    assert.match(pre.headers.get('access-control-allow-methods') || '', /\bPATCH\b/);
    assert.match(pre.headers.get('access-control-allow-headers') || '', /Content-Type/i);
    assert.equal((await preflight(EVIL, 'PATCH')).headers.get('access-control-allow-origin'), null, 'another origin: no grant');
    assert.equal((await preflight(APP, 'PATCH', '/api/v1/chat/sessions')).headers.get('access-control-allow-origin'), null,
      'the collection does not take PATCH: no grant');

    const fromApp = await alice.api('PATCH', `/sessions/${s.id}`, { title: 'from the app' }, { Origin: APP });
    assert.equal(fromApp.status, 200, fromApp.text);
    assert.equal(fromApp.headers.get('access-control-allow-origin'), APP);
    assert.equal(fromApp.json.title, 'from the app');
    const afterApp = await aliceView();
    const fromEvil = await alice.api('PATCH', `/sessions/${s.id}`, { title: 'from evil' }, { Origin: EVIL });
    expectError(fromEvil, 403, 'cross_origin', 'PATCH from another origin');
    assert.equal(fromEvil.headers.get('access-control-allow-origin'), null);
    assert.equal(await aliceView(), afterApp, 'the refused cross-origin PATCH changed nothing');

    // alice's own PATCH of the model works, and bob still sees nothing of it.
    const own = await alice.api('PATCH', `/sessions/${s.id}`, { model: 'sim-large' });
    assert.equal(own.status, 200, own.text);
    assert.equal(own.json.model, 'sim-large');
    expectError(await bob.api('GET', `/sessions/${s.id}`), 404, 'not_found', 'bob reads alice\'s session');
  });
});

// ---------------------------------------------------------------------------
// The scenario against the fake upstream.

/** OpenAI's answer to a model it does not have. */
const openaiModelNotFound = (model) => ({
  kind: 'error', status: 404,
  body: { error: { message: `The model \`${model}\` does not exist`, type: 'invalid_request_error', param: null, code: 'model_not_found' } },
});

/** A step: the answer `pieces` when the request names one of `known`, else OpenAI's 404 model_not_found. */
const openaiVendor = (known, pieces) => (rec) => (known.includes(rec.body?.model)
  ? { events: openaiEvents(pieces) }
  : openaiModelNotFound(rec.body?.model));

/** The message's terminal status event, read from its stream. */
async function terminalEvent(srv, messageId) {
  const r = await readRawSse(srv.url(`/api/v1/chat/messages/${messageId}/stream`), { timeoutMs: 10000 });
  const events = parseSse(r.text).events.filter((e) => e.type === 'status');
  assert.ok(events.length > 0, `no status event on the stream of ${messageId}: ${r.text.slice(0, 300)}`);
  return JSON.parse(events[events.length - 1].data);
}

test('za4: a model the vendor refuses ends upstream_bad_request naming it; PATCH to another model; the next send uses it', { timeout: 60000 }, async () => {
  await withProvider({
    provider: 'openai', basePath: '/v1',
    args: ['--model', 'm-old', '--allowed-models', 'm-old,m-new', ...FAST_RETRY],
    env: { OPENAI_API_KEY: FAKE_KEY }, name: 'chatd-za4',
  }, async (srv, up) => {
    up.script([openaiVendor(['m-new'], ['Hello ', 'from m-new.']), openaiVendor(['m-new'], ['Hello ', 'from m-new.'])]);
    const s = await newSession(srv, { system_prompt: 'Be brief.' });
    assert.equal(s.model, 'm-old', 'a new session takes --model');

    // The vendor does not have m-old.
    const t1 = await turn(srv, s.id, 'Hello?');
    assertError(t1.message, 'upstream_bad_request', '');
    assert.equal(t1.message.model, 'm-old');
    assert.equal(t1.message.finish_reason, 'error');
    const msg = t1.message.error.message;
    assert.ok(msg.includes('The model `m-old` does not exist'), `the vendor's message is kept: ${msg}`);
    assert.ok(msg.endsWith(' (model "m-old")'), `the message ends naming the model: ${msg}`);
    assert.match(msg, /\b404\b/, `the message names the status: ${msg}`);
    await assertRequestCount(up, 1); // not retried
    assert.equal(up.requests[0].body.model, 'm-old');
    const ended = await terminalEvent(srv, t1.message.id);
    assert.equal(ended.status, 'error');
    assert.deepEqual(ended.error, t1.message.error, 'the stream\'s status event carries the same error');

    // PATCH the session to a model the vendor has.
    const p = await patch(srv, s.id, { model: 'm-new' });
    assert.equal(p.status, 200, p.text);
    assert.deepEqual(without(p.json, 'last_updated', 'model'), without(s, 'last_updated', 'model'));
    assert.equal(p.json.model, 'm-new');
    expectError(await patch(srv, s.id, { model: 'gpt-4o' }), 400, 'model_not_allowed', 'a model outside --allowed-models');
    assert.equal(JSON.parse(await sessionText(srv, s.id)).model, 'm-new');

    const t2 = await turn(srv, s.id, 'Hello again?');
    assert.equal(t2.assistant_message.model, 'm-new', 'the 202 answer names the new model');
    assertCompleted(t2.message, 'Hello from m-new.', 'stop');
    assert.equal(t2.message.model, 'm-new');
    await assertRequestCount(up, 2, 0);
    const r2 = up.requests[1];
    assert.ok(r2.rawBody.includes('"model":"m-new"'), `the request carries "model":"m-new": ${r2.rawBody.slice(0, 300)}`);
    assert.equal(r2.body.model, 'm-new');
    assert.deepEqual(r2.body.messages, [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Hello?' },
      { role: 'user', content: 'Hello again?' },
    ], 'the failed (empty) answer is not part of the prompt');

    // The failed answer keeps its model and error.
    const old = await getMessage(srv, s.id, t1.message.id);
    assert.deepEqual(old, t1.message, 'the earlier answer is unchanged');
    assertScriptUsed(up);
  });
});

test('za5: the same on the Anthropic wire', { timeout: 60000 }, async () => {
  await withProvider({
    provider: 'anthropic',
    args: ['--model', 'claude-old', '--allowed-models', 'claude-old,claude-new', ...FAST_RETRY],
    env: { ANTHROPIC_API_KEY: FAKE_KEY }, name: 'chatd-za5',
  }, async (srv, up) => {
    const vendor = (rec) => (rec.body?.model === 'claude-new'
      ? { events: anthropicEvents(['Claude ', 'here.']) }
      : { kind: 'error', status: 404, message: `model: ${rec.body?.model}` });
    up.script([vendor, vendor]);
    const s = await newSession(srv);
    const t1 = await turn(srv, s.id, 'Hi');
    assertError(t1.message, 'upstream_bad_request', '');
    assert.ok(t1.message.error.message.includes('model: claude-old'), t1.message.error.message);
    assert.ok(t1.message.error.message.endsWith(' (model "claude-old")'), t1.message.error.message);
    await assertRequestCount(up, 1);

    const p = await patch(srv, s.id, { model: 'claude-new' });
    assert.equal(p.status, 200, p.text);
    const t2 = await turn(srv, s.id, 'Hi again');
    assertCompleted(t2.message, 'Claude here.', 'stop');
    assert.equal(t2.message.model, 'claude-new');
    assert.equal(up.requests[1].path, '/v1/messages');
    assert.equal(up.requests[1].body.model, 'claude-new');
    assertScriptUsed(up);
  });
});

test('za6: after switching --provider, an old session refuses sends until PATCH names the new model', { timeout: 60000 }, async () => {
  const up = await startFakeUpstream();
  try {
    await withChatd({ args: FAST_SIM, env: { ...NO_PROXY_ENV, OPENAI_API_KEY: FAKE_KEY }, name: 'chatd-za6' }, async (srv) => {
      const s = await createSession(srv, { title: 'from the simulated days', system_prompt: 'Be kind.' });
      assert.equal(s.model, 'simulated');
      const t1 = await turn(srv, s.id, 'First question');
      assertCompleted(t1.message, t1.message.content, 'stop');
      assert.equal(t1.message.model, 'simulated');
      assert.ok(t1.message.content.length > 0);

      // The operator switches to a real provider on the same data dir.
      await srv.restart({ args: ['--provider', 'openai', '--base-url', `${up.url}/v1`, '--model', 'gpt-real', ...FAST_RETRY] });
      const kept = JSON.parse(await sessionText(srv, s.id));
      assert.equal(kept.model, 'simulated', 'a session keeps its model across the switch');

      // Without --allowed-models only gpt-real is allowed: the old session refuses sends.
      const refused = await srv.api('POST', `/sessions/${s.id}/messages`, { content: 'Second question' });
      expectError(refused, 400, 'model_not_allowed', 'a send in the old session');
      assert.equal((await srv.api('GET', `/sessions/${s.id}/messages`)).json.messages.length, 2, 'the refused send stored nothing');
      expectError(await patch(srv, s.id, { model: 'simulated' }), 400, 'model_not_allowed', 'PATCH to the old model');
      // A PATCH that leaves the model alone works on it.
      const renamed = await expectPatched(srv, kept, { title: 'renamed' }, { title: 'renamed' }, 'title only, old model kept');
      const moved = await expectPatched(srv, renamed, { model: 'gpt-real' }, { model: 'gpt-real' }, 'to the new --model');
      assert.equal(up.requests.length, 0, 'nothing went upstream before the PATCH');

      up.script([{ events: openaiEvents(['A real ', 'answer.']) }]);
      const t2 = await turn(srv, s.id, 'Second question');
      assertCompleted(t2.message, 'A real answer.', 'stop');
      assert.equal(t2.message.model, 'gpt-real');
      await assertRequestCount(up, 1, 0);
      assert.equal(up.requests[0].body.model, 'gpt-real');
      assert.deepEqual(up.requests[0].body.messages, [
        { role: 'system', content: 'Be kind.' },
        { role: 'user', content: 'First question' },
        { role: 'assistant', content: t1.message.content },
        { role: 'user', content: 'Second question' },
      ], 'the history made under the simulated provider goes upstream');
      assert.equal((await getMessage(srv, s.id, t1.message.id)).model, 'simulated', 'the old answer keeps its model');
      assert.equal(JSON.parse(await sessionText(srv, s.id)).title, moved.title);
      assertScriptUsed(up);
    });
  } finally {
    await up.close();
  }
});

test('za7: PATCH while an answer generates: the answer and its continuation keep their model; the next send uses the new one', { timeout: 60000 }, async () => {
  await withProvider({
    provider: 'openai', basePath: '/v1',
    args: ['--model', 'm-old', '--allowed-models', 'm-old,m-new', '--openai-continue-final-message', ...FAST_RETRY],
    env: { OPENAI_API_KEY: FAKE_KEY }, name: 'chatd-za7',
  }, async (srv, up) => {
    up.script([
      // Two pieces, then held at a gate (a comment event), then the connection is reset.
      {
        events: [...openaiEvents(['First ', 'part. '], { finish: null, usage: null, done: false }), { comment: 'held' }],
        gates: { 3: 'patched' }, fault: { after: 4, kind: 'reset' },
      },
      { events: openaiEvents(['Second part.']) },
      { events: openaiEvents(['Next answer.']) },
    ]);
    const s = await newSession(srv, { system_prompt: 'Old prompt.' });
    const sent = await send(srv, s.id, 'Tell me');
    const id = sent.assistant_message.id;
    await waitFor(async () => (await getContent(srv, id)).content === 'First part. ',
      { timeoutMs: 10000, message: 'the first two pieces to be committed' });

    const p = await patch(srv, s.id, { model: 'm-new', system_prompt: 'New prompt.', title: 'Changed mid-answer' });
    assert.equal(p.status, 200, `a PATCH while generating is not refused: ${p.text}`);
    assert.equal(p.json.model, 'm-new');
    const status = (await srv.api('GET', `/messages/${s.id}/status`)).json;
    assert.equal(status.generating_message_id, id, 'the answer is still generating after the PATCH');
    up.open('patched');

    const done = await waitTerminal(srv, id);
    assert.equal(done.status, 'completed', JSON.stringify(done));
    const m = await getMessage(srv, s.id, id);
    assertCompleted(m, 'First part. Second part.', 'stop');
    assert.equal(m.model, 'm-old', 'the running answer keeps the model it started with');
    await up.waitForRequests(2);
    const [r1, r2] = up.requests;
    assert.equal(r1.body.model, 'm-old');
    assert.equal(r2.body.continue_final_message, true, 'the second request continues the partial answer');
    assert.equal(r2.body.model, 'm-old', 'the continuation keeps the answer\'s model');
    assert.deepEqual(r2.body.messages.slice(-2), [{ role: 'user', content: 'Tell me' }, { role: 'assistant', content: 'First part. ' }]);
    // Not asserted: the continuation re-reads the session, so its system
    // message is already 'New prompt.' while its model stays m-old.

    const t2 = await turn(srv, s.id, 'And now?');
    assertCompleted(t2.message, 'Next answer.', 'stop');
    assert.equal(t2.message.model, 'm-new');
    await assertRequestCount(up, 3, 0);
    const r3 = up.requests[2];
    assert.equal(r3.body.model, 'm-new');
    assert.deepEqual(r3.body.messages, [
      { role: 'system', content: 'New prompt.' },
      { role: 'user', content: 'Tell me' },
      { role: 'assistant', content: 'First part. Second part.' },
      { role: 'user', content: 'And now?' },
    ]);
    assertScriptUsed(up);
  });
});
