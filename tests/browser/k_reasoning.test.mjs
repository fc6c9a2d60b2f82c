// Reasoning: the simulated model thinks first (--sim-reasoning-tokens),
// streamed as `reasoning` events before the answer's deltas. The page shows it
// in a closed <details class="reasoning"> above the answer ("Thinking…" until
// the answer starts), keeps it out of the answer, keeps it open once a person
// opened it while the answer streams on, and ends with exactly the stored
// reasoning; reloaded mid-reasoning, it shows the reasoning once, resumed from
// the content endpoint's cursor with nothing doubled.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scenario } from './support/browser.mjs';
import { getContent, getHistory, utf8Bytes } from './support/chatd.mjs';
import {
  assertNothingDoubled, normalize, openApp, pageTrace, pageWait, reasoningOnScreen, sendFromComposer,
  waitPageMatchesFinalStore,
} from './support/ui.mjs';

// 30 reasoning tokens at 8 per second: almost 4 s of thinking, time enough to
// look at it, open it and reload in the middle of it; then a short answer.
const REASONING_TOKENS = 30;
const SIM = ['--sim-tokens-per-second', '8', '--sim-min-tokens', '30', '--sim-max-tokens', '40',
             '--sim-reasoning-tokens', String(REASONING_TOKENS)];

/** Waits until the page's model holds at least minBytes of reasoning and (thinking) no answer text yet. */
function waitReasoningBytes(page, id, minBytes, { thinking = false, timeoutMs = 30000 } = {}) {
  return pageWait(page, ({ mid, min, think }) => {
    const m = window.__chatd.message(mid);
    if (!m || m.reasoningBytes < min) return null;
    return !think || (m.status === 'generating' && m.bytes === 0) ? m : null;
  }, { mid: id, min: minBytes, think: thinking },
  { timeoutMs, message: `message ${id} to hold ${minBytes} bytes of reasoning${thinking ? ' and no answer yet' : ''}` });
}

/** The stored message (history) and its content answer; both must carry the same reasoning. */
async function storedMessage(srv, sessionId, id) {
  const m = (await getHistory(srv, sessionId)).find((x) => x.id === id);
  assert.ok(m, `message ${id} is in the history`);
  const c = await getContent(srv, id);
  assert.equal(c.reasoning ?? '', m.reasoning ?? '', 'the content endpoint has the history\'s reasoning');
  return m;
}

/** Page, screen and store agree on the reasoning and keep it out of the answer. */
async function assertReasoningMatchesStore(page, stored) {
  assert.equal(typeof stored.reasoning, 'string', 'the stored answer has reasoning');
  assert.ok(stored.reasoning.length > 0);
  assert.ok(!stored.content.includes(stored.reasoning), 'the stored content holds no reasoning');
  const m = await page.evaluate((mid) => window.__chatd.message(mid), stored.id);
  assert.equal(m.reasoning, stored.reasoning, 'page model reasoning == stored reasoning (exact)');
  assert.equal(m.text, stored.content, 'page model text == stored content: no reasoning in it');
  const shown = await reasoningOnScreen(page, stored.id);
  assert.equal(shown.count, 1, 'one reasoning block');
  assert.equal(shown.text, stored.reasoning, 'reasoning on screen == stored reasoning (exact, once)');
  assert.ok(shown.beforeBody, 'the reasoning sits right above the answer');
  assert.equal(shown.summary, 'Reasoning', 'an answered message says "Reasoning"');
  assert.ok(!normalize(shown.body).includes(normalize(stored.reasoning)), 'the answer on screen holds no reasoning');
  return shown;
}

test('reasoning: collapsed above the answer, kept open once opened, exactly as stored, not in the answer', async () => {
  await scenario('k_reasoning', { args: SIM }, async ({ srv, base, newPage }) => {
    const page = await newPage('tab');
    await openApp(page, base);
    const { sessionId, assistantId } = await sendFromComposer(page, 'Think before you answer, please.');

    // While it thinks (some reasoning on the screen, no answer yet): a closed
    // block that says so.
    const sel = `article.msg[data-id="${assistantId}"] details.reasoning`;
    const thinking = await pageWait(page, ({ mid, s }) => {
      const m = window.__chatd.message(mid);
      const el = document.querySelector(s);
      if (!m || !m.rendered || !el || m.bytes !== 0 || m.status !== 'generating') return null;
      return { open: el.open, summary: el.querySelector('summary').textContent, reasoning: m.reasoning,
               text: el.querySelector('.reasoning-body').textContent };
    }, { mid: assistantId, s: sel }, { message: 'a reasoning block while the model thinks and has not answered' });
    assert.equal(thinking.open, false, 'closed by default');
    assert.equal(thinking.summary, 'Thinking…', 'it says "Thinking…" until the answer starts');
    assert.ok(thinking.text.length > 0);
    assert.equal(thinking.text, thinking.reasoning, 'the screen shows the reasoning the page holds');

    // A person opens it; the same element stays, open, while reasoning and answer stream on.
    const block = await page.locator(sel).elementHandle();
    await page.locator(`${sel} > summary`).click();
    assert.equal(await block.evaluate((el) => el.open), true, 'the click opened it');
    const opened = await page.evaluate((mid) => window.__chatd.message(mid), assistantId);
    await pageWait(page, ({ mid, bytes, reasoningBytes }) => {
      const m = window.__chatd.message(mid);
      return m.rendered && m.reasoningBytes > reasoningBytes && m.bytes >= bytes + 40;
    }, { mid: assistantId, bytes: opened.bytes, reasoningBytes: opened.reasoningBytes },
    { message: 'more reasoning and 40 more bytes of answer to arrive after the click' });
    assert.deepEqual(await block.evaluate((el) => [el.isConnected, el.open]), [true, true],
                     'still the same element, still open, after more deltas');

    await waitPageMatchesFinalStore(page, srv, assistantId);
    const stored = await storedMessage(srv, sessionId, assistantId);
    const shown = await assertReasoningMatchesStore(page, stored);
    assert.equal(shown.open, true, 'still open at the end');
    assert.equal(await block.evaluate((el) => el.isConnected), true, 'never rebuilt');
    await block.dispose();
    assertNothingDoubled(await pageTrace(page, assistantId), utf8Bytes(stored.reasoning), { part: 'reasoning' });

    // Reloaded once it ended: the reasoning comes from the history, once, closed.
    await page.reload();
    await openApp(page, base, sessionId);
    await waitPageMatchesFinalStore(page, srv, assistantId);
    const again = await assertReasoningMatchesStore(page, stored);
    assert.equal(again.open, false, 'a reloaded page starts closed');
  });
});

test('reasoning: reloaded mid-reasoning, the page shows it at once and ends with it exactly once', async () => {
  await scenario('k_reasoning_reload', { args: SIM }, async ({ srv, base, newPage }) => {
    const page = await newPage('tab');
    await openApp(page, base);
    const { sessionId, assistantId } = await sendFromComposer(page, 'Think it over while I reload.');

    const before = await waitReasoningBytes(page, assistantId, 20, { thinking: true });
    await page.reload();
    await openApp(page, base, sessionId);
    await pageWait(page, (id) => document.querySelector(
      `article.msg[data-id="${CSS.escape(id)}"] details.reasoning .reasoning-body`)?.textContent.length > 0,
    assistantId, { message: 'the reloaded page to show the reasoning' });

    // At once: the reasoning held before the reload came back from the content
    // endpoint, before any stream event.
    const trace = await pageTrace(page, assistantId);
    const firstEvent = trace.findIndex((e) => e.kind === 'reasoning' || e.kind === 'delta');
    const loaded = trace.slice(0, firstEvent < 0 ? trace.length : firstEvent);
    const content = loaded.filter((e) => e.kind === 'content');
    assert.equal(content.length, 1, `one content fetch before any event: ${JSON.stringify(loaded)}`);
    assert.ok(content[0].reasoningBytes >= before.reasoningBytes,
              `the reloaded page started with ${content[0].reasoningBytes} bytes of reasoning, the old one had ` +
              `${before.reasoningBytes}`);
    const early = await reasoningOnScreen(page, assistantId);
    assert.equal(early.count, 1);
    assert.equal(early.open, false, 'closed after the reload');
    assert.ok(early.text.startsWith(before.reasoning), 'the reasoning from before the reload is on the screen');

    await waitPageMatchesFinalStore(page, srv, assistantId);
    const stored = await storedMessage(srv, sessionId, assistantId);
    await assertReasoningMatchesStore(page, stored);
    const reasoningBytes = utf8Bytes(stored.reasoning);
    assert.ok(content[0].reasoningBytes < reasoningBytes,
              'reloaded mid-reasoning: the rest of it came as reasoning events');
    const after = await pageTrace(page, assistantId);
    assertNothingDoubled(after, reasoningBytes, { part: 'reasoning' });
    assertNothingDoubled(after, utf8Bytes(stored.content));
    const events = after.filter((e) => e.kind === 'reasoning');
    assert.ok(events.length > 0 && events.every((e) => e.result === 'applied'),
              `attached at the cursor: every reasoning event continued the reasoning exactly: ${JSON.stringify(events)}`);
    assert.equal(events[0].offset, content[0].reasoningBytes, 'the first reasoning event starts where the content ended');
  });
});
