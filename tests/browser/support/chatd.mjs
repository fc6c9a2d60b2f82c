// chatd for the browser tests: the end-to-end harness (../../e2e/support/
// chatd.mjs) starts the real binary on port 0 with a temporary data dir and
// reads the store over HTTP; this adds what the browser scenarios ask of the
// store.

import { waitTerminal } from '../../e2e/support/chatd.mjs';

export { startChatd, getContent, waitFor, delay } from '../../e2e/support/chatd.mjs';

export async function getHistory(srv, sessionId) {
  const r = await srv.api('GET', `/sessions/${sessionId}/messages`);
  if (r.status !== 200) throw new Error(`history of ${sessionId}: expected 200, got ${r.status} ${r.text}`);
  return r.json.messages;
}

/** Waits until the message is no longer generating; returns the content answer. */
export function waitStoreTerminal(srv, messageId, timeoutMs = 60000) {
  return waitTerminal(srv, messageId, timeoutMs);
}

export function utf8Bytes(s) {
  return Buffer.byteLength(s, 'utf8');
}
