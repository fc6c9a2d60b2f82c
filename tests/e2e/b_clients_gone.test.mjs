// Scenario b: every client goes away mid-stream; the generation still
// completes with the full text, and a fresh stream from offset 0 delivers
// exactly the stored content.

import test from 'node:test';
import assert from 'node:assert/strict';
import { withChatd, createSession, send, getContent, waitTerminal, utf8, isPrefix } from './support/chatd.mjs';
import { contiguousBytes, readRawSse, assertCarried, deltasAfterTerminal } from './support/sse.mjs';

const ARGS = ['--sim-tokens-per-second', '60', '--sim-min-tokens', '150', '--sim-max-tokens', '200'];

test('b: a generation completes after every client disconnected', async () => {
  await withChatd({ args: ARGS, name: 'chatd-b' }, async (srv) => {
    const session = await createSession(srv, { title: 'clients gone' });
    const { assistant_message: am } = await send(srv, session.id, 'Explain how tides work, at length.');

    // One client attaches, reads a few deltas, then goes away.
    const s1 = srv.stream(`/messages/${am.id}/stream`);
    await s1.opened();
    await s1.waitForDeltas(3);
    assert.equal(s1.terminal, null, 'the generation ended before the client could leave mid-stream');
    s1.close();
    await s1.socketsClosed();
    const early = contiguousBytes(s1.deltas(), 0);
    assert.ok(early.length > 0);
    const res = s1.track.responses[0];
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^text\/event-stream/);
    assert.equal(res.headers.get('cache-control'), 'no-cache');
    assert.equal(res.headers.get('x-accel-buffering'), 'no');
    assert.equal(s1.connections(), 1, 'the client never reconnected before closing');

    // No client now. Right after the disconnect it is still generating...
    const mid = await getContent(srv, am.id);
    assert.equal(mid.status, 'generating', 'expected the generation to still be running after the client left');
    assert.ok(isPrefix(early, utf8(mid.content)), 'what the client saw is a prefix of the stored partial content');

    // ...and it completes on its own.
    const final = await waitTerminal(srv, am.id, 30000);
    assert.equal(final.status, 'completed');
    const finalBytes = utf8(final.content);
    assert.ok(finalBytes.length > mid.content.length, 'content kept growing without clients');
    assert.ok(isPrefix(early, finalBytes), 'deltas seen before the disconnect are a prefix of the final content');

    // On the wire (raw reader): retry first, the whole text, the terminal status last, then the server ends the response.
    const raw = await readRawSse(srv.url(`/api/v1/chat/messages/${am.id}/stream`), { timeoutMs: 15000 });
    assert.equal(raw.status, 200);
    assert.ok(raw.ended, 'the per-message stream of an ended message must end after its terminal status event');
    assert.equal(raw.retry, 1000, 'stream starts with retry: 1000');
    assert.match(raw.text, /^retry: ?1000\r?\n/);
    const rawEvents = raw.events.map((e) => ({ type: e.type, id: e.id, data: JSON.parse(e.data) }));
    const textAfterEnd = deltasAfterTerminal(rawEvents, am.id);
    assert.equal(textAfterEnd.length, 0,
      `a fresh stream of an ended message sent a terminal status event before ${textAfterEnd.length} delta(s); events: ` +
      rawEvents.map((e) => `${e.type}${e.type === 'status' ? `(${e.data.status})` : ''}@${e.id}`).join(' '));
    const rawDeltas = rawEvents.filter((e) => e.type === 'delta');
    assert.ok(contiguousBytes(rawDeltas, 0).equals(finalBytes), 'raw stream from offset 0 carries the stored content');
    const lastRaw = rawEvents.at(-1);
    assert.equal(lastRaw.type, 'status');
    assert.equal(lastRaw.data.status, 'completed');

    // A fresh per-message stream from offset 0 (eventsource) replays exactly the stored content.
    const s2 = srv.stream(`/messages/${am.id}/stream`);
    await s2.waitForTerminal();
    s2.close();
    assertCarried(s2, finalBytes, 'fresh stream of the completed message');
    const lastDelta = s2.deltas().at(-1).data;
    assert.equal(lastDelta.offset + utf8(lastDelta.text).length, finalBytes.length,
      'last delta offset + its length must equal the byte length of the content');
    assert.equal(s2.terminal.data.status, 'completed');
    assert.equal(s2.terminal.data.id, am.id);
    assert.equal('content' in s2.terminal.data, false, 'status event data is the message without its content');
    for (const ev of s2.events) assert.equal(typeof ev.id, 'string');
    for (const ev of s2.deltas()) {
      assert.ok(ev.id.length > 0, 'every delta carries an id');
      assert.equal(ev.data.message_id, am.id);
    }
  });
});
