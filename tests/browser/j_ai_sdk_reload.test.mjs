// Scenario j: a page built on the AI SDK's own client (the `ai` package's
// AbstractChat and DefaultChatTransport, no React; ai_sdk_page/, bundled once
// by esbuild before the test and served by chatd with --web-dir) sends a
// message, and is reloaded mid-answer. The reloaded page loads the history
// (the answer appears once, generating, with its committed text), resumes the
// stream (a replay from `start`, then the live tail) and ends showing the
// answer once and complete: exactly the stored text, one assistant message,
// one user message, one text part. At no render, before or after the reload,
// does the page show a second assistant message or any text that is not a
// prefix of the stored answer.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { scenario } from './support/browser.mjs';
import { getContent, waitStoreTerminal } from './support/chatd.mjs';
import { buildAiSdkPage } from './support/ai_sdk_page.mjs';
import { pageWait } from './support/ui.mjs';

// 200 tokens at 20 a second: 10 s of answer, so the reload lands mid-answer
// even on a loaded machine.
const SIM = ['--sim-tokens-per-second', '20', '--sim-min-tokens', '200', '--sim-max-tokens', '200'];
const QUESTION = 'Tell me a long story, then I reload the page.';

let built;
before(async () => { built = await buildAiSdkPage(); });
after(async () => { await built?.cleanup(); });

// Runs in the page before its own script, on every load: records, after each
// batch of DOM changes, how many messages of each role the list shows and the
// assistant texts it showed, and every CSP violation (the bundle must run
// under chatd's policy: no eval, no inline script).
function watchRenders() {
  window.__renders = { maxAssistants: 0, maxUsers: 0, texts: [], csp: [] };
  document.addEventListener('securitypolicyviolation', (e) => {
    window.__renders.csp.push(`${e.violatedDirective} ${e.blockedURI}`);
  });
  new MutationObserver(() => {
    const r = window.__renders;
    const assistants = document.querySelectorAll('#messages li[data-role="assistant"]');
    r.maxAssistants = Math.max(r.maxAssistants, assistants.length);
    r.maxUsers = Math.max(r.maxUsers, document.querySelectorAll('#messages li[data-role="user"]').length);
    for (const a of assistants) {
      const text = [...a.querySelectorAll('[data-part="text"]')].map((p) => p.textContent).join('');
      if (r.texts.at(-1) !== text) r.texts.push(text);
    }
  }).observe(document, { childList: true, subtree: true, characterData: true });
}

/** What the list shows: every message's id, role, and the text of each text part. */
function shown(page) {
  return page.evaluate(() => [...document.querySelectorAll('#messages li')].map((li) => ({
    id: li.dataset.id,
    role: li.dataset.role,
    parts: [...li.querySelectorAll('[data-part="text"]')].map((p) => p.textContent),
  })));
}

/** Waits until the page has started (and resumed what it found) or failed; asserts it started. */
async function waitPageReady(page, message) {
  const state = await pageWait(page, () => ['ready', 'failed'].includes(document.body.dataset.page) &&
    { page: document.body.dataset.page, error: document.getElementById('error').textContent },
  undefined, { timeoutMs: 60000, message });
  assert.equal(state.page, 'ready', `the page failed: ${state.error}`);
}

function assertRenders(renders, final, when) {
  assert.ok(renders.maxAssistants <= 1, `${when}: at most one assistant message at every render, saw ${renders.maxAssistants}`);
  assert.ok(renders.maxUsers <= 1, `${when}: at most one user message at every render, saw ${renders.maxUsers}`);
  const bad = renders.texts.find((t) => !final.startsWith(t));
  assert.equal(bad, undefined, `${when}: every assistant text shown is a prefix of the stored answer`);
  assert.deepEqual(renders.csp, [], `${when}: no CSP violation`);
}

test('an AI SDK page reloaded mid-answer shows the answer once and complete', async () => {
  await scenario('j_ai_sdk_reload', { args: ['--web-dir', built.dir, ...SIM] }, async ({ srv, base, newPage }) => {
    const chatId = `ai-sdk-${randomUUID()}`;
    const page = await newPage('tab');
    await page.addInitScript(watchRenders);
    await page.goto(`${base}/?chat=${chatId}`);
    await waitPageReady(page, 'the page to load the (empty) chat and find nothing to resume');
    assert.deepEqual(await shown(page), []);

    await page.locator('#input').fill(QUESTION);
    await page.locator('#send').click();
    const partial = await pageWait(page, () => {
      const li = document.querySelector('#messages li[data-role="assistant"]');
      const text = [...(li?.querySelectorAll('[data-part="text"]') ?? [])].map((p) => p.textContent).join('');
      return text.length >= 20 ? { id: li.dataset.id, text } : null;
    }, undefined, { message: 'the answer to show 20 characters' });
    assert.match(partial.id, /^msg_/, 'the assistant message carries chatd\'s id');
    const renders1 = await page.evaluate(() => window.__renders);
    assert.equal((await getContent(srv, partial.id)).status, 'generating', 'the reload comes mid-answer');

    await page.reload();
    await waitPageReady(page, 'the reloaded page to resume the answer to its end');
    const loaded = await page.evaluate(() => window.aiSdkPage.loaded);
    assert.deepEqual(loaded.map((m) => m.role), ['user', 'assistant'], 'the history holds the answer once');
    assert.equal(loaded[1].id, partial.id);
    assert.equal(loaded[1].metadata.status, 'generating', 'the reloaded page found the answer still generating');
    const committed = loaded[1].parts.filter((p) => p.type === 'text').map((p) => p.text).join('');
    assert.ok(committed.startsWith(partial.text), 'the history holds at least what the page showed before the reload');
    assert.equal(await page.locator('#status').textContent(), 'ready',
                 `chat.status after the resume (error: ${await page.locator('#error').textContent()})`);
    assert.equal(await page.locator('#error').isHidden(), true, 'no error');

    const stored = await waitStoreTerminal(srv, partial.id);
    assert.equal(stored.status, 'completed');
    assert.ok(stored.content.startsWith(committed), 'the history held a prefix of the answer');
    assert.ok(stored.content.length > committed.length, 'the resumed stream brought more than the history had');

    const list = await shown(page);
    const users = list.filter((m) => m.role === 'user');
    const assistants = list.filter((m) => m.role === 'assistant');
    assert.equal(list.length, 2, `two messages: ${JSON.stringify(list.map((m) => m.role))}`);
    assert.equal(users.length, 1, 'exactly one user message');
    assert.deepEqual(users[0].parts, [QUESTION]);
    assert.equal(assistants.length, 1, 'exactly one assistant message');
    assert.equal(assistants[0].id, partial.id);
    assert.equal(assistants[0].parts.length, 1, 'one text part');
    assert.equal(assistants[0].parts[0].length, stored.content.length, 'as long as the stored answer: complete, nothing doubled');
    assert.equal(assistants[0].parts[0], stored.content, 'the screen shows exactly the stored answer');

    assertRenders(renders1, stored.content, 'before the reload');
    assertRenders(await page.evaluate(() => window.__renders), stored.content, 'after the reload');
  });
});
