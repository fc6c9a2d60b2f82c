// Scenario a: a generation started with no client attached keeps running in
// the background; the content endpoint shows the partial text growing and the
// status endpoint names the generating message until it ends.

import test from 'node:test';
import assert from 'node:assert/strict';
import { withChatd, createSession, send, getContent, utf8, isPrefix, TERMINAL } from './support/chatd.mjs';
import { contiguousBytes } from './support/sse.mjs';

const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const ARGS = ['--sim-tokens-per-second', '40', '--sim-min-tokens', '120', '--sim-max-tokens', '160'];

test('a: background generation without any client shows growing partial content', async () => {
  await withChatd({ args: ARGS, name: 'chatd-a' }, async (srv) => {
    const session = await createSession(srv, { title: 'background' });
    assert.match(session.id, /^ses_/);
    assert.equal(session.title, 'background');
    assert.match(session.created_at, ISO_MS);

    const prompt = 'Tell me a long story about a lighthouse keeper.';
    const sent = await send(srv, session.id, prompt);
    const { user_message: um, assistant_message: am } = sent;
    assert.equal(um.role, 'user');
    assert.equal(um.content, prompt);
    assert.equal(um.status, 'completed');
    assert.equal(um.session_id, session.id);
    assert.equal(am.role, 'assistant');
    assert.equal(am.status, 'generating');
    assert.equal(am.content, '');
    assert.equal(am.session_id, session.id);
    assert.match(am.id, /^msg_/);
    assert.notEqual(am.id, um.id);

    // Watch the message with no stream open: status endpoint, then content.
    const seen = []; // { bytes, cursor, last_updated } while generating
    let final = null;
    let statusChecksWhileGenerating = 0;
    const deadline = Date.now() + 30000;
    while (!final) {
      assert.ok(Date.now() < deadline, 'generation did not finish within 30 s');
      const st = await srv.api('GET', `/messages/${session.id}/status`);
      assert.equal(st.status, 200, st.text);
      const c = await getContent(srv, am.id);
      assert.equal(c.id, am.id);
      assert.equal(typeof c.content, 'string');
      assert.equal(typeof c.cursor, 'string', 'content endpoint must return a cursor string');
      assert.match(c.last_updated, ISO_MS);
      if (c.status === 'generating') {
        // The status read happened before this content read, so it was generating then too.
        assert.equal(st.json.has_active_generation, true, `status endpoint while generating: ${st.text}`);
        assert.equal(st.json.generating_message_id, am.id);
        assert.equal(typeof st.json.last_updated, 'string');
        statusChecksWhileGenerating += 1;
        seen.push({ bytes: utf8(c.content), cursor: c.cursor, last_updated: c.last_updated });
      } else {
        assert.ok(TERMINAL.has(c.status), `unexpected status ${c.status}`);
        final = c;
      }
    }

    assert.equal(final.status, 'completed', `final content answer: ${JSON.stringify(final).slice(0, 300)}`);
    const finalBytes = utf8(final.content);
    assert.ok(finalBytes.length > 0, 'completed message has content');
    assert.ok(statusChecksWhileGenerating >= 1, 'status endpoint was checked while generating');

    // Partial content grows: lengths never shrink, every snapshot is a prefix of the final text.
    let prev = -1;
    let prevUpdated = '';
    const distinct = new Set();
    for (const s of seen) {
      assert.ok(s.bytes.length >= prev, `content shrank from ${prev} to ${s.bytes.length} bytes`);
      assert.ok(s.last_updated >= prevUpdated, 'last_updated went backwards');
      assert.ok(isPrefix(s.bytes, finalBytes), `partial content (${s.bytes.length} bytes) is not a prefix of the final content`);
      prev = s.bytes.length;
      prevUpdated = s.last_updated;
      if (s.bytes.length > 0 && s.bytes.length < finalBytes.length) distinct.add(s.bytes.length);
    }
    assert.ok(distinct.size >= 3,
      `expected at least 3 distinct partial lengths while generating, saw ${[...distinct].join(', ') || 'none'} (${seen.length} reads)`);

    // No active generation any more.
    const after = await srv.api('GET', `/messages/${session.id}/status`);
    assert.equal(after.status, 200);
    assert.equal(after.json.has_active_generation, false);
    assert.equal(after.json.generating_message_id ?? null, null);
    assert.equal(typeof after.json.last_updated, 'string');

    // History holds both messages in order, the assistant one complete.
    const hist = await srv.api('GET', `/sessions/${session.id}/messages`);
    assert.equal(hist.status, 200);
    assert.deepEqual(hist.json.messages.map((m) => m.id), [um.id, am.id]);
    const stored = hist.json.messages[1];
    assert.equal(stored.content, final.content);
    assert.equal(stored.status, 'completed');
    assert.equal(stored.is_streaming, false);
    assert.equal(stored.finish_reason, 'stop');
    assert.equal(stored.error, null);
    assert.equal(typeof stored.version, 'number');

    // A cursor from the content endpoint attaches a stream with no gap and no duplicate.
    const picks = [seen[Math.floor(seen.length / 4)], seen[Math.floor(seen.length / 2)], seen[seen.length - 1]];
    for (const pick of picks) {
      const s = srv.stream(`/messages/${am.id}/stream`, { lastEventId: pick.cursor });
      await s.waitForTerminal();
      s.close();
      const rest = contiguousBytes(s.deltas(), pick.bytes.length);
      assert.ok(Buffer.concat([pick.bytes, rest]).equals(finalBytes),
        `content(${pick.bytes.length} bytes) + stream from its cursor (${rest.length} bytes) != final (${finalBytes.length} bytes)`);
      assert.equal(s.terminal.data.status, 'completed');
    }
  });
});
