// Scenario 2: start an answer, close the tab, wait until the store shows the
// answer went on without any tab, open the session in a new tab: the answer
// has continued, and the new tab ends with exactly the stored text.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scenario } from './support/browser.mjs';
import { getContent, utf8Bytes, waitFor } from './support/chatd.mjs';
import {
  normalize, openApp, pageTrace, screen, sendFromComposer, waitModelBytes, waitPageMatchesFinalStore,
} from './support/ui.mjs';

const SIM = ['--sim-tokens-per-second', '20', '--sim-min-tokens', '120', '--sim-max-tokens', '150'];

test('close the tab mid-answer, open the session in a new tab: the answer went on and matches the store', async () => {
  await scenario('b_close_tab', { args: SIM }, async ({ srv, base, newPage }) => {
    const first = await newPage('first-tab');
    await openApp(first, base);
    const { sessionId, assistantId } = await sendFromComposer(first, 'Keep going when I close the tab.');
    const seen = await waitModelBytes(first, assistantId, 60, { generating: true });
    await first.close();

    // Nobody is watching: the store keeps growing (or finishes).
    const grown = await waitFor(async () => {
      const c = await getContent(srv, assistantId);
      return utf8Bytes(c.content) >= seen.bytes + 80 || c.status !== 'generating' ? c : null;
    }, { timeoutMs: 30000, message: 'the answer to continue in the store with no tab open' });
    assert.ok(grown.content.startsWith(seen.text), 'the store continues the text the closed tab showed');

    const second = await newPage('second-tab');
    await openApp(second, base, sessionId);
    const opened = await waitModelBytes(second, assistantId, utf8Bytes(grown.content));
    assert.ok(opened.text.startsWith(grown.content), 'the new tab starts with at least what the store had');
    const trace = await pageTrace(second, assistantId);
    const loaded = trace.find((e) => e.kind === 'content');
    assert.ok(loaded && loaded.bytes >= utf8Bytes(grown.content), 'the new tab loaded the continued answer at once');
    const shown = await screen(second, assistantId);
    assert.ok(normalize(shown.text).length > 0, 'the answer is on the screen');

    const final = await waitPageMatchesFinalStore(second, srv, assistantId);
    assert.equal(final.status, 'completed');
    assert.ok(utf8Bytes(final.content) > seen.bytes, 'the final answer is longer than what the closed tab saw');
  });
});
