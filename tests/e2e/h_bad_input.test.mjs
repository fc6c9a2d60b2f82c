// Scenario h: bad input, table-driven. Each case checks the HTTP status, the
// error code and that the store is unchanged (GET /sessions and every
// session's history before and after).
//
// chatd runs with small limits (--max-body-bytes 4096, --max-message-bytes
// 1024) and a simulated provider that stalls after one token, so a started
// generation stays `generating` and the store stays still between cases.

import test from 'node:test';
import assert from 'node:assert/strict';
import { withChatd, startChatd, createSession, send, getContent, waitFor, delay, mutateId, utf8 } from './support/chatd.mjs';
import { readRawSse } from './support/sse.mjs';

const ARGS = [
  '--max-body-bytes', '4096', '--max-message-bytes', '1024',
  '--sim-tokens-per-second', '200', '--sim-stall-after', '1',
  // A stall would end as upstream_timeout after the idle timeout: not here.
  '--upstream-idle-timeout-ms', '3600000', '--upstream-first-token-timeout-ms', '3600000',
];

async function snapshot(srv) {
  const list = await srv.api('GET', '/sessions?limit=200');
  assert.equal(list.status, 200, `GET /sessions: ${list.text}`);
  const histories = {};
  for (const s of list.json.sessions) {
    const h = await srv.api('GET', `/sessions/${s.id}/messages`);
    assert.equal(h.status, 200);
    histories[s.id] = h.json;
  }
  return { sessions: list.json, histories };
}

/** A stream request: status and parsed body, without hanging if the server wrongly starts a stream. */
async function streamRequest(srv, path, headers = {}) {
  const r = await readRawSse(srv.url(`/api/v1/chat${path}`), {
    headers,
    timeoutMs: 3000,
    until: (_text, res) => res.status === 200,
  });
  let json = null;
  try { json = JSON.parse(r.text); } catch { json = null; }
  return { status: r.status, headers: r.headers, text: r.text, json };
}

/**
 * Cursors are opaque. To build one whose offset lies past the committed end
 * without knowing the format, look for the known end offset written as a
 * standalone decimal number in the cursor or in its base64/base64url decoding
 * and replace it. Returns null when the format hides the offset.
 */
function forgeCursorOffset(cursor, knownOffset, newOffset) {
  const re = new RegExp(`(?<![0-9A-Za-z])${knownOffset}(?![0-9A-Za-z])`, 'g');
  const swap = (s) => ((s.match(re) || []).length === 1 ? s.replace(re, String(newOffset)) : null);
  const plain = swap(cursor);
  if (plain) return plain;
  for (const enc of ['base64url', 'base64']) {
    const raw = Buffer.from(cursor, enc);
    const back = raw.toString(enc).replace(/=+$/, '');
    if (back !== cursor.replace(/=+$/, '')) continue;
    const decoded = raw.toString('latin1');
    const forged = swap(decoded);
    if (forged) {
      let out = Buffer.from(forged, 'latin1').toString(enc);
      if (!cursor.endsWith('=')) out = out.replace(/=+$/, '');
      return out;
    }
  }
  return null;
}

function expectError(r, status, code, label) {
  assert.equal(r.status, status, `${label}: expected ${status}, got ${r.status}: ${r.text.slice(0, 300)}`);
  assert.match(r.headers.get('content-type') || '', /^application\/json/, `${label}: error body must be JSON`);
  assert.ok(r.json && typeof r.json.error === 'object', `${label}: body must be {"error": {...}}, got ${r.text.slice(0, 200)}`);
  if (code) assert.equal(r.json.error.code, code, `${label}: error.code`);
  assert.equal(typeof r.json.error.code, 'string');
  assert.equal(typeof r.json.error.message, 'string');
  assert.ok(r.json.error.message.length > 0, `${label}: error.message is empty`);
}

function allowList(r) {
  return (r.headers.get('allow') || '').split(',').map((m) => m.trim().toUpperCase()).filter(Boolean);
}

test('h: bad input answers the right error and leaves the store unchanged', { timeout: 120000 }, async (t) => {
  await withChatd({ args: ARGS, name: 'chatd-h' }, async (srv) => {
    // --- fixtures --------------------------------------------------------
    const s1 = await createSession(srv, { title: 'busy' });
    const first = await send(srv, s1.id, 'hello there');
    const m1 = first.assistant_message;
    const u1 = first.user_message;
    const s2 = await createSession(srv, { title: 'idle' });
    const s3 = await createSession(srv, { title: 'idempotent' });
    const idemKey = `key-${Date.now()}-h`;
    const idemBody = { content: 'idempotent hello' };
    const idemFirst = await srv.api('POST', `/sessions/${s3.id}/messages`, idemBody, { 'Idempotency-Key': idemKey });
    assert.equal(idemFirst.status, 202, idemFirst.text);
    const m3 = idemFirst.json.assistant_message;

    // Wait for the single token of each stalled generation to be committed.
    const c1 = await waitFor(async () => { const c = await getContent(srv, m1.id); return c.content.length > 0 ? c : null; },
      { timeoutMs: 10000, message: 'first token of the busy session' });
    const c3 = await waitFor(async () => { const c = await getContent(srv, m3.id); return c.content.length > 0 ? c : null; },
      { timeoutMs: 10000, message: 'first token of the idempotent session' });
    assert.equal(c1.status, 'generating', 'with --sim-stall-after the generation stays generating');
    assert.equal(c3.status, 'generating');

    // A cursor naming a message this chatd has never seen: from another chatd.
    const other = await startChatd({ args: ARGS, name: 'chatd-h-other' });
    let foreignCursor;
    try {
      const os1 = await createSession(other, { title: 'elsewhere' });
      const om = (await send(other, os1.id, 'hello elsewhere')).assistant_message;
      foreignCursor = (await waitFor(async () => { const c = await getContent(other, om.id); return c.content.length > 0 ? c : null; },
        { timeoutMs: 10000, message: 'first token on the other chatd' })).cursor;
    } finally {
      await other.stop();
      await other.cleanup();
    }
    const pastEndCursor = forgeCursorOffset(c1.cursor, utf8(c1.content).length, utf8(c1.content).length + 1000);

    const badSes = mutateId(s1.id);
    const badMsg = mutateId(m1.id);
    const json = { 'Content-Type': 'application/json' };

    // The store must be still before the table runs (else "unchanged" means nothing).
    const base = await snapshot(srv);
    await delay(300); // absence of change: a short bounded watch
    assert.deepEqual(await snapshot(srv), base, 'store changed with no request: fixtures are not quiescent');

    // --- the table -------------------------------------------------------
    const S2 = `/sessions/${s2.id}/messages`;
    const cases = [
      // body shape
      { name: 'malformed JSON on create session', req: () => srv.api('POST', '/sessions', '{"title": ', json), status: 400, code: 'invalid_json' },
      { name: 'malformed JSON on send', req: () => srv.api('POST', S2, '{"content": "x"', json), status: 400, code: 'invalid_json' },
      { name: 'JSON array body', req: () => srv.api('POST', S2, '["hello"]', json), status: 400, code: 'invalid_json' },
      { name: 'JSON string body', req: () => srv.api('POST', S2, '"hello"', json), status: 400, code: 'invalid_json' },
      { name: 'JSON null body', req: () => srv.api('POST', '/sessions', 'null', json), status: 400, code: 'invalid_json' },
      { name: 'missing content', req: () => srv.api('POST', S2, {}), status: 400, code: 'invalid_request' },
      { name: 'content under another name', req: () => srv.api('POST', S2, { text: 'hello' }), status: 400, code: 'invalid_request' },
      { name: 'content a number', req: () => srv.api('POST', S2, { content: 42 }), status: 400, code: 'invalid_request' },
      { name: 'content null', req: () => srv.api('POST', S2, { content: null }), status: 400, code: 'invalid_request' },
      { name: 'title a number', req: () => srv.api('POST', '/sessions', { title: 7 }), status: 400, code: 'invalid_request' },
      { name: 'system_prompt a number', req: () => srv.api('POST', '/sessions', { title: 'x', system_prompt: 1 }), status: 400, code: 'invalid_request' },
      { name: 'model not a string', req: () => srv.api('POST', '/sessions', { title: 'x', model: ['a'] }), status: 400, code: 'invalid_request' },
      { name: 'title over 200 characters', req: () => srv.api('POST', '/sessions', { title: 'a'.repeat(201) }), status: 400, code: 'invalid_request' },
      { name: 'title over 200 characters (multi-byte)', req: () => srv.api('POST', '/sessions', { title: 'é'.repeat(201) }), status: 400, code: 'invalid_request' },
      // limits
      { name: 'body over --max-body-bytes on send', req: () => srv.api('POST', S2, { content: 'x'.repeat(5000) }), status: 413, code: 'payload_too_large' },
      { name: 'body over --max-body-bytes on create session', req: () => srv.api('POST', '/sessions', { title: 'x', system_prompt: 'y'.repeat(5000) }), status: 413, code: 'payload_too_large' },
      { name: 'content over --max-message-bytes', req: () => srv.api('POST', S2, { content: 'a'.repeat(1025) }), status: 413, code: 'message_too_long' },
      { name: 'content over --max-message-bytes in bytes, not characters', req: () => srv.api('POST', S2, { content: 'é'.repeat(600) }), status: 413, code: 'message_too_long' },
      // unknown sessions
      ...[['well-formed', badSes], ['garbage', 'nope'], ['garbage with prefix', 'ses_!!x']].flatMap(([kind, id]) => {
        const e = encodeURIComponent(id);
        return [
          { name: `send to unknown session (${kind})`, req: () => srv.api('POST', `/sessions/${e}/messages`, { content: 'hi' }), status: 404, code: 'not_found' },
          { name: `read unknown session (${kind})`, req: () => srv.api('GET', `/sessions/${e}`), status: 404, code: 'not_found' },
          { name: `history of unknown session (${kind})`, req: () => srv.api('GET', `/sessions/${e}/messages`), status: 404, code: 'not_found' },
          { name: `delete unknown session (${kind})`, req: () => srv.api('DELETE', `/sessions/${e}`), status: 404, code: 'not_found' },
          { name: `status of unknown session (${kind})`, req: () => srv.api('GET', `/messages/${e}/status`), status: 404, code: 'not_found' },
          { name: `poll unknown session (${kind})`, req: () => srv.api('GET', `/messages/${e}/poll`), status: 404, code: 'not_found' },
          { name: `session stream of unknown session (${kind})`, req: () => streamRequest(srv, `/messages/stream?session_id=${e}`), status: 404, code: 'not_found' },
        ];
      }),
      // unknown messages
      ...[['well-formed', badMsg], ['garbage', 'nope']].flatMap(([kind, id]) => {
        const e = encodeURIComponent(id);
        return [
          { name: `content of unknown message (${kind})`, req: () => srv.api('GET', `/messages/${e}/content`), status: 404, code: 'not_found' },
          { name: `cancel unknown message (${kind})`, req: () => srv.api('POST', `/messages/${e}/cancel`), status: 404, code: 'not_found' },
          { name: `stream of unknown message (${kind})`, req: () => streamRequest(srv, `/messages/${e}/stream`), status: 404, code: 'not_found' },
          { name: `status with unknown message id (${kind})`, req: () => srv.api('GET', `/messages/${e}/status`), status: 404, code: 'not_found' },
        ];
      }),
      // methods, media types, paths
      { name: 'PUT /sessions', req: () => srv.api('PUT', '/sessions', { title: 'x' }), status: 405, code: 'method_not_allowed', allow: ['GET', 'POST'] },
      { name: 'DELETE /sessions', req: () => srv.api('DELETE', '/sessions'), status: 405, code: 'method_not_allowed', allow: ['GET', 'POST'] },
      { name: 'PUT /sessions/{id}', req: () => srv.api('PUT', `/sessions/${s1.id}`, { title: 'x' }), status: 405, code: 'method_not_allowed', allow: ['GET', 'PATCH', 'DELETE'] },
      { name: 'PATCH /sessions', req: () => srv.api('PATCH', '/sessions', { title: 'x' }), status: 405, code: 'method_not_allowed', allow: ['GET', 'POST'] },
      { name: 'PUT /sessions/{id}/messages', req: () => srv.api('PUT', S2, { content: 'x' }), status: 405, code: 'method_not_allowed', allow: ['GET', 'POST'] },
      { name: 'GET /messages/{id}/cancel', req: () => srv.api('GET', `/messages/${m1.id}/cancel`), status: 405, code: 'method_not_allowed', allow: ['POST'] },
      { name: 'POST /messages/{id}/content', req: () => srv.api('POST', `/messages/${m1.id}/content`, {}), status: 405, code: 'method_not_allowed', allow: ['GET'] },
      { name: 'text/plain body on create session', req: () => srv.api('POST', '/sessions', '{"title":"x"}', { 'Content-Type': 'text/plain' }), status: 415, code: 'unsupported_media_type' },
      { name: 'text/plain body on send', req: () => srv.api('POST', S2, '{"content":"x"}', { 'Content-Type': 'text/plain' }), status: 415, code: 'unsupported_media_type' },
      { name: 'form body on send', req: () => srv.api('POST', S2, 'content=x', { 'Content-Type': 'application/x-www-form-urlencoded' }), status: 415, code: 'unsupported_media_type' },
      { name: 'unknown API path', req: () => srv.api('GET', '/nope'), status: 404, code: 'not_found' },
      { name: 'unknown sub-path of a session', req: () => srv.api('GET', `/sessions/${s1.id}/nope`), status: 404, code: 'not_found' },
      { name: 'unknown API version', req: () => srv.http('GET', '/api/v2/chat/sessions'), status: 404 },
      // lists
      { name: 'limit=0', req: () => srv.api('GET', '/sessions?limit=0'), status: 400, code: 'invalid_request' },
      { name: 'limit=201', req: () => srv.api('GET', '/sessions?limit=201'), status: 400, code: 'invalid_request' },
      { name: 'limit=abc', req: () => srv.api('GET', '/sessions?limit=abc'), status: 400, code: 'invalid_request' },
      { name: 'limit=-1', req: () => srv.api('GET', '/sessions?limit=-1'), status: 400, code: 'invalid_request' },
      { name: 'before=garbage', req: () => srv.api('GET', '/sessions?before=not-a-token'), status: 400 },
      // cursors
      { name: 'malformed cursor (query)', req: () => streamRequest(srv, `/messages/${m1.id}/stream?last_event_id=garbage`), status: 400, code: 'invalid_cursor' },
      { name: 'malformed cursor (header)', req: () => streamRequest(srv, `/messages/${m1.id}/stream`, { 'Last-Event-ID': 'garbage' }), status: 400, code: 'invalid_cursor' },
      { name: 'malformed cursor on the session stream', req: () => streamRequest(srv, `/messages/stream?session_id=${s1.id}&last_event_id=garbage`), status: 400, code: 'invalid_cursor' },
      { name: 'malformed Last-Event-ID wins over a valid query cursor', req: () => streamRequest(srv, `/messages/${m1.id}/stream?last_event_id=${encodeURIComponent(c1.cursor)}`, { 'Last-Event-ID': 'garbage' }), status: 400, code: 'invalid_cursor' },
      {
        name: 'cursor with an offset past the committed end',
        skip: pastEndCursor ? false : `cannot build a past-the-end cursor: the offset is not visible in cursor ${JSON.stringify(c1.cursor)}`,
        req: () => streamRequest(srv, `/messages/${m1.id}/stream`, { 'Last-Event-ID': pastEndCursor }),
        status: 400, code: 'invalid_cursor',
      },
      { name: 'cursor of another session on a session stream', req: () => streamRequest(srv, `/messages/stream?session_id=${s3.id}`, { 'Last-Event-ID': c1.cursor }), status: 400, code: 'invalid_cursor' },
      { name: 'well-formed cursor of an unknown message (per-message stream)', req: () => streamRequest(srv, `/messages/${m1.id}/stream`, { 'Last-Event-ID': foreignCursor }), status: 404, code: 'not_found' },
      { name: 'well-formed cursor of an unknown message (session stream)', req: () => streamRequest(srv, `/messages/stream?session_id=${s1.id}&last_event_id=${encodeURIComponent(foreignCursor)}`), status: 404, code: 'not_found' },
      // poll
      { name: 'poll since=garbage', req: () => srv.api('GET', `/messages/${s1.id}/poll?since=garbage`), status: 400, code: 'invalid_since' },
      { name: 'poll since=impossible date', req: () => srv.api('GET', `/messages/${s1.id}/poll?since=2025-13-45T99:00:00Z`), status: 400, code: 'invalid_since' },
      // conflicts
      {
        name: 'send while generating',
        req: () => srv.api('POST', `/sessions/${s1.id}/messages`, { content: 'again' }),
        status: 409, code: 'generation_in_progress',
        check: (r) => assert.equal(r.json.error.active_message_id, m1.id, 'error.active_message_id names the generating message'),
      },
      { name: 'cancel a user message', req: () => srv.api('POST', `/messages/${u1.id}/cancel`), status: 409, code: 'not_generating' },
      // idempotency
      {
        name: 'Idempotency-Key replay answers the first answer again',
        req: () => srv.api('POST', `/sessions/${s3.id}/messages`, idemBody, { 'Idempotency-Key': idemKey }),
        status: 202,
        check: (r) => assert.deepEqual(r.json, idemFirst.json, 'replayed answer differs from the first one'),
      },
      { name: 'same Idempotency-Key, different body (same session)', req: () => srv.api('POST', `/sessions/${s3.id}/messages`, { content: 'something else' }, { 'Idempotency-Key': idemKey }), status: 422, code: 'idempotency_key_reused' },
      { name: 'same Idempotency-Key, different body (idle session)', req: () => srv.api('POST', S2, { content: 'something else' }, { 'Idempotency-Key': idemKey }), status: 422, code: 'idempotency_key_reused' },
      { name: 'Idempotency-Key over 255 characters', req: () => srv.api('POST', S2, { content: 'hi' }, { 'Idempotency-Key': 'k'.repeat(256) }), status: 400 },
    ];

    let failures = 0;
    for (const c of cases) {
      await t.test(c.name, { skip: c.skip || false }, async () => {
        failures += 1; // undone below when the case passes
        const r = await c.req();
        if (c.status >= 400) expectError(r, c.status, c.code, c.name);
        else assert.equal(r.status, c.status, `${c.name}: ${r.text.slice(0, 300)}`);
        if (c.allow) {
          const allow = allowList(r);
          for (const m of c.allow) assert.ok(allow.includes(m), `${c.name}: Allow header "${r.headers.get('allow')}" lacks ${m}`);
        }
        if (c.check) c.check(r);
        assert.deepEqual(await snapshot(srv), base, `${c.name}: the store changed`);
        failures -= 1;
      });
    }
    if (failures > 0) srv.dumpStderr(`${failures} bad-input case(s) failed`);

    // A valid Last-Event-ID wins over a malformed query cursor (a stream opens).
    await t.test('valid Last-Event-ID wins over a malformed query cursor', async () => {
      const r = await streamRequest(srv, `/messages/${m1.id}/stream?last_event_id=garbage`, { 'Last-Event-ID': c1.cursor });
      assert.equal(r.status, 200, r.text.slice(0, 300));
      assert.match(r.headers.get('content-type') || '', /^text\/event-stream/);
    });

    // --- what is just inside the limits is accepted ----------------------
    await t.test('inputs at the limits are accepted', async () => {
      const t200 = await srv.api('POST', '/sessions', { title: 'é'.repeat(200) });
      assert.equal(t200.status, 201, `title of 200 characters: ${t200.text.slice(0, 200)}`);
      assert.equal(t200.json.title, 'é'.repeat(200));
      const charset = await srv.api('POST', '/sessions', '{"title":"charset"}', { 'Content-Type': 'application/json; charset=utf-8' });
      assert.equal(charset.status, 201, `application/json with charset: ${charset.text.slice(0, 200)}`);
      const untitled = await srv.api('POST', '/sessions', {});
      assert.equal(untitled.status, 201, `session without a title: ${untitled.text.slice(0, 200)}`);
      const exact = await srv.api('POST', S2, { content: 'é'.repeat(512) });
      assert.equal(exact.status, 202, `content of exactly --max-message-bytes bytes: ${exact.text.slice(0, 200)}`);
      assert.equal(exact.json.user_message.content, 'é'.repeat(512));
    });
  });
});
