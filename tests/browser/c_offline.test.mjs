// Scenario 3: go offline mid-answer (context.setOffline), come back online.
// While offline the page says it is reconnecting and, after repeated
// failures, that it polls; the generation goes on in the store. Back online
// the page streams again ("Live") and ends with exactly the stored text:
// nothing lost, nothing doubled.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scenario } from './support/browser.mjs';
import { getContent, utf8Bytes, waitFor } from './support/chatd.mjs';
import {
  assertNothingDoubled, model, openApp, pageTrace, sendFromComposer, waitConnection, waitModelBytes,
  waitPageMatchesFinalStore,
} from './support/ui.mjs';

const SIM = ['--sim-tokens-per-second', '20', '--sim-min-tokens', '200', '--sim-max-tokens', '240'];

test('offline mid-answer, then online: the page resumes and ends with exactly the stored text', async () => {
  await scenario('c_offline', { args: SIM }, async ({ srv, base, context, newPage }) => {
    const page = await newPage('tab');
    await openApp(page, base);
    const { assistantId } = await sendFromComposer(page, 'What if the network drops?');
    await waitConnection(page, ['live']);
    await waitModelBytes(page, assistantId, 60, { generating: true });

    await context.setOffline(true);
    await waitConnection(page, ['reconnecting', 'polling']);
    const offlineAt = await model(page, assistantId);
    // Repeated failures: the page falls back to polling (which fails too while offline).
    await waitConnection(page, ['polling']);
    // The generation does not depend on the page.
    await waitFor(async () => {
      const c = await getContent(srv, assistantId);
      return utf8Bytes(c.content) >= offlineAt.bytes + 60 || c.status !== 'generating';
    }, { timeoutMs: 30000, message: 'the store to grow while the page is offline' });
    const whileOffline = await model(page, assistantId);
    assert.ok(whileOffline.text.startsWith(offlineAt.text), 'the page kept its text while offline');

    await context.setOffline(false);
    await waitConnection(page, ['live']);
    const final = await waitPageMatchesFinalStore(page, srv, assistantId);
    assert.equal(final.status, 'completed');

    // Nothing doubled: every delta the page appended continued its text exactly.
    assertNothingDoubled(await pageTrace(page, assistantId), utf8Bytes(final.content));
  });
});
