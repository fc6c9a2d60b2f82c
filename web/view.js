// The page's DOM: the conversation, the session list, the connection
// indicator, the banner, the composer, the sidebar and the sign-in panel.
//
// Messages are re-rendered from the model (model.js) at most once per
// animation frame: scheduleRender(msg) marks a message dirty, the frame
// renders every dirty message that is still the current one (isCurrent).
// User text goes in through textContent, assistant text through markdown.js,
// an answer's reasoning as the data of one Text node (never parsed); nothing
// else writes message text into the DOM. What the view knows about a
// message's DOM (element, what was last rendered) stays here, keyed by the
// model's message object.
//
// Reasoning is shown above the answer in a <details class="reasoning">,
// closed at first and made only once there is reasoning. It is built once per
// message and then only appended to, so a person who opened it keeps it open
// while the answer streams on.
//
// The view holds no application state: what it shows comes in as arguments,
// what the person does goes out through the callbacks app.js attaches.

import { renderAssistant, renderPlain } from './markdown.js';

const CONN_TEXT = {
  idle: '',
  connecting: 'Connecting…',
  live: 'Live',
  reconnecting: 'Reconnecting…',
  polling: 'Polling (stream unavailable)',
  unauthorized: 'Not authorized',
  'signed-out': 'Signed out',
  gone: 'Session not found',
};

const STATUS_TEXT = {
  generating: 'generating',
  completed: 'completed',
  cancelled: 'cancelled',
  error: 'error',
};

const ELEMENT_IDS = {
  app: 'app', sidebar: 'sidebar', scrim: 'scrim', newChat: 'new-chat', sessionList: 'session-list',
  moreSessions: 'more-sessions', settings: 'settings', authState: 'auth-state', signOut: 'sign-out',
  signInForm: 'sign-in-form', tokenInput: 'token-input', signIn: 'sign-in', signInHint: 'sign-in-hint',
  toggleSidebar: 'toggle-sidebar', title: 'chat-title', conn: 'conn', banner: 'banner',
  bannerText: 'banner-text', bannerClose: 'banner-close', messages: 'messages', empty: 'empty',
  composer: 'composer', input: 'input', send: 'send', stop: 'stop',
};

export function formatTime(iso, now = new Date()) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  if (d.toDateString() === now.toDateString()) {
    return d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
  }
  return d.toLocaleDateString(undefined, { month: 'short', day: 'numeric' });
}

export class ChatView {
  // isCurrent(msg): msg is still the model's message for its id;
  // messageCount(): how many messages the model holds;
  // composerState(): { generating, sending, cancelling, enabled }.
  constructor({ doc = document, win = window, isCurrent, messageCount, composerState }) {
    this.doc = doc;
    this.win = win;
    this.isCurrent = isCurrent;
    this.messageCount = messageCount;
    this.composerState = composerState;
    this.els = {};
    for (const [key, id] of Object.entries(ELEMENT_IDS)) this.els[key] = doc.getElementById(id);
    this.dom = new WeakMap();  // message -> { el, badge, errorEl, body, reasoning, rendered… }
    this.dirty = new Set();
    this.renderPending = false;
    this.conn = null;
  }

  // --- Messages (at most one render per frame) ---

  scheduleRender(msg) {
    if (msg) this.dirty.add(msg);
    if (this.renderPending) return;
    this.renderPending = true;
    // rAF does not run in hidden tabs; nobody sees them, but keep them current.
    if (this.doc.hidden) this.win.setTimeout(() => this.renderFrame(), 250);
    else this.win.requestAnimationFrame(() => this.renderFrame());
  }

  // The tab became visible: render what piled up meanwhile.
  catchUp() {
    if (this.dirty.size > 0) this.scheduleRender();
  }

  renderFrame() {
    this.renderPending = false;
    const stick = this.nearBottom();
    const now = this.win.performance.now();
    let deferred = false;
    for (const msg of [...this.dirty]) {
      const d = this.dom.get(msg);
      if (d && d.nextRenderAt > now && d.renderedBytes >= 0) {
        deferred = true;
        continue;
      }
      this.dirty.delete(msg);
      if (this.isCurrent(msg)) this.renderMessage(msg);
    }
    this.els.empty.hidden = this.messageCount() > 0;
    this.updateComposer();
    if (stick) this.els.messages.scrollTop = this.els.messages.scrollHeight;
    if (deferred) {
      this.renderPending = true;
      this.win.setTimeout(() => this.renderFrame(), 50);
    }
  }

  nearBottom() {
    const m = this.els.messages;
    return m.scrollHeight - m.scrollTop - m.clientHeight < 80;
  }

  buildMessageElement(msg) {
    const doc = this.doc;
    const el = doc.createElement('article');
    el.className = `msg msg-${msg.role}`;
    el.dataset.id = msg.id;
    el.dataset.role = msg.role;
    const meta = doc.createElement('div');
    meta.className = 'msg-meta';
    const who = doc.createElement('span');
    who.className = 'msg-role';
    who.textContent = msg.role === 'user' ? 'You' : msg.role === 'assistant' ? 'Assistant' : 'System';
    meta.append(who);
    const badge = doc.createElement('span');
    badge.className = 'badge';
    const errorEl = doc.createElement('span');
    errorEl.className = 'msg-error';
    if (msg.role === 'assistant') meta.append(badge, errorEl);
    const body = doc.createElement('div');
    body.className = msg.role === 'assistant' ? 'msg-body md' : 'msg-body plain';
    el.append(meta, body);
    const d = { el, badge, errorEl, body, renderedBytes: -1, renderedStatus: null, renderedError: undefined,
                nextRenderAt: 0, reasoning: null, renderedReasoningBytes: 0 };
    this.dom.set(msg, d);

    // Keep the DOM in id order (ids are time-sortable).
    let before = null;
    for (const other of this.els.messages.querySelectorAll('article.msg')) {
      if (other.dataset.id > msg.id) {
        before = other;
        break;
      }
    }
    this.els.messages.insertBefore(el, before);
    return d;
  }

  renderMessage(msg) {
    const d = this.dom.get(msg) || this.buildMessageElement(msg);
    if (d.renderedStatus !== msg.status || d.renderedError !== msg.error) {
      d.el.dataset.status = msg.status;
      d.badge.dataset.status = msg.status;
      d.badge.textContent = STATUS_TEXT[msg.status] || msg.status;
      d.errorEl.textContent = msg.status === 'error' && msg.error
        ? (msg.error.message || msg.error.code || 'error') : '';
      d.renderedStatus = msg.status;
      d.renderedError = msg.error;
    }
    if (msg.reasoning.bytes > 0) this.renderReasoning(msg, d);
    if (d.renderedBytes !== msg.text.bytes) {
      const perf = this.win.performance;
      const started = perf.now();
      if (msg.role === 'assistant') renderAssistant(d.body, msg.text.text);
      else renderPlain(d.body, msg.text.text);
      d.renderedBytes = msg.text.bytes;
      // Huge answers: keep re-rendering from taking every frame.
      const took = perf.now() - started;
      d.nextRenderAt = took > 8 ? perf.now() + took * 4 : 0;
    }
  }

  buildReasoningElement(d) {
    const doc = this.doc;
    const el = doc.createElement('details');
    el.className = 'reasoning';
    const summary = doc.createElement('summary');
    const body = doc.createElement('div');
    body.className = 'reasoning-body';
    const text = doc.createTextNode('');
    body.append(text);
    el.append(summary, body);
    d.el.insertBefore(el, d.body);
    d.reasoning = { el, summary, text };
    return d.reasoning;
  }

  // Updates the reasoning in place: its element is never rebuilt and its
  // `open` never set here, so it stays as the person left it.
  renderReasoning(msg, d) {
    const r = d.reasoning || this.buildReasoningElement(d);
    // Still thinking: nothing of the answer yet.
    const label = msg.status === 'generating' && msg.text.bytes === 0 ? 'Thinking…' : 'Reasoning';
    if (r.summary.textContent !== label) r.summary.textContent = label;
    if (d.renderedReasoningBytes === msg.reasoning.bytes) return;
    const text = msg.reasoning.text;
    // Reasoning only grows: append the new tail (a replaced text is set whole).
    if (text.startsWith(r.text.data)) r.text.appendData(text.slice(r.text.data.length));
    else r.text.data = text;
    d.renderedReasoningBytes = msg.reasoning.bytes;
  }

  // The screen shows the message's text, reasoning and status as the model
  // holds them.
  isRendered(msg) {
    const d = this.dom.get(msg);
    return Boolean(d) && d.renderedBytes === msg.text.bytes && d.renderedStatus === msg.status &&
           d.renderedError === msg.error && d.renderedReasoningBytes === msg.reasoning.bytes;
  }

  clearConversation() {
    this.dirty.clear();
    for (const el of this.els.messages.querySelectorAll('article.msg')) el.remove();
    this.els.empty.hidden = false;
  }

  // --- Composer ---

  updateComposer() {
    const { generating, sending, cancelling, enabled } = this.composerState();
    const els = this.els;
    els.stop.hidden = !generating;
    els.send.hidden = Boolean(generating);
    els.stop.disabled = cancelling;
    els.send.disabled = sending || !enabled;
    els.input.setAttribute('aria-busy', sending ? 'true' : 'false');
  }

  get composerText() {
    return this.els.input.value;
  }

  // After a send: empty the composer unless the person typed on meanwhile.
  clearComposerIf(text) {
    if (this.els.input.value !== text) return;
    this.els.input.value = '';
    this.autosize();
  }

  focusComposer() {
    this.els.input.focus();
  }

  autosize() {
    const t = this.els.input;
    t.style.height = 'auto';
    t.style.height = `${Math.min(t.scrollHeight, Math.round(this.win.innerHeight * 0.4))}px`;
  }

  // --- Header, connection, banner ---

  setTitle(text) {
    this.els.title.textContent = text;
    this.doc.title = text && text !== 'New chat' ? `${text} · chatd` : 'chatd';
  }

  showConnection(conn) {
    if (this.conn === conn) return;
    this.conn = conn;
    this.els.conn.dataset.state = conn;
    this.els.conn.textContent = CONN_TEXT[conn] ?? conn;
  }

  showBanner(text) {
    this.els.bannerText.textContent = text;
    this.els.banner.hidden = false;
  }

  hideBanner() {
    this.els.banner.hidden = true;
    this.els.bannerText.textContent = '';
  }

  // --- Sessions ---

  renderSessions(sessions, currentId, hasMore) {
    const ul = this.els.sessionList;
    ul.replaceChildren();
    const seen = new Set();
    for (const s of sessions) {
      if (seen.has(s.id)) continue;
      seen.add(s.id);
      const li = this.doc.createElement('li');
      const a = this.doc.createElement('a');
      a.href = `#s=${encodeURIComponent(s.id)}`;
      a.className = 'session';
      a.dataset.id = s.id;
      if (s.id === currentId) a.setAttribute('aria-current', 'page');
      const title = this.doc.createElement('span');
      title.className = 'session-title';
      title.textContent = s.title || 'Untitled';
      const when = this.doc.createElement('time');
      when.className = 'session-time';
      when.dateTime = s.last_updated || s.created_at || '';
      when.textContent = formatTime(s.last_updated || s.created_at);
      a.append(title, when);
      li.append(a);
      ul.append(li);
    }
    this.els.moreSessions.hidden = !hasMore;
  }

  // --- Layout ---

  openSidebar() {
    this.els.app.classList.add('sidebar-open');
    this.els.scrim.hidden = false;
    this.els.toggleSidebar.setAttribute('aria-expanded', 'true');
  }

  closeSidebar() {
    this.els.app.classList.remove('sidebar-open');
    this.els.scrim.hidden = true;
    this.els.toggleSidebar.setAttribute('aria-expanded', 'false');
  }

  toggleSidebar() {
    if (this.els.app.classList.contains('sidebar-open')) this.closeSidebar();
    else this.openSidebar();
  }

  // --- Sign-in panel ---

  // state: 'checking' | 'signed-in' | 'local' | 'signed-out'; who: { user_id,
  // expires_at } when signed in; note: a line under the form (signed out).
  showAuth(state, { who = null, note = '' } = {}) {
    const els = this.els;
    let line = '';
    if (state === 'checking') line = 'Checking sign-in…';
    else if (state === 'local') line = 'No sign-in needed (local mode).';
    else if (state === 'signed-in') line = who && who.user_id ? `Signed in as ${who.user_id}` : 'Signed in';
    else line = 'Not signed in.';
    els.authState.textContent = line;
    els.settings.dataset.auth = state;
    // A cookie session (it has an expiry) can be ended here; other
    // credentials (a proxy's header) cannot.
    els.signOut.hidden = !(state === 'signed-in' && who && who.expires_at);
    els.signInForm.hidden = state !== 'signed-out';
    els.signInHint.textContent = state === 'signed-out'
      ? (note || 'Sent once to start a session (a cookie); the token is not kept in this browser.')
      : '';
    if (state === 'signed-out') els.settings.open = true;
  }

  // Sign-in is in flight: the form cannot be sent twice.
  setSignInBusy(busy) {
    this.els.signIn.disabled = busy;
    this.els.tokenInput.disabled = busy;
  }

  // Reads the pasted token and empties the field at once (nothing keeps it).
  takeToken() {
    const token = this.els.tokenInput.value.trim();
    this.els.tokenInput.value = '';
    return token;
  }

  focusToken() {
    this.els.tokenInput.focus();
  }
}
