// Scenario n: faults inside the upstream stream and the transport. First-token
// timeout (no answer, or headers but no text) retried then upstream_timeout;
// idle timeout after text; reset, cut (no terminal event) and malformed JSON
// after text; a very slow drip within the idle timeout; cancel mid-stream
// closes the upstream connection within 1 s; HTTPS with --upstream-ca-file,
// and without it certificate verification refuses the self-signed upstream;
// a TLS handshake that hangs is cut by the connect timeout.

import test from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import {
  withProvider, newSession, turn, assertCompleted, assertError, assertRequestCount, assertScriptUsed,
  openaiEvents, anthropicEvents, secretKey, EXPECTED, FAST_RETRY, FAKE_KEY, NO_PROXY_ENV,
} from './support/provider.mjs';
import { startChatd, send, getContent, waitFor, delay, utf8, isPrefix } from './support/chatd.mjs';

const OPENAI_BASIC = EXPECTED['openai-chat-basic.sse'];
const OPENAI_LENGTH = EXPECTED['openai-chat-length.sse'];
const ANTHROPIC_BASIC = EXPECTED['anthropic-basic.sse'];

const openai = (args, name, extra = {}) => ({ provider: 'openai', basePath: '/v1', args: ['--model', 'gpt-x', ...args], env: { OPENAI_API_KEY: FAKE_KEY }, name, ...extra });
const anthropic = (args, name, extra = {}) => ({ provider: 'anthropic', args: ['--model', 'claude-x', ...args], env: { ANTHROPIC_API_KEY: FAKE_KEY }, name, ...extra });

/** Waits until chatd closed the connection of every request so far. */
function allClosed(up, timeoutMs = 5000) {
  return waitFor(() => up.requests.length > 0 && up.requests.every((r) => r.closedAt !== null),
    { timeoutMs, message: 'chatd to close every upstream connection' });
}

test('n1: no first token within --upstream-first-token-timeout-ms: retried, then upstream_timeout', async () => {
  await withProvider(openai(['--upstream-first-token-timeout-ms', '600', '--upstream-retries', '1', ...FAST_RETRY], 'chatd-n1'), async (srv, up) => {
    up.script([
      { kind: 'hang' }, // no response at all
      { events: [], fault: { after: 0, kind: 'stall' } }, // 200 and headers, then nothing
    ]);
    const s = await newSession(srv);
    const t = await turn(srv, s.id, 'Hello');
    assertError(t.message, 'upstream_timeout', '');
    await assertRequestCount(up, 2);
    await allClosed(up);
    for (const r of up.requests) {
      const held = r.closedAt - r.receivedAt;
      // chatd's clock starts when it sends; ours when the body is in (a loaded machine delays that).
      assert.ok(held >= 450, `request #${r.index} given up after ${held} ms; the first-token timeout is 600 ms`);
      assert.ok(held < 5000, `request #${r.index} held ${held} ms; the first-token timeout is 600 ms`);
    }
    assertScriptUsed(up);
  });
});

test('n2: a stream that stalls before any text is retried and the retry completes (Anthropic)', async () => {
  await withProvider(anthropic(['--upstream-first-token-timeout-ms', '600', ...FAST_RETRY], 'chatd-n2'), async (srv, up) => {
    up.script([
      { events: anthropicEvents([], { end: false }), fault: { after: 3, kind: 'stall' } }, // message_start, block start, ping
      { fixture: 'anthropic-basic.sse' },
    ]);
    const s = await newSession(srv);
    const t = await turn(srv, s.id, 'Hello');
    assertCompleted(t.message, ANTHROPIC_BASIC.text, 'stop');
    await assertRequestCount(up, 2);
    await allClosed(up);
    assert.deepEqual(up.requests[1].body, up.requests[0].body);
    assertScriptUsed(up);
  });
});

test('n3: a stall after text beyond --upstream-idle-timeout-ms: upstream_timeout, partial kept', async () => {
  await withProvider(openai(['--upstream-idle-timeout-ms', '500', '--upstream-first-token-timeout-ms', '20000', ...FAST_RETRY], 'chatd-n3'), async (srv, up) => {
    up.script([{ events: openaiEvents(['Hello', ' wor'], { finish: null, usage: null, done: false }), fault: { after: 3, kind: 'stall' } }]);
    const s = await newSession(srv);
    const t = await turn(srv, s.id, 'Hello');
    assertError(t.message, 'upstream_timeout', 'Hello wor');
    await assertRequestCount(up, 1);
    await allClosed(up);
    const r = up.requests[0];
    const idle = r.closedAt - r.lastWriteAt;
    assert.ok(idle >= 400 && idle < 5000, `connection closed ${idle} ms after the last byte; idle timeout 500 ms`);
    assertScriptUsed(up);
  });
  await withProvider(anthropic(['--upstream-idle-timeout-ms', '500', '--continue-attempts', '0', ...FAST_RETRY], 'chatd-n3b'), async (srv, up) => {
    up.script([{ events: anthropicEvents(['Hello', ' wor'], { end: false }), fault: { after: 5, kind: 'stall' } }]);
    const s = await newSession(srv);
    const t = await turn(srv, s.id, 'Hello');
    assertError(t.message, 'upstream_timeout', 'Hello wor');
    await assertRequestCount(up, 1);
    assertScriptUsed(up);
  });
});

test('n4: a very slow drip (one byte every 20 ms) within the idle timeout completes with the exact text', async () => {
  await withProvider(openai(['--upstream-idle-timeout-ms', '1000', '--upstream-first-token-timeout-ms', '30000'], 'chatd-n4'), async (srv, up) => {
    up.script([{ fixture: 'openai-chat-length.sse', dripMs: 20 }]);
    const s = await newSession(srv);
    const t = await turn(srv, s.id, 'Story?', 60000);
    assertCompleted(t.message, OPENAI_LENGTH.text, 'length');
    assertScriptUsed(up);
  });
  // The same with a multi-byte text (UTF-8 characters arrive one byte at a time), Anthropic.
  await withProvider(anthropic(['--upstream-idle-timeout-ms', '1000'], 'chatd-n4b'), async (srv, up) => {
    up.script([{ events: anthropicEvents(['— «é»', ' ☕!']), fault: { after: 3, kind: 'drip', ms: 10 } }]);
    const s = await newSession(srv);
    const t = await turn(srv, s.id, 'Coffee?', 60000);
    assertCompleted(t.message, '— «é» ☕!', 'stop');
    assertScriptUsed(up);
  });
});

test('n5: a connection reset after text (no continuation): upstream_unavailable, partial kept', async () => {
  await withProvider(anthropic(['--continue-attempts', '0', ...FAST_RETRY], 'chatd-n5'), async (srv, up) => {
    up.script([{ events: anthropicEvents(['Partial ', 'answer'], { end: false }), fault: { after: 5, kind: 'reset' } }]);
    const s = await newSession(srv);
    const t = await turn(srv, s.id, 'Hello');
    assertError(t.message, 'upstream_unavailable', 'Partial answer');
    await assertRequestCount(up, 1);
    assertScriptUsed(up);
  });
});

test('n6: a stream that ends without its terminal event is upstream_protocol, never completed; partial kept', async () => {
  await withProvider(openai([...FAST_RETRY], 'chatd-n6a'), async (srv, up) => {
    // No finish_reason chunk, no usage, no [DONE]: the response just ends.
    up.script([{ events: openaiEvents(['Partial ', 'answer'], { finish: null, usage: null, done: false }), fault: { after: 3, kind: 'cut' } }]);
    const s = await newSession(srv);
    const t = await turn(srv, s.id, 'Hello');
    assertError(t.message, 'upstream_protocol', 'Partial answer');
    await assertRequestCount(up, 1);
    assertScriptUsed(up);
  });
  await withProvider(anthropic(['--continue-attempts', '0', ...FAST_RETRY], 'chatd-n6b'), async (srv, up) => {
    // No content_block_stop, message_delta, message_stop.
    up.script([{ events: anthropicEvents(['Partial ', 'answer']), fault: { after: 5, kind: 'cut' } }]);
    const s = await newSession(srv);
    const t = await turn(srv, s.id, 'Hello');
    assertError(t.message, 'upstream_protocol', 'Partial answer');
    await assertRequestCount(up, 1);
    assertScriptUsed(up);
  });
});

test('n7: a data line that is not JSON is upstream_protocol, also when a good ending follows', async () => {
  await withProvider(openai([...FAST_RETRY], 'chatd-n7a'), async (srv, up) => {
    up.script([{ events: openaiEvents(['Hello', ' there']), fault: { after: 3, kind: 'malformed' } }]);
    const s = await newSession(srv);
    const t = await turn(srv, s.id, 'Hello');
    assertError(t.message, 'upstream_protocol', 'Hello there');
    await assertRequestCount(up, 1);
    assertScriptUsed(up);
  });
  await withProvider(anthropic(['--continue-attempts', '0', ...FAST_RETRY], 'chatd-n7b'), async (srv, up) => {
    up.script([{
      events: anthropicEvents(['Hello', ' there']),
      fault: { after: 5, kind: 'malformed', line: 'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"\n\n' },
    }]);
    const s = await newSession(srv);
    const t = await turn(srv, s.id, 'Hello');
    assertError(t.message, 'upstream_protocol', 'Hello there');
    await assertRequestCount(up, 1);
    assertScriptUsed(up);
  });
});

for (const provider of ['openai', 'anthropic']) {
  test(`n8 (${provider}): cancel mid-stream keeps the partial text and closes the upstream connection within 1 s`, async () => {
    const pieces = Array.from({ length: 200 }, (_, i) => `w${i} `);
    const events = provider === 'openai' ? openaiEvents(pieces) : anthropicEvents(pieces);
    const setup = provider === 'openai' ? openai([], `chatd-n8-${provider}`) : anthropic([], `chatd-n8-${provider}`);
    await withProvider(setup, async (srv, up) => {
      up.script([{ events, delayMs: 100 }]); // 20 s of text
      const s = await newSession(srv);
      const sent = await send(srv, s.id, 'Count slowly.');
      const id = sent.assistant_message.id;
      await waitFor(async () => (await getContent(srv, id)).content.startsWith('w0 w1 w2 '),
        { timeoutMs: 10000, message: 'the first words to be stored' });
      const cancel = await srv.api('POST', `/messages/${id}/cancel`);
      const cancelledAt = Date.now();
      assert.equal(cancel.status, 200, cancel.text);
      assert.equal(cancel.json.status, 'cancelled');
      const r = up.requests[0];
      assert.equal(r.responseEndedAt, null, 'the upstream had finished before the cancel');
      await waitFor(() => r.closedAt !== null, { timeoutMs: 5000, message: 'chatd to close the upstream connection after the cancel' });
      assert.ok(r.closedAt - cancelledAt <= 1000,
        `upstream connection closed ${r.closedAt - cancelledAt} ms after the cancel answered`);

      const c = await getContent(srv, id);
      assert.equal(c.status, 'cancelled');
      assert.match(c.content, /^(w\d+ )+$/, 'the kept text is whole pieces of what the upstream sent');
      assert.ok(isPrefix(utf8(c.content), utf8(pieces.join(''))), 'the kept text is a prefix of the stream');
      assert.ok(c.content.length >= 'w0 w1 w2 '.length);
      // Nothing is appended afterwards, and nothing is retried (bounded watch).
      await delay(500);
      assert.equal((await getContent(srv, id)).content, c.content);
      await assertRequestCount(up, 1, 0);
      assertScriptUsed(up);

      // The cancelled answer's partial text is history for the next turn.
      up.script([{ fixture: provider === 'openai' ? 'openai-chat-basic.sse' : 'anthropic-basic.sse' }]);
      const next = await turn(srv, s.id, 'Go on.');
      assert.equal(next.message.status, 'completed');
      const msgs = up.requests[1].body.messages;
      assert.deepEqual(msgs, [
        { role: 'user', content: 'Count slowly.' },
        { role: 'assistant', content: c.content }, // as stored: only a final (prefill) assistant message is trimmed
        { role: 'user', content: 'Go on.' },
      ]);
      assertScriptUsed(up);
    });
  });
}

test('n12: cancel before the first token (upstream silent, or waiting out Retry-After) aborts at once and sends nothing more', async () => {
  await withProvider(openai([...FAST_RETRY], 'chatd-n12'), async (srv, up) => {
    const s = await newSession(srv);
    // The upstream has not answered yet.
    up.script([{ kind: 'hang' }]);
    const a = await send(srv, s.id, 'one');
    await up.waitForRequests(1);
    const c1 = await srv.api('POST', `/messages/${a.assistant_message.id}/cancel`);
    const t1 = Date.now();
    assert.equal(c1.status, 200, c1.text);
    assert.equal(c1.json.status, 'cancelled');
    assert.equal(c1.json.content ?? '', '');
    const r0 = up.requests[0];
    await waitFor(() => r0.closedAt !== null, { timeoutMs: 5000, message: 'chatd to close the silent upstream request after the cancel' });
    assert.ok(r0.closedAt - t1 <= 1000, `upstream connection closed ${r0.closedAt - t1} ms after the cancel answered`);

    // A 429 asked for 2 s; the cancel comes during that wait: no second attempt.
    up.reset();
    up.script([{ kind: 'error', status: 429, headers: { 'Retry-After': '2' } }, { fixture: 'openai-chat-basic.sse' }]);
    const b = await send(srv, s.id, 'two');
    await up.waitForRequests(1);
    await waitFor(() => up.requests[0].responseEndedAt !== null, { message: 'the 429 to be sent' });
    const c2 = await srv.api('POST', `/messages/${b.assistant_message.id}/cancel`);
    assert.equal(c2.status, 200, c2.text);
    assert.equal(c2.json.status, 'cancelled');
    await delay(2500);
    assert.equal(up.requests.length, 1, 'a retry was sent after the cancel');
    const st = await getContent(srv, b.assistant_message.id);
    assert.equal(st.status, 'cancelled');
    assert.equal(st.content, '');
    up.clearScript();
  });
});

test('n9: HTTPS with --upstream-ca-file: basic streams complete (host name localhost, and IP 127.0.0.1)', async () => {
  const key = secretKey();
  await withProvider(openai([], 'chatd-n9a', { tls: true, env: { OPENAI_API_KEY: key } }), async (srv, up) => {
    assert.ok(up.url.startsWith('https://localhost:'));
    up.script([{ fixture: 'openai-chat-basic.sse' }]);
    const s = await newSession(srv);
    const t = await turn(srv, s.id, 'Hello');
    assertCompleted(t.message, OPENAI_BASIC.text, 'stop');
    assert.deepEqual(t.message.usage, OPENAI_BASIC.usage);
    assert.equal(up.requests[0].path, '/v1/chat/completions');
    assert.equal(up.requests[0].headers.authorization, `Bearer ${key}`);
    assertScriptUsed(up);
  });
  await withProvider(anthropic([], 'chatd-n9b', { tls: true, useIpUrl: true }), async (srv, up) => {
    up.script([{ fixture: 'anthropic-basic.sse', chunkBytes: 5 }]);
    const s = await newSession(srv);
    const t = await turn(srv, s.id, 'Hello');
    assertCompleted(t.message, ANTHROPIC_BASIC.text, 'stop');
    assert.equal(up.requests[0].path, '/v1/messages');
    assertScriptUsed(up);
  });
});

test('n10: HTTPS without --upstream-ca-file: the self-signed certificate is refused, no request is sent, the message ends error', async () => {
  const key = secretKey();
  await withProvider(openai(['--upstream-retries', '0'], 'chatd-n10', { tls: true, trustCa: false, env: { OPENAI_API_KEY: key } }), async (srv, up) => {
    up.script([{ fixture: 'openai-chat-basic.sse' }]);
    const s = await newSession(srv);
    const t = await turn(srv, s.id, 'Hello');
    assert.equal(t.message.status, 'error', JSON.stringify(t.message));
    assert.equal(t.message.content, '');
    assert.ok(t.message.error && typeof t.message.error.code === 'string', JSON.stringify(t.message.error));
    await delay(300);
    assert.equal(up.requests.length, 0, 'an HTTP request (with the key) reached a server whose certificate is not trusted');
    assert.ok(up.tlsErrors.length >= 1, 'chatd never attempted the TLS handshake');
    assert.ok(!srv.stderrText().includes(key));
    up.clearScript();
  });
});

test('n11: a TLS handshake that never completes is cut by --upstream-connect-timeout-ms and retried', async () => {
  // A TCP server that accepts and never answers the ClientHello.
  const sockets = [];
  const server = net.createServer((sock) => {
    const rec = { openedAt: Date.now(), closedAt: null, sock };
    sockets.push(rec);
    sock.on('error', () => {});
    sock.on('close', () => { rec.closedAt = Date.now(); });
    sock.resume(); // read (and drop) the ClientHello, so the peer's FIN is seen
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `https://127.0.0.1:${server.address().port}`;
  const srv = await startChatd({
    args: ['--provider', 'openai', '--base-url', url, '--model', 'gpt-x', '--upstream-connect-timeout-ms', '500',
      '--upstream-retries', '1', ...FAST_RETRY],
    env: { ...NO_PROXY_ENV, OPENAI_API_KEY: FAKE_KEY }, name: 'chatd-n11',
  });
  let failed = false;
  try {
    const s = await newSession(srv);
    const t = await turn(srv, s.id, 'Hello');
    assertError(t.message, 'upstream_timeout', '');
    const endedAt = Date.now();
    await waitFor(() => sockets.length >= 2 && sockets.every((r) => r.closedAt !== null), {
      timeoutMs: 5000,
      message: `chatd to close both connections (${JSON.stringify(sockets.map((r) => ({ opened: r.openedAt - endedAt, closed: r.closedAt && r.closedAt - endedAt })))}, ms relative to the message's end)`,
    }).catch((err) => {
      err.message += `; now ${JSON.stringify(sockets.map((r) => ({ opened: r.openedAt - endedAt, closed: r.closedAt && r.closedAt - endedAt })))}`;
      throw err;
    });
    await delay(300);
    assert.equal(sockets.length, 2, `connections: expected 2 (1 retry), got ${sockets.length}`);
    for (const r of sockets) {
      const held = r.closedAt - r.openedAt;
      assert.ok(held >= 400 && held < 5000, `a connection was given up after ${held} ms; connect timeout 500 ms`);
    }
  } catch (err) {
    failed = true;
    srv.dumpStderr('test failed (data dir kept)');
    throw err;
  } finally {
    await srv.stop();
    for (const r of sockets) r.sock.destroy();
    await new Promise((resolve) => server.close(() => resolve()));
    if (!failed) await srv.cleanup();
  }
});
