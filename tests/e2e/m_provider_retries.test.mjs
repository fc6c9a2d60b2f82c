// Scenario m: upstream HTTP errors before the first token. Which statuses are
// retried and how often (--upstream-retries N = N+1 attempts), which end the
// message at once, the error code each one stores, Retry-After (seconds and
// HTTP date) honoured, and --upstream-retry-deadline-ms.

import test from 'node:test';
import assert from 'node:assert/strict';
import {
  withProvider, newSession, turn, assertCompleted, assertError, assertRequestCount, assertScriptUsed,
  EXPECTED, FAST_RETRY, FAKE_KEY,
} from './support/provider.mjs';

const OPENAI_BASIC = EXPECTED['openai-chat-basic.sse'];
const ANTHROPIC_BASIC = EXPECTED['anthropic-basic.sse'];

const openai = (args, name) => ({ provider: 'openai', basePath: '/v1', args: ['--model', 'gpt-x', ...args], env: { OPENAI_API_KEY: FAKE_KEY }, name });
const anthropic = (args, name) => ({ provider: 'anthropic', args: ['--model', 'claude-x', ...args], env: { ANTHROPIC_API_KEY: FAKE_KEY }, name });

const times = (n, step) => Array.from({ length: n }, () => ({ ...step }));

test('m1: 400, 401, 403, 404 end the message after exactly one attempt', async () => {
  await withProvider(openai([...FAST_RETRY], 'chatd-m1'), async (srv, up) => {
    const s = await newSession(srv);
    for (const [status, code] of [[400, 'upstream_bad_request'], [401, 'upstream_auth'], [403, 'upstream_auth'], [404, 'upstream_bad_request']]) {
      up.reset();
      up.script([{ kind: 'error', status }]);
      const t = await turn(srv, s.id, `status ${status}`);
      assertError(t.message, code, '');
      await assertRequestCount(up, 1);
      assertScriptUsed(up);
    }
  });
});

test('m2: Anthropic 401 and 403 are upstream_auth, 400 and 404 upstream_bad_request, one attempt each', async () => {
  await withProvider(anthropic([...FAST_RETRY], 'chatd-m2'), async (srv, up) => {
    const s = await newSession(srv);
    for (const [status, code] of [[401, 'upstream_auth'], [403, 'upstream_auth'], [400, 'upstream_bad_request'], [404, 'upstream_bad_request']]) {
      up.reset();
      up.script([{ kind: 'error', status }]);
      const t = await turn(srv, s.id, `status ${status}`);
      assertError(t.message, code, '');
      await assertRequestCount(up, 1);
      assertScriptUsed(up);
    }
  });
});

test('m3: 429 every time ends as upstream_rate_limited after --upstream-retries + 1 attempts', async () => {
  await withProvider(openai(['--upstream-retries', '2', ...FAST_RETRY], 'chatd-m3'), async (srv, up) => {
    up.script(times(3, { kind: 'error', status: 429 }));
    const s = await newSession(srv);
    const t = await turn(srv, s.id, 'Hello');
    assertError(t.message, 'upstream_rate_limited', '');
    await assertRequestCount(up, 3);
    assertScriptUsed(up);
  });
});

test('m4: 500 every time: upstream_unavailable after the default 3 retries (4 attempts)', async () => {
  await withProvider(openai([...FAST_RETRY], 'chatd-m4'), async (srv, up) => {
    up.script(times(4, { kind: 'error', status: 500 }));
    const s = await newSession(srv);
    const t = await turn(srv, s.id, 'Hello');
    assertError(t.message, 'upstream_unavailable', '');
    await assertRequestCount(up, 4);
    assertScriptUsed(up);
    for (const r of up.requests.slice(1)) assert.deepEqual(r.body, up.requests[0].body, 'a retry resends the same request');
  });
});

test('m5: 502, 503 (OpenAI) and 529 (Anthropic) every time: upstream_unavailable after retries + 1 attempts', async () => {
  await withProvider(openai(['--upstream-retries', '1', ...FAST_RETRY], 'chatd-m5a'), async (srv, up) => {
    const s = await newSession(srv);
    for (const status of [502, 503]) {
      up.reset();
      up.script(times(2, { kind: 'error', status }));
      const t = await turn(srv, s.id, `status ${status}`);
      assertError(t.message, 'upstream_unavailable', '');
      await assertRequestCount(up, 2);
      assertScriptUsed(up);
    }
  });
  await withProvider(anthropic(['--upstream-retries', '1', ...FAST_RETRY], 'chatd-m5b'), async (srv, up) => {
    up.script(times(2, { kind: 'error', status: 529 }));
    const s = await newSession(srv);
    const t = await turn(srv, s.id, 'Hello');
    assertError(t.message, 'upstream_unavailable', '');
    await assertRequestCount(up, 2);
    assertScriptUsed(up);
  });
});

test('m6: 408, 409, 504 are retried, then a good stream completes', async () => {
  await withProvider(openai([...FAST_RETRY], 'chatd-m6'), async (srv, up) => {
    up.script([
      { kind: 'error', status: 408 },
      { kind: 'error', status: 409 },
      { kind: 'error', status: 504 },
      { fixture: 'openai-chat-basic.sse' },
    ]);
    const s = await newSession(srv);
    const t = await turn(srv, s.id, 'Hello');
    assertCompleted(t.message, OPENAI_BASIC.text, 'stop');
    assert.deepEqual(t.message.usage, OPENAI_BASIC.usage);
    await assertRequestCount(up, 4);
    assertScriptUsed(up);
  });
});

test('m7: 503 then a good stream completes (Anthropic)', async () => {
  await withProvider(anthropic([...FAST_RETRY], 'chatd-m7'), async (srv, up) => {
    up.script([{ kind: 'error', status: 503 }, { fixture: 'anthropic-basic.sse' }]);
    const s = await newSession(srv);
    const t = await turn(srv, s.id, 'Hello');
    assertCompleted(t.message, ANTHROPIC_BASIC.text, 'stop');
    assert.deepEqual(t.message.usage, ANTHROPIC_BASIC.usage);
    await assertRequestCount(up, 2);
    assertScriptUsed(up);
  });
});

test('m8: Retry-After in seconds is honoured: 429 (Retry-After: 1), then the next attempt not before 1 s', async () => {
  await withProvider(openai([...FAST_RETRY], 'chatd-m8'), async (srv, up) => {
    up.script([{ kind: 'error', status: 429, headers: { 'Retry-After': '1' } }, { fixture: 'openai-chat-basic.sse' }]);
    const s = await newSession(srv);
    const t = await turn(srv, s.id, 'Hello');
    assertCompleted(t.message, OPENAI_BASIC.text, 'stop');
    await assertRequestCount(up, 2);
    const [r1, r2] = up.requests;
    const gap = r2.receivedAt - r1.responseEndedAt;
    assert.ok(gap >= 980, `second attempt ${gap} ms after the 429 was sent; Retry-After: 1 asks for 1000 ms`);
    assert.ok(gap < 5000, `second attempt ${gap} ms after the 429; expected about 1 s`);
    assertScriptUsed(up);
  });
});

test('m9: Retry-After as an HTTP date is honoured', async () => {
  await withProvider(anthropic([...FAST_RETRY], 'chatd-m9'), async (srv, up) => {
    let retryAt = 0;
    up.script([
      () => {
        // Two whole seconds after the next full second (HTTP dates have 1 s resolution).
        retryAt = (Math.floor(Date.now() / 1000) + 2) * 1000;
        return { kind: 'error', status: 503, headers: { 'Retry-After': new Date(retryAt).toUTCString() } };
      },
      { fixture: 'anthropic-basic.sse' },
    ]);
    const s = await newSession(srv);
    const t = await turn(srv, s.id, 'Hello');
    assertCompleted(t.message, ANTHROPIC_BASIC.text, 'stop');
    await assertRequestCount(up, 2);
    const early = retryAt - up.requests[1].receivedAt;
    assert.ok(early <= 20, `second attempt ${early} ms before the Retry-After date ${new Date(retryAt).toUTCString()}`);
    assert.ok(up.requests[1].receivedAt - retryAt < 4000, 'second attempt far later than the Retry-After date');
    assertScriptUsed(up);
  });
});

test('m10: connection resets before any answer are retried, then upstream_unavailable', async () => {
  await withProvider(openai(['--upstream-retries', '1', ...FAST_RETRY], 'chatd-m10'), async (srv, up) => {
    up.script(times(2, { kind: 'reset' }));
    const s = await newSession(srv);
    const t = await turn(srv, s.id, 'Hello');
    assertError(t.message, 'upstream_unavailable', '');
    await assertRequestCount(up, 2);
    assertScriptUsed(up);
  });
});

test('m11: --upstream-retry-deadline-ms stops retrying: no attempt starts after the deadline', async () => {
  const deadlineMs = 1500;
  await withProvider(openai(['--upstream-retries', '50', '--upstream-backoff-base-ms', '200', '--upstream-backoff-max-ms', '200',
    '--upstream-retry-deadline-ms', String(deadlineMs)], 'chatd-m11'), async (srv, up) => {
    up.script(times(51, { kind: 'error', status: 503 }));
    const s = await newSession(srv);
    const started = Date.now();
    const t = await turn(srv, s.id, 'Hello');
    const ended = Date.now();
    assertError(t.message, 'upstream_unavailable', '');
    await assertRequestCount(up, up.requests.length, 600);
    const n = up.requests.length;
    assert.ok(n >= 2, `only ${n} attempt(s) within a ${deadlineMs} ms deadline and 200 ms backoff`);
    assert.ok(n < 51, `${n} attempts: the deadline did not stop the retries`);
    const last = up.requests[n - 1].receivedAt - up.requests[0].receivedAt;
    assert.ok(last <= deadlineMs + 100, `an attempt started ${last} ms after the first (deadline ${deadlineMs} ms)`);
    assert.ok(ended - started < deadlineMs + 3000, `the message ended ${ended - started} ms after the send`);
    up.clearScript();
  });
});
