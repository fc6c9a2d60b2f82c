// Three chatd nodes on one PostgreSQL database, and what a node's death,
// stall or deploy does to the answers it runs (DESIGN §7, I5; issue 11).
// Each node holds its answers under a lease it renews; another node takes
// over an answer whose lease expired (kill -9, SIGSTOP) or was handed over
// (SIGTERM), and continues it after its stored text: the simulated model
// continues to the very answer an uninterrupted run gives. A node that wakes
// after its lease was taken stores nothing more (fencing).
//
// In the e2e_pg_ variant only.

import test from 'node:test';
import assert from 'node:assert/strict';
import {
  withNodes, createSession, send, getContent, waitTerminal, waitFor, utf8, ON_POSTGRES,
} from './support/chatd.mjs';
import { assertCarried } from './support/sse.mjs';

const SKIP = !ON_POSTGRES && 'runs in the e2e_pg_ variant: several nodes share one PostgreSQL database';
const LEASE_MS = 1500;
// The bound: takeover within the lease plus 5 s.
const TAKEOVER_BOUND_MS = LEASE_MS + 5000;
const SIM = ['--sim-tokens-per-second', '40', '--sim-min-tokens', '160', '--sim-max-tokens', '200'];
const ARGS = [...SIM, '--lease-ms', String(LEASE_MS), '--db-timeout-ms', '2000'];
// A hand-over must not wait for the lease: with a long one, its expiry is
// far from the next scan.
const LONG_LEASE_MS = 10000;
const SYSTEM = 'Answer in full sentences.';

// The answer an uninterrupted run gives to `prompt`, generated on `node`.
async function referenceAnswer(node, prompt) {
  const session = await createSession(node, { system_prompt: SYSTEM });
  const { assistant_message: am } = await send(node, session.id, prompt);
  const final = await waitTerminal(node, am.id, 60000);
  assert.equal(final.status, 'completed');
  return final.content;
}

// Starts an answer on `owner` and streams it from `reader` until some text came.
async function answerFollowedElsewhere(owner, reader, prompt) {
  const session = await createSession(owner, { system_prompt: SYSTEM });
  const { assistant_message: am } = await send(owner, session.id, prompt);
  const stream = reader.stream(`/messages/${am.id}/stream`);
  await stream.waitForDeltas(5);
  assert.equal(stream.terminal, null, 'the answer ended before the fault');
  return { id: am.id, stream };
}

// Resolves with the time (ms) at which `node` shows message `id` past `bytes`.
async function progressPast(node, id, bytes, timeoutMs) {
  await waitFor(async () => {
    const c = await getContent(node, id);
    return utf8(c.content).length > bytes || c.status !== 'generating';
  }, { timeoutMs, intervalMs: 50, message: `message ${id} to grow past ${bytes} bytes on ${node.name}` });
  return Date.now();
}

function tookOver(nodes, id) {
  return nodes.filter((n) => n.stderrText().includes(`taking over message ${id}`));
}

test('zf: kill -9 of a node mid-answer: another takes it over within the bound and the answer is whole', { skip: SKIP }, async () => {
  await withNodes(3, ARGS, async ([a, b, c]) => {
    const prompt = 'Tell me about lighthouses: café, naïve, 東京, and the sea.';
    const expected = referenceAnswer(c, prompt);
    const { id, stream } = await answerFollowedElsewhere(a, b, prompt);
    const killedAt = Date.now();
    const exit = await a.kill9();
    assert.equal(exit.signal, 'SIGKILL');
    const atKill = utf8((await getContent(b, id)).content).length;
    const movedAt = await progressPast(b, id, atKill, TAKEOVER_BOUND_MS + 5000);
    assert.ok(movedAt - killedAt <= TAKEOVER_BOUND_MS,
      `the answer went on ${movedAt - killedAt} ms after the kill (bound ${TAKEOVER_BOUND_MS} ms)`);
    const final = await waitTerminal(b, id, 60000);
    assert.equal(final.status, 'completed', JSON.stringify(final).slice(0, 300));
    assert.equal(final.content, await expected, 'the continued answer is the uninterrupted one');
    assert.equal(tookOver([b, c], id).length, 1, 'exactly one node took it over');
    // The client on B saw every byte once, across the takeover.
    const end = await stream.waitForTerminal();
    assert.equal(end.data.status, 'completed');
    assertCarried(stream, utf8(final.content), "B's stream across A's death");
    assert.equal(stream.opens, 1, 'the stream on B never broke');
  });
});

test('zf: SIGTERM hands a node\'s answers over: they go on elsewhere at once, none interrupted', { skip: SKIP }, async () => {
  await withNodes(3, [...SIM, '--lease-ms', String(LONG_LEASE_MS)], async ([a, b, c]) => {
    const prompts = ['Describe a harbour at dawn.', 'Explain tides — ça va?', 'List rivers of 日本.'];
    const expected = prompts.map((p) => referenceAnswer(c, p));
    const live = [];
    for (const p of prompts) live.push(await answerFollowedElsewhere(a, b, p));
    const exit = await a.stop();
    const exitedAt = Date.now();
    assert.equal(a.stopTimedOut, undefined, 'A exited within its bound');
    assert.equal(exit.code, 0, `A's exit: ${JSON.stringify(exit)}`);
    // Handed over: each is taken at the next scan, not a lease later.
    const moved = await Promise.all(live.map(async ({ id }) => {
      const atExit = utf8((await getContent(b, id)).content).length;
      return progressPast(b, id, atExit, 10000);
    }));
    for (const [i, movedAt] of moved.entries()) {
      assert.ok(movedAt - exitedAt < LONG_LEASE_MS / 2,
        `answer ${i} went on ${movedAt - exitedAt} ms after A exited (its lease: ${LONG_LEASE_MS} ms)`);
    }
    for (const [i, { id, stream }] of live.entries()) {
      const final = await waitTerminal(b, id, 60000);
      assert.equal(final.status, 'completed', `answer ${i}: ${JSON.stringify(final).slice(0, 300)}`);
      assert.equal(final.content, await expected[i], `answer ${i} is the uninterrupted one`);
      const end = await stream.waitForTerminal();
      assert.equal(end.data.status, 'completed');
      assertCarried(stream, utf8(final.content), `B's stream of answer ${i}`);
    }
    assert.match(a.stderrText(), /handed over/);
  });
});

test('zf: a node stopped past its lease and woken writes nothing more; the answer is whole', { skip: SKIP }, async () => {
  await withNodes(3, ARGS, async ([a, b, c]) => {
    const prompt = 'What do lighthouse keepers do all night? Écrivez.';
    const expected = referenceAnswer(c, prompt);
    const { id, stream } = await answerFollowedElsewhere(a, b, prompt);
    a.proc.kill('SIGSTOP');
    const stoppedAt = Date.now();
    const atStop = utf8((await getContent(b, id)).content).length;
    const movedAt = await progressPast(b, id, atStop, TAKEOVER_BOUND_MS + 5000);
    assert.ok(movedAt - stoppedAt <= TAKEOVER_BOUND_MS,
      `the answer went on ${movedAt - stoppedAt} ms after A stopped (bound ${TAKEOVER_BOUND_MS} ms)`);
    a.proc.kill('SIGCONT');
    // A learns it lost the lease (a refused write or a renewal) and stops.
    await waitFor(() => /lost its lease|has taken it over/.test(a.stderrText()) &&
      a.stderrText().includes(id), { timeoutMs: 10000, message: 'A to notice it lost the lease' });
    const final = await waitTerminal(b, id, 60000);
    assert.equal(final.status, 'completed', JSON.stringify(final).slice(0, 300));
    assert.equal(final.content, await expected, 'the answer is the uninterrupted one');
    assert.equal(tookOver([b, c], id).length, 1, 'exactly one node took it over');
    assert.doesNotMatch(a.stderrText(), new RegExp(`message ${id} at byte [0-9]+ .*refused`),
      'A logged no write failure other than the fencing');
    await stream.waitForTerminal();
    assertCarried(stream, utf8(final.content), "B's stream across A's stall");
    // A is healthy: it serves and starts answers again.
    const session = await createSession(a);
    const { assistant_message: next } = await send(a, session.id, 'Still there?');
    assert.equal((await waitTerminal(a, next.id, 60000)).status, 'completed');
  });
});
