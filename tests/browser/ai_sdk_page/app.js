// A page on the AI SDK's own client, no React: the `ai` package's AbstractChat
// with DefaultChatTransport against chatd's /api/v1/ai-sdk/chat endpoints, as
// an app built on useChat uses them. Bundled with esbuild by the browser test
// (support/ai_sdk_page.mjs) and served by chatd itself (--web-dir).
//
// On load it reads the chat id from `?chat=`, loads the chat's history
// (GET …/{id}/messages), makes a Chat from it and resumes the answer that may
// be generating (resumeStream: 204 when none, else a replay from `start`).
// Every change of the chat's state re-renders the list. Test hooks:
// body[data-page] (loading; resuming; ready: resumeStream has returned;
// failed: the page could not start), #status (chat.status), #error, one
// li[data-id][data-role] per message with one [data-part="text"] per text
// part, and window.aiSdkPage: { chat, loaded: the history it started from }.

import './zod_jitless.js';  // first: before `ai` builds its schemas
import { AbstractChat, DefaultChatTransport } from 'ai';

const API = '/api/v1/ai-sdk/chat';

// What @ai-sdk/react's Chat keeps, with a render after every change.
class RenderedChatState {
  #messages;
  #status = 'ready';
  #error = undefined;

  constructor(messages, render) {
    this.#messages = messages;
    this.render = render;
  }

  get messages() { return this.#messages; }
  set messages(messages) { this.#messages = messages; this.render(); }
  get status() { return this.#status; }
  set status(status) { this.#status = status; this.render(); }
  get error() { return this.#error; }
  set error(error) { this.#error = error; this.render(); }

  pushMessage(message) { this.messages = [...this.#messages, message]; }
  popMessage() { this.messages = this.#messages.slice(0, -1); }
  replaceMessage(index, message) { this.messages = this.#messages.with(index, message); }
  snapshot(thing) { return structuredClone(thing); }
}

class Chat extends AbstractChat {
  constructor({ messages, render, ...init }) {
    super({ ...init, state: new RenderedChatState(messages, render) });
  }
}

function renderMessage(message) {
  const item = document.createElement('li');
  item.dataset.id = message.id;
  item.dataset.role = message.role;
  const role = document.createElement('strong');
  role.textContent = `${message.role}: `;
  item.append(role);
  for (const part of message.parts) {
    if (part.type !== 'text') continue;
    const text = document.createElement('span');
    text.dataset.part = 'text';
    text.textContent = part.text;  // untrusted: text, never HTML
    item.append(text);
  }
  return item;
}

function render(chat) {
  document.getElementById('status').textContent = chat.status;
  const error = document.getElementById('error');
  error.hidden = !chat.error;
  error.textContent = chat.error ? String(chat.error.message ?? chat.error) : '';
  document.getElementById('messages').replaceChildren(...chat.messages.map(renderMessage));
}

async function loadHistory(chatId) {
  const res = await fetch(`${API}/${encodeURIComponent(chatId)}/messages`);
  if (!res.ok) throw new Error(`loading the chat: HTTP ${res.status}`);
  return res.json();
}

async function main() {
  const chatId = new URLSearchParams(location.search).get('chat');
  if (!chatId) throw new Error('no chat id: open the page with ?chat=<id>');
  const messages = await loadHistory(chatId);

  let chat = null;
  const rerender = () => { if (chat) render(chat); };
  chat = new Chat({ id: chatId, messages, render: rerender, transport: new DefaultChatTransport({ api: API }) });
  window.aiSdkPage = { chat, loaded: structuredClone(messages) };
  render(chat);

  document.getElementById('composer').addEventListener('submit', (event) => {
    event.preventDefault();
    const input = document.getElementById('input');
    const text = input.value.trim();
    if (!text) return;
    input.value = '';
    chat.sendMessage({ text });
  });

  document.body.dataset.page = 'resuming';
  await chat.resumeStream();
  document.body.dataset.page = 'ready';
}

main().catch((err) => {
  document.body.dataset.page = 'failed';
  const error = document.getElementById('error');
  error.hidden = false;
  error.textContent = err.message;
  throw err;
});
