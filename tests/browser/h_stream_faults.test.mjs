// Faults of the stream that a real network produces rarely, made on purpose
// with request interception: the session stream is unavailable (503) while
// the poll endpoint works, so the page polls, keeps the answer growing, and
// returns to streaming once it can; and a stream that skips text (a delta
// past the end of what the page holds) makes the page re-fetch the content
// endpoint and re-attach from its cursor. Both end exactly as stored.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scenario } from './support/browser.mjs';
import { utf8Bytes } from './support/chatd.mjs';
import {
  assertDeltasContiguous, assertNothingDoubled, openApp, pageTrace, pageWait, sendFromComposer, waitConnection,
  waitPageMatchesFinalStore,
} from './support/ui.mjs';

const SIM = ['--sim-tokens-per-second', '20', '--sim-min-tokens', '200', '--sim-max-tokens', '240'];
const SIM_FAST = ['--sim-tokens-per-second', '30', '--sim-min-tokens', '150', '--sim-max-tokens', '180'];
const STREAM = '**/api/v1/chat/messages/stream?*';

test('stream unavailable: the page polls, the answer keeps growing, and it returns to streaming', async () => {
  await scenario('h_poll_fallback', { args: SIM }, async ({ srv, base, context, newPage }) => {
    let blocked = true;
    let refused = 0;
    await context.route(STREAM, (route) => {
      if (!blocked) return route.continue();
      refused += 1;
      return route.fulfill({
        status: 503,
        contentType: 'application/json',
        body: '{"error":{"code":"unavailable","message":"test: stream blocked"}}',
      });
    });
    const page = await newPage('tab');
    await openApp(page, base);
    const { assistantId } = await sendFromComposer(page, 'Stream through a hostile proxy.');

    await waitConnection(page, ['polling']);
    const shown = await pageWait(page, () => document.getElementById('conn').textContent, undefined,
                                 { message: 'the indicator text' });
    assert.equal(shown, 'Polling (stream unavailable)');
    // Polling alone keeps the answer growing on the screen.
    const start = await pageWait(page, (id) => window.__chatd.message(id)?.bytes > 0 && window.__chatd.message(id),
                                 assistantId, { message: 'polled text to appear' });
    await pageWait(page, ({ id, min }) => window.__chatd.connection === 'polling' &&
                   window.__chatd.message(id).bytes >= min && window.__chatd.message(id).status === 'generating',
    { id: assistantId, min: start.bytes + 60 }, { message: 'the answer to grow while polling' });
    assert.ok(refused >= 3, `the stream was refused ${refused} times before polling`);
    assert.ok((await pageTrace(page, assistantId)).some((e) => e.kind === 'poll' && e.result === 'extended'));

    blocked = false;
    await waitConnection(page, ['live']);
    const final = await waitPageMatchesFinalStore(page, srv, assistantId);
    assert.equal(final.status, 'completed');
    assertNothingDoubled(await pageTrace(page, assistantId), utf8Bytes(final.content), { allowGaps: true });
  });
});

test('a gap in the stream: the page re-fetches the content and re-attaches from its cursor', async () => {
  await scenario('h_gap', { args: SIM_FAST }, async ({ srv, base, context, newPage }) => {
    // A generation started elsewhere; the page opens the session mid-answer.
    const page = await newPage('tab');
    await openApp(page, base);
    const { sessionId, assistantId } = await sendFromComposer(page, 'Skip some text, then recover.');
    await pageWait(page, (id) => window.__chatd.message(id)?.bytes > 20, assistantId, { message: 'some text' });

    let faked = 0;
    await context.route(STREAM, (route) => {
      if (faked > 0) return route.continue();
      faked += 1;
      const delta = { message_id: assistantId, offset: 1_000_000, text: 'NOT PART OF THE ANSWER ' };
      return route.fulfill({
        status: 200,
        headers: { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' },
        body: `retry: 1000\n\nevent: delta\nid: ${assistantId}.1000023\ndata: ${JSON.stringify(delta)}\n\n`,
      });
    });
    await page.reload();
    await openApp(page, base, sessionId);

    const final = await waitPageMatchesFinalStore(page, srv, assistantId);
    assert.equal(final.status, 'completed');
    assert.equal(faked, 1);
    const trace = await pageTrace(page, assistantId);
    const gap = trace.findIndex((e) => e.kind === 'delta' && e.result === 'gap');
    assert.ok(gap >= 0, `the page saw the gap: ${JSON.stringify(trace.slice(0, 6))}`);
    const refetch = trace.findIndex((e, i) => i > gap && e.kind === 'content');
    assert.ok(refetch > gap, 'then re-fetched the content endpoint');
    assertDeltasContiguous(trace, { from: refetch + 1, startBytes: trace[refetch].bytes });
    assert.ok(!final.content.includes('NOT PART OF THE ANSWER'));
  });
});
