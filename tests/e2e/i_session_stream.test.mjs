// Extra: the session stream (GET /messages/stream?session_id=) carries every
// generation of the session, stays open with heartbeats, and resumes from a
// cursor with the rest of that message and every later one; a send with
// Accept: text/event-stream answers with its generation's stream.

import test from 'node:test';
import assert from 'node:assert/strict';
import { withChatd, createSession, send, getContent, waitFor, waitTerminal, utf8, TERMINAL } from './support/chatd.mjs';
import { contiguousBytes, readRawSse, parseSse } from './support/sse.mjs';

const ARGS = ['--sim-tokens-per-second', '100', '--sim-min-tokens', '60', '--sim-max-tokens', '90', '--heartbeat-ms', '300'];

const deltasOf = (h, id) => h.deltas().filter((e) => e.data.message_id === id);
const terminalOf = (h, id) => h.statuses().find((e) => e.data.id === id && TERMINAL.has(e.data.status));

test('i: the session stream carries every generation and resumes across messages', async () => {
  await withChatd({ args: ARGS, name: 'chatd-i' }, async (srv) => {
    const session = await createSession(srv, { title: 'session stream' });
    const live = srv.stream(`/messages/stream?session_id=${session.id}`, { closeOnTerminal: false });
    await live.opened();

    // Two generations, one after the other, both on the one open stream.
    const a1 = (await send(srv, session.id, 'First question about owls.')).assistant_message;
    await waitFor(() => terminalOf(live, a1.id), { timeoutMs: 20000, message: 'terminal status of the first message on the session stream' });
    const c1 = await waitTerminal(srv, a1.id);
    const a2 = (await send(srv, session.id, 'Second question about foxes.')).assistant_message;
    await waitFor(() => terminalOf(live, a2.id), { timeoutMs: 20000, message: 'terminal status of the second message on the session stream' });
    const c2 = await waitTerminal(srv, a2.id);

    assert.ok(contiguousBytes(deltasOf(live, a1.id), 0).equals(utf8(c1.content)), 'first message on the session stream');
    assert.ok(contiguousBytes(deltasOf(live, a2.id), 0).equals(utf8(c2.content)), 'second message on the session stream');
    assert.equal(terminalOf(live, a1.id).data.status, 'completed');
    assert.equal(live.connections(), 1, 'the session stream does not end by itself');
    live.close();

    // Resume mid first message: the rest of it, then the second one from offset 0.
    const d1 = deltasOf(live, a1.id);
    const cut = d1[Math.floor(d1.length / 2)];
    const had = contiguousBytes(d1.slice(0, Math.floor(d1.length / 2) + 1), 0);
    const resumed = srv.stream(`/messages/stream?session_id=${session.id}`, { lastEventId: cut.id, closeOnTerminal: false });
    await waitFor(() => terminalOf(resumed, a2.id), { timeoutMs: 20000, message: 'the resumed session stream to reach the second message\'s end' });
    resumed.close();
    assert.ok(Buffer.concat([had, contiguousBytes(deltasOf(resumed, a1.id), had.length)]).equals(utf8(c1.content)),
      'resumed session stream: rest of the first message');
    assert.ok(contiguousBytes(deltasOf(resumed, a2.id), 0).equals(utf8(c2.content)),
      'resumed session stream: the later message from offset 0');

    // A session stream opened while a generation runs gets it from offset 0.
    const a3 = (await send(srv, session.id, 'Third question about bees.')).assistant_message;
    await waitFor(async () => (await getContent(srv, a3.id)).content.length > 0, { message: 'third message to start' });
    const late = srv.stream(`/messages/stream?session_id=${session.id}`, { closeOnTerminal: false });
    await waitFor(() => terminalOf(late, a3.id), { timeoutMs: 20000, message: 'terminal status of the third message' });
    late.close();
    const c3 = await waitTerminal(srv, a3.id);
    assert.ok(contiguousBytes(deltasOf(late, a3.id), 0).equals(utf8(c3.content)), 'generation in progress, from offset 0');

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
