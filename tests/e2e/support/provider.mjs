// Helpers for the provider scenarios (k_, l_, m_, n_): a fake upstream
// (tests/fake_upstream) with chatd pointed at it, and small assertions about
// what chatd sent upstream and stored.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startChatd, createSession, send, waitTerminal, delay } from './chatd.mjs';
import { closeAllStreams, readRawSse } from './sse.mjs';
import { startFakeUpstream, expectedFixtures } from '../../fake_upstream/fake_upstream.mjs';

export { startFakeUpstream, expectedFixtures };
export {
  openaiEvents, anthropicEvents, readFixture, splitSse,
} from '../../fake_upstream/fake_upstream.mjs';

export const EXPECTED = expectedFixtures();

/** A distinctive API key that must never leak. */
export function secretKey() {
  return `sk-test-SECRET-${randomBytes(12).toString('hex')}`;
}

/**
 * chatd takes an HTTP proxy from these variables; the fake upstream is on
 * loopback, so the tests unset them (a developer's proxy must not intercept).
 */
export const NO_PROXY_ENV = Object.fromEntries(
  ['https_proxy', 'HTTPS_PROXY', 'http_proxy', 'HTTP_PROXY', 'all_proxy', 'ALL_PROXY'].map((k) => [k, undefined]),
);

/** Retry settings that keep failing scenarios fast (tests that time retries set their own). */
export const FAST_RETRY = ['--upstream-backoff-base-ms', '20', '--upstream-backoff-max-ms', '100'];

/**
 * Starts a fake upstream and chatd with `--provider provider --base-url <upstream>`.
 *   basePath: appended to the upstream URL in --base-url (e.g. '/v1' for OpenAI)
 *   args: more chatd flags; env: chatd's extra environment
 *   tls: HTTPS upstream; trustCa (default true with tls): pass --upstream-ca-file
 *   useIpUrl: https://127.0.0.1:PORT instead of https://localhost:PORT
 *   viaEnv: pass provider, base URL and CA file as CHATD_* environment variables
 * body(srv, up) runs the scenario; on failure chatd's stderr and a summary of
 * the upstream's requests are printed. Both processes are always stopped.
 * srv.stdoutText() returns what chatd printed on stdout after it was ready.
 */
export async function withProvider({ provider, basePath = '', args = [], env = {}, tls = false, trustCa = tls, name, useIpUrl = false, viaEnv = false }, body) {
  const up = await startFakeUpstream({ tls });
  const baseUrl = (useIpUrl ? up.ipUrl : up.url) + basePath;
  const ca = trustCa && up.caFile ? up.caFile : null;
  // viaEnv: provider, base URL and CA file through CHATD_* variables instead of flags.
  const allArgs = viaEnv ? [...args]
    : ['--provider', provider, '--base-url', baseUrl, ...(ca ? ['--upstream-ca-file', ca] : []), ...args];
  const allEnv = {
    ...NO_PROXY_ENV,
    ...(viaEnv ? { CHATD_PROVIDER: provider, CHATD_BASE_URL: baseUrl, ...(ca ? { CHATD_UPSTREAM_CA_FILE: ca } : {}) } : {}),
    ...env,
  };
  let srv;
  try {
    srv = await startChatd({ args: allArgs, env: allEnv, name: name || `chatd-${provider}` });
  } catch (err) {
    await up.close();
    throw err;
  }
  const stdout = [];
  const capture = (proc) => proc.stdout.on('data', (c) => stdout.push(c));
  capture(srv.proc);
  srv.stdoutText = () => Buffer.concat(stdout).toString('utf8');
  let failed = false;
  try {
    return await body(srv, up);
  } catch (err) {
    failed = true;
    srv.dumpStderr('test failed (data dir kept)');
    console.error(`----- fake upstream: ${up.requests.length} requests, ${up.pending()} steps unused -----`);
    for (const r of up.requests) {
      console.error(`#${r.index} ${r.method} ${r.path} at ${r.receivedAt} closed ${r.closedAt} ` +
        `${r.unscripted ? 'UNSCRIPTED ' : ''}step=${r.step ? JSON.stringify(r.step).slice(0, 160) : '-'} body=${r.rawBody.slice(0, 600)}`);
    }
    throw err;
  } finally {
    closeAllStreams();
    await srv.stop();
    await up.close();
    if (!failed) await srv.cleanup();
  }
}

/** The full message object (from the session's history). */
export async function getMessage(srv, sessionId, messageId) {
  const r = await srv.api('GET', `/sessions/${sessionId}/messages`);
  assert.equal(r.status, 200, r.text);
  const m = r.json.messages.find((x) => x.id === messageId);
  assert.ok(m, `message ${messageId} not in the history of ${sessionId}`);
  return m;
}

/** Sends `content` in the session, waits for the assistant message to end, returns it (full object). */
export async function turn(srv, sessionId, content, timeoutMs = 30000) {
  const sent = await send(srv, sessionId, content);
  await waitTerminal(srv, sent.assistant_message.id, timeoutMs);
  const m = await getMessage(srv, sessionId, sent.assistant_message.id);
  return { ...sent, message: m };
}

export async function newSession(srv, body = {}) {
  return createSession(srv, { title: 'provider', ...body });
}

/** Asserts the message ended as error with this code (and, when given, this content). */
export function assertError(m, code, content) {
  const detail = JSON.stringify({ status: m.status, error: m.error, content: m.content, finish_reason: m.finish_reason });
  assert.equal(m.status, 'error', `status: ${detail}`);
  assert.ok(m.error && typeof m.error === 'object', `error object: ${detail}`);
  assert.equal(m.error.code, code, `error.code: ${detail}`);
  assert.equal(typeof m.error.message, 'string');
  assert.ok(m.error.message.length > 0, 'error.message is empty');
  if (content !== undefined) assert.equal(m.content, content, `content: ${detail}`);
  assert.equal(m.is_streaming, false);
}

/** Asserts the message completed with this content. */
export function assertCompleted(m, content, finishReason) {
  const detail = JSON.stringify({ status: m.status, error: m.error, content: m.content, finish_reason: m.finish_reason });
  assert.equal(m.status, 'completed', `status: ${detail}`);
  assert.equal(m.error, null, `error: ${detail}`);
  assert.equal(m.content, content, `content: ${detail}`);
  if (finishReason !== undefined) assert.equal(m.finish_reason, finishReason, `finish_reason: ${detail}`);
  assert.equal(m.is_streaming, false);
}

/**
 * Asserts the upstream got exactly n requests and still gets no more during a
 * short bounded watch (absence of change: the only fixed wait we use).
 */
export async function assertRequestCount(up, n, watchMs = 400) {
  await up.waitForRequests(n, 10000);
  await delay(watchMs);
  assert.equal(up.requests.length, n,
    `upstream requests: expected ${n}, got ${up.requests.length} (${up.requests.map((r) => `#${r.index}${r.unscripted ? ' unscripted' : ''}`).join(', ')})`);
}

/** Every scripted step was used and nothing unscripted came. */
export function assertScriptUsed(up) {
  assert.equal(up.unscripted().length, 0, `unscripted upstream requests: ${up.unscripted().map((r) => r.index).join(', ')}`);
  assert.equal(up.pending(), 0, `${up.pending()} scripted upstream responses were never requested`);
}

/** Asserts that none of the named texts contains `secret`. */
export function assertNoSecret(secret, texts) {
  for (const [label, text] of Object.entries(texts)) {
    assert.equal(typeof text, 'string', `${label} is not text`);
    assert.ok(!text.includes(secret), `the API key appears in ${label}`);
  }
}

/**
 * Every API answer a client can get about this session and message, as text
 * (session, session list, history, content, status, poll, the message's SSE replay).
 */
export async function clientVisibleTexts(srv, sessionId, messageId) {
  const out = {};
  for (const p of [`/sessions/${sessionId}`, '/sessions', `/sessions/${sessionId}/messages`,
    `/messages/${messageId}/content`, `/messages/${sessionId}/status`, `/messages/${sessionId}/poll`]) {
    const r = await srv.api('GET', p);
    out[`GET ${p} (${r.status})`] = r.text;
  }
  const sse = await readRawSse(srv.url(`/api/v1/chat/messages/${messageId}/stream`), { timeoutMs: 10000 });
  out[`SSE /messages/${messageId}/stream`] = sse.text;
  return out;
}

/** The key of tests that do not check secrecy (realistic length: chatd redacts it from messages). */
export const FAKE_KEY = 'sk-test-fake-key-0123456789';
