// Fakes for the web UI's DOM-free modules run in plain Node: a clock whose
// timers run only when a test advances it, and a fetch() that records every
// request and answers through the test's respond(request) function (JSON
// answers, or an event stream the test writes into).

export const quietLog = { info() {}, warn() {}, error() {} };

/** Lets pending promise chains (and stream reads) run: a few macrotask turns. */
export async function settle(rounds = 8) {
  for (let i = 0; i < rounds; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** setTimeout/clearTimeout/now on a virtual clock; advance(ms) runs the due timers in order. */
export class FakeClock {
  constructor() {
    this.t = 0;
    this.seq = 0;
    this.timers = new Map();
    this.setTimeout = (fn, ms = 0) => {
      const id = ++this.seq;
      this.timers.set(id, { at: this.t + Math.max(0, ms), fn });
      return id;
    };
    this.clearTimeout = (id) => {
      this.timers.delete(id);
    };
    this.now = () => this.t;
  }

  /** Delays (from now) of the timers still pending, ascending. */
  pending() {
    return [...this.timers.values()].map((x) => x.at - this.t).sort((a, b) => a - b);
  }

  async advance(ms) {
    const end = this.t + ms;
    for (;;) {
      await settle();
      let next = null;
      for (const [id, timer] of this.timers) {
        if (timer.at <= end && (!next || timer.at < next.timer.at)) next = { id, timer };
      }
      if (!next) break;
      this.timers.delete(next.id);
      this.t = next.timer.at;
      next.timer.fn();
    }
    this.t = end;
    await settle();
  }
}

export function json(status, body, headers = {}) {
  return new Response(body === undefined ? null : JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json', ...headers },
  });
}

/**
 * An open event stream answering req: { response, push(text), end() }.
 * Aborting the request (its signal) errors the body, as a browser does.
 */
export function eventStream(req) {
  let controller;
  const enc = new TextEncoder();
  const body = new ReadableStream({
    start(c) {
      controller = c;
    },
  });
  let closed = false;
  const onAbort = () => {
    if (closed) return;
    closed = true;
    controller.error(req.signal.reason || new DOMException('aborted', 'AbortError'));
  };
  if (req.signal) {
    if (req.signal.aborted) onAbort();
    else req.signal.addEventListener('abort', onAbort, { once: true });
  }
  return {
    response: new Response(body, { status: 200, headers: { 'content-type': 'text/event-stream' } }),
    push(text) {
      if (!closed) controller.enqueue(enc.encode(text));
    },
    end() {
      if (closed) return;
      closed = true;
      controller.close();
    },
    get closed() {
      return closed;
    },
  };
}

/**
 * fetch(url, init) that records { url, path, method, headers, credentials,
 * signal, at } and answers with respond(request) (a Response, a promise of
 * one, or a thrown error for a network failure).
 */
export function fakeFetch(respond, clock = null) {
  const requests = [];
  const fetch = async (url, init = {}) => {
    const u = new URL(url, 'http://chatd.test');
    const req = {
      url,
      path: u.pathname,
      query: u.searchParams,
      method: init.method || 'GET',
      headers: { ...(init.headers || {}) },
      credentials: init.credentials,
      body: init.body,
      signal: init.signal,
      at: clock ? clock.now() : 0,
    };
    requests.push(req);
    return respond(req);
  };
  return { fetch, requests };
}
