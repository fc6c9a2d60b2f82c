// A scriptable fake LLM upstream (OpenAI-compatible chat completions and
// Anthropic messages) for chatd's end-to-end tests. Node built-ins only.
//
//   const up = await startFakeUpstream({ tls: false });
//   up.script([{ fixture: 'openai-chat-basic.sse' }, { kind: 'error', status: 429, ... }]);
//   ... point chatd at up.url (and, with tls, --upstream-ca-file up.caFile) ...
//   await up.waitForRequests(1);  up.requests[0].body.messages ...
//   await up.close();
//
// Every incoming request consumes the next step of the queue, whatever its
// path. With the queue empty it is answered 500 with a JSON error and recorded
// with `unscripted: true` (up.unscripted() lists them), so a test that
// expected fewer requests fails visibly.
//
// ## Steps
//
// A step is an object, or a function (record) => step, called when the request
// has been read (record as in `requests` below).
//
// Stream (kind 'stream', the default): 200 text/event-stream, chunked.
//   fixture: 'openai-chat-basic.sse'   a file in ../shared/fixtures/providers
//   events:  [...]                     or inline events, each one of
//            'raw text'                written exactly as given (include the blank line)
//            { event?, id?, data }     data: string, or any value (JSON-encoded)
//            { comment: 'text' }       ': text'
//            (the fixture is split into events at its blank lines)
//   status: 200, headers: {}           response status and extra headers
//   headersDelayMs: 0                  wait before sending the response head
//   delayMs: 0                         wait between events
//   crlf: false                        end lines with CRLF instead of LF
//   chunkBytes: 0                      write each event in pieces of this many
//                                      bytes (splits lines and UTF-8 characters)
//   chunkDelayMs: 0                    wait between those pieces
//   dripMs: 0                          the whole body one byte at a time, this many ms apart
//   gates: { 3: 'g1' }                 before event #3 (0-based) wait until up.open('g1')
//   fault: { after: N, kind, ... }     after N events (0: right after the head):
//     kind 'reset'      TCP reset (socket.resetAndDestroy())
//     kind 'destroy'    socket.destroy() (FIN without the chunked terminator)
//     kind 'stall'      send nothing more, keep the socket open (until up.close())
//     kind 'cut'        end the response cleanly here (the remaining events are dropped)
//     kind 'malformed'  write one data line that is not JSON (fault.line overrides
//                       it), then go on with the remaining events
//     kind 'drip'       the remaining bytes one at a time, fault.ms apart (default 50)
//
// Error (kind 'error'): a vendor-shaped JSON error.
//   status: 429, headers: { 'Retry-After': '1' }
//   vendor: 'openai' | 'anthropic'     default: from the path (/v1/messages -> anthropic)
//   message, type, code, param         fields of the error body (defaults by status)
//   body                               a full body instead (object or string)
//   In message and body '{{api_key}}' is replaced by the key the
//   request carried (Authorization: Bearer … or x-api-key), as OpenAI echoes a
//   wrong key in its 401 message.
//
// Others:
//   { kind: 'json', status, headers, body }   any JSON answer
//   { kind: 'reset' }                        reset the connection without answering
//   { kind: 'hang' }                         answer nothing, keep the socket open
//
// ## Records
//
// up.requests[i] = { index, method, path, headers, body (parsed JSON, or the
// raw text when it is not JSON), rawBody, receivedAt (ms since epoch, when
// the body was complete), step, unscripted, eventsWritten, bytesWritten,
// lastWriteAt (when the last body bytes were handed to the socket),
// responseBody (the text of a JSON answer: error, json, unscripted),
// responseEndedAt, closedAt (when the request's socket closed, null while
// open), closed (a promise of closedAt), socketId }.
// up.tlsErrors: TLS handshakes that failed ({ at, message }).
// up.connections: number of TCP connections accepted.
//
// Standalone:
//   node tests/fake_upstream/fake_upstream.mjs --port 9000 [--tls] \
//        [--fixture openai-chat-basic.sse] [--delay-ms 100]
// serves the fixture to every request.

import http from 'node:http';
import https from 'node:https';
import { execFileSync } from 'node:child_process';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
/** Repository root: two levels up from tests/fake_upstream. */
export const REPO_ROOT = path.resolve(HERE, '../..');
/** ../shared/fixtures/providers relative to the repository root. */
export const FIXTURES_DIR = path.resolve(REPO_ROOT, '../shared/fixtures/providers');

/** The fixture file's text. */
export function readFixture(name) {
  return readFileSync(path.join(FIXTURES_DIR, name), 'utf8');
}

/** expected.json of the fixtures. */
export function expectedFixtures() {
  return JSON.parse(readFixture('expected.json'));
}

/** Splits SSE text into raw events, each ending with its blank line. */
export function splitSse(text) {
  const out = [];
  const re = /\r?\n\r?\n/g;
  let start = 0;
  let m;
  while ((m = re.exec(text)) !== null) {
    out.push(text.slice(start, m.index + m[0].length));
    start = m.index + m[0].length;
  }
  if (start < text.length) out.push(text.slice(start));
  return out;
}

/** One event (see the header) as raw SSE text with LF line ends. */
export function encodeEvent(ev) {
  if (typeof ev === 'string') return ev;
  let s = '';
  if (ev.comment !== undefined) s += `: ${ev.comment}\n`;
  if (ev.event !== undefined) s += `event: ${ev.event}\n`;
  if (ev.id !== undefined) s += `id: ${ev.id}\n`;
  if (ev.data !== undefined) {
    const data = typeof ev.data === 'string' ? ev.data : JSON.stringify(ev.data);
    for (const line of data.split('\n')) s += `data: ${line}\n`;
  }
  return `${s}\n`;
}

/**
 * OpenAI chat-completions chunks carrying `pieces` of text.
 *   finish: finish_reason of the last chunk (null: no finish chunk)
 *   usage: { prompt_tokens, completion_tokens } for a final usage chunk (null: none)
 *   done: end with `data: [DONE]`
 *   reasoning: pieces of thinking before the text, each in a delta's
 *     `reasoningField` ('reasoning_content' as DeepSeek, vLLM and llama.cpp
 *     send it; 'reasoning' as OpenRouter and Ollama do), with `content: null`
 */
export function openaiEvents(pieces, { finish = 'stop', usage = { prompt_tokens: 10, completion_tokens: 5 }, done = true, model = 'fake-model', id = 'chatcmpl-fake', reasoning = [], reasoningField = 'reasoning_content' } = {}) {
  const base = { id, object: 'chat.completion.chunk', created: 1727721900, model };
  const evs = [];
  evs.push({ data: { ...base, choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] } });
  for (const r of reasoning) {
    evs.push({ data: { ...base, choices: [{ index: 0, delta: { content: null, [reasoningField]: r }, finish_reason: null }] } });
  }
  for (const p of pieces) {
    evs.push({ data: { ...base, choices: [{ index: 0, delta: { content: p }, finish_reason: null }] } });
  }
  if (finish) evs.push({ data: { ...base, choices: [{ index: 0, delta: {}, finish_reason: finish }] } });
  if (usage) {
    evs.push({ data: { ...base, choices: [], usage: { ...usage, total_tokens: (usage.prompt_tokens || 0) + (usage.completion_tokens || 0) } } });
  }
  if (done) evs.push({ data: '[DONE]' });
  return evs;
}

/**
 * Anthropic messages events carrying `pieces` of text in one text block.
 *   end: false stops after the text deltas (no content_block_stop, message_delta, message_stop)
 *   stop: stop_reason; inputTokens / startOutputTokens in message_start; outputTokens in message_delta
 *   thinking: pieces of a thinking block (index 0, with its signature) before the text block
 */
export function anthropicEvents(pieces, { end = true, stop = 'end_turn', inputTokens = 10, startOutputTokens = 1, outputTokens = 5, model = 'claude-fake', id = 'msg_fake', thinking = [] } = {}) {
  const evs = [
    { event: 'message_start', data: { type: 'message_start', message: { id, type: 'message', role: 'assistant', content: [], model, stop_reason: null, stop_sequence: null, usage: { input_tokens: inputTokens, output_tokens: startOutputTokens } } } },
  ];
  const text = thinking.length ? 1 : 0;
  if (thinking.length) {
    evs.push({ event: 'content_block_start', data: { type: 'content_block_start', index: 0, content_block: { type: 'thinking', thinking: '', signature: '' } } });
    for (const t of thinking) {
      evs.push({ event: 'content_block_delta', data: { type: 'content_block_delta', index: 0, delta: { type: 'thinking_delta', thinking: t } } });
    }
    evs.push({ event: 'content_block_delta', data: { type: 'content_block_delta', index: 0, delta: { type: 'signature_delta', signature: 'EqQBCgIYAhIMfakesignature' } } });
    evs.push({ event: 'content_block_stop', data: { type: 'content_block_stop', index: 0 } });
  }
  evs.push({ event: 'content_block_start', data: { type: 'content_block_start', index: text, content_block: { type: 'text', text: '' } } });
  evs.push({ event: 'ping', data: { type: 'ping' } });
  for (const p of pieces) {
    evs.push({ event: 'content_block_delta', data: { type: 'content_block_delta', index: text, delta: { type: 'text_delta', text: p } } });
  }
  if (end) {
    evs.push({ event: 'content_block_stop', data: { type: 'content_block_stop', index: text } });
    evs.push({ event: 'message_delta', data: { type: 'message_delta', delta: { stop_reason: stop, stop_sequence: null }, usage: { output_tokens: outputTokens } } });
    evs.push({ event: 'message_stop', data: { type: 'message_stop' } });
  }
  return evs;
}

const OPENAI_ERRORS = {
  400: ['invalid_request_error', null, 'Invalid request.'],
  401: ['invalid_request_error', 'invalid_api_key', 'Incorrect API key provided.'],
  403: ['permission_denied', null, 'You are not allowed to sample from this model.'],
  404: ['invalid_request_error', 'model_not_found', 'The model does not exist or you do not have access to it.'],
  408: ['timeout', null, 'Request timed out.'],
  409: ['conflict', null, 'Conflict.'],
  429: ['rate_limit_exceeded', 'rate_limit_exceeded', 'Rate limit reached. Please try again in 1s.'],
  500: ['server_error', null, 'The server had an error while processing your request. Sorry about that!'],
  502: ['server_error', null, 'Bad gateway.'],
  503: ['server_error', null, 'The engine is currently overloaded, please try again later.'],
  504: ['server_error', null, 'Gateway timeout.'],
};
const ANTHROPIC_ERRORS = {
  400: ['invalid_request_error', 'messages: roles must alternate.'],
  401: ['authentication_error', 'invalid x-api-key'],
  403: ['permission_error', 'Your API key does not have permission to use the specified resource.'],
  404: ['not_found_error', 'model: claude-nope'],
  408: ['timeout_error', 'Request timed out.'],
  409: ['api_error', 'Conflict.'],
  429: ['rate_limit_error', 'Number of request tokens has exceeded your per-minute rate limit.'],
  500: ['api_error', 'Internal server error.'],
  502: ['api_error', 'Bad gateway.'],
  503: ['api_error', 'Service unavailable.'],
  504: ['api_error', 'Gateway timeout.'],
  529: ['overloaded_error', 'Overloaded'],
};

/** The vendor-shaped error body for a status. */
export function errorBody(vendor, status, { message, type, code, param } = {}) {
  if (vendor === 'anthropic') {
    const [t, m] = ANTHROPIC_ERRORS[status] || ['api_error', `HTTP ${status}`];
    return { type: 'error', error: { type: type ?? t, message: message ?? m } };
  }
  const [t, c, m] = OPENAI_ERRORS[status] || ['server_error', null, `HTTP ${status}`];
  return { error: { message: message ?? m, type: type ?? t, param: param ?? null, code: code ?? c } };
}

function delay(ms) {
  return ms > 0 ? new Promise((r) => setTimeout(r, ms)) : Promise.resolve();
}

function makeCert() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fake-upstream-tls-'));
  const keyFile = path.join(dir, 'key.pem');
  const certFile = path.join(dir, 'cert.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1',
    '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
    '-keyout', keyFile, '-out', certFile,
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  return { dir, keyFile, certFile, key: readFileSync(keyFile), cert: readFileSync(certFile) };
}

/** A TCP reset where the socket supports it (plain TCP), else a plain destroy. */
function resetSocket(socket) {
  try {
    socket.resetAndDestroy();
  } catch {
    const raw = socket._parent || socket;
    try { raw.resetAndDestroy(); } catch { raw.destroy(); }
    socket.destroy();
  }
}

/** Resolves once the socket has handed everything written to the kernel, plus a moment for loopback delivery. */
async function flushed(socket) {
  const deadline = Date.now() + 2000;
  while (!socket.destroyed && socket.writableLength > 0 && Date.now() < deadline) await delay(5);
  await delay(30);
}

function keyOf(headers) {
  const auth = headers.authorization;
  if (typeof auth === 'string' && /^Bearer /i.test(auth)) return auth.slice(7);
  if (typeof headers['x-api-key'] === 'string') return headers['x-api-key'];
  return '';
}

/**
 * Starts the fake upstream on 127.0.0.1 (a free port unless `port` is given).
 * With tls, serves HTTPS with a fresh self-signed certificate for localhost.
 */
export async function startFakeUpstream({ tls = false, port = 0 } = {}) {
  let cert = null;
  if (tls) cert = makeCert();

  const queue = [];
  const requests = [];
  const tlsErrors = [];
  const sockets = new Set();
  const gates = new Map(); // name -> { promise, resolve }
  let closing = false;
  let nextSocketId = 1;
  let connections = 0;

  const gate = (name) => {
    let g = gates.get(name);
    if (!g) {
      let resolve;
      const promise = new Promise((r) => { resolve = r; });
      g = { promise, resolve };
      gates.set(name, g);
    }
    return g;
  };

  const onConnection = (socket) => {
    connections += 1;
    socket.fakeId = nextSocketId++;
    socket.closedAt = null;
    socket.setNoDelay(true);
    sockets.add(socket);
    socket.on('error', () => {});
    socket.closedPromise = new Promise((resolve) => {
      socket.on('close', () => {
        socket.closedAt = Date.now();
        sockets.delete(socket);
        resolve(socket.closedAt);
      });
    });
  };

  const handler = (req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('error', () => {});
    res.on('error', () => {});
    req.on('end', () => {
      const rawBody = Buffer.concat(chunks).toString('utf8');
      let body = rawBody;
      try { body = rawBody.length ? JSON.parse(rawBody) : null; } catch { body = rawBody; }
      // The connection's socket (for https the TLSSocket, registered on 'secureConnection').
      const socket = req.socket;
      const rec = {
        index: requests.length,
        method: req.method,
        path: req.url,
        headers: { ...req.headers },
        body,
        rawBody,
        receivedAt: Date.now(),
        step: null,
        unscripted: false,
        eventsWritten: 0,
        bytesWritten: 0,
        lastWriteAt: null,
        responseEndedAt: null,
        socketId: socket.fakeId,
        get closedAt() { return socket.closedAt ?? null; },
        closed: socket.closedPromise || new Promise(() => {}),
      };
      requests.push(rec);
      let step = queue.shift();
      if (typeof step === 'function') step = step(rec);
      if (!step) {
        rec.unscripted = true;
        sendJson(res, rec, 500, {}, { error: { message: `fake upstream: no scripted response for request #${rec.index} (${req.method} ${req.url})`, type: 'server_error', param: null, code: 'unscripted' } });
        return;
      }
      rec.step = step;
      serve(step, rec, req, res).catch((err) => {
        rec.serveError = String(err && err.stack || err);
        try { res.destroy(); } catch { /* gone */ }
      });
    });
  };

  const sendJson = (res, rec, status, headers, body) => {
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers });
    res.end(text, () => { rec.responseEndedAt = Date.now(); });
    rec.bytesWritten += Buffer.byteLength(text);
    rec.responseBody = text;
  };

  const gone = (res) => closing || res.destroyed || res.socket == null || res.socket.destroyed;

  const write = (res, rec, buf) => new Promise((resolve) => {
    if (gone(res)) { resolve(false); return; }
    rec.bytesWritten += buf.length;
    res.write(buf, () => { rec.lastWriteAt = Date.now(); resolve(true); });
  });

  async function writeSplit(res, rec, buf, pieceBytes, pieceDelayMs) {
    if (!pieceBytes || pieceBytes >= buf.length) return write(res, rec, buf);
    for (let i = 0; i < buf.length; i += pieceBytes) {
      if (i > 0) await delay(pieceDelayMs);
      if (!(await write(res, rec, buf.subarray(i, i + pieceBytes)))) return false;
    }
    return true;
  }

  async function serve(step, rec, req, res) {
    const kind = step.kind || 'stream';
    const socket = req.socket;
    if (kind === 'reset') {
      resetSocket(socket);
      return;
    }
    if (kind === 'hang') return; // the socket stays open until the client or close() ends it
    if (kind === 'json') {
      sendJson(res, rec, step.status ?? 200, step.headers || {}, step.body ?? {});
      return;
    }
    if (kind === 'error') {
      const vendor = step.vendor || (rec.path.includes('/messages') && !rec.path.includes('/chat/') ? 'anthropic' : 'openai');
      const status = step.status ?? 500;
      const key = keyOf(rec.headers);
      const fill = (s) => (typeof s === 'string' ? s.split('{{api_key}}').join(key) : s);
      // In an object body every string may hold the placeholder (JSON-escaped key).
      const fillJson = (v) => JSON.parse(JSON.stringify(v).split('{{api_key}}').join(JSON.stringify(key).slice(1, -1)));
      const body = step.body !== undefined ? (typeof step.body === 'string' ? fill(step.body) : fillJson(step.body))
        : errorBody(vendor, status, { message: fill(step.message), type: step.type, code: step.code, param: step.param });
      sendJson(res, rec, status, step.headers || {}, body);
      return;
    }
    if (kind !== 'stream') throw new Error(`fake upstream: unknown step kind ${kind}`);

    let events;
    if (step.fixture) events = splitSse(readFixture(step.fixture));
    else events = (step.events || []).map(encodeEvent);
    const eol = (s) => (step.crlf ? s.replace(/\r?\n/g, '\r\n') : s);
    const bufs = events.map((e) => Buffer.from(eol(e), 'utf8'));
    const fault = step.fault || null;
    let pieceBytes = step.chunkBytes || 0;
    let pieceDelay = step.chunkDelayMs || 0;
    if (step.dripMs) { pieceBytes = 1; pieceDelay = step.dripMs; }

    await delay(step.headersDelayMs || 0);
    if (gone(res)) return;
    res.writeHead(step.status ?? 200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache',
      ...(step.headers || {}),
    });
    res.flushHeaders();

    for (let i = 0; i <= bufs.length; i++) {
      if (fault && fault.after === i) {
        const k = fault.kind;
        if (k === 'reset' || k === 'destroy') {
          // What was written must reach the peer before the connection goes
          // (a reset discards data still in the send path, TLS buffers it).
          await flushed(socket);
          if (k === 'reset') resetSocket(socket); else socket.destroy();
          return;
        }
        if (k === 'stall') return;
        if (k === 'cut') break;
        if (k === 'malformed') {
          const line = fault.line ?? 'data: {"choices":[{"index":0,"delta":{"content":"oops"}\n\n';
          if (!(await write(res, rec, Buffer.from(eol(line), 'utf8')))) return;
        }
        if (k === 'drip') { pieceBytes = 1; pieceDelay = fault.ms ?? 50; }
      }
      if (i === bufs.length) break;
      const gateName = step.gates && step.gates[i];
      if (gateName) {
        await gate(gateName).promise;
        if (gone(res)) return;
      }
      if (i > 0) await delay(step.delayMs || 0);
      if (i > 0 && pieceBytes === 1 && pieceDelay) await delay(pieceDelay);
      if (!(await writeSplit(res, rec, bufs[i], pieceBytes, pieceDelay))) return;
      rec.eventsWritten = i + 1;
    }
    if (gone(res)) return;
    res.end(() => { rec.responseEndedAt = Date.now(); });
  }

  const server = tls
    ? https.createServer({ key: cert.key, cert: cert.cert }, handler)
    : http.createServer(handler);
  server.keepAliveTimeout = 60000;
  server.headersTimeout = 0;
  server.requestTimeout = 0;
  // For https the TCP socket comes through 'connection', the TLS socket through 'secureConnection'.
  if (tls) {
    server.on('secureConnection', onConnection);
    server.on('tlsClientError', (err) => { tlsErrors.push({ at: Date.now(), message: err.message }); });
  } else {
    server.on('connection', onConnection);
  }
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => { server.off('error', reject); resolve(); });
  });
  const actualPort = server.address().port;

  const up = {
    url: tls ? `https://localhost:${actualPort}` : `http://127.0.0.1:${actualPort}`,
    ipUrl: `${tls ? 'https' : 'http'}://127.0.0.1:${actualPort}`,
    port: actualPort,
    tls,
    caFile: cert ? cert.certFile : null,
    requests,
    tlsErrors,
    get connections() { return connections; },
    /** Appends steps to the queue. */
    script(steps) { queue.push(...steps); return up; },
    /** Steps not yet consumed. */
    pending() { return queue.length; },
    /** Drops the steps not yet consumed. */
    clearScript() { queue.length = 0; },
    /** Requests that found the queue empty. */
    unscripted() { return requests.filter((r) => r.unscripted); },
    /** Lets the streams waiting at gate `name` go on (also before they reach it). */
    open(name) { gate(name).resolve(); },
    /** Resolves with requests once at least n were received. */
    waitForRequests(n, timeoutMs = 10000) {
      const deadline = Date.now() + timeoutMs;
      return new Promise((resolve, reject) => {
        const tick = () => {
          if (requests.length >= n) { resolve(requests); return; }
          if (Date.now() >= deadline) {
            reject(new Error(`fake upstream: timed out after ${timeoutMs} ms waiting for ${n} requests (got ${requests.length})`));
            return;
          }
          setTimeout(tick, 10);
        };
        tick();
      });
    },
    /** Clears records and queue between tests sharing one upstream. */
    reset() { queue.length = 0; requests.length = 0; tlsErrors.length = 0; },
    async close() {
      closing = true;
      for (const g of gates.values()) g.resolve();
      for (const s of sockets) s.destroy();
      server.closeAllConnections?.();
      await new Promise((resolve) => server.close(() => resolve()));
      if (cert) rmSync(cert.dir, { recursive: true, force: true });
    },
  };
  return up;
}

// ---------------------------------------------------------------------------
// Standalone: node fake_upstream.mjs --port 9000 [--tls] [--fixture NAME] [--delay-ms N]

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const opt = (name, dflt) => {
    const i = args.indexOf(name);
    return i === -1 ? dflt : args[i + 1];
  };
  const fixture = opt('--fixture', 'openai-chat-basic.sse');
  const delayMs = Number(opt('--delay-ms', '0'));
  const up = await startFakeUpstream({ tls: args.includes('--tls'), port: Number(opt('--port', '0')) });
  // Endless: every request gets the fixture.
  const again = () => { up.script([() => { again(); return { fixture, delayMs }; }]); };
  again();
  console.log(`fake upstream on ${up.url} serving ${fixture}${up.caFile ? ` (CA file ${up.caFile})` : ''}`);
  const stop = async () => { await up.close(); process.exit(0); };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
