// Scenario k: the OpenAI-compatible provider against a fake upstream. What
// chatd sends (path, Authorization, body, the prompt of a later turn, the
// session's model, temperature, max_tokens, prompt budget), what it stores
// (content, finish_reason, usage, errors with their partial content), SSE
// parsing under CRLF and 1-byte writes, and continuation with
// --openai-continue-final-message.

import test from 'node:test';
import assert from 'node:assert/strict';
import {
  withProvider, newSession, turn, getMessage, assertCompleted, assertError, assertRequestCount,
  assertScriptUsed, assertNoSecret, clientVisibleTexts, secretKey, openaiEvents, EXPECTED, FAST_RETRY, FAKE_KEY,
} from './support/provider.mjs';
import { send, waitTerminal, utf8 } from './support/chatd.mjs';
import { assertCarried } from './support/sse.mjs';

const BASIC = EXPECTED['openai-chat-basic.sse'];
const LENGTH = EXPECTED['openai-chat-length.sse'];

test('k1: a basic stream completes; request path, auth and body; the second turn carries the history', async () => {
  const key = secretKey();
  await withProvider({
    provider: 'openai', basePath: '/v1', args: ['--model', 'gpt-test-default'],
    env: { OPENAI_API_KEY: key }, name: 'chatd-k1',
  }, async (srv, up) => {
    up.script([{ fixture: 'openai-chat-basic.sse', delayMs: 20 }, { fixture: 'openai-chat-length.sse' }]);
    const s = await newSession(srv, { system_prompt: 'Be brief.' });
    assert.equal(s.model, 'gpt-test-default', 'a new session takes --model');

    const t1 = await turn(srv, s.id, 'Hi there');
    assertCompleted(t1.message, BASIC.text, 'stop');
    assert.deepEqual(t1.message.usage, BASIC.usage);
    assert.equal(t1.message.model, 'gpt-test-default');

    const r1 = up.requests[0];
    assert.equal(r1.method, 'POST');
    assert.equal(r1.path, '/v1/chat/completions');
    assert.equal(r1.headers.authorization, `Bearer ${key}`);
    assert.match(r1.headers['content-type'] || '', /^application\/json/);
    assert.deepEqual(r1.body, {
      model: 'gpt-test-default',
      messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi there' }],
      stream: true,
      stream_options: { include_usage: true },
      max_tokens: 1024,
    });

    const t2 = await turn(srv, s.id, 'And now a story.');
    assertCompleted(t2.message, LENGTH.text, 'length');
    const r2 = up.requests[1];
    assert.equal(r2.path, '/v1/chat/completions');
    assert.deepEqual(r2.body.messages, [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Hi there' },
      { role: 'assistant', content: BASIC.text },
      { role: 'user', content: 'And now a story.' },
    ]);
    assert.equal(r2.body.model, 'gpt-test-default');
    assert.equal(r2.body.stream, true);
    await assertRequestCount(up, 2, 0);
    assertScriptUsed(up);

    // The key appears nowhere a client or an operator can see it.
    assertNoSecret(key, {
      ...(await clientVisibleTexts(srv, s.id, t1.message.id)),
      'chatd stderr': srv.stderrText(),
      'chatd stdout': srv.stdoutText(),
    });
  });
});

test('k2: the session model, --temperature, --max-output-tokens and --api-key-env reach the request', async () => {
  const key = secretKey();
  await withProvider({
    provider: 'openai', basePath: '/v1',
    args: ['--model', 'gpt-default', '--allowed-models', 'gpt-default,gpt-session-model', '--temperature', '0.25', '--max-output-tokens', '77', '--api-key-env', 'CHATD_TEST_LLM_KEY'],
    env: { CHATD_TEST_LLM_KEY: key, OPENAI_API_KEY: 'sk-the-wrong-variable' }, name: 'chatd-k2',
  }, async (srv, up) => {
    up.script([{ fixture: 'openai-chat-basic.sse' }]);
    const s = await newSession(srv, { model: 'gpt-session-model' });
    assert.equal(s.model, 'gpt-session-model');
    const t = await turn(srv, s.id, 'Hello');
    assertCompleted(t.message, BASIC.text, 'stop');
    assert.equal(t.message.model, 'gpt-session-model');
    const r = up.requests[0];
    assert.equal(r.headers.authorization, `Bearer ${key}`);
    assert.deepEqual(r.body, {
      model: 'gpt-session-model',
      messages: [{ role: 'user', content: 'Hello' }],
      stream: true,
      stream_options: { include_usage: true },
      max_tokens: 77,
      temperature: 0.25,
    });
    assertScriptUsed(up);
    assertNoSecret(key, { 'chatd stderr': srv.stderrText(), 'chatd stdout': srv.stdoutText() });
  });
});

test('k3: an empty key sends no Authorization header', async () => {
  await withProvider({
    provider: 'openai', basePath: '/v1', args: ['--model', 'local-llama'],
    env: { OPENAI_API_KEY: '' }, name: 'chatd-k3',
  }, async (srv, up) => {
    up.script([{ fixture: 'openai-chat-basic.sse' }]);
    const s = await newSession(srv);
    const t = await turn(srv, s.id, 'Hello');
    assertCompleted(t.message, BASIC.text, 'stop');
    assert.equal(up.requests[0].headers.authorization, undefined,
      `Authorization sent with an empty key: ${JSON.stringify(up.requests[0].headers.authorization)}`);
    assertScriptUsed(up);
  });
});

test('k4: CRLF line ends and tiny writes (split inside lines and UTF-8 characters) give the same result', async () => {
  await withProvider({
    provider: 'openai', basePath: '/v1', args: ['--model', 'gpt-x'], env: { OPENAI_API_KEY: FAKE_KEY }, name: 'chatd-k4',
  }, async (srv, up) => {
    up.script([
      { fixture: 'openai-chat-basic.sse', crlf: true },
      { fixture: 'openai-chat-basic.sse', chunkBytes: 1 },
      { fixture: 'openai-chat-basic.sse', crlf: true, chunkBytes: 3, chunkDelayMs: 1 },
      { fixture: 'openai-chat-length.sse', crlf: true, chunkBytes: 1, chunkDelayMs: 1 },
    ]);
    const s = await newSession(srv);
    for (const [i, label] of ['crlf', '1-byte writes', 'crlf + 3-byte writes'].entries()) {
      const t = await turn(srv, s.id, `Question ${i}`);
      assert.equal(t.message.content, BASIC.text, `${label}: content`);
      assertCompleted(t.message, BASIC.text, 'stop');
      assert.deepEqual(t.message.usage, BASIC.usage, `${label}: usage`);
    }
    const t = await turn(srv, s.id, 'Story?');
    assertCompleted(t.message, LENGTH.text, 'length');
    assertScriptUsed(up);
  });
});

test('k5: an error object mid-stream ends the message as error upstream_unavailable with the partial text (no continuation without the flag)', async () => {
  await withProvider({
    provider: 'openai', basePath: '/v1', args: ['--model', 'gpt-x', ...FAST_RETRY], env: { OPENAI_API_KEY: FAKE_KEY }, name: 'chatd-k5',
  }, async (srv, up) => {
    up.script([{ fixture: 'openai-chat-error-midstream.sse' }]);
    const s = await newSession(srv);
    const t = await turn(srv, s.id, 'Hello');
    assertError(t.message, 'upstream_unavailable', 'Partial answer');
    await assertRequestCount(up, 1);
    assertScriptUsed(up);
  });
});

test('k6: the prompt holds every stored assistant turn (also a failed one with partial text) and skips empty ones', async () => {
  await withProvider({
    provider: 'openai', basePath: '/v1', args: ['--model', 'gpt-x', ...FAST_RETRY], env: { OPENAI_API_KEY: FAKE_KEY }, name: 'chatd-k6',
  }, async (srv, up) => {
    up.script([
      { fixture: 'openai-chat-basic.sse' },
      { kind: 'error', status: 400, message: "Invalid 'messages': too long." },
      { fixture: 'openai-chat-error-midstream.sse' },
      { fixture: 'openai-chat-length.sse' },
    ]);
    const s = await newSession(srv, { system_prompt: 'You are terse.' });
    assertCompleted((await turn(srv, s.id, 'one')).message, BASIC.text, 'stop');
    assertError((await turn(srv, s.id, 'two')).message, 'upstream_bad_request', '');
    assertError((await turn(srv, s.id, 'three')).message, 'upstream_unavailable', 'Partial answer');
    assertCompleted((await turn(srv, s.id, 'four')).message, LENGTH.text, 'length');
    assert.equal(up.requests.length, 4);
    assert.deepEqual(up.requests[3].body.messages, [
      { role: 'system', content: 'You are terse.' },
      { role: 'user', content: 'one' },
      { role: 'assistant', content: BASIC.text },
      { role: 'user', content: 'two' },
      { role: 'user', content: 'three' },
      { role: 'assistant', content: 'Partial answer' },
      { role: 'user', content: 'four' },
    ]);
    assertScriptUsed(up);
  });
});

test('k7: --prompt-budget-bytes drops the oldest turns, never the system prompt or the new user message', async () => {
  // Content bytes: system 10, u1 100, a1 200, u2 10, a2 10, u3 10. Budget 60:
  // turn 2 sends [system, u2] (20 bytes; adding a1 would be 220), turn 3
  // sends [system, u2, a2, u3] (40 bytes; adding a1 would be 240).
  const system = 'Be brief!!';
  const u1 = 'q'.repeat(100);
  const a1 = 'a'.repeat(200);
  const u2 = 'second q?!';
  const a2 = 'second a!!';
  const u3 = 'third q?!!';
  await withProvider({
    provider: 'openai', basePath: '/v1', args: ['--model', 'gpt-x', '--prompt-budget-bytes', '60'],
    env: { OPENAI_API_KEY: FAKE_KEY }, name: 'chatd-k7',
  }, async (srv, up) => {
    up.script([
      { events: openaiEvents([a1.slice(0, 100), a1.slice(100)]) },
      { events: openaiEvents([a2]) },
      { events: openaiEvents(['done']) },
    ]);
    const s = await newSession(srv, { system_prompt: system });
    assertCompleted((await turn(srv, s.id, u1)).message, a1, 'stop');
    assertCompleted((await turn(srv, s.id, u2)).message, a2, 'stop');
    assertCompleted((await turn(srv, s.id, u3)).message, 'done', 'stop');
    assert.deepEqual(up.requests[0].body.messages, [
      { role: 'system', content: system }, { role: 'user', content: u1 },
    ], 'the newest user message is kept even when it alone exceeds the budget');
    assert.deepEqual(up.requests[1].body.messages, [
      { role: 'system', content: system }, { role: 'user', content: u2 },
    ]);
    assert.deepEqual(up.requests[2].body.messages, [
      { role: 'system', content: system },
      { role: 'user', content: u2 },
      { role: 'assistant', content: a2 },
      { role: 'user', content: u3 },
    ]);
    assertScriptUsed(up);
  });
});

test('k8: a 401 that echoes the key: upstream_auth after one attempt, and the key is redacted everywhere', async () => {
  const key = secretKey();
  await withProvider({
    provider: 'openai', basePath: '/v1', args: ['--model', 'gpt-x', '--log-level', 'trace', ...FAST_RETRY],
    env: { OPENAI_API_KEY: key }, name: 'chatd-k8',
  }, async (srv, up) => {
    up.script([{
      kind: 'error', status: 401, code: 'invalid_api_key',
      message: 'Incorrect API key provided: {{api_key}}. You can find your API key at https://platform.openai.com/account/api-keys.',
    }]);
    const s = await newSession(srv);
    const t = await turn(srv, s.id, 'Hello');
    assertError(t.message, 'upstream_auth', '');
    assert.ok(!t.message.error.message.includes(key), `error.message holds the key: ${t.message.error.message}`);
    await assertRequestCount(up, 1);
    assert.equal(up.requests[0].headers.authorization, `Bearer ${key}`, 'the fake did receive the key');
    assert.ok(up.requests[0].responseBody.includes(key), 'the fake echoed the key in its 401 message');
    assertScriptUsed(up);
    assertNoSecret(key, {
      ...(await clientVisibleTexts(srv, s.id, t.message.id)),
      'chatd stderr (trace)': srv.stderrText(),
      'chatd stdout': srv.stdoutText(),
    });
  });
});

test('k9: with --openai-continue-final-message a dropped stream is continued from its partial text', async () => {
  const part1 = ['The ', 'quick ', 'brown ', 'fox '];
  const part2 = ['jumps ', 'over ', 'the lazy dog.'];
  const partial = part1.join('');
  const final = partial + part2.join('');
  await withProvider({
    provider: 'openai', basePath: '/v1', args: ['--model', 'gpt-x', '--openai-continue-final-message', ...FAST_RETRY],
    env: { OPENAI_API_KEY: FAKE_KEY }, name: 'chatd-k9',
  }, async (srv, up) => {
    up.script([
      { events: openaiEvents(part1, { finish: null, usage: null, done: false }), delayMs: 10, fault: { after: 5, kind: 'reset' } },
      { events: openaiEvents(part2, { usage: { prompt_tokens: 30, completion_tokens: 6 } }), delayMs: 10 },
    ]);
    const s = await newSession(srv, { system_prompt: 'Complete sentences.' });
    const sent = await send(srv, s.id, 'Say the pangram.');
    const stream = srv.stream(`/messages/${sent.assistant_message.id}/stream`);
    await waitTerminal(srv, sent.assistant_message.id);
    const m = await getMessage(srv, s.id, sent.assistant_message.id);
    assertCompleted(m, final, 'stop');
    assert.deepEqual(m.usage, { input_tokens: 30, output_tokens: 6 }, 'usage summed over attempts (the first reported none)');

    await assertRequestCount(up, 2);
    const [r1, r2] = up.requests;
    assert.equal(r1.body.continue_final_message, undefined, 'a first attempt is no continuation');
    assert.equal(r1.body.add_generation_prompt, undefined);
    assert.equal(r2.path, '/v1/chat/completions');
    assert.equal(r2.body.continue_final_message, true);
    assert.equal(r2.body.add_generation_prompt, false);
    assert.equal(r2.body.stream, true);
    assert.equal(r2.body.model, 'gpt-x');
    assert.deepEqual(r2.body.messages, [
      ...r1.body.messages,
      { role: 'assistant', content: partial },
    ]);
    assert.deepEqual(r1.body.messages, [
      { role: 'system', content: 'Complete sentences.' }, { role: 'user', content: 'Say the pangram.' },
    ]);

    await stream.waitForTerminal();
    assertCarried(stream, utf8(final), 'a stream open across the drop');
    assert.equal(stream.terminal.data.status, 'completed');
    assertScriptUsed(up);
  });
});

test('k10: without --openai-continue-final-message a drop after text is an error with the partial text, one request', async () => {
  await withProvider({
    provider: 'openai', basePath: '/v1', args: ['--model', 'gpt-x', ...FAST_RETRY], env: { OPENAI_API_KEY: FAKE_KEY }, name: 'chatd-k10',
  }, async (srv, up) => {
    up.script([{ events: openaiEvents(['The ', 'quick '], { finish: null, usage: null, done: false }), fault: { after: 3, kind: 'reset' } }]);
    const s = await newSession(srv);
    const t = await turn(srv, s.id, 'Hello');
    assertError(t.message, 'upstream_unavailable', 'The quick ');
    await assertRequestCount(up, 1);
    assertScriptUsed(up);
  });
});

test('k11: an error object before any text is retried; the retry completes', async () => {
  await withProvider({
    provider: 'openai', basePath: '/v1', args: ['--model', 'gpt-x', ...FAST_RETRY], env: { OPENAI_API_KEY: FAKE_KEY }, name: 'chatd-k11',
  }, async (srv, up) => {
    up.script([
      { events: [{ data: { error: { message: 'The server had an error while processing your request. Sorry about that!', type: 'server_error', param: null, code: null } } }] },
      { fixture: 'openai-chat-basic.sse' },
    ]);
    const s = await newSession(srv);
    const t = await turn(srv, s.id, 'Hello');
    assertCompleted(t.message, BASIC.text, 'stop');
    await assertRequestCount(up, 2);
    assert.deepEqual(up.requests[1].body, up.requests[0].body);
    assertScriptUsed(up);
  });
});

test('k12: CHATD_* environment variables configure the provider like the flags', async () => {
  const key = secretKey();
  await withProvider({
    provider: 'openai', basePath: '/v1', viaEnv: true,
    env: {
      CHATD_MODEL: 'gpt-from-env', CHATD_API_KEY_ENV: 'CHATD_TEST_ENV_KEY', CHATD_TEST_ENV_KEY: key,
      CHATD_MAX_OUTPUT_TOKENS: '33', CHATD_TEMPERATURE: '1.5',
    },
    name: 'chatd-k12',
  }, async (srv, up) => {
    up.script([{ fixture: 'openai-chat-basic.sse' }]);
    const s = await newSession(srv);
    const t = await turn(srv, s.id, 'Hello');
    assertCompleted(t.message, BASIC.text, 'stop');
    const r = up.requests[0];
    assert.equal(r.path, '/v1/chat/completions');
    assert.equal(r.headers.authorization, `Bearer ${key}`);
    assert.deepEqual(r.body, {
      model: 'gpt-from-env',
      messages: [{ role: 'user', content: 'Hello' }],
      stream: true,
      stream_options: { include_usage: true },
      max_tokens: 33,
      temperature: 1.5,
    });
    assertScriptUsed(up);
  });
});

test('k13: OpenAI-compatible servers\' variations: `data:` without a space, comments, a delta without content, content null', async () => {
  await withProvider({
    provider: 'openai', basePath: '/v1', args: ['--model', 'local', ...FAST_RETRY], env: { OPENAI_API_KEY: FAKE_KEY }, name: 'chatd-k13',
  }, async (srv, up) => {
    up.script([{
      events: [
        'data:{"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant"},"finish_reason":null}]}\n\n',
        ': keep-alive\n\n',
        'data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}\n\n',
        'data:{"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":" there"},"finish_reason":null}]}\n\n',
        'data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":null},"finish_reason":"stop"}]}\n\n',
        'data:[DONE]\n\n',
      ],
    }]);
    const s = await newSession(srv);
    const t = await turn(srv, s.id, 'Hello');
    assertCompleted(t.message, 'Hi there', 'stop');
    await assertRequestCount(up, 1, 0);
    assertScriptUsed(up);
  });
});
