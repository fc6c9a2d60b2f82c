// Scenario zl: logs. With --log-format json every line chatd writes is one
// JSON object; every request has an id (the client's X-Request-Id when it is
// a sane one, else one chatd makes), echoed in the answer, on its access-log
// line (route pattern, status, bytes, duration) and on every line it causes,
// the generation of its answer included; a 5xx says why. Text logs carry the
// same id.

import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { withChatd, createSession, waitFor, waitTerminal, ON_POSTGRES } from './support/chatd.mjs';
import { readRawSse } from './support/sse.mjs';

function jsonLines(srv) {
  return srv.stderrText().split('\n')
    .filter((line) => line.length > 0 && !line.startsWith('-----'))  // the harness's own separators
    .map((line) => {
      let parsed;
      assert.doesNotThrow(() => { parsed = JSON.parse(line); }, `not one JSON object: ${line}`);
      return parsed;
    });
}

function linesOf(srv, requestId) {
  return jsonLines(srv).filter((l) => l.request_id === requestId);
}

function accessLine(srv, requestId) {
  return jsonLines(srv).find((l) => l.request_id === requestId && l.msg === 'request');
}

test('zl: JSON logs carry the request id from the request to its generation', async () => {
  await withChatd({ args: ['--log-format', 'json'], name: 'chatd-zl-json' }, async (srv) => {
    // The client's id is kept and echoed.
    const created = await srv.api('POST', '/sessions', { title: 'logs' }, { 'X-Request-Id': 'client-id.1' });
    assert.equal(created.status, 201);
    assert.equal(created.headers.get('x-request-id'), 'client-id.1');
    // Without one, or with one that could garble a log line, chatd makes one.
    const listed = await srv.api('GET', '/sessions');
    const made = listed.headers.get('x-request-id');
    assert.match(made, /^req_[0-9A-Z]{26}$/);
    const garbled = await srv.api('GET', '/sessions', undefined, { 'X-Request-Id': 'a b"c' });
    assert.match(garbled.headers.get('x-request-id'), /^req_/);
    const missing = await srv.api('GET', '/sessions/ses_01M8TXVB5N0001C05X7BNQ44PK', undefined, { 'X-Request-Id': 'nope-1' });
    assert.equal(missing.status, 404);
    assert.equal(missing.headers.get('x-request-id'), 'nope-1');

    // A send: its access line, and its answer's lines, carry its id.
    const session = created.json;
    const sent = await srv.api('POST', `/sessions/${session.id}/messages`, { content: 'hi' }, { 'X-Request-Id': 'send-1' });
    assert.equal(sent.status, 202);
    const answerId = sent.json.assistant_message.id;
    await waitTerminal(srv, answerId);
    await waitFor(() => linesOf(srv, 'send-1').some((l) => /ends completed/.test(l.msg)),
      { message: 'the answer\'s end to be logged with the send\'s request id' });
    const send = linesOf(srv, 'send-1');
    assert.ok(send.some((l) => l.msg.includes(`message ${answerId} generating`)), JSON.stringify(send));
    assert.ok(send.some((l) => l.msg.includes(`message ${answerId} ends completed`)));

    // A stream: one access line when it ends, with what it wrote.
    const stream = await fetch(srv.url(`/api/v1/chat/messages/${answerId}/stream`), { headers: { 'X-Request-Id': 'stream-1' } });
    assert.equal(stream.headers.get('x-request-id'), 'stream-1');
    const body = await stream.text();
    await waitFor(() => accessLine(srv, 'stream-1'), { message: 'the stream\'s access line' });
    const streamLine = accessLine(srv, 'stream-1');
    assert.equal(streamLine.status, 200);
    assert.equal(streamLine.bytes, Buffer.byteLength(body));

    // A session stream outlives its request: its access line comes when the
    // client leaves, with all it wrote (here the rest of the answer, then
    // nothing while it waited for the next).
    const followed = await readRawSse(srv.url(`/api/v1/chat/messages/stream?session_id=${session.id}`), {
      headers: { 'X-Request-Id': 'session-stream-1', 'Last-Event-ID': `${answerId}.0` },
      until: (text) => /event: status/.test(text),
    });
    assert.equal(followed.status, 200);
    assert.equal(followed.ended, false, 'a session stream stays open');
    assert.equal(accessLine(srv, 'session-stream-1'), undefined, 'no access line while it is open');
    await waitFor(() => accessLine(srv, 'session-stream-1'), { message: 'the session stream\'s access line once its client left' });
    const sessionLine = accessLine(srv, 'session-stream-1');
    assert.equal(sessionLine.route, '/api/v1/chat/messages/stream');
    assert.equal(sessionLine.status, 200);
    assert.equal(sessionLine.bytes, Buffer.byteLength(followed.text));

    // The AI SDK's stream echoes the id in its head too.
    const ui = await fetch(srv.url('/api/v1/ai-sdk/chat'), {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'X-Request-Id': 'ui-1' },
      body: JSON.stringify({ id: 'chat-logs', messages: [{ id: 'u', role: 'user', parts: [{ type: 'text', text: 'hello' }] }] }),
    });
    assert.equal(ui.headers.get('x-request-id'), 'ui-1');
    await ui.text();

    await waitFor(() => ['client-id.1', made, 'nope-1', 'send-1', 'ui-1'].every((id) => accessLine(srv, id)),
      { message: 'an access line for every request' });
    const expectations = [
      ['client-id.1', 'POST', '/api/v1/chat/sessions', 201],
      [made, 'GET', '/api/v1/chat/sessions', 200],
      ['nope-1', 'GET', '/api/v1/chat/sessions/{}', 404],
      ['send-1', 'POST', '/api/v1/chat/sessions/{}/messages', 202],
      ['stream-1', 'GET', '/api/v1/chat/messages/{}/stream', 200],
      ['ui-1', 'POST', '/api/v1/ai-sdk/chat', 200],
    ];
    for (const [id, method, route, status] of expectations) {
      const line = accessLine(srv, id);
      assert.equal(line.method, method, id);
      assert.equal(line.route, route, id);
      assert.equal(line.status, status, id);
      assert.equal(typeof line.bytes, 'number');
      assert.ok(line.bytes > 0, id);
      assert.equal(typeof line.duration_ms, 'number');
      assert.ok(line.duration_ms >= 0);
      assert.equal(line.level, 'info');
      assert.match(line.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    }
    // Routes are patterns: no id of a session or message reaches an access line.
    for (const line of jsonLines(srv).filter((l) => l.msg === 'request'))
      assert.doesNotMatch(line.route, /ses_|msg_/, JSON.stringify(line));
    // Every line, not only these, is one JSON object with time, level and msg.
    for (const line of jsonLines(srv)) {
      assert.equal(typeof line.time, 'string');
      assert.equal(typeof line.level, 'string');
      assert.equal(typeof line.msg, 'string');
    }
  });
});

test('zl: a failing store answers 503 and the log says why, with the request id', { skip: ON_POSTGRES && 'SQLite file surgery' }, async () => {
  await withChatd({ args: ['--log-format', 'json'], name: 'chatd-zl-fail' }, async (srv) => {
    const session = await createSession(srv, {});
    // The table an idempotent send needs goes away under chatd's feet.
    execFileSync('sqlite3', [path.join(srv.dataDir, 'chatd.sqlite3'), 'DROP TABLE ai_chat_idempotency_keys']);
    const r = await srv.api('POST', `/sessions/${session.id}/messages`, { content: 'hi' },
      { 'X-Request-Id': 'fail-1', 'Idempotency-Key': 'k-1' });
    assert.equal(r.status, 503);
    await waitFor(() => accessLine(srv, 'fail-1'), { message: 'the failed request\'s access line' });
    const cause = linesOf(srv, 'fail-1').find((l) => l.msg !== 'request');
    assert.ok(cause, 'a line besides the access line says what failed');
    assert.equal(cause.level, 'warning');
    assert.match(cause.msg, /503 .*store/);
    assert.ok(jsonLines(srv).some((l) => l.level === 'error' && /no such table/.test(l.msg)),
      'the store\'s own error is logged');
  });
});

test('zl: text logs carry the request id too', async () => {
  await withChatd({ name: 'chatd-zl-text' }, async (srv) => {
    await srv.api('GET', '/sessions', undefined, { 'X-Request-Id': 'text-1' });
    await waitFor(() => /\[text-1\] GET \/api\/v1\/chat\/sessions 200 \d+ B [\d.]+ ms/.test(srv.stderrText()),
      { message: 'a text access line with the request id' });
  });
});
