// Two chatd nodes on one PostgreSQL database (DESIGN §7; issue 11, first
// slice): sends into one session on both nodes at the same moment start
// exactly one generation, and the other node answers 409 with its id; what one
// node generates, the other serves, byte for byte.
//
// Leases and takeover are not built yet: both nodes start before any answer
// exists, so neither start-up mistakes the other's answers for a dead
// process's. In the e2e_pg_ variant only.

import test from 'node:test';
import assert from 'node:assert/strict';
import {
  withNodes, createSession, getContent, waitTerminal, waitFor, utf8, ON_POSTGRES,
} from './support/chatd.mjs';
import { assertCarried } from './support/sse.mjs';

const SKIP = !ON_POSTGRES && 'runs in the e2e_pg_ variant: several nodes share one PostgreSQL database';
const SIM = ['--sim-tokens-per-second', '100', '--sim-min-tokens', '20', '--sim-max-tokens', '40'];

function postSend(node, sessionId, content) {
  return node.api('POST', `/sessions/${sessionId}/messages`, { content });
}

async function history(node, sessionId) {
  const r = await node.api('GET', `/sessions/${sessionId}/messages`);
  assert.equal(r.status, 200, r.text);
  return r.json.messages;
}

test('ze: simultaneous sends into one session on two nodes start exactly one generation', { skip: SKIP }, async () => {
  await withNodes(2, SIM, async ([a, b]) => {
    const session = await createSession(a);
    for (let round = 0; round < 10; round++) {
      const [ra, rb] = await Promise.all([
        postSend(a, session.id, `round ${round} from A`),
        postSend(b, session.id, `round ${round} from B`),
      ]);
      const statuses = [ra.status, rb.status].sort();
      assert.deepEqual(statuses, [202, 409], `round ${round}: ${ra.status} ${ra.text} / ${rb.status} ${rb.text}`);
      const [won, lost, winner, other] = ra.status === 202 ? [ra, rb, a, b] : [rb, ra, b, a];
      const answer = won.json.assistant_message;
      assert.equal(lost.json.error.code, 'generation_in_progress');
      assert.equal(lost.json.error.active_message_id, answer.id, `round ${round}: the loser names the winner's answer`);
      // The answer ends on the node that runs it, and reads the same on both.
      const onOther = await waitTerminal(other, answer.id);
      assert.equal(onOther.status, 'completed');
      assert.deepEqual(await getContent(winner, answer.id), onOther);
    }
    // The losers wrote nothing: one question and one answer per round, the
    // same history on both nodes.
    const onA = await history(a, session.id);
    assert.equal(onA.length, 20);
    assert.deepEqual(onA.map((m) => m.role), Array.from({ length: 20 }, (_, i) => (i % 2 ? 'assistant' : 'user')));
    assert.deepEqual(await history(b, session.id), onA);
  });
});

test('ze: an answer generated on one node streams whole from the other', { skip: SKIP }, async () => {
  await withNodes(2, SIM, async ([a, b]) => {
    const session = await createSession(a);
    const r = await postSend(a, session.id, 'Tell me about the sea, in words with accents: café, naïve, 東京.');
    assert.equal(r.status, 202, r.text);
    const answer = r.json.assistant_message;
    // B reports A's answer as generating in the session's status.
    const status = await waitFor(async () => {
      const s = await b.api('GET', `/messages/${session.id}/status`);
      return s.status === 200 && s.json.generating_message_id === answer.id ? s.json : null;
    }, { message: "B's status to name A's answer" });
    assert.equal(status.generating_message_id, answer.id);
    const stream = b.stream(`/messages/${answer.id}/stream`);
    const end = await stream.waitForTerminal();
    const final = await getContent(a, answer.id);
    assert.equal(final.status, 'completed');
    assert.equal(end.data.status, 'completed');
    assertCarried(stream, utf8(final.content), "B's stream of A's answer");
  });
});
