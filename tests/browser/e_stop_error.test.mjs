// Scenario 5: press Stop mid-answer. The answer stops growing, shows as
// cancelled, and the store says `cancelled` with the same partial text. And an
// answer that fails mid-way shows as error, with the error's message and the
// partial text as stored.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scenario } from './support/browser.mjs';
import { delay, getContent, getHistory, utf8Bytes } from './support/chatd.mjs';
import {
  assertPageMatchesStore, model, openApp, pageWait, screen, sendFromComposer, waitModelBytes,
  waitPageMatchesFinalStore,
} from './support/ui.mjs';

const SIM = ['--sim-tokens-per-second', '15', '--sim-min-tokens', '150', '--sim-max-tokens', '200'];

test('Stop mid-answer: it stops growing, shows cancelled, and the store holds the same partial text', async () => {
  await scenario('e_stop', { args: SIM }, async ({ srv, base, newPage }) => {
    const page = await newPage('tab');
    await openApp(page, base);
    const { assistantId } = await sendFromComposer(page, 'Say a lot, I will stop you.');
    await waitModelBytes(page, assistantId, 60, { generating: true });
    assert.equal(await page.locator('#send').isVisible(), false, 'Send is replaced by Stop while generating');
    await page.locator('#stop').click();

    await pageWait(page, (id) => {
      const m = window.__chatd.message(id);
      const el = document.querySelector(`article.msg[data-id="${CSS.escape(id)}"]`);
      return m?.status === 'cancelled' && el?.dataset.status === 'cancelled';
    }, assistantId, { message: 'the answer to show as cancelled' });
    const store = await getContent(srv, assistantId);
    assert.equal(store.status, 'cancelled');
    assert.ok(utf8Bytes(store.content) > 0, 'the partial text is kept');
    await pageWait(page, ({ id, text }) => window.__chatd.message(id).text === text,
                   { id: assistantId, text: store.content }, { message: 'the page to hold the stored partial text' });
    await assertPageMatchesStore(page, srv, assistantId);
    assert.equal((await screen(page, assistantId)).badge, 'cancelled');
    await pageWait(page, () => !document.getElementById('send').hidden && document.getElementById('stop').hidden,
                   undefined, { message: 'Send to come back in place of Stop' });

    // It stays stopped: a short watch for the absence of growth.
    const frozen = await model(page, assistantId);
    await delay(1500);
    assert.deepEqual(await model(page, assistantId), frozen, 'the page did not change after the cancel');
    const later = await getContent(srv, assistantId);
    assert.equal(later.content, store.content, 'the store did not grow after the cancel');
    assert.equal(later.status, 'cancelled');
  });
});

test('an answer that fails mid-way shows as error with the error message and the stored partial text', async () => {
  const args = ['--sim-tokens-per-second', '40', '--sim-min-tokens', '100', '--sim-max-tokens', '120',
                '--sim-fail-after', '25', '--continue-attempts', '0'];
  await scenario('e_error', { args }, async ({ srv, base, newPage }) => {
    const page = await newPage('tab');
    await openApp(page, base);
    const { sessionId, assistantId } = await sendFromComposer(page, 'Fail for me, please.');
    const store = await waitPageMatchesFinalStore(page, srv, assistantId);
    assert.equal(store.status, 'error');
    assert.ok(utf8Bytes(store.content) > 0, 'the partial text is kept');
    const stored = (await getHistory(srv, sessionId)).find((m) => m.id === assistantId);
    assert.ok(stored.error && stored.error.message, `the store has an error message: ${JSON.stringify(stored.error)}`);
    const shown = await screen(page, assistantId);
    assert.equal(shown.badge, 'error');
    assert.equal(shown.error, stored.error.message, 'the error message is on the screen');
    assert.equal((await model(page, assistantId)).error.code, stored.error.code);
    await page.reload();
    await pageWait(page, (id) => document.querySelector(`article.msg[data-id="${CSS.escape(id)}"] .msg-error`)?.textContent,
                   assistantId, { message: 'the error to show after a reload' });
    assert.equal((await screen(page, assistantId)).error, stored.error.message);
    await assertPageMatchesStore(page, srv, assistantId);
  });
});
