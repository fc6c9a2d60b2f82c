// chatd's reference chat UI: a list of sessions, a conversation whose
// assistant answer streams in, Stop, and recovery from reload, closed tabs,
// dropped networks and other tabs (DESIGN.md §4).
//
// The page's model (state.messages) holds every message's text with its UTF-8
// byte length (text.js). Text enters it only two ways: stream deltas, applied
// by byte offset (a duplicate is skipped, a gap makes the page re-fetch the
// content endpoint and re-attach from its cursor), and committed whole texts
// (history, content endpoint, poll, cancel), kept when longer. The DOM is
// re-rendered from the model at most once per animation frame; user text goes
// in through textContent, assistant text through markdown.js.
//
// Each tab holds one SSE connection: the session stream, read with fetch()
// (sse.js) so it can send the token and Last-Event-ID. Opened with the
// content endpoint's cursor it carries the rest of the generating message and
// every later generation (also ones started in another tab). When it drops
// the page reconnects with backoff from the last event id; after three
// failures in a row it polls until the stream works again.
//
// The API token (Settings) lives in localStorage and is sent as
// `Authorization: Bearer …`; it never goes into a URL or a log line.
// window.__chatd is a read-only view of the model for tests and debugging.

import { SseParser, readSseBody } from './sse.js';
import { MessageText, utf8Length } from './text.js';
import { renderAssistant, renderPlain, markdownAvailable } from './markdown.js';

const API = '/api/v1/chat';
const TOKEN_KEY = 'chatd.token';
const TERMINAL = new Set(['completed', 'error', 'cancelled']);
const FAILURES_BEFORE_POLLING = 3;
const FIRST_RETRY_MS = 500;
const MAX_RETRY_MS = 5000;
const POLL_INTERVAL_MS = 1000;
const HEALTHY_AFTER_MS = 3000;  // a stream open this long (or with an event) is healthy
const STALL_MS = 45000;         // no byte at all (heartbeats are 15 s by default)
const TRACE_LIMIT = 5000;
const SESSION_PAGE = 50;

const CONN_TEXT = {
  idle: '',
  connecting: 'Connecting…',
  live: 'Live',
  reconnecting: 'Reconnecting…',
  polling: 'Polling (stream unavailable)',
  unauthorized: 'Not authorized',
  gone: 'Session not found',
};

const STATUS_TEXT = {
  generating: 'generating',
  completed: 'completed',
  cancelled: 'cancelled',
  error: 'error',
};

const state = {
  sessions: [],
  sessionsNext: null,
  sessionId: null,
  session: null,
  messages: new Map(),  // id -> Msg
  follower: null,
  openSeq: 0,
  conn: 'idle',
  sending: false,
  cancelling: false,
  pendingSend: null,  // { sessionId, text, key }: a failed send is retried with the same key
  trace: [],
};

const els = {};

// ---------------------------------------------------------------------------
// API

class ApiError extends Error {
  constructor(status, code, message, body) {
    super(message);
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

function getToken() {
  try {
    return localStorage.getItem(TOKEN_KEY) || '';
  } catch {
    return '';
  }
}

function authHeaders(extra = {}) {
  const headers = { ...extra };
  const token = getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  return headers;
}

async function api(method, path, { body, headers = {}, signal } = {}) {
  const h = authHeaders({ Accept: 'application/json', ...headers });
  if (body !== undefined) h['Content-Type'] = 'application/json';
  const res = await fetch(API + path, {
    method,
    headers: h,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
    cache: 'no-store',
    credentials: 'same-origin',
  });
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!res.ok) {
    const err = json && json.error ? json.error : {};
    throw new ApiError(res.status, err.code || `http_${res.status}`,
                       err.message || `HTTP ${res.status}`, json);
  }
  return json;
}

function newIdempotencyKey() {
  if (globalThis.crypto && typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

// ---------------------------------------------------------------------------
// Model

function trace(entry) {
  state.trace.push({ at: Math.round(performance.now()), ...entry });
  if (state.trace.length > TRACE_LIMIT) state.trace.splice(0, state.trace.length - TRACE_LIMIT);
}

function newMsg(m) {
  return {
    id: m.id,
    role: m.role || 'assistant',
    status: m.status || 'generating',
    version: typeof m.version === 'number' ? m.version : 0,
    error: m.error || null,
    finishReason: m.finish_reason || null,
    text: new MessageText(),
    el: null,
    renderedBytes: -1,
    renderedStatus: null,
    nextRenderAt: 0,
  };
}

function insertMsg(msg) {
  state.messages.set(msg.id, msg);
  scheduleRender(msg);
}

// Status fields of m (a message, a status event or a content answer). A
// terminal status is never replaced by a non-terminal one; otherwise the
// higher version wins.
function applyStatusFields(msg, m) {
  if (!m.status) return;
  const oursTerminal = TERMINAL.has(msg.status);
  const theirsTerminal = TERMINAL.has(m.status);
  if (oursTerminal && !theirsTerminal) return;
  const version = typeof m.version === 'number' ? m.version : null;
  if (version !== null && version < msg.version && !(theirsTerminal && !oursTerminal)) return;
  msg.status = m.status;
  if (version !== null) msg.version = Math.max(msg.version, version);
  if ('error' in m) msg.error = m.error || null;
  if ('finish_reason' in m) msg.finishReason = m.finish_reason || null;
}

// Merges a message object (with or without content) into the model.
function mergeMessage(m, source, { onlyNew = false } = {}) {
  if (!m || !m.id) return null;
  if (m.session_id && m.session_id !== state.sessionId) return null;
  let msg = state.messages.get(m.id);
  if (!msg) {
    msg = newMsg(m);
    insertMsg(msg);
  } else if (onlyNew) {
    return msg;
  }
  if (typeof m.content === 'string') {
    const result = msg.text.extend(m.content);
    trace({ kind: source, id: msg.id, bytes: msg.text.bytes, result });
  }
  applyStatusFields(msg, m);
  scheduleRender(msg);
  return msg;
}

function applyDelta(d) {
  let msg = state.messages.get(d.message_id);
  if (!msg) {
    msg = newMsg({ id: d.message_id, role: 'assistant', status: 'generating' });
    insertMsg(msg);
    scheduleHistorySync();
  }
  const result = msg.text.apply(d.offset, d.text);
  trace({ kind: 'delta', id: msg.id, offset: d.offset, length: utf8Length(d.text), result });
  if (result !== 'gap' && result !== 'duplicate') scheduleRender(msg);
  return result;
}

function applyStatusEvent(m) {
  const known = state.messages.has(m.id);
  const fields = { ...m };
  delete fields.content;  // status events carry no content; text comes from deltas only
  mergeMessage(fields, 'status');
  trace({ kind: 'status', id: m.id, status: m.status });
  // A generation this tab did not start: fetch its user message too.
  if (!known) scheduleHistorySync();
}

function sortedMessages() {
  return [...state.messages.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

function generatingMessage() {
  let found = null;
  for (const m of state.messages.values()) {
    if (m.role === 'assistant' && m.status === 'generating' && (!found || m.id > found.id)) found = m;
  }
  return found;
}

let historySyncTimer = null;
function scheduleHistorySync() {
  if (historySyncTimer !== null) return;
  historySyncTimer = setTimeout(() => {
    historySyncTimer = null;
    syncHistory({ onlyNew: true }).catch((err) => console.warn('[chatd] history sync failed:', err.message));
  }, 50);
}

// Adds messages the page has not seen (e.g. the user message of a send made in
// another tab). onlyNew: leave known messages to the stream, except one the
// page still holds as generating that has ended: a stream opened without a
// cursor does not replay a generation that ended before it opened.
async function syncHistory({ onlyNew }) {
  const sid = state.sessionId;
  if (!sid) return;
  const r = await api('GET', `/sessions/${encodeURIComponent(sid)}/messages`);
  if (sid !== state.sessionId) return;
  let added = false;
  for (const m of r.messages || []) {
    const known = state.messages.get(m.id);
    if (!known) added = true;
    const ended = known && known.status === 'generating' && TERMINAL.has(m.status);
    mergeMessage(m, 'history', { onlyNew: onlyNew && !ended });
  }
  if (added) refreshSessions();
}

// ---------------------------------------------------------------------------
// Rendering (at most once per frame)

const dirty = new Set();
let renderPending = false;

function scheduleRender(msg) {
  if (msg) dirty.add(msg);
  if (renderPending) return;
  renderPending = true;
  // rAF does not run in hidden tabs; nobody sees them, but keep them current.
  if (document.hidden) setTimeout(renderFrame, 250);
  else requestAnimationFrame(renderFrame);
}

function renderFrame() {
  renderPending = false;
  const stick = nearBottom();
  const now = performance.now();
  let deferred = false;
  for (const msg of [...dirty]) {
    if (msg.nextRenderAt > now && msg.renderedBytes >= 0) {
      deferred = true;
      continue;
    }
    dirty.delete(msg);
    if (state.messages.get(msg.id) === msg) renderMessage(msg);
  }
  els.empty.hidden = state.messages.size > 0;
  updateComposer();
  if (stick) els.messages.scrollTop = els.messages.scrollHeight;
  if (deferred) {
    renderPending = true;
    setTimeout(renderFrame, 50);
  }
}

function nearBottom() {
  const m = els.messages;
  return m.scrollHeight - m.scrollTop - m.clientHeight < 80;
}

function buildMessageElement(msg) {
  const el = document.createElement('article');
  el.className = `msg msg-${msg.role}`;
  el.dataset.id = msg.id;
  el.dataset.role = msg.role;
  const meta = document.createElement('div');
  meta.className = 'msg-meta';
  const who = document.createElement('span');
  who.className = 'msg-role';
  who.textContent = msg.role === 'user' ? 'You' : msg.role === 'assistant' ? 'Assistant' : 'System';
  meta.append(who);
  const badge = document.createElement('span');
  badge.className = 'badge';
  const err = document.createElement('span');
  err.className = 'msg-error';
  if (msg.role === 'assistant') meta.append(badge, err);
  const body = document.createElement('div');
  body.className = msg.role === 'assistant' ? 'msg-body md' : 'msg-body plain';
  el.append(meta, body);
  msg.el = el;
  msg.badge = badge;
  msg.errorEl = err;
  msg.body = body;

  // Keep the DOM in id order (ids are time-sortable).
  let before = null;
  for (const other of els.messages.querySelectorAll('article.msg')) {
    if (other.dataset.id > msg.id) {
      before = other;
      break;
    }
  }
  els.messages.insertBefore(el, before);
}

function renderMessage(msg) {
  if (!msg.el) buildMessageElement(msg);
  if (msg.renderedStatus !== msg.status || msg.renderedError !== msg.error) {
    msg.el.dataset.status = msg.status;
    msg.badge.dataset.status = msg.status;
    msg.badge.textContent = STATUS_TEXT[msg.status] || msg.status;
    msg.errorEl.textContent = msg.status === 'error' && msg.error
      ? (msg.error.message || msg.error.code || 'error') : '';
    msg.renderedStatus = msg.status;
    msg.renderedError = msg.error;
  }
  if (msg.renderedBytes !== msg.text.bytes) {
    const started = performance.now();
    if (msg.role === 'assistant') renderAssistant(msg.body, msg.text.text);
    else renderPlain(msg.body, msg.text.text);
    msg.renderedBytes = msg.text.bytes;
    // Huge answers: keep re-rendering from taking every frame.
    const took = performance.now() - started;
    msg.nextRenderAt = took > 8 ? performance.now() + took * 4 : 0;
  }
}

function clearConversation() {
  state.messages.clear();
  dirty.clear();
  for (const el of els.messages.querySelectorAll('article.msg')) el.remove();
  els.empty.hidden = false;
}

function updateComposer() {
  const generating = state.sessionId ? generatingMessage() : null;
  els.stop.hidden = !generating;
  els.send.hidden = Boolean(generating);
  els.stop.disabled = state.cancelling;
  els.send.disabled = state.sending;
  els.input.setAttribute('aria-busy', state.sending ? 'true' : 'false');
}

function setConn(conn) {
  if (state.conn === conn) return;
  state.conn = conn;
  els.conn.dataset.state = conn;
  els.conn.textContent = CONN_TEXT[conn] ?? conn;
  console.info(`[chatd] connection: ${conn}`);
}

function showBanner(text) {
  els.bannerText.textContent = text;
  els.banner.hidden = false;
}

function hideBanner() {
  els.banner.hidden = true;
  els.bannerText.textContent = '';
}

function handleAuthError(err) {
  if (err && (err.status === 401 || err.status === 403)) {
    setConn('unauthorized');
    showBanner(`Not authorized (${err.message}). Set an API token in Settings.`);
    els.settings.open = true;
    return true;
  }
  return false;
}

// ---------------------------------------------------------------------------
// The session stream, with reconnect and the poll fallback

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.wake = () => {
      clearTimeout(timer);
      resolve();
    };
  });
}

class SessionFollower {
  constructor(sessionId, cursor) {
    this.sessionId = sessionId;
    this.lastEventId = cursor || null;
    this.stopped = false;
    this.failures = 0;
    this.retryMs = FIRST_RETRY_MS;
    this.ctrl = null;
    this.open = false;
    this.healthy = false;
    this.healthyTimer = null;
    this.resyncId = null;
    this.polling = false;
    this.pollSince = null;
    this.backoff = {};
    this.pollWait = {};
    this.pollGeneration = 0;
    this.lastResyncAt = -Infinity;
    this.opens = 0;
  }

  start() {
    this.run().catch((err) => console.error('[chatd] session stream loop failed:', err));
  }

  stop() {
    this.stopped = true;
    this.polling = false;
    clearTimeout(this.healthyTimer);
    if (this.ctrl) this.ctrl.abort();
    this.backoff.wake?.();
    this.pollWait.wake?.();
  }

  // The browser says the network is back: try now instead of after the backoff.
  nudge() {
    this.backoff.wake?.();
  }

  // The browser says the network is gone: do not wait for the socket to notice.
  dropped() {
    if (this.ctrl && this.open) this.ctrl.abort(new Error('offline'));
  }

  async run() {
    while (!this.stopped) {
      const outcome = await this.connectOnce();
      if (this.stopped) return;
      if (outcome === 'fatal') {
        this.stopPolling();
        return;
      }
      if (outcome === 'resync') {
        await this.resync();
        continue;
      }
      this.failures = outcome === 'dropped' && this.healthy ? 1 : this.failures + 1;
      this.healthy = false;
      if (this.failures >= FAILURES_BEFORE_POLLING) this.startPolling();
      setConn(this.polling ? 'polling' : 'reconnecting');
      const wait = Math.min(this.retryMs * 2 ** (this.failures - 1), MAX_RETRY_MS);
      console.info(`[chatd] stream ${outcome}; retry ${this.failures} in ${wait} ms`);
      await sleep(wait, this.backoff);
    }
  }

  // One connection. Returns 'dropped' (it was open and ended), 'failed' (it did
  // not open), 'resync' (a gap: re-fetch content) or 'fatal' (stop trying).
  async connectOnce() {
    const ctrl = new AbortController();
    this.ctrl = ctrl;
    this.open = false;
    const headers = authHeaders({ Accept: 'text/event-stream' });
    if (this.lastEventId) headers['Last-Event-ID'] = this.lastEventId;
    const url = `${API}/messages/stream?session_id=${encodeURIComponent(this.sessionId)}`;
    if (!this.polling) setConn(this.opens === 0 ? 'connecting' : 'reconnecting');
    let res;
    try {
      res = await fetch(url, { headers, signal: ctrl.signal, cache: 'no-store', credentials: 'same-origin' });
    } catch (err) {
      if (!this.stopped) console.warn(`[chatd] stream request failed: ${err.message}`);
      return 'failed';
    }
    if (this.stopped) {
      ctrl.abort();
      return 'failed';
    }
    if (!res.ok) {
      let body = null;
      try {
        body = await res.json();
      } catch {
        body = null;
      }
      if (this.stopped) return 'failed';
      const e = body && body.error ? body.error : {};
      const err = new ApiError(res.status, e.code || `http_${res.status}`, e.message || `HTTP ${res.status}`, body);
      console.warn(`[chatd] stream answered ${res.status} ${err.code}`);
      if (handleAuthError(err)) return 'fatal';
      if (res.status === 404) {
        setConn('gone');
        showBanner('This session does not exist (or is not yours).');
        return 'fatal';
      }
      if (res.status === 400 && err.code === 'invalid_cursor') {
        // Start over from the history: a stream without a cursor plus a sync.
        this.lastEventId = null;
        return 'failed';
      }
      return 'failed';
    }
    const type = res.headers.get('content-type') || '';
    if (!type.startsWith('text/event-stream')) {
      ctrl.abort();
      console.warn(`[chatd] stream answered ${type || 'no content type'}, not an event stream`);
      return 'failed';
    }

    this.open = true;
    this.opens += 1;
    setConn('live');
    console.info('[chatd] stream open');
    this.healthyTimer = setTimeout(() => this.markHealthy(), HEALTHY_AFTER_MS);
    // Anything that started and ended while this tab was not listening.
    syncHistory({ onlyNew: true }).catch((err) => console.warn('[chatd] history sync failed:', err.message));

    let stallTimer = null;
    const alive = () => {
      clearTimeout(stallTimer);
      stallTimer = setTimeout(() => ctrl.abort(new Error('stalled')), STALL_MS);
    };
    alive();
    const parser = new SseParser((ev) => this.onEvent(ev, ctrl), {
      onRetry: (ms) => {
        this.retryMs = Math.min(Math.max(ms, 100), MAX_RETRY_MS);
      },
    });
    try {
      await readSseBody(res.body, parser, alive);
    } catch (err) {
      if (!this.stopped && !this.resyncId) console.warn(`[chatd] stream dropped: ${err.message || err}`);
    } finally {
      clearTimeout(stallTimer);
      clearTimeout(this.healthyTimer);
      this.open = false;
    }
    if (this.resyncId) return 'resync';
    return 'dropped';
  }

  markHealthy() {
    if (this.healthy || !this.open) return;
    this.healthy = true;
    this.failures = 0;
    this.stopPolling();
  }

  onEvent(ev, ctrl) {
    if (this.stopped || this.resyncId || ctrl.signal.aborted) return;
    let data;
    try {
      data = JSON.parse(ev.data);
    } catch {
      console.warn(`[chatd] unreadable ${ev.type} event`);
      return;
    }
    if (ev.type === 'delta') {
      if (applyDelta(data) === 'gap') {
        // Text is missing before this delta: fetch what is committed, then
        // attach again from the content endpoint's cursor.
        this.resyncId = data.message_id;
        ctrl.abort();
        return;
      }
    } else if (ev.type === 'status') {
      applyStatusEvent(data);
    }
    if (ev.id) this.lastEventId = ev.id;
    this.markHealthy();
  }

  async resync() {
    const id = this.resyncId;
    this.resyncId = null;
    // A stream that keeps skipping text must not make the page spin.
    const now = performance.now();
    if (now - this.lastResyncAt < 2000) await sleep(this.retryMs, this.backoff);
    this.lastResyncAt = now;
    if (this.stopped) return;
    try {
      const c = await api('GET', `/messages/${encodeURIComponent(id)}/content`);
      if (this.stopped) return;
      mergeMessage({ ...c, role: 'assistant' }, 'content');
      if (c.cursor) this.lastEventId = c.cursor;
    } catch (err) {
      console.warn(`[chatd] re-fetching ${id} failed: ${err.message}`);
      if (handleAuthError(err)) this.stop();
      else await sleep(this.retryMs, this.backoff);
    }
  }

  startPolling() {
    if (this.polling || this.stopped) return;
    this.polling = true;
    console.info('[chatd] polling until the stream is back');
    this.pollLoop().catch((err) => console.error('[chatd] poll loop failed:', err));
  }

  stopPolling() {
    if (!this.polling) return;
    this.polling = false;
    this.pollWait.wake?.();
    console.info('[chatd] stream is back: polling stopped');
  }

  async pollLoop() {
    const generation = ++this.pollGeneration;
    const current = () => this.polling && !this.stopped && generation === this.pollGeneration;
    while (current()) {
      try {
        const q = this.pollSince ? `?since=${encodeURIComponent(this.pollSince)}` : '';
        const r = await api('GET', `/messages/${encodeURIComponent(this.sessionId)}/poll${q}`);
        if (!current()) return;
        for (const m of r.messages || []) mergeMessage(m, 'poll');
        if (r.next_since) this.pollSince = r.next_since;
        if (!this.open) setConn('polling');
      } catch (err) {
        if (!current()) return;
        if (handleAuthError(err)) {
          this.stop();
          return;
        }
        console.warn(`[chatd] poll failed: ${err.message}`);
      }
      await sleep(POLL_INTERVAL_MS, this.pollWait);
    }
  }
}

// ---------------------------------------------------------------------------
// Sessions

function sessionFromHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  const id = params.get('s');
  return id && /^[A-Za-z0-9_-]{1,128}$/.test(id) ? id : null;
}

async function refreshSessions({ more = false } = {}) {
  try {
    const q = new URLSearchParams({ limit: String(SESSION_PAGE) });
    if (more && state.sessionsNext) q.set('before', state.sessionsNext);
    const r = await api('GET', `/sessions?${q}`);
    const list = r.sessions || [];
    state.sessions = more ? [...state.sessions, ...list] : list;
    state.sessionsNext = r.next || null;
    renderSessions();
  } catch (err) {
    if (!handleAuthError(err)) console.warn(`[chatd] listing sessions failed: ${err.message}`);
  }
}

function renderSessions() {
  const ul = els.sessionList;
  ul.replaceChildren();
  const seen = new Set();
  for (const s of state.sessions) {
    if (seen.has(s.id)) continue;
    seen.add(s.id);
    const li = document.createElement('li');
    const a = document.createElement('a');
    a.href = `#s=${encodeURIComponent(s.id)}`;
    a.className = 'session';
    a.dataset.id = s.id;
    if (s.id === state.sessionId) a.setAttribute('aria-current', 'page');
    const title = document.createElement('span');
    title.className = 'session-title';
    title.textContent = s.title || 'Untitled';
    const when = document.createElement('time');
    when.className = 'session-time';
    when.dateTime = s.last_updated || s.created_at || '';
    when.textContent = formatTime(s.last_updated || s.created_at);
    a.append(title, when);
    li.append(a);
    ul.append(li);
  }
  els.moreSessions.hidden = !state.sessionsNext;
}

function formatTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const now = new Date();
  if (d.toDateString() === now.toDateString()) {
    return d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
  }
  return d.toLocaleDateString(undefined, { month: 'short', day: 'numeric' });
}

function setTitle(text) {
  els.title.textContent = text;
  document.title = text && text !== 'New chat' ? `${text} · chatd` : 'chatd';
}

function stopFollowing() {
  if (state.follower) state.follower.stop();
  state.follower = null;
}

function follow(sessionId, cursor) {
  stopFollowing();
  state.follower = new SessionFollower(sessionId, cursor);
  state.follower.start();
}

// Opens a session (or the empty "new chat" view when id is null): history,
// the generating message's committed text and cursor, then the stream.
async function openSession(id) {
  const seq = ++state.openSeq;
  stopFollowing();
  hideBanner();
  clearConversation();
  state.sessionId = id;
  state.session = null;
  state.pendingSend = null;
  renderSessions();
  closeSidebar();
  if (!id) {
    setTitle('New chat');
    setConn('idle');
    updateComposer();
    els.input.focus();
    return;
  }
  setTitle('…');
  setConn('connecting');
  try {
    const [session, history] = await Promise.all([
      api('GET', `/sessions/${encodeURIComponent(id)}`),
      api('GET', `/sessions/${encodeURIComponent(id)}/messages`),
    ]);
    if (seq !== state.openSeq) return;
    state.session = session;
    setTitle(session.title || 'Untitled');
    for (const m of history.messages || []) mergeMessage(m, 'history');

    // Attach where our text ends: the generating message's cursor, or the end
    // of the last answer (so a generation started meanwhile is not missed).
    const generating = generatingMessage();
    const assistants = sortedMessages().filter((m) => m.role === 'assistant');
    const anchor = generating || assistants[assistants.length - 1] || null;
    let cursor = null;
    if (anchor) {
      const c = await api('GET', `/messages/${encodeURIComponent(anchor.id)}/content`);
      if (seq !== state.openSeq) return;
      mergeMessage({ ...c, role: 'assistant' }, 'content');
      cursor = c.cursor || null;
    }
    scheduleRender();
    follow(id, cursor);
  } catch (err) {
    if (seq !== state.openSeq) return;
    if (handleAuthError(err)) return;
    if (err.status === 404) {
      setTitle('Session not found');
      setConn('gone');
      showBanner('This session does not exist (or is not yours).');
      return;
    }
    console.warn(`[chatd] opening ${id} failed: ${err.message}`);
    showBanner(`Could not load the session: ${err.message}`);
    setConn('reconnecting');
    // Try again shortly (e.g. the server is restarting).
    setTimeout(() => {
      if (seq === state.openSeq) openSession(id);
    }, 2000);
  }
}

function titleFrom(text) {
  const chars = Array.from(text.trim().split('\n')[0].trim());  // code points, not UTF-16 units
  return chars.length > 60 ? `${chars.slice(0, 57).join('')}…` : chars.join('') || 'New chat';
}

// ---------------------------------------------------------------------------
// Composer: send and stop

async function send() {
  const text = els.input.value;
  if (!text.trim() || state.sending) return;
  if (state.sessionId && generatingMessage()) return;
  state.sending = true;
  updateComposer();
  hideBanner();
  try {
    let sid = state.sessionId;
    if (!sid) {
      const s = await api('POST', '/sessions', { body: { title: titleFrom(text) } });
      sid = s.id;
      ++state.openSeq;
      state.sessionId = sid;
      state.session = s;
      history.pushState(null, '', `#s=${encodeURIComponent(sid)}`);
      setTitle(s.title || 'Untitled');
      state.sessions = [s, ...state.sessions];
      renderSessions();
      follow(sid, null);
    }
    const p = state.pendingSend;
    const key = p && p.sessionId === sid && p.text === text ? p.key : newIdempotencyKey();
    state.pendingSend = { sessionId: sid, text, key };
    const r = await api('POST', `/sessions/${encodeURIComponent(sid)}/messages`, {
      body: { content: text },
      headers: { 'Idempotency-Key': key },
    });
    state.pendingSend = null;
    if (sid === state.sessionId) {
      if (els.input.value === text) {
        els.input.value = '';
        autosize();
      }
      mergeMessage(r.user_message, 'send');
      mergeMessage(r.assistant_message, 'send');
    }
    refreshSessions();
  } catch (err) {
    if (handleAuthError(err)) return;
    if (err.code === 'generation_in_progress') {
      showBanner('An answer is still being generated in this session.');
      syncHistory({ onlyNew: false }).catch(() => {});
    } else {
      showBanner(`Could not send: ${err.message}`);
    }
  } finally {
    state.sending = false;
    updateComposer();
  }
}

async function stop() {
  const msg = generatingMessage();
  if (!msg || state.cancelling) return;
  state.cancelling = true;
  updateComposer();
  try {
    const m = await api('POST', `/messages/${encodeURIComponent(msg.id)}/cancel`);
    mergeMessage(m, 'cancel');
  } catch (err) {
    if (handleAuthError(err)) return;
    if (err.code === 'not_generating') {
      // It ended on its own meanwhile: show how.
      try {
        const c = await api('GET', `/messages/${encodeURIComponent(msg.id)}/content`);
        mergeMessage({ ...c, role: 'assistant' }, 'content');
      } catch (e) {
        console.warn(`[chatd] content of ${msg.id}: ${e.message}`);
      }
    } else {
      showBanner(`Could not stop: ${err.message}`);
    }
  } finally {
    state.cancelling = false;
    updateComposer();
  }
}

function autosize() {
  const t = els.input;
  t.style.height = 'auto';
  t.style.height = `${Math.min(t.scrollHeight, Math.round(window.innerHeight * 0.4))}px`;
}

// ---------------------------------------------------------------------------
// Layout bits

function openSidebar() {
  els.app.classList.add('sidebar-open');
  els.scrim.hidden = false;
  els.toggleSidebar.setAttribute('aria-expanded', 'true');
}

function closeSidebar() {
  els.app.classList.remove('sidebar-open');
  els.scrim.hidden = true;
  els.toggleSidebar.setAttribute('aria-expanded', 'false');
}

function showTokenState() {
  els.tokenState.textContent = getToken() ? 'A token is set (kept in this browser only).' : 'No token set.';
}

// ---------------------------------------------------------------------------
// Debug view for tests (read-only copies)

const debugView = Object.freeze({
  get sessionId() {
    return state.sessionId;
  },
  get connection() {
    return state.conn;
  },
  get markdown() {
    return markdownAvailable();
  },
  get lastEventId() {
    return state.follower ? state.follower.lastEventId : null;
  },
  messages() {
    return sortedMessages().map((m) => ({
      id: m.id,
      role: m.role,
      status: m.status,
      text: m.text.text,
      bytes: m.text.bytes,
      error: m.error ? { ...m.error } : null,
    }));
  },
  message(id) {
    const m = state.messages.get(id);
    return m ? { id: m.id, role: m.role, status: m.status, text: m.text.text, bytes: m.text.bytes,
                 error: m.error ? { ...m.error } : null,
                 // The DOM shows this text and status (rendering is batched per frame).
                 rendered: Boolean(m.el) && m.renderedBytes === m.text.bytes &&
                           m.renderedStatus === m.status && m.renderedError === m.error } : null;
  },
  trace(id) {
    return state.trace.filter((e) => !id || e.id === id).map((e) => ({ ...e }));
  },
});

// ---------------------------------------------------------------------------
// Start

function init() {
  for (const [key, id] of Object.entries({
    app: 'app', sidebar: 'sidebar', scrim: 'scrim', newChat: 'new-chat', sessionList: 'session-list',
    moreSessions: 'more-sessions', settings: 'settings', settingsForm: 'settings-form',
    tokenInput: 'token-input', tokenClear: 'token-clear', tokenState: 'token-state',
    toggleSidebar: 'toggle-sidebar', title: 'chat-title', conn: 'conn', banner: 'banner',
    bannerText: 'banner-text', bannerClose: 'banner-close', messages: 'messages', empty: 'empty',
    composer: 'composer', input: 'input', send: 'send', stop: 'stop',
  })) {
    els[key] = document.getElementById(id);
  }
  Object.defineProperty(window, '__chatd', { value: debugView, enumerable: false });

  els.composer.addEventListener('submit', (e) => {
    e.preventDefault();
    send();
  });
  els.input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && !e.altKey && !e.ctrlKey && !e.metaKey) {
      e.preventDefault();
      send();
    }
  });
  els.input.addEventListener('input', autosize);
  els.stop.addEventListener('click', stop);
  els.newChat.addEventListener('click', () => {
    if (location.hash) location.hash = '';
    else openSession(null);
  });
  els.moreSessions.addEventListener('click', () => refreshSessions({ more: true }));
  els.bannerClose.addEventListener('click', hideBanner);
  els.toggleSidebar.addEventListener('click', () => {
    if (els.app.classList.contains('sidebar-open')) closeSidebar();
    else openSidebar();
  });
  els.scrim.addEventListener('click', closeSidebar);
  els.settingsForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const token = els.tokenInput.value.trim();
    try {
      if (token) localStorage.setItem(TOKEN_KEY, token);
    } catch {
      showBanner('Could not store the token (storage unavailable).');
    }
    els.tokenInput.value = '';
    showTokenState();
    refreshSessions();
    openSession(state.sessionId);
  });
  els.tokenClear.addEventListener('click', () => {
    try {
      localStorage.removeItem(TOKEN_KEY);
    } catch {
      // nothing stored
    }
    els.tokenInput.value = '';
    showTokenState();
  });

  window.addEventListener('hashchange', () => {
    const id = sessionFromHash();
    if (id !== state.sessionId) openSession(id);
  });
  window.addEventListener('popstate', () => {
    const id = sessionFromHash();
    if (id !== state.sessionId) openSession(id);
  });
  window.addEventListener('online', () => state.follower && state.follower.nudge());
  window.addEventListener('offline', () => state.follower && state.follower.dropped());
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && dirty.size > 0) scheduleRender();
  });

  if (!markdownAvailable()) console.warn('[chatd] markdown-it did not load: answers are shown as plain text');
  showTokenState();
  refreshSessions();
  openSession(sessionFromHash());
}

init();

export { renderAssistant, SseParser, MessageText };
