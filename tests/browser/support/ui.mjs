// What a person does with the chat page, and what the tests read back from it.
//
// The page exposes a read-only view of its model as window.__chatd
// (messages(), message(id), trace(id), connection, markdown, sessionId, auth,
// user); a message there has its text and its reasoning (the model's
// thinking, shown apart from the answer). A scenario compares three things: the page's model text (exactly,
// byte for byte), what is on the screen (the message's rendered innerText,
// whitespace collapsed: the simulated answers are plain words, punctuation and
// blank lines, so their Markdown rendering is their text), and the store.

import assert from 'node:assert/strict';
import { getContent, waitStoreTerminal } from './chatd.mjs';

export function normalize(s) {
  return String(s).replace(/\s+/g, ' ').trim();
}

/** page.waitForFunction with a deadline, polling every 50 ms, naming what it waited for. */
export async function pageWait(page, fn, arg, { timeoutMs = 30000, message = 'a condition on the page' } = {}) {
  try {
    const handle = await page.waitForFunction(fn, arg, { timeout: timeoutMs, polling: 50 });
    const value = await handle.jsonValue();
    await handle.dispose();
    return value;
  } catch (err) {
    throw new Error(`timed out after ${timeoutMs} ms waiting for ${message}: ${err.message.split('\n')[0]}`);
  }
}

/** Opens the page (a session by id, or the new-chat view) and waits for the app to start. */
export async function openApp(page, base, sessionId = null) {
  await page.goto(`${base}/${sessionId ? `#s=${encodeURIComponent(sessionId)}` : ''}`);
  // Started: it knows whether it is signed in (it calls nothing else before).
  await pageWait(page, () => typeof window.__chatd === 'object' && window.__chatd.auth !== 'checking', undefined,
                 { message: 'the app to start' });
  if (sessionId) {
    await pageWait(page, (id) => window.__chatd.sessionId === id && window.__chatd.connection !== 'connecting',
                   sessionId, { message: `session ${sessionId} to open` });
  }
}

/** Types text into the composer and presses Enter; returns the new message ids. */
export async function sendFromComposer(page, text) {
  const before = await page.evaluate(() => window.__chatd.messages().map((m) => m.id));
  const input = page.locator('#input');
  await input.fill(text);
  await input.press('Enter');
  return pageWait(page, (known) => {
    const fresh = window.__chatd.messages().filter((m) => !known.includes(m.id));
    const user = fresh.find((m) => m.role === 'user');
    const assistant = fresh.find((m) => m.role === 'assistant');
    return user && assistant
      ? { sessionId: window.__chatd.sessionId, userId: user.id, assistantId: assistant.id }
      : null;
  }, before, { message: 'the sent message and its answer to appear' });
}

export function model(page, id) {
  return page.evaluate((mid) => window.__chatd.message(mid), id);
}

export function pageTrace(page, id) {
  return page.evaluate((mid) => window.__chatd.trace(mid), id);
}

/**
 * What the screen shows for a message: body text, badge, status, error line.
 * Rendering is batched per animation frame, so this first waits until the DOM
 * shows what the page's model holds for the message.
 */
export async function screen(page, id) {
  await pageWait(page, (mid) => window.__chatd.message(mid)?.rendered, id,
                 { message: `message ${id} to be rendered as the page holds it` });
  return page.evaluate((mid) => {
    const el = document.querySelector(`article.msg[data-id="${CSS.escape(mid)}"]`);
    if (!el) return null;
    return {
      text: el.querySelector('.msg-body').innerText,
      badge: el.querySelector('.badge')?.textContent ?? '',
      status: el.dataset.status,
      error: el.querySelector('.msg-error')?.textContent ?? '',
    };
  }, id);
}

/**
 * What the screen shows of a message's reasoning, once the DOM shows what the
 * model holds: how many reasoning blocks the message has, whether the first is
 * open, its summary, its text (textContent: a closed <details> renders none)
 * and the answer's text beside it.
 */
export async function reasoningOnScreen(page, id) {
  await pageWait(page, (mid) => window.__chatd.message(mid)?.rendered, id,
                 { message: `message ${id} to be rendered as the page holds it` });
  return page.evaluate((mid) => {
    const el = document.querySelector(`article.msg[data-id="${CSS.escape(mid)}"]`);
    if (!el) return null;
    const blocks = el.querySelectorAll('details.reasoning');
    const r = blocks[0];
    return {
      count: blocks.length,
      open: r ? r.open : null,
      summary: r ? r.querySelector('summary').textContent : null,
      text: r ? r.querySelector('.reasoning-body').textContent : null,
      beforeBody: r ? r.nextElementSibling === el.querySelector('.msg-body') : null,
      body: el.querySelector('.msg-body').innerText,
    };
  }, id);
}

/** Waits until the page's model holds at least minBytes of the message (optionally while it is generating). */
export function waitModelBytes(page, id, minBytes, { generating = false, timeoutMs = 30000 } = {}) {
  return pageWait(page, ({ mid, min, gen }) => {
    const m = window.__chatd.message(mid);
    return m && m.bytes >= min && (!gen || m.status === 'generating') ? m : null;
  }, { mid: id, min: minBytes, gen: generating },
  { timeoutMs, message: `message ${id} to hold ${minBytes} bytes${generating ? ' while generating' : ''}` });
}

/** Waits until the connection indicator is in one of the given states. */
export function waitConnection(page, states, { timeoutMs = 30000 } = {}) {
  return pageWait(page, (want) => {
    const el = document.getElementById('conn');
    return want.includes(window.__chatd.connection) && want.includes(el.dataset.state) ? el.dataset.state : null;
  }, states, { timeoutMs, message: `the connection indicator to show ${states.join(' or ')}` });
}

/**
 * Waits until the store has ended the message and the page shows exactly that
 * (model text byte-exact, screen text, badge); returns the store's answer.
 */
export async function waitPageMatchesFinalStore(page, srv, id, { timeoutMs = 60000 } = {}) {
  const store = await waitStoreTerminal(srv, id, timeoutMs);
  await pageWait(page, ({ mid, content, status }) => {
    const norm = (s) => String(s).replace(/\s+/g, ' ').trim();
    const m = window.__chatd.message(mid);
    const el = document.querySelector(`article.msg[data-id="${CSS.escape(mid)}"]`);
    return Boolean(m && el && m.status === status && m.text === content && el.dataset.status === status &&
                   norm(el.querySelector('.msg-body').innerText) === norm(content));
  }, { mid: id, content: store.content, status: store.status },
  { timeoutMs, message: `the page to show message ${id} as stored (${store.status}, ${Buffer.byteLength(store.content)} bytes)` });
  await assertPageMatchesStore(page, srv, id);
  return store;
}

/** Asserts (with diffs) that model, screen and store agree on a message. */
export async function assertPageMatchesStore(page, srv, id) {
  const store = await getContent(srv, id);
  const m = await model(page, id);
  const s = await screen(page, id);
  assert.ok(m, `the page's model has message ${id}`);
  assert.ok(s, `message ${id} is on the screen`);
  assert.equal(m.text, store.content, 'page model text == stored content (exact)');
  assert.equal(m.status, store.status, 'page model status == stored status');
  assert.equal(normalize(s.text), normalize(store.content), 'text on screen == stored content (whitespace collapsed)');
  assert.equal(s.status, store.status, 'status on screen == stored status');
  assert.equal(s.badge, store.status, 'status badge text == stored status');
  return store;
}

/**
 * Asserts that every delta the page received for a message after trace index
 * `from` continued its text exactly where it ended (no gap, no overlap).
 */
/**
 * Asserts from a message's whole trace that nothing was doubled or lost: every
 * applied delta continued the text exactly, an overlap added only its new
 * tail, anything else was a duplicate (or, with allowGaps, a refused gap), and
 * the text ends with exactly `finalBytes`. part 'reasoning' checks the
 * reasoning instead: its events (kind 'reasoning') and its committed lengths
 * (`reasoningBytes`).
 */
export function assertNothingDoubled(trace, finalBytes, { allowGaps = false, part = 'content' } = {}) {
  const eventKind = part === 'reasoning' ? 'reasoning' : 'delta';
  const bytesField = part === 'reasoning' ? 'reasoningBytes' : 'bytes';
  let bytes = 0;
  for (const e of trace) {
    if (e.kind === eventKind) {
      if (e.result === 'applied') {
        assert.equal(e.offset, bytes, 'an applied delta continues the text exactly');
        bytes += e.length;
      } else if (e.result === 'overlap') {
        assert.ok(e.offset < bytes && e.offset + e.length > bytes, 'an overlapping delta added only its new tail');
        bytes = e.offset + e.length;
      } else if (e.result === 'gap') {
        assert.ok(allowGaps, `delta ${JSON.stringify(e)}`);
      } else {
        assert.ok(e.result === 'duplicate' && e.offset + e.length <= bytes, `delta ${JSON.stringify(e)}`);
      }
    } else if (typeof e[bytesField] === 'number') {
      assert.ok(e[bytesField] >= bytes, 'text only grows');
      bytes = e[bytesField];
    }
  }
  assert.equal(bytes, finalBytes, 'the page holds exactly the stored bytes');
}

export function assertDeltasContiguous(trace, { from = 0, startBytes } = {}) {
  const deltas = trace.slice(from).filter((e) => e.kind === 'delta');
  let expected = startBytes;
  for (const d of deltas) {
    assert.equal(d.result, 'applied', `delta at offset ${d.offset} was ${d.result}, expected applied`);
    if (expected !== undefined) assert.equal(d.offset, expected, 'delta continues exactly where the text ended');
    expected = d.offset + d.length;
  }
  return deltas;
}
