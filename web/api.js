// The HTTP API client: JSON requests to /api/v1/chat, the session stream
// request, and the browser sign-in calls on /api/v1/auth/session.
//
// Every request carries the session cookie (credentials: 'same-origin') and
// no Authorization header. The one exception is signIn(token): the token a
// person pastes goes once, as `Authorization: Bearer …`, to POST
// /api/v1/auth/session, which answers with an HttpOnly cookie; the client
// keeps no reference to the token. Nothing here puts a token in a URL or a
// log line.
//
// Failures are thrown as ApiError (HTTP status, chatd's error code, message);
// a network failure is whatever fetch() throws. No DOM: fetch is injected, so
// tests run this in Node with a fake.

export const CHAT_PREFIX = '/api/v1/chat';
export const AUTH_SESSION_PATH = '/api/v1/auth/session';

export class ApiError extends Error {
  constructor(status, code, message, body) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

function parseJson(text) {
  try {
    return text ? JSON.parse(text) : null;
  } catch {
    return null;
  }
}

// The ApiError for a response that is not ok (reads its body).
export async function errorFromResponse(res) {
  let body = null;
  try {
    body = parseJson(await res.text());
  } catch {
    body = null;
  }
  const e = body && body.error ? body.error : {};
  return new ApiError(res.status, e.code || `http_${res.status}`, e.message || `HTTP ${res.status}`, body);
}

// A fresh Idempotency-Key for a send (a retried send reuses its key).
export function newIdempotencyKey(cryptoImpl = globalThis.crypto) {
  if (cryptoImpl && typeof cryptoImpl.randomUUID === 'function') return cryptoImpl.randomUUID();
  const b = cryptoImpl.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

// fetch: the fetch() to use (default: the global one, looked up per call).
export function createApiClient({ fetch: fetchImpl = (url, init) => globalThis.fetch(url, init) } = {}) {
  async function request(method, url, { body, headers = {}, signal } = {}) {
    const h = { Accept: 'application/json', ...headers };
    if (body !== undefined) h['Content-Type'] = 'application/json';
    const res = await fetchImpl(url, {
      method,
      headers: h,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      cache: 'no-store',
      credentials: 'same-origin',
    });
    if (!res.ok) throw await errorFromResponse(res);
    return parseJson(await res.text());
  }

  const id = encodeURIComponent;

  return {
    // Any chat API call: path below /api/v1/chat.
    chat: (method, path, options) => request(method, CHAT_PREFIX + path, options),

    history: (sessionId) => request('GET', `${CHAT_PREFIX}/sessions/${id(sessionId)}/messages`),
    content: (messageId) => request('GET', `${CHAT_PREFIX}/messages/${id(messageId)}/content`),
    poll: (sessionId, since) => request('GET', `${CHAT_PREFIX}/messages/${id(sessionId)}/poll${
      since ? `?since=${id(since)}` : ''}`),

    // The session stream: resolves to the raw Response (the caller reads the
    // event stream from its body), rejects only when the request fails.
    openStream: ({ sessionId, lastEventId = null, signal }) => {
      const headers = { Accept: 'text/event-stream' };
      if (lastEventId) headers['Last-Event-ID'] = lastEventId;
      return fetchImpl(`${CHAT_PREFIX}/messages/stream?session_id=${id(sessionId)}`, {
        method: 'GET', headers, signal, cache: 'no-store', credentials: 'same-origin',
      });
    },

    // Who the request's credentials (the cookie) belong to:
    // { user_id, expires_at } or an ApiError (401 when signed out).
    whoAmI: () => request('GET', AUTH_SESSION_PATH),
    // Trades a token (JWT or API key) for the session cookie; the token is
    // sent in this one request only.
    signIn: (token) => request('POST', AUTH_SESSION_PATH, { headers: { Authorization: `Bearer ${token}` } }),
    signOut: () => request('DELETE', AUTH_SESSION_PATH),
  };
}
