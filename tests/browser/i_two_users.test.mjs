// Scenario 9: two people on one chatd (`--auth jwt`), each in their own
// browser context. Each signs in through the page's form with a token; the
// page trades it once (POST /api/v1/auth/session) for an HttpOnly session
// cookie and keeps nothing: the token is in no storage, no readable cookie, no
// URL, no console line, and no request after the sign-in carries it. Each
// sees only their own chats (bob opening alice's session gets "Session not
// found"), answers stream live on the cookie alone, and signing out returns
// the page to the sign-in form with the API answering 401. A cookie that stops
// working mid-use (expired, revoked) signs the page out with a banner.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { scenario } from './support/browser.mjs';
import { delay } from './support/chatd.mjs';
import {
  openApp, pageWait, screen, sendFromComposer, waitConnection, waitModelBytes, waitPageMatchesFinalStore,
} from './support/ui.mjs';

const SIM = ['--sim-tokens-per-second', '20', '--sim-min-tokens', '100', '--sim-max-tokens', '130'];
const SECRET = randomBytes(32).toString('hex');
const JWT_ARGS = { args: ['--auth', 'jwt', ...SIM], env: { CHATD_JWT_SECRET: SECRET } };

const b64url = (s) => Buffer.from(s).toString('base64url');

function jwt(sub, secret = SECRET) {
  const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64url(JSON.stringify({ sub, exp: Math.floor(Date.now() / 1000) + 3600 }));
  const sig = createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

// The store as `token`'s owner sees it (the helpers read it through srv.api).
function storeAs(srv, token) {
  return { ...srv, api: (method, p, body, headers = {}) => srv.api(method, p, body, { Authorization: `Bearer ${token}`, ...headers }) };
}

// Every request the page makes, with all its headers.
function recordRequests(page) {
  const requests = [];
  page.on('request', (req) => {
    const rec = { url: req.url(), method: req.method(), headers: req.headers() };
    requests.push(rec);
    req.allHeaders().then((h) => { rec.headers = h; }, () => {});
  });
  return requests;
}

const apiRequests = (requests) => requests.filter((r) => new URL(r.url).pathname.startsWith('/api/'));

async function signIn(page, token, user) {
  await page.locator('#token-input').fill(token);
  await page.locator('#sign-in').click();
  await pageWait(page, (u) => window.__chatd.auth === 'signed-in' && window.__chatd.user === u, user,
                 { message: `${user} to be signed in` });
  assert.equal(await page.locator('#token-input').inputValue(), '', 'the token field is emptied');
  assert.equal(await page.locator('#auth-state').textContent(), `Signed in as ${user}`);
  assert.ok(await page.locator('#sign-out').isVisible(), 'a Sign out button');
  assert.equal(await page.locator('#sign-in-form').isVisible(), false, 'the form is gone');
}

// Nothing the page's scripts can read holds the token.
async function assertTokenNotInPage(page, token) {
  const found = await page.evaluate((t) => {
    const dump = (s) => Array.from({ length: s.length }, (_, i) => `${s.key(i)}=${s.getItem(s.key(i))}`).join('\n');
    return {
      local: dump(localStorage),
      session: dump(sessionStorage),
      cookie: document.cookie,
      input: document.getElementById('token-input').value,
      html: document.documentElement.outerHTML.includes(t),
    };
  }, token);
  assert.ok(!found.local.includes(token), 'not in localStorage');
  assert.ok(!found.session.includes(token), 'not in sessionStorage');
  assert.ok(!found.cookie.includes(token), 'not in document.cookie');
  assert.ok(!found.cookie.includes('chatd_session'), 'the session cookie is HttpOnly: scripts cannot read it');
  assert.equal(found.input, '');
  assert.equal(found.html, false, 'not in the DOM');
}

test('two users sign in with their tokens, see only their own chats, stream live on the cookie, and sign out', async () => {
  await scenario('i_two_users', JWT_ARGS, async ({ srv, base, context, newContext, newPage, pages }) => {
    const tokens = { alice: jwt('alice'), bob: jwt('bob') };
    const alice = await newPage('alice', context);
    const bobContext = await newContext();
    const bob = await newPage('bob', bobContext);
    const sent = { alice: recordRequests(alice), bob: recordRequests(bob) };

    // Signed out at first: the form, and no API call but "who am I?".
    await openApp(alice, base);
    await openApp(bob, base);
    for (const page of [alice, bob]) {
      assert.equal(await page.evaluate(() => window.__chatd.auth), 'signed-out');
      assert.ok(await page.locator('#sign-in-form').isVisible(), 'the sign-in form is open');
    }
    await delay(1000);  // a short watch for the absence of API calls
    for (const who of ['alice', 'bob']) {
      assert.deepEqual(apiRequests(sent[who]).map((r) => `${r.method} ${new URL(r.url).pathname}`),
                       ['GET /api/v1/auth/session'], `${who}'s page calls nothing else while signed out`);
    }

    await signIn(alice, tokens.alice, 'alice');
    await signIn(bob, tokens.bob, 'bob');
    for (const [ctx, who] of [[context, 'alice'], [bobContext, 'bob']]) {
      const cookie = (await ctx.cookies()).find((c) => c.name === 'chatd_session');
      assert.ok(cookie, `${who} has a session cookie`);
      assert.equal(cookie.httpOnly, true);
      assert.equal(cookie.sameSite, 'Strict');
      assert.equal(cookie.path, '/api/');
      assert.ok(!cookie.value.includes(tokens[who]), 'the cookie is not the token');
    }

    // Each asks something; both answers stream live at the same time.
    const a = await sendFromComposer(alice, 'Alice asks about apples.');
    const b = await sendFromComposer(bob, 'Bob asks about bananas.');
    assert.notEqual(a.sessionId, b.sessionId);
    for (const [page, s] of [[alice, a], [bob, b]]) {
      await waitConnection(page, ['live']);
      const first = await waitModelBytes(page, s.assistantId, 1, { generating: true });
      await waitModelBytes(page, s.assistantId, first.bytes + 40, { generating: true });
    }
    const store = { alice: storeAs(srv, tokens.alice), bob: storeAs(srv, tokens.bob) };
    const [fa, fb] = await Promise.all([
      waitPageMatchesFinalStore(alice, store.alice, a.assistantId),
      waitPageMatchesFinalStore(bob, store.bob, b.assistantId),
    ]);
    assert.equal(fa.status, 'completed');
    assert.equal(fb.status, 'completed');
    const streams = (who) => apiRequests(sent[who]).filter((r) => r.url.includes('/messages/stream?session_id='));
    assert.ok(streams('alice').length > 0 && streams('bob').length > 0, 'both followed the session stream');

    // Each list holds only their own chat.
    const titles = (page) => page.locator('#session-list .session-title').allTextContents();
    await pageWait(alice, () => document.querySelectorAll('#session-list .session').length === 1);
    await pageWait(bob, () => document.querySelectorAll('#session-list .session').length === 1);
    assert.deepEqual(await titles(alice), ['Alice asks about apples.']);
    assert.deepEqual(await titles(bob), ['Bob asks about bananas.']);
    await bob.reload();
    await openApp(bob, base, b.sessionId);
    assert.deepEqual(await titles(bob), ['Bob asks about bananas.'], 'after a reload too (the cookie stays)');

    // Bob opens alice's session by its URL: not found, nothing of hers shown.
    await openApp(bob, base, a.sessionId);
    await pageWait(bob, () => window.__chatd.connection === 'gone', undefined, { message: 'Session not found' });
    assert.equal(await bob.locator('#chat-title').textContent(), 'Session not found');
    assert.deepEqual(await bob.evaluate(() => window.__chatd.messages()), []);
    assert.ok(!(await bob.locator('body').innerText()).includes('apples'), 'none of alice\'s text is on bob\'s screen');
    assert.equal((await screen(alice, a.userId)).text, 'Alice asks about apples.', 'alice still sees hers');

    // Sign out: back to the sign-in form, nothing shown, the API says 401.
    await alice.locator('#sign-out').click();
    await pageWait(alice, () => window.__chatd.auth === 'signed-out' && window.__chatd.sessionId === null &&
                   window.__chatd.messages().length === 0 && document.querySelectorAll('#session-list li').length === 0,
    undefined, { message: 'alice to be signed out with nothing shown' });
    assert.ok(await alice.locator('#sign-in-form').isVisible());
    assert.equal(await alice.locator('#sign-out').isVisible(), false);
    assert.ok(!(await context.cookies()).some((c) => c.name === 'chatd_session' && c.value), 'the cookie is gone');
    const statuses = await alice.evaluate(async () => Promise.all(
      ['/api/v1/chat/sessions', '/api/v1/auth/session'].map((u) => fetch(u, { credentials: 'same-origin' }).then((r) => r.status))));
    assert.deepEqual(statuses, [401, 401], 'the API answers 401 from the signed-out context');
    await alice.reload();
    await openApp(alice, base);
    assert.equal(await alice.evaluate(() => window.__chatd.auth), 'signed-out', 'still signed out after a reload');
    assert.equal(await bob.evaluate(() => window.__chatd.auth), 'signed-in', 'bob is not affected');

    // The token is nowhere the page or the network path keeps things.
    for (const [page, who] of [[alice, 'alice'], [bob, 'bob']]) {
      await assertTokenNotInPage(page, tokens[who]);
      const withAuth = sent[who].filter((r) => r.headers.authorization);
      assert.deepEqual(withAuth.map((r) => `${r.method} ${new URL(r.url).pathname}`), ['POST /api/v1/auth/session'],
                       `${who}'s token went in the sign-in request only`);
      for (const r of sent[who]) {
        assert.ok(!r.url.includes(tokens[who]), `no URL holds the token: ${r.url}`);
        if (r !== withAuth[0]) assert.ok(!JSON.stringify(r.headers).includes(tokens[who]), `${r.url}: no header holds it`);
      }
    }
    for (const p of pages) {
      for (const t of Object.values(tokens)) assert.ok(!p.log.some((l) => l.includes(t)), `${p.label}: not in the console`);
    }
  });
});

test('a refused token keeps the form; a session that stops working signs the page out with a banner', async () => {
  await scenario('i_session_ends', JWT_ARGS, async ({ srv, base, context, newPage }) => {
    const page = await newPage('carol');
    await openApp(page, base);

    await page.locator('#token-input').fill(jwt('carol', 'not-the-secret-not-the-secret-not-the-secret'));
    await page.locator('#sign-in').click();
    await pageWait(page, () => /not accepted/.test(document.getElementById('sign-in-hint').textContent), undefined,
                   { message: 'the refusal to show' });
    assert.equal(await page.evaluate(() => window.__chatd.auth), 'signed-out');
    assert.equal(await page.locator('#token-input').inputValue(), '', 'a refused token is not kept either');

    const token = jwt('carol');
    await signIn(page, token, 'carol');
    const s = await sendFromComposer(page, 'Carol is here.');
    await waitPageMatchesFinalStore(page, storeAs(srv, token), s.assistantId);

    // The cookie stops working (as when it expires or is revoked): the next call is refused.
    await context.clearCookies();
    await page.locator('#input').fill('Anyone there?');
    await page.locator('#input').press('Enter');
    await pageWait(page, () => window.__chatd.auth === 'signed-out' && !document.getElementById('banner').hidden,
                   undefined, { message: 'the page to sign out with a banner' });
    assert.match(await page.locator('#banner-text').textContent(), /signed out/i);
    assert.ok(await page.locator('#sign-in-form').isVisible(), 'the sign-in form is open');
    assert.deepEqual(await page.evaluate(() => window.__chatd.messages()), [], 'nothing of the session stays shown');

    // Signing in again brings the session back.
    await signIn(page, token, 'carol');
    await pageWait(page, (id) => window.__chatd.sessionId === id && window.__chatd.messages().length === 2,
                   s.sessionId, { message: 'the session to come back after signing in again' });
  });
});
