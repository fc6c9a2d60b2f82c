// The conversation controller: which session is open, the session list, the
// send and stop actions, and the follower of the open session's stream.
//
// Opening a session loads its history, the generating message's committed
// text and cursor (content endpoint), then follows the stream from that
// cursor (follower.js). A send creates the session first when the "new chat"
// view is open; a failed send is retried with the same Idempotency-Key.
//
// It owns its state (no module globals) and reaches everything else through
// what it is given: `api` (api.js), `model` (model.js), `view` (view.js),
// followerFor(options) to make a SessionFollower, navigate(id) to put a new
// session in the URL, and onAuthError(err) -> true when err was about the
// sign-in (the owner then signs the page out and this controller is reset).

import { newIdempotencyKey } from './api.js';
import { TERMINAL } from './model.js';

export const SESSION_PAGE = 50;
const HISTORY_SYNC_DELAY_MS = 50;
const REOPEN_AFTER_MS = 2000;

export function titleFrom(text) {
  const chars = Array.from(text.trim().split('\n')[0].trim());  // code points, not UTF-16 units
  return chars.length > 60 ? `${chars.slice(0, 57).join('')}…` : chars.join('') || 'New chat';
}

export class ChatController {
  constructor({ api, model, view, followerFor, navigate, onAuthError, log = console,
                clock = { setTimeout: (fn, ms) => setTimeout(fn, ms), clearTimeout: (t) => clearTimeout(t) } }) {
    this.api = api;
    this.model = model;
    this.view = view;
    this.followerFor = followerFor;
    this.navigate = navigate;
    this.onAuthError = onAuthError;
    this.log = log;
    this.clock = clock;
    this.enabled = false;  // signed in: only then does it call the API
    this.sessions = [];
    this.sessionsNext = null;
    this.session = null;
    this.follower = null;
    this.openSeq = 0;
    this.conn = 'idle';
    this.sending = false;
    this.cancelling = false;
    this.pendingSend = null;  // { sessionId, text, key }
    this.historySyncTimer = null;
  }

  get sessionId() {
    return this.model.sessionId;
  }

  get lastEventId() {
    return this.follower ? this.follower.lastEventId : null;
  }

  composerState() {
    return {
      generating: Boolean(this.sessionId && this.model.generating()),
      sending: this.sending,
      cancelling: this.cancelling,
      enabled: this.enabled,
    };
  }

  setConn(conn) {
    if (this.conn === conn) return;
    this.conn = conn;
    this.view.showConnection(conn);
    this.log.info(`[chatd] connection: ${conn}`);
  }

  // Signed in: list the sessions and open `sessionId` (or the new-chat view).
  start(sessionId) {
    this.enabled = true;
    this.refreshSessions();
    return this.openSession(sessionId);
  }

  // Signed out: forget everything shown and call the API no more.
  reset(conn = 'idle') {
    this.enabled = false;
    ++this.openSeq;
    this.stopFollowing();
    this.clock.clearTimeout(this.historySyncTimer);
    this.historySyncTimer = null;
    this.model.reset(null);
    this.view.clearConversation();
    this.session = null;
    this.pendingSend = null;
    this.sessions = [];
    this.sessionsNext = null;
    this.view.renderSessions([], null, false);
    this.view.setTitle('New chat');
    this.setConn(conn);
    this.view.updateComposer();
  }

  authFailed(err) {
    return Boolean(this.onAuthError && this.onAuthError(err));
  }

  // --- Sessions ---

  async refreshSessions({ more = false } = {}) {
    if (!this.enabled) return;
    try {
      const q = new URLSearchParams({ limit: String(SESSION_PAGE) });
      if (more && this.sessionsNext) q.set('before', this.sessionsNext);
      const r = await this.api.chat('GET', `/sessions?${q}`);
      if (!this.enabled) return;
      const list = r.sessions || [];
      this.sessions = more ? [...this.sessions, ...list] : list;
      this.sessionsNext = r.next || null;
      this.renderSessions();
    } catch (err) {
      if (!this.authFailed(err)) this.log.warn(`[chatd] listing sessions failed: ${err.message}`);
    }
  }

  renderSessions() {
    this.view.renderSessions(this.sessions, this.sessionId, Boolean(this.sessionsNext));
  }

  stopFollowing() {
    if (this.follower) this.follower.stop();
    this.follower = null;
  }

  follow(sessionId, cursor) {
    this.stopFollowing();
    const model = this.model;
    this.follower = this.followerFor({
      sessionId,
      cursor,
      api: this.api,
      onDelta: (d) => model.applyDelta(d),
      onReasoning: (d) => model.applyReasoning(d),
      onStatus: (m) => model.applyStatusEvent(m),
      onMessage: (m, source) => model.merge(m, source),
      onOpen: () => this.syncHistory({ onlyNew: true })
        .catch((err) => this.log.warn('[chatd] history sync failed:', err.message)),
      onConnection: (conn) => this.setConn(conn),
      onAuthError: (err) => this.authFailed(err),
      onGone: () => this.view.showBanner('This session does not exist (or is not yours).'),
    });
    this.follower.start();
  }

  // A stream event named a message the page does not hold (e.g. a generation
  // started in another tab): fetch the history soon, once.
  scheduleHistorySync() {
    if (this.historySyncTimer !== null || !this.enabled) return;
    this.historySyncTimer = this.clock.setTimeout(() => {
      this.historySyncTimer = null;
      this.syncHistory({ onlyNew: true })
        .catch((err) => this.log.warn('[chatd] history sync failed:', err.message));
    }, HISTORY_SYNC_DELAY_MS);
  }

  // Adds messages the page has not seen (see MessageModel.mergeHistory).
  async syncHistory({ onlyNew }) {
    const sid = this.sessionId;
    if (!sid || !this.enabled) return;
    const r = await this.api.history(sid);
    if (sid !== this.sessionId) return;
    if (this.model.mergeHistory(r.messages, { onlyNew })) this.refreshSessions();
  }

  // Opens a session (or the empty "new chat" view when id is null): history,
  // the generating message's committed text and cursor, then the stream.
  async openSession(id) {
    const seq = ++this.openSeq;
    this.stopFollowing();
    this.view.hideBanner();
    this.model.reset(id);
    this.view.clearConversation();
    this.session = null;
    this.pendingSend = null;
    this.renderSessions();
    this.view.closeSidebar();
    if (!id || !this.enabled) {
      this.view.setTitle('New chat');
      if (this.enabled) this.setConn('idle');
      this.view.updateComposer();
      if (this.enabled) this.view.focusComposer();
      return;
    }
    this.view.setTitle('…');
    this.setConn('connecting');
    try {
      const [session, history] = await Promise.all([
        this.api.chat('GET', `/sessions/${encodeURIComponent(id)}`),
        this.api.history(id),
      ]);
      if (seq !== this.openSeq) return;
      this.session = session;
      this.view.setTitle(session.title || 'Untitled');
      for (const m of history.messages || []) this.model.merge(m, 'history');

      // Attach where our text ends: the generating message's cursor, or the end
      // of the last answer (so a generation started meanwhile is not missed).
      const anchor = this.model.anchor();
      let cursor = null;
      if (anchor) {
        const c = await this.api.content(anchor.id);
        if (seq !== this.openSeq) return;
        this.model.merge({ ...c, role: 'assistant' }, 'content');
        cursor = c.cursor || null;
      }
      this.view.scheduleRender();
      this.follow(id, cursor);
    } catch (err) {
      if (seq !== this.openSeq) return;
      if (this.authFailed(err)) return;
      if (err.status === 404) {
        this.view.setTitle('Session not found');
        this.setConn('gone');
        this.view.showBanner('This session does not exist (or is not yours).');
        return;
      }
      this.log.warn(`[chatd] opening ${id} failed: ${err.message}`);
      this.view.showBanner(`Could not load the session: ${err.message}`);
      this.setConn('reconnecting');
      // Try again shortly (e.g. the server is restarting).
      this.clock.setTimeout(() => {
        if (seq === this.openSeq) this.openSession(id);
      }, REOPEN_AFTER_MS);
    }
  }

  // --- Send and stop ---

  async send(text) {
    if (!text.trim() || this.sending || !this.enabled) return;
    if (this.sessionId && this.model.generating()) return;
    this.sending = true;
    this.view.updateComposer();
    this.view.hideBanner();
    try {
      let sid = this.sessionId;
      if (!sid) {
        const s = await this.api.chat('POST', '/sessions', { body: { title: titleFrom(text) } });
        sid = s.id;
        ++this.openSeq;
        this.model.adopt(sid);
        this.session = s;
        this.navigate(sid);
        this.view.setTitle(s.title || 'Untitled');
        this.sessions = [s, ...this.sessions];
        this.renderSessions();
        this.follow(sid, null);
      }
      const p = this.pendingSend;
      const key = p && p.sessionId === sid && p.text === text ? p.key : newIdempotencyKey();
      this.pendingSend = { sessionId: sid, text, key };
      const r = await this.api.chat('POST', `/sessions/${encodeURIComponent(sid)}/messages`, {
        body: { content: text },
        headers: { 'Idempotency-Key': key },
      });
      this.pendingSend = null;
      if (sid === this.sessionId) {
        this.view.clearComposerIf(text);
        this.model.merge(r.user_message, 'send');
        this.model.merge(r.assistant_message, 'send');
      }
      this.refreshSessions();
    } catch (err) {
      if (this.authFailed(err)) return;
      if (err.code === 'generation_in_progress') {
        this.view.showBanner('An answer is still being generated in this session.');
        this.syncHistory({ onlyNew: false }).catch(() => {});
      } else {
        this.view.showBanner(`Could not send: ${err.message}`);
      }
    } finally {
      this.sending = false;
      this.view.updateComposer();
    }
  }

  async stop() {
    const msg = this.model.generating();
    if (!msg || this.cancelling || !this.enabled) return;
    this.cancelling = true;
    this.view.updateComposer();
    try {
      const m = await this.api.chat('POST', `/messages/${encodeURIComponent(msg.id)}/cancel`);
      this.model.merge(m, 'cancel');
    } catch (err) {
      if (this.authFailed(err)) return;
      if (err.code === 'not_generating') {
        // It ended on its own meanwhile: show how.
        try {
          const c = await this.api.content(msg.id);
          this.model.merge({ ...c, role: 'assistant' }, 'content');
        } catch (e) {
          this.log.warn(`[chatd] content of ${msg.id}: ${e.message}`);
        }
      } else {
        this.view.showBanner(`Could not stop: ${err.message}`);
      }
    } finally {
      this.cancelling = false;
      this.view.updateComposer();
    }
  }

  // The browser's network events, passed to the follower.
  online() {
    if (this.follower) this.follower.nudge();
  }

  offline() {
    if (this.follower) this.follower.dropped();
  }
}
