// The page's own pieces, run in the browser as the page runs them: the SSE
// parser (chunks split anywhere, CRLF/CR/LF, comments, retry, ids), the
// byte-offset text model, credentials (no token in the page: no Authorization
// header on any request, a token stored by an earlier version is removed on
// load; a normal chat produces no CSP violation), and the session list (New
// chat, switching, the back button).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scenario } from './support/browser.mjs';
import { openApp, pageWait, screen, sendFromComposer, waitPageMatchesFinalStore } from './support/ui.mjs';

const SIM = ['--sim-tokens-per-second', '100', '--sim-min-tokens', '30', '--sim-max-tokens', '40'];

test('SSE parser: same events whatever the chunking and line endings', async () => {
  await scenario('g_sse_parser', { args: SIM }, async ({ base, newPage }) => {
    const page = await newPage('tab');
    await openApp(page, base);
    const result = await page.evaluate(async () => {
      const { SseParser } = await import('/sse.js');
      const run = (chunks) => {
        const events = [];
        const retries = [];
        const comments = [];
        const p = new SseParser((e) => events.push(e), { onRetry: (ms) => retries.push(ms), onComment: (c) => comments.push(c) });
        for (const c of chunks) p.pushBytes(c);
        p.end();
        return { events, retries, comments };
      };
      const enc = new TextEncoder();
      const body = '\uFEFFretry: 1000\n\n: ping\n\n' +
        'event: delta\nid: msg_1.9\ndata: {"message_id":"msg_1","offset":0,"text":"日本語🙂é"}\n\n' +
        'event: status\r\nid: msg_1.9\r\ndata: {"status":\r\ndata: "completed"}\r\n\r\n' +
        'retry: soon\n' +  // not digits: ignored
        'id\n' +             // empty id resets the last id
        'data: x\rdata:y\r\r' +
        'event: nodata\n\n' + // no data: not dispatched
        'id: a\u0000b\ndata: nul id ignored\n\n' +
        'data: unfinished';   // no blank line: discarded at the end
      const bytes = enc.encode(body);
      const whole = run([bytes]);
      const mismatches = [];
      for (let cut = 1; cut < bytes.length; cut++) {
        const split = run([bytes.subarray(0, cut), bytes.subarray(cut)]);
        if (JSON.stringify(split) !== JSON.stringify(whole)) mismatches.push(cut);
      }
      const single = run([...bytes].map((b) => Uint8Array.of(b)));
      return { whole, mismatches, singleSame: JSON.stringify(single) === JSON.stringify(whole) };
    });
    assert.deepEqual(result.mismatches, [], 'every two-chunk split gives the same events');
    assert.ok(result.singleSame, 'byte-by-byte chunks give the same events');
    assert.deepEqual(result.whole.retries, [1000]);
    assert.deepEqual(result.whole.comments, [' ping']);
    assert.deepEqual(result.whole.events, [
      { type: 'delta', id: 'msg_1.9', data: '{"message_id":"msg_1","offset":0,"text":"日本語🙂é"}' },
      { type: 'status', id: 'msg_1.9', data: '{"status":\n"completed"}' },
      { type: 'message', id: '', data: 'x\ny' },
      { type: 'message', id: '', data: 'nul id ignored' },
    ]);
  });
});

test('text model: deltas by UTF-8 byte offset, duplicates skipped, gaps refused', async () => {
  await scenario('g_text_model', { args: SIM }, async ({ base, newPage }) => {
    const page = await newPage('tab');
    await openApp(page, base);
    const r = await page.evaluate(async () => {
      const { MessageText, utf8Length } = await import('/text.js');
      const t = new MessageText();
      const steps = [];
      const step = (offset, text) => steps.push([t.apply(offset, text), t.text, t.bytes]);
      step(0, 'ab');        // applied
      step(2, '日本');      // applied: 6 bytes
      step(2, '日本');      // duplicate
      step(5, '本🙂');      // overlap: adds 🙂
      step(20, 'x');        // gap
      step(12, '');         // duplicate (empty)
      const e = new MessageText('ab');
      const ext = [e.extend('ab'), e.extend('a'), e.extend('abc日'), e.text, e.bytes];
      const lengths = ['', 'a', 'é', '日', '🙂', '\uD800x', 'a🙂b'].map(utf8Length);
      const encoded = ['', 'a', 'é', '日', '🙂', '\uD800x', 'a🙂b'].map((s) => new TextEncoder().encode(s).length);
      return { steps, ext, lengths, encoded };
    });
    assert.deepEqual(r.steps, [
      ['applied', 'ab', 2],
      ['applied', 'ab日本', 8],
      ['duplicate', 'ab日本', 8],
      ['overlap', 'ab日本🙂', 12],
      ['gap', 'ab日本🙂', 12],
      ['duplicate', 'ab日本🙂', 12],
    ]);
    assert.deepEqual(r.ext, ['same', 'stale', 'extended', 'abc日', 6]);
    assert.deepEqual(r.lengths, r.encoded);
  });
});

test('no token in the browser: cookie credentials only, the old stored token is removed, no CSP violation', async () => {
  const OLD_TOKEN = 'tok-SECRET-7f3a9c';
  await scenario('g_no_token', { args: SIM }, async ({ srv, base, newPage, pages }) => {
    const page = await newPage('tab');
    const requests = [];
    page.on('request', (req) => {
      const rec = { url: req.url(), method: req.method(), headers: req.headers() };
      requests.push(rec);
      req.allHeaders().then((h) => { rec.headers = h; }, () => {});
    });
    const violations = [];
    page.on('console', (m) => {
      if (/Content Security Policy|Refused to/i.test(m.text())) violations.push(m.text());
    });
    await openApp(page, base);
    // What an earlier version of the page kept: gone after the next load.
    await page.evaluate((t) => localStorage.setItem('chatd.token', t), OLD_TOKEN);
    await page.reload();
    await openApp(page, base);
    assert.equal(await page.evaluate(() => localStorage.getItem('chatd.token')), null, 'the old token is removed');
    assert.equal(await page.evaluate(() => localStorage.length + sessionStorage.length), 0, 'nothing in web storage');
    assert.equal(await page.evaluate(() => window.__chatd.auth), 'signed-in', 'local mode needs no sign-in');
    assert.equal(await page.locator('#sign-in-form').isVisible(), false, 'no sign-in form in local mode');

    const sent = await sendFromComposer(page, 'Is my token safe?');
    await waitPageMatchesFinalStore(page, srv, sent.assistantId);
    await page.reload();
    await openApp(page, base, sent.sessionId);

    const api = requests.filter((r) => new URL(r.url).pathname.startsWith('/api/'));
    assert.ok(api.length >= 5, `API requests were made (${api.length})`);
    assert.equal(new URL(api[0].url).pathname, '/api/v1/auth/session', 'the page asks who it is first');
    for (const r of api) assert.equal(r.headers.authorization, undefined, `${r.method} ${r.url} has no Authorization`);
    assert.ok(api.some((r) => r.url.includes('/messages/stream?session_id=')), 'the stream request is among them');
    for (const r of requests) assert.ok(!r.url.includes(OLD_TOKEN), `no URL holds the token: ${r.url}`);
    for (const p of pages) assert.ok(!p.log.some((l) => l.includes(OLD_TOKEN)), 'the console never shows the token');
    assert.deepEqual(violations, [], 'no CSP violation during a chat');
  });
});

test('session list: New chat starts an empty conversation, a click reopens a session, Back goes back', async () => {
  await scenario('g_sessions', { args: SIM }, async ({ srv, base, newPage }) => {
    const page = await newPage('tab');
    await openApp(page, base);
    const one = await sendFromComposer(page, 'The first conversation');
    await waitPageMatchesFinalStore(page, srv, one.assistantId);

    await page.locator('#new-chat').click();
    await pageWait(page, () => window.__chatd.sessionId === null && window.__chatd.messages().length === 0,
                   undefined, { message: 'an empty new chat' });
    assert.equal(await page.locator('#chat-title').textContent(), 'New chat');
    const two = await sendFromComposer(page, 'The second conversation');
    assert.notEqual(two.sessionId, one.sessionId);
    await waitPageMatchesFinalStore(page, srv, two.assistantId);

    const titles = () => page.locator('#session-list .session-title').allTextContents();
    await pageWait(page, () => document.querySelectorAll('#session-list .session').length === 2, undefined,
                   { message: 'both sessions in the list' });
    assert.deepEqual(await titles(), ['The second conversation', 'The first conversation'], 'newest first');
    assert.equal(await page.locator('#session-list [aria-current="page"] .session-title').textContent(),
                 'The second conversation');

    await page.locator('#session-list .session', { hasText: 'The first conversation' }).click();
    await pageWait(page, (id) => window.__chatd.sessionId === id && window.__chatd.message(id) === null &&
                   window.__chatd.messages().length === 2, one.sessionId, { message: 'the first session to open' });
    assert.equal((await screen(page, one.userId)).text, 'The first conversation');
    await waitPageMatchesFinalStore(page, srv, one.assistantId);
    assert.match(page.url(), new RegExp(`#s=${one.sessionId}$`));

    await page.goBack();
    await pageWait(page, (id) => window.__chatd.sessionId === id && window.__chatd.messages().length === 2,
                   two.sessionId, { message: 'Back to reopen the second session' });
    await waitPageMatchesFinalStore(page, srv, two.assistantId);
  });
});
