// Scenario f: chatd is killed with SIGKILL mid-generation while a client is
// streaming, then restarted on the same data dir. No text the client saw is
// lost, the message ends as error/interrupted, and it can still be streamed.

import test from 'node:test';
import assert from 'node:assert/strict';
import { withChatd, createSession, send, getContent, waitFor, waitTerminal, utf8, isPrefix } from './support/chatd.mjs';
import { contiguousBytes, assertCarried } from './support/sse.mjs';

const ARGS = ['--sim-tokens-per-second', '20', '--sim-min-tokens', '150', '--sim-max-tokens', '400'];

test('f: kill -9 mid-generation, restart: what the client saw survives, message ends interrupted', async () => {
  await withChatd({ args: ARGS, name: 'chatd-f' }, async (srv) => {
    const session = await createSession(srv, { title: 'crash', system_prompt: 'Be thorough.' });
    const prompt = 'Tell me everything about the history of bridges.';
    const { user_message: um, assistant_message: am } = await send(srv, session.id, prompt);

    const stream = srv.stream(`/messages/${am.id}/stream`);
    await stream.waitForDeltas(6);
    assert.equal(stream.terminal, null, 'generation ended before the crash');
    const exit = await srv.kill9();
    assert.equal(exit.signal, 'SIGKILL');
    // Whatever was received before the connection died counts as seen.
    const seen = contiguousBytes(stream.deltas(), 0);
    const lastSeenId = stream.deltas().at(-1).id;
    stream.close();
    assert.ok(seen.length > 0);

    await srv.restart();

    // On restart the message is closed as interrupted (possibly shortly after start-up).
    const final = await waitFor(async () => {
      const c = await getContent(srv, am.id);
      return c.status !== 'generating' ? c : null;
    }, { timeoutMs: 15000, message: 'the interrupted message to reach a terminal status after restart' });
    assert.equal(final.status, 'error', `after restart: ${JSON.stringify(final).slice(0, 300)}`);
    const stored = utf8(final.content);
    assert.ok(isPrefix(seen, stored),
      `the client saw ${seen.length} bytes that are not a prefix of the ${stored.length} stored bytes`);

    const hist = await srv.api('GET', `/sessions/${session.id}/messages`);
    assert.equal(hist.status, 200);
    assert.deepEqual(hist.json.messages.map((m) => m.id), [um.id, am.id]);
    const [u, a] = hist.json.messages;
    assert.equal(u.content, prompt);
    assert.equal(u.status, 'completed');
    assert.equal(a.status, 'error');
    assert.equal(a.is_streaming, false);
    assert.equal(a.content, final.content);
    assert.equal(a.error?.code, 'interrupted', `error object: ${JSON.stringify(a.error)}`);
    assert.equal(typeof a.error.message, 'string');
    if (a.finish_reason != null) assert.ok(['interrupted', 'error'].includes(a.finish_reason), `finish_reason ${a.finish_reason}`);

    const s = await srv.api('GET', `/sessions/${session.id}`);
    assert.equal(s.status, 200);
    assert.equal(s.json.title, 'crash');
    assert.equal(s.json.system_prompt, 'Be thorough.');
    const list = await srv.api('GET', '/sessions');
    assert.ok(list.json.sessions.some((x) => x.id === session.id));

    const st = await srv.api('GET', `/messages/${session.id}/status`);
    assert.equal(st.json.has_active_generation, false);

    // A per-message stream from offset 0 replays the stored content, then the terminal status.
    const replay = srv.stream(`/messages/${am.id}/stream`);
    await replay.waitForTerminal();
    replay.close();
    assertCarried(replay, stored, 'per-message stream from offset 0 after the restart');
    assert.equal(replay.terminal.data.status, 'error');
    assert.equal(replay.terminal.data.error?.code, 'interrupted');

    // The client's last event id from before the crash still resumes exactly.
    const resumed = srv.stream(`/messages/${am.id}/stream`, { lastEventId: lastSeenId });
    await resumed.waitForTerminal();
    resumed.close();
    assert.ok(Buffer.concat([seen, contiguousBytes(resumed.deltas(), seen.length)]).equals(stored),
      'resuming with the pre-crash Last-Event-ID yields exactly the rest of the stored content');

    // The session is usable again: a new send is accepted and runs.
    const next = await send(srv, session.id, 'Continue, briefly.');
    assert.equal(next.assistant_message.status, 'generating');
    const cancel = await srv.api('POST', `/messages/${next.assistant_message.id}/cancel`);
    assert.equal(cancel.status, 200, cancel.text);
    await waitTerminal(srv, next.assistant_message.id);
  });
});
