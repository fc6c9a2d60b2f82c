// The page's message model (web/model.js) in plain Node, no browser: stream
// deltas applied by UTF-8 byte offset, duplicates skipped, gaps refused and
// reported, committed texts merged (kept when longer), status rules (a
// terminal status stays), messages of another session ignored, unknown
// messages reported, the history merge, and the trace; the same for an
// answer's reasoning, in its own byte space (reasoning events, committed
// `reasoning` fields, resume and replay).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MessageModel, applyStatusFields, newMessage } from '../../web/model.js';

function recorder() {
  const changed = [];
  const unknown = [];
  let t = 0;
  const model = new MessageModel({
    onChange: (m) => changed.push(m.id),
    onUnknown: (id) => unknown.push(id),
    now: () => (t += 1),
  });
  model.reset('ses_1');
  return { model, changed, unknown };
}

test('deltas apply at their byte offset: appended, overlap tail, duplicate skipped, gap refused', () => {
  const { model } = recorder();
  model.merge({ id: 'msg_a', role: 'assistant', status: 'generating', content: '' }, 'send');
  const steps = [
    [0, 'ab'], [2, '日本'], [2, '日本'], [5, '本🙂'], [40, 'x'], [12, ''],
  ].map(([offset, text]) => {
    const result = model.applyDelta({ message_id: 'msg_a', offset, text });
    const m = model.get('msg_a');
    return [result, m.text.text, m.text.bytes];
  });
  assert.deepEqual(steps, [
    ['applied', 'ab', 2],
    ['applied', 'ab日本', 8],
    ['duplicate', 'ab日本', 8],
    ['overlap', 'ab日本🙂', 12],
    ['gap', 'ab日本🙂', 12],
    ['duplicate', 'ab日本🙂', 12],
  ]);
  const deltas = model.traceOf('msg_a').filter((e) => e.kind === 'delta');
  assert.deepEqual(deltas.map((e) => [e.offset, e.length, e.result]), [
    [0, 2, 'applied'], [2, 6, 'applied'], [2, 6, 'duplicate'], [5, 7, 'overlap'], [40, 1, 'gap'], [12, 0, 'duplicate'],
  ]);
});

test('a skipped or refused delta asks for no render; an applied one does', () => {
  const { model, changed } = recorder();
  model.merge({ id: 'msg_a', role: 'assistant', status: 'generating', content: 'abc' }, 'content');
  changed.length = 0;
  model.applyDelta({ message_id: 'msg_a', offset: 0, text: 'abc' });
  model.applyDelta({ message_id: 'msg_a', offset: 9, text: 'z' });
  assert.deepEqual(changed, []);
  model.applyDelta({ message_id: 'msg_a', offset: 3, text: 'd' });
  assert.deepEqual(changed, ['msg_a']);
});

test('a delta for an unknown message creates it as a generating answer and reports it', () => {
  const { model, unknown } = recorder();
  assert.equal(model.applyDelta({ message_id: 'msg_x', offset: 0, text: 'hi' }), 'applied');
  assert.deepEqual(unknown, ['msg_x']);
  const m = model.get('msg_x');
  assert.equal(m.role, 'assistant');
  assert.equal(m.status, 'generating');
  assert.equal(m.text.text, 'hi');
  assert.equal(model.generating(), m);
});

test('committed texts are kept when longer: extended, same, stale, replaced', () => {
  const { model } = recorder();
  const merge = (content, source = 'poll') => {
    model.merge({ id: 'msg_a', role: 'assistant', status: 'generating', content }, source);
    return model.get('msg_a').text.text;
  };
  assert.equal(merge('Hello'), 'Hello');
  assert.equal(merge('Hello, wor'), 'Hello, wor');
  assert.equal(merge('Hello'), 'Hello, wor', 'a shorter (older) text does not shrink ours');
  assert.equal(merge('Hello, wor'), 'Hello, wor');
  assert.equal(merge('Goodbye, world'), 'Goodbye, world', 'a longer text that is not an extension wins');
  assert.deepEqual(model.traceOf('msg_a').map((e) => e.result), ['extended', 'extended', 'stale', 'same', 'replaced']);
});

test('a committed text after deltas continues from where the deltas ended', () => {
  const { model } = recorder();
  model.merge({ id: 'msg_a', role: 'assistant', status: 'generating', content: '' }, 'send');
  model.applyDelta({ message_id: 'msg_a', offset: 0, text: 'one ' });
  model.merge({ id: 'msg_a', content: 'one two ', status: 'generating' }, 'content');
  assert.equal(model.applyDelta({ message_id: 'msg_a', offset: 4, text: 'two ' }), 'duplicate');
  assert.equal(model.applyDelta({ message_id: 'msg_a', offset: 8, text: 'three' }), 'applied');
  assert.equal(model.get('msg_a').text.text, 'one two three');
});

test('onlyNew merges leave held messages alone', () => {
  const { model } = recorder();
  model.merge({ id: 'msg_a', role: 'assistant', status: 'generating', content: 'ab' }, 'content');
  model.merge({ id: 'msg_a', role: 'assistant', status: 'generating', content: 'abcdef' }, 'history', { onlyNew: true });
  assert.equal(model.get('msg_a').text.text, 'ab');
});

test('history merge: adds unseen messages, and ends a held generation that ended meanwhile', () => {
  const { model } = recorder();
  model.merge({ id: 'msg_b', role: 'assistant', status: 'generating', content: 'par' }, 'content');
  const added = model.mergeHistory([
    { id: 'msg_a', role: 'user', status: 'completed', content: 'question' },
    { id: 'msg_b', role: 'assistant', status: 'completed', version: 3, content: 'partial answer' },
  ], { onlyNew: true });
  assert.equal(added, true);
  assert.equal(model.get('msg_a').text.text, 'question');
  assert.equal(model.get('msg_b').status, 'completed');
  assert.equal(model.get('msg_b').text.text, 'partial answer');
  assert.equal(model.mergeHistory([{ id: 'msg_a', role: 'user', status: 'completed', content: 'question' }],
                                  { onlyNew: true }), false);
  assert.deepEqual(model.sorted().map((m) => m.id), ['msg_a', 'msg_b']);
});

test('messages of another session are ignored', () => {
  const { model } = recorder();
  assert.equal(model.merge({ id: 'msg_z', session_id: 'ses_2', role: 'user', content: 'not ours' }, 'poll'), null);
  assert.equal(model.get('msg_z'), null);
  assert.ok(model.merge({ id: 'msg_y', session_id: 'ses_1', role: 'user', content: 'ours' }, 'poll'));
  model.reset('ses_2');
  assert.equal(model.size, 0, 'reset drops the messages of the previous session');
});

test('status: a terminal status stays; otherwise the higher version wins', () => {
  const msg = newMessage({ id: 'msg_a', status: 'generating', version: 2 });
  applyStatusFields(msg, { status: 'generating', version: 1 });
  assert.equal(msg.version, 2);
  applyStatusFields(msg, { status: 'error', version: 1, error: { code: 'provider_unavailable', message: 'down' } });
  assert.equal(msg.status, 'error', 'a terminal status beats a newer non-terminal one');
  assert.deepEqual(msg.error, { code: 'provider_unavailable', message: 'down' });
  applyStatusFields(msg, { status: 'generating', version: 9 });
  assert.equal(msg.status, 'error', 'never back to generating');
  applyStatusFields(msg, { status: 'completed', version: 10, error: null, finish_reason: 'stop' });
  assert.equal(msg.status, 'completed');
  assert.equal(msg.error, null);
  assert.equal(msg.finishReason, 'stop');
});

test('a status event for an unknown message creates it without text and reports it', () => {
  const { model, unknown } = recorder();
  model.applyStatusEvent({ id: 'msg_s', session_id: 'ses_1', role: 'assistant', status: 'generating', content: 'x' });
  assert.deepEqual(unknown, ['msg_s']);
  assert.equal(model.get('msg_s').text.text, '', 'status events carry no text into the model');
  model.applyStatusEvent({ id: 'msg_s', session_id: 'ses_1', status: 'completed', version: 4 });
  assert.equal(model.get('msg_s').status, 'completed');
  assert.deepEqual(unknown, ['msg_s'], 'a known message is not reported again');
  assert.deepEqual(model.traceOf('msg_s').map((e) => e.kind), ['status', 'status']);
});

test('anchor: the generating answer, else the last answer', () => {
  const { model } = recorder();
  assert.equal(model.anchor(), null);
  model.merge({ id: 'msg_1', role: 'user', status: 'completed', content: 'q1' }, 'history');
  model.merge({ id: 'msg_2', role: 'assistant', status: 'completed', content: 'a1' }, 'history');
  model.merge({ id: 'msg_3', role: 'user', status: 'completed', content: 'q2' }, 'history');
  assert.equal(model.anchor().id, 'msg_2');
  model.merge({ id: 'msg_4', role: 'assistant', status: 'generating', content: '' }, 'history');
  assert.equal(model.anchor().id, 'msg_4');
});

test('the trace is bounded and kept across sessions', () => {
  const model = new MessageModel({ traceLimit: 3, now: () => 0 });
  model.reset('ses_1');
  model.merge({ id: 'msg_a', role: 'assistant', content: '' }, 'send');
  for (let i = 0; i < 5; i++) model.applyDelta({ message_id: 'msg_a', offset: i, text: 'x' });
  model.reset('ses_2');
  assert.deepEqual(model.traceOf().map((e) => e.offset), [2, 3, 4]);
});

test('reasoning events apply at their byte offset in the reasoning, apart from the text', () => {
  const { model } = recorder();
  model.merge({ id: 'msg_a', role: 'assistant', status: 'generating', content: '' }, 'send');
  const steps = [
    [0, 'Let'], [3, ' me 思'], [3, ' me 思'], [7, '思考'], [40, 'x'], [13, ''],
  ].map(([offset, text]) => {
    const result = model.applyReasoning({ message_id: 'msg_a', offset, text });
    const m = model.get('msg_a');
    return [result, m.reasoning.text, m.reasoning.bytes];
  });
  assert.deepEqual(steps, [
    ['applied', 'Let', 3],
    ['applied', 'Let me 思', 10],
    ['duplicate', 'Let me 思', 10],
    ['overlap', 'Let me 思考', 13],
    ['gap', 'Let me 思考', 13],
    ['duplicate', 'Let me 思考', 13],
  ]);
  assert.equal(model.get('msg_a').text.text, '', 'reasoning never enters the text');
  const events = model.traceOf('msg_a').filter((e) => e.kind === 'reasoning');
  assert.deepEqual(events.map((e) => [e.offset, e.length, e.result]), [
    [0, 3, 'applied'], [3, 7, 'applied'], [3, 7, 'duplicate'], [7, 6, 'overlap'], [40, 1, 'gap'], [13, 0, 'duplicate'],
  ]);
  assert.equal(model.traceOf('msg_a').filter((e) => e.kind === 'delta').length, 0, 'no text delta traced');
});

test('text and reasoning keep separate offsets, in whatever order their events come', () => {
  const { model } = recorder();
  model.merge({ id: 'msg_a', role: 'assistant', status: 'generating', content: '' }, 'send');
  assert.equal(model.applyReasoning({ message_id: 'msg_a', offset: 0, text: 'think ' }), 'applied');
  assert.equal(model.applyDelta({ message_id: 'msg_a', offset: 0, text: 'Hello' }), 'applied');
  assert.equal(model.applyReasoning({ message_id: 'msg_a', offset: 6, text: 'more' }), 'applied',
               'reasoning after the first delta still lands at its own offset');
  assert.equal(model.applyDelta({ message_id: 'msg_a', offset: 5, text: ', world' }), 'applied');
  const m = model.get('msg_a');
  assert.equal(m.text.text, 'Hello, world');
  assert.equal(m.reasoning.text, 'think more');
});

test('a skipped or refused reasoning event asks for no render; an applied one does', () => {
  const { model, changed } = recorder();
  model.merge({ id: 'msg_a', role: 'assistant', status: 'generating', content: '', reasoning: 'abc' }, 'content');
  changed.length = 0;
  model.applyReasoning({ message_id: 'msg_a', offset: 0, text: 'abc' });
  model.applyReasoning({ message_id: 'msg_a', offset: 9, text: 'z' });
  assert.deepEqual(changed, []);
  model.applyReasoning({ message_id: 'msg_a', offset: 3, text: 'd' });
  assert.deepEqual(changed, ['msg_a']);
});

test('a reasoning event for an unknown message creates it as a generating answer and reports it', () => {
  const { model, unknown } = recorder();
  assert.equal(model.applyReasoning({ message_id: 'msg_x', offset: 0, text: 'hm' }), 'applied');
  assert.deepEqual(unknown, ['msg_x']);
  const m = model.get('msg_x');
  assert.equal(m.status, 'generating');
  assert.equal(m.reasoning.text, 'hm');
  assert.equal(m.text.text, '');
});

test('committed reasoning (history, content, poll) is kept when longer; an absent field changes nothing', () => {
  const { model } = recorder();
  const merge = (fields, source = 'poll') => {
    model.merge({ id: 'msg_a', role: 'assistant', status: 'generating', ...fields }, source);
    const m = model.get('msg_a');
    return [m.reasoning.text, m.text.text];
  };
  assert.deepEqual(merge({ content: '' }), ['', ''], 'no reasoning field: none');
  assert.deepEqual(merge({ content: '', reasoning: 'First' }), ['First', '']);
  assert.deepEqual(merge({ content: 'Hi', reasoning: 'First, then' }), ['First, then', 'Hi']);
  assert.deepEqual(merge({ content: 'Hi', reasoning: 'First' }), ['First, then', 'Hi'], 'shorter: ours stays');
  assert.deepEqual(merge({ content: 'Hi there' }), ['First, then', 'Hi there'], 'absent: reasoning kept');
  assert.deepEqual(merge({ content: 'Hi there', reasoning: '' }), ['First, then', 'Hi there'], 'empty: kept');
  const entries = model.traceOf('msg_a').map((e) => [e.kind, e.bytes, e.result, e.reasoningBytes, e.reasoningResult]);
  assert.deepEqual(entries, [
    ['poll', 0, 'same', undefined, undefined],
    ['poll', 0, 'same', 5, 'extended'],
    ['poll', 2, 'extended', 11, 'extended'],
    ['poll', 2, 'same', 11, 'stale'],
    ['poll', 8, 'extended', undefined, undefined],
    ['poll', 8, 'same', undefined, undefined],
  ], 'one entry per merge; reasoning bytes apart from text bytes');
});

test('resume: after the content endpoint\'s reasoning, events from its cursor continue it; a replay from 0 adds nothing', () => {
  const { model } = recorder();
  model.merge({ id: 'msg_a', role: 'assistant', status: 'generating', content: '', reasoning: 'Step one. ' },
              'content');
  assert.equal(model.applyReasoning({ message_id: 'msg_a', offset: 10, text: 'Step two. ' }), 'applied');
  // A stream opened without a cursor replays the generation from offset 0.
  assert.equal(model.applyReasoning({ message_id: 'msg_a', offset: 0, text: 'Step one. ' }), 'duplicate');
  assert.equal(model.applyReasoning({ message_id: 'msg_a', offset: 0, text: 'Step one. Step two. Three.' }),
               'overlap');
  model.mergeHistory([{ id: 'msg_a', role: 'assistant', status: 'completed', version: 9, content: 'Done.',
                        reasoning: 'Step one. Step two. Three.' }]);
  const m = model.get('msg_a');
  assert.equal(m.reasoning.text, 'Step one. Step two. Three.', 'held once, not doubled');
  assert.equal(m.text.text, 'Done.');
});

test('status events carry no reasoning into the model (it comes from reasoning events)', () => {
  const { model } = recorder();
  model.merge({ id: 'msg_a', role: 'assistant', status: 'generating', content: '' }, 'send');
  model.applyStatusEvent({ id: 'msg_a', session_id: 'ses_1', status: 'completed', version: 3, reasoning: 'x' });
  assert.equal(model.get('msg_a').status, 'completed');
  assert.equal(model.get('msg_a').reasoning.text, '');
});
