// Server-sent events read with fetch(), so a request can carry the
// Last-Event-ID header of its own choosing (a cursor from the content
// endpoint), which EventSource cannot send.
//
// SseParser follows the WHATWG event-stream rules: input may be split anywhere
// (inside a line, inside a UTF-8 character, between CR and LF); lines end with
// CRLF, LF or CR; a leading BOM is dropped; `:` lines are comments; `retry:`
// takes digits only; an `id` containing NUL is ignored; a blank line
// dispatches the event, and an event with no `data` is not dispatched. An
// incomplete event at the end of the stream is discarded. Pure: no DOM.

export class SseParser {
  // onEvent({ type, data, id }) for each event; options.onRetry(ms),
  // options.onComment(text).
  constructor(onEvent, { onRetry, onComment } = {}) {
    this.onEvent = onEvent;
    this.onRetry = onRetry || (() => {});
    this.onComment = onComment || (() => {});
    this.decoder = new TextDecoder('utf-8');
    this.pending = '';
    this.started = false;
    this.lastEventId = '';
    this.eventType = '';
    this.data = [];
  }

  // Feeds raw bytes (a Uint8Array chunk of the response body).
  pushBytes(bytes) {
    this.pushText(this.decoder.decode(bytes, { stream: true }));
  }

  // Feeds decoded text.
  pushText(text) {
    if (!this.started && text.length > 0) {
      this.started = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    const buf = this.pending + text;
    let start = 0;
    let i = 0;
    while (i < buf.length) {
      const c = buf.charCodeAt(i);
      if (c !== 10 && c !== 13) {
        i++;
        continue;
      }
      // A CR at the very end may be the first half of a CRLF: wait for more.
      if (c === 13 && i + 1 === buf.length) break;
      this.line(buf.slice(start, i));
      i += c === 13 && buf.charCodeAt(i + 1) === 10 ? 2 : 1;
      start = i;
    }
    this.pending = buf.slice(start);
  }

  // The stream ended: flush the decoder; a trailing CR still ends its line.
  end() {
    this.pushText(this.decoder.decode());
    if (this.pending.endsWith('\r')) {
      this.line(this.pending.slice(0, -1));
      this.pending = '';
    }
    this.eventType = '';
    this.data = [];
  }

  line(line) {
    if (line === '') {
      this.dispatch();
      return;
    }
    if (line.charCodeAt(0) === 58 /* : */) {
      this.onComment(line.slice(1));
      return;
    }
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    switch (field) {
      case 'event':
        this.eventType = value;
        break;
      case 'data':
        this.data.push(value);
        break;
      case 'id':
        if (!value.includes('\0')) this.lastEventId = value;
        break;
      case 'retry':
        if (/^[0-9]+$/.test(value)) this.onRetry(Number(value));
        break;
      default:
        break;
    }
  }

  dispatch() {
    const type = this.eventType || 'message';
    const data = this.data;
    this.eventType = '';
    this.data = [];
    if (data.length === 0) return;
    this.onEvent({ type, data: data.join('\n'), id: this.lastEventId });
  }
}

// Reads a fetch() Response body into the parser until it ends; onChunk() is
// called for every chunk received (a liveness signal, heartbeats included).
// Throws what the reader throws (an AbortError when the request is aborted).
export async function readSseBody(body, parser, onChunk = () => {}) {
  const reader = body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      onChunk();
      parser.pushBytes(value);
    }
    parser.end();
  } finally {
    reader.releaseLock();
  }
}
