// Scenario c: an SSE stream dropped mid-generation and resumed with its last
// event id (Last-Event-ID header or ?last_event_id=) continues exactly where
// it stopped, at 20 different drop points: what the client had plus what it
// gets equals the final stored content byte for byte.

import test from 'node:test';
import assert from 'node:assert/strict';
import { withChatd, createSession, send, getContent, waitFor, waitTerminal, utf8, hasMultiByte } from './support/chatd.mjs';
import { contiguousBytes } from './support/sse.mjs';

const TOKENS = 240;
const ARGS = ['--sim-tokens-per-second', '50', '--sim-min-tokens', String(TOKENS), '--sim-max-tokens', String(TOKENS)];
const DROPS = 20;
// Drop after the k-th delta event, k spread over the first ~60% of the answer
// (one delta per token when lightly loaded; batching under load stays within it).
const K_MAX = 150;
const dropPoints = Array.from({ length: DROPS }, (_, i) => 1 + Math.round((i * (K_MAX - 1)) / (DROPS - 1)));

function resumeStream(srv, messageId, cursor, mode) {
  const path = `/messages/${messageId}/stream`;
  if (mode === 'header') return srv.stream(path, { lastEventId: cursor });
  return srv.stream(`${path}?last_event_id=${encodeURIComponent(cursor)}`);
}

async function dropAndResume(srv, messageId, k, mode, awayBytes) {
  let dropEvent = null;
  const first = srv.stream(`/messages/${messageId}/stream`, {
    onEvent(ev, h) {
      if (ev.type === 'delta' && h.deltas().length === k) {
        dropEvent = ev;
        h.close();
      }
    },
  });
  await waitFor(() => first.closed, { timeoutMs: 30000, intervalMs: 10, message: `dropper k=${k} to reach its drop point` });
  await first.socketsClosed();
  const before = contiguousBytes(first.deltas(), 0);
  const lastDelta = first.deltas().at(-1);
  assert.ok(lastDelta, `dropper k=${k} received no delta before the stream ended`);
  const cursor = (dropEvent ?? lastDelta).id;
  assert.equal(typeof cursor, 'string');
  assert.ok(cursor.length > 0);
  const droppedWhileGenerating = dropEvent !== null && first.terminal === null;

  if (awayBytes) {
    // The client stays away while the generation moves on.
    await waitFor(async () => {
      const c = await getContent(srv, messageId);
      return c.status !== 'generating' || utf8(c.content).length >= before.length + awayBytes;
    }, { timeoutMs: 20000, message: 'the generation to move on while the client is away' });
  }

  const second = resumeStream(srv, messageId, cursor, mode);
  await second.waitForTerminal();
  second.close();
  const after = contiguousBytes(second.deltas(), before.length);
  return { k, mode, cursor, before, after, droppedWhileGenerating, reconnects: second.connections() - 1, firstDeltaCount: first.deltas().length };
}

test('c: resume after 20 different drop points is exact (header and query)', async (t) => {
  await withChatd({ args: ARGS, name: 'chatd-c' }, async (srv) => {
    const session = await createSession(srv, { title: 'resume' });
    const { assistant_message: am } = await send(srv, session.id, 'Describe a journey through Kyoto, Zürich and São Paulo.');

    const reference = srv.stream(`/messages/${am.id}/stream`);
    const runs = dropPoints.map((k, i) => dropAndResume(srv, am.id, k, i % 2 === 0 ? 'header' : 'query', i % 4 === 3 ? 40 : 0));
    const results = await Promise.all(runs);
    await reference.waitForTerminal();
    reference.close();

    const final = await waitTerminal(srv, am.id);
    assert.equal(final.status, 'completed');
    const finalBytes = utf8(final.content);
    assert.ok(hasMultiByte(final.content), 'the answer must contain multi-byte UTF-8 for this test to mean anything');
    assert.equal(final.content.includes('\uFFFD'), false, 'stored content has no replacement characters');

    const refBytes = contiguousBytes(reference.deltas(), 0);
    assert.ok(refBytes.equals(finalBytes), `uninterrupted stream (${refBytes.length} bytes) != stored content (${finalBytes.length} bytes)`);
    assert.ok(reference.deltas().some((ev) => hasMultiByte(ev.data.text)), 'some delta carries multi-byte characters');
    for (const ev of reference.deltas()) {
      assert.equal(ev.data.text.includes('\uFFFD'), false, 'a delta split a UTF-8 character');
    }

    for (const r of results) {
      const joined = Buffer.concat([r.before, r.after]);
      assert.ok(joined.equals(finalBytes),
        `drop after delta #${r.k} (${r.mode}): had ${r.before.length} bytes + resumed ${r.after.length} bytes = ${joined.length}, final is ${finalBytes.length}`);
      assert.equal(r.reconnects, 0, `resumed stream for k=${r.k} ended without its terminal status and the client reconnected`);
    }

    t.diagnostic(`uninterrupted stream: ${reference.deltas().length} deltas, ${finalBytes.length} bytes; ` +
      `drop offsets: ${results.map((r) => `${r.before.length}${r.droppedWhileGenerating ? '' : '(late)'}`).join(' ')}`);
    const midStream = results.filter((r) => r.droppedWhileGenerating);
    const distinctOffsets = new Set(midStream.map((r) => r.before.length));
    assert.ok(distinctOffsets.size >= 15,
      `expected >= 15 distinct drop offsets mid-generation; got ${distinctOffsets.size} ` +
      `(deltas per first connection: ${results.map((r) => r.firstDeltaCount).join(',')}; reference had ${reference.deltas().length} deltas)`);
    assert.ok(midStream.some((r) => r.mode === 'header') && midStream.some((r) => r.mode === 'query'));
    assert.ok(results.some((r) => hasMultiByte(r.before.toString('utf8'))) && results.some((r) => hasMultiByte(r.after.toString('utf8'))));

    // Late resume from the store after the message ended, with every drop cursor.
    for (const [i, r] of results.entries()) {
      const mode = i % 2 === 0 ? 'query' : 'header';
      const s = resumeStream(srv, am.id, r.cursor, mode);
      await s.waitForTerminal();
      s.close();
      const after = contiguousBytes(s.deltas(), r.before.length);
      assert.ok(Buffer.concat([r.before, after]).equals(finalBytes),
        `late resume after delta #${r.k} (${mode}) is not exact: ${r.before.length} + ${after.length} != ${finalBytes.length}`);
      assert.equal(s.terminal.data.status, 'completed');
    }

    // Resuming at the very end yields no text, only the terminal status again.
    const endCursor = reference.deltas().at(-1).id;
    const atEnd = resumeStream(srv, am.id, endCursor, 'header');
    await atEnd.waitForTerminal();
    atEnd.close();
    assert.equal(atEnd.deltas().reduce((n, ev) => n + utf8(ev.data.text).length, 0), 0);
    assert.equal(atEnd.terminal.data.status, 'completed');

    // Last-Event-ID wins over the query parameter when both are given.
    const mid = results[Math.floor(results.length / 2)];
    const both = srv.stream(`/messages/${am.id}/stream?last_event_id=${encodeURIComponent(results[0].cursor)}`, { lastEventId: mid.cursor });
    await both.waitForTerminal();
    both.close();
    assert.ok(Buffer.concat([mid.before, contiguousBytes(both.deltas(), mid.before.length)]).equals(finalBytes),
      'with both a Last-Event-ID header and last_event_id, the header must win');
  });
});
