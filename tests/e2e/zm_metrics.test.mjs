// Scenario zm: GET /metrics, Prometheus's text format, checked by Debian's
// `promtool check metrics` and read for what happened: requests by route and
// status, API errors by code, live generations and open streams while they
// are, commits and their batches, first tokens, tokens in and out, answers
// ended by status and errors by code, and upstream latency with a provider.
// Labels never carry a user, session or message id.

import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { withChatd, createSession, send, waitFor, waitTerminal } from './support/chatd.mjs';
import { withProvider, newSession, turn } from './support/provider.mjs';

// name{labels} value → [{ name, labels, value }]
function parse(text) {
  const samples = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `a sample line: ${line}`);
    const labels = {};
    for (const [, k, v] of (m[2] || '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[k] = v;
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return samples;
}

function value(samples, name, labels = {}) {
  const found = samples.filter((s) => s.name === name &&
    Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return found.reduce((sum, s) => sum + s.value, 0);
}

async function scrape(srv) {
  const r = await srv.http('GET', '/metrics');
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
  return r.text;
}

function promtoolCheck(text) {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  assert.equal(r.error, undefined, `promtool must be installed (scripts/setup.sh --tests): ${r.error}`);
  assert.equal(r.status, 0, `promtool check metrics:\n${r.stdout}${r.stderr}`);
}

test('zm: /metrics counts what happened, in a format promtool accepts', async () => {
  await withChatd({ args: ['--sim-tokens-per-second', '50', '--sim-min-tokens', '60', '--sim-max-tokens', '60'], name: 'chatd-zm' }, async (srv) => {
    promtoolCheck(await scrape(srv));  // before anything happened, too

    const session = await createSession(srv, { title: 'metrics' });
    const missing = await srv.api('GET', '/sessions/ses_01M8TXVB5N0001C05X7BNQ44PK');
    assert.equal(missing.status, 404);
    const bad = await srv.api('POST', '/sessions', '{', { 'Content-Type': 'application/json' });
    assert.equal(bad.status, 400);

    // While an answer generates and a stream follows it, the gauges say so.
    const sent = await send(srv, session.id, 'Count for me.');
    const stream = srv.stream(`/messages/${sent.assistant_message.id}/stream`);
    await waitFor(async () => {
      const s = parse(await scrape(srv));
      return value(s, 'chatd_live_generations') === 1 && value(s, 'chatd_sse_subscribers') === 1;
    }, { message: 'one live generation and one open stream' });
    const busy = await srv.api('POST', `/sessions/${session.id}/messages`, { content: 'again' });
    assert.equal(busy.status, 409);
    await stream.waitForTerminal();
    stream.close();
    await waitTerminal(srv, sent.assistant_message.id);
    const cancelled = await send(srv, session.id, 'Stop me.');
    assert.equal((await srv.api('POST', `/messages/${cancelled.assistant_message.id}/cancel`)).status, 200);

    await waitFor(async () => {
      const s = parse(await scrape(srv));
      return value(s, 'chatd_live_generations') === 0 && value(s, 'chatd_sse_subscribers') === 0 &&
        value(s, 'chatd_generations_ended_total', { status: 'cancelled' }) === 1;
    }, { message: 'the gauges back at zero and both answers counted' });
    const text = await scrape(srv);
    promtoolCheck(text);
    const s = parse(text);

    assert.equal(value(s, 'chatd_http_requests_total', { method: 'POST', route: '/api/v1/chat/sessions', status: '201' }), 1);
    assert.equal(value(s, 'chatd_http_requests_total', { route: '/api/v1/chat/sessions/{}', status: '404' }), 1);
    assert.equal(value(s, 'chatd_http_requests_total', { route: '/api/v1/chat/sessions/{}/messages', status: '202' }), 2);
    assert.equal(value(s, 'chatd_http_requests_total', { route: '/api/v1/chat/messages/{}/stream', status: '200' }), 1);
    assert.ok(value(s, 'chatd_http_request_duration_seconds_count', { route: '/api/v1/chat/sessions' }) >= 2);
    assert.equal(value(s, 'chatd_api_errors_total', { code: 'not_found' }), 1);
    assert.equal(value(s, 'chatd_api_errors_total', { code: 'invalid_json' }), 1);
    assert.equal(value(s, 'chatd_api_errors_total', { code: 'generation_in_progress' }), 1);
    assert.equal(value(s, 'chatd_generations_ended_total', { status: 'completed' }), 1);
    assert.equal(value(s, 'chatd_generations_ended_total', { status: 'cancelled' }), 1);
    assert.ok(value(s, 'chatd_tokens_total', { direction: 'output' }) >= 60);
    assert.ok(value(s, 'chatd_tokens_total', { direction: 'input' }) > 0);
    assert.ok(value(s, 'chatd_time_to_first_token_seconds_count') >= 1);
    const commits = value(s, 'chatd_store_commits_total', { outcome: 'ok' });
    assert.ok(commits > 0);
    assert.equal(value(s, 'chatd_store_commit_duration_seconds_count'), commits);
    assert.equal(value(s, 'chatd_store_commit_batch_writes_count'), commits);
    assert.ok(value(s, 'chatd_store_commit_batch_writes_sum') >= commits);
    // Bounded labels only.
    for (const sample of s)
      for (const v of Object.values(sample.labels)) assert.doesNotMatch(v, /ses_|msg_|usr_/, `${sample.name} ${v}`);
  });
});

test('zm: upstream latency and errors by code, with a provider', async () => {
  await withProvider({ provider: 'openai', name: 'chatd-zm-up' }, async (srv, up) => {
    // A 401 is final: not retried.
    up.script([{ fixture: 'openai-chat-basic.sse' }, { kind: 'error', status: 401, code: 'invalid_api_key' }]);
    const session = await newSession(srv);
    const ok = await turn(srv, session.id, 'Hello');
    assert.equal(ok.message.status, 'completed');
    const failed = await turn(srv, session.id, 'Again');
    assert.equal(failed.message.status, 'error');
    const text = await scrape(srv);
    promtoolCheck(text);
    const s = parse(text);
    assert.equal(value(s, 'chatd_upstream_response_seconds_count', { provider: 'openai' }), 2);
    assert.equal(value(s, 'chatd_generation_errors_total', { code: failed.message.error.code }), 1);
    assert.equal(value(s, 'chatd_generations_ended_total', { status: 'error' }), 1);
  });
});
