// The session-stream follower (web/follower.js) in plain Node, no browser:
// a fake fetch plays chatd (refusing, answering, streaming on the test's
// command) and a fake clock runs its timers, so reconnect, backoff, the poll
// fallback, stall detection, gap recovery (of the text and of the reasoning)
// and the auth stop are checked as decisions and times, without sleeping.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createApiClient } from '../../web/api.js';
import { MessageModel } from '../../web/model.js';
import {
  FAILURES_BEFORE_POLLING, HEALTHY_AFTER_MS, MAX_RETRY_MS, POLL_INTERVAL_MS, STALL_MS, SessionFollower,
  backoffDelay, failuresAfter,
} from '../../web/follower.js';
import { FakeClock, eventStream, fakeFetch, json, quietLog, settle } from './support/fakes.mjs';

const STREAM = '/api/v1/chat/messages/stream';

// A follower of ses_1 against respond(req); returns what it did.
function follow(respond, { cursor = null, onDelta = () => 'applied', onReasoning = () => 'applied',
                          onAuthError = () => false } = {}) {
  const clock = new FakeClock();
  const { fetch, requests } = fakeFetch(respond, clock);
  const seen = { connection: [], messages: [], deltas: [], reasoning: [], statuses: [], opens: 0, gone: 0,
                 authErrors: [] };
  const follower = new SessionFollower({
    sessionId: 'ses_1',
    cursor,
    api: createApiClient({ fetch }),
    clock,
    log: quietLog,
    onDelta: (d) => {
      seen.deltas.push(d);
      return onDelta(d);
    },
    onReasoning: (d) => {
      seen.reasoning.push(d);
      return onReasoning(d);
    },
    onStatus: (s) => seen.statuses.push(s),
    onMessage: (m, source) => seen.messages.push({ source, ...m }),
    onOpen: () => { seen.opens += 1; },
    onConnection: (c) => seen.connection.push(c),
    onGone: () => { seen.gone += 1; },
    onAuthError: (err) => {
      seen.authErrors.push(err.status);
      return onAuthError(err);
    },
  });
  const streams = () => requests.filter((r) => r.path === STREAM);
  const polls = () => requests.filter((r) => r.path.endsWith('/poll'));
  return { clock, follower, requests, streams, polls, seen };
}

const refused = (status = 503, code = 'unavailable') => json(status, { error: { code, message: `test: ${code}` } });

test('backoff doubles from the first retry delay up to the cap; a healthy stream that drops starts the count again', () => {
  assert.deepEqual([1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n)), [500, 1000, 2000, 4000, 5000, 5000]);
  assert.equal(backoffDelay(1, 2000), 2000, 'the server\'s retry: sets the first delay');
  assert.equal(backoffDelay(9, 2000), MAX_RETRY_MS);
  assert.equal(failuresAfter('dropped', true, 4), 1);
  assert.equal(failuresAfter('dropped', false, 4), 5);
  assert.equal(failuresAfter('failed', true, 0), 1);
});

test('refused streams are retried with backoff, polling starts after three failures and stops once a stream is healthy', async () => {
  let open = null;
  const f = follow((req) => {
    if (req.path === STREAM) {
      if (f.streams().length <= FAILURES_BEFORE_POLLING) return refused();
      open = eventStream(req);
      return open.response;
    }
    if (req.path === '/api/v1/chat/messages/ses_1/poll') {
      return json(200, { messages: [{ id: 'msg_a', role: 'assistant', status: 'generating', content: 'ab' }],
                         next_since: `c${f.polls().length}` });
    }
    return refused(404, 'not_found');
  });
  f.follower.start();
  await settle();
  assert.equal(f.streams().length, 1);
  assert.deepEqual(f.clock.pending(), [500], 'first retry after 500 ms');
  await f.clock.advance(499);
  assert.equal(f.streams().length, 1, 'not before its time');
  await f.clock.advance(1);
  assert.equal(f.streams().length, 2);
  await f.clock.advance(1000);
  assert.equal(f.streams().length, 3);
  assert.deepEqual(f.streams().map((r) => r.at), [0, 500, 1500]);
  assert.equal(f.polls().length, 1, 'the third failure starts polling at once');
  assert.equal(f.seen.connection.at(-1), 'polling');
  assert.equal(f.seen.messages[0].source, 'poll');
  assert.equal(f.polls()[0].query.get('since'), null);

  await f.clock.advance(POLL_INTERVAL_MS);
  assert.equal(f.polls().length, 2, 'polls every second');
  assert.equal(f.polls()[1].query.get('since'), 'c1', 'from where the last poll ended');
  await f.clock.advance(2000 - POLL_INTERVAL_MS);
  assert.equal(f.streams().length, 4, 'the fourth attempt after 2 s');
  assert.equal(f.seen.connection.at(-1), 'live');
  assert.equal(f.seen.opens, 1, 'an open stream asks for a history sync');

  const pollsWhileOpen = f.polls().length;
  open.push('event: delta\nid: msg_a.3\ndata: {"message_id":"msg_a","offset":2,"text":"c"}\n\n');
  await settle();
  assert.equal(f.seen.deltas.length, 1);
  await f.clock.advance(10 * POLL_INTERVAL_MS);
  assert.equal(f.polls().length, pollsWhileOpen, 'an event makes the stream healthy: polling stopped');
  assert.equal(f.follower.lastEventId, 'msg_a.3');
  f.follower.stop();
  await f.follower.done;
});

test('a stream open for a while counts as healthy even without events', async () => {
  let n = 0;
  const f = follow((req) => {
    n += 1;
    if (req.path !== STREAM) return json(200, { messages: [] });
    if (n <= 3) return refused();
    return eventStream(req).response;
  });
  f.follower.start();
  await f.clock.advance(500 + 1000);
  assert.ok(f.follower.polling);
  await f.clock.advance(2000);
  assert.equal(f.seen.connection.at(-1), 'live');
  assert.ok(f.follower.polling, 'just opened: still polling');
  await f.clock.advance(HEALTHY_AFTER_MS);
  assert.equal(f.follower.polling, false);
  assert.equal(f.follower.failures, 0);
  f.follower.stop();
  await f.follower.done;
});

test('a dropped healthy stream reconnects after the first delay, from the last event id; retry: sets the delay', async () => {
  const opened = [];
  const f = follow((req) => {
    const s = eventStream(req);
    opened.push(s);
    return s.response;
  }, { cursor: 'msg_a.10' });
  f.follower.start();
  await settle();
  assert.equal(f.streams()[0].headers['Last-Event-ID'], 'msg_a.10', 'attaches at the cursor it was given');
  assert.equal(f.streams()[0].credentials, 'same-origin');
  assert.equal(f.streams()[0].headers.Authorization, undefined);
  opened[0].push('retry: 2000\n\nevent: delta\nid: msg_a.12\ndata: {"message_id":"msg_a","offset":10,"text":"xy"}\n\n');
  await settle();
  opened[0].end();
  await settle();
  assert.equal(f.seen.connection.at(-1), 'reconnecting');
  assert.deepEqual(f.clock.pending(), [2000], 'the server asked for 2 s between attempts');
  await f.clock.advance(2000);
  assert.equal(f.streams().length, 2);
  assert.equal(f.streams()[1].headers['Last-Event-ID'], 'msg_a.12', 'resumes after the last event');
  f.follower.stop();
  await f.follower.done;
});

test('nudge (the browser is online again) retries at once instead of after the backoff', async () => {
  const f = follow((req) => (f.streams().length < 4 ? Promise.reject(new TypeError('Failed to fetch'))
    : eventStream(req).response));
  f.follower.start();
  await f.clock.advance(500 + 1000);
  assert.equal(f.streams().length, 3);
  assert.deepEqual(f.clock.pending().filter((d) => d > POLL_INTERVAL_MS), [2000]);
  f.follower.nudge();
  await settle();
  assert.equal(f.streams().length, 4);
  assert.equal(f.seen.connection.at(-1), 'live');
  f.follower.stop();
  await f.follower.done;
});

test('a stream with no byte for the stall limit is dropped and reopened', async () => {
  const opened = [];
  const f = follow((req) => {
    const s = eventStream(req);
    opened.push(s);
    return s.response;
  });
  f.follower.start();
  await settle();
  await f.clock.advance(STALL_MS - 1000);
  opened[0].push(': heartbeat\n\n');  // any byte is a sign of life
  await f.clock.advance(STALL_MS - 1);
  assert.equal(f.streams().length, 1, 'alive: heartbeats keep it');
  await f.clock.advance(1);
  assert.equal(f.seen.connection.at(-1), 'reconnecting', 'silent too long: dropped');
  await f.clock.advance(500);
  assert.equal(f.streams().length, 2);
  f.follower.stop();
  await f.follower.done;
});

test('a gap re-fetches the content and re-attaches from its cursor', async () => {
  const opened = [];
  const f = follow((req) => {
    if (req.path === STREAM) {
      const s = eventStream(req);
      opened.push(s);
      return s.response;
    }
    if (req.path === '/api/v1/chat/messages/msg_a/content') {
      return json(200, { id: 'msg_a', status: 'generating', content: 'hello wor', cursor: 'msg_a.9' });
    }
    return refused(404, 'not_found');
  }, { onDelta: (d) => (d.offset > 5 ? 'gap' : 'applied') });
  f.follower.start();
  await settle();
  opened[0].push('event: delta\nid: msg_a.105\ndata: {"message_id":"msg_a","offset":100,"text":"zzzzz"}\n\n' +
                 'event: delta\nid: msg_a.110\ndata: {"message_id":"msg_a","offset":105,"text":"zzzzz"}\n\n');
  await settle();
  assert.equal(f.seen.deltas.length, 1, 'nothing more is taken from a stream with a gap');
  assert.equal(f.requests.filter((r) => r.path.endsWith('/content')).length, 1);
  assert.deepEqual(f.seen.messages.map((m) => [m.source, m.content, m.role]), [['content', 'hello wor', 'assistant']]);
  assert.equal(f.streams().length, 2, 're-attached at once');
  assert.equal(f.streams()[1].headers['Last-Event-ID'], 'msg_a.9', 'from the content cursor, not the gap event');
  assert.ok(opened[0].closed, 'the old stream was aborted');

  // Gaps again right away: the next re-fetch waits, so a broken stream cannot make the page spin.
  opened[1].push('event: delta\nid: msg_a.120\ndata: {"message_id":"msg_a","offset":115,"text":"z"}\n\n');
  await settle();
  assert.equal(f.requests.filter((r) => r.path.endsWith('/content')).length, 1);
  await f.clock.advance(500);
  assert.equal(f.requests.filter((r) => r.path.endsWith('/content')).length, 2);
  f.follower.stop();
  await f.follower.done;
});

test('401 ends following through onAuthError: no retry, no polling', async () => {
  const f = follow(() => refused(401, 'unauthorized'), { onAuthError: (err) => err.status === 401 });
  f.follower.start();
  await f.follower.done;
  await f.clock.advance(60000);
  assert.equal(f.requests.length, 1);
  assert.deepEqual(f.seen.authErrors, [401]);
  assert.deepEqual(f.clock.pending(), []);
});

test('401 while polling stops the poll loop too', async () => {
  const f = follow((req) => (req.path === STREAM ? refused() : refused(401, 'unauthorized')),
                   { onAuthError: (err) => err.status === 401 });
  f.follower.start();
  await f.clock.advance(500 + 1000);
  assert.equal(f.polls().length, 1);
  assert.ok(f.follower.stopped, 'the poll answered 401: stopped');
  await f.clock.advance(60000);
  assert.equal(f.polls().length, 1);
  assert.equal(f.streams().length, 3);
  await f.follower.done;
});

test('404: the session is gone, following ends', async () => {
  const f = follow(() => refused(404, 'not_found'));
  f.follower.start();
  await f.follower.done;
  assert.equal(f.seen.connection.at(-1), 'gone');
  assert.equal(f.seen.gone, 1);
  await f.clock.advance(60000);
  assert.equal(f.requests.length, 1);
});

test('an invalid cursor is dropped: the next attempt opens without Last-Event-ID', async () => {
  const f = follow((req) => (f.streams().length === 1 ? refused(400, 'invalid_cursor') : eventStream(req).response),
                   { cursor: 'msg_a.bogus' });
  f.follower.start();
  await f.clock.advance(500);
  assert.equal(f.streams()[0].headers['Last-Event-ID'], 'msg_a.bogus');
  assert.equal(f.streams()[1].headers['Last-Event-ID'], undefined);
  f.follower.stop();
  await f.follower.done;
});

test('an answer that is not an event stream counts as a failure', async () => {
  const f = follow((req) => (f.streams().length === 1 ? new Response('<html>proxy</html>', {
    status: 200, headers: { 'content-type': 'text/html' } }) : eventStream(req).response));
  f.follower.start();
  await settle();
  assert.equal(f.seen.connection.at(-1), 'reconnecting');
  await f.clock.advance(500);
  assert.equal(f.seen.connection.at(-1), 'live');
  f.follower.stop();
  await f.follower.done;
});

test('stop() aborts the stream and leaves no timer and no request behind', async () => {
  let s;
  const f = follow((req) => (req.path === STREAM ? (s = eventStream(req)).response : json(200, { messages: [] })));
  f.follower.start();
  await settle();
  f.follower.stop();
  await f.follower.done;
  assert.ok(s.closed, 'the stream request was aborted');
  assert.deepEqual(f.clock.pending(), []);
  await f.clock.advance(60000);
  assert.equal(f.requests.length, 1);
});

test('reasoning events go to onReasoning, and their ids are where a reconnect resumes', async () => {
  const opened = [];
  const f = follow((req) => {
    const s = eventStream(req);
    opened.push(s);
    return s.response;
  });
  f.follower.start();
  await settle();
  opened[0].push('event: reasoning\nid: msg_a.0.6\ndata: {"message_id":"msg_a","offset":0,"text":"Think "}\n\n' +
                 'event: delta\nid: msg_a.2.6\ndata: {"message_id":"msg_a","offset":0,"text":"Hi"}\n\n' +
                 'event: reasoning\nid: msg_a.2.11\ndata: {"message_id":"msg_a","offset":6,"text":"more."}\n\n');
  await settle();
  assert.deepEqual(f.seen.reasoning.map((d) => [d.offset, d.text]), [[0, 'Think '], [6, 'more.']]);
  assert.deepEqual(f.seen.deltas.map((d) => [d.offset, d.text]), [[0, 'Hi']], 'a delta is still a delta');
  assert.equal(f.follower.lastEventId, 'msg_a.2.11', 'the cursor is kept as sent (opaque)');
  opened[0].end();
  await f.clock.advance(500);
  assert.equal(f.streams()[1].headers['Last-Event-ID'], 'msg_a.2.11');
  f.follower.stop();
  await f.follower.done;
});

test('a reasoning gap re-fetches the content (reasoning included) and re-attaches from its cursor', async () => {
  const opened = [];
  const f = follow((req) => {
    if (req.path === STREAM) {
      const s = eventStream(req);
      opened.push(s);
      return s.response;
    }
    if (req.path === '/api/v1/chat/messages/msg_a/content') {
      return json(200, { id: 'msg_a', status: 'generating', content: '', reasoning: 'I should', cursor: 'msg_a.0.8' });
    }
    return refused(404, 'not_found');
  }, { onReasoning: (d) => (d.offset > 8 ? 'gap' : 'applied') });
  f.follower.start();
  await settle();
  opened[0].push('event: reasoning\nid: msg_a.0.50\ndata: {"message_id":"msg_a","offset":40,"text":"0123456789"}\n\n' +
                 'event: reasoning\nid: msg_a.0.60\ndata: {"message_id":"msg_a","offset":50,"text":"0123456789"}\n\n');
  await settle();
  assert.equal(f.seen.reasoning.length, 1, 'nothing more is taken from a stream with a gap');
  assert.deepEqual(f.seen.messages.map((m) => [m.source, m.reasoning]), [['content', 'I should']]);
  assert.equal(f.streams().length, 2, 're-attached at once');
  assert.equal(f.streams()[1].headers['Last-Event-ID'], 'msg_a.0.8', 'from the content cursor, not the gap event');
  f.follower.stop();
  await f.follower.done;
});

test('with the model: reasoning resumed over a reconnect and replayed in part is held once', async () => {
  const model = new MessageModel({ now: () => 0 });
  model.reset('ses_1');
  model.merge({ id: 'msg_a', session_id: 'ses_1', role: 'assistant', status: 'generating', content: '',
                reasoning: 'Plan: ' }, 'content');
  const opened = [];
  const f = follow((req) => {
    const s = eventStream(req);
    opened.push(s);
    return s.response;
  }, {
    cursor: 'msg_a.0.6',
    onDelta: (d) => model.applyDelta(d),
    onReasoning: (d) => model.applyReasoning(d),
  });
  const ev = (type, id, offset, text) =>
    `event: ${type}\nid: ${id}\ndata: ${JSON.stringify({ message_id: 'msg_a', offset, text })}\n\n`;
  f.follower.start();
  await settle();
  opened[0].push(ev('reasoning', 'msg_a.0.15', 6, 'look 🙂') + ev('reasoning', 'msg_a.0.21', 15, ', then'));
  await settle();
  opened[0].end();  // dropped mid-reasoning
  await f.clock.advance(500);
  assert.equal(f.streams()[1].headers['Last-Event-ID'], 'msg_a.0.21');
  // A server that sends some of it again (an older cursor, another node): skipped by offset.
  opened[1].push(ev('reasoning', 'msg_a.0.21', 15, ', then') + ev('reasoning', 'msg_a.0.25', 15, ', then act') +
                 ev('delta', 'msg_a.5.25', 0, 'Done.'));
  await settle();
  const m = model.get('msg_a');
  assert.equal(m.reasoning.text, 'Plan: look 🙂, then act');
  assert.equal(m.reasoning.bytes, 25);
  assert.equal(m.text.text, 'Done.', 'the answer holds no reasoning');
  assert.deepEqual(model.traceOf('msg_a').filter((e) => e.kind === 'reasoning').map((e) => e.result),
                   ['applied', 'applied', 'duplicate', 'overlap']);
  f.follower.stop();
  await f.follower.done;
});
