// Follows one session's event stream (GET /messages/stream?session_id=…),
// read with fetch() (sse.js) so it can send Last-Event-ID and the cookie.
// Opened with the content endpoint's cursor it carries the rest of the
// generating message and every later generation (also ones started in
// another tab).
//
// When the stream drops the follower reconnects with backoff from the last
// event id; after FAILURES_BEFORE_POLLING failures in a row it also polls
// until a stream is healthy again (open HEALTHY_AFTER_MS, or an event). A
// stream with no byte for STALL_MS is treated as dropped. A delta past the end
// of the text, or a reasoning event past the end of the reasoning (a gap),
// makes it re-fetch the content endpoint (which has both) and re-attach from
// its cursor. 401/403 (onAuthError says it handled it) and 404 end it.
//
// No DOM and no shared state: it talks to the API through `api`
// (api.js: openStream, content, poll) and to the rest of the page through
// callbacks; time comes from `clock` (setTimeout, clearTimeout, now), so tests
// drive it with a fake fetch and fake timers.

import { errorFromResponse } from './api.js';
import { SseParser, readSseBody } from './sse.js';

export const FAILURES_BEFORE_POLLING = 3;
export const FIRST_RETRY_MS = 500;
export const MAX_RETRY_MS = 5000;
export const POLL_INTERVAL_MS = 1000;
export const HEALTHY_AFTER_MS = 3000;
export const STALL_MS = 45000;  // no byte at all (heartbeats are 15 s by default)
export const RESYNC_SPACING_MS = 2000;

const realClock = {
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (t) => globalThis.clearTimeout(t),
  now: () => (globalThis.performance ? globalThis.performance.now() : Date.now()),
};

const quiet = { info() {}, warn() {}, error() {} };

// Consecutive failures after a connection attempt ended with `outcome`
// ('dropped': it was open; 'failed': it never opened). A healthy stream that
// drops starts the count again.
export function failuresAfter(outcome, healthy, failures) {
  return outcome === 'dropped' && healthy ? 1 : failures + 1;
}

// How long to wait before attempt number failures + 1.
export function backoffDelay(failures, retryMs = FIRST_RETRY_MS) {
  return Math.min(retryMs * 2 ** (failures - 1), MAX_RETRY_MS);
}

// The server's `retry:` field, kept within sane bounds.
export function clampRetry(ms) {
  return Math.min(Math.max(ms, 100), MAX_RETRY_MS);
}

export class SessionFollower {
  // callbacks: onDelta(data) -> MessageText.apply result; onReasoning(data),
  // the same for a reasoning event; onStatus(data);
  // onMessage(m, source) for committed texts ('content', 'poll');
  // onOpen() when a stream opens (the owner syncs the history);
  // onConnection(state): 'connecting', 'live', 'reconnecting', 'polling', 'gone';
  // onAuthError(err) -> true when err ended the sign-in (the follower stops);
  // onGone() when the session does not exist (or is not ours).
  constructor({ sessionId, cursor = null, api, clock = realClock, log = globalThis.console || quiet, ...callbacks }) {
    this.sessionId = sessionId;
    this.lastEventId = cursor || null;
    this.api = api;
    this.clock = clock;
    this.log = log;
    this.cb = {
      onDelta: () => 'applied',
      onReasoning: () => 'applied',
      onStatus: () => {},
      onMessage: () => {},
      onOpen: () => {},
      onConnection: () => {},
      onAuthError: () => false,
      onGone: () => {},
      ...callbacks,
    };
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
    this.done = null;  // the run() promise
  }

  start() {
    this.done = this.run().catch((err) => this.log.error('[chatd] session stream loop failed:', err));
    return this;
  }

  stop() {
    this.stopped = true;
    this.polling = false;
    this.clock.clearTimeout(this.healthyTimer);
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

  sleep(ms, handle) {
    return new Promise((resolve) => {
      const timer = this.clock.setTimeout(resolve, ms);
      handle.wake = () => {
        this.clock.clearTimeout(timer);
        resolve();
      };
    });
  }

  async run() {
    while (!this.stopped) {
      const outcome = await this.connectOnce();
      if (this.stopped) return;
      if (outcome === 'fatal') {
        this.stopPolling();
        this.stopped = true;
        return;
      }
      if (outcome === 'resync') {
        await this.resync();
        continue;
      }
      this.failures = failuresAfter(outcome, this.healthy, this.failures);
      this.healthy = false;
      if (this.failures >= FAILURES_BEFORE_POLLING) this.startPolling();
      this.cb.onConnection(this.polling ? 'polling' : 'reconnecting');
      const wait = backoffDelay(this.failures, this.retryMs);
      this.log.info(`[chatd] stream ${outcome}; retry ${this.failures} in ${wait} ms`);
      await this.sleep(wait, this.backoff);
    }
  }

  // One connection. Returns 'dropped' (it was open and ended), 'failed' (it did
  // not open), 'resync' (a gap: re-fetch content) or 'fatal' (stop trying).
  async connectOnce() {
    const ctrl = new AbortController();
    this.ctrl = ctrl;
    this.open = false;
    if (!this.polling) this.cb.onConnection(this.opens === 0 ? 'connecting' : 'reconnecting');
    let res;
    try {
      res = await this.api.openStream({ sessionId: this.sessionId, lastEventId: this.lastEventId, signal: ctrl.signal });
    } catch (err) {
      if (!this.stopped) this.log.warn(`[chatd] stream request failed: ${err.message}`);
      return 'failed';
    }
    if (this.stopped) {
      ctrl.abort();
      return 'failed';
    }
    if (!res.ok) {
      const err = await errorFromResponse(res);
      if (this.stopped) return 'failed';
      this.log.warn(`[chatd] stream answered ${res.status} ${err.code}`);
      if (this.cb.onAuthError(err)) return 'fatal';
      if (res.status === 404) {
        this.cb.onConnection('gone');
        this.cb.onGone();
        return 'fatal';
      }
      if (res.status === 400 && err.code === 'invalid_cursor') {
        // Start over from the history: a stream without a cursor plus a sync.
        this.lastEventId = null;
      }
      return 'failed';
    }
    const type = res.headers.get('content-type') || '';
    if (!type.startsWith('text/event-stream')) {
      ctrl.abort();
      this.log.warn(`[chatd] stream answered ${type || 'no content type'}, not an event stream`);
      return 'failed';
    }

    this.open = true;
    this.opens += 1;
    this.cb.onConnection('live');
    this.log.info('[chatd] stream open');
    this.healthyTimer = this.clock.setTimeout(() => this.markHealthy(), HEALTHY_AFTER_MS);
    // Anything that started and ended while this tab was not listening.
    this.cb.onOpen();

    let stallTimer = null;
    const alive = () => {
      this.clock.clearTimeout(stallTimer);
      stallTimer = this.clock.setTimeout(() => ctrl.abort(new Error('stalled')), STALL_MS);
    };
    alive();
    const parser = new SseParser((ev) => this.onEvent(ev, ctrl), {
      onRetry: (ms) => {
        this.retryMs = clampRetry(ms);
      },
    });
    try {
      await readSseBody(res.body, parser, alive);
    } catch (err) {
      if (!this.stopped && !this.resyncId) this.log.warn(`[chatd] stream dropped: ${err.message || err}`);
    } finally {
      this.clock.clearTimeout(stallTimer);
      this.clock.clearTimeout(this.healthyTimer);
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
      this.log.warn(`[chatd] unreadable ${ev.type} event`);
      return;
    }
    if (ev.type === 'delta' || ev.type === 'reasoning') {
      const result = ev.type === 'delta' ? this.cb.onDelta(data) : this.cb.onReasoning(data);
      if (result === 'gap') {
        // Text is missing before this event: fetch what is committed, then
        // attach again from the content endpoint's cursor.
        this.resyncId = data.message_id;
        ctrl.abort();
        return;
      }
    } else if (ev.type === 'status') {
      this.cb.onStatus(data);
    }
    if (ev.id) this.lastEventId = ev.id;
    this.markHealthy();
  }

  async resync() {
    const id = this.resyncId;
    this.resyncId = null;
    // A stream that keeps skipping text must not make the page spin.
    const now = this.clock.now();
    if (now - this.lastResyncAt < RESYNC_SPACING_MS) await this.sleep(this.retryMs, this.backoff);
    this.lastResyncAt = now;
    if (this.stopped) return;
    try {
      const c = await this.api.content(id);
      if (this.stopped) return;
      this.cb.onMessage({ ...c, role: 'assistant' }, 'content');
      if (c.cursor) this.lastEventId = c.cursor;
    } catch (err) {
      this.log.warn(`[chatd] re-fetching ${id} failed: ${err.message}`);
      if (this.cb.onAuthError(err)) this.stop();
      else await this.sleep(this.retryMs, this.backoff);
    }
  }

  startPolling() {
    if (this.polling || this.stopped) return;
    this.polling = true;
    this.log.info('[chatd] polling until the stream is back');
    this.pollLoop().catch((err) => this.log.error('[chatd] poll loop failed:', err));
  }

  stopPolling() {
    if (!this.polling) return;
    this.polling = false;
    this.pollWait.wake?.();
    this.log.info('[chatd] stream is back: polling stopped');
  }

  async pollLoop() {
    const generation = ++this.pollGeneration;
    const current = () => this.polling && !this.stopped && generation === this.pollGeneration;
    while (current()) {
      try {
        const r = await this.api.poll(this.sessionId, this.pollSince);
        if (!current()) return;
        for (const m of r.messages || []) this.cb.onMessage(m, 'poll');
        if (r.next_since) this.pollSince = r.next_since;
        if (!this.open) this.cb.onConnection('polling');
      } catch (err) {
        if (!current()) return;
        if (this.cb.onAuthError(err)) {
          this.stop();
          return;
        }
        this.log.warn(`[chatd] poll failed: ${err.message}`);
      }
      await this.sleep(POLL_INTERVAL_MS, this.pollWait);
    }
  }
}
