// Scenario l: the Anthropic messages provider against a fake upstream. What
// chatd sends (path /v1/messages, x-api-key, anthropic-version, the body with
// `system` apart), what it stores (text without thinking, end_turn -> stop,
// max_tokens -> length, usage), and continuation after a drop: the request
// ends with the partial answer (trailing whitespace trimmed), the content is
// partial + continuation, and SSE clients across the drop (connected, or
// resuming with Last-Event-ID) receive every byte exactly once.

import test from 'node:test';
import assert from 'node:assert/strict';
import {
  withProvider, newSession, turn, getMessage, assertCompleted, assertError, assertRequestCount,
  assertScriptUsed, assertNoSecret, clientVisibleTexts, secretKey, anthropicEvents, EXPECTED, FAST_RETRY, FAKE_KEY,
} from './support/provider.mjs';
import { send, getContent, waitFor, waitTerminal, utf8 } from './support/chatd.mjs';
import { assertCarried, contiguousBytes } from './support/sse.mjs';

const BASIC = EXPECTED['anthropic-basic.sse'];
const THINKING = EXPECTED['anthropic-thinking.sse'];

test('l1: a basic stream completes; path, headers and body; thinking is dropped; the second turn carries the history', async () => {
  const key = secretKey();
  await withProvider({
    provider: 'anthropic', args: ['--model', 'claude-test-default'],
    env: { ANTHROPIC_API_KEY: key }, name: 'chatd-l1',
  }, async (srv, up) => {
    up.script([{ fixture: 'anthropic-basic.sse', delayMs: 20 }, { fixture: 'anthropic-thinking.sse' }]);
    const s = await newSession(srv, { system_prompt: 'Be brief.' });
    assert.equal(s.model, 'claude-test-default');

    const t1 = await turn(srv, s.id, 'Hi there');
    assertCompleted(t1.message, BASIC.text, 'stop');
    assert.deepEqual(t1.message.usage, BASIC.usage);
    assert.equal(t1.message.model, 'claude-test-default');

    const r1 = up.requests[0];
    assert.equal(r1.method, 'POST');
    assert.equal(r1.path, '/v1/messages');
    assert.equal(r1.headers['x-api-key'], key);
    assert.equal(r1.headers['anthropic-version'], '2023-06-01');
    assert.match(r1.headers['content-type'] || '', /^application\/json/);
    assert.deepEqual(r1.body, {
      model: 'claude-test-default',
      max_tokens: 1024,
      stream: true,
      system: 'Be brief.',
      messages: [{ role: 'user', content: 'Hi there' }],
    });

    const t2 = await turn(srv, s.id, 'What is six times seven?');
    assertCompleted(t2.message, THINKING.text, 'length');
    assert.deepEqual(t2.message.usage, THINKING.usage);
    assert.deepEqual(up.requests[1].body, {
      model: 'claude-test-default',
      max_tokens: 1024,
      stream: true,
      system: 'Be brief.',
      messages: [
        { role: 'user', content: 'Hi there' },
        { role: 'assistant', content: BASIC.text },
        { role: 'user', content: 'What is six times seven?' },
      ],
    });
    await assertRequestCount(up, 2, 0);
    assertScriptUsed(up);
    assertNoSecret(key, {
      ...(await clientVisibleTexts(srv, s.id, t1.message.id)),
      'chatd stderr': srv.stderrText(),
      'chatd stdout': srv.stdoutText(),
    });
  });
});

test('l2: no system prompt omits `system`; session model, --temperature, --max-output-tokens, --api-key-env', async () => {
  const key = secretKey();
  await withProvider({
    provider: 'anthropic',
    args: ['--model', 'claude-default', '--allowed-models', 'claude-default,claude-session-model', '--temperature', '0.5', '--max-output-tokens', '300', '--api-key-env', 'CHATD_TEST_CLAUDE_KEY'],
    env: { CHATD_TEST_CLAUDE_KEY: key, ANTHROPIC_API_KEY: 'sk-the-wrong-variable' }, name: 'chatd-l2',
  }, async (srv, up) => {
    up.script([{ fixture: 'anthropic-basic.sse', crlf: true, chunkBytes: 1 }]);
    const s = await newSession(srv, { model: 'claude-session-model' });
    const t = await turn(srv, s.id, 'Hello');
    assertCompleted(t.message, BASIC.text, 'stop');
    assert.deepEqual(t.message.usage, BASIC.usage, 'usage (CRLF, 1-byte writes)');
    assert.equal(t.message.model, 'claude-session-model');
    const r = up.requests[0];
    assert.equal(r.headers['x-api-key'], key);
    assert.deepEqual(r.body, {
      model: 'claude-session-model',
      max_tokens: 300,
      stream: true,
      messages: [{ role: 'user', content: 'Hello' }],
      temperature: 0.5,
    });
    assertScriptUsed(up);
  });
});

test('l3: an overloaded error event mid-stream with --continue-attempts 0: error upstream_unavailable, partial kept, one request', async () => {
  await withProvider({
    provider: 'anthropic', args: ['--model', 'claude-x', '--continue-attempts', '0', ...FAST_RETRY],
    env: { ANTHROPIC_API_KEY: FAKE_KEY }, name: 'chatd-l3',
  }, async (srv, up) => {
    up.script([{ fixture: 'anthropic-overloaded-midstream.sse' }]);
    const s = await newSession(srv);
    const t = await turn(srv, s.id, 'Hello');
    assertError(t.message, 'upstream_unavailable', 'Partial answer');
    await assertRequestCount(up, 1);
    assertScriptUsed(up);
  });
});

test('l4: an overloaded error event mid-stream is continued (default --continue-attempts)', async () => {
  await withProvider({
    provider: 'anthropic', args: ['--model', 'claude-x', ...FAST_RETRY],
    env: { ANTHROPIC_API_KEY: FAKE_KEY }, name: 'chatd-l4',
  }, async (srv, up) => {
    up.script([
      { fixture: 'anthropic-overloaded-midstream.sse' },
      { events: anthropicEvents([' and', ' the rest.'], { inputTokens: 20, startOutputTokens: 1, outputTokens: 4 }) },
    ]);
    const s = await newSession(srv, { system_prompt: 'Be brief.' });
    const t = await turn(srv, s.id, 'Hello');
    assertCompleted(t.message, 'Partial answer and the rest.', 'stop');
    await assertRequestCount(up, 2);
    const [r1, r2] = up.requests;
    assert.deepEqual(r1.body.messages, [{ role: 'user', content: 'Hello' }]);
    assert.deepEqual(r2.body.messages, [
      { role: 'user', content: 'Hello' },
      { role: 'assistant', content: 'Partial answer' },
    ]);
    assert.equal(r2.body.system, 'Be brief.');
    assert.equal(r2.body.model, 'claude-x');
    assert.equal(r2.body.stream, true);
    // Attempt 1 reported input 12 / output 1 (message_start, then the error), attempt 2 input 20 / output 4.
    assert.deepEqual(t.message.usage, { input_tokens: 32, output_tokens: 5 }, 'usage summed over attempts');
    assertScriptUsed(up);
  });
});

test('l5: a transient error event before any text is retried like a 5xx; the retry is the same request', async () => {
  await withProvider({
    provider: 'anthropic', args: ['--model', 'claude-x', ...FAST_RETRY],
    env: { ANTHROPIC_API_KEY: FAKE_KEY }, name: 'chatd-l5',
  }, async (srv, up) => {
    up.script([
      { events: [
        ...anthropicEvents([], { end: false }),
        { event: 'error', data: { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } } },
      ] },
      { fixture: 'anthropic-basic.sse' },
    ]);
    const s = await newSession(srv);
    const t = await turn(srv, s.id, 'Hello');
    assertCompleted(t.message, BASIC.text, 'stop');
    await assertRequestCount(up, 2);
    assert.deepEqual(up.requests[1].body, up.requests[0].body, 'a retry before the first token resends the same request');
    assertScriptUsed(up);
  });
});

test('l6: a drop after text is continued; SSE clients across the drop get every byte exactly once', async () => {
  const part1 = ['The ', 'quick ', 'brown ', 'fox '];
  const part2 = ['jumps ', 'over ', 'the lazy dog.'];
  const partial = part1.join('');
  const final = partial + part2.join('');
  await withProvider({
    provider: 'anthropic', args: ['--model', 'claude-x', ...FAST_RETRY],
    env: { ANTHROPIC_API_KEY: FAKE_KEY }, name: 'chatd-l6',
  }, async (srv, up) => {
    // Attempt 1: events 0-2 are message_start, content_block_start, ping; 3..6
    // the text. It waits at gate g1 before 'brown ', then resets after 'fox '.
    // Attempt 2 waits at gate g2 before 'over '.
    up.script([
      { events: anthropicEvents(part1, { end: false, inputTokens: 10, startOutputTokens: 1 }), gates: { 5: 'g1' }, fault: { after: 7, kind: 'reset' } },
      { events: anthropicEvents(part2, { inputTokens: 15, startOutputTokens: 1, outputTokens: 8 }), gates: { 4: 'g2' } },
    ]);
    const s = await newSession(srv, { system_prompt: 'Finish sentences.' });
    const sent = await send(srv, s.id, 'Say the pangram.');
    const id = sent.assistant_message.id;

    const across = srv.stream(`/messages/${id}/stream`);
    const early = srv.stream(`/messages/${id}/stream`);
    await waitFor(() => across.text() === 'The quick ' && early.text() === 'The quick ',
      { timeoutMs: 10000, message: 'both clients to receive "The quick "' });
    early.close();
    const earlyBytes = contiguousBytes(early.deltas(), 0);
    const lastId = early.events[early.events.length - 1].id;
    assert.ok(lastId, 'the early client holds an event id');

    up.open('g1'); // attempt 1 sends 'brown fox ' and resets; attempt 2 sends 'jumps ' and waits
    await up.waitForRequests(2);
    await waitFor(async () => (await getContent(srv, id)).content === `${partial}jumps `,
      { timeoutMs: 10000, message: 'the continuation\'s first text to be stored' });
    const c = await getContent(srv, id);
    assert.equal(c.status, 'generating', 'the message stays generating across the drop');

    const resumed = srv.stream(`/messages/${id}/stream`, { lastEventId: lastId });
    await waitFor(() => resumed.text() === 'brown fox jumps ',
      { timeoutMs: 10000, message: `the resumed client to receive "brown fox jumps " (got ${JSON.stringify(resumed.text())})` });
    up.open('g2');

    await waitTerminal(srv, id);
    const m = await getMessage(srv, s.id, id);
    assertCompleted(m, final, 'stop');
    // Attempt 1: input 10, output 1 (message_start; it never reached message_delta); attempt 2: 15 / 8.
    assert.deepEqual(m.usage, { input_tokens: 25, output_tokens: 9 }, 'usage summed over attempts');

    await across.waitForTerminal();
    await resumed.waitForTerminal();
    assertCarried(across, utf8(final), 'the client connected across the drop');
    assert.equal(across.connections(), 1, 'the connected client never had to reconnect');
    assert.equal(across.terminal.data.status, 'completed');
    const rest = contiguousBytes(resumed.deltas(), earlyBytes.length);
    assert.equal(Buffer.concat([earlyBytes, rest]).toString('utf8'), final, 'early + resumed == final content');
    assert.equal(resumed.terminal.data.status, 'completed');

    await assertRequestCount(up, 2);
    const [r1, r2] = up.requests;
    assert.deepEqual(r1.body.messages, [{ role: 'user', content: 'Say the pangram.' }]);
    assert.deepEqual(r2.body, {
      ...r1.body,
      messages: [
        { role: 'user', content: 'Say the pangram.' },
        { role: 'assistant', content: 'The quick brown fox' }, // trailing whitespace trimmed
      ],
    });
    assert.equal(r2.headers['x-api-key'], FAKE_KEY);
    assertScriptUsed(up);
  });
});

test('l7: --continue-attempts bounds the continuations; each continuation carries all text so far', async () => {
  await withProvider({
    provider: 'anthropic', args: ['--model', 'claude-x', '--continue-attempts', '2', ...FAST_RETRY],
    env: { ANTHROPIC_API_KEY: FAKE_KEY }, name: 'chatd-l7',
  }, async (srv, up) => {
    const dropAfter = (text) => ({ events: anthropicEvents([text], { end: false }), fault: { after: 4, kind: 'reset' } });
    up.script([dropAfter('One '), dropAfter('two\n'), dropAfter('three ')]);
    const s = await newSession(srv);
    const t = await turn(srv, s.id, 'Count.');
    assertError(t.message, 'upstream_unavailable', 'One two\nthree ');
    await assertRequestCount(up, 3);
    assert.deepEqual(up.requests.map((r) => r.body.messages), [
      [{ role: 'user', content: 'Count.' }],
      [{ role: 'user', content: 'Count.' }, { role: 'assistant', content: 'One' }],
      [{ role: 'user', content: 'Count.' }, { role: 'assistant', content: 'One two' }],
    ]);
    assertScriptUsed(up);
  });
});

test('l8: a stall after text beyond the idle timeout is continued; the stalled connection is closed', async () => {
  await withProvider({
    provider: 'anthropic', args: ['--model', 'claude-x', '--upstream-idle-timeout-ms', '500', ...FAST_RETRY],
    env: { ANTHROPIC_API_KEY: FAKE_KEY }, name: 'chatd-l8',
  }, async (srv, up) => {
    up.script([
      { events: anthropicEvents(['Hello, '], { end: false }), fault: { after: 4, kind: 'stall' } },
      { events: anthropicEvents(['world.']) },
    ]);
    const s = await newSession(srv);
    const t = await turn(srv, s.id, 'Greet.');
    assertCompleted(t.message, 'Hello, world.', 'stop');
    await assertRequestCount(up, 2);
    assert.deepEqual(up.requests[1].body.messages, [
      { role: 'user', content: 'Greet.' },
      { role: 'assistant', content: 'Hello,' },
    ]);
    await waitFor(() => up.requests[0].closedAt !== null, { timeoutMs: 5000, message: 'the stalled upstream connection to be closed' });
    assertScriptUsed(up);
  });
});
