// Scenario zk: the OpenAPI document (docs/openapi.json, served at
// /api/v1/openapi.json) says what chatd does.
// - It is a valid OpenAPI 3.1 document (@seriousme/openapi-schema-validator),
//   every `$ref` resolves, every schema compiles under ajv's strict mode, and
//   its version is the project's (CMakeLists.txt).
// - It has exactly the routes of chatd's route tables (`routes.add(...)` in
//   src/): a route added without being documented, or documented without
//   existing, fails.
// - Real answers of a running chatd, one or more per operation (successes,
//   event streams event by event, and errors: 400, 401, 403, 404, 405, 409,
//   413, 415, 422, 429), match the schema the document declares for their
//   path, method, status and content type, with the headers it requires.
// - Answers with reasoning (a chatd whose simulated model thinks first) match
//   it too: `reasoning` events, the content's `reasoning` and three-part
//   cursor, the message JSON's `reasoning`, the AI SDK's `reasoning-*` chunks
//   and reasoning part, and resumes at a three-part cursor; each event's id is
//   the cursor the document says, and the `Cursor` pattern agrees with chatd
//   on which cursors are valid.
// - chatd serves the document's exact bytes, without credentials (api-keys).
// - Every documented operation was exercised above.

import test from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { Validator } from '@seriousme/openapi-schema-validator';
import { withChatd, request, mutateId } from './support/chatd.mjs';
import { readRawSse, parseSse } from './support/sse.mjs';
import { rawHttp, newApiKey, tempDir, writeApiKeysFile, authHeaders } from './support/auth.mjs';
import {
  REPO, loadDocument, unresolvedRefs, serverRoutes, documentedRoutes, eventObject, ResponseChecker,
} from './support/openapi.mjs';

const { bytes: DOC_BYTES, doc: DOC } = loadDocument();
const checker = new ResponseChecker(DOC);

const CHAT = '/api/v1/chat';
const AI = '/api/v1/ai-sdk/chat';
// Answers of 5 s: long enough to act on one while it generates, short
// enough to wait for its end.
const ANSWERS = ['--sim-tokens-per-second', '40', '--sim-min-tokens', '200', '--sim-max-tokens', '200'];
// The simulated model thinks for 20 tokens (0.5 s), then answers 80 (2 s):
// long enough to stop an answer after its first reasoning arrived.
const THINKING = ['--sim-tokens-per-second', '40', '--sim-min-tokens', '80', '--sim-max-tokens', '80',
  '--sim-reasoning-tokens', '20'];

/** A request whose answer is checked against the document; returns { status, headers, text, json }. */
async function call(srv, label, method, p, { body, headers } = {}) {
  const r = await request(srv.baseUrl, method, p, body, headers);
  checker.check(label, method, p, r);
  return r;
}

/**
 * An event stream read until `until(events)` holds or the server ends it,
 * checked event by event; returns { status, ended, events } (events as the
 * document describes them: { event, id, data }).
 */
async function stream(srv, label, method, p, { body, headers = {}, until = () => false, timeoutMs = 20000 } = {}) {
  const h = { ...headers };
  if (body !== undefined) h['Content-Type'] = 'application/json';
  const r = await readRawSse(srv.url(p), {
    method,
    headers: h,
    body: body === undefined ? undefined : JSON.stringify(body),
    timeoutMs,
    until: (text) => until(parseEvents(text)),
  });
  assert.ok(!r.timedOut, `${label}: the stream did not reach its condition within ${timeoutMs} ms: ${r.text.slice(-500)}`);
  const events = checker.check(label, method, p, r);
  return { status: r.status, ended: r.ended, text: r.text, events: events || [] };
}

function parseEvents(text) {
  return parseSse(text).events.map(eventObject);
}

const hasDelta = (events) => events.some((e) => e.event === 'delta');
const hasTextDelta = (events) => events.some((e) => e.data?.type === 'text-delta');
const hasReasoning = (events) => events.some((e) => e.event === 'reasoning');
const hasReasoningDelta = (events) => events.some((e) => e.data?.type === 'reasoning-delta');
const statusesOf = (events) => events.filter((e) => e.event === 'status').map((e) => e.data.status);
const bytes = (text) => Buffer.byteLength(text, 'utf8');

/** A cursor as chatd writes it: the reasoning offset only when not 0. */
function cursorAt(messageId, { offset, reasoning }) {
  return reasoning ? `${messageId}.${offset}.${reasoning}` : `${messageId}.${offset}`;
}

/** A cursor's offsets: { offset, reasoning }. */
function offsetsOf(cursor) {
  const m = /^msg_[0-9A-Z]{26}\.(\d+)(?:\.(\d+))?$/.exec(cursor);
  assert.ok(m, `a cursor: ${cursor}`);
  return { offset: Number(m[1]), reasoning: Number(m[2] ?? 0) };
}

/**
 * chatd's events of message `id` read from cursor position `from`: each
 * reasoning or delta event starts where the bytes before it end (in its own
 * text), and every event's id is the cursor right after it. Returns the
 * reasoning and the content carried.
 */
function chatdTexts(label, events, id, from = { offset: 0, reasoning: 0 }) {
  const at = { ...from };
  const texts = { reasoning: '', content: '' };
  events.forEach((e, i) => {
    const what = `${label}: event #${i} ${JSON.stringify(e).slice(0, 300)}`;
    if (e.event === 'reasoning' || e.event === 'delta') {
      const key = e.event === 'reasoning' ? 'reasoning' : 'offset';
      assert.equal(e.data.message_id, id, what);
      assert.equal(e.data.offset, at[key], `${what}: starts where the ${e.event} before it ended`);
      at[key] += bytes(e.data.text);
      texts[e.event === 'reasoning' ? 'reasoning' : 'content'] += e.data.text;
    }
    assert.equal(e.id, cursorAt(id, at), `${what}: its id is the cursor after it`);
  });
  return texts;
}

/**
 * UI message stream events of message `id` read from cursor position `from`:
 * each delta's id is the cursor after it; a chunk that opens or closes a part
 * has the id of the delta it comes with (the next one), or the cursor where it
 * is. Returns { types, reasoning, content } (reasoning and text carried).
 */
function uiTexts(label, events, id, from = { offset: 0, reasoning: 0 }) {
  const at = { ...from };
  const texts = { reasoning: '', content: '' };
  const types = events.map((e) => e.data.type ?? e.data);
  events.forEach((e, i) => {
    const what = `${label}: event #${i} ${JSON.stringify(e).slice(0, 300)}`;
    const type = types[i];
    if (type === 'reasoning-delta' || type === 'text-delta') {
      const reasoning = type === 'reasoning-delta';
      at[reasoning ? 'reasoning' : 'offset'] += bytes(e.data.delta);
      texts[reasoning ? 'reasoning' : 'content'] += e.data.delta;
      assert.equal(e.id, cursorAt(id, at), `${what}: its id is the cursor after it`);
      return;
    }
    const next = events.slice(i + 1).find((n) => /-delta$/.test(n.data?.type ?? ''));
    const allowed = [cursorAt(id, at)];
    if (/^(reasoning|text)-(start|end)$/.test(type) && next) allowed.push(next.id);
    assert.ok(allowed.includes(e.id), `${what}: its id is one of ${allowed.join(', ')}`);
  });
  return { types: types.join(' '), ...texts };
}

// ---------------------------------------------------------------------------

test('zk: docs/openapi.json is a valid OpenAPI 3.1 document', async () => {
  const validator = new Validator();
  const result = await validator.validate(structuredClone(DOC));
  assert.ok(result.valid, `not a valid OpenAPI document: ${JSON.stringify(result.errors, null, 2)?.slice(0, 4000)}`);
  assert.equal(validator.version, '3.1');
  assert.equal(DOC.openapi, '3.1.0');

  assert.deepEqual(unresolvedRefs(DOC), [], 'every $ref names something in the document');

  // Every schema compiles under ajv's strict mode: a misspelt keyword is an error, not ignored.
  for (const name of Object.keys(DOC.components.schemas)) {
    assert.doesNotThrow(() => checker.schemaAt(`/components/schemas/${name}`), `components/schemas/${name} compiles`);
  }

  // The cursor pattern takes exactly the spellings chatd writes (engine/cursor.cpp).
  const cursor = checker.schemaAt('/components/schemas/Cursor');
  const id = 'msg_01M8QHQ7YX0001BDRQB9EXVE5T';
  for (const good of [`${id}.0`, `${id}.196`, `${id}.0.7`, `${id}.196.1024`, `${id}.${'9'.repeat(15)}.${'9'.repeat(15)}`]) {
    assert.ok(cursor(good), `the Cursor schema accepts ${good}`);
  }
  for (const bad of [id, `${id}.`, `${id}.01`, `${id}.-1`, `${id}.1.0`, `${id}.0.0`, `${id}.1.05`, `${id}.1.`, `${id}.1.2.3`,
    `${id}.${'1'.repeat(16)}`, `${id}.1.${'1'.repeat(16)}`, `ses_01M8QHQ7YX0001BDRQB9EXVE5T.1`]) {
    assert.ok(!cursor(bad), `the Cursor schema refuses ${bad}`);
  }

  const cmake = readFileSync(path.join(REPO, 'CMakeLists.txt'), 'utf8');
  const version = /project\s*\(\s*chatd\s+VERSION\s+([0-9.]+)/.exec(cmake)?.[1];
  assert.ok(version, 'CMakeLists.txt names the project version');
  assert.equal(DOC.info.version, version, 'info.version is the project version of CMakeLists.txt');

  const operationIds = Object.values(DOC.paths).flatMap((item) => Object.values(item).map((op) => op.operationId).filter(Boolean));
  assert.equal(operationIds.length, documentedRoutes(DOC).length, 'every operation has an operationId');
  assert.equal(new Set(operationIds).size, operationIds.length, 'operationIds are unique');
});

test('zk: the document has exactly the routes of chatd', () => {
  const server = serverRoutes();
  assert.ok(server.length >= 20, `the route tables were read (${server.length} routes: ${server.join(', ')})`);
  assert.equal(new Set(server).size, server.length, `no route is registered twice: ${server.join(', ')}`);
  const documented = new Set(documentedRoutes(DOC));
  const routes = new Set(server);
  const undocumented = server.filter((r) => !documented.has(r));
  const missing = [...documented].filter((r) => !routes.has(r));
  assert.deepEqual(undocumented, [], 'routes of chatd\'s route tables (src/) that docs/openapi.json does not describe');
  assert.deepEqual(missing, [], 'operations of docs/openapi.json that chatd does not route');
});

test('zk: real answers match the document', { timeout: 120000 }, async () => {
  await withChatd({ args: [...ANSWERS, '--max-message-bytes', '4096', '--max-body-bytes', '65536'], name: 'chatd-zk' }, async (srv) => {
    // Operations and the browser sign-in in --auth none.
    await call(srv, 'liveness', 'GET', '/healthz');
    const ready = await call(srv, 'readiness', 'GET', '/readyz');
    assert.equal(ready.status, 200);
    assert.equal((await call(srv, 'metrics', 'GET', '/metrics')).status, 200);
    assert.equal((await call(srv, 'who am I', 'GET', '/api/v1/auth/session')).json.user_id, 'usr_local');
    assert.equal((await call(srv, 'sign in without a cookie (none)', 'POST', '/api/v1/auth/session')).status, 200);
    assert.equal((await call(srv, 'sign out', 'DELETE', '/api/v1/auth/session')).status, 204);

    // Sessions.
    const created = await call(srv, 'create', 'POST', `${CHAT}/sessions`, { body: { title: 'OpenAPI', system_prompt: 'Be brief.' } });
    assert.equal(created.status, 201);
    const S = created.json.id;
    const other = await call(srv, 'create with defaults', 'POST', `${CHAT}/sessions`, { body: {} });
    const page = await call(srv, 'list, one per page', 'GET', `${CHAT}/sessions?limit=1`);
    assert.equal(page.json.next, other.json.id, 'a first page of one names the next');
    await call(srv, 'list, the next page', 'GET', `${CHAT}/sessions?limit=1&before=${page.json.next}`);
    await call(srv, 'read', 'GET', `${CHAT}/sessions/${S}`);
    const patched = await call(srv, 'patch', 'PATCH', `${CHAT}/sessions/${S}`, { body: { title: 'Renamed', model: null } });
    assert.equal(patched.json.title, 'Renamed');
    await call(srv, 'empty history', 'GET', `${CHAT}/sessions/${S}/messages`);
    const idle = await call(srv, 'status without messages', 'GET', `${CHAT}/messages/${S}/status`);
    assert.equal(idle.json.last_updated, null);
    await call(srv, 'poll without messages', 'GET', `${CHAT}/messages/${S}/poll`);

    // A send, and everything that reads or stops an answer while it generates.
    const key = `zk-${Date.now()}`;
    const sent = await call(srv, 'send', 'POST', `${CHAT}/sessions/${S}/messages`,
      { body: { content: 'Tell me a story' }, headers: { 'Idempotency-Key': key } });
    assert.equal(sent.status, 202);
    const M1 = sent.json.assistant_message.id;
    const U1 = sent.json.user_message.id;
    const replay = await call(srv, 'send retried with its key', 'POST', `${CHAT}/sessions/${S}/messages`,
      { body: { content: 'Tell me a story' }, headers: { 'Idempotency-Key': key } });
    assert.equal(replay.json.assistant_message.id, M1);
    const busy = await call(srv, 'send while generating', 'POST', `${CHAT}/sessions/${S}/messages`, { body: { content: 'Meanwhile' } });
    assert.equal(busy.status, 409);
    assert.equal(busy.json.error.active_message_id, M1);
    const reused = await call(srv, 'a key reused with other content', 'POST', `${CHAT}/sessions/${S}/messages`,
      { body: { content: 'Something else' }, headers: { 'Idempotency-Key': key } });
    assert.equal(reused.status, 422);
    const active = await call(srv, 'status while generating', 'GET', `${CHAT}/messages/${S}/status`);
    assert.equal(active.json.generating_message_id, M1);
    const content = await call(srv, 'content while generating', 'GET', `${CHAT}/messages/${M1}/content`);
    const polled = await call(srv, 'poll everything', 'GET', `${CHAT}/messages/${S}/poll`);
    await call(srv, 'poll since next_since', 'GET', `${CHAT}/messages/${S}/poll?since=${polled.json.next_since}`);
    await call(srv, 'poll since a time', 'GET', `${CHAT}/messages/${S}/poll?since=2020-01-01T00:00:00Z`);
    assert.equal((await call(srv, 'poll since garbage', 'GET', `${CHAT}/messages/${S}/poll?since=yesterday`)).status, 400);

    const live = await stream(srv, 'message stream from the start', 'GET', `${CHAT}/messages/${M1}/stream`, { until: hasDelta });
    assert.equal(live.events[0].event, 'status', 'a live message starts with its status');
    assert.equal(live.events[0].data.status, 'generating');
    await stream(srv, 'message stream from the content cursor', 'GET', `${CHAT}/messages/${M1}/stream`,
      { headers: { 'Last-Event-ID': content.json.cursor }, until: hasDelta });
    await stream(srv, 'session stream', 'GET', `${CHAT}/messages/stream?session_id=${S}`, { until: hasDelta });

    const cancelled = await call(srv, 'cancel', 'POST', `${CHAT}/messages/${M1}/cancel`);
    assert.equal(cancelled.status, 200, 'the answer was cancelled while it generated');
    assert.equal(cancelled.json.status, 'cancelled');
    assert.equal((await call(srv, 'cancel again', 'POST', `${CHAT}/messages/${M1}/cancel`)).status, 200);
    assert.equal((await call(srv, 'cancel a user message', 'POST', `${CHAT}/messages/${U1}/cancel`)).status, 409);
    const ended = await stream(srv, 'message stream of an ended answer', 'GET', `${CHAT}/messages/${M1}/stream`);
    assert.ok(ended.ended, 'a message stream ends with its message');
    assert.deepEqual(statusesOf(ended.events), ['cancelled']);
    const end = ended.events.at(-1).id;
    const again = await stream(srv, 'message stream resumed at its end', 'GET', `${CHAT}/messages/${M1}/stream?last_event_id=${end}`);
    assert.deepEqual(statusesOf(again.events), ['cancelled'], 'the terminal status again');

    // A send that streams its answer to the end.
    const streamed = await stream(srv, 'send with Accept: text/event-stream', 'POST', `${CHAT}/sessions/${S}/messages`,
      { body: { content: 'And another' } });
    assert.equal(streamed.status, 200);
    assert.ok(streamed.ended);
    assert.deepEqual(statusesOf(streamed.events), ['generating', 'completed']);
    assert.equal(streamed.events.at(-1).data.finish_reason, 'stop');

    const history = await call(srv, 'history page', 'GET', `${CHAT}/sessions/${S}/messages?limit=2`);
    assert.equal(history.json.messages.length, 2);
    assert.ok(history.json.next, 'older messages exist');
    await call(srv, 'history, the older page', 'GET', `${CHAT}/sessions/${S}/messages?limit=2&before=${history.json.next}`);

    // Errors.
    assert.equal((await call(srv, 'unknown session', 'GET', `${CHAT}/sessions/${mutateId(S)}`)).status, 404);
    assert.equal((await call(srv, 'malformed session id', 'GET', `${CHAT}/sessions/nope`)).status, 404);
    assert.equal((await call(srv, 'unknown message', 'GET', `${CHAT}/messages/${mutateId(M1)}/content`)).status, 404);
    assert.equal((await call(srv, 'no such endpoint', 'GET', `${CHAT}/nope`)).status, 404);
    assert.equal((await call(srv, 'a body that is not an object', 'POST', `${CHAT}/sessions`, { body: '[]' })).status, 400);
    assert.equal((await call(srv, 'a title of the wrong type', 'PATCH', `${CHAT}/sessions/${S}`, { body: { title: 7 } })).status, 400);
    assert.equal((await call(srv, 'limit out of range', 'GET', `${CHAT}/sessions?limit=0`)).status, 400);
    assert.equal((await call(srv, 'an empty message', 'POST', `${CHAT}/sessions/${S}/messages`, { body: { content: '' } })).status, 400);
    assert.equal((await call(srv, 'a malformed cursor', 'GET', `${CHAT}/messages/${M1}/stream`,
      { headers: { 'Last-Event-ID': 'garbage' } })).status, 400);
    assert.equal((await call(srv, 'session stream without a session', 'GET', `${CHAT}/messages/stream`)).status, 400);
    assert.equal((await call(srv, 'a body that is not JSON', 'POST', `${CHAT}/sessions`,
      { body: 'title=x', headers: { 'Content-Type': 'text/plain' } })).status, 415);
    const wrongMethod = await call(srv, 'a method the path does not take', 'PUT', `${CHAT}/sessions`, { body: {} });
    assert.equal(wrongMethod.status, 405);
    assert.equal((await call(srv, 'content over --max-message-bytes', 'POST', `${CHAT}/sessions/${S}/messages`,
      { body: { content: 'x'.repeat(5000) } })).status, 413);
    const { host } = new URL(srv.baseUrl);
    const tooLarge = await rawHttp(srv.baseUrl, { method: 'POST', path: `${CHAT}/sessions`, host,
      headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ title: 'x'.repeat(70000) }) });
    checker.check('a body over --max-body-bytes', 'POST', `${CHAT}/sessions`, tooLarge);
    assert.equal(tooLarge.status, 413);
    const rebound = await rawHttp(srv.baseUrl, { path: `${CHAT}/sessions`, host: 'chat.example.com' });
    checker.check('a Host that is not loopback', 'GET', `${CHAT}/sessions`, rebound);
    assert.equal(rebound.status, 403);
    const crossSite = await rawHttp(srv.baseUrl, { method: 'POST', path: `${CHAT}/sessions`, host,
      headers: { 'Content-Type': 'application/json', Origin: 'https://elsewhere.example' }, body: '{}' });
    checker.check('a POST from another origin', 'POST', `${CHAT}/sessions`, crossSite);
    assert.equal(crossSite.status, 403);

    // The AI SDK endpoints.
    const chat = `zk-chat-${Date.now()}`;
    const userMessage = (id, text) => ({ id, role: 'user', parts: [{ type: 'text', text }] });
    const sendBody = (id, text) => ({ id: chat, messages: [userMessage(id, text)], trigger: 'submit-message' });
    const none = await call(srv, 'AI SDK history of a chat not made yet', 'GET', `${AI}/${chat}/messages`);
    assert.deepEqual(none.json, []);
    assert.equal((await call(srv, 'AI SDK resume of a chat not made yet', 'GET', `${AI}/${chat}/stream`)).status, 204);
    assert.equal((await call(srv, 'AI SDK stop of a chat not made yet', 'POST', `${AI}/${chat}/stop`)).status, 404);
    const first = await stream(srv, 'AI SDK send', 'POST', AI, { body: sendBody('u1', 'Hello'), until: hasTextDelta });
    assert.equal(first.events[0].data.type, 'start');
    assert.equal((await call(srv, 'AI SDK send while generating', 'POST', AI, { body: sendBody('u2', 'Meanwhile') })).status, 409);
    const resumed = await stream(srv, 'AI SDK resume', 'GET', `${AI}/${chat}/stream`, { until: hasTextDelta });
    const cursor = resumed.events.at(-1).id;
    const uiHistory = await call(srv, 'AI SDK history', 'GET', `${AI}/${chat}/messages`);
    assert.equal(uiHistory.json.length, 2);
    const stopped = await call(srv, 'AI SDK stop', 'POST', `${AI}/${chat}/stop`);
    assert.equal(stopped.status, 200, 'the answer was stopped while it generated');
    assert.equal(stopped.json.metadata.status, 'cancelled');
    assert.equal((await call(srv, 'AI SDK stop again', 'POST', `${AI}/${chat}/stop`)).status, 409);
    assert.equal((await call(srv, 'AI SDK resume when idle', 'GET', `${AI}/${chat}/stream`)).status, 204);
    const rest = await stream(srv, 'AI SDK resume from a cursor', 'GET', `${AI}/${chat}/stream`, { headers: { 'Last-Event-ID': cursor } });
    assert.deepEqual(rest.events.slice(-3).map((e) => e.data.type ?? e.data), ['text-end', 'abort', '[DONE]']);
    const whole = await stream(srv, 'AI SDK send to the end', 'POST', AI, { body: sendBody('u3', 'Again') });
    assert.deepEqual(whole.events.slice(-3).map((e) => e.data.type ?? e.data), ['finish-step', 'finish', '[DONE]']);
    assert.equal((await call(srv, 'AI SDK send: a message id reused with other text', 'POST', AI,
      { body: sendBody('u3', 'Different') })).status, 422);
    assert.equal((await call(srv, 'AI SDK send: a bad chat id', 'POST', AI,
      { body: { id: 'not a chat id', messages: [userMessage('u4', 'Hi')] } })).status, 400);
    assert.equal((await call(srv, 'AI SDK history: a bad chat id', 'GET', `${AI}/a.b/messages`)).status, 400);

    assert.equal((await call(srv, 'delete', 'DELETE', `${CHAT}/sessions/${S}`)).status, 204);
    assert.equal((await call(srv, 'delete again', 'DELETE', `${CHAT}/sessions/${S}`)).status, 404);
  });
});

test('zk: answers with reasoning match the document', { timeout: 60000 }, async () => {
  await withChatd({ args: THINKING, name: 'chatd-zk-reasoning' }, async (srv) => {
    const S = (await call(srv, 'create', 'POST', `${CHAT}/sessions`, { body: {} })).json.id;

    // An answer streamed from its start to its end: its reasoning first.
    const streamed = await stream(srv, 'send with reasoning, streamed', 'POST', `${CHAT}/sessions/${S}/messages`,
      { body: { content: 'Think first' } });
    assert.ok(streamed.ended);
    assert.deepEqual(statusesOf(streamed.events), ['generating', 'completed']);
    const M = streamed.events[0].data.id;
    const kinds = streamed.events.map((e) => e.event);
    assert.ok(kinds.includes('reasoning'), `reasoning events: ${kinds}`);
    assert.ok(kinds.lastIndexOf('reasoning') < kinds.indexOf('delta'), `the reasoning before the text: ${kinds}`);
    const carried = chatdTexts('send with reasoning, streamed', streamed.events, M);
    assert.ok(carried.reasoning.startsWith('Thinking: '), carried.reasoning);

    // The stored message: its content's cursor covers both texts.
    const content = await call(srv, 'content with reasoning', 'GET', `${CHAT}/messages/${M}/content`);
    assert.equal(content.json.content, carried.content);
    assert.equal(content.json.reasoning, carried.reasoning);
    const end = cursorAt(M, { offset: bytes(carried.content), reasoning: bytes(carried.reasoning) });
    assert.equal(content.json.cursor, end, 'a three-part cursor: the ends of the content and the reasoning');
    assert.equal(streamed.events.at(-1).id, end, 'the terminal status is at that cursor');
    const history = await call(srv, 'history with reasoning', 'GET', `${CHAT}/sessions/${S}/messages`);
    assert.deepEqual(history.json.messages.map((m) => m.reasoning), [undefined, carried.reasoning],
      'the answer has reasoning, the user message none');
    const polled = await call(srv, 'poll with reasoning', 'GET', `${CHAT}/messages/${S}/poll`);
    assert.equal(polled.json.messages.find((m) => m.id === M).reasoning, carried.reasoning);

    // Resumes at a three-part cursor: the rest of the reasoning, then the text.
    const firstReasoning = streamed.events.find((e) => e.event === 'reasoning');
    const from = offsetsOf(firstReasoning.id);
    assert.ok(from.offset === 0 && from.reasoning > 0, `a cursor inside the reasoning: ${firstReasoning.id}`);
    const rest = await stream(srv, 'message stream resumed at a three-part cursor', 'GET', `${CHAT}/messages/${M}/stream`,
      { headers: { 'Last-Event-ID': firstReasoning.id } });
    assert.deepEqual(statusesOf(rest.events), ['completed'], 'no generating status after the start');
    const restTexts = chatdTexts('message stream resumed', rest.events, M, from);
    assert.equal(firstReasoning.data.text + restTexts.reasoning, carried.reasoning);
    assert.equal(restTexts.content, carried.content);
    const atEnd = await stream(srv, 'message stream resumed at the content\'s cursor', 'GET',
      `${CHAT}/messages/${M}/stream?last_event_id=${content.json.cursor}`);
    assert.deepEqual(atEnd.events.map((e) => [e.event, e.id]), [['status', end]], 'the terminal status again');
    const session = await stream(srv, 'session stream resumed at a three-part cursor', 'GET', `${CHAT}/messages/stream?session_id=${S}`,
      { headers: { 'Last-Event-ID': firstReasoning.id }, until: (events) => statusesOf(events).includes('completed') });
    const sessionTexts = chatdTexts('session stream resumed', session.events, M, from);
    assert.equal(firstReasoning.data.text + sessionTexts.reasoning, carried.reasoning);
    assert.equal(sessionTexts.content, carried.content);
    // chatd refuses what the pattern refuses, and a reasoning offset past the reasoning.
    for (const bad of [`${M}.0.0`, `${M}.${bytes(carried.content)}.0`, `${M}.0.${bytes(carried.reasoning) + 1}`]) {
      const refused = await call(srv, `a cursor ${bad}`, 'GET', `${CHAT}/messages/${M}/stream`, { headers: { 'Last-Event-ID': bad } });
      assert.equal(refused.status, 400, bad);
      assert.equal(refused.json.error.code, 'invalid_cursor', bad);
    }

    // A cancel once it thinks keeps the reasoning.
    const sent = await call(srv, 'send, the model thinks', 'POST', `${CHAT}/sessions/${S}/messages`, { body: { content: 'Think again' } });
    const M2 = sent.json.assistant_message.id;
    assert.equal(sent.json.assistant_message.reasoning, undefined, 'a new answer has no reasoning yet');
    const thinking = await stream(srv, 'message stream while it thinks', 'GET', `${CHAT}/messages/${M2}/stream`, { until: hasReasoning });
    chatdTexts('message stream while it thinks', thinking.events, M2);
    const cancelled = await call(srv, 'cancel with reasoning', 'POST', `${CHAT}/messages/${M2}/cancel`);
    assert.equal(cancelled.status, 200, 'the answer was cancelled while it generated');
    assert.ok(cancelled.json.reasoning.startsWith(thinking.events.find((e) => e.event === 'reasoning').data.text));

    // The AI SDK: a whole answer, its history, a resume inside its reasoning.
    const chat = `zk-thinking-${Date.now()}`;
    const sendBody = (id, text) => ({ id: chat, messages: [{ id, role: 'user', parts: [{ type: 'text', text }] }], trigger: 'submit-message' });
    const whole = await stream(srv, 'AI SDK send, the model thinks', 'POST', AI, { body: sendBody('u1', 'Think first') });
    assert.ok(whole.ended);
    const U = whole.events[0].data.messageId;
    const ui = uiTexts('AI SDK send', whole.events, U);
    assert.match(ui.types, /^start start-step reasoning-start (reasoning-delta )+reasoning-end text-start (text-delta )+text-end finish-step finish \[DONE\]$/);
    assert.ok(whole.events.filter((e) => /^reasoning-/.test(e.data.type)).every((e) => e.data.id === 'reasoning'), 'one reasoning part');
    const stored = (await call(srv, 'content of the AI SDK answer', 'GET', `${CHAT}/messages/${U}/content`)).json;
    assert.deepEqual([ui.reasoning, ui.content], [stored.reasoning, stored.content]);
    const uiHistory = await call(srv, 'AI SDK history with reasoning', 'GET', `${AI}/${chat}/messages`);
    assert.deepEqual(uiHistory.json.at(-1).parts, [
      { type: 'reasoning', text: stored.reasoning, state: 'done' },
      { type: 'text', text: stored.content, state: 'done' },
    ]);
    const uiFirst = whole.events.find((e) => e.data.type === 'reasoning-delta');
    const uiFrom = offsetsOf(uiFirst.id);
    assert.ok(uiFrom.offset === 0 && uiFrom.reasoning > 0, `a cursor inside the reasoning: ${uiFirst.id}`);
    const uiRest = await stream(srv, 'AI SDK resume at a three-part cursor', 'GET', `${AI}/${chat}/stream`,
      { headers: { 'Last-Event-ID': uiFirst.id } });
    const uiRestTexts = uiTexts('AI SDK resume', uiRest.events, U, uiFrom);
    assert.match(uiRestTexts.types, /^(reasoning-delta )*reasoning-end text-start (text-delta )+text-end finish-step finish \[DONE\]$/);
    assert.equal(uiFirst.data.delta + uiRestTexts.reasoning, stored.reasoning);
    assert.equal(uiRestTexts.content, stored.content);

    // The AI SDK: an answer stopped once it thinks, its history meanwhile.
    const live = await stream(srv, 'AI SDK send while it thinks', 'POST', AI, { body: sendBody('u2', 'Think again'), until: hasReasoningDelta });
    const U2 = live.events[0].data.messageId;
    assert.match(uiTexts('AI SDK send while it thinks', live.events, U2).types, /^start start-step reasoning-start reasoning-delta/);
    const liveHistory = await call(srv, 'AI SDK history while it generates', 'GET', `${AI}/${chat}/messages`);
    assert.equal(liveHistory.json.at(-1).parts[0].type, 'reasoning');
    const stopped = await call(srv, 'AI SDK stop with reasoning', 'POST', `${AI}/${chat}/stop`);
    assert.equal(stopped.status, 200, 'the answer was stopped while it generated');
    assert.deepEqual(stopped.json.parts.map((p) => [p.type, p.state]).slice(0, 1), [['reasoning', 'done']]);
    const liveFirst = live.events.find((e) => e.data.type === 'reasoning-delta');
    const liveRest = await stream(srv, 'AI SDK resume of a stopped answer at a three-part cursor', 'GET', `${AI}/${chat}/stream`,
      { headers: { 'Last-Event-ID': liveFirst.id } });
    assert.match(uiTexts('AI SDK resume of a stopped answer', liveRest.events, U2, offsetsOf(liveFirst.id)).types,
      /^(reasoning-delta )*reasoning-end text-start (text-delta )*text-end abort \[DONE\]$/);
  });
});

test('zk: limits answer 429 as the document says', { timeout: 60000 }, async () => {
  await withChatd({ args: ['--max-sessions-per-user', '1', '--max-streams-per-user', '1'], name: 'chatd-zk-limits' }, async (srv) => {
    const S = (await call(srv, 'create', 'POST', `${CHAT}/sessions`, { body: {} })).json.id;
    assert.equal((await call(srv, 'create beyond --max-sessions-per-user', 'POST', `${CHAT}/sessions`, { body: {} })).status, 429);
    // A stream holds the one slot from before its head is written.
    const ac = new AbortController();
    try {
      const held = await fetch(srv.url(`${CHAT}/messages/stream?session_id=${S}`), { signal: ac.signal });
      assert.equal(held.status, 200);
      const refused = await call(srv, 'a stream beyond --max-streams-per-user', 'GET', `${CHAT}/messages/stream?session_id=${S}`);
      assert.equal(refused.status, 429);
      assert.equal(refused.json.error.code, 'too_many_streams');
    } finally {
      ac.abort();
    }
  });
});

test('zk: authentication answers as the document says', { timeout: 60000 }, async () => {
  const dir = await tempDir('chatd-zk-');
  const alice = newApiKey();
  const carol = newApiKey();
  const file = await writeApiKeysFile(path.join(dir, 'keys.txt'), [{ key: alice, user: 'alice' }, { key: carol, user: 'carol' }]);
  const args = ['--auth', 'api-keys', '--api-keys-file', file, '--rate-limit-rps', '0.001', '--rate-limit-burst', '5'];
  await withChatd({ args, name: 'chatd-zk-auth' }, async (srv) => {
    const denied = await call(srv, 'no credentials', 'GET', `${CHAT}/sessions`);
    assert.equal(denied.status, 401);
    const signedIn = await call(srv, 'sign in with an API key', 'POST', '/api/v1/auth/session', { headers: authHeaders(alice) });
    assert.equal(signedIn.status, 200);
    assert.equal(signedIn.json.user_id, 'alice');
    assert.ok(signedIn.json.expires_at, 'a cookie session expires');
    const cookie = signedIn.headers.get('set-cookie').split(';')[0];
    assert.match(cookie, /^chatd_session=./);
    assert.equal((await call(srv, 'who am I by cookie', 'GET', '/api/v1/auth/session', { headers: { Cookie: cookie } })).json.user_id, 'alice');
    assert.equal((await call(srv, 'sign in with the cookie alone', 'POST', '/api/v1/auth/session', { headers: { Cookie: cookie } })).status, 401);
    assert.equal((await call(srv, 'sign out', 'DELETE', '/api/v1/auth/session', { headers: { Cookie: cookie } })).status, 204);
    // carol spends her burst; the next request is refused until a token is back.
    const statuses = [];
    for (let i = 0; i < 6; i++) statuses.push((await call(srv, `carol's request ${i + 1}`, 'GET', `${CHAT}/sessions`, { headers: authHeaders(carol) })).status);
    assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429]);
  });
});

test('zk: chatd serves the document at /api/v1/openapi.json without credentials', { timeout: 30000 }, async () => {
  const dir = await tempDir('chatd-zk-');
  const file = await writeApiKeysFile(path.join(dir, 'keys.txt'), [{ key: newApiKey(), user: 'alice' }]);
  await withChatd({ args: ['--auth', 'api-keys', '--api-keys-file', file], name: 'chatd-zk-doc' }, async (srv) => {
    const res = await fetch(srv.url('/api/v1/openapi.json'));
    const body = Buffer.from(await res.arrayBuffer());
    checker.check('the served document', 'GET', '/api/v1/openapi.json', { status: res.status, headers: res.headers, text: body.toString('utf8') });
    assert.equal(res.status, 200);
    assert.ok(body.equals(DOC_BYTES), `the served document is docs/openapi.json byte for byte (served ${body.length} bytes, the file has ${DOC_BYTES.length})`);
  });
});

test('zk: every documented operation was exercised', () => {
  const missing = documentedRoutes(DOC).filter((route) => {
    const [method, p] = route.split(' ');
    return ![...checker.exercised.keys()].some((key) => {
      const [m, template] = key.split(' ');
      return m === method && template.replace(/\{[^}]+\}/g, '{}') === p;
    });
  });
  assert.deepEqual(missing, [], 'operations no answer of the tests above was checked against');
});
