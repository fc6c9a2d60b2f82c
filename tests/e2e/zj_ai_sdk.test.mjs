// Scenario zj: the AI SDK's own client (the `ai` package, pinned) against
// chatd's UI message stream endpoints, as `useChat` with DefaultChatTransport
// uses them: send and read a whole answer, a dropped connection resumed with
// reconnectToStream, a reloaded page (a new Chat) resuming mid-answer, stop,
// 204 when idle, a cursor that continues, and streams chatd itself cuts off.

import test from 'node:test';
import assert from 'node:assert/strict';
import { AbstractChat, DefaultChatTransport } from 'ai';
import { withChatd, getContent, waitFor, waitTerminal, utf8, hasMultiByte, delay } from './support/chatd.mjs';
import { connectRaw, parseResponses } from './support/raw_http.mjs';

const CHAT_API = '/api/v1/ai-sdk/chat';
const SLOW = ['--sim-tokens-per-second', '40', '--sim-min-tokens', '160', '--sim-max-tokens', '160'];

// The state React's useChat keeps, in plain objects (what @ai-sdk/react's
// Chat adds to AbstractChat).
class NodeChatState {
  constructor(messages = []) {
    this.messages = messages;
    this.status = 'ready';
    this.error = undefined;
  }
  pushMessage(m) { this.messages = [...this.messages, m]; }
  popMessage() { this.messages = this.messages.slice(0, -1); }
  replaceMessage(i, m) { this.messages = [...this.messages.slice(0, i), m, ...this.messages.slice(i + 1)]; }
  snapshot(x) { return structuredClone(x); }
}

class Chat extends AbstractChat {
  constructor({ messages, ...init }) {
    super({ ...init, state: new NodeChatState(messages) });
  }
  get messages() { return this.state.messages; }
}

function chatId() {
  return `chat-${Math.random().toString(36).slice(2, 12)}`;
}

function transportFor(srv, options = {}) {
  return new DefaultChatTransport({ api: srv.url(CHAT_API), ...options });
}

function textOf(message) {
  return message.parts.filter((p) => p.type === 'text').map((p) => p.text).join('');
}

function assistants(chat) {
  return chat.messages.filter((m) => m.role === 'assistant');
}

// A fetch whose POST answers break off, as a dropped connection does, once
// `bytes` of the body have arrived.
function fetchThatDrops(bytes) {
  return async (url, init) => {
    const res = await fetch(url, init);
    if (init?.method !== 'POST' || !res.body) return res;
    const reader = res.body.getReader();
    let seen = 0;
    const body = new ReadableStream({
      async pull(controller) {
        const { done, value } = await reader.read();
        if (done) return controller.close();
        seen += value.length;
        controller.enqueue(value);
        if (seen >= bytes) {
          await reader.cancel();
          controller.error(new TypeError('network error'));
        }
      },
    });
    return new Response(body, { status: res.status, headers: res.headers });
  };
}

// The raw SSE events of a response body: { id, data } (data parsed unless [DONE]).
async function readEvents(res, { until } = {}) {
  const events = [];
  const decoder = new TextDecoder();
  let buf = '';
  let error = null;
  const reader = res.body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true });
      let end;
      while ((end = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, end);
        buf = buf.slice(end + 2);
        let id = null;
        let data = null;
        for (const line of block.split('\n')) {
          if (line.startsWith('id: ')) id = line.slice(4);
          if (line.startsWith('data: ')) data = line.slice(6);
        }
        if (data === null) continue;  // retry: line, ping comments
        events.push({ id, data: data === '[DONE]' ? data : JSON.parse(data) });
        if (until && until(events)) {
          await reader.cancel();
          return { events, error };
        }
      }
    }
  } catch (err) {
    error = err;
  }
  return { events, error };
}

function deltasText(events) {
  return events.filter((e) => e.data?.type === 'text-delta').map((e) => e.data.delta).join('');
}

function postChat(srv, id, text, messageId = `u-${Math.random().toString(36).slice(2)}`) {
  return fetch(srv.url(CHAT_API), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ id, trigger: 'submit-message', messages: [{ id: messageId, role: 'user', parts: [{ type: 'text', text }] }] }),
  });
}

async function history(srv, id) {
  const r = await srv.http('GET', `${CHAT_API}/${id}/messages`);
  assert.equal(r.status, 200, r.text);
  return r.json;
}

test('zj: the AI SDK sends and reads a whole answer, as stored', async () => {
  await withChatd({ name: 'chatd-zj-send' }, async (srv) => {
    const id = chatId();
    const chat = new Chat({ id, transport: transportFor(srv) });
    await chat.sendMessage({ text: 'Tell me about Zürich and São Paulo.' });
    assert.equal(chat.status, 'ready', String(chat.error));
    assert.equal(chat.messages.length, 2);
    const [user, answer] = chat.messages;
    assert.equal(user.role, 'user');
    assert.equal(answer.role, 'assistant');
    assert.match(answer.id, /^msg_/, 'the assistant message carries chatd\'s id');
    const stored = await getContent(srv, answer.id);
    assert.equal(stored.status, 'completed');
    assert.equal(textOf(answer), stored.content);
    assert.equal(answer.parts.filter((p) => p.type === 'text').length, 1);

    // The chat is a session of chatd's, listed with its chat id.
    const sessions = await srv.api('GET', '/sessions');
    const session = sessions.json.sessions.find((s) => s.chat_id === id);
    assert.ok(session, 'the chat made a session carrying its id');
    assert.equal(session.title, 'Tell me about Zürich and São Paulo.');
    // History as UI messages: both, once.
    const loaded = await history(srv, id);
    assert.deepEqual(loaded.map((m) => m.role), ['user', 'assistant']);
    assert.equal(loaded[1].id, answer.id);
    assert.equal(textOf(loaded[1]), stored.content);
    // A chatd session id is a chat id too.
    const again = new Chat({ id: session.id, transport: transportFor(srv), messages: loaded });
    await again.sendMessage({ text: 'And Kyoto?' });
    assert.equal(again.status, 'ready', String(again.error));
    assert.equal((await history(srv, id)).length, 4);
  });
});

test('zj: the wire: headers, event order, cursors as ids, [DONE] after finish', async () => {
  await withChatd({ name: 'chatd-zj-wire' }, async (srv) => {
    const res = await postChat(srv, chatId(), 'Hello there, in detail.');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^text\/event-stream/);
    assert.equal(res.headers.get('x-vercel-ai-ui-message-stream'), 'v1');
    assert.equal(res.headers.get('transfer-encoding'), 'chunked');
    const { events, error } = await readEvents(res);
    assert.equal(error, null);
    const types = events.map((e) => (e.data === '[DONE]' ? '[DONE]' : e.data.type));
    const deltas = types.filter((t) => t === 'text-delta').length;
    assert.ok(deltas > 0);
    assert.deepEqual(types, ['start', 'start-step', 'text-start', ...Array(deltas).fill('text-delta'),
      'text-end', 'finish-step', 'finish', '[DONE]']);
    const messageId = events[0].data.messageId;
    assert.match(messageId, /^msg_/);
    assert.equal(events.at(-2).data.finishReason, 'stop');
    const stored = await getContent(srv, messageId);
    assert.equal(deltasText(events), stored.content);
    for (const e of events) assert.ok(e.id?.startsWith(`${messageId}.`), `every event carries a cursor: ${JSON.stringify(e)}`);
    assert.equal(events.at(-1).id, stored.cursor, 'the last cursor is the end of the content');
  });
});

test('zj: a dropped connection resumed with reconnectToStream has every byte once', async () => {
  await withChatd({ args: SLOW, name: 'chatd-zj-drop' }, async (srv) => {
    for (const replay of [true, false]) {
      const id = chatId();
      const chat = new Chat({ id, transport: transportFor(srv, { fetch: fetchThatDrops(1200) }) });
      await chat.sendMessage({ text: 'A long answer about Kyoto, please.' });
      assert.equal(chat.status, 'error', 'the dropped connection is an error');
      const partial = textOf(assistants(chat)[0]);
      assert.ok(partial.length > 0, 'some text came before the drop');
      if (replay) {
        // The default: the resume replays the whole answer from `start`.
        await chat.resumeStream();
      } else {
        // The transport's reconnect, read as a client that continues.
        const stream = await transportFor(srv).reconnectToStream({ chatId: id });
        assert.ok(stream, 'a generating chat has a stream to resume');
        const chunks = [];
        for await (const c of stream) chunks.push(c);
        assert.equal(chunks[0].type, 'start');
        const text = chunks.filter((c) => c.type === 'text-delta').map((c) => c.delta).join('');
        assert.equal(chunks.at(-1).type, 'finish');
        const stored = await waitTerminal(srv, chunks[0].messageId);
        assert.equal(text, stored.content, 'the replay is the whole answer');
        continue;
      }
      assert.equal(chat.status, 'ready', String(chat.error));
      const answers = assistants(chat);
      assert.equal(answers.length, 1, 'one assistant message');
      assert.equal(answers[0].parts.filter((p) => p.type === 'text').length, 1, 'one text part');
      const stored = await waitTerminal(srv, answers[0].id);
      assert.equal(stored.status, 'completed');
      assert.equal(textOf(answers[0]), stored.content);
      assert.ok(hasMultiByte(stored.content) || stored.content.length > partial.length);
    }
  });
});

test('zj: a reloaded page (a new Chat) resumes mid-answer: one message, exact text', async () => {
  await withChatd({ args: SLOW, name: 'chatd-zj-reload' }, async (srv) => {
    const id = chatId();
    const res = await postChat(srv, id, 'Describe São Paulo at length.');
    const { events } = await readEvents(res, { until: (ev) => ev.filter((e) => e.data?.type === 'text-delta').length >= 10 });
    const messageId = events[0].data.messageId;
    // The page comes back: it loads the history, then resumes.
    const loaded = await history(srv, id);
    assert.equal(loaded.length, 2, 'the answer in progress appears once');
    assert.equal(loaded[1].id, messageId);
    assert.equal(loaded[1].metadata.status, 'generating');
    const committed = textOf(loaded[1]);
    const chat = new Chat({ id, transport: transportFor(srv), messages: loaded });
    await chat.resumeStream();
    assert.equal(chat.status, 'ready', String(chat.error));
    assert.equal(chat.messages.length, 2);
    const answer = chat.messages[1];
    assert.equal(answer.id, messageId);
    const stored = await getContent(srv, messageId);
    assert.equal(stored.status, 'completed');
    assert.equal(textOf(answer), stored.content);
    assert.ok(stored.content.startsWith(committed), 'history showed a prefix of the answer');
    assert.equal(answer.parts.filter((p) => p.type === 'text').length, 1);
  });
});

test('zj: stop cancels (the stream ends with abort); closing the fetch does not', async () => {
  await withChatd({ args: SLOW, name: 'chatd-zj-stop' }, async (srv) => {
    // A client that goes away leaves its answer generating.
    const away = chatId();
    const first = await postChat(srv, away, 'Keep going without me.');
    const seen = await readEvents(first, { until: (ev) => ev.length >= 5 });
    const leftId = seen.events[0].data.messageId;
    await delay(300);
    assert.equal((await getContent(srv, leftId)).status, 'generating');

    const id = chatId();
    const transport = transportFor(srv);
    const stream = await transport.sendMessages({
      chatId: id, trigger: 'submit-message', messageId: undefined,
      messages: [{ id: 'u1', role: 'user', parts: [{ type: 'text', text: 'Talk for a long time.' }] }],
    });
    const chunks = [];
    let stopped = null;
    for await (const c of stream) {
      chunks.push(c);
      if (!stopped && chunks.filter((x) => x.type === 'text-delta').length === 5) {
        stopped = srv.http('POST', `${CHAT_API}/${id}/stop`);
      }
    }
    const answer = await stopped;
    assert.equal(answer.status, 200, answer.text);
    assert.equal(answer.json.metadata.status, 'cancelled');
    const types = chunks.map((c) => c.type);
    assert.equal(types.at(-1), 'abort', `the stream ends with abort: ${types.slice(-4)}`);
    assert.ok(!types.includes('finish'));
    const stored = await getContent(srv, chunks[0].messageId);
    assert.equal(stored.status, 'cancelled');
    assert.equal(chunks.filter((c) => c.type === 'text-delta').map((c) => c.delta).join(''), stored.content);
    // Nothing generates now: stop again is a 409, resume a 204.
    const again = await srv.http('POST', `${CHAT_API}/${id}/stop`);
    assert.equal(again.status, 409);
    assert.equal(again.json.error.code, 'not_generating');
    assert.equal(await transport.reconnectToStream({ chatId: id }), null);
    await waitTerminal(srv, leftId);
  });
});

test('zj: 204 when idle, for unknown chats too; bad chat ids are refused', async () => {
  await withChatd({ name: 'chatd-zj-idle' }, async (srv) => {
    const transport = transportFor(srv);
    assert.equal(await transport.reconnectToStream({ chatId: chatId() }), null, 'an unknown chat has nothing to resume');
    const id = chatId();
    const chat = new Chat({ id, transport });
    await chat.sendMessage({ text: 'Short, please.' });
    const raw = await fetch(srv.url(`${CHAT_API}/${id}/stream`));
    assert.equal(raw.status, 204);
    assert.deepEqual(await history(srv, chatId()), [], 'a chat not made yet has no history');
    for (const bad of ['a.b', 'x'.repeat(129), 'a%20b']) {
      const r = await srv.http('GET', `${CHAT_API}/${bad}/stream`);
      assert.equal(r.status, 400, bad);
      assert.equal(r.json.error.code, 'invalid_request');
    }
    const r = await postChat(srv, 'no spaces allowed', 'hi');
    assert.equal(r.status, 400);
    const regen = await fetch(srv.url(CHAT_API), {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ id, trigger: 'regenerate-message', messages: chat.messages }),
    });
    assert.equal(regen.status, 400);
    // A retried post of the same user message replays its turn.
    const again = await postChat(srv, id, 'Once only.', 'same-id');
    const replay = await postChat(srv, id, 'Once only.', 'same-id');
    const a = (await readEvents(again)).events[0].data.messageId;
    const b = (await readEvents(replay)).events[0].data.messageId;
    assert.equal(a, b);
    assert.equal((await history(srv, id)).length, 4);
  });
});

test('zj: a cursor continues with only the rest, even after the answer ended', async () => {
  await withChatd({ args: SLOW, name: 'chatd-zj-cursor' }, async (srv) => {
    const id = chatId();
    const first = await readEvents(await postChat(srv, id, 'Count slowly, in words.'),
      { until: (ev) => ev.filter((e) => e.data?.type === 'text-delta').length >= 8 });
    const before = deltasText(first.events);
    const cursor = first.events.at(-1).id;
    const messageId = first.events[0].data.messageId;
    for (const mode of ['header', 'query']) {
      const url = mode === 'query' ? srv.url(`${CHAT_API}/${id}/stream?last_event_id=${encodeURIComponent(cursor)}`) : srv.url(`${CHAT_API}/${id}/stream`);
      const res = await fetch(url, { headers: mode === 'header' ? { 'last-event-id': cursor } : {} });
      assert.equal(res.status, 200);
      const { events } = await readEvents(res);
      const types = events.map((e) => (e.data === '[DONE]' ? '[DONE]' : e.data.type));
      assert.equal(types[0], 'text-delta', `no opening events: ${types.slice(0, 3)}`);
      assert.deepEqual(types.slice(-4), ['text-end', 'finish-step', 'finish', '[DONE]']);
      const stored = await getContent(srv, messageId);
      assert.equal(before + deltasText(events), stored.content);
    }
    // A cursor of another chat's message is refused.
    const other = chatId();
    const o = await readEvents(await postChat(srv, other, 'Other.'), { until: (ev) => ev.length >= 3 });
    const mismatch = await fetch(srv.url(`${CHAT_API}/${id}/stream`), { headers: { 'last-event-id': o.events[0].id } });
    assert.equal(mismatch.status, 400);
    assert.equal((await mismatch.json()).error.code, 'invalid_cursor');
    await waitTerminal(srv, o.events[0].data.messageId);
  });
});

test('zj: a stream chatd cuts off (shutdown) ends without [DONE], and resumes after', async () => {
  await withChatd({ args: SLOW, name: 'chatd-zj-cut' }, async (srv) => {
    const id = chatId();
    const res = await postChat(srv, id, 'A long story about Zürich.');
    const reading = readEvents(res);
    await waitFor(async () => {
      const h = await history(srv, id);
      return h.length === 2 && textOf(h[1]).length > 20;
    }, { message: 'the answer to be under way' });
    await srv.stop();
    const cut = await reading;
    const { events } = cut;
    const types = events.map((e) => (e.data === '[DONE]' ? '[DONE]' : e.data.type));
    assert.ok(!types.includes('[DONE]'), `no [DONE]: ${types.slice(-3)}`);
    assert.ok(!types.includes('finish'));
    // The body lacks its last chunk, and the answer does not say
    // `Connection: close`: Node's fetch, as a browser, reports the cut.
    assert.notEqual(cut.error, null, 'the cut-off body is an error to fetch');
    assert.equal(res.headers.get('connection'), null);
    // The answer goes on after the restart; the page resumes it.
    await srv.restart();
    const loaded = await history(srv, id);
    const chat = new Chat({ id, transport: transportFor(srv), messages: loaded });
    await chat.resumeStream();
    assert.equal(chat.status, 'ready', String(chat.error));
    const answer = chat.messages.at(-1);
    const stored = await waitTerminal(srv, answer.id);
    assert.equal(textOf(answer), stored.content);
    assert.equal(utf8(textOf(answer)).length, utf8(stored.content).length);
  });
});

function reasoningOf(message) {
  return message.parts.filter((p) => p.type === 'reasoning').map((p) => p.text).join('');
}

// The parts of an answer, step boundaries left out.
function partTypes(message) {
  return message.parts.map((p) => p.type).filter((t) => t !== 'step-start');
}

test('zj: reasoning parts arrive as such: a reasoning part before the text, as stored, also resumed', async () => {
  const thinking = ['--sim-tokens-per-second', '40', '--sim-min-tokens', '40', '--sim-max-tokens', '40',
    '--sim-reasoning-tokens', '60'];
  await withChatd({ args: thinking, name: 'chatd-zj-reasoning' }, async (srv) => {
    const id = chatId();
    const chat = new Chat({ id, transport: transportFor(srv) });
    await chat.sendMessage({ text: 'Think first, then answer.' });
    assert.equal(chat.status, 'ready', String(chat.error));
    const [answer] = assistants(chat);
    assert.deepEqual(partTypes(answer), ['reasoning', 'text']);
    assert.equal(answer.parts.find((p) => p.type === 'reasoning').state, 'done');
    const stored = await getContent(srv, answer.id);
    assert.equal(stored.status, 'completed');
    assert.ok(stored.reasoning.length > 0);
    assert.equal(reasoningOf(answer), stored.reasoning);
    assert.equal(textOf(answer), stored.content);
    assert.ok(!textOf(answer).includes(stored.reasoning), 'no reasoning in the text');
    // The history has the same two parts.
    const loaded = await history(srv, id);
    assert.deepEqual(partTypes(loaded[1]), ['reasoning', 'text']);
    assert.equal(reasoningOf(loaded[1]), stored.reasoning);

    // A page reloaded mid-reasoning resumes by replay (the default), and a
    // client that continues by cursor gets only the rest; both exact.
    const id2 = chatId();
    const res = await postChat(srv, id2, 'Think about Kyoto at length.');
    const { events } = await readEvents(res, { until: (ev) => ev.some((e) => e.data?.type === 'reasoning-delta') });
    const messageId = events[0].data.messageId;
    const cursor = events.at(-1).id;
    assert.match(cursor, /\.0\.[1-9][0-9]*$/, 'a cursor inside the reasoning');
    const reloaded = new Chat({ id: id2, transport: transportFor(srv), messages: await history(srv, id2) });
    const continued = fetch(srv.url(`${CHAT_API}/${id2}/stream`), { headers: { 'Last-Event-ID': cursor } })
      .then((r) => readEvents(r));
    await reloaded.resumeStream();
    assert.equal(reloaded.status, 'ready', String(reloaded.error));
    const rest = await continued;
    assert.equal(rest.error, null);
    const done = await waitTerminal(srv, messageId);
    assert.equal(reloaded.messages.length, 2, 'one assistant message');
    const resumed = reloaded.messages[1];
    assert.deepEqual(partTypes(resumed), ['reasoning', 'text'], 'one reasoning part and one text part');
    assert.equal(reasoningOf(resumed), done.reasoning);
    assert.equal(textOf(resumed), done.content);
    // By cursor: the reasoning part was open; the rest continues it.
    const restTypes = rest.events.map((e) => (e.data === '[DONE]' ? '[DONE]' : e.data.type));
    assert.notEqual(restTypes[0], 'start');
    assert.notEqual(restTypes[0], 'reasoning-start');
    const before = events.filter((e) => e.data?.type === 'reasoning-delta').map((e) => e.data.delta).join('');
    const after = rest.events.filter((e) => e.data?.type === 'reasoning-delta').map((e) => e.data.delta).join('');
    assert.equal(before + after, done.reasoning);
    assert.equal(deltasText(rest.events), done.content);
    assert.ok(restTypes.indexOf('reasoning-end') < restTypes.indexOf('text-start'));
  });
});

test('zj: after a complete UI stream the connection carries the next request', async () => {
  await withChatd({ name: 'chatd-zj-keepalive' }, async (srv) => {
    const id = chatId();
    const body = JSON.stringify({ id, trigger: 'submit-message', messages: [{ id: 'u-keep', role: 'user', parts: [{ type: 'text', text: 'Hi' }] }] });
    const { hostname, port } = new URL(srv.baseUrl);
    const host = `${hostname}:${port}`;
    const conn = await connectRaw(srv.baseUrl);
    try {
      await conn.write(`POST ${CHAT_API} HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
      const complete = (n) => (b) => parseResponses(b).responses.length >= n;
      await conn.waitUntil(complete(1), 20000, 'the whole UI stream');
      const [stream] = parseResponses(conn.bytes()).responses;
      assert.equal(stream.status, 200);
      assert.equal(stream.headers.get('connection'), null, 'no Connection: close');
      assert.match(stream.text, /data: \[DONE\]\n\n$/);
      // The same connection: the chat's history, then its (idle) stream.
      await conn.write(`GET ${CHAT_API}/${id}/messages HTTP/1.1\r\nHost: ${host}\r\n\r\n` +
        `GET ${CHAT_API}/${id}/stream HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
      await conn.waitUntil(complete(3), 10000, 'two more answers on the same connection');
      const [, loaded, idle] = parseResponses(conn.bytes()).responses;
      assert.equal(loaded.status, 200);
      assert.equal(loaded.json.length, 2);
      assert.equal(idle.status, 204);
      assert.equal(conn.ended, null, 'the connection is still open');
    } finally {
      conn.destroy();
    }
    // chatd's own event streams end with their connection, as before.
    const s = await srv.api('POST', '/sessions', {});
    const sent = await srv.api('POST', `/sessions/${s.json.id}/messages`, { content: 'Hi' });
    await waitTerminal(srv, sent.json.assistant_message.id);
    const plain = await connectRaw(srv.baseUrl);
    try {
      await plain.write(`GET /api/v1/chat/messages/${sent.json.assistant_message.id}/stream HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
      await plain.waitClosed(10000);
      assert.match(plain.text(), /\r\nConnection: close\r\n/i);
    } finally {
      plain.destroy();
    }
  });
});
