// Scenario 1: start an answer, reload the page mid-answer. The partial answer
// is on the screen at once (from the history and the content endpoint, before
// any stream event), the page attaches to the stream at the content endpoint's
// cursor (every later delta continues exactly where the text ended), and the
// answer grows to exactly the stored final text.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scenario } from './support/browser.mjs';
import { getContent } from './support/chatd.mjs';
import {
  assertDeltasContiguous, normalize, openApp, pageTrace, pageWait, screen, sendFromComposer,
  waitModelBytes, waitPageMatchesFinalStore,
} from './support/ui.mjs';

const SIM = ['--sim-tokens-per-second', '15', '--sim-min-tokens', '120', '--sim-max-tokens', '150'];

test('reload mid-answer: the partial answer is on screen at once and grows to exactly the stored text', async () => {
  await scenario('a_reload', { args: SIM }, async ({ srv, base, newPage }) => {
    const page = await newPage('tab');
    await openApp(page, base);
    const { sessionId, assistantId } = await sendFromComposer(page, 'Tell me what happens when I reload.');
    assert.match(page.url(), new RegExp(`#s=${sessionId}$`), 'the session id is in the URL fragment');

    const before = await waitModelBytes(page, assistantId, 80, { generating: true });
    await page.reload();
    await pageWait(page, (id) => window.__chatd?.message(id) && document.querySelector(
      `article.msg[data-id="${CSS.escape(id)}"] .msg-body`)?.innerText.length > 0,
    assistantId, { message: 'the reloaded page to show the answer' });

    // At once: the first text the reloaded page held came from the history and
    // the content endpoint, and it already had everything shown before.
    const trace = await pageTrace(page, assistantId);
    const firstDelta = trace.findIndex((e) => e.kind === 'delta');
    const loaded = trace.slice(0, firstDelta < 0 ? trace.length : firstDelta);
    const content = loaded.filter((e) => e.kind === 'content');
    assert.equal(content.length, 1, `one content fetch before any delta: ${JSON.stringify(loaded)}`);
    assert.ok(content[0].bytes >= before.bytes,
              `the reloaded page started with ${content[0].bytes} bytes, the old one showed ${before.bytes}`);
    const shown = await screen(page, assistantId);
    assert.ok(normalize(shown.text).startsWith(normalize(before.text)),
              'the partial answer from before the reload is on the screen');

    // Still generating in the store, so the page must keep growing from the stream.
    const store = await getContent(srv, assistantId);
    assert.equal(store.status, 'generating', 'the answer is still generating after the reload');
    await waitModelBytes(page, assistantId, content[0].bytes + 40);
    assert.equal((await screen(page, assistantId)).badge, 'generating');

    const final = await waitPageMatchesFinalStore(page, srv, assistantId);
    assert.equal(final.status, 'completed');

    // Attached at the cursor: the first delta starts where the content ended,
    // and none overlapped or skipped.
    const after = await pageTrace(page, assistantId);
    const deltas = assertDeltasContiguous(after, { startBytes: content[0].bytes });
    assert.ok(deltas.length > 0, 'the reloaded page received the rest as stream deltas');
  });
});
