// Scenario 6: message text containing <script> and <img onerror> shows as
// text and runs nothing. The simulated model cannot be made to say such text,
// so the user-message path is driven end to end (typed, sent, stored, shown,
// reloaded) and the assistant path (Markdown) is fed directly to the page's
// own renderer. Also: Enter sends and Shift+Enter makes a new line; without
// markdown-it the page falls back to plain text.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scenario } from './support/browser.mjs';
import { getHistory } from './support/chatd.mjs';
import { openApp, pageWait, screen, waitPageMatchesFinalStore } from './support/ui.mjs';

const SIM = ['--sim-tokens-per-second', '200', '--sim-min-tokens', '20', '--sim-max-tokens', '30'];

const LINE1 = `<script>window.__pwned = 'script'</script><img src=x onerror="window.__pwned = 'img'">`;
const LINE2 = `<b>bold?</b> & <iframe src="javascript:window.__pwned='iframe'"></iframe> "quotes" 'single'`;

const MARKDOWN = [
  `Intro <script>window.__pwned = 'md-script'</script> and <img src=x onerror="window.__pwned = 'md-img'">`,
  '',
  '- item one',
  "- item <b>two</b> <svg onload=\"window.__pwned = 'svg'\"></svg>",
  '',
  '```html',
  "<script>window.__pwned = 'code'</script>",
  '```',
  '',
  "[bad](javascript:window.__pwned='link') [data](data:text/html,<script>x</script>) [good](https://example.com/a)",
  '',
  "![pic](x\" onerror=\"window.__pwned='image') <a href=\"javascript:window.__pwned='raw-a'\">raw</a>",
  '',
  '| left | right |',
  '|:-----|------:|',
  '| a    | b     |',
].join('\n');

async function noActiveContent(page) {
  return page.evaluate(() => ({
    pwned: window.__pwned,
    elements: [...document.querySelectorAll('#messages script, #messages img, #messages iframe, #messages svg, #messages object, #messages embed')]
      .map((e) => e.outerHTML),
    handlers: [...document.querySelectorAll('#messages *')].flatMap((e) => [...e.attributes]
      .filter((a) => /^on/i.test(a.name) || a.name === 'style').map((a) => `${e.tagName}.${a.name}`)),
  }));
}

test('text with <script> and <img onerror> in a user message shows literally and runs nothing', async () => {
  await scenario('f_user_message', { args: SIM }, async ({ srv, base, newPage }) => {
    const page = await newPage('tab');
    await openApp(page, base);
    const input = page.locator('#input');
    await input.click();
    await page.keyboard.type(LINE1);
    await page.keyboard.press('Shift+Enter');
    await page.keyboard.type(LINE2);
    assert.equal(await input.inputValue(), `${LINE1}\n${LINE2}`, 'Shift+Enter made a new line and sent nothing');
    assert.equal(await page.evaluate(() => window.__chatd.messages().length), 0);
    await page.keyboard.press('Enter');

    const ids = await pageWait(page, () => {
      const ms = window.__chatd.messages();
      const u = ms.find((m) => m.role === 'user');
      const a = ms.find((m) => m.role === 'assistant');
      return u && a ? { user: u.id, assistant: a.id, session: window.__chatd.sessionId } : null;
    }, undefined, { message: 'the message to be sent' });
    assert.equal(await input.inputValue(), '', 'the composer is cleared after sending');
    await waitPageMatchesFinalStore(page, srv, ids.assistant);

    const text = `${LINE1}\n${LINE2}`;
    const stored = await getHistory(srv, ids.session);
    assert.equal(stored[0].content, text, 'the store holds the text as typed');
    for (const when of ['after sending', 'after a reload']) {
      const shown = await screen(page, ids.user);
      assert.equal(shown.text, text, `the text is on the screen literally (${when})`);
      const checks = await noActiveContent(page);
      assert.equal(checks.pwned, undefined, `nothing ran (${when})`);
      assert.deepEqual(checks.elements, [], `no active element was created (${when})`);
      assert.deepEqual(checks.handlers, [], `no handler or style attribute was created (${when})`);
      if (when === 'after sending') {
        await page.reload();
        await pageWait(page, (id) => window.__chatd?.message(id) && document.querySelector(
          `article.msg[data-id="${CSS.escape(id)}"]`), ids.user, { message: 'the reloaded page to show the message' });
      }
    }
    assert.equal(await page.title(), `${LINE1.slice(0, 57)}… · chatd`, 'the title is text too');
  });
});

test('assistant Markdown with <script>, <img onerror> and javascript: links renders safely', async () => {
  await scenario('f_markdown', { args: SIM }, async ({ base, newPage }) => {
    const page = await newPage('tab');
    await openApp(page, base);
    assert.equal(await page.evaluate(() => window.__chatd.markdown), true, 'markdown-it is loaded from /vendor/');
    const out = await page.evaluate(async (md) => {
      const { renderAssistant } = await import('/markdown.js');
      const el = document.createElement('div');
      el.className = 'msg-body md';
      el.id = 'probe';
      const wrap = document.createElement('article');
      wrap.className = 'msg msg-assistant';
      wrap.append(el);
      document.getElementById('messages').append(wrap);
      renderAssistant(el, md);
      await new Promise((r) => requestAnimationFrame(() => setTimeout(r, 200)));
      return {
        text: el.textContent,
        items: [...el.querySelectorAll('ul > li')].map((li) => li.textContent),
        code: el.querySelector('pre > code')?.textContent ?? null,
        links: [...el.querySelectorAll('a')].map((a) => ({
          text: a.textContent, href: a.getAttribute('href'), rel: a.rel, target: a.target,
        })),
        cells: [...el.querySelectorAll('th, td')].map((c) => c.className),
      };
    }, MARKDOWN);

    const checks = await noActiveContent(page);
    assert.equal(checks.pwned, undefined, 'nothing ran');
    assert.deepEqual(checks.elements, [], 'no script, img, iframe or svg element');
    assert.deepEqual(checks.handlers, [], 'no on* or style attribute');
    assert.ok(out.text.includes(`<script>window.__pwned = 'md-script'</script>`), 'raw <script> shows as text');
    assert.ok(out.text.includes(`<img src=x onerror="window.__pwned = 'md-img'">`), 'raw <img onerror> shows as text');
    assert.deepEqual(out.items.length, 2, 'a Markdown list is rendered as a list');
    assert.ok(out.items[1].includes('<b>two</b>'));
    assert.equal(out.code, "<script>window.__pwned = 'code'</script>\n", 'a code block shows its text');
    const good = out.links.find((l) => l.text === 'good');
    assert.deepEqual(good, { text: 'good', href: 'https://example.com/a', rel: 'noopener noreferrer', target: '_blank' });
    for (const link of out.links) {
      assert.ok(link.href === null || /^https?:/.test(link.href), `no unsafe link target: ${JSON.stringify(link)}`);
      assert.equal(link.rel, 'noopener noreferrer');
    }
    assert.ok(!out.links.some((l) => l.text === 'raw'), 'raw HTML <a> is text, not a link');
    assert.deepEqual(out.cells, ['align-left', 'align-right', 'align-left', 'align-right'],
                     'table alignment is a class, not a (CSP-blocked) style attribute');
  });
});

test('without markdown-it the page shows answers as plain text, still inert', async () => {
  await scenario('f_no_markdown', { args: SIM }, async ({ srv, base, context, newPage }) => {
    await context.route('**/vendor/markdown-it.js', (route) => route.abort());
    const page = await newPage('tab');
    await openApp(page, base);
    assert.equal(await page.evaluate(() => window.__chatd.markdown), false);
    const input = page.locator('#input');
    await input.fill(LINE1);
    await input.press('Enter');
    const ids = await pageWait(page, () => {
      const a = window.__chatd.messages().find((m) => m.role === 'assistant');
      return a ? a.id : null;
    }, undefined, { message: 'the answer to appear' });
    const store = await waitPageMatchesFinalStore(page, srv, ids);
    const shown = await page.evaluate((id) => {
      const body = document.querySelector(`article.msg[data-id="${CSS.escape(id)}"] .msg-body`);
      return { text: body.textContent, plain: body.classList.contains('plain'), children: body.children.length };
    }, ids);
    assert.deepEqual(shown, { text: store.content, plain: true, children: 0 }, 'plain text fallback shows the answer exactly');
    const out = await page.evaluate(async (text) => {
      const { renderAssistant } = await import('/markdown.js');
      const el = document.createElement('div');
      document.getElementById('messages').append(el);
      renderAssistant(el, text);
      return { text: el.textContent, children: el.children.length, plain: el.classList.contains('plain') };
    }, MARKDOWN);
    assert.deepEqual(out, { text: MARKDOWN, children: 0, plain: true });
    const checks = await noActiveContent(page);
    assert.equal(checks.pwned, undefined);
    assert.deepEqual(checks.elements, []);
  });
});
