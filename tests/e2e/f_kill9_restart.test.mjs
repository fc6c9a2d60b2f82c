// Scenario f: chatd is killed with SIGKILL mid-generation while a client is
// streaming, then restarted on the same data dir. No text the client saw is
// lost. With --resume-interrupted false the message ends as error/interrupted
// and can still be streamed; by default the restarted chatd continues the
// answer from its stored content, and a client resuming with its pre-crash
// Last-Event-ID gets exactly the rest.

import test from 'node:test';
import assert from 'node:assert/strict';
import { withChatd, createSession, send, getContent, waitFor, waitTerminal, utf8, isPrefix } from './support/chatd.mjs';
import { contiguousBytes, assertCarried } from './support/sse.mjs';

const ARGS = ['--sim-tokens-per-second', '20', '--sim-min-tokens', '150', '--sim-max-tokens', '400'];
const NO_RESUME = [...ARGS, '--resume-interrupted', 'false'];

test('f: kill -9 mid-generation, restart without resume: what the client saw survives, message ends interrupted', async () => {
  await withChatd({ args: NO_RESUME, name: 'chatd-f' }, async (srv) => {
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

test('f: kill -9 mid-generation, restart: the answer continues where the store left it, every byte once', async () => {
  const system = 'Be thorough.';
  const prompt = 'Tell me everything about the history of tunnels.';
  // The simulated answer is a function of the prompt: an uninterrupted run
  // gives the text the resumed one must end with.
  let whole;
  await withChatd({ args: ['--sim-tokens-per-second', '0', '--sim-min-tokens', '150', '--sim-max-tokens', '400'], name: 'chatd-f-reference' }, async (srv) => {
    const session = await createSession(srv, { system_prompt: system });
    const { assistant_message: am } = await send(srv, session.id, prompt);
    const done = await waitTerminal(srv, am.id);
    assert.equal(done.status, 'completed');
    whole = utf8(done.content);
  });

  await withChatd({ args: ARGS, name: 'chatd-f-resume' }, async (srv) => {
    const session = await createSession(srv, { system_prompt: system });
    const { assistant_message: am } = await send(srv, session.id, prompt);
    const stream = srv.stream(`/messages/${am.id}/stream`);
    await stream.waitForDeltas(6);
    assert.equal(stream.terminal, null, 'generation ended before the crash');
    await srv.kill9();
    const seen = contiguousBytes(stream.deltas(), 0);
    const lastSeenId = stream.deltas().at(-1).id;
    stream.close();
    assert.ok(isPrefix(seen, whole), 'what the client saw is the start of the answer');
    assert.ok(seen.length < whole.length);

    await srv.restart();
    const resumed = srv.stream(`/messages/${am.id}/stream`, { lastEventId: lastSeenId });
    await resumed.waitForTerminal();
    resumed.close();
    assert.equal(resumed.terminal.data.status, 'completed', JSON.stringify(resumed.terminal.data));
    const final = await getContent(srv, am.id);
    assert.equal(final.status, 'completed');
    assert.ok(utf8(final.content).equals(whole), 'the resumed answer is the uninterrupted one');
    assert.ok(Buffer.concat([seen, contiguousBytes(resumed.deltas(), seen.length)]).equals(whole),
      'the pre-crash stream plus the resumed one carry every byte exactly once');
    assert.match(srv.stderrText(), /taking over message /);
  });
});
