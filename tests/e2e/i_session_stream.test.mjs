// Extra: the session stream (GET /messages/stream?session_id=) carries every
// generation of the session, stays open with heartbeats, and resumes from a
// cursor with the rest of that message and every later one; a send with
// Accept: text/event-stream answers with its generation's stream.

import test from 'node:test';
import assert from 'node:assert/strict';
import { withChatd, createSession, send, getContent, waitFor, waitTerminal, utf8, TERMINAL } from './support/chatd.mjs';
import { contiguousBytes, readRawSse, parseSse, deltasAfterTerminal } from './support/sse.mjs';

const ARGS = ['--sim-tokens-per-second', '100', '--sim-min-tokens', '60', '--sim-max-tokens', '90', '--heartbeat-ms', '300'];

const deltasOf = (h, id) => h.deltas().filter((e) => e.data.message_id === id);
const eventsOf = (h, id) => h.events.filter((e) => (e.type === 'delta' ? e.data.message_id : e.data?.id) === id);

/**
 * Waits until a session stream carried message `id` up to its stored end and
 * then its terminal status; checks the bytes and that no text of the message
 * came after a terminal status event of it.
 */
async function expectMessageOnStream(h, id, final, label, startOffset = 0) {
  const want = utf8(final.content).length - startOffset;
  await waitFor(() => {
    const evs = eventsOf(h, id);
    const got = deltasOf(h, id).reduce((n, e) => n + utf8(e.data.text).length, 0);
    const last = evs.at(-1);
    return got >= want && last?.type === 'status' && TERMINAL.has(last.data.status);
  }, { timeoutMs: 20000, message: `${label}: the whole message and its terminal status on the session stream` });
  const bytes = contiguousBytes(deltasOf(h, id), startOffset);
  assert.ok(bytes.equals(utf8(final.content).subarray(startOffset)), `${label}: bytes differ from the stored content`);
  const early = deltasAfterTerminal(h.events, id);
  assert.equal(early.length, 0, `${label}: a terminal status event came before ${early.length} delta(s) of the message: ` +
    eventsOf(h, id).map((e) => `${e.type}${e.type === 'status' ? `(${e.data.status})` : ''}`).join(' '));
  assert.equal(eventsOf(h, id).at(-1).data.status, final.status);
}

test('i: the session stream carries every generation and resumes across messages', async () => {
  await withChatd({ args: ARGS, name: 'chatd-i' }, async (srv) => {
    const session = await createSession(srv, { title: 'session stream' });
    const live = srv.stream(`/messages/stream?session_id=${session.id}`, { closeOnTerminal: false });
    await live.opened();

    // Two generations, one after the other, both on the one open stream.
    const a1 = (await send(srv, session.id, 'First question about owls.')).assistant_message;
    const c1 = await waitTerminal(srv, a1.id);
    await expectMessageOnStream(live, a1.id, c1, 'first message, live session stream');
    const a2 = (await send(srv, session.id, 'Second question about foxes.')).assistant_message;
    const c2 = await waitTerminal(srv, a2.id);
    await expectMessageOnStream(live, a2.id, c2, 'second message, live session stream');
    assert.equal(c1.status, 'completed');
    assert.equal(live.connections(), 1, 'the session stream does not end by itself');
    live.close();

    // Resume mid first message: the rest of it, then the second one from offset 0.
    const d1 = deltasOf(live, a1.id);
    const half = Math.floor(d1.length / 2);
    const cut = d1[half];
    const had = contiguousBytes(d1.slice(0, half + 1), 0);
    const resumed = srv.stream(`/messages/stream?session_id=${session.id}`, { lastEventId: cut.id, closeOnTerminal: false });
    await expectMessageOnStream(resumed, a1.id, c1, 'resumed session stream: rest of the first message', had.length);
    await expectMessageOnStream(resumed, a2.id, c2, 'resumed session stream: the later message from offset 0');
    resumed.close();

    // A session stream opened while a generation runs gets it from offset 0.
    const a3 = (await send(srv, session.id, 'Third question about bees.')).assistant_message;
    await waitFor(async () => (await getContent(srv, a3.id)).content.length > 0, { message: 'third message to start' });
    const late = srv.stream(`/messages/stream?session_id=${session.id}`, { closeOnTerminal: false });
    const c3 = await waitTerminal(srv, a3.id);
    await expectMessageOnStream(late, a3.id, c3, 'session stream opened mid-generation');
    late.close();

    // Heartbeats keep an idle session stream alive.
    const idle = await readRawSse(srv.url(`/api/v1/chat/messages/stream?session_id=${session.id}`), {
      until: (text) => /^: ?ping/m.test(text), timeoutMs: 5000,
    });
    assert.equal(idle.status, 200);
    assert.ok(idle.comments.some((c) => /^: ?ping/.test(c)), `no heartbeat within 5 s with --heartbeat-ms 300: ${JSON.stringify(idle.text.slice(0, 200))}`);
    assert.equal(idle.ended, false, 'the session stream must not end by itself');
  });
});

test('i: a send with Accept: text/event-stream answers with its generation\'s stream', async () => {
  await withChatd({ args: ARGS, name: 'chatd-i2' }, async (srv) => {
    const session = await createSession(srv, { title: 'send and stream' });
    const raw = await readRawSse(srv.url(`/api/v1/chat/sessions/${session.id}/messages`), {
      method: 'POST',
      body: JSON.stringify({ content: 'Stream it to me.' }),
      headers: { 'Content-Type': 'application/json' },
      until: (text) => parseSse(text).events.some((e) => e.type === 'status' && TERMINAL.has(JSON.parse(e.data).status)),
      timeoutMs: 20000,
    });
    assert.equal(raw.status, 200, raw.text.slice(0, 300));
    assert.match(raw.headers.get('content-type') || '', /^text\/event-stream/);
    const deltas = raw.events.filter((e) => e.type === 'delta').map((e) => JSON.parse(e.data));
    assert.ok(deltas.length > 0);
    const id = deltas[0].message_id;
    const c = await waitTerminal(srv, id);
    assert.ok(contiguousBytes(deltas, 0).equals(utf8(c.content)));
    const hist = await srv.api('GET', `/sessions/${session.id}/messages`);
    assert.deepEqual(hist.json.messages.map((m) => m.role), ['user', 'assistant']);
    assert.equal(hist.json.messages[1].id, id);
  });
});
