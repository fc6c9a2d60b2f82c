// Scenario s: local safety of --auth none (the default: every request acts
// for one local user, so chatd must not be reachable by other web sites
// through the user's browser).
//
// - DNS rebinding: a request whose Host is not a loopback name (localhost,
//   127.0.0.1, [::1], any port) or the configured host answers 403
//   forbidden_host, the UI at / included.
// - Cross-site requests: a POST or DELETE whose Origin is not chatd's own
//   (http:// + Host), or that says Sec-Fetch-Site: cross-site without an
//   allowed Origin, answers 403 cross_origin and changes nothing (a
//   cross-site cancel leaves the generation running: --sim-tokens-per-second
//   5 keeps it generating for half a minute or more). Same-origin requests
//   and requests without Origin (curl, scripts) work; GETs with a foreign
//   Origin answer normally but with no CORS headers, so a browser hides them.
// - chatd refuses to start in this mode on a non-loopback address.
//
// Requests go over raw sockets (node:net) so the test chooses every header
// byte, Host included (fetch sets Host itself).

import test from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { writeFile } from 'node:fs/promises';
import { withChatd, createSession, send, getContent, waitFor } from './support/chatd.mjs';
import { rawHttp, tempDir, startOutcome, assertRefused } from './support/auth.mjs';

const API = '/api/v1/chat';

async function webDir() {
  const dir = await tempDir('chatd-web-');
  await writeFile(path.join(dir, 'index.html'), '<!doctype html><title>chat</title>');
  await writeFile(path.join(dir, 'app.js'), 'export const x = 1;');
  return dir;
}

const ARGS = ['--sim-tokens-per-second', '5', '--sim-min-tokens', '200', '--sim-max-tokens', '400'];

/** One raw request; Host defaults to chatd's own host:port; JSON body gets its Content-Type. */
function raw(srv, method, p, { host = new URL(srv.baseUrl).host, headers = {}, body } = {}) {
  const h = { ...headers };
  if (body !== undefined && !Object.keys(h).some((k) => k.toLowerCase() === 'content-type')) h['Content-Type'] = 'application/json';
  return rawHttp(srv.baseUrl, { method, path: p, host, headers: h, body });
}

function expectForbidden(r, code, label) {
  assert.equal(r.status, 403, `${label}: expected 403, got ${r.status}: ${r.text.slice(0, 300)}`);
  assert.match(r.headers.get('content-type') || '', /^application\/json/, `${label}: JSON error`);
  assert.equal(r.json?.error?.code, code, `${label}: error.code in ${r.text.slice(0, 300)}`);
  assert.equal(typeof r.json.error.message, 'string');
}

/** Sessions and every message's id and status (content keeps growing while a generation runs). */
async function snapshot(srv) {
  const list = await srv.api('GET', '/sessions?limit=200');
  assert.equal(list.status, 200, list.text);
  const out = {};
  for (const s of list.json.sessions) {
    const h = await srv.api('GET', `/sessions/${s.id}/messages`);
    out[s.id] = { title: s.title, messages: h.json.messages.map((m) => `${m.id} ${m.role} ${m.status}`) };
  }
  return out;
}

test('s: --auth none answers only for loopback Host names (DNS rebinding)', { timeout: 60000 }, async (t) => {
  const web = await webDir();
  await withChatd({ args: [...ARGS, '--web-dir', web], name: 'chatd-s-host' }, async (srv) => {
    const port = new URL(srv.baseUrl).port;
    const refused = ['evil.example', `evil.example:${port}`, `localhost.evil.example:${port}`, `127.0.0.1.evil.example:${port}`,
      '10.0.0.1', `192.168.1.10:${port}`, `0.0.0.0:${port}`];
    const accepted = [`127.0.0.1:${port}`, '127.0.0.1', '127.0.0.1:1234', `localhost:${port}`, 'localhost', `[::1]:${port}`, '[::1]'];
    let failures = 0;
    const check = async (name, fn) => {
      failures += 1;
      await t.test(name, async () => { await fn(); failures -= 1; });
    };
    for (const host of refused) {
      await check(`Host: ${host} on the API is 403 forbidden_host`, async () => {
        expectForbidden(await raw(srv, 'GET', `${API}/sessions`, { host }), 'forbidden_host', `Host ${host}`);
      });
    }
    for (const host of accepted) {
      await check(`Host: ${host} on the API is answered`, async () => {
        const r = await raw(srv, 'GET', `${API}/sessions`, { host });
        assert.equal(r.status, 200, `Host ${host}: ${r.text.slice(0, 300)}`);
        assert.ok(Array.isArray(r.json?.sessions));
      });
    }
    await check('the UI at / with a foreign Host is 403', async () => {
      expectForbidden(await raw(srv, 'GET', '/', { host: 'evil.example' }), 'forbidden_host', 'GET / Host evil.example');
      expectForbidden(await raw(srv, 'GET', '/app.js', { host: `evil.example:${port}` }), 'forbidden_host', 'GET /app.js Host evil.example');
      const ok = await raw(srv, 'GET', '/', { host: `localhost:${port}` });
      assert.equal(ok.status, 200, ok.text.slice(0, 200));
      assert.match(ok.text, /<title>chat<\/title>/);
    });
    await check('a POST with a foreign Host is refused and creates nothing', async () => {
      const before = await snapshot(srv);
      expectForbidden(await raw(srv, 'POST', `${API}/sessions`, { host: 'evil.example', body: { title: 'rebound' } }), 'forbidden_host', 'POST /sessions Host evil.example');
      assert.deepEqual(await snapshot(srv), before, 'the store changed');
    });
    if (failures > 0) srv.dumpStderr(`${failures} Host case(s) failed`);
  });
});

test('s: --auth none refuses cross-site state changes and leaves everything as it was', { timeout: 120000 }, async (t) => {
  await withChatd({ args: ARGS, name: 'chatd-s-origin' }, async (srv) => {
    const port = new URL(srv.baseUrl).port;
    const own = srv.baseUrl; // http://127.0.0.1:PORT, the origin of pages chatd serves
    const idle = await createSession(srv, { title: 'idle' });
    // The generation the cross-site requests try to stop. Should one case wrongly
    // stop it, the next case gets a fresh one, so every case is judged on its own.
    let busy;
    let am;
    const ensureGenerating = async () => {
      if (am && (await srv.api('GET', `/messages/${am.id}/content`)).json?.status === 'generating') return;
      busy = await createSession(srv, { title: 'busy' });
      am = (await send(srv, busy.id, 'Tell me a long story about lighthouses.')).assistant_message;
      await waitFor(async () => (await getContent(srv, am.id)).content.length > 0, { timeoutMs: 15000, message: 'the generation to start' });
    };
    await ensureGenerating();

    // The scheme is not compared: behind a TLS-terminating proxy a same-origin
    // page has Origin https://HOST while chatd sees plain HTTP with that Host,
    // and no other site can serve pages from this host and port.
    const evil = { Origin: 'http://evil.example' };
    const cancelPath = () => `${API}/messages/${am.id}/cancel`;
    const refused = [
      { name: 'cross-site cancel (Origin http://evil.example, empty body)', req: () => raw(srv, 'POST', cancelPath(), { headers: evil }) },
      { name: 'cross-site cancel with a JSON body', req: () => raw(srv, 'POST', cancelPath(), { headers: evil, body: {} }) },
      { name: 'cancel with Origin: null (sandboxed frame, file:)', req: () => raw(srv, 'POST', cancelPath(), { headers: { Origin: 'null' } }) },
      { name: 'cancel from the same host on another port', req: () => raw(srv, 'POST', cancelPath(), { headers: { Origin: 'http://127.0.0.1:1' } }) },
      { name: 'cancel from a look-alike host', req: () => raw(srv, 'POST', cancelPath(), { headers: { Origin: `http://127.0.0.1.evil.example:${port}` } }) },
      { name: 'cancel with Sec-Fetch-Site: cross-site and no Origin', req: () => raw(srv, 'POST', cancelPath(), { headers: { 'Sec-Fetch-Site': 'cross-site' } }) },
      { name: 'cross-site create session', req: () => raw(srv, 'POST', `${API}/sessions`, { headers: evil, body: { title: 'csrf' } }) },
      { name: 'create session with Sec-Fetch-Site: cross-site and no Origin', req: () => raw(srv, 'POST', `${API}/sessions`, { headers: { 'Sec-Fetch-Site': 'cross-site' }, body: { title: 'csrf' } }) },
      { name: 'cross-site form-style send (text/plain, a "simple" request)', req: () => raw(srv, 'POST', `${API}/sessions/${idle.id}/messages`, { headers: { ...evil, 'Content-Type': 'text/plain' }, body: '{"content":"csrf"}' }) },
      { name: 'cross-site send', req: () => raw(srv, 'POST', `${API}/sessions/${idle.id}/messages`, { headers: evil, body: { content: 'csrf' } }) },
      { name: 'cross-site delete of the generating session', req: () => raw(srv, 'DELETE', `${API}/sessions/${busy.id}`, { headers: evil }) },
      { name: 'cross-site delete of the idle session', req: () => raw(srv, 'DELETE', `${API}/sessions/${idle.id}`, { headers: evil }) },
    ];
    let failures = 0;
    for (const c of refused) {
      failures += 1;
      await t.test(`${c.name}: 403 cross_origin, nothing changes`, async () => {
        await ensureGenerating();
        const base = await snapshot(srv);
        expectForbidden(await c.req(), 'cross_origin', c.name);
        assert.deepEqual(await snapshot(srv), base, `${c.name}: the store changed`);
        const content = await getContent(srv, am.id);
        assert.equal(content.status, 'generating', `${c.name}: the generation must keep running`);
        failures -= 1;
      });
    }

    failures += 1;
    await t.test('the generation kept running through every cross-site attempt', async () => {
      await ensureGenerating();
      const len = Buffer.byteLength((await getContent(srv, am.id)).content);
      const later = await waitFor(async () => {
        const c = await getContent(srv, am.id);
        return Buffer.byteLength(c.content) > len ? c : null;
      }, { timeoutMs: 10000, message: 'the generation to grow' });
      assert.equal(later.status, 'generating');
      failures -= 1;
    });

    failures += 1;
    await t.test('GETs with a foreign Origin are answered, with no CORS headers', async () => {
      for (const p of [`${API}/sessions`, `${API}/messages/${am.id}/content`, `${API}/messages/${busy.id}/status`]) {
        const r = await raw(srv, 'GET', p, { headers: evil });
        assert.equal(r.status, 200, `GET ${p}: ${r.text.slice(0, 200)}`);
        for (const h of ['access-control-allow-origin', 'access-control-allow-credentials']) {
          assert.equal(r.headers.get(h), null, `GET ${p} must not carry ${h}`);
        }
      }
      failures -= 1;
    });

    failures += 1;
    await t.test('same-origin and Origin-less state changes work', async () => {
      const sameOrigin = await raw(srv, 'POST', `${API}/sessions`, { headers: { Origin: own }, body: { title: 'same origin' } });
      assert.equal(sameOrigin.status, 201, `Origin ${own}: ${sameOrigin.text.slice(0, 300)}`);
      const withFetchMeta = await raw(srv, 'POST', `${API}/sessions`, { headers: { Origin: own, 'Sec-Fetch-Site': 'same-origin' }, body: { title: 'same origin, fetch metadata' } });
      assert.equal(withFetchMeta.status, 201, withFetchMeta.text.slice(0, 300));
      const viaLocalhost = await raw(srv, 'POST', `${API}/sessions`, { host: `localhost:${port}`, headers: { Origin: `http://localhost:${port}` }, body: { title: 'localhost origin' } });
      assert.equal(viaLocalhost.status, 201, `Host/Origin localhost: ${viaLocalhost.text.slice(0, 300)}`);
      const noOrigin = await raw(srv, 'POST', `${API}/sessions`, { body: { title: 'curl' } });
      assert.equal(noOrigin.status, 201, `no Origin (curl): ${noOrigin.text.slice(0, 300)}`);
      // Finally the same-origin cancel the cross-site ones could not do.
      const cancel = await raw(srv, 'POST', cancelPath(), { headers: { Origin: own } });
      assert.equal(cancel.status, 200, `same-origin cancel: ${cancel.text.slice(0, 300)}`);
      assert.equal(cancel.json.status, 'cancelled');
      assert.equal((await getContent(srv, am.id)).status, 'cancelled');
      failures -= 1;
    });
    if (failures > 0) srv.dumpStderr(`${failures} Origin case(s) failed`);
  });
});

test('s: with the default --auth none chatd refuses to listen on a non-loopback address', { timeout: 60000 }, async (t) => {
  const cases = [
    { name: '--host 0.0.0.0', args: ['--host', '0.0.0.0'] },
    { name: 'CHATD_HOST=0.0.0.0', args: [], env: { CHATD_HOST: '0.0.0.0' } },
    { name: '--host :: (all IPv6 addresses)', args: ['--host', '::'] },
  ];
  for (const c of cases) {
    await t.test(c.name, async () => {
      const o = await startOutcome({ args: c.args, env: c.env || {}, timeoutMs: 20000 });
      assertRefused(o, c.name);
      assert.match(o.stderr, /--auth none/, `${c.name}: stderr names --auth none: ${o.stderr.slice(-500)}`);
      assert.match(o.stderr, /loopback/i, `${c.name}: stderr mentions loopback: ${o.stderr.slice(-500)}`);
    });
  }
});
