// SSE clients for the end-to-end tests.
//
// openStream() drives the real `eventsource` package. Its transport is a small
// fetch built on node:http with one fresh TCP connection per request (no
// keep-alive pool), so a test can prove that closing the client really closed
// the connection (handle.socketsClosed()). Optional lastEventId is sent as the
// Last-Event-ID header on the first request. The handle records every event.
//
// readRawSse() is a plain reader for checking the wire format and error answers.

import http from 'node:http';
import { Readable } from 'node:stream';
import { EventSource } from 'eventsource';
import { waitFor } from './chatd.mjs';

const TERMINAL = new Set(['completed', 'error', 'cancelled']);
const openHandles = new Set();

/** Closes every stream still open (a failed test must not leave reconnecting clients behind). */
export function closeAllStreams() {
  for (const h of openHandles) h.close();
}

function nodeHttpFetch(track, extraHeaders) {
  return (input, init = {}) => new Promise((resolve, reject) => {
    const url = new URL(typeof input === 'string' ? input : input.href ?? String(input));
    const headers = { ...(init.headers || {}) };
    if (extraHeaders && track.requests.length === 0) Object.assign(headers, extraHeaders);
    const req = http.request(url, { method: init.method || 'GET', headers, agent: false });
    track.requests.push({ url: url.href, headers });
    req.on('socket', (socket) => track.sockets.push(socket));
    const abort = () => {
      const err = new Error('The operation was aborted');
      err.name = 'AbortError';
      req.destroy(err);
      reject(err);
    };
    if (init.signal) {
      if (init.signal.aborted) { abort(); return; }
      init.signal.addEventListener('abort', abort, { once: true });
    }
    req.on('response', (res) => {
      const h = new Headers();
      for (const [k, v] of Object.entries(res.headers)) {
        if (v !== undefined) h.set(k, Array.isArray(v) ? v.join(', ') : v);
      }
      track.responses.push({ status: res.statusCode, headers: h });
      const nullBody = res.statusCode === 204 || res.statusCode === 304;
      if (nullBody) res.resume();
      // Swallow the stream error that our own abort causes after the response began.
      res.on('error', () => {});
      resolve(new Response(nullBody ? null : Readable.toWeb(res), { status: res.statusCode, headers: h }));
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * Opens an SSE stream with the eventsource package.
 *   url: full URL (may carry ?last_event_id=)
 *   opts.lastEventId: sent as the Last-Event-ID header on the first connection
 *   opts.onEvent(ev, handle): called synchronously for each delta/reasoning/status event;
 *     the callback may call handle.close() to stop at an exact event.
 *   opts.closeOnTerminal (default true): close on the first terminal status event.
 *
 * Events are { type, id, data, raw } with data parsed from JSON.
 */
export function openStream(url, { lastEventId, onEvent, closeOnTerminal = true } = {}) {
  const track = { requests: [], sockets: [], responses: [] };
  const handle = {
    url,
    events: [],
    errors: [],
    opens: 0,
    closed: false,
    terminal: null,
    track,
  };
  const extra = lastEventId ? { 'Last-Event-ID': lastEventId } : undefined;
  const es = new EventSource(url, { fetch: nodeHttpFetch(track, extra) });
  handle.es = es;

  const record = (type) => (msg) => {
    if (handle.closed) return;
    let data;
    try { data = JSON.parse(msg.data); } catch { data = msg.data; }
    const ev = { type, id: msg.lastEventId, data, raw: msg.data };
    handle.events.push(ev);
    if (type === 'status' && data && TERMINAL.has(data.status) && !handle.terminal) {
      handle.terminal = ev;
      if (closeOnTerminal) handle.close();
    }
    if (onEvent) onEvent(ev, handle);
  };
  es.addEventListener('delta', record('delta'));
  es.addEventListener('reasoning', record('reasoning'));
  es.addEventListener('status', record('status'));
  es.addEventListener('message', record('message'));
  es.addEventListener('open', () => { handle.opens += 1; });
  es.addEventListener('error', (e) => {
    handle.errors.push({ code: e.code, message: e.message, readyState: es.readyState, at: handle.events.length });
  });

  openHandles.add(handle);
  handle.close = () => {
    openHandles.delete(handle);
    if (handle.closed) return;
    handle.closed = true;
    es.close();
  };
  handle.deltas = () => handle.events.filter((e) => e.type === 'delta');
  handle.statuses = () => handle.events.filter((e) => e.type === 'status');
  handle.reasonings = () => handle.events.filter((e) => e.type === 'reasoning');
  /** All reasoning text received (optionally for one message). */
  handle.reasoning = (messageId) => Buffer.concat(handle.reasonings()
    .filter((e) => !messageId || e.data.message_id === messageId)
    .map((e) => Buffer.from(e.data.text, 'utf8'))).toString('utf8');
  /** UTF-8 bytes of all delta text received (optionally for one message). */
  handle.bytes = (messageId) => Buffer.concat(handle.deltas()
    .filter((e) => !messageId || e.data.message_id === messageId)
    .map((e) => Buffer.from(e.data.text, 'utf8')));
  handle.text = (messageId) => handle.bytes(messageId).toString('utf8');
  /** Resolves when the stream's first response arrived (rejects on an HTTP error). */
  handle.opened = (timeoutMs = 10000) => waitFor(() => {
    if (handle.opens > 0) return true;
    const failed = handle.errors.find((e) => e.readyState === 2 && e.code);
    if (failed) throw Object.assign(new Error(`stream failed: ${failed.message}`), { fatal: true });
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
  /** Resolves once every TCP connection this client made is closed. */
  handle.socketsClosed = (timeoutMs = 5000) => waitFor(
    () => track.sockets.length > 0 && track.sockets.every((s) => s.destroyed),
    { timeoutMs, intervalMs: 10, message: `client sockets of ${url} to close` },
  );
  /** Number of HTTP requests made (more than 1 means the client reconnected). */
  handle.connections = () => track.requests.length;
  return handle;
}

/** Parses SSE text into events { type, id, data, retry, comments }. */
export function parseSse(text) {
  const events = [];
  const comments = [];
  let retry = null;
  let cur = { type: 'message', id: undefined, dataLines: [] };
  let any = false;
  for (const line of text.split(/\r\n|\r|\n/)) {
    if (line === '') {
      if (any && cur.dataLines.length > 0) {
        events.push({ type: cur.type, id: cur.id, data: cur.dataLines.join('\n') });
      }
      cur = { type: 'message', id: undefined, dataLines: [] };
      any = false;
      continue;
    }
    if (line.startsWith(':')) { comments.push(line); continue; }
    const idx = line.indexOf(':');
    const field = idx === -1 ? line : line.slice(0, idx);
    let value = idx === -1 ? '' : line.slice(idx + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    any = true;
    if (field === 'event') cur.type = value;
    else if (field === 'id') cur.id = value;
    else if (field === 'data') cur.dataLines.push(value);
    else if (field === 'retry') retry = Number(value);
  }
  return { events, comments, retry };
}

/**
 * Raw request (GET unless opts.method) of an SSE URL with fetch. Reads until the server ends the response,
 * until(text, response) returns true, or the deadline; then aborts. Returns
 * { status, headers, text, ended, ...parseSse(text) }.
 */
export async function readRawSse(url, { headers = {}, until, timeoutMs = 15000, method = 'GET', body } = {}) {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), timeoutMs);
  let res;
  try {
    res = await fetch(url, { method, body, headers: { Accept: 'text/event-stream', ...headers }, signal: ac.signal });
  } catch (err) {
    clearTimeout(timer);
    throw new Error(`GET ${url} failed: ${err.cause?.message || err.message}`);
  }
  const chunks = [];
  let ended = false;
  let timedOut = false;
  try {
    const reader = res.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) { ended = true; break; }
      chunks.push(Buffer.from(value));
      if (until && until(Buffer.concat(chunks).toString('utf8'), res)) break;
    }
  } catch (err) {
    if (err.name === 'AbortError') timedOut = true; else throw err;
  } finally {
    clearTimeout(timer);
    ac.abort();
  }
  const text = Buffer.concat(chunks).toString('utf8');
  return { status: res.status, headers: res.headers, text, ended, timedOut, ...parseSse(text) };
}

/**
 * Checks that delta events form one gapless byte sequence starting at
 * startOffset: each offset equals the bytes received before it. Returns the
 * concatenated bytes. Throws an Error naming the first bad event.
 */
export function contiguousBytes(deltas, startOffset = 0) {
  let offset = startOffset;
  const parts = [];
  deltas.forEach((ev, i) => {
    const d = ev.data ?? ev;
    if (d.offset !== offset) {
      throw new Error(`delta #${i} has offset ${d.offset}, expected ${offset} (bytes received so far)`);
    }
    const b = Buffer.from(d.text, 'utf8');
    parts.push(b);
    offset += b.length;
  });
  return Buffer.concat(parts);
}

/**
 * Asserts that a stream's deltas (from startOffset on) carried exactly
 * `expected` bytes, explaining the usual ways it can go wrong.
 */
export function assertCarried(handle, expected, label, startOffset = 0) {
  const got = contiguousBytes(handle.deltas(), startOffset);
  if (got.equals(expected)) return got;
  let why = '';
  const t = handle.terminal;
  if (t) {
    const tIdx = handle.events.indexOf(t);
    const dIdx = handle.events.findIndex((e) => e.type === 'delta');
    if (dIdx === -1 || tIdx < dIdx) {
      why = `; its terminal status event (status ${t.data.status}, id ${t.id}) arrived as event #${tIdx + 1}, before any text ` +
        '(a client stops at the terminal status event, so it never gets the text)';
    }
  }
  throw new Error(`${label}: the stream carried ${got.length} bytes in ${handle.deltas().length} deltas ` +
    `(from offset ${startOffset}), expected ${expected.length} bytes${why}`);
}

/** Indexes of delta events of a message that arrive after its first terminal status event. */
export function deltasAfterTerminal(events, messageId) {
  const idOf = (e) => (e.type === 'delta' ? e.data.message_id : e.data?.id);
  const tIdx = events.findIndex((e) => e.type === 'status' && idOf(e) === messageId && TERMINAL.has(e.data.status));
  if (tIdx === -1) return [];
  return events.slice(tIdx + 1).filter((e) => e.type === 'delta' && idOf(e) === messageId);
}
