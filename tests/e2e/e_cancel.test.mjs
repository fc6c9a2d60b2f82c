// Scenario e: cancel mid-stream. Cancel answers 200 with status cancelled, the
// partial content is kept, nothing is appended afterwards, cancelling again is
// 200, and cancelling a finished message (or a user message) is 409.

import test from 'node:test';
import assert from 'node:assert/strict';
import { withChatd, createSession, send, getContent, waitTerminal, delay, utf8, isPrefix } from './support/chatd.mjs';
import { contiguousBytes, assertCarried } from './support/sse.mjs';

const ARGS = ['--sim-tokens-per-second', '60', '--sim-min-tokens', '150', '--sim-max-tokens', '250'];

test('e: cancel mid-stream keeps the partial content and stops the generation', async () => {
  await withChatd({ args: ARGS, name: 'chatd-e' }, async (srv) => {
    const session = await createSession(srv, { title: 'cancel' });
    const { user_message: um, assistant_message: am } = await send(srv, session.id, 'Write a very long poem about rivers.');

    const stream = srv.stream(`/messages/${am.id}/stream`);
    await stream.waitForDeltas(5);
    assert.equal(stream.terminal, null, 'generation ended before it could be cancelled');
    const seenBeforeCancel = contiguousBytes(stream.deltas(), 0);

    const cancel = await srv.api('POST', `/messages/${am.id}/cancel`);
    assert.equal(cancel.status, 200, cancel.text);
    assert.equal(cancel.json.id, am.id);
    assert.equal(cancel.json.status, 'cancelled');
    assert.equal(cancel.json.is_streaming, false);
    assert.equal(cancel.json.finish_reason, 'cancelled');

    // Stored state right after cancel answered.
    const c1 = await getContent(srv, am.id);
    assert.equal(c1.status, 'cancelled');
    const kept = utf8(c1.content);
    assert.ok(kept.length > 0, 'partial content is kept');
    assert.ok(isPrefix(seenBeforeCancel, kept), 'what the stream delivered before the cancel is a prefix of the kept content');
    if (typeof cancel.json.content === 'string') {
      assert.equal(cancel.json.content, c1.content, 'content in the cancel answer equals the stored content');
    }

    // The stream delivers the rest of the committed text, then the terminal cancelled status.
    await stream.waitForTerminal(10000);
    stream.close();
    assert.equal(stream.terminal.data.status, 'cancelled');
    assertCarried(stream, kept, 'the stream open during the cancel');

    // Nothing is appended after cancel answered (absence of change: a short, bounded watch).
    const v1 = (await srv.api('GET', `/sessions/${session.id}/messages`)).json.messages.find((m) => m.id === am.id);
    assert.equal(v1.status, 'cancelled');
    assert.equal(v1.content, c1.content);
    const watchUntil = Date.now() + 600;
    while (Date.now() < watchUntil) {
      await delay(50);
      const c = await getContent(srv, am.id);
      assert.equal(c.status, 'cancelled');
      assert.equal(c.content, c1.content, `content grew after cancel: ${kept.length} -> ${utf8(c.content).length} bytes`);
    }
    const v2 = (await srv.api('GET', `/sessions/${session.id}/messages`)).json.messages.find((m) => m.id === am.id);
    assert.equal(v2.version, v1.version, 'version changed after cancel');
    assert.equal(v2.last_updated, v1.last_updated);

    const st = await srv.api('GET', `/messages/${session.id}/status`);
    assert.equal(st.json.has_active_generation, false);
    assert.equal(st.json.generating_message_id ?? null, null);

    // Cancel is idempotent.
    const again = await srv.api('POST', `/messages/${am.id}/cancel`);
    assert.equal(again.status, 200, again.text);
    assert.equal(again.json.status, 'cancelled');
    assert.equal((await getContent(srv, am.id)).content, c1.content);

    // A late per-message stream replays the kept content and ends with cancelled.
    const replay = srv.stream(`/messages/${am.id}/stream`);
    await replay.waitForTerminal();
    replay.close();
    assertCarried(replay, kept, 'late per-message stream of the cancelled message');
    assert.equal(replay.terminal.data.status, 'cancelled');

    // Cancelling a user message is 409 not_generating.
    const userCancel = await srv.api('POST', `/messages/${um.id}/cancel`);
    assert.equal(userCancel.status, 409, userCancel.text);
    assert.equal(userCancel.json.error.code, 'not_generating');

    // The session accepts a new message; once that one completes, cancelling it is 409.
    const next = await send(srv, session.id, 'Short one, please.');
    const done = await waitTerminal(srv, next.assistant_message.id, 30000);
    assert.equal(done.status, 'completed');
    const late = await srv.api('POST', `/messages/${next.assistant_message.id}/cancel`);
    assert.equal(late.status, 409, late.text);
    assert.equal(late.json.error.code, 'not_generating');
    assert.equal(typeof late.json.error.message, 'string');
    const after = await getContent(srv, next.assistant_message.id);
    assert.equal(after.status, 'completed', 'a refused cancel does not change the message');
    assert.equal(after.content, done.content);
  });
});
