// Authentication helpers for the end-to-end tests (q, r, s).
//
// - JWTs made with node:crypto only: HS256 (createHmac), RS256 and ES256
//   (crypto.sign; ES256 in JOSE form, raw r||s, dsaEncoding 'ieee-p1363'),
//   plus hand-built malformed ones. Key pairs, PEM public keys and JWKS files.
// - api-keys files (`<lowercase hex SHA-256 of the key> <user id>` per line).
// - Requests as a user: authHeaders(), asUser(srv, headers) wrappers, an SSE
//   client (the `eventsource` package with a fetch that adds the headers to
//   every connection), a raw HTTP/1.1 client (node:net) for requests whose
//   Host, Origin or size fetch would not let us choose.
// - The one 401 answer every authentication failure must give, and a spawner
//   that checks whether chatd refuses to start.
// Every wait in here is for a condition with a deadline.

import crypto from 'node:crypto';
import { spawn } from 'node:child_process';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { rmSync } from 'node:fs';
import assert from 'node:assert/strict';
import { EventSource } from 'eventsource';
import { API_PREFIX, chatdBin, waitFor, withChatd } from './chatd.mjs';

// ---------------------------------------------------------------------------
// The 401 answer.

/** The exact body of every authentication failure, whatever was wrong. */
export const UNAUTHORIZED_BODY = '{"error":{"code":"unauthorized","message":"missing or invalid credentials"}}';
export const WWW_AUTHENTICATE = 'Bearer realm="chatd"';

/**
 * Asserts r (from srv.api/request/readRawSse/rawHttp: { status, headers, text })
 * is the one 401 answer: status, WWW-Authenticate, JSON type, exact body bytes.
 */
export function assertUnauthorized(r, label) {
  const get = (name) => (typeof r.headers?.get === 'function' ? r.headers.get(name) : r.headers?.[name]);
  assert.equal(r.status, 401, `${label}: expected 401, got ${r.status}: ${String(r.text).slice(0, 300)}`);
  assert.equal(get('www-authenticate'), WWW_AUTHENTICATE, `${label}: WWW-Authenticate header`);
  assert.match(get('content-type') || '', /^application\/json/, `${label}: Content-Type`);
  assert.equal(r.text, UNAUTHORIZED_BODY, `${label}: the 401 body must be the same bytes whatever was wrong`);
}

// ---------------------------------------------------------------------------
// base64url and JWTs.

export function b64url(data) {
  const buf = Buffer.isBuffer(data) ? data : Buffer.from(String(data), 'utf8');
  return buf.toString('base64url'); // no padding
}

export function b64urlJson(value) {
  return b64url(JSON.stringify(value));
}

/** Seconds since the epoch (JWT NumericDate). */
export function nowS() {
  return Math.floor(Date.now() / 1000);
}

/** Signature bytes of `input` (a string) with `alg` and `key`. alg 'none': empty. */
export function jwsSignature(alg, input, key) {
  const data = Buffer.from(input, 'utf8');
  switch (alg) {
    case 'none': return Buffer.alloc(0);
    case 'HS256': return crypto.createHmac('sha256', key).update(data).digest();
    case 'HS384': return crypto.createHmac('sha384', key).update(data).digest();
    case 'HS512': return crypto.createHmac('sha512', key).update(data).digest();
    case 'RS256': return crypto.sign('sha256', data, key);
    case 'ES256': return crypto.sign('sha256', data, { key, dsaEncoding: 'ieee-p1363' });
    case 'ES256-DER': return crypto.sign('sha256', data, { key, dsaEncoding: 'der' }); // not JOSE: for negative tests
    default: throw new Error(`jwsSignature: unsupported alg ${alg}`);
  }
}

/**
 * Makes a compact JWT.
 *   payload: the claims object (or a raw string / Buffer, encoded as is)
 *   opts.alg: how to sign: HS256 (key = secret), RS256/ES256 (key = private KeyObject), none
 *   opts.key: secret (string/Buffer) or private key
 *   opts.kid: put into the header
 *   opts.header: extra header fields; header.alg overrides the alg written in the header
 *     (the signature is still made with opts.alg), for algorithm-confusion tests
 *   opts.rawHeader: the header segment's JSON text (or Buffer) instead of an object
 */
export function makeJwt(payload, { alg = 'HS256', key, kid, header = {}, rawHeader } = {}) {
  const headerAlg = alg === 'ES256-DER' ? 'ES256' : alg;
  const h = { alg: headerAlg, typ: 'JWT', ...(kid !== undefined ? { kid } : {}), ...header };
  const headerSeg = rawHeader !== undefined ? b64url(rawHeader) : b64urlJson(h);
  const payloadSeg = (typeof payload === 'string' || Buffer.isBuffer(payload)) ? b64url(payload) : b64urlJson(payload);
  const input = `${headerSeg}.${payloadSeg}`;
  return `${input}.${b64url(jwsSignature(alg, input, key))}`;
}

/** Standard claims for `sub`, valid for an hour, plus `extra` (a value of undefined removes a claim). */
export function claims(sub, extra = {}) {
  const now = nowS();
  const c = { sub, iat: now, exp: now + 3600 };
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete c[k]; else c[k] = v;
  }
  return c;
}

/**
 * Grows a claim `pad` until makeToken(pad) is at least `bytes` long (and at
 * most a few bytes more); returns the token.
 */
export function tokenOfLength(bytes, makeToken) {
  let n = Math.max(0, Math.floor(((bytes - makeToken('').length) * 3) / 4));
  let tok = makeToken('x'.repeat(n));
  while (tok.length < bytes) {
    n += Math.max(1, Math.floor(((bytes - tok.length) * 3) / 4));
    tok = makeToken('x'.repeat(n));
  }
  while (n > 0) {
    const shorter = makeToken('x'.repeat(n - 1));
    if (shorter.length < bytes) break;
    n -= 1;
    tok = shorter;
  }
  return tok;
}

export function randomSecret(bytes = 48) {
  return crypto.randomBytes(bytes).toString('hex');
}

// ---------------------------------------------------------------------------
// Keys, PEM and JWKS files.

export function rsaKeyPair() {
  return crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
}

export function ecKeyPair() {
  return crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
}

/** SubjectPublicKeyInfo PEM ("BEGIN PUBLIC KEY") of a public KeyObject. */
export function publicKeyPem(publicKey) {
  return publicKey.export({ type: 'spki', format: 'pem' });
}

/** A JWK of a public key: RSA {kty,n,e,kid,alg,use}, EC {kty:"EC",crv:"P-256",x,y,kid,alg,use}. */
export function publicJwk(publicKey, { kid, alg, use = 'sig' } = {}) {
  const jwk = publicKey.export({ format: 'jwk' });
  return {
    ...jwk,
    ...(kid !== undefined ? { kid } : {}),
    ...(alg !== undefined ? { alg } : {}),
    ...(use !== undefined ? { use } : {}),
  };
}

const tempDirs = new Set();
process.on('exit', () => {
  for (const dir of tempDirs) {
    try { rmSync(dir, { recursive: true, force: true }); } catch { /* best effort */ }
  }
});

/** A fresh temporary directory, removed when the test process exits. */
export async function tempDir(prefix = 'chatd-auth-') {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

/** Writes the PEM public key to dir/name; returns { file, pem } (pem: the exact bytes written). */
export async function writePublicKeyPem(dir, name, publicKey) {
  const file = path.join(dir, name);
  const pem = publicKeyPem(publicKey);
  await writeFile(file, pem);
  return { file, pem };
}

/** Writes {"keys":[...]} to dir/name; keys: JWK objects (see publicJwk). Returns the path. */
export async function writeJwks(dir, name, keys) {
  const file = path.join(dir, name);
  await writeFile(file, JSON.stringify({ keys }, null, 2));
  return file;
}

// ---------------------------------------------------------------------------
// api-keys files.

export function sha256Hex(s) {
  return crypto.createHash('sha256').update(Buffer.from(s, 'utf8')).digest('hex');
}

export function newApiKey() {
  return `ck_${crypto.randomBytes(24).toString('hex')}`;
}

/**
 * The text of an api-keys file: entries [{ key, user }] become
 * `<sha256 hex of key> <user>` lines; `extraLines` (comments, blanks, garbage)
 * are written first.
 */
export function apiKeysText(entries, extraLines = []) {
  return [...extraLines, ...entries.map(({ key, user }) => `${sha256Hex(key)} ${user}`)].join('\n') + '\n';
}

export async function writeApiKeysFile(file, entries, extraLines = []) {
  await writeFile(file, apiKeysText(entries, extraLines));
  return file;
}

// ---------------------------------------------------------------------------
// Requests as a user.

export function authHeaders(token) {
  return { Authorization: `Bearer ${token}` };
}

/**
 * asUser(srv, headers) binds a user's headers to a chatd: { api(method, path, body, extraHeaders),
 * createSession(body), send(sessionId, content, extraHeaders), content(id),
 * waitTerminal(id), stream(path, opts), rawSse(path, opts) }.
 * `record` (optional array) collects { what, status, text, headers } of every
 * answer, for leak scans.
 */
export function asUser(srv, headers, { record } = {}) {
  const keep = (what, r) => {
    if (record) {
      const h = [];
      r.headers?.forEach?.((v, k) => h.push(`${k}: ${v}`));
      record.push({ what, status: r.status, text: r.text, headers: h.join('\n') });
    }
    return r;
  };
  const u = {
    headers,
    api: async (method, p, body, extra = {}) => keep(`${method} ${p}`, await srv.api(method, p, body, { ...headers, ...extra })),
    async createSession(body = {}) {
      const r = await u.api('POST', '/sessions', body);
      if (r.status !== 201) throw new Error(`create session: expected 201, got ${r.status} ${r.text}`);
      return r.json;
    },
    async send(sessionId, content, extra = {}) {
      const r = await u.api('POST', `/sessions/${sessionId}/messages`, { content }, extra);
      if (r.status !== 202) throw new Error(`send: expected 202, got ${r.status} ${r.text}`);
      return r.json;
    },
    async content(messageId) {
      const r = await u.api('GET', `/messages/${messageId}/content`);
      if (r.status !== 200) throw new Error(`content of ${messageId}: expected 200, got ${r.status} ${r.text}`);
      return r.json;
    },
    waitTerminal: (messageId, timeoutMs = 30000) => waitFor(async () => {
      const c = await u.content(messageId);
      return ['completed', 'error', 'cancelled'].includes(c.status) ? c : null;
    }, { timeoutMs, intervalMs: 50, message: `message ${messageId} to reach a terminal status` }),
    stream: (p, opts = {}) => authStream(srv.url(API_PREFIX + p), { ...opts, headers: { ...headers, ...(opts.headers || {}) }, record }),
    /** A stream request read raw: status, headers, text; stops as soon as a 200 stream starts (or after timeoutMs). */
    async rawSse(p, { headers: extra = {}, method = 'GET', body, timeoutMs = 3000, until } = {}) {
      const r = await rawSseRequest(srv.url(API_PREFIX + p), { headers: { ...headers, ...extra }, method, body, timeoutMs, until });
      return keep(`${method} ${p} (stream)`, r);
    },
  };
  return u;
}

/**
 * A stream request with fetch: reads until the server ends the answer, until(text, res)
 * holds (default: as soon as a 200 answer starts, so a stream that should
 * have been refused does not hang the test), or timeoutMs. Returns
 * { status, headers, text, json, ended }.
 */
export async function rawSseRequest(url, { headers = {}, method = 'GET', body, timeoutMs = 3000, until } = {}) {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), timeoutMs);
  let res;
  try {
    res = await fetch(url, { method, body, headers: { Accept: 'text/event-stream', ...headers }, signal: ac.signal });
  } catch (err) {
    clearTimeout(timer);
    throw new Error(`${method} ${url} failed: ${err.cause?.message || err.message}`);
  }
  const stop = until || ((_text, r) => r.status === 200);
  const chunks = [];
  let ended = false;
  try {
    if (!stop('', res)) {
      const reader = res.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) { ended = true; break; }
        chunks.push(Buffer.from(value));
        if (stop(Buffer.concat(chunks).toString('utf8'), res)) break;
      }
    }
  } catch (err) {
    if (err.name !== 'AbortError') throw err;
  } finally {
    clearTimeout(timer);
    ac.abort();
  }
  const text = Buffer.concat(chunks).toString('utf8');
  let json = null;
  try { json = text.length ? JSON.parse(text) : null; } catch { json = null; }
  return { status: res.status, headers: res.headers, text, json, ended };
}

// ---------------------------------------------------------------------------
// SSE with credentials: the `eventsource` package, its fetch adding headers to every request.

const TERMINAL = new Set(['completed', 'error', 'cancelled']);
const authHandles = new Set();

/** Closes every authStream still open. */
export function closeAuthStreams() {
  for (const h of authHandles) h.close();
}

/**
 * Opens an SSE stream with the eventsource package; `headers` go on every
 * connection (also reconnections), `lastEventId` as Last-Event-ID on the first.
 * Handle: { events, errors, opens, responses, closed, terminal, close(),
 * deltas(), statuses(), opened(), waitForDeltas(n), waitForTerminal() }.
 * Events are { type, id, data, raw }. closeOnTerminal defaults to false.
 */
export function authStream(url, { headers = {}, lastEventId, onEvent, closeOnTerminal = false, record } = {}) {
  const handle = { url, events: [], errors: [], opens: 0, responses: [], closed: false, terminal: null, requests: 0 };
  const authFetch = async (input, init = {}) => {
    handle.requests += 1;
    const h = { ...(init.headers || {}), ...headers };
    if (lastEventId && handle.requests === 1) h['Last-Event-ID'] = lastEventId;
    const res = await fetch(input, { ...init, headers: h });
    handle.responses.push({ status: res.status });
    return res;
  };
  const es = new EventSource(url, { fetch: authFetch });
  handle.es = es;
  const recordEvent = (type) => (msg) => {
    if (handle.closed) return;
    let data;
    try { data = JSON.parse(msg.data); } catch { data = msg.data; }
    const ev = { type, id: msg.lastEventId, data, raw: msg.data };
    handle.events.push(ev);
    if (record) record.push({ what: `event on ${url}`, status: 200, text: `${type}\n${msg.lastEventId}\n${msg.data}`, headers: '' });
    if (type === 'status' && data && TERMINAL.has(data.status) && !handle.terminal) {
      handle.terminal = ev;
      if (closeOnTerminal) handle.close();
    }
    if (onEvent) onEvent(ev, handle);
  };
  es.addEventListener('delta', recordEvent('delta'));
  es.addEventListener('status', recordEvent('status'));
  es.addEventListener('message', recordEvent('message'));
  es.addEventListener('open', () => { handle.opens += 1; });
  es.addEventListener('error', (e) => {
    handle.errors.push({ code: e.code, message: e.message, readyState: es.readyState, at: handle.events.length });
  });
  authHandles.add(handle);
  handle.close = () => {
    authHandles.delete(handle);
    if (handle.closed) return;
    handle.closed = true;
    es.close();
  };
  handle.deltas = () => handle.events.filter((e) => e.type === 'delta');
  handle.statuses = () => handle.events.filter((e) => e.type === 'status');
  handle.opened = (timeoutMs = 10000) => waitFor(() => {
    if (handle.opens > 0) return true;
    const failed = handle.errors.find((e) => e.readyState === 2);
    if (failed) throw Object.assign(new Error(`stream ${url} failed: ${failed.code} ${failed.message}`), { fatal: true });
    return false;
  }, { timeoutMs, message: `SSE stream ${url} to open` });
  handle.waitForDeltas = (n, timeoutMs = 15000) => waitFor(
    () => handle.deltas().length >= n || handle.terminal !== null,
    { timeoutMs, intervalMs: 10, message: `${n} delta events on ${url}` },
  );
  handle.waitForTerminal = (timeoutMs = 30000) => waitFor(
    () => handle.terminal,
    { timeoutMs, intervalMs: 10, message: `terminal status event on ${url}` },
  );
  return handle;
}

/** withChatd that also closes every authStream when the body ends. */
export async function withAuthChatd(opts, body) {
  return withChatd(opts, async (srv) => {
    try {
      return await body(srv);
    } finally {
      closeAuthStreams();
    }
  });
}

// ---------------------------------------------------------------------------
// Raw HTTP/1.1 over node:net: every header byte chosen by the test.

/**
 * Sends one request on a fresh TCP connection and reads one response.
 *   headers: [[name, value], ...] or an object; Host is NOT added for you
 *     unless opts.host is given (pass host: null to send no Host at all).
 *   A `Connection: close` header is added; Content-Length when body is set.
 * Resolves { status, headers (a Headers object), text, json, raw }, or rejects
 * at the deadline.
 */
export function rawHttp(baseUrl, { method = 'GET', path: p = '/', headers = [], body, host, timeoutMs = 10000 } = {}) {
  const { hostname, port } = new URL(baseUrl);
  const list = Array.isArray(headers) ? [...headers] : Object.entries(headers);
  if (host !== undefined && host !== null) list.unshift(['Host', host]);
  list.push(['Connection', 'close']);
  const bodyBuf = body === undefined ? null : Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body), 'utf8');
  if (bodyBuf) list.push(['Content-Length', String(bodyBuf.length)]);
  const head = `${method} ${p} HTTP/1.1\r\n${list.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
  return new Promise((resolve, reject) => {
    const chunks = [];
    let done = false;
    const socket = net.connect({ host: hostname, port: Number(port) });
    const timer = setTimeout(() => finish(new Error(`raw ${method} ${p}: no complete answer within ${timeoutMs} ms; got ${JSON.stringify(Buffer.concat(chunks).toString('latin1').slice(0, 300))}`)), timeoutMs);
    function finish(err, value) {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err); else resolve(value);
    }
    socket.on('connect', () => {
      socket.write(head);
      if (bodyBuf) socket.write(bodyBuf);
    });
    socket.on('data', (chunk) => {
      chunks.push(chunk);
      const parsed = parseHttpResponse(Buffer.concat(chunks), false);
      if (parsed) finish(null, parsed);
    });
    socket.on('error', (err) => {
      const parsed = parseHttpResponse(Buffer.concat(chunks), true);
      if (parsed) finish(null, parsed); else finish(new Error(`raw ${method} ${p}: ${err.message}`));
    });
    socket.on('close', () => {
      const parsed = parseHttpResponse(Buffer.concat(chunks), true);
      if (parsed) finish(null, parsed);
      else finish(new Error(`raw ${method} ${p}: connection closed before a complete answer: ${JSON.stringify(Buffer.concat(chunks).toString('latin1').slice(0, 300))}`));
    });
  });
}

/** Parses one HTTP/1.1 response; null when incomplete (closed: the peer closed, body ends there). */
function parseHttpResponse(buf, closed) {
  const end = buf.indexOf('\r\n\r\n');
  if (end === -1) return null;
  const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0]);
  if (!m) return null;
  const headers = new Headers();
  for (const line of lines.slice(1)) {
    const i = line.indexOf(':');
    if (i > 0) headers.append(line.slice(0, i).trim(), line.slice(i + 1).trim());
  }
  let rest = buf.subarray(end + 4);
  let bodyBuf;
  const len = headers.get('content-length');
  if (/chunked/i.test(headers.get('transfer-encoding') || '')) {
    const parts = [];
    let ok = false;
    for (;;) {
      const nl = rest.indexOf('\r\n');
      if (nl === -1) break;
      const size = parseInt(rest.subarray(0, nl).toString('latin1'), 16);
      if (Number.isNaN(size)) break;
      if (size === 0) { ok = true; break; }
      if (rest.length < nl + 2 + size + 2) break;
      parts.push(rest.subarray(nl + 2, nl + 2 + size));
      rest = rest.subarray(nl + 2 + size + 2);
    }
    if (!ok && !closed) return null;
    bodyBuf = Buffer.concat(parts);
  } else if (len !== null) {
    if (rest.length < Number(len)) { if (!closed) return null; }
    bodyBuf = rest.subarray(0, Number(len));
  } else {
    if (!closed) return null;
    bodyBuf = rest;
  }
  const text = bodyBuf.toString('utf8');
  let json = null;
  try { json = text.length ? JSON.parse(text) : null; } catch { json = null; }
  return { status: Number(m[1]), headers, text, json, raw: buf.toString('latin1') };
}

// ---------------------------------------------------------------------------
// Start-up outcome: does chatd refuse to start with these flags?

/**
 * Spawns `$CHATD_BIN --port 0 --data-dir <tmp> ...args` with process.env minus
 * every CHATD_* variable (so the outer environment cannot change the outcome),
 * plus `env` (undefined/null removes). Resolves at the first of: the process
 * exits ({ outcome: 'exited', code, signal }), it prints "chatd listening on"
 * ({ outcome: 'listening' }; it is then stopped), or the deadline
 * ({ outcome: 'timeout' }; it is killed). Always with { stdout, stderr }.
 */
export async function startOutcome({ args = [], env = {}, timeoutMs = 15000 } = {}) {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'chatd-startup-'));
  const childEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('CHATD_')) childEnv[k] = v;
  }
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined || v === null) delete childEnv[k]; else childEnv[k] = String(v);
  }
  const argv = ['--port', '0', '--data-dir', dataDir, ...args];
  const proc = spawn(chatdBin(), argv, { stdio: ['ignore', 'pipe', 'pipe'], env: childEnv });
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (c) => { stdout += c.toString('utf8'); });
  proc.stderr.on('data', (c) => { stderr += c.toString('utf8'); });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  const spawnError = new Promise((resolve) => proc.on('error', (err) => resolve({ error: err })));
  let result;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await Promise.race([
      exited.then((e) => ({ outcome: 'exited', ...e })),
      spawnError.then((e) => ({ outcome: 'spawn-error', message: e.error.message })),
      new Promise((resolve) => setTimeout(() => resolve(null), 25)),
    ]);
    if (r) { result = r; break; }
    if (/chatd listening on/.test(stdout)) { result = { outcome: 'listening' }; break; }
    if (Date.now() >= deadline) { result = { outcome: 'timeout' }; break; }
  }
  if (result.outcome === 'listening' || result.outcome === 'timeout') {
    proc.kill(result.outcome === 'listening' ? 'SIGTERM' : 'SIGKILL');
    let timer;
    const stopped = await Promise.race([exited, new Promise((resolve) => { timer = setTimeout(() => resolve(null), 10000); })]);
    clearTimeout(timer);
    if (stopped === null) { proc.kill('SIGKILL'); await exited; }
  }
  await rm(dataDir, { recursive: true, force: true });
  return { ...result, stdout, stderr, argv };
}

/** Asserts startOutcome() refused to start: exited non-zero, never listening. */
export function assertRefused(o, label) {
  const why = `${label}: argv ${o.argv.join(' ')}\nstdout: ${o.stdout.slice(0, 500)}\nstderr: ${o.stderr.slice(-1500)}`;
  assert.equal(o.outcome, 'exited', `${label}: chatd should refuse to start, but it ${o.outcome === 'listening' ? 'started listening' : o.outcome}\n${why}`);
  assert.equal(o.signal, null, `${label}: a refusal is an orderly exit, not a crash (signal ${o.signal})\n${why}`);
  assert.notEqual(o.code, 0, `${label}: exit status must be non-zero\n${why}`);
  assert.doesNotMatch(o.stdout, /chatd listening/, `${label}: printed "chatd listening" before refusing\n${why}`);
}

/** Asserts startOutcome() started (printed "chatd listening on"). */
export function assertStarted(o, label) {
  assert.equal(o.outcome, 'listening', `${label}: chatd should start, but it ${o.outcome} (code ${o.code}, signal ${o.signal})\n` +
    `argv ${o.argv.join(' ')}\nstderr: ${o.stderr.slice(-1500)}`);
}

// ---------------------------------------------------------------------------
// Comparing answers.

/** Headers as sorted "name: value" lines, without those each answer has its
 * own of: Date and X-Request-Id (present on every answer: checked here). */
export function headerLines(headers) {
  const out = [];
  assert.match(headers.get('x-request-id') ?? '', /^.{1,128}$/, 'every answer carries X-Request-Id');
  headers.forEach((v, k) => {
    if (!['date', 'x-request-id'].includes(k.toLowerCase())) out.push(`${k.toLowerCase()}: ${v}`);
  });
  return out.sort();
}
