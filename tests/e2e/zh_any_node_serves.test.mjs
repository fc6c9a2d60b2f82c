// Three chatd nodes on one PostgreSQL database: any node serves any answer,
// whichever node runs it (DESIGN §7, I1, I2; issue 11 point 2). Streams are
// dropped and resumed on another node with Last-Event-ID at 20 points, a
// session stream on one node carries an answer started on another (also one
// generating when it opens, from its start), 100
// answers are each read to their end on a node that does not run them, and a
// poll on one node misses no change the others make.
//
// In the e2e_pg_ variant only.

import test from 'node:test';
import assert from 'node:assert/strict';
import {
  withNodes, createSession, send, getContent, waitTerminal, waitFor, utf8, hasMultiByte,
  ON_POSTGRES,
} from './support/chatd.mjs';
import { openStream, assertCarried, contiguousBytes } from './support/sse.mjs';

const SKIP = !ON_POSTGRES && 'runs in the e2e_pg_ variant: several nodes share one PostgreSQL database';

test('zh: an answer sent on A, streamed on B and dropped and resumed on the nodes in turn 20 times arrives whole', { skip: SKIP }, async () => {
  const args = ['--sim-tokens-per-second', '20', '--sim-min-tokens', '300', '--sim-max-tokens', '340'];
  await withNodes(3, args, async (nodes) => {
    const [a] = nodes;
    const session = await createSession(a);
    const { assistant_message: am } = await send(a, session.id, 'Write about 東京, São Paulo and Zürich — at length.');
    const segments = [];
    let lastId;
    let offset = 0;
    for (let drop = 0; drop <= 20; drop++) {
      const node = nodes[1 + (drop % 2)]; // B, C, B, C, … never the owner
      const stream = openStream(node.url(`/api/v1/chat/messages/${am.id}/stream`), lastId ? { lastEventId: lastId } : {});
      if (drop < 20) {
        await stream.waitForDeltas(1 + (drop % 2));
      } else {
        await stream.waitForTerminal(60000);
      }
      stream.close();
      const deltas = stream.deltas();
      const bytes = contiguousBytes(deltas, offset);
      segments.push(bytes);
      offset += bytes.length;
      if (deltas.length > 0) lastId = deltas.at(-1).id;
      if (stream.terminal) break;
      assert.ok(drop < 20, 'the answer ended before 20 drops');
    }
    const final = await waitTerminal(a, am.id);
    assert.equal(final.status, 'completed');
    assert.ok(hasMultiByte(final.content), 'the answer has multi-byte characters');
    assert.ok(Buffer.concat(segments).equals(utf8(final.content)),
      `the ${segments.length} segments carried ${offset} bytes; the answer has ${utf8(final.content).length}`);
    assert.ok(segments.length >= 15, `only ${segments.length} segments: the answer ended too soon to test drops`);
  });
});

test('zh: a session stream on B carries an answer started on A', { skip: SKIP }, async () => {
  // Heartbeats far apart: the stream must find A's answer by itself.
  const args = ['--sim-tokens-per-second', '80', '--sim-min-tokens', '40', '--sim-max-tokens', '60',
    '--heartbeat-ms', '60000'];
  await withNodes(3, args, async ([a, b]) => {
    const session = await createSession(a);
    const stream = openStream(b.url(`/api/v1/chat/messages/stream?session_id=${session.id}`), { closeOnTerminal: false });
    await stream.opened();
    const { assistant_message: am } = await send(a, session.id, 'Hello from A — ça va?');
    const sentAt = Date.now();
    await waitFor(() => stream.events.some((e) => e.data?.message_id === am.id || e.data?.id === am.id),
      { timeoutMs: 10000, message: "B's session stream to notice A's answer" });
    assert.ok(Date.now() - sentAt < 2000, `B's session stream noticed A's answer after ${Date.now() - sentAt} ms`);
    await waitFor(() => stream.statuses().some((e) => e.data.id === am.id && e.data.status === 'completed'),
      { timeoutMs: 30000, message: "B's session stream to carry A's answer to its end" });
    stream.close();
    const final = await getContent(a, am.id);
    const deltas = stream.deltas().filter((e) => e.data.message_id === am.id);
    assert.ok(contiguousBytes(deltas, 0).equals(utf8(final.content)), "B's session stream carried A's answer whole");
  });
});

test('zh: a session stream opened on B while A\'s answer generates carries it from its start, then the next', { skip: SKIP }, async () => {
  // B runs nothing of this session: only the store tells it what generates.
  const args = ['--sim-tokens-per-second', '40', '--sim-min-tokens', '40', '--sim-max-tokens', '60',
    '--heartbeat-ms', '60000'];
  await withNodes(2, args, async ([a, b]) => {
    const session = await createSession(a);
    const { assistant_message: first } = await send(a, session.id, 'First, from A.');
    await waitFor(async () => (await getContent(a, first.id)).content.length > 0,
      { timeoutMs: 10000, message: "A's answer to commit some text" });
    const stream = openStream(b.url(`/api/v1/chat/messages/stream?session_id=${session.id}`), { closeOnTerminal: false });
    await stream.opened();
    await waitFor(() => stream.statuses().some((e) => e.data.id === first.id && e.data.status === 'completed'),
      { timeoutMs: 30000, message: "B's session stream to carry A's answer to its end" });
    const firstFinal = await getContent(a, first.id);
    assert.ok(contiguousBytes(stream.deltas().filter((e) => e.data.message_id === first.id), 0)
      .equals(utf8(firstFinal.content)), "B's session stream carried A's answer whole, from offset 0");
    // And the next one, sent on A after the stream opened.
    const { assistant_message: next } = await send(a, session.id, 'Then another.');
    await waitFor(() => stream.statuses().some((e) => e.data.id === next.id && e.data.status === 'completed'),
      { timeoutMs: 30000, message: "B's session stream to carry the next answer" });
    stream.close();
    const nextFinal = await getContent(a, next.id);
    assert.ok(contiguousBytes(stream.deltas().filter((e) => e.data.message_id === next.id), 0)
      .equals(utf8(nextFinal.content)), 'the next answer arrived whole');
  });
});

test('zh: 100 answers spread over the nodes, each read to its end on another node, are complete and correct', { skip: SKIP }, async () => {
  // One user (--auth none) with 100 answers live, read on 100 streams.
  const args = ['--sim-tokens-per-second', '50', '--sim-min-tokens', '40', '--sim-max-tokens', '80',
    '--max-generations-per-user', '200', '--max-streams-per-user', '200'];
  await withNodes(3, args, async (nodes) => {
    const runs = await Promise.all(Array.from({ length: 100 }, async (_, i) => {
      const owner = nodes[i % 3];
      const reader = nodes[(i + 1 + (i % 2)) % 3];
      const session = await createSession(owner);
      const { assistant_message: am } = await send(owner, session.id, `Question ${i}: tell me about ${i} ships.`);
      const stream = openStream(reader.url(`/api/v1/chat/messages/${am.id}/stream`));
      await stream.waitForTerminal(120000);
      return { owner, am, stream };
    }));
    for (const [i, { owner, am, stream }] of runs.entries()) {
      const final = await getContent(owner, am.id);
      assert.equal(final.status, 'completed', `answer ${i}`);
      assert.equal(stream.terminal.data.status, 'completed', `answer ${i}'s stream`);
      assertCarried(stream, utf8(final.content), `answer ${i} read on another node`);
    }
  });
});

test('zh: a poll on C while A and B write misses no change', { skip: SKIP }, async () => {
  const args = ['--sim-tokens-per-second', '100', '--sim-min-tokens', '20', '--sim-max-tokens', '40'];
  await withNodes(3, args, async ([a, b, c]) => {
    const session = await createSession(a);
    const seen = new Map(); // message id -> the newest version seen by polling
    let since = '';
    let stop = false;
    const poller = (async () => {
      while (!stop) {
        const r = await c.api('GET', `/messages/${session.id}/poll${since ? `?since=${encodeURIComponent(since)}` : ''}`);
        assert.equal(r.status, 200, r.text);
        for (const m of r.json.messages) {
          const prev = seen.get(m.id);
          assert.ok(!prev || prev.version <= m.version, `message ${m.id} went back from version ${prev?.version} to ${m.version}`);
          if (prev && m.version === prev.version) assert.equal(m.content, prev.content);
          if (prev) assert.ok(m.content.startsWith(prev.content), `message ${m.id} lost text between polls`);
          seen.set(m.id, m);
        }
        since = r.json.next_since;
        if (!r.json.has_more_changes) await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    for (let turn = 0; turn < 8; turn++) {
      const writer = turn % 2 ? b : a;
      const { assistant_message: am } = await send(writer, session.id, `turn ${turn} on ${writer.name}`);
      await waitTerminal(writer, am.id);
    }
    // One last poll after everything ended must leave nothing unseen.
    const history = (await a.api('GET', `/sessions/${session.id}/messages`)).json.messages;
    await waitFor(() => history.every((m) => seen.get(m.id)?.version === m.version),
      { timeoutMs: 10000, message: 'the poller to reach every final version' });
    stop = true;
    await poller;
    assert.equal(history.length, 16);
    for (const m of history) {
      const polled = seen.get(m.id);
      assert.equal(polled.status, m.status, m.id);
      assert.equal(polled.content, m.content, m.id);
    }
  });
});
