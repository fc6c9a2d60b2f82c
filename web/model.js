// The message model of the open conversation: its messages by id, each with
// its text as a MessageText (text.js: a string plus its UTF-8 byte length,
// because chatd's stream offsets count bytes), its reasoning (the model's
// thinking, kept apart from the text: its own MessageText, its own byte
// offsets), status, version and error.
//
// Text and reasoning enter only two ways each: stream events (`delta` for
// the text, `reasoning` for the reasoning), applied by byte offset (a
// duplicate is skipped, a gap is refused and reported so the caller can
// re-fetch), and committed whole texts (history, content endpoint, poll,
// cancel: `content` and `reasoning`), kept when longer. A terminal status is
// never replaced by a non-terminal one. Every text change is written to a
// bounded trace (what the browser tests read through window.__chatd.trace()):
// a text delta is kind 'delta' and a committed text carries `bytes`; a
// reasoning event is kind 'reasoning' and a committed reasoning carries
// `reasoningBytes`, so a reader of one part is not misled by the other.
//
// Pure: no DOM, no network. It tells its owner through callbacks:
// onChange(msg) when a message should be re-rendered, onUnknown(id) when an
// event names a message it does not hold (the owner fetches the history).

import { MessageText, utf8Length } from './text.js';

export const TERMINAL = new Set(['completed', 'error', 'cancelled']);
export const TRACE_LIMIT = 5000;

const defaultNow = () => (globalThis.performance ? globalThis.performance.now() : Date.now());

export function newMessage(m) {
  return {
    id: m.id,
    role: m.role || 'assistant',
    status: m.status || 'generating',
    version: typeof m.version === 'number' ? m.version : 0,
    error: m.error || null,
    finishReason: m.finish_reason || null,
    text: new MessageText(),
    reasoning: new MessageText(),
  };
}

// Copies the status fields of m (a message, a status event or a content
// answer) into msg. A terminal status is never replaced by a non-terminal one;
// otherwise the higher version wins.
export function applyStatusFields(msg, m) {
  if (!m.status) return;
  const oursTerminal = TERMINAL.has(msg.status);
  const theirsTerminal = TERMINAL.has(m.status);
  if (oursTerminal && !theirsTerminal) return;
  const version = typeof m.version === 'number' ? m.version : null;
  if (version !== null && version < msg.version && !(theirsTerminal && !oursTerminal)) return;
  msg.status = m.status;
  if (version !== null) msg.version = Math.max(msg.version, version);
  if ('error' in m) msg.error = m.error || null;
  if ('finish_reason' in m) msg.finishReason = m.finish_reason || null;
}

const byId = (a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

export class MessageModel {
  constructor({ onChange = () => {}, onUnknown = () => {}, now = defaultNow, traceLimit = TRACE_LIMIT } = {}) {
    this.onChange = onChange;
    this.onUnknown = onUnknown;
    this.now = now;
    this.traceLimit = traceLimit;
    this.sessionId = null;
    this.messages = new Map();  // id -> message
    this.traceLog = [];         // kept across sessions
  }

  // Shows session id (or none): drops every message.
  reset(sessionId) {
    this.sessionId = sessionId;
    this.messages.clear();
  }

  // The "new chat" view became session id (its first send): nothing to drop.
  adopt(sessionId) {
    this.sessionId = sessionId;
  }

  get size() {
    return this.messages.size;
  }

  get(id) {
    return this.messages.get(id) || null;
  }

  // In id order (ids are time-sortable).
  sorted() {
    return [...this.messages.values()].sort(byId);
  }

  // The newest assistant message still generating, or null.
  generating() {
    let found = null;
    for (const m of this.messages.values()) {
      if (m.role === 'assistant' && m.status === 'generating' && (!found || m.id > found.id)) found = m;
    }
    return found;
  }

  // Where a stream should attach: the generating message, else the last answer.
  anchor() {
    const generating = this.generating();
    if (generating) return generating;
    const assistants = this.sorted().filter((m) => m.role === 'assistant');
    return assistants[assistants.length - 1] || null;
  }

  trace(entry) {
    this.traceLog.push({ at: Math.round(this.now()), ...entry });
    if (this.traceLog.length > this.traceLimit) this.traceLog.splice(0, this.traceLog.length - this.traceLimit);
  }

  traceOf(id) {
    return this.traceLog.filter((e) => !id || e.id === id).map((e) => ({ ...e }));
  }

  // Merges a message object (with or without content and reasoning) from `source`
  // ('history', 'content', 'poll', 'send', 'cancel', 'status'). onlyNew: a
  // message already held is left alone. Returns the held message, or null
  // when m belongs to another session.
  merge(m, source, { onlyNew = false } = {}) {
    if (!m || !m.id) return null;
    if (m.session_id && m.session_id !== this.sessionId) return null;
    let msg = this.messages.get(m.id);
    if (!msg) {
      msg = newMessage(m);
      this.messages.set(msg.id, msg);
    } else if (onlyNew) {
      return msg;
    }
    // One trace entry per merge, whichever parts it carried.
    const entry = { kind: source, id: msg.id };
    if (typeof m.content === 'string') {
      const result = msg.text.extend(m.content);
      Object.assign(entry, { bytes: msg.text.bytes, result });
    }
    // Absent means empty (chatd leaves the field out then), not "unknown":
    // nothing to merge either way.
    if (typeof m.reasoning === 'string' && m.reasoning !== '') {
      const reasoningResult = msg.reasoning.extend(m.reasoning);
      Object.assign(entry, { reasoningBytes: msg.reasoning.bytes, reasoningResult });
    }
    if ('bytes' in entry || 'reasoningBytes' in entry) this.trace(entry);
    applyStatusFields(msg, m);
    this.onChange(msg);
    return msg;
  }

  // A session's history. onlyNew: leave held messages to the stream, except
  // one still held as generating that has ended (a stream opened without a
  // cursor does not replay a generation that ended before it opened).
  // Returns whether a message was added.
  mergeHistory(messages, { onlyNew = false } = {}) {
    let added = false;
    for (const m of messages || []) {
      const known = this.messages.get(m.id);
      if (!known) added = true;
      const ended = Boolean(known) && known.status === 'generating' && TERMINAL.has(m.status);
      this.merge(m, 'history', { onlyNew: onlyNew && !ended });
    }
    return added;
  }

  // A stream delta { message_id, offset, text }. Returns what MessageText.apply
  // did: 'applied', 'overlap', 'duplicate' or 'gap' (nothing applied).
  applyDelta(d) {
    return this.applyStreamText(d, 'text', 'delta');
  }

  // A stream reasoning event { message_id, offset, text }: the same as a
  // delta, in the reasoning's own byte space. Usually every one comes before
  // the first delta, but nothing here relies on that.
  applyReasoning(d) {
    return this.applyStreamText(d, 'reasoning', 'reasoning');
  }

  applyStreamText(d, part, kind) {
    let msg = this.messages.get(d.message_id);
    if (!msg) {
      msg = newMessage({ id: d.message_id, role: 'assistant', status: 'generating' });
      this.messages.set(msg.id, msg);
      this.onChange(msg);
      this.onUnknown(msg.id);
    }
    const result = msg[part].apply(d.offset, d.text);
    this.trace({ kind, id: msg.id, offset: d.offset, length: utf8Length(d.text), result });
    if (result !== 'gap' && result !== 'duplicate') this.onChange(msg);
    return result;
  }

  // A stream status event: status fields only (text and reasoning come from
  // their own events).
  applyStatusEvent(m) {
    const known = this.messages.has(m.id);
    const fields = { ...m };
    delete fields.content;
    delete fields.reasoning;
    this.merge(fields, 'status');
    this.trace({ kind: 'status', id: m.id, status: m.status });
    // A generation this tab did not start: its user message is not held either.
    if (!known) this.onUnknown(m.id);
  }
}
