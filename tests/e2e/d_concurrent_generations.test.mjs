// Scenario d: 50 generations at once in 50 sessions, one SSE subscriber each;
// every one completes and every streamed text equals its stored content.

import test from 'node:test';
import assert from 'node:assert/strict';
import { withChatd, createSession, send, getContent, waitFor, utf8 } from './support/chatd.mjs';
import { assertCarried } from './support/sse.mjs';

const N = 50;
// One user runs all 50 at once: lift the per-user limits.
const ARGS = ['--sim-tokens-per-second', '200', '--sim-min-tokens', '100', '--sim-max-tokens', '200',
  '--max-generations-per-user', '100', '--max-streams-per-user', '100'];

test('d: 50 concurrent generations each stream exactly their stored content', { timeout: 150000 }, async () => {
  await withChatd({ args: ARGS, name: 'chatd-d' }, async (srv) => {
    const sessions = await Promise.all(Array.from({ length: N }, (_, i) => createSession(srv, { title: `concurrent ${i}` })));
    assert.equal(new Set(sessions.map((s) => s.id)).size, N, 'session ids are unique');

    // Send all 50 at once, and attach one subscriber to each as soon as its send is accepted.
    const flows = await Promise.all(sessions.map(async (session, i) => {
      const { assistant_message: am } = await send(srv, session.id, `Question number ${i}: what is ${i} squared, and why?`);
      const stream = srv.stream(`/messages/${am.id}/stream`);
      return { session, am, stream };
    }));
    assert.equal(new Set(flows.map((f) => f.am.id)).size, N, 'message ids are unique');

    // While they run, several sessions report an active generation at the same time.
    const active = await Promise.all(flows.map((f) => srv.api('GET', `/messages/${f.session.id}/status`)));
    const activeCount = active.filter((r) => r.json?.has_active_generation === true).length;

    await Promise.all(flows.map((f) => f.stream.waitForTerminal(120000)));

    const failures = [];
    for (const f of flows) {
      f.stream.close();
      const c = await waitFor(async () => {
        const x = await getContent(srv, f.am.id);
        return x.status !== 'generating' ? x : null;
      }, { timeoutMs: 10000, message: `stored status of ${f.am.id}` });
      try {
        assertCarried(f.stream, utf8(c.content), f.session.title);
      } catch (err) {
        failures.push(err.message);
      }
      if (c.status !== 'completed') failures.push(`${f.session.title}: stored status ${c.status} ${JSON.stringify(c.error ?? null)}`);
      if (f.stream.terminal.data.status !== 'completed') failures.push(`${f.session.title}: terminal event status ${f.stream.terminal.data.status}`);
      if (c.content.length === 0) failures.push(`${f.session.title}: empty content`);
      if (f.stream.connections() !== 1) failures.push(`${f.session.title}: client had to reconnect ${f.stream.connections() - 1} times`);
    }
    assert.deepEqual(failures, [], `${failures.length} of ${N} generations failed`);
    assert.ok(activeCount >= 1, 'at least one session reported an active generation while they ran');

    // Nothing is left generating.
    const statuses = await Promise.all(flows.map((f) => srv.api('GET', `/messages/${f.session.id}/status`)));
    for (const st of statuses) assert.equal(st.json.has_active_generation, false);
  });
});
