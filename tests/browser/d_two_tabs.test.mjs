// Scenario 4: two tabs, two sessions, both generating at once: both complete
// correctly and neither shows the other's messages. And a second tab on the
// same session follows a generation live, also one started in the first tab
// after it opened (with the user message that started it).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scenario } from './support/browser.mjs';
import { getContent, getHistory, utf8Bytes } from './support/chatd.mjs';
import {
  model, openApp, pageWait, screen, sendFromComposer, waitConnection, waitModelBytes,
  waitPageMatchesFinalStore,
} from './support/ui.mjs';

const SIM = ['--sim-tokens-per-second', '20', '--sim-min-tokens', '100', '--sim-max-tokens', '130'];

test('two tabs, two sessions, generating at once: both complete correctly', async () => {
  await scenario('d_two_sessions', { args: SIM }, async ({ srv, base, newPage }) => {
    const a = await newPage('tab-a');
    const b = await newPage('tab-b');
    await openApp(a, base);
    await openApp(b, base);
    const sentA = await sendFromComposer(a, 'First tab, first session.');
    const sentB = await sendFromComposer(b, 'Second tab, second session.');
    assert.notEqual(sentA.sessionId, sentB.sessionId);

    // Both at once: each store message is generating while the other is.
    const [ca, cb] = await Promise.all([getContent(srv, sentA.assistantId), getContent(srv, sentB.assistantId)]);
    assert.equal(ca.status, 'generating', 'session A is generating');
    assert.equal(cb.status, 'generating', 'session B is generating at the same time');
    await Promise.all([
      waitModelBytes(a, sentA.assistantId, 40, { generating: true }),
      waitModelBytes(b, sentB.assistantId, 40, { generating: true }),
    ]);

    const [fa, fb] = await Promise.all([
      waitPageMatchesFinalStore(a, srv, sentA.assistantId),
      waitPageMatchesFinalStore(b, srv, sentB.assistantId),
    ]);
    assert.equal(fa.status, 'completed');
    assert.equal(fb.status, 'completed');
    assert.notEqual(fa.content, fb.content, 'different prompts, different answers');

    // Each tab shows its own session only, exactly as stored.
    for (const [page, sent] of [[a, sentA], [b, sentB]]) {
      const stored = await getHistory(srv, sent.sessionId);
      const shown = await page.evaluate(() => window.__chatd.messages().map((m) => ({ id: m.id, text: m.text })));
      assert.deepEqual(shown, stored.map((m) => ({ id: m.id, text: m.content })));
      const user = await screen(page, sent.userId);
      assert.equal(user.text, stored[0].content, 'the user message is on the screen as typed');
    }
  });
});

test('a second tab on the same session follows the generation live, also one the first tab starts later', async () => {
  await scenario('d_same_session', { args: SIM }, async ({ srv, base, newPage }) => {
    const a = await newPage('tab-a');
    await openApp(a, base);
    const first = await sendFromComposer(a, 'Both tabs watch this.');
    await waitModelBytes(a, first.assistantId, 30, { generating: true });

    const b = await newPage('tab-b');
    await openApp(b, base, first.sessionId);
    await waitConnection(b, ['live']);
    // Live: tab B sees the answer grow while it is still generating.
    const seen = await waitModelBytes(b, first.assistantId, 1, { generating: true });
    await waitModelBytes(b, first.assistantId, seen.bytes + 40, { generating: true });
    await Promise.all([
      waitPageMatchesFinalStore(a, srv, first.assistantId),
      waitPageMatchesFinalStore(b, srv, first.assistantId),
    ]);

    // Tab A sends again; tab B picks up the new generation by itself.
    const second = await sendFromComposer(a, 'And now a second question.');
    const live = await waitModelBytes(b, second.assistantId, 1, { generating: true });
    assert.equal(live.status, 'generating');
    await pageWait(b, (id) => window.__chatd.message(id)?.text === 'And now a second question.',
                   second.userId, { message: 'tab B to show the user message sent from tab A' });
    assert.equal((await screen(b, second.userId)).text, 'And now a second question.');
    const final = await waitPageMatchesFinalStore(b, srv, second.assistantId);
    await waitPageMatchesFinalStore(a, srv, second.assistantId);
    assert.equal((await model(b, second.assistantId)).bytes, utf8Bytes(final.content));
  });
});
