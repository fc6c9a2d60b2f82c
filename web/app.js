// chatd's reference chat UI: a list of sessions, a conversation whose
// assistant answer streams in, Stop, and recovery from reload, closed tabs,
// dropped networks and other tabs (DESIGN.md §4).
//
// The composition root: it makes the pieces, wires them together through
// callbacks and attaches the DOM events. The pieces, each usable without the
// others (all but view.js and chat.js run in Node with fakes):
//   api.js       the HTTP API client (cookie credentials, sign-in calls)
//   auth.js      the sign-in state (check on load, sign in, sign out, ended)
//   model.js     the message model (byte-offset deltas and reasoning, committed texts)
//   follower.js  the session-stream follower (reconnect, poll, stall, gap)
//   chat.js      the conversation controller (open, send, stop, sessions)
//   view.js      the DOM, rendered at most once per animation frame
//
// The page never keeps a token (auth.js): it signs in once for an HttpOnly
// cookie, calls nothing but "who am I?" until signed in, and any later 401
// signs it out with a banner. A token an earlier version kept in localStorage
// is removed on load.
//
// window.__chatd is a read-only view of the model for tests and debugging.

import { createApiClient } from './api.js';
import { SignIn, isLocal } from './auth.js';
import { ChatController } from './chat.js';
import { SessionFollower } from './follower.js';
import { markdownAvailable } from './markdown.js';
import { MessageModel } from './model.js';
import { ChatView } from './view.js';

const LEGACY_TOKEN_KEY = 'chatd.token';

function sessionFromHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  const id = params.get('s');
  return id && /^[A-Za-z0-9_-]{1,128}$/.test(id) ? id : null;
}

function forgetLegacyToken() {
  try {
    localStorage.removeItem(LEGACY_TOKEN_KEY);
  } catch {
    // storage unavailable: nothing was kept there either
  }
}

function main() {
  forgetLegacyToken();

  const api = createApiClient();
  let chat = null;
  const model = new MessageModel({
    onChange: (msg) => view.scheduleRender(msg),
    onUnknown: () => chat.scheduleHistorySync(),
  });
  const view = new ChatView({
    isCurrent: (msg) => model.get(msg.id) === msg,
    messageCount: () => model.size,
    composerState: () => chat.composerState(),
  });
  const auth = new SignIn({
    api,
    onSignedIn: (who) => {
      view.showAuth(isLocal(who) ? 'local' : 'signed-in', { who });
      view.hideBanner();
      chat.start(sessionFromHash());
    },
    onSignedOut: (why) => {
      if (why === 'signed-out' && location.hash) history.replaceState(null, '', location.pathname + location.search);
      chat.reset(why === 'ended' ? 'signed-out' : 'idle');
      view.showAuth('signed-out');
      if (why === 'ended') view.showBanner('You have been signed out (the session ended). Sign in again to continue.');
      if (why === 'signed-out') view.focusToken();
    },
    onUnreachable: (err) => view.showBanner(`Could not reach chatd: ${err.message}`),
  });
  chat = new ChatController({
    api,
    model,
    view,
    followerFor: (options) => new SessionFollower(options),
    navigate: (id) => history.pushState(null, '', `#s=${encodeURIComponent(id)}`),
    // A 401 ends the sign-in; a 403 is a refusal of this one thing.
    onAuthError: (err) => {
      if (err && err.status === 401) {
        auth.ended();
        return true;
      }
      if (err && err.status === 403) {
        chat.setConn('unauthorized');
        view.showBanner(`Not allowed: ${err.message}`);
        return true;
      }
      return false;
    },
  });

  async function signIn() {
    const token = view.takeToken();  // out of the field at once; only this request sees it
    if (!token) return;
    view.setSignInBusy(true);
    const note = await auth.signIn(token);
    view.setSignInBusy(false);
    if (note) view.showAuth('signed-out', { note });
  }

  async function signOut() {
    const problem = await auth.signOut();
    if (problem) view.showBanner(problem);
  }

  // --- Debug view for tests (read-only copies) ---

  const debugView = Object.freeze({
    get auth() {
      return auth.state;
    },
    get user() {
      return auth.who ? auth.who.user_id : null;
    },
    get sessionId() {
      return chat.sessionId;
    },
    get connection() {
      return chat.conn;
    },
    get markdown() {
      return markdownAvailable();
    },
    get lastEventId() {
      return chat.lastEventId;
    },
    messages() {
      return model.sorted().map((m) => ({
        id: m.id,
        role: m.role,
        status: m.status,
        text: m.text.text,
        bytes: m.text.bytes,
        reasoning: m.reasoning.text,
        reasoningBytes: m.reasoning.bytes,
        error: m.error ? { ...m.error } : null,
      }));
    },
    message(id) {
      const m = model.get(id);
      return m ? { id: m.id, role: m.role, status: m.status, text: m.text.text, bytes: m.text.bytes,
                   reasoning: m.reasoning.text, reasoningBytes: m.reasoning.bytes,
                   error: m.error ? { ...m.error } : null,
                   // The DOM shows this text, reasoning and status (rendering is batched per frame).
                   rendered: view.isRendered(m) } : null;
    },
    trace(id) {
      return model.traceOf(id);
    },
  });
  Object.defineProperty(window, '__chatd', { value: debugView, enumerable: false });

  // --- Events ---

  const els = view.els;
  const send = () => chat.send(view.composerText);
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
  els.input.addEventListener('input', () => view.autosize());
  els.stop.addEventListener('click', () => chat.stop());
  els.newChat.addEventListener('click', () => {
    if (location.hash) location.hash = '';
    else chat.openSession(null);
  });
  els.moreSessions.addEventListener('click', () => chat.refreshSessions({ more: true }));
  els.bannerClose.addEventListener('click', () => view.hideBanner());
  els.toggleSidebar.addEventListener('click', () => view.toggleSidebar());
  els.scrim.addEventListener('click', () => view.closeSidebar());
  els.signInForm.addEventListener('submit', (e) => {
    e.preventDefault();
    signIn();
  });
  els.signOut.addEventListener('click', () => signOut());

  const followHash = () => {
    if (!auth.signedIn) return;
    const id = sessionFromHash();
    if (id !== chat.sessionId) chat.openSession(id);
  };
  window.addEventListener('hashchange', followHash);
  window.addEventListener('popstate', followHash);
  window.addEventListener('online', () => chat.online());
  window.addEventListener('offline', () => chat.offline());
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) view.catchUp();
  });

  if (!markdownAvailable()) console.warn('[chatd] markdown-it did not load: answers are shown as plain text');
  view.showAuth('checking');
  view.updateComposer();
  auth.check();
}

main();
