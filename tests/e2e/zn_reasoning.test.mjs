// Scenario zn: the model's reasoning is kept. Thinking from OpenAI-compatible
// servers (`reasoning_content`, `reasoning`) and from Anthropic
// (`thinking_delta`, asked for with --anthropic-thinking-budget-tokens) is
// stored as the message's `reasoning`, never in its content and never sent
// back as history; it streams as `reasoning` events before the deltas; a
// reader resumes mid-reasoning by cursor with every byte once, on this node
// and on another; and thinking counts as progress for the first-token
// timeout (a model that thinks past it is not cut off, retried and billed
// again).

import test from 'node:test';
import assert from 'node:assert/strict';
import {
  withProvider, newSession, turn, assertCompleted, assertRequestCount, assertScriptUsed,
  openaiEvents, anthropicEvents, EXPECTED, FAST_RETRY, FAKE_KEY,
} from './support/provider.mjs';
import {
  withChatd, withNodes, createSession, send, getContent, waitTerminal, ON_POSTGRES,
} from './support/chatd.mjs';
import { openStream, contiguousBytes } from './support/sse.mjs';

const openai = (args, name) => ({ provider: 'openai', basePath: '/v1', args: ['--model', 'gpt-x', ...args], env: { OPENAI_API_KEY: FAKE_KEY }, name });
const anthropic = (args, name) => ({ provider: 'anthropic', args: ['--model', 'claude-x', ...args], env: { ANTHROPIC_API_KEY: FAKE_KEY }, name });

// The simulated model thinks for 60 tokens, then answers 40, at 40 tokens/s.
const THINKING = ['--sim-tokens-per-second', '40', '--sim-min-tokens', '40', '--sim-max-tokens', '40',
  '--sim-reasoning-tokens', '60'];

/** Every prompt text chatd sent upstream in request `r` (OpenAI or Anthropic shape). */
function promptTexts(r) {
  const texts = (r.body.messages || []).map((m) => (typeof m.content === 'string' ? m.content : JSON.stringify(m.content)));
  if (r.body.system) texts.push(r.body.system);
  return texts.join('\n');
}

test('zn1: OpenAI-compatible reasoning_content and reasoning are stored as reasoning, streamed first, never sent back', async () => {
  await withProvider(openai(FAST_RETRY, 'chatd-zn1'), async (srv, up) => {
    up.script([
      { events: openaiEvents(['The answer ', 'is 42.'], { reasoning: ['Six times ', 'seven is 42; é.'] }) },
      { events: openaiEvents(['Sure.'], { reasoning: ['Ollama ', 'thinks.'], reasoningField: 'reasoning' }) },
    ]);
    const s = await newSession(srv);
    const sent = await send(srv, s.id, 'What is six times seven?');
    const stream = openStream(srv.url(`/api/v1/chat/messages/${sent.assistant_message.id}/stream`));
    await stream.waitForTerminal();
    const first = await getContent(srv, sent.assistant_message.id);
    assert.equal(first.status, 'completed');
    assert.equal(first.content, 'The answer is 42.');
    assert.equal(first.reasoning, 'Six times seven is 42; é.');
    // Streamed as its own events, all before the first delta, with the
    // reasoning's own offsets; the last cursor covers both texts.
    const kinds = stream.events.map((e) => e.type).filter((t) => t !== 'status');
    assert.ok(kinds.indexOf('delta') > kinds.lastIndexOf('reasoning'), `reasoning first: ${kinds}`);
    assert.equal(contiguousBytes(stream.reasonings()).toString('utf8'), first.reasoning);
    assert.equal(stream.text(), first.content);
    assert.equal(stream.terminal.id, first.cursor);
    assert.equal(first.cursor, `${first.id}.${Buffer.byteLength(first.content)}.${Buffer.byteLength(first.reasoning)}`);

    const second = await turn(srv, s.id, 'And in Ollama?');
    assertCompleted(second.message, 'Sure.', 'stop');
    assert.equal(second.message.reasoning, 'Ollama thinks.');
    // The history sent back upstream has the first answer's content, not its reasoning.
    await assertRequestCount(up, 2);
    const history = promptTexts(up.requests[1]);
    assert.ok(history.includes('The answer is 42.'), history);
    assert.ok(!history.includes('Six times'), `reasoning was sent back: ${history}`);
    assertScriptUsed(up);
  });
});

test('zn2: a model that thinks past the first-token timeout is not cut off', async () => {
  // Reasoning every 250 ms for 2 s against a first-token timeout of 800 ms:
  // with thinking counted as progress it completes on its first request.
  const reasoning = Array.from({ length: 8 }, (_, i) => `step ${i}. `);
  await withProvider(openai(['--upstream-first-token-timeout-ms', '800', '--upstream-idle-timeout-ms', '20000', ...FAST_RETRY], 'chatd-zn2'), async (srv, up) => {
    up.script([{ events: openaiEvents(['Done.'], { reasoning }), delayMs: 250 }]);
    const s = await newSession(srv);
    const t = await turn(srv, s.id, 'Think slowly.');
    assertCompleted(t.message, 'Done.', 'stop');
    assert.equal(t.message.reasoning, reasoning.join(''));
    await assertRequestCount(up, 1);
    assertScriptUsed(up);
  });
});

test('zn3: Anthropic thinking is asked for with its budget and kept as reasoning', async () => {
  const fixture = EXPECTED['anthropic-thinking.sse'];
  await withProvider(anthropic(['--anthropic-thinking-budget-tokens', '1024', '--max-output-tokens', '2048', '--temperature', '0.5'], 'chatd-zn3'), async (srv, up) => {
    up.script([
      { fixture: 'anthropic-thinking.sse' },
      { events: anthropicEvents(['Again ', '42.'], { thinking: ['Still ', 'six times seven.'] }) },
    ]);
    const s = await newSession(srv);
    const t = await turn(srv, s.id, 'What is six times seven?');
    assertCompleted(t.message, fixture.text, 'length');
    assert.equal(t.message.reasoning, 'The user wants a number. 6 times 7 is 42.');
    const body = up.requests[0].body;
    assert.deepEqual(body.thinking, { type: 'enabled', budget_tokens: 1024 });
    assert.equal(body.max_tokens, 2048);
    assert.equal(body.temperature, undefined, 'no temperature with thinking');
    const again = await turn(srv, s.id, 'Sure?');
    assertCompleted(again.message, 'Again 42.', 'stop');
    assert.equal(again.message.reasoning, 'Still six times seven.');
    assert.ok(!promptTexts(up.requests[1]).includes('The user wants'), 'thinking is not sent back');
    assertScriptUsed(up);
  });
});

/** Reads message `id` from `url` until `enough(handle)`, then resumes from the last event id; both parts, joined, are the whole. */
async function resumeMidReasoning(readUrl, resumeUrl, id, enough) {
  const first = openStream(readUrl, { closeOnTerminal: true });
  await first.opened();
  await waitFor(() => enough(first) || first.terminal, 'reasoning to arrive');
  first.close();
  assert.equal(first.terminal, null, 'the answer was still generating');
  const last = first.events.at(-1);
  const rest = openStream(resumeUrl, { lastEventId: last.id });
  await rest.waitForTerminal();
  rest.close();
  const reasonings = [...first.reasonings(), ...rest.reasonings()];
  const deltas = [...first.deltas(), ...rest.deltas()];
  return {
    reasoning: contiguousBytes(reasonings).toString('utf8'),
    text: contiguousBytes(deltas).toString('utf8'),
    resumedAt: last.id,
    rest,
  };
}

async function waitFor(predicate, message) {
  const until = Date.now() + 20000;
  while (!predicate()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${message}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('zn4: a stream resumed mid-reasoning by its cursor carries every byte once', async () => {
  await withChatd({ args: THINKING, name: 'chatd-zn4' }, async (srv) => {
    const s = await createSession(srv);
    const sent = await send(srv, s.id, 'Think it through.');
    const id = sent.assistant_message.id;
    const url = srv.url(`/api/v1/chat/messages/${id}/stream`);
    const r = await resumeMidReasoning(url, url, id, (h) => h.reasonings().length >= 3);
    assert.match(r.resumedAt, /^msg_[0-9A-Z]{26}\.0\.[1-9][0-9]*$/, 'a cursor inside the reasoning');
    const stored = await waitTerminal(srv, id);
    assert.equal(r.reasoning, stored.reasoning);
    assert.equal(r.text, stored.content);
    assert.ok(stored.reasoning.startsWith('Thinking: '));
    assert.ok(!stored.content.includes('Thinking: '));
    // The resumed part opens with the rest of the reasoning: no second status, no replay.
    assert.notEqual(r.rest.events[0].type, 'status');
    // A cursor past the reasoning's end, or inside a character of it, is refused.
    const end = await getContent(srv, id);
    const past = `${id}.0.${Buffer.byteLength(end.reasoning) + 1}`;
    const refused = await srv.api('GET', `/messages/${id}/stream?last_event_id=${past}`);
    assert.equal(refused.status, 400);
    assert.equal(refused.json.error.code, 'invalid_cursor');
  });
});

test('zn5: another node streams and resumes the reasoning of an answer it does not run', { skip: !ON_POSTGRES && 'needs PostgreSQL (two nodes, one database)' }, async () => {
  await withNodes(2, THINKING, async ([a, b]) => {
    const s = await createSession(a);
    const sent = await send(a, s.id, 'Think it through, on A.');
    const id = sent.assistant_message.id;
    const r = await resumeMidReasoning(b.url(`/api/v1/chat/messages/${id}/stream`),
      a.url(`/api/v1/chat/messages/${id}/stream`), id, (h) => h.reasonings().length >= 3);
    const stored = await waitTerminal(a, id);
    assert.equal(r.reasoning, stored.reasoning);
    assert.equal(r.text, stored.content);
    // And the other way round: read on A, resumed on B.
    const next = await send(a, s.id, 'Once more.');
    const r2 = await resumeMidReasoning(a.url(`/api/v1/chat/messages/${next.assistant_message.id}/stream`),
      b.url(`/api/v1/chat/messages/${next.assistant_message.id}/stream`), next.assistant_message.id,
      (h) => h.reasonings().length >= 3);
    const stored2 = await waitTerminal(b, next.assistant_message.id);
    assert.equal(r2.reasoning, stored2.reasoning);
    assert.equal(r2.text, stored2.content);
  });
});
